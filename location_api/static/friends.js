// The friends panel: one WebSocket to geo-friends (docs/friends-protocol.md), the user's own
// position, the friends in range moving live with their last-seen ages, sharing and radius.
// Requests, the friend list and display names are people.js's (over HTTP): it names the
// markers here and hears the frames about them.

import { $, setStatus, textElement } from "./dom.js";
import { circlePolygon, formatAge, formatDistance, haversineM, nearLongitude } from "./geo.js";

/** The protocol asks for a location about every 30 s; a little sooner keeps the cache warm. */
const RESEND_MS = 25000;

const LEFT_REASONS = {
  out_of_range: "moved out of range",
  offline: "went offline",
  expired: "has not been heard from",
  sharing_off: "stopped sharing",
  unfriended: "is no longer a friend",
};

export function setupFriends({ state, map, onSignedIn, people }) {
  const layer = L.layerGroup().addTo(map);
  const friends = new Map(); // user_id -> {user_id, latitude, longitude, distance_m, updated_at, marker}
  state.friends = friends;
  state.socket = null;
  state.connected = false;
  state.self = null; // {latitude, longitude, sentAt}
  state.friendRadiusM = state.config.friends.radius_m;
  state.sharing = null; // {enabled, precision} once the server has said
  state.lastLeft = null;
  let selfMarker = null;
  let selfCircle = null;
  let fitted = false;

  const radiusInput = $("friend-radius");
  radiusInput.min = String(state.config.friends.min_radius_m);
  radiusInput.max = String(state.config.friends.max_radius_m);
  radiusInput.value = String(state.config.friends.radius_m);
  // Until the server says (in init, or in answer to a change), the stored preference is
  // unknown: shown as mixed.
  const sharingSwitch = $("sharing");
  sharingSwitch.indeterminate = true;

  const status = (text) => setStatus("friends-status", text);
  const send = (message) => state.socket.send(JSON.stringify(message));
  const selfLon = () => (state.self ? state.self.longitude : 0);

  function setConnected(connected) {
    state.connected = connected;
    $("connect").disabled = connected;
    $("disconnect").disabled = !connected;
    renderList();
  }

  // --- drawing ------------------------------------------------------------------------------

  function drawSelf() {
    const { latitude, longitude } = state.self;
    if (!selfMarker) {
      selfMarker = L.circleMarker([latitude, longitude], {
        radius: 8, color: "#0b3d7a", weight: 3, fillColor: "#3d8af7", fillOpacity: 1,
      }).bindTooltip(textElement("span", "You"), { permanent: true, direction: "top", className: "friend-label" });
      selfMarker.addTo(layer);
      selfCircle = L.polygon([[0, 0]], { color: "#0b3d7a", weight: 1, dashArray: "4 4", fillOpacity: 0.04, interactive: false });
      selfCircle.addTo(layer);
    }
    selfMarker.setLatLng([latitude, longitude]);
    selfCircle.setLatLngs(circlePolygon(latitude, longitude, state.friendRadiusM));
    if (!fitted) {
      fitted = true; // once: show who is in range, then leave the view to the user
      map.fitBounds(selfCircle.getBounds(), { padding: [16, 16], animate: false });
    }
    // Friends who stay in view are not re-sent when only the user moves: measure them here.
    for (const friend of friends.values()) {
      friend.distance_m = haversineM(latitude, longitude, friend.latitude, friend.longitude);
      friend.marker.setLatLng(friendLatLng(friend));
    }
    renderList();
  }

  const friendLatLng = (f) => [f.latitude, nearLongitude(f.longitude, selfLon())];

  function upsertFriend(frame) {
    let friend = friends.get(frame.user_id);
    if (!friend) {
      const marker = L.circleMarker([frame.latitude, frame.longitude], {
        radius: 7, color: "#1b6b2a", weight: 2, fillColor: "#3fbf5a", fillOpacity: 0.95,
      }).bindTooltip(label(frame.user_id), {
        permanent: true, direction: "top", className: "friend-label",
      });
      marker.addTo(layer);
      friend = { user_id: frame.user_id, marker };
      friends.set(frame.user_id, friend);
    }
    Object.assign(friend, {
      latitude: frame.latitude, longitude: frame.longitude, distance_m: frame.distance_m, updated_at: frame.updated_at,
    });
    friend.marker.setLatLng(friendLatLng(friend));
  }

  // A label is an element with text only: display names are chosen by their users.
  const label = (userId) => textElement("span", people.nameOf(userId));

  function relabel() {
    for (const friend of friends.values()) friend.marker.setTooltipContent(label(friend.user_id));
    renderList();
  }

  /** Take a friend off the map; false when they were not on it. */
  function removeFriend(userId) {
    const friend = friends.get(userId);
    if (!friend) return false;
    layer.removeLayer(friend.marker);
    friends.delete(userId);
    return true;
  }

  function clearFriends() {
    for (const userId of [...friends.keys()]) removeFriend(userId);
  }

  function renderList() {
    const list = $("friends-list");
    list.replaceChildren();
    const sorted = [...friends.values()].sort((a, b) => a.distance_m - b.distance_m || a.user_id - b.user_id);
    for (const friend of sorted) {
      const item = document.createElement("li");
      item.dataset.userId = String(friend.user_id);
      item.append(textElement("span", people.nameOf(friend.user_id), "name"), " ",
        textElement("span", formatDistance(friend.distance_m), "distance"), " ",
        textElement("span", formatAge(Date.now() - friend.updated_at), "age"));
      list.append(item);
    }
    if (!sorted.length) {
      list.append(textElement("li", state.connected ? "Nobody in range." : "Connect to see who is near.", "empty"));
    }
  }

  function tick() {
    const now = Date.now();
    for (const item of $("friends-list").children) {
      const friend = friends.get(Number(item.dataset.userId));
      if (friend) item.querySelector(".age").textContent = formatAge(now - friend.updated_at);
    }
    const self = state.self;
    $("me-age").textContent = self && self.sentAt ? `Your location was sent ${formatAge(now - self.sentAt)}.` : "";
  }

  // --- the WebSocket ------------------------------------------------------------------------

  function onFrame(frame) {
    switch (frame.type) {
      case "init":
        clearFriends();
        state.friendRadiusM = frame.radius_m;
        for (const friend of frame.friends) upsertFriend(friend);
        if (frame.sharing) onFrame({ type: "sharing", ...frame.sharing });
        if (state.self) drawSelf();
        status(`${frame.friends.length} friend(s) within ${formatDistance(frame.radius_m)}.`);
        break;
      case "friend_location":
        upsertFriend(frame);
        break;
      case "friend_left":
        state.lastLeft = { user_id: frame.user_id, reason: frame.reason };
        // Only a friend who was on the map is news, and not when this page is ending the
        // friendship: the status line keeps the answer to that.
        if (removeFriend(frame.user_id) && !people.busy(frame.user_id)) {
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
        if (state.self) drawSelf();
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
      case "error":
        status(`The server could not use that: ${frame.detail} (${frame.code}).`);
        break;
      default:
        break; // a newer server's frame: nothing to do with it
    }
    renderList();
  }

  function connect() {
    if (!state.token) {
      status("Sign in first.");
      return;
    }
    if (state.socket) state.socket.close(1000);
    // The token goes in the subprotocol list, never in the URL (URLs are logged): the server
    // verifies bearer.<token> and answers with geo.v1 only.
    let socket;
    try {
      socket = new WebSocket(socketUrl(state.config.friends_ws_url), ["geo.v1", `bearer.${state.token}`]);
    } catch (error) {
      status(`Cannot connect with this token: ${error.message}`);
      return;
    }
    state.socket = socket;
    status("Connecting…");
    socket.addEventListener("open", () => {
      setConnected(true);
      if (state.self) sendLocation();
      else status(`Connected as user ${state.userId}. Click the map or enter your position to share it.`);
    });
    socket.addEventListener("message", (event) => {
      try {
        onFrame(JSON.parse(event.data));
      } catch (error) {
        status(`An unreadable frame arrived: ${error.message}`);
      }
    });
    socket.addEventListener("close", (event) => {
      if (state.socket !== socket) return; // replaced by a newer connection
      state.socket = null;
      setConnected(false);
      clearFriends();
      renderList();
      if (event.code === 4001) status("Disconnected: your token expired. Sign in again, then connect.");
      else status(event.code === 1000 ? "Disconnected." : `Disconnected (code ${event.code}${event.reason ? `: ${event.reason}` : ""}).`);
    });
  }

  function disconnect() {
    if (state.socket) state.socket.close(1000);
  }

  function sendLocation() {
    if (!$("me-form").reportValidity()) return;
    state.self = { latitude: Number($("me-lat").value), longitude: Number($("me-lon").value), sentAt: null };
    drawSelf();
    if (!state.connected) {
      status("Connect to share your position.");
      return;
    }
    send({ type: "location", latitude: state.self.latitude, longitude: state.self.longitude, timestamp: Date.now() });
    state.self.sentAt = Date.now();
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
  $("me-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendLocation();
  });
  sharingSwitch.addEventListener("change", () => sendSharing(null));
  $("precision").addEventListener("change", () => sendSharing($("precision").value));
  $("radius-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!$("radius-form").reportValidity()) return;
    if (state.connected) send({ type: "settings", radius_m: Number(radiusInput.value) });
    else status("Connect first.");
  });
  people.onNamesChanged(relabel);
  renderList();
  onSignedIn(() => {
    disconnect();
    status(`Signed in as user ${state.userId}: press Connect.`);
  });
  setInterval(tick, 1000);
  setInterval(() => {
    if (state.connected && state.self) sendLocation();
  }, RESEND_MS);

  // A click on the map while this panel is open moves the user there.
  return (lat, lon) => {
    $("me-lat").value = lat;
    $("me-lon").value = lon;
    sendLocation();
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
