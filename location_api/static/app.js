// The map page: the map and world outline, the mode tabs, signing in, and nearby search.
// The friends panel lives in friends.js (the WebSocket) and people.js (requests, friends,
// display names), the watch panel in watch.js. Everything the page holds is in one state
// object, exposed as window.geoPage (the browser tests read it).

import { setupBusinessCard } from "./business.js";
import { $, fetchJson, problemText, setStatus, textElement } from "./dom.js";
import { setupFriends } from "./friends.js";
import {
  circlePolygon, formatDistance, nearLongitude, searchQuery, tokenClaims, unwrapGeometry, wrapLongitude,
} from "./geo.js";
import { setupPeople } from "./people.js";
import { setupWatch } from "./watch.js";

const state = {
  ready: false,
  worldDrawn: false,
  config: null,
  mode: "search",
  token: "",
  userId: null,
  role: null,
  search: { query: null, total: 0, radiusM: null, results: [], outline: null, circle: null },
  card: null,
};
window.geoPage = state;

const map = L.map("map", { center: [20, 0], zoom: 2, minZoom: 1, zoomSnap: 0.5, worldCopyJump: false });
map.attributionControl.addAttribution("Outline: Natural Earth");
map.createPane("world").style.zIndex = "250"; // under the markers and shapes (overlayPane is 400)
state.map = map;
const resultsLayer = L.layerGroup().addTo(map);
const listeners = { signedIn: [], mapClick: {} };
const showBusiness = setupBusinessCard(state);

/** Fixed decimals for coordinates typed into the forms from a map click (about 1 m). */
const toDegrees = (value) => value.toFixed(5);

// --- the world outline (no tile server: Natural Earth countries as GeoJSON, three copies so
// the map reads on both sides of the antimeridian) ------------------------------------------

async function drawWorld() {
  const topology = await (await fetch("/static/vendor/world-atlas/countries-110m.json")).json();
  const collection = topojson.feature(topology, topology.objects.countries);
  const countries = {
    ...collection,
    features: collection.features.map((f) => ({ ...f, geometry: unwrapGeometry(f.geometry) })),
  };
  const renderer = L.canvas({ pane: "world" });
  for (const offset of [-360, 0, 360]) {
    L.geoJSON(countries, {
      renderer,
      interactive: false,
      style: { color: "#7d8b6a", weight: 0.7, fillColor: "#f1f2e6", fillOpacity: 1 },
      coordsToLatLng: (c) => L.latLng(c[1], c[0] + offset),
    }).addTo(map);
  }
  state.worldDrawn = true;
}

// --- tabs: what a click on the map does, and which panel shows ----------------------------

const TABS = ["search", "friends", "watch"];

function selectTab(mode, focus = false) {
  state.mode = mode;
  for (const name of TABS) {
    const tab = $(`tab-${name}`);
    const selected = name === mode;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`panel-${name}`).hidden = !selected;
    if (selected && focus) tab.focus();
  }
}

function setupTabs() {
  for (const name of TABS) {
    const tab = $(`tab-${name}`);
    tab.addEventListener("click", () => selectTab(name));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step === undefined) return;
      event.preventDefault();
      selectTab(TABS[(TABS.indexOf(name) + step + TABS.length) % TABS.length], true);
    });
  }
}

// --- signing in ----------------------------------------------------------------------------

function signIn(token) {
  const claims = tokenClaims(token);
  if (!claims || !/^[0-9]+$/.test(String(claims.sub))) {
    setStatus("who", "That is not a geo token (a JWT whose subject is a user id).");
    return;
  }
  state.token = token.trim();
  state.userId = Number(claims.sub);
  state.role = typeof claims.role === "string" ? claims.role : "user";
  setStatus("who", `Signed in as user ${state.userId} (${state.role}).`);
  for (const listener of listeners.signedIn) listener();
}

