// The friends panel: one WebSocket to geo-friends (docs/friends-protocol.md), the user's own
// position, the friends in view moving live with how long ago each was last seen, sharing
// and radius. A friend whose connection closes stays on the map, ageing: closing is not
// leaving, only a friend_left takes a marker off. The socket's lifetime (connecting again
// when the server restarts or the connection drops) is socket.js's, the sending pace
// pace.js's; the first location after a reconnection carries `resume`, so the markers stay
// and only what changed arrives. Requests, the friend list and display names are
// people.js's (over HTTP): it names the markers here and hears the frames about them.

import { $, setStatus } from "./dom.js";
import { formatAge, formatDistance, formatInterval } from "./geo.js";
import { createNearby } from "./nearby.js";
import { createPacer } from "./pace.js";
import { createSocket } from "./socket.js";
import { createStrangers } from "./strangers.js";

/** The largest frame geo-friends reads, bytes (it closes with 1009 beyond). */
const MAX_FRAME_BYTES = 4096;

/** After a rate_limited answer to a connection's first location, send it again this much later, ms. */
const FIRST_RETRY_MS = 1000;

const LEFT_REASONS = {
  out_of_range: "moved out of range",
  offline: "went offline",
  expired: "has not been heard from",
  sharing_off: "stopped sharing",
  unfriended: "is no longer a friend",
};

