// The people of the friends panel, over HTTP on geo-api (docs/friends-protocol.md,
// "Friendships over HTTP"): the user's display name, friend requests both ways, and the
// friends with what the user shares with each. friends.js hands over the WebSocket frames
// that concern them (friend_request, friend_added, friend_left "unfriended") and names the
// markers on the map with nameOf.
//
// Display names are chosen by their users: they only ever become text (textContent,
// attributes), never markup.

import { $, fetchJson, problemText, setStatus, textElement } from "./dom.js";
import { formatAge } from "./geo.js";

const CONSISTENCY = "X-Consistency-Token";
/** Rows per list request (the API's most) and pages at most, beyond GEO_MAX_FRIENDS (5,000). */
const PAGE_LIMIT = 500;
const MAX_PAGES = 20;
/**
 * A frame can arrive before the replica the lists are read from has the change it announces
 * (the other user's write, whose consistency token this page never sees): the list is asked
 * again after these pauses until it agrees with the frame.
 */
const RETRY_MS = [250, 500, 1000, 2000, 4000];
const LISTS = ["friends", "incoming", "outgoing"];

const SHARING_SEES = {
  exact: "your location as precisely as you share it",
  coarse: "only roughly where you are (about 1 km)",
  hidden: "nothing of your location",
};

const REMOVED = {
  friendship: (name) => `You and ${name} are no longer friends.`,
  request_withdrawn: (name) => `Your request to ${name} is withdrawn.`,
  request_declined: (name) => `You declined the request of ${name}.`,
  nothing: (name) => `There was no request or friendship with ${name} to end.`,
};

/** How the page names a user: their display name, or "user N" ("User N" to start a sentence). */
export function personName(userId, displayName, { start = false } = {}) {
  if (typeof displayName === "string" && displayName !== "") return displayName;
  return `${start ? "User" : "user"} ${userId}`;
}

