"""Nearby strangers on the map page, in a real browser against the real geo-friends
(docs/friends-protocol.md, "Nearby strangers"; docs/map.md): the switch and the handle, the
strangers shown as grey markers named only by their handle, and what takes them away."""

from __future__ import annotations

import orjson

from tests.friends_ws.ws_helpers import new_user

from .conftest import NEAR, OSLO, OpenPage, Services, go_online, next_frame, raw_client, sign_in_dev, status_is

LIST = "Array.from(document.querySelectorAll('#strangers-list li')).map(li => li.textContent)"


async def test_strangers_are_shown_by_handle_and_leave(open_page: OpenPage, services: Services) -> None:
    a, b = new_user(), new_user()
    tab = await open_page()
    await sign_in_dev(tab, a)
    await go_online(tab, OSLO)
    # Off until the user turns it on: nobody is shown, and the page says why.
    assert await tab.state("s.strangers.size") == 0
    await tab.page.fill("#handle", "not ok!")
    await tab.page.click("#discover")
    await status_is(tab, "A handle is 3 to 30 letters, digits, '_', '.' or '-' (or empty for none).")
    assert await tab.state("s.discover") is None  # nothing was sent
    await tab.page.fill("#handle", "ada.oslo")
    await tab.page.click("#discover")
    await tab.until("s.discover && s.discover.enabled && s.discover.handle === 'ada.oslo'", "discovery on")
    hint = await tab.page.text_content("#discover-hint")
    assert hint is not None and "ada.oslo" in hint

    # A stranger nearby who turned it on too, with a handle: a grey marker named by it, never an id.
    bob = await raw_client(services, b)
    try:
        await bob.send(orjson.dumps({"type": "location", "latitude": NEAR[0], "longitude": NEAR[1]}).decode())
        await next_frame(bob, "init")
        await bob.send(orjson.dumps({"type": "discover", "enabled": True, "handle": "bob_b"}).decode())
        await next_frame(bob, "discover")
        seen = await next_frame(bob, "stranger")
        assert seen["handle"] == "ada.oslo" and str(a) not in orjson.dumps(seen).decode()
        await tab.until("s.strangers.size === 1", "bob on the map")
        rows = await tab.state(LIST)
        assert len(rows) == 1 and rows[0].startswith("bob_b about ")
        label = "[...s.strangers.values()][0].marker.getTooltip().getElement().textContent"
        assert await tab.state(label) == "bob_b"
        await tab.shot("strangers")

        # He signs out: the marker goes, and the status line says so.
        await bob.send(orjson.dumps({"type": "sign_out"}).decode())
        await tab.until("s.strangers.size === 0", "bob off the map")
        await status_is(tab, "bob_b went offline.")
    finally:
        await bob.close()

    # Turning it off clears the list.
    await tab.page.click("#discover")
    await tab.until("s.discover && !s.discover.enabled", "discovery off")
    await status_is(tab, "Discovery is off.")
    tab.assert_no_errors()
