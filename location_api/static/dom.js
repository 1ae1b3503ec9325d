// Small DOM helpers shared by the page's modules.

/** The element with this id (the page's elements all exist from the start). */
export const $ = (id) => document.getElementById(id);

/** Put a message in a status line (a live region: screen readers announce it). */
export function setStatus(id, text) {
  $(id).textContent = text;
}

/** An element with text content only (API strings never become markup). */
export function textElement(tag, text, className = "") {
  const element = document.createElement(tag);
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

/** What to tell the user about a failed API call (a problem document, or the status). */
export function problemText(status, body) {
  if (body && typeof body === "object" && typeof body.detail === "string") return body.detail;
  return `the server answered ${status}`;
}

/**
 * fetch, then the JSON body (or null when there is none) and the response headers. Throws
 * only on network errors.
 */
export async function fetchJson(url, options = {}) {
  const response = await fetch(url, options);
  let body = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) body = await response.json();
  return { ok: response.ok, status: response.status, body, headers: response.headers };
}