export function setupPeople({ state, onSignedIn }) {
  const people = {
    loaded: false,
    displayName: null,
    friends: [], // [{user_id, display_name, since, sharing}], by user id
    incoming: [], // [{user_id, display_name, since}]
    outgoing: [], // [{user_id, since}]
    names: new Map(), // user_id -> display name, of friends and of users who asked
    consistency: null, // the last write's X-Consistency-Token: reads send it back
    frames: { friend_request: 0, friend_added: 0 },
  };
  state.people = people;
  const nameListeners = [];
  // Users this page is changing a relation with right now: a frame about that change tells
  // nothing new, and must not overwrite what the answer says in the status line.
  const busy = new Set();
  let round = 0; // answers for an earlier sign-in are dropped
  const fetched = { friends: 0, incoming: 0, outgoing: 0 }; // the newest fetch of each list
  const shown = { friends: 0, incoming: 0, outgoing: 0 }; // the fetch each list shows

  const status = (text) => setStatus("friends-status", text);
  const nameOf = (userId, options) => personName(userId, people.names.get(userId), options);

  /** One call for the signed-in user; network failures come back as answers too. */
  async function call(method, path, body) {
    const headers = { Authorization: `Bearer ${state.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method === "GET" && people.consistency) headers[CONSISTENCY] = people.consistency;
    const options = { method, headers };
    if (body !== undefined) options.body = JSON.stringify(body);
    try {
      const answer = await fetchJson(`/v1/users/${state.userId}${path}`, options);
      const token = answer.headers.get(CONSISTENCY);
      if (answer.ok && method !== "GET" && token) people.consistency = token;
      return answer;
    } catch (error) {
      return { ok: false, status: 0, body: { detail: error.message }, headers: new Headers() };
    }
  }

  // --- names ----------------------------------------------------------------------------------

  function learnNames() {
    const names = new Map();
    for (const item of [...people.incoming, ...people.friends]) {
      if (item.display_name) names.set(item.user_id, item.display_name);
    }
    setNames(names);
  }

  function setNames(names) {
    const before = people.names;
    people.names = names;
    const changed = names.size !== before.size || [...names].some(([id, name]) => before.get(id) !== name);
    if (changed) for (const listener of nameListeners) listener();
  }

  function learnName(userId, displayName) {
    if (!displayName || people.names.get(userId) === displayName) return;
    setNames(new Map(people.names).set(userId, displayName));
  }

  // --- the lists ------------------------------------------------------------------------------

  async function fetchList(kind) {
    const items = [];
    let cursor = null;
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const query = new URLSearchParams({ state: kind, limit: String(PAGE_LIMIT) });
      if (cursor) query.set("cursor", cursor);
      const answer = await call("GET", `/friends?${query}`);
      if (!answer.ok) return { ok: false, text: problemText(answer.status, answer.body) };
      if (!Array.isArray(answer.body?.[kind])) return { ok: false, text: `the answer holds no ${kind} list` };
      items.push(...answer.body[kind]);
      cursor = answer.body.next;
      if (!cursor) break;
    }
    return { ok: true, items };
  }

  /**
   * Read the lists named again and show them. With `until` ({kind, userId, present}), a
   * list that does not agree with a frame yet is read again after a pause (see RETRY_MS).
   */
  async function refresh(kinds, until = null) {
    const mine = round;
    const read = await Promise.all(kinds.map(async (kind) => {
      for (let attempt = 0; ; attempt += 1) {
        fetched[kind] += 1;
        const seq = fetched[kind];
        const result = await fetchList(kind);
        if (mine !== round) return null;
        if (!result.ok) {
          status(`Could not read your ${kind === "friends" ? "friends" : `${kind} requests`}: ${result.text}`);
          return null;
        }
        const agrees = !until || until.kind !== kind
          || result.items.some((item) => item.user_id === until.userId) === until.present;
        if (agrees || attempt >= RETRY_MS.length) return { kind, seq, items: result.items };
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS[attempt]));
        if (mine !== round) return null;
      }
    }));
    if (mine !== round) return;
    // All at once, so the lists and what the page shows of them never differ.
    for (const list of read) {
      if (!list || list.seq < shown[list.kind]) continue; // a newer read is shown already
      shown[list.kind] = list.seq;
      people[list.kind] = list.items;
    }
    learnNames();
    render();
  }

  async function loadAll() {
    const mine = round;
    const answer = await call("GET", "/profile");
    if (mine !== round) return;
    if (answer.ok) {
      people.displayName = answer.body.display_name;
      $("display-name").value = answer.body.display_name || "";
    } else {
      status(`Could not read your profile: ${problemText(answer.status, answer.body)}`);
    }
    await refresh(LISTS);
    if (mine === round) people.loaded = true;
  }

  // --- drawing --------------------------------------------------------------------------------

  function button(text, className, label, onClick) {
    const element = textElement("button", text, className);
    element.type = "button";
    element.setAttribute("aria-label", label);
    element.addEventListener("click", () => {
      element.disabled = true; // the list is drawn again once the server has answered
      onClick();
    });
    return element;
  }

  function since(item, verb) {
    const at = Date.parse(item.since);
    return Number.isNaN(at) ? "" : `${verb} ${formatAge(Date.now() - at)}`;
  }

  /** A person's row: the name, when they asked (if shown), and the controls kept together. */
  function row(item, age, ...controls) {
    const li = document.createElement("li");
    li.dataset.userId = String(item.user_id);
    const actions = document.createElement("span");
    actions.className = "actions";
    actions.append(...controls);
    li.append(textElement("span", nameOf(item.user_id), "name"));
    if (age) li.append(textElement("span", age, "age"));
    li.append(actions);
    return li;
  }

  function fill(listId, items, draw) {
    const list = $(listId);
    list.replaceChildren(...(items.length ? items.map(draw) : [textElement("li", "None.", "empty")]));
  }

  function sharingSelect(friend) {
    const select = document.createElement("select");
    select.className = "sharing";
    select.setAttribute("aria-label", `What ${nameOf(friend.user_id)} sees of you`);
    for (const value of Object.keys(SHARING_SEES)) select.append(new Option(value, value));
    select.value = friend.sharing;
    select.addEventListener("change", () => setSharing(friend, select));
    return select;
  }

  function render() {
    fill("incoming-list", people.incoming, (item) => row(item, since(item, "asked"),
      button("Accept", "accept", `Accept ${nameOf(item.user_id)}`, () => befriend(item.user_id)),
      button("Decline", "decline secondary", `Decline ${nameOf(item.user_id)}`, () => remove(item.user_id))));
    fill("outgoing-list", people.outgoing, (item) => row(item, since(item, "asked"),
      button("Withdraw", "withdraw secondary", `Withdraw the request to ${nameOf(item.user_id)}`,
        () => remove(item.user_id))));
    fill("people-list", people.friends, (friend) => row(friend, "",
      sharingSelect(friend),
      button("Unfriend", "unfriend secondary", `Unfriend ${nameOf(friend.user_id)}`, () => remove(friend.user_id))));
  }

  // --- changes --------------------------------------------------------------------------------

  function signedIn() {
    if (state.token) return true;
    status("Sign in first.");
    return false;
  }

  /** Run `change` (a call about `userId`, then the lists read again) with the user marked busy. */
  async function changing(userId, change) {
    if (!signedIn()) return;
    busy.add(userId);
    try {
      await change();
      await refresh(LISTS);
    } finally {
      busy.delete(userId);
    }
  }

  /** Ask `userId` to be friends, or accept their request (the same call). */
  const befriend = (userId) => changing(userId, async () => {
    const answer = await call("POST", `/friends/${encodeURIComponent(userId)}`);
    if (!answer.ok) {
      status(`Could not ask ${nameOf(userId)}: ${problemText(answer.status, answer.body)}`);
    } else if (answer.body.state === "requested") {
      status(`Request sent to ${nameOf(userId)}.`);
    } else {
      status(answer.status === 201
        ? `You and ${nameOf(userId)} are friends now.`
        : `You and ${nameOf(userId)} were already friends.`);
    }
  });

  /** Withdraw a request, decline one, or end a friendship (the same call). */
  const remove = (userId) => changing(userId, async () => {
    const name = nameOf(userId);
    const answer = await call("DELETE", `/friends/${encodeURIComponent(userId)}`);
    if (answer.ok) status((REMOVED[answer.body.removed] || REMOVED.nothing)(name));
    else status(`Could not change that: ${problemText(answer.status, answer.body)}`);
  });

  async function setSharing(friend, select) {
    const value = select.value;
    select.disabled = true;
    const answer = await call("PUT", `/friends/${friend.user_id}/sharing`, { sharing: value });
    select.disabled = false;
    if (answer.ok) {
      friend.sharing = answer.body.sharing;
      status(`${nameOf(friend.user_id, { start: true })} sees ${SHARING_SEES[answer.body.sharing]}.`);
    } else {
      select.value = friend.sharing; // what the server still holds
      status(`Could not change what ${nameOf(friend.user_id)} sees: ${problemText(answer.status, answer.body)}`);
    }
  }

  async function saveName(event) {
    event.preventDefault();
    if (!$("profile-form").reportValidity() || !signedIn()) return;
    const typed = $("display-name").value.trim();
    const answer = await call("PUT", "/profile", { display_name: typed || null });
    if (!answer.ok) {
      status(`Could not save your name: ${problemText(answer.status, answer.body)}`);
      return;
    }
    people.displayName = answer.body.display_name;
    $("display-name").value = answer.body.display_name || "";
    status(answer.body.display_name
      ? `Friends see you as “${answer.body.display_name}”.`
      : `Your name is cleared: friends see you as user ${state.userId}.`);
  }

  // --- frames from geo-friends ----------------------------------------------------------------

  /** Show what a frame announced at once, until the list read again confirms it. */
  function addItem(kind, item) {
    if (people[kind].some((known) => known.user_id === item.user_id)) return;
    const added = { ...item, since: new Date().toISOString() };
    people[kind] = [...people[kind], added].sort((a, b) => a.user_id - b.user_id);
  }

  function onFrame(frame) {
    const id = frame.user_id;
    switch (frame.type) {
      case "friend_request":
        people.frames.friend_request += 1;
        learnName(id, frame.display_name);
        addItem("incoming", { user_id: id, display_name: frame.display_name });
        render();
        status(`${nameOf(id, { start: true })} asks to be your friend.`);
        refresh(["incoming"], { kind: "incoming", userId: id, present: true });
        break;
      case "friend_added":
        people.frames.friend_added += 1;
        learnName(id, frame.display_name);
        if (!busy.has(id) && !people.friends.some((item) => item.user_id === id)) {
          status(`${nameOf(id, { start: true })} is your friend now.`);
        }
        people.incoming = people.incoming.filter((item) => item.user_id !== id);
        people.outgoing = people.outgoing.filter((item) => item.user_id !== id);
        addItem("friends", { user_id: id, display_name: frame.display_name, sharing: "exact" });
        render();
        refresh(LISTS, { kind: "friends", userId: id, present: true });
        break;
      case "friend_left":
        if (frame.reason === "unfriended") {
          people.friends = people.friends.filter((item) => item.user_id !== id);
          render();
          refresh(["friends"], { kind: "friends", userId: id, present: false });
        }
        break;
      default:
        break;
    }
  }

  // --- wiring ---------------------------------------------------------------------------------

  $("profile-form").addEventListener("submit", saveName);
  $("befriend-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if ($("befriend-form").reportValidity()) befriend(Number($("friend-id").value));
  });
  onSignedIn(() => {
    round += 1;
    Object.assign(people, {
      loaded: false, displayName: null, friends: [], incoming: [], outgoing: [], consistency: null,
    });
    setNames(new Map());
    $("display-name").value = "";
    render();
    loadAll();
  });
  render();

  return {
    nameOf,
    onFrame,
    /** Whether this page is changing its relation with `userId` right now. */
    busy: (userId) => busy.has(userId),
    /** Call `listener` whenever a known display name changes. */
    onNamesChanged: (listener) => nameListeners.push(listener),
  };
}