async function devSignIn(event) {
  event.preventDefault();
  if (!$("dev-signin").reportValidity()) return;
  const body = { user_id: Number($("dev-user").value), role: $("dev-role").value };
  try {
    const answer = await fetchJson("/v1/dev/token", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (!answer.ok) {
      setStatus("who", `Sign-in failed: ${problemText(answer.status, answer.body)}`);
      return;
    }
    $("token").value = answer.body.token;
    signIn(answer.body.token);
  } catch (error) {
    setStatus("who", `Sign-in failed: ${error.message}`);
  }
}

// --- nearby search -------------------------------------------------------------------------

function showRadius() {
  $("radius-out").textContent = formatDistance(Number($("radius").value));
}

async function runSearch() {
  if (!$("search-form").reportValidity()) return;
  const query = {
    latitude: $("lat").value.trim(),
    longitude: $("lon").value.trim(),
    radius: $("radius").value,
    limit: $("limit").value,
    category: $("category").value,
  };
  setStatus("search-status", "Searching…");
  let answer;
  try {
    answer = await fetchJson(`/v1/search/nearby?${searchQuery(query)}`);
  } catch (error) {
    setStatus("search-status", `The search failed: ${error.message}`);
    return;
  }
  if (!answer.ok) {
    setStatus("search-status", `The search failed: ${problemText(answer.status, answer.body)}`);
    return;
  }
  drawSearch(query, answer.body);
}

function drawSearch(query, body) {
  resultsLayer.clearLayers();
  const lat = Number(query.latitude);
  const lon = Number(query.longitude);
  const outline = circlePolygon(lat, lon, body.radius_m);
  const circle = L.polygon(outline, { color: "#1d5fb4", weight: 2, fillOpacity: 0.08, interactive: false });
  circle.addTo(resultsLayer);
  L.circleMarker([lat, lon], { radius: 4, color: "#1d5fb4", fillOpacity: 1 })
    .bindTooltip(textElement("span", "Search centre")).addTo(resultsLayer);

  const list = $("results");
  list.replaceChildren();
  const categories = $("categories");
  const known = new Set([...categories.options].map((o) => o.value));
  const results = body.businesses.map((business, i) => {
    const distance = formatDistance(business.distance_m);
    // A business across the antimeridian is drawn next to the centre, not a world away.
    const marker = L.circleMarker([business.latitude, nearLongitude(business.longitude, lon)], {
      radius: 6, color: "#8f2414", weight: 1, fillColor: "#e8553f", fillOpacity: 0.9,
      bubblingMouseEvents: false, // a click opens the card, not a search at that point
    }).bindTooltip(textElement("span", `${i + 1}. ${business.name}: ${distance}`)).addTo(resultsLayer);
    const item = document.createElement("li");
    item.dataset.id = String(business.id);
    item.dataset.distanceM = String(business.distance_m);
    item.append(textElement("span", business.name, "name"), " ",
      textElement("span", business.category || "", "category"), " ",
      textElement("span", distance, "distance"));
    item.tabIndex = 0;
    item.addEventListener("mouseenter", () => marker.openTooltip());
    item.addEventListener("mouseleave", () => marker.closeTooltip());
    item.addEventListener("click", () => showBusiness(business.id));
    item.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        showBusiness(business.id);
      }
    });
    marker.on("click", () => showBusiness(business.id));
    list.append(item);
    if (business.category && !known.has(business.category)) {
      known.add(business.category);
      categories.append(new Option(business.category));
    }
    return { ...business, marker };
  });
  state.search = { query, total: body.total, radiusM: body.radius_m, results, outline, circle };
  const shown = results.length < body.total ? `; the nearest ${results.length} are listed` : "";
  setStatus("search-status", `${body.total} found within ${formatDistance(body.radius_m)}${shown}.`);
  map.fitBounds(circle.getBounds(), { padding: [16, 16], maxZoom: 17 });
}

// --- start-up ------------------------------------------------------------------------------

async function loadConfig() {
  const answer = await fetchJson("/v1/page/config");
  if (!answer.ok) throw new Error(problemText(answer.status, answer.body));
  const config = answer.body;
  state.config = config;
  const radius = $("radius");
  radius.max = String(config.search.max_radius_m);
  radius.value = String(config.search.default_radius_m);
  $("dev-signin").hidden = !config.dev;
}

async function main() {
  setupTabs();
  $("dev-signin").addEventListener("submit", devSignIn);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value);
  });
  $("radius").addEventListener("input", showRadius);
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    runSearch();
  });
  map.on("click", (event) => {
    const lat = Math.max(-90, Math.min(90, event.latlng.lat));
    const lon = wrapLongitude(event.latlng.lng);
    if (state.mode === "search") {
      $("lat").value = toDegrees(lat);
      $("lon").value = toDegrees(lon);
      runSearch();
    } else if (listeners.mapClick[state.mode]) {
      listeners.mapClick[state.mode](toDegrees(lat), toDegrees(lon));
    }
  });
  try {
    await loadConfig();
  } catch (error) {
    setStatus("page-status", `The page could not load its configuration: ${error.message}`);
    return;
  }
  showRadius();
  const context = { state, map, onSignedIn: (f) => listeners.signedIn.push(f) };
  const people = setupPeople(context);
  listeners.mapClick.friends = setupFriends({ ...context, people });
  setupWatch(context);
  setStatus("page-status", state.config.dev ? "Ready (development mode: sign in with any user id)." : "Ready.");
  state.ready = true;
  drawWorld().catch((error) => setStatus("page-status", `The world outline could not be drawn: ${error.message}`));
}

main();
