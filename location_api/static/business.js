// The business card: a search result's details (GET /v1/businesses/{id}), with its opening
// hours and "open now" in the business's own local time. Times are read from the answer's
// text (next_change carries the business's offset), never through the browser's clock or
// time zone, so the card says the same wherever it is read.

import { $, fetchJson, problemText, setStatus, textElement } from "./dom.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_NAMES = { mon: "Mon", tue: "Tue", wed: "Wed", thu: "Thu", fri: "Fri", sat: "Sat", sun: "Sun" };

/** "07:00–18:00, 19:00–23:00", or "Closed" for a day without intervals. */
export function intervalsText(intervals) {
  if (!intervals || intervals.length === 0) return "Closed";
  return intervals.map(([opens, closes]) => `${opens}–${closes}`).join(", ");
}

/** The week's rows: [day name, intervals text], Monday first. */
export function weekRows(hours) {
  return DAYS.map((day) => [DAY_NAMES[day], intervalsText(hours.weekly[day])]);
}

/** "Mon 07:00" of a local time with its offset, "2026-12-07T07:00:00+01:00". */
export function localWhen(text) {
  const [date, time] = text.split("T");
  const [year, month, day] = date.split("-").map(Number);
  const weekday = DAYS[(new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 6) % 7];
  return `${DAY_NAMES[weekday]} ${date.slice(5)} ${time.slice(0, 5)}`;
}

/** What the card says of now: open or closed, and when that changes, in local time. */
export function openText(detail) {
  if (detail.open_now === null) return "Opening hours not known";
  if (detail.next_change === null) return detail.open_now ? "Open around the clock" : "Closed, no opening ahead";
  const when = localWhen(detail.next_change);
  return detail.open_now ? `Open now, closes ${when}` : `Closed now, opens ${when}`;
}

/** "$$ · ★ 4.3 (128 reviews)", the parts that are known. */
export function ratingText(detail) {
  const parts = [];
  if (detail.price_level) parts.push("$".repeat(detail.price_level));
  if (detail.rating !== null) {
    const reviews = detail.review_count === 1 ? "1 review" : `${detail.review_count} reviews`;
    parts.push(`★ ${detail.rating.toFixed(1)} (${reviews})`);
  }
  return parts.join(" · ");
}

function link(href, text) {
  const a = textElement("a", text);
  a.href = href;
  a.rel = "noopener noreferrer";
  return a;
}

function drawCard(detail) {
  $("card-name").textContent = detail.name;
  $("card-category").textContent = [detail.category, ratingText(detail)].filter(Boolean).join(" · ");
  $("card-address").textContent = detail.address;
  $("card-open").textContent = openText(detail);
  $("card-zone").textContent = `Local time: ${detail.time_zone}`;
  const rows = $("card-hours");
  rows.replaceChildren();
  if (detail.hours) {
    for (const [day, text] of weekRows(detail.hours)) {
      const row = document.createElement("tr");
      row.append(textElement("th", day), textElement("td", text));
      rows.append(row);
    }
    for (const exception of detail.hours.exceptions) {
      const row = document.createElement("tr");
      row.append(textElement("th", exception.date), textElement("td", intervalsText(exception.intervals)));
      rows.append(row);
    }
  }
  const contact = $("card-contact");
  contact.replaceChildren();
  if (detail.phone) contact.append(link(`tel:${detail.phone.replace(/[^+0-9]/g, "")}`, detail.phone));
  // The API accepts http and https addresses only; the check here keeps any other scheme out.
  if (detail.website && /^https?:\/\//.test(detail.website)) {
    if (detail.phone) contact.append(" · ");
    const site = link(detail.website, new URL(detail.website).host);
    site.target = "_blank";
    contact.append(site);
  }
  $("business-card").hidden = false;
  $("business-card").scrollIntoView({ block: "nearest" });
}

/** Set up the card; returns show(id), which reads a business and draws it. */
export function setupBusinessCard(state) {
  $("card-close").addEventListener("click", () => {
    $("business-card").hidden = true;
    state.card = null;
  });
  return async function show(id) {
    setStatus("card-status", "Loading…");
    let answer;
    try {
      answer = await fetchJson(`/v1/businesses/${encodeURIComponent(id)}`);
    } catch (error) {
      setStatus("card-status", `The business could not be read: ${error.message}`);
      return;
    }
    if (!answer.ok) {
      setStatus("card-status", `The business could not be read: ${problemText(answer.status, answer.body)}`);
      return;
    }
    setStatus("card-status", "");
    state.card = answer.body;
    drawCard(answer.body);
  };
}
