"""The friends panel's people in a real browser: display names, requests sent, accepted,
declined and withdrawn, per-friend sharing and unfriending, against the real geo-api and
geo-friends (docs/friends-protocol.md, "Friendships over HTTP").

Two users are two pages (or one page and HTTP calls with the other user's token); what one
does reaches the other's page live, through the ``friend_request`` and ``friend_added``
frames and ``friend_left``.
"""

from __future__ import annotations

import orjson

from tests.friends_ws.ws_helpers import new_user

from .conftest import (
    NEAR,
    OSLO,
    OpenPage,
    Services,
    Tab,
    as_user,
    befriend_over_http,
    go_online,
    next_frame,
    raw_client,
    replicas_caught_up,
    sign_in_dev,
    status_is,
)

#: A display name that would be markup if the page ever used innerHTML with it.
EVIL = "<img src=x onerror=\"window.pwned=1\"><b>Eve</b> & 'co'"


def has(kind: str, user_id: int, extra: str = "") -> str:
    """A JavaScript test: the page's ``kind`` list (friends, incoming, outgoing) holds ``user_id``."""
    return f"s.people.{kind}.some(p => p.user_id === {user_id}{extra})"


async def row_text(tab: Tab, list_id: str, user_id: int, part: str = ".name") -> str | None:
    """The text of one part of a person's row in one of the panel's lists (None: no such row)."""
    row = tab.page.locator(f"#{list_id} li[data-user-id='{user_id}'] {part}")
    return await row.text_content() if await row.count() else None


async def shot(tab: Tab, name: str) -> None:
    """A screenshot with the panel scrolled to the status line and the lists under it."""
    await tab.page.eval_on_selector("#friends-status", "e => e.scrollIntoView({block: 'start'})")
    await tab.shot(name)


async def set_name(tab: Tab, name: str) -> None:
    await tab.page.click("#tab-friends")
    await tab.page.fill("#display-name", name)
    await tab.page.click("#display-name-button")
    await status_is(tab, f"Friends see you as “{name}”.")


async def ask(tab: Tab, user_id: int) -> None:
    await tab.page.fill("#friend-id", str(user_id))
    await tab.page.click("#befriend-button")


async def list_of(services: Services, user_id: int, kind: str) -> list[dict[str, object]]:
    """A list as the API gives it, once the replicas have every change made so far."""
    await replicas_caught_up(services.settings)
    body = await as_user(services, user_id, "GET", f"/friends?state={kind}")
    items: list[dict[str, object]] = body[kind]
    return items


async def test_a_request_is_accepted_live_and_names_show(open_page: OpenPage, services: Services) -> None:
    a, b = new_user(), new_user()
    alice, bob = await open_page(), await open_page()
    await sign_in_dev(alice, a)
    await sign_in_dev(bob, b)
    await set_name(alice, "Alice Ødegård")
    await set_name(bob, "Bob")
    await go_online(alice, OSLO)
    await go_online(bob, NEAR)
    assert await alice.state("s.friends.size") == 0  # nothing is shared before consent

    # Alice asks Bob from her page: her request is listed with "Withdraw".
    await ask(alice, b)
    await status_is(alice, f"Request sent to user {b}.")
    await alice.until(has("outgoing", b), "alice's request to be listed")
    assert await row_text(alice, "outgoing-list", b) == f"user {b}"
    assert await row_text(alice, "outgoing-list", b, "button") == "Withdraw"

    # Bob's page hears it live (no reload) and names Alice.
    await bob.until(f"s.people.frames.friend_request === 1 && {has('incoming', a)}", "the request on bob's page")
    await status_is(bob, "Alice Ødegård asks to be your friend.")
    assert await row_text(bob, "incoming-list", a) == "Alice Ødegård"
    await shot(bob, "people-request")

    # Bob accepts: each lists the other, named, and sees the other on the map.
    await bob.page.click(f"#incoming-list li[data-user-id='{a}'] button.accept")
    await status_is(bob, "You and Alice Ødegård are friends now.")
    await bob.until(f"{has('friends', a)} && s.people.incoming.length === 0", "alice in bob's friends")
    assert await row_text(bob, "people-list", a) == "Alice Ødegård"
    named_bob = has("friends", b, " && p.display_name === 'Bob'")
    await alice.until(f"s.people.frames.friend_added === 1 && {named_bob}", "bob in alice's friends, named")
    await alice.until("s.people.outgoing.length === 0", "alice's request to be answered")
    assert await row_text(alice, "people-list", b) == "Bob"
    assert await row_text(alice, "people-list", b, "select.sharing") is not None
    label = "(id) => s.friends.has(id) && s.friends.get(id).marker.getTooltip().getElement().textContent"
    assert await alice.until(f"({label})({b})", "bob's marker on alice's map") == "Bob"
    assert await bob.until(f"({label})({a})", "alice's marker on bob's map") == "Alice Ødegård"
    assert await row_text(alice, "friends-list", b) == "Bob"
    assert [f["user_id"] for f in await list_of(services, a, "friends")] == [b]
    await shot(alice, "people-friends")

    # Alice hides from Bob alone: Bob's page loses her marker ("offline", as if she left);
    # she still sees him.
    await alice.page.select_option(f"#people-list li[data-user-id='{b}'] select.sharing", "hidden")
    await status_is(alice, "Bob sees nothing of your location.")
    await bob.until(f"!s.friends.has({a}) && s.lastLeft && s.lastLeft.user_id === {a}", "alice to leave bob's map")
    assert await bob.state("s.lastLeft.reason") == "offline"
    assert await alice.state(f"s.friends.has({b})")
    assert [f["sharing"] for f in await list_of(services, a, "friends")] == ["hidden"]
    await shot(bob, "people-hidden")

    # Bob ends the friendship from his page: both lists are empty again.
    await bob.page.click(f"#people-list li[data-user-id='{a}'] button.unfriend")
    await status_is(bob, "You and Alice Ødegård are no longer friends.")
    await bob.until("s.people.friends.length === 0", "bob's friend list to empty")
    await alice.until(f"!{has('friends', b)} && !s.friends.has({b})", "bob to leave alice's lists")
    assert await list_of(services, a, "friends") == []
    alice.assert_no_errors()
    bob.assert_no_errors()