export function setupFriends({ state, map, onSignedIn, people }) {
  state.connected = false;
  state.self = null; // {latitude, longitude, sentAt: performance.now() of the last send}
  state.friendRadiusM = state.config.friends.radius_m;
  state.sharing = null; // {enabled, precision} once the server has said
  state.lastLeft = null;
  state.pace = null; // interval_s the server set for this connection
  state.frames = {}; // frames received, by type
  state.sent = { locations: 0, resumes: 0, last: null }; // locations sent, and the last one
  state.connections = 0; // connections attempted
  state.signingOut = false;
  let firstOfConnection = true; // the next location is the connection's first
  let viewDue = false; // that first location awaits its init or resumed
  const view = createNearby({ state, map, people });

  const radiusInput = $("friend-radius");
  radiusInput.min = String(state.config.friends.min_radius_m);
  radiusInput.max = String(state.config.friends.max_radius_m);
  radiusInput.value = String(state.config.friends.radius_m);
  // Until the server says (in init, or in answer to a change), the stored preference is
  // unknown: shown as mixed.
  const sharingSwitch = $("sharing");
  sharingSwitch.indeterminate = true;

  const status = (text) => setStatus("friends-status", text);
  const socket = createSocket({
    target: () => {
      // A new attempt: the connection before it (if any) is over for this page.
      state.connections += 1;
      connectionEnded();
      status("Connecting…");
      // The token goes in the subprotocol list, never in the URL (URLs are logged): the
      // server verifies bearer.<token> and answers with geo.v1 only.
      return [socketUrl(state.config.friends_ws_url), ["geo.v1", `bearer.${state.token}`]];
    },
    onOpen: opened,
    onFrame: (data) => {
      try {
        onFrame(JSON.parse(data));
      } catch (error) {
        status(`An unreadable frame arrived: ${error.message}`);
      }
    },
    onClose: closed,
  });
  const pacer = createPacer(sendLocation);
  const send = (message) => socket.send(message);
  const strangers = createStrangers({ state, map, send, status });

  function setConnected(connected) {
    state.connected = connected;
    renderButtons();
    view.renderList();
  }

  function renderButtons() {
    $("connect").disabled = state.connected;
    $("disconnect").disabled = !socket.active;
    $("sign-out").disabled = !state.connected || state.signingOut;
  }

  function renderPace() {
    $("pace").textContent = state.pace === null
      ? ""
      : `Your location is sent every ${formatInterval(state.pace)}, as the server asks.`;
  }

  let countdown = null; // the timer that shows the next second of the countdown

  /**
   * The status line while a new connection is due: the seconds left, counted down. Each
   * number shows until the moment the next one is due (a timer of its own), not until the
   * panel's next one-second tick, whose phase has nothing to do with when the wait began.
   */
  function renderWaiting() {
    clearTimeout(countdown);
    countdown = null;
    const due = socket.waiting;
    if (!due) return false;
    const seconds = Math.ceil(due.inMs / 1000);
    status(due.why === "restart"
      ? `Server restarting, reconnecting in ${seconds} s.`
      : `Connection lost (code ${due.code}), reconnecting in ${seconds} s.`);
    if (seconds > 1) countdown = setTimeout(renderWaiting, due.inMs - (seconds - 1) * 1000);
    return true;
  }

  function tick() {
    view.renderAges();
    const self = state.self;
    $("me-age").textContent = self && self.sentAt
      ? `Your location was sent ${formatAge(performance.now() - self.sentAt)}.`
      : "";
    renderWaiting();
  }

  // --- the WebSocket ------------------------------------------------------------------------

  function onFrame(frame) {
    state.frames[frame.type] = (state.frames[frame.type] || 0) + 1;
    if (strangers.onFrame(frame)) return;
    switch (frame.type) {
      case "init":
        viewDue = false;
        view.clear();
        view.setClock(frame.at);
        state.friendRadiusM = frame.radius_m;
        radiusInput.value = String(frame.radius_m);
        for (const friend of frame.friends) view.upsert(friend);
        if (frame.sharing) onFrame({ type: "sharing", ...frame.sharing });
        if (state.self) view.drawSelf();
        status(`${frame.friends.length} friend(s) within ${formatDistance(frame.radius_m)}.`);
        break;
      case "resumed":
        // Like init without the friends: the markers held stay, and the frames that follow
        // bring what changed while the page was away.
        viewDue = false;
        view.setClock(frame.at);
        state.friendRadiusM = frame.radius_m;
        radiusInput.value = String(frame.radius_m);
        if (frame.sharing) onFrame({ type: "sharing", ...frame.sharing });
        if (state.self) view.drawSelf();
        status(`Reconnected: showing friends within ${formatDistance(frame.radius_m)}.`);
        break;
      case "friend_location":
        view.upsert(frame);
        view.clockReached(frame.updated_at);
        break;
      case "friend_left":
        state.lastLeft = { user_id: frame.user_id, reason: frame.reason };
        // Only a friend who was on the map is news, and not when this page is ending the
        // friendship: the status line keeps the answer to that.
        if (view.remove(frame.user_id) && !people.busy(frame.user_id)) {
          status(`${people.nameOf(frame.user_id, { start: true })} ${LEFT_REASONS[frame.reason] || LEFT_REASONS.offline}.`);
        }
        people.onFrame(frame);
        break;
      case "friend_request":
      case "friend_added":
        people.onFrame(frame);
        break;
      case "settings":
        state.friendRadiusM = frame.radius_m;
        radiusInput.value = String(frame.radius_m);
        if (state.self) view.drawSelf();
        status(`Showing friends within ${formatDistance(frame.radius_m)}.`);
        break;
      case "sharing":
        state.sharing = { enabled: frame.enabled, precision: frame.precision };
        sharingSwitch.indeterminate = false;
        sharingSwitch.checked = frame.enabled;
        $("precision").value = frame.precision;
        $("precision").disabled = false;
        $("sharing-hint").textContent = frame.enabled
          ? `Friends see you (${frame.precision === "coarse" ? "about 1 km" : "exactly"}).`
          : "Nobody sees you.";
        break;
      case "pace":
        state.pace = frame.interval_s;
        pacer.set(frame.interval_s);
        renderPace();
        break;
      case "reconnect":
        socket.reconnectAfter(frame.after_ms);
        renderWaiting();
        renderButtons();
        break;
      case "error":
        if (frame.code === "rate_limited" && viewDue) {
          // The connection's first location was dropped (a reconnection right after other
          // sends): without it there is no init nor resumed; send it again shortly.
          firstOfConnection = true;
          const connection = state.connections;
          setTimeout(() => {
            if (firstOfConnection && state.connections === connection) sendLocation();
          }, FIRST_RETRY_MS);
        }
        if (state.signingOut) {
          // The sign-out was not applied (rate_limited, unavailable): still connected.
          state.signingOut = false;
          socket.keep();
          renderButtons();
        }
        status(`The server could not use that: ${frame.detail} (${frame.code}).`);
        break;
      default:
        break; // a newer server's frame: nothing to do with it
    }
    view.renderList();
  }

  function connect() {
    if (!state.token) {
      status("Sign in first.");
      return;
    }
    state.signingOut = false;
    try {
      socket.connect();
    } catch (error) {
      status(`Cannot connect with this token: ${error.message}`);
      return;
    }
    renderButtons();
  }

  function opened() {
    firstOfConnection = true;
    viewDue = false;
    setConnected(true);
    if (state.self) sendLocation();
    else status(`Connected as user ${state.userId}. Click the map or enter your position to share it.`);
  }

  function connectionEnded() {
    pacer.reset();
    state.pace = null;
    renderPace();
    setConnected(false);
  }

  function closed(event, retrying) {
    connectionEnded();
    // Friends stay on the map, ageing, until a connection says otherwise (a fresh init, or
    // the changes after resumed); after signing out there is nothing to resume.
    if (state.signingOut) {
      state.signingOut = false;
      view.forget();
      strangers.clear();
      if (state.self) state.self.sentAt = null;
      tick();
      status("Signed out: your location is erased, and friends see you go offline.");
    } else if (retrying) {
      renderWaiting();
    } else if (event.code === 4001) {
      status("Disconnected: your token expired. Sign in again, then connect.");
    } else {
      status(event.code === 1000 ? "Disconnected." : `Disconnected (code ${event.code}${event.reason ? `: ${event.reason}` : ""}).`);
    }
    renderButtons();
  }

  function disconnect() {
    const wasOpen = socket.open;
    socket.disconnect();
    if (!wasOpen) {
      // Only a reconnection was due (or an attempt under way): no close event will say so.
      setConnected(false);
      status("Disconnected.");
    }
  }

  function signOut() {
    if (!state.connected) {
      status("Connect first: signing out is done on the server.");
      return;
    }
    state.signingOut = true;
    socket.expectClose(); // the server closes with 1000 "signed out": do not come back
    send({ type: "sign_out" });
    renderButtons();
    status("Signing out…");
  }

  /** The user's position, from the form: drawn, and sent when connected. */
  function moveSelf() {
    if (!$("me-form").reportValidity()) return;
    state.self = { latitude: Number($("me-lat").value), longitude: Number($("me-lon").value), sentAt: null };
    view.drawSelf();
    if (!state.connected) {
      status("Connect to share your position.");
      return;
    }
    sendLocation();
  }

  /**
   * Send the user's position. The first location of a connection that follows another
   * carries `resume`: the newest server time received, the radius, and the friends shown
   * with the `updated_at` of the position held, so the server sends only what changed.
   */
  function sendLocation() {
    if (!state.self || !state.connected) return;
    const message = {
      type: "location", latitude: state.self.latitude, longitude: state.self.longitude, timestamp: Date.now(),
    };
    if (firstOfConnection && state.clock) {
      const held = {};
      for (const friend of state.friends.values()) held[friend.user_id] = friend.updated_at;
      message.resume = { at: state.resumeAt, radius_m: state.friendRadiusM, friends: held };
      // Too many friends held for one frame: a fresh init instead (it replaces the markers).
      if (new TextEncoder().encode(JSON.stringify(message)).length > MAX_FRAME_BYTES) delete message.resume;
    }
    if (!send(message)) return;
    if (firstOfConnection) viewDue = true;
    firstOfConnection = false;
    state.sent.locations += 1;
    if (message.resume) state.sent.resumes += 1;
    state.sent.last = message;
    state.self.sentAt = performance.now();
    pacer.sent();
    tick();
  }

  function sendSharing(precision) {
    if (!state.connected) {
      status("Connect first: sharing is set on the server.");
      sharingSwitch.indeterminate = state.sharing === null;
      if (state.sharing) sharingSwitch.checked = state.sharing.enabled;
      return;
    }
    const message = { type: "sharing", enabled: sharingSwitch.checked };
    if (precision) message.precision = precision;
    send(message);
  }

  $("connect").addEventListener("click", connect);
  $("disconnect").addEventListener("click", disconnect);
  $("sign-out").addEventListener("click", signOut);
  $("me-form").addEventListener("submit", (event) => {
    event.preventDefault();
    moveSelf();
  });
  sharingSwitch.addEventListener("change", () => sendSharing(null));
  $("precision").addEventListener("change", () => sendSharing($("precision").value));
  $("radius-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!$("radius-form").reportValidity()) return;
    if (state.connected) send({ type: "settings", radius_m: Number(radiusInput.value) });
    else status("Connect first.");
  });
  people.onNamesChanged(view.relabel);
  view.renderList();
  renderButtons();
  onSignedIn(() => {
    disconnect();
    view.forget(); // another user's friends, or the same user's from before: nothing to resume
    status(`Signed in as user ${state.userId}: press Connect.`);
  });
  // Ages (and a reconnection's countdown) move on every second.
  setInterval(tick, 1000);

  // A click on the map while this panel is open moves the user there.
  return (lat, lon) => {
    $("me-lat").value = lat;
    $("me-lon").value = lon;
    moveSelf();
  };
}

/** The WebSocket URL: absolute as configured, or a path resolved against the page's own origin
 * (ws: or wss: as the page is http: or https:; older browsers take only absolute URLs). */
function socketUrl(configured) {
  const url = new URL(configured, window.location.href);
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  return url.href;
}
