// The map page: the map and world outline, the mode tabs, signing in, and nearby search.
// The friends panel lives in friends.js (the WebSocket) and people.js (requests, friends,
// display names), the watch panel in watch.js. Everything the page holds is in one state
// object, exposed as window.geoPage (the browser tests read it).

import { setupBusinessCard } from "./business.js";
import { $, fetchJson, problemText, setStatus, textElement } from "./dom.js";
import { setupFriends } from "./friends.js";
import {
  circlePolygon, formatDistance, nearLongitude, tokenClaims, unwrapGeometry, wrapLongitude,
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

// --- search: nearby (around a point) or this area (the map's view), refined by the filters ----

function showRadius() {
  $("radius-out").textContent = formatDistance(Number($("radius").value));
}

/** The filters as query parameters; "" for each one not set (only those set are sent). */
function filterQuery() {
  const q = $("q").value.trim();
  const sort = $("sort").value;
  return {
    limit: $("limit").value,
    category: $("category").value.trim(),
    q,
    price: $("price").value,
    min_rating: $("min-rating").value,
    open_now: $("open-now").checked ? "true" : "",
    // Distance is the default; relevance ranks by the words, and the API refuses it without them.
    sort: sort === "distance" || (sort === "relevance" && !q) ? "" : sort,
  };
}

/** Relevance is offered only with words to rank by. */
function showSorts() {
  const withWords = $("q").value.trim() !== "";
  $("sort").querySelector("option[value='relevance']").disabled = !withWords;
  if (!withWords && $("sort").value === "relevance") $("sort").value = "distance";
}

/**
 * The map's view as the area search's box: `bbox` is "west,south,east,north" in degrees, with
 * longitudes brought into [-180, 180] (west > east when the view crosses the 180th meridian,
 * every longitude when it is wider than the world); `drawn` is the box as shown (the view's
 * own longitudes) and `centreLon` where its results are drawn around.
 */
function viewBox(bounds) {
  const south = Math.max(-90, bounds.getSouth());
  const north = Math.min(90, bounds.getNorth());
  let west = -180;
  let east = 180;
  if (bounds.getEast() - bounds.getWest() < 360) {
    west = wrapLongitude(bounds.getWest());
    east = wrapLongitude(bounds.getEast());
    if (east === -180) east = 180; // the view ends at the meridian: its east edge is 180, not -180
  }
  const degrees = (value) => String(Number(value.toFixed(6))); // about 0.1 m; plain decimals
  return {
    bbox: [west, south, east, north].map(degrees).join(","),
    drawn: [[south, Math.max(bounds.getWest(), bounds.getEast() - 360)], [north, bounds.getEast()]],
    centreLon: bounds.getCenter().lng,
  };
}

let current = null; // the last search asked for, to run again when a filter changes
let asked = 0; // searches asked for: only the newest one's answer is drawn

async function runSearch() {
  if (!$("search-form").reportValidity()) return;
  const query = {
    latitude: $("lat").value.trim(),
    longitude: $("lon").value.trim(),
    radius: $("radius").value,
    ...filterQuery(),
  };
  current = runSearch;
  await fetchSearch("nearby", query, Number(query.longitude));
}

async function searchArea(box = viewBox(map.getBounds())) {
  current = () => searchArea(box);
  await fetchSearch("area", { bbox: box.bbox, ...filterQuery() }, box.centreLon, box);
}

async function fetchSearch(kind, query, centreLon, box = null) {
  const mine = ++asked;
  const params = new URLSearchParams(Object.entries(query).filter(([, value]) => value !== ""));
  setStatus("search-status", "Searching…");
  let answer;
  try {
    answer = await fetchJson(`/v1/search/${kind}?${params}`);
  } catch (error) {
    if (mine === asked) setStatus("search-status", `The search failed: ${error.message}`);
    return;
  }
  if (mine !== asked) return;
  if (!answer.ok) {
    setStatus("search-status", failureText(answer));
    return;
  }
  drawSearch(kind, query, answer.body, centreLon, box);
}

function failureText(answer) {
  const errors = (answer.body && Array.isArray(answer.body.errors)) ? answer.body.errors : [];
  const box = errors.find((e) => e.field === "bbox");
  if (box) return `This area ${box.message}. Zoom in, then search this area again.`;
  return `The search failed: ${problemText(answer.status, answer.body)}`;
}

function drawSearch(kind, query, body, centreLon, box) {
  resultsLayer.clearLayers();
  let outline = null;
  let circle = null;
  let frame = null;
  if (kind === "nearby") {
    const lat = Number(query.latitude);
    outline = circlePolygon(lat, centreLon, body.radius_m);
    circle = L.polygon(outline, { color: "#1d5fb4", weight: 2, fillOpacity: 0.08, interactive: false });
    circle.addTo(resultsLayer);
    L.circleMarker([lat, centreLon], { radius: 4, color: "#1d5fb4", fillOpacity: 1 })
      .bindTooltip(textElement("span", "Search centre")).addTo(resultsLayer);
  } else {
    frame = L.rectangle(box.drawn, { color: "#1d5fb4", weight: 2, fillOpacity: 0.04, interactive: false });
    frame.addTo(resultsLayer);
  }

  const list = $("results");
  list.replaceChildren();
  const categories = $("categories");
  const known = new Set([...categories.options].map((o) => o.value));
  const results = body.businesses.map((business, i) => {
    const distance = formatDistance(business.distance_m);
    // A business across the antimeridian is drawn next to the centre, not a world away.
    const marker = L.circleMarker([business.latitude, nearLongitude(business.longitude, centreLon)], {
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
  state.search = { kind, query, total: body.total, radiusM: body.radius_m, results, outline, circle, frame };
  const first = query.sort ? "first" : "nearest";
  const shown = results.length < body.total ? `; the ${first} ${results.length} are listed` : "";
  const where = kind === "nearby" ? `within ${formatDistance(body.radius_m)}` : "in this area";
  setStatus("search-status", `${body.total} found ${where}${shown}.`);
  if (circle) map.fitBounds(circle.getBounds(), { padding: [16, 16], maxZoom: 17 });
}

/** Enter in a filter's text field, or a change of another filter: the last search again. */
function searchAgain() {
  return current ? current() : runSearch();
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
    if ($("filters").contains(document.activeElement)) searchAgain(); // Enter in a filter's field
    else runSearch();
  });
  // Text fields search again on Enter (above), not on every change of focus.
  $("filters").addEventListener("change", (event) => {
    if (event.target.type !== "text" && current) current();
  });
  $("q").addEventListener("input", showSorts);
  $("area-button").addEventListener("click", () => searchArea());
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
  showSorts();
  const context = { state, map, onSignedIn: (f) => listeners.signedIn.push(f) };
  const people = setupPeople(context);
  listeners.mapClick.friends = setupFriends({ ...context, people });
  setupWatch(context);
  setStatus("page-status", state.config.dev ? "Ready (development mode: sign in with any user id)." : "Ready.");
  state.ready = true;
  drawWorld().catch((error) => setStatus("page-status", `The world outline could not be drawn: ${error.message}`));
}

main();