async def test_a_request_declined_and_one_withdrawn(open_page: OpenPage, services: Services) -> None:
    a, b, c = new_user(), new_user(), new_user()
    bob = await open_page()
    await sign_in_dev(bob, b)
    await go_online(bob, NEAR)

    # Alice asks over HTTP; Bob's page lists her ("user N": she has no name) and declines.
    await befriend_over_http(services, a, b, expect=202)
    await bob.until(has("incoming", a), "alice's request on bob's page")
    assert await row_text(bob, "incoming-list", a) == f"user {a}"
    await bob.page.click(f"#incoming-list li[data-user-id='{a}'] button.decline")
    await status_is(bob, f"You declined the request of user {a}.")
    await bob.until("s.people.incoming.length === 0", "the request to go")
    assert await bob.page.text_content("#incoming-list") == "None."
    assert await list_of(services, a, "outgoing") == [] and await list_of(services, b, "friends") == []

    # Bob asks Carol from the page, then withdraws.
    await ask(bob, c)
    await bob.until(has("outgoing", c), "bob's request to carol")
    assert [r["user_id"] for r in await list_of(services, c, "incoming")] == [b]
    await bob.page.click(f"#outgoing-list li[data-user-id='{c}'] button.withdraw")
    await status_is(bob, f"Your request to user {c} is withdrawn.")
    await bob.until("s.people.outgoing.length === 0", "the withdrawn request to go")
    assert await list_of(services, c, "incoming") == []

    # A refusal is the API's problem detail, in the status line.
    detail = await as_user(services, b, "POST", f"/friends/{b}", expect=400)
    await ask(bob, b)
    await status_is(bob, f"Could not ask user {b}: {detail['detail']}")
    await shot(bob, "people-declined")
    bob.assert_no_errors(expected="status of 400")  # Chromium logs the refused request itself


async def test_display_names_are_shown_as_text(open_page: OpenPage, services: Services) -> None:
    a, e = new_user(), new_user()
    await as_user(services, a, "PUT", "/profile", json={"display_name": "Ada"})
    await as_user(services, e, "PUT", "/profile", json={"display_name": EVIL})
    await befriend_over_http(services, e, a, expect=202)

    # Alice's page reads her name and the waiting request when she signs in.
    alice = await open_page()
    await sign_in_dev(alice, a)
    assert await alice.page.input_value("#display-name") == "Ada"
    await alice.page.click("#tab-friends")
    assert await row_text(alice, "incoming-list", e) == EVIL
    await alice.page.click(f"#incoming-list li[data-user-id='{e}'] button.accept")
    await alice.until(has("friends", e), "eve in alice's friends")
    assert await row_text(alice, "people-list", e) == EVIL

    # Eve comes into view: her marker's label is her name, as text.
    ws = await raw_client(services, e)
    try:
        await ws.send(orjson.dumps({"type": "location", "latitude": NEAR[0], "longitude": NEAR[1]}).decode())
        await next_frame(ws, "init")
        await go_online(alice, OSLO)
        label = f"s.friends.has({e}) && s.friends.get({e}).marker.getTooltip().getElement().textContent"
        assert await alice.until(label, "eve's marker") == EVIL
        assert await row_text(alice, "friends-list", e) == EVIL
        await alice.page.select_option(f"#people-list li[data-user-id='{e}'] select.sharing", "coarse")
        await status_is(alice, f"{EVIL} sees only roughly where you are (about 1 km).")
    finally:
        await ws.close()
    markup = await alice.page.evaluate("() => [document.querySelectorAll('img, b').length, window.pwned === undefined]")
    assert markup == [0, True]
    # A long name wraps: at 360 px nothing scrolls sideways.
    await alice.page.set_viewport_size({"width": 360, "height": 740})
    widths = await alice.page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth,"
        " document.getElementById('people-list').scrollWidth, document.getElementById('people-list').clientWidth]"
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[3], widths
    await shot(alice, "people-names-as-text")
    alice.assert_no_errors()
