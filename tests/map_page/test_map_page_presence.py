"""The friends panel across connections, in a real browser against the real geo-friends
(docs/friends-protocol.md): last seen, `reconnect` and resumption, `pace`, and `sign_out`.

The page's WebSocket goes through the test (:func:`relay`), which sees every frame both ways
and can add frames as the server would (a `reconnect`, a `pace`). Time is Playwright's fake
clock where it matters: the clock is paused and moved on by the test, so nothing here
depends on how fast the machine is: the page's timers fire exactly when the test moves the
clock past them, and not before.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import orjson
from playwright.async_api import Page

from tests.friends_ws.ws_helpers import TIMEOUT_FACTOR, new_user

from .conftest import (
    NEAR,
    OSLO,
    OpenPage,
    Relay,
    Services,
    Tab,
    befriend_over_http,
    go_online,
    next_frame,
    raw_client,
    relay,
    replicas_caught_up,
    sign_in_dev,
    status_is,
)

#: The page's browser clock is this far ahead of the server's: ages must not depend on it
#: (measured on the browser's clock, every friend would be "3 h ago").
SKEW = timedelta(hours=3)


async def friends(services: Services, a: int, b: int) -> None:
    await befriend_over_http(services, a, b, expect=202)
    await befriend_over_http(services, b, a, expect=201)
    await replicas_caught_up(services.settings)


async def age_text(tab: Tab, user_id: int) -> str | None:
    return await tab.page.text_content(f"#friends-list li[data-user-id='{user_id}'] .age")


async def shot(tab: Tab, name: str) -> None:
    """A screenshot with the panel scrolled to the status line, the pace and the In range list."""
    await tab.page.eval_on_selector("#friends-status", "e => e.scrollIntoView({block: 'start'})")
    await tab.shot(name)


async def pause(tab: Tab) -> None:
    """Stop the page's clock (a second on from its time now): its timers fire only when the
    test runs the clock on."""
    now_ms = await tab.state("Date.now()")
    await tab.page.clock.pause_at(datetime.fromtimestamp(now_ms / 1000 + 1, UTC))


async def server_gone(services: Services, user_id: int) -> None:
    """Wait until geo-friends has let go of every connection of ``user_id``."""
    deadline = time.monotonic() + 10 * TIMEOUT_FACTOR
    while user_id in services.friends.hub.subscriptions.owners:
        assert time.monotonic() < deadline, f"user {user_id}'s connection is still open on the server"
        await asyncio.sleep(0.02)


async def test_a_friend_whose_socket_closes_stays_with_an_age(open_page: OpenPage, services: Services) -> None:
    a, b, c = new_user(), new_user(), new_user()
    await friends(services, a, b)
    await friends(services, a, c)

    async def skewed(page: Page) -> None:
        await page.clock.install(time=datetime.now(UTC) + SKEW)

    alice = await open_page(before=skewed)
    await sign_in_dev(alice, a)
    bob_ws, carol_ws = await raw_client(services, b), await raw_client(services, c)
    try:
        await bob_ws.send(orjson.dumps({"type": "location", "latitude": NEAR[0], "longitude": NEAR[1]}).decode())
        await next_frame(bob_ws, "init")
        await go_online(alice, OSLO)
        await alice.until(f"s.friends.has({b}) && s.clock", "bob on alice's map")
        # The age comes from the server's clock (init's at), not the browser's, hours off.
        assert await alice.state("Math.abs(s.clock.at - Date.now()) > 2 * 3600 * 1000")
        age = await age_text(alice, b)
        assert age is not None and (age == "just now" or age.endswith(" s ago")), age

        # Bob's socket closes: he stays on Alice's map. Carol moves after the server let go
        # of Bob (on the same pub/sub): had Bob's close been news, it would have come first.
        await bob_ws.close()
        await server_gone(services, b)
        await carol_ws.send(orjson.dumps({"type": "location", "latitude": NEAR[0], "longitude": NEAR[1]}).decode())
        await next_frame(carol_ws, "init")
        await alice.until(f"s.friends.has({c})", "carol on alice's map")
        assert await alice.state(f"s.friends.has({b}) && s.lastLeft === null && !s.frames.friend_left")

        # Four minutes on (on the page's clock only: the server's friend positions stay as
        # they are), Bob was last seen four minutes ago (five on a machine slow enough to
        # take a minute over the steps above).
        await alice.page.clock.run_for(4 * 60 * 1000)
        shown = f"document.querySelector(\"#friends-list li[data-user-id='{b}'] .age\").textContent"
        await alice.until(f"['4 min ago', '5 min ago'].includes({shown})", "bob's age to reach four minutes")
        assert await alice.state(f"s.friends.has({b})")
        await shot(alice, "presence-last-seen")
    finally:
        await bob_ws.close()
        await carol_ws.close()
    alice.assert_no_errors()


async def test_a_reconnect_frame_resumes_with_the_markers_kept(open_page: OpenPage, services: Services) -> None:
    a, b = new_user(), new_user()
    await friends(services, a, b)
    routes = Relay()

    async def routed_and_paused(page: Page) -> None:
        await relay(page, routes)
        await page.clock.install()

    alice = await open_page(before=routed_and_paused)
    await sign_in_dev(alice, a)
    bob_ws = await raw_client(services, b)
    try:
        await bob_ws.send(orjson.dumps({"type": "location", "latitude": NEAR[0], "longitude": NEAR[1]}).decode())
        await next_frame(bob_ws, "init")
        await go_online(alice, OSLO)
        await alice.until(f"s.friends.has({b}) && s.frames.pace", "bob on alice's map, and the pace")
        await alice.state(f"(s.friends.get({b}).marker.kept = true)")  # a mark on this very marker
        await pause(alice)
        # Out of step with the panel's one-second tick: the countdown keeps its own time.
        await alice.page.clock.run_for(300)
        first = routes.last
        assert [f["type"] for f in first.from_server][:1] == ["init"]
        assert "resume" not in first.sent("location")[0]

        # The server is restarting: the page counts down, and reconnects after after_ms.
        first.to_page(type="reconnect", after_ms=5000)
        await status_is(alice, "Server restarting, reconnecting in 5 s.")
        await alice.page.clock.run_for(1000)
        await status_is(alice, "Server restarting, reconnecting in 4 s.")
        # The server closes first (1001, as a drain does at its time): the page still waits.
        await first.page.close(code=1001, reason="server draining: reconnect")
        await first.server.close(code=1000)
        await alice.until("!s.connected", "the first connection to close")
        await status_is(alice, "Server restarting, reconnecting in 4 s.")
        assert len(routes.connections) == 1 and await alice.state(f"s.friends.has({b})")
        await alice.page.clock.run_for(3500)
        assert len(routes.connections) == 1
        await alice.page.clock.run_for(500)
        await alice.until("s.connected && s.frames.resumed === 1", "the page to reconnect and resume")

        # The first location of the new connection resumed: the time and friends held.
        second = routes.last
        assert len(routes.connections) == 2 and second is not first
        resume = second.sent("location")[0]["resume"]
        held = await alice.state(f"s.friends.get({b}).updated_at")
        assert resume["friends"] == {str(b): held}
        assert resume["at"] >= held and resume["radius_m"] == await alice.state("s.friendRadiusM")
        await routes.until(lambda: any(f["type"] == "pace" for f in second.from_server), "the new pace")
        kinds = [f["type"] for f in second.from_server]
        assert kinds[0] == "resumed" and "init" not in kinds, kinds
        # Bob did not move: nothing about him was re-sent, and his marker is the same one.
        assert not [f for f in second.from_server if f.get("user_id") == b], second.from_server
        assert await alice.state(f"s.friends.get({b}).marker.kept === true && s.frames.init === 1")

        # What changed while away comes after resumed: Bob moves, his marker follows.
        await bob_ws.send(orjson.dumps({"type": "location", "latitude": 59.921, "longitude": 10.761}).decode())
        await alice.until(f"s.friends.get({b}).latitude === 59.921", "bob's move after resuming")
        assert await alice.state(f"s.friends.get({b}).marker.kept === true")
        await status_is(alice, "Reconnected: showing friends within 8.05 km.")
        await alice.page.clock.resume()
        await shot(alice, "presence-resumed")
    finally:
        await bob_ws.close()
    alice.assert_no_errors()


async def test_too_many_friends_for_one_frame_reconnect_to_a_fresh_init(
    open_page: OpenPage, services: Services
) -> None:
    routes = Relay()

    async def routed_and_paused(page: Page) -> None:
        await relay(page, routes)
        await page.clock.install()

    tab = await open_page(before=routed_and_paused)
    await sign_in_dev(tab, new_user())
    await go_online(tab, OSLO)
    await tab.until("s.frames.init === 1", "the first init")
    await pause(tab)
    first = routes.last
    # 300 friends held (as the test tells the page): their resume would pass the server's
    # 4 KiB frame limit, which closes the connection (1009). The page asks for a fresh init.
    at = first.from_server[0]["at"]
    crowd = [
        {"user_id": 10**12 + i, "latitude": NEAR[0], "longitude": NEAR[1], "distance_m": 800.0, "updated_at": at}
        for i in range(300)
    ]
    sharing = {"enabled": True, "precision": "exact", "private_history": False}
    first.to_page(type="init", at=at, radius_m=8047.0, friends=crowd, sharing=sharing)
    await tab.until("s.friends.size === 300", "the crowd on the map")
    first.to_page(type="reconnect", after_ms=100)
    await status_is(tab, "Server restarting, reconnecting in 1 s.")
    await tab.page.clock.run_for(100)
    await tab.until("s.connected && s.frames.init === 3", "a fresh init on the new connection")
    assert len(routes.connections) == 2 and "resume" not in routes.last.sent("location")[0]
    assert await tab.state("s.friends.size === 0 && !s.frames.resumed")
    await tab.page.clock.resume()
    tab.assert_no_errors()


async def test_a_lost_connection_comes_back_but_not_after_disconnect(open_page: OpenPage, services: Services) -> None:
    a, b = new_user(), new_user()
    await friends(services, a, b)
    routes = Relay()

    async def routed_and_paused(page: Page) -> None:
        await relay(page, routes)
        await page.clock.install()

    alice = await open_page(before=routed_and_paused)
    await sign_in_dev(alice, a)
    bob_ws = await raw_client(services, b)
    try:
        await bob_ws.send(orjson.dumps({"type": "location", "latitude": NEAR[0], "longitude": NEAR[1]}).decode())
        await next_frame(bob_ws, "init")
        await go_online(alice, OSLO)
        await alice.until(f"s.friends.has({b})", "bob on alice's map")
        await pause(alice)

        # The instance stops without a drain (1001, no reconnect frame): the page comes back
        # after a pause of 0.5 to 1.5 s (the first step, jittered), and resumes.
        first = routes.last
        await first.page.close(code=1001, reason="going away")
        await first.server.close(code=1000)
        await alice.until("!s.connected", "the connection to close")
        shown = await alice.page.text_content("#friends-status")
        assert shown in (
            "Connection lost (code 1001), reconnecting in 1 s.",
            "Connection lost (code 1001), reconnecting in 2 s.",
        ), shown
        assert await alice.state(f"s.friends.has({b})")
        await alice.page.clock.run_for(1500)
        await alice.until("s.connected && s.frames.resumed === 1", "the page to come back and resume")
        assert len(routes.connections) == 2 and "resume" in routes.last.sent("location")[0]

        # Disconnect: closed with 1000, and no coming back however long the page waits. Bob
        # stays on the map, ageing; Connect resumes again.
        await alice.page.click("#disconnect")
        await status_is(alice, "Disconnected.")
        await alice.page.clock.run_for(61_000)  # the ages are redrawn every second
        assert len(routes.connections) == 2 and not await alice.state("s.connected")
        assert await alice.state(f"s.friends.has({b})")
        assert await age_text(alice, b) == "1 min ago"
        # The server allows 2 locations a second (on its own clock, which the page's does not
        # move): the page just sent two; Connect once they are allowed again.
        await asyncio.sleep(1)
        await alice.page.click("#connect")
        await alice.until("s.connected && s.frames.resumed === 2", "the page to resume on Connect")
        assert await alice.state("s.frames.init") == 1
        await alice.page.clock.resume()
    finally:
        await bob_ws.close()
    alice.assert_no_errors()


async def test_the_pace_sets_how_often_the_location_is_sent(open_page: OpenPage, services: Services) -> None:
    routes = Relay()

    async def routed_and_paused(page: Page) -> None:
        await relay(page, routes)
        await page.clock.install()

    tab = await open_page(before=routed_and_paused)
    await sign_in_dev(tab, new_user())
    await go_online(tab, OSLO)
    # Alone, with no friend near: the server's slow pace, shown in the panel.
    slow = services.settings.pace_slow_s
    await tab.until(f"s.pace === {slow}", "the server's pace")
    await tab.page.wait_for_function(
        "text => document.getElementById('pace').textContent.includes(text)", arg=f"every {slow // 60} min"
    )
    await pause(tab)
    link = routes.last
    sent = await tab.state("s.sent.locations")

    async def locations(count: int, what: str) -> None:
        """The page has sent ``count`` locations, and the server has received them all."""
        await tab.until(f"s.sent.locations === {count}", what)
        await routes.until(lambda: len(link.sent("location")) == count, f"{what}, relayed")

    # Five seconds after the last send, a 2 s pace: a location at once (the clock is paused,
    # so no timer could have sent it), then one every 2 s.
    await tab.page.clock.run_for(4000)
    assert await tab.state("s.sent.locations") == sent
    link.to_page(type="pace", interval_s=2)
    await locations(sent + 1, "a location at once")
    await tab.page.wait_for_function("() => document.getElementById('pace').textContent.includes('every 2 s')")
    await tab.page.clock.run_for(1999)
    assert await tab.state("s.sent.locations") == sent + 1
    await tab.page.clock.run_for(1)
    await locations(sent + 2, "the next location 2 s later")
    await tab.page.clock.run_for(2000)
    await locations(sent + 3, "and 2 s after that")

    # A longer pace, 10 s: nothing at once; the next 10 s after the last.
    link.to_page(type="pace", interval_s=10)
    await tab.until("s.pace === 10", "the 10 s pace")
    await tab.page.clock.run_for(9999)
    assert await tab.state("s.sent.locations") == sent + 3
    await tab.page.clock.run_for(1)
    await locations(sent + 4, "a location 10 s after the last")
    last = link.sent("location")[-1]
    assert (last["latitude"], last["longitude"]) == OSLO and "resume" not in last
    await tab.page.clock.resume()
    await shot(tab, "presence-pace")
    tab.assert_no_errors()


async def test_sign_out_erases_the_location_and_stays_out(open_page: OpenPage, services: Services) -> None:
    a, b = new_user(), new_user()
    await friends(services, a, b)
    routes = Relay()

    async def routed(page: Page) -> None:
        await relay(page, routes)

    alice = await open_page(before=routed)
    await sign_in_dev(alice, a)
    bob_ws = await raw_client(services, b)
    try:
        await bob_ws.send(orjson.dumps({"type": "location", "latitude": NEAR[0], "longitude": NEAR[1]}).decode())
        await next_frame(bob_ws, "init")
        await go_online(alice, OSLO)
        await alice.until(f"s.friends.has({b})", "bob on alice's map")
        friend_location = await next_frame(bob_ws, "friend_location")
        assert friend_location["user_id"] == a

        await alice.page.click("#sign-out")
        await status_is(alice, "Signed out: your location is erased, and friends see you go offline.")
        assert routes.last.sent("sign_out") == [{"type": "sign_out"}]
        left = await next_frame(bob_ws, "friend_left")
        assert left == {"type": "friend_left", "user_id": a, "reason": "offline"}
        assert await alice.state("!s.connected && s.friends.size === 0 && s.clock === null")
        assert await alice.page.is_disabled("#sign-out") and await alice.page.is_disabled("#disconnect")
        await shot(alice, "presence-signed-out")
    finally:
        await bob_ws.close()
    # Not connected again: one connection, closed by the server with 1000.
    assert len(routes.connections) == 1
    alice.assert_no_errors()
