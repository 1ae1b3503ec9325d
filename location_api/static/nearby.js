// The friends in view on the map and in the In range list, with how long ago the server last
// heard from each: measured on the server's clock (the `at` of init or resumed, run on by
// the time since), never the browser's own date against the server's timestamps. A friend
// stays until friends.js removes them (a friend_left, a fresh init, signing out): a friend
// whose connection closes is not gone, only older.

import { $, textElement } from "./dom.js";
import { circlePolygon, formatAge, formatDistance, haversineM, nearLongitude, serverNow } from "./geo.js";

export function createNearby({ state, map, people }) {
  const layer = L.layerGroup().addTo(map);
  const friends = new Map(); // user_id -> {user_id, latitude, longitude, distance_m, updated_at, marker}
  state.friends = friends;
  // The server's clock as last heard, {at, receivedAt: performance.now()}: ages are measured
  // on it (geo.js serverNow). Null while the page holds no view of its friends.
  state.clock = null;
  state.resumeAt = null; // the newest server time received: a resumption's `at`
  let selfMarker = null;
  let selfCircle = null;
  let fitted = false;
  const selfLon = () => (state.self ? state.self.longitude : 0);

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

  /** Forget what the server said of this user's friends: nothing left to resume. */
  function forgetView() {
    clearFriends();
    state.clock = null;
    state.resumeAt = null;
    renderList();
  }

  /** The server's clock is `at` (ms) now: from init's or resumed's `at`. */
  function setClock(at) {
    // A server without `at` (older than resumption): the browser's date is all there is.
    const serverAt = Number.isFinite(at) ? at : Date.now();
    state.clock = { at: serverAt, receivedAt: performance.now() };
    state.resumeAt = serverAt;
  }

  /** A friend's `updated_at` is a time the server's clock has reached: never show it ahead. */
  function clockReached(at) {
    if (!Number.isFinite(at) || !state.clock) return;
    const now = performance.now();
    if (at > serverNow(state.clock, now)) state.clock = { at, receivedAt: now };
    state.resumeAt = Math.max(state.resumeAt, at);
  }

  /** How long ago the server last heard from a friend, ms, on the server's clock. */
  const ageOf = (friend) => (state.clock ? serverNow(state.clock, performance.now()) - friend.updated_at : 0);

  function renderList() {
    const list = $("friends-list");
    list.replaceChildren();
    const sorted = [...friends.values()].sort((a, b) => a.distance_m - b.distance_m || a.user_id - b.user_id);
    for (const friend of sorted) {
      const item = document.createElement("li");
      item.dataset.userId = String(friend.user_id);
      item.append(textElement("span", people.nameOf(friend.user_id), "name"), " ",
        textElement("span", formatDistance(friend.distance_m), "distance"), " ",
        textElement("span", formatAge(ageOf(friend)), "age"));
      list.append(item);
    }
    if (!sorted.length) {
      list.append(textElement("li", state.connected ? "Nobody in range." : "Connect to see who is near.", "empty"));
    }
  }


  /** Bring the ages in the list up to date (the list itself is unchanged). */
  function renderAges() {
    for (const item of $("friends-list").children) {
      const friend = friends.get(Number(item.dataset.userId));
      if (friend) item.querySelector(".age").textContent = formatAge(ageOf(friend));
    }
  }

  return {
    drawSelf,
    upsert: upsertFriend,
    remove: removeFriend,
    clear: clearFriends,
    forget: forgetView,
    relabel,
    setClock,
    clockReached,
    renderList,
    renderAges,
  };
}
