// Pure helpers of the map page: geometry on the sphere, formatting, token reading.
// No DOM, no network: app.js feeds them numbers and draws what they return.

/** Radius of the sphere the services measure on, metres (geo_index.haversine_m). */
export const EARTH_RADIUS_M = 6371008.8;

const RAD = Math.PI / 180;

/** A longitude brought into [-180, 180), degrees. */
export function wrapLongitude(lon) {
  if (lon >= -180 && lon < 180) return lon; // exactly as given: no rounding from arithmetic
  const wrapped = ((((lon + 180) % 360) + 360) % 360) - 180;
  return Object.is(wrapped, -0) ? 0 : wrapped;
}

/**
 * The copy of `lon` (degrees, plus or minus whole turns) nearest to `ref`, so that a point
 * just across the 180th meridian is drawn next to a centre on the other side.
 */
export function nearLongitude(lon, ref) {
  return lon + 360 * Math.round((ref - lon) / 360); // whole turns only: lon itself when already near
}

/** Great-circle distance between two points given in degrees, metres. */
export function haversineM(lat1, lon1, lat2, lon2) {
  const dLat = (lat2 - lat1) * RAD;
  const dLon = (lon2 - lon1) * RAD;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

/** The point `distanceM` metres from (lat, lon) on initial bearing `bearingDeg`, degrees. */
export function destination(lat, lon, bearingDeg, distanceM) {
  const delta = distanceM / EARTH_RADIUS_M;
  const theta = bearingDeg * RAD;
  const phi1 = lat * RAD;
  const sinPhi2 = Math.sin(phi1) * Math.cos(delta) + Math.cos(phi1) * Math.sin(delta) * Math.cos(theta);
  const phi2 = Math.asin(Math.max(-1, Math.min(1, sinPhi2)));
  const lambda = Math.atan2(
    Math.sin(theta) * Math.sin(delta) * Math.cos(phi1),
    Math.cos(delta) - Math.sin(phi1) * Math.sin(phi2),
  );
  return [phi2 / RAD, lon + lambda / RAD];
}

/**
 * The outline of the circle of `radiusM` metres around (lat, lon), as `steps` [lat, lon]
 * points in degrees. Longitudes are continuous around the centre's (they may pass 180 or
 * -180), so the outline is drawn in one piece across the antimeridian.
 */
export function circlePolygon(lat, lon, radiusM, steps = 128) {
  const points = [];
  let previous = lon;
  for (let i = 0; i < steps; i += 1) {
    const [pLat, pLon] = destination(lat, lon, (360 * i) / steps, radiusM);
    previous = nearLongitude(pLon, previous);
    points.push([pLat, previous]);
  }
  return points;
}

/**
 * A GeoJSON ring ([lon, lat] points, degrees) with continuous longitudes: a coastline that
 * crosses the antimeridian runs on past 180 instead of jumping to -180 (which a flat map
 * draws as a band round the whole world). A ring that goes once round a pole (Antarctica)
 * is closed along that pole.
 */
export function unwrapRing(ring) {
  const out = [];
  let previous = null;
  let latSum = 0;
  for (const [lon, lat] of ring) {
    const l = previous === null ? lon : nearLongitude(lon, previous);
    out.push([l, lat]);
    previous = l;
    latSum += lat;
  }
  if (out.length > 1 && Math.abs(out[out.length - 1][0] - out[0][0]) > 180) {
    const pole = latSum > 0 ? 90 : -90;
    out.push([out[out.length - 1][0], pole], [out[0][0], pole], out[0]);
  }
  return out;
}

/** A GeoJSON geometry whose polygon rings are unwrapped (see unwrapRing); others unchanged. */
export function unwrapGeometry(geometry) {
  if (!geometry) return geometry;
  if (geometry.type === "Polygon") return { ...geometry, coordinates: geometry.coordinates.map(unwrapRing) };
  if (geometry.type === "MultiPolygon") {
    return { ...geometry, coordinates: geometry.coordinates.map((polygon) => polygon.map(unwrapRing)) };
  }
  return geometry;
}

/** A distance for people: "373 m" under a kilometre, else "1.20 km". */
export function formatDistance(metres) {
  const whole = Math.round(metres); // 999.5 m is "1.00 km", not "1000 m"
  return whole < 1000 ? `${whole} m` : `${(metres / 1000).toFixed(2)} km`;
}

/** How long ago something was seen: "just now", "12 s ago", "3 min ago", "2 h ago". */
export function formatAge(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 2) return "just now";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

/** An interval for people, given in seconds: "30 s", "5 min", "1 min 30 s", "2 h". */
export function formatInterval(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s / 60} min`;
  const m = Math.round((s % 3600) / 60);
  return m ? `${Math.floor(s / 3600)} h ${m} min` : `${Math.floor(s / 3600)} h`;
}

/**
 * The server's clock now, Unix milliseconds, from the last time it said (`clock.at`, such as
 * init's `at`) plus the time elapsed since that frame arrived (`clock.receivedAt` and
 * `monotonicMs`, both performance.now() readings). The browser's own date is never compared
 * with the server's timestamps: it may be minutes off, and ages would be wrong by as much.
 */
export function serverNow(clock, monotonicMs) {
  return clock.at + Math.max(0, monotonicMs - clock.receivedAt);
}

/**
 * The claims of a JWT, read without checking the signature (the services check it; the page
 * only shows who it signed in as). Null when it is not a JWT.
 */
export function tokenClaims(token) {
  const parts = String(token).trim().split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const claims = JSON.parse(json);
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}
