// The watch panel: every few seconds, a sample of all users' cached positions
// (GET /v1/watch/positions, admin token), drawn as small dots on one canvas.

import { $, fetchJson, problemText, setStatus } from "./dom.js";

export function setupWatch({ state, map }) {
  const layer = L.layerGroup().addTo(map);
  const renderer = L.canvas({ padding: 0.5 });
  const markers = new Map(); // user_id -> circle marker
  state.watch = { watching: false, markers, count: 0, complete: false, fetches: 0, updatedAt: null };
  let timer = null;
  let round = 0; // a poll of an earlier start/stop round must not keep running
  const status = (text) => setStatus("watch-status", text);
  const button = $("watch-button");

  function setWatching(watching) {
    state.watch.watching = watching;
    button.setAttribute("aria-pressed", String(watching));
    button.textContent = watching ? "Stop watching" : "Start watching";
    if (!watching && timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
  }

  function draw(positions) {
    const seen = new Set();
    for (const p of positions) {
      seen.add(p.user_id);
      const marker = markers.get(p.user_id);
      if (marker) {
        marker.setLatLng([p.latitude, p.longitude]);
      } else {
        markers.set(p.user_id, L.circleMarker([p.latitude, p.longitude], {
          renderer, radius: 3, weight: 0, fillColor: "#7b1fa2", fillOpacity: 0.75, interactive: false,
        }).addTo(layer));
      }
    }
    for (const [userId, marker] of markers) {
      if (!seen.has(userId)) {
        layer.removeLayer(marker);
        markers.delete(userId);
      }
    }
  }

  async function poll(mine) {
    timer = null;
    let answer;
    try {
      answer = await fetchJson(`/v1/watch/positions?limit=${encodeURIComponent($("watch-limit").value)}`, {
        headers: { Authorization: `Bearer ${state.token}` },
      });
    } catch (error) {
      answer = { ok: false, status: 0, body: { detail: error.message } };
    }
    if (!state.watch.watching || mine !== round) return;
    if (!answer.ok) {
      status(`Watching stopped: ${problemText(answer.status, answer.body)}`);
      setWatching(false);
      return;
    }
    const { positions, complete } = answer.body;
    const first = state.watch.fetches === 0;
    draw(positions);
    Object.assign(state.watch, { count: positions.length, complete, fetches: state.watch.fetches + 1, updatedAt: Date.now() });
    if (first && positions.length > 0) {
      map.fitBounds(L.latLngBounds(positions.map((p) => [p.latitude, p.longitude])), { padding: [20, 20], maxZoom: 14 });
    }
    const time = new Date().toLocaleTimeString();
    status(`${positions.length.toLocaleString()} position(s)${complete ? "" : " (a sample)"}, updated ${time}.`);
    timer = setTimeout(() => poll(mine), Number($("watch-every").value));
  }

  $("watch-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.watch.watching) {
      setWatching(false);
      status(`Stopped; ${state.watch.count.toLocaleString()} position(s) shown.`);
      return;
    }
    if (!$("watch-form").reportValidity()) return;
    if (!state.token || state.role !== "admin") {
      status("Watching needs an admin token: sign in with the role admin.");
      return;
    }
    state.watch.fetches = 0;
    setWatching(true);
    status("Loading positions…");
    round += 1;
    poll(round);
  });
  $("watch-limit").max = String(state.config.watch.max_limit);
}
