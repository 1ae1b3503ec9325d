// Nearby strangers (docs/friends-protocol.md, "Nearby strangers"): the switch and the public
// handle that the friends panel sends as a `discover` message, and the strangers the server
// shows, as grey markers and a list. A stranger is named by an id that lives as long as the
// connection, so a new connection (a fresh init, or resumed) starts with none; so does
// turning discovery or sharing off, which the server answers without a stranger_left each.
// Handles are chosen by their users: shown as text only.

import { $, textElement } from "./dom.js";
import { formatDistance, nearLongitude } from "./geo.js";

/** What the handle field accepts (the server refuses anything else with invalid_value). */
const HANDLE = /^[A-Za-z0-9_.-]{3,30}$/;

const LEFT_REASONS = {
  out_of_range: "moved out of range",
  offline: "went offline",
  expired: "has not been heard from",
  hidden: "is hidden now",
};

export function createStrangers({ state, map, send, status }) {
  const layer = L.layerGroup().addTo(map);
  const strangers = new Map(); // id -> {id, handle, latitude, longitude, distance_m, marker}
  state.strangers = strangers;
  state.discover = null; // {enabled, handle, radius_m} once the server has said
  const discoverSwitch = $("discover");
  const handleInput = $("handle");

  const name = (stranger) => stranger.handle || "someone";
  const selfLon = () => (state.self ? state.self.longitude : 0);

  function upsert(frame) {
    let stranger = strangers.get(frame.id);
    if (!stranger) {
      const marker = L.circleMarker([frame.latitude, frame.longitude], {
        radius: 6, color: "#555", weight: 2, fillColor: "#aaa", fillOpacity: 0.9,
      });
      marker.bindTooltip(textElement("span", ""), { permanent: true, direction: "top", className: "friend-label" });
      marker.addTo(layer);
      stranger = { id: frame.id, marker };
      strangers.set(frame.id, stranger);
    }
    Object.assign(stranger, {
      handle: frame.handle, latitude: frame.latitude, longitude: frame.longitude, distance_m: frame.distance_m,
    });
    stranger.marker.setLatLng([frame.latitude, nearLongitude(frame.longitude, selfLon())]);
    stranger.marker.setTooltipContent(textElement("span", name(stranger)));
  }

  function remove(id) {
    const stranger = strangers.get(id);
    if (!stranger) return null;
    layer.removeLayer(stranger.marker);
    strangers.delete(id);
    return stranger;
  }

  function clear() {
    for (const id of [...strangers.keys()]) remove(id);
    render();
  }

  function render() {
    const list = $("strangers-list");
    list.replaceChildren();
    const sorted = [...strangers.values()].sort((a, b) => a.distance_m - b.distance_m || (a.id < b.id ? -1 : 1));
    for (const stranger of sorted) {
      const item = document.createElement("li");
      item.dataset.strangerId = stranger.id;
      item.append(textElement("span", name(stranger), "name"), " ",
        textElement("span", `about ${formatDistance(stranger.distance_m)}`, "distance"));
      list.append(item);
    }
    if (!sorted.length && state.discover && state.discover.enabled) {
      list.append(textElement("li", "Nobody else nearby has it on.", "empty"));
    }
  }

  function renderPreference() {
    const discover = state.discover;
    discoverSwitch.indeterminate = discover === null;
    discoverSwitch.checked = Boolean(discover && discover.enabled);
    if (discover && document.activeElement !== handleInput) handleInput.value = discover.handle || "";
    $("discover-hint").textContent = !discover
      ? "Until you change it, your stored preference applies (off for a new user)."
      : discover.enabled
        ? `People within ${formatDistance(discover.radius_m)} who turned this on see you at about 1 km, as ${discover.handle || "someone, with no name"}.`
        : "Off: no stranger sees you, and none is shown.";
  }

  /** The switch or the handle changed: ask the server (it answers with the preference in force). */
  function sendDiscover() {
    const handle = handleInput.value.trim();
    if (handle && !HANDLE.test(handle)) {
      status("A handle is 3 to 30 letters, digits, '_', '.' or '-' (or empty for none).");
      renderPreference();
      return;
    }
    if (!state.connected) {
      status("Connect first: discovery is set on the server.");
      renderPreference();
      return;
    }
    send({ type: "discover", enabled: discoverSwitch.checked, handle: handle || null });
  }

  discoverSwitch.addEventListener("change", sendDiscover);
  $("handle-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendDiscover();
  });

  /** A frame from geo-friends; true when it was one of discovery's. */
  function onFrame(frame) {
    switch (frame.type) {
      case "init":
      case "resumed":
        clear(); // ids are the lost connection's: the server sends who is here again
        return false;
      case "sharing":
        if (!frame.enabled) clear(); // neither seen nor seeing while sharing is off
        return false;
      case "discover":
        state.discover = { enabled: frame.enabled, handle: frame.handle, radius_m: frame.radius_m };
        if (!frame.enabled) clear();
        renderPreference();
        render();
        status(frame.enabled ? "Discovery is on: strangers nearby who turned it on see you, coarsely." : "Discovery is off.");
        return true;
      case "stranger":
        upsert(frame);
        render();
        return true;
      case "stranger_left": {
        const gone = remove(frame.id);
        render();
        if (gone) status(`${name(gone)} ${LEFT_REASONS[frame.reason] || LEFT_REASONS.offline}.`);
        return true;
      }
      default:
        return false;
    }
  }

  renderPreference();
  return { onFrame, clear };
}
