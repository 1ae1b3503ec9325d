"""The map page in a real browser (Debian's Chromium) against the real geo-api and geo-friends.

Every test ends by saving a screenshot into ``test-output/map_page/`` and checking that the
page logged no error (console errors, failed loads, uncaught exceptions).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import orjson

from geo_common.tokens import Role
from geo_index import haversine_m
from tests.friends_ws.ws_helpers import new_user

from .conftest import (
    NEAR,
    OSLO,
    OpenPage,
    Services,
    Tab,
    befriend_over_http,
    go_online,
    next_frame,
    raw_client,
    replicas_caught_up,
    sign_in_dev,
    status_is,
)

NEAR_MOVED = (59.9260, 10.7710)


def shown_distance(metres: float) -> str:
    """What the page shows for a distance (JavaScript's Math.round and toFixed round half up)."""
    whole = Decimal(metres).quantize(Decimal("1"), ROUND_HALF_UP)
    if whole < 1000:
        return f"{whole} m"
    return f"{Decimal(metres / 1000).quantize(Decimal('0.01'), ROUND_HALF_UP)} km"


async def api_search(services: Services, query: dict[str, str]) -> list[tuple[int, str, float, str]]:
    params = {k: v for k, v in query.items() if v != ""}
    async with services.api.http.get("/v1/search/nearby", params=params) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    return [(b["id"], b["name"], b["distance_m"], shown_distance(b["distance_m"])) for b in body["businesses"]]


async def listed(tab: Tab) -> list[tuple[int, str, float, str]]:
    rows = await tab.page.eval_on_selector_all(
        "#results li",
        """items => items.map(li => [
        Number(li.dataset.id), li.querySelector('.name').textContent, Number(li.dataset.distanceM),
        li.querySelector('.distance').textContent])""",
    )
    return [(int(i), name, float(d), shown) for i, name, d, shown in rows]


async def search_done(tab: Tab, **query: str) -> dict[str, str]:
    """Wait until the page shows the search with these query values; return its whole query."""
    checks = " && ".join(f"s.search.query.{k} === {orjson.dumps(v).decode()}" for k, v in query.items())
    result: dict[str, str] = await tab.until(f"s.search.query && {checks} && s.search.query", f"the search {query}")
    return result


async def set_radius(tab: Tab, metres: int) -> None:
    await tab.page.locator("#radius").evaluate(
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", str(metres)
    )


async def test_a_search_lists_what_the_api_returns(open_page: OpenPage, services: Services) -> None:
    tab = await open_page()
    page = tab.page
    await page.fill("#lat", str(OSLO[0]))
    await page.fill("#lon", str(OSLO[1]))
    await set_radius(tab, 3000)
    assert await page.text_content("#radius-out") == "3.00 km"
    await page.click("#search-button")
    query = await search_done(tab, latitude=str(OSLO[0]), radius="3000", category="")
    expected = await api_search(services, query)
    assert len(expected) >= 8
    assert await listed(tab) == expected
    assert await tab.state("s.search.results.length") == len(expected)

    # The category filter, submitted with Enter from its field.
    await page.fill("#category", "cafe")
    await page.press("#category", "Enter")
    query = await search_done(tab, category="cafe")
    expected = await api_search(services, query)
    assert [name for _, name, _, _ in expected] == ["Oslo Central Cafe", "Aker Brygge Cafe", "Frogner Cafe"]
    assert await listed(tab) == expected
    await tab.shot("search-category")

    # A click on the map searches around the point clicked.
    await page.fill("#category", "")
    box = await page.locator("#map").bounding_box()
    assert box is not None
    await page.mouse.click(box["x"] + box["width"] / 2 + 7, box["y"] + box["height"] / 2 - 5)
    query = await search_done(tab, category="")
    assert query["latitude"] != str(OSLO[0]) and abs(float(query["latitude"]) - OSLO[0]) < 0.1
    expected = await api_search(services, query)
    assert expected and await listed(tab) == expected
    await tab.shot("search-click")
    tab.assert_no_errors()


async def test_the_search_circle_is_drawn_across_the_antimeridian(open_page: OpenPage, services: Services) -> None:
    tab = await open_page()
    page = tab.page
    await page.fill("#lat", "-16.81")
    await page.fill("#lon", "179.99")
    await set_radius(tab, 50000)
    await page.click("#search-button")
    query = await search_done(tab, longitude="179.99", radius="50000")
    expected = await api_search(services, query)
    assert {"Dateline West Cafe", "Dateline East Cafe"} <= {name for _, name, _, _ in expected}
    assert await listed(tab) == expected

    # The outline is one piece whose longitudes run on past 180 (not wrapped to -180).
    outline = await tab.state("s.search.outline")
    lons = [lon for _, lon in outline]
    assert min(lons) < 180 < max(lons) and max(lons) - min(lons) < 1.5
    # Each result is drawn inside the drawn circle, the one east of the meridian included.
    drawn = await tab.state("""(() => {
        const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
        return {circle: box(s.search.circle.getElement()), map: box(document.getElementById('map')),
                hits: s.search.results.map(r => [r.name, r.marker.getLatLng().lng, box(r.marker.getElement())])};
    })()""")
    left, top, right, bottom = drawn["circle"]
    map_left, map_top, map_right, map_bottom = drawn["map"]
    # Round (in Mercator, this near the equator), not smeared round the world, and in view.
    assert 0.8 < (right - left) / (bottom - top) < 1.25, drawn
    assert map_left <= left and right <= map_right and map_top <= top and bottom <= map_bottom, drawn
    for name, lng, (x0, y0, x1, y1) in drawn["hits"]:
        assert min(lons) <= lng <= max(lons), (name, lng)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        assert left <= cx <= right and top <= cy <= bottom, (name, drawn)
    await tab.shot("search-antimeridian")
    tab.assert_no_errors()


async def test_friends_move_live_and_leave(open_page: OpenPage, services: Services) -> None:
    a, b = new_user(), new_user()
    alice, bob = await open_page(), await open_page()
    await sign_in_dev(alice, a)
    # Bob pastes a token instead of using the dev sign-in.
    await bob.page.fill("#token", services.token(b))
    await bob.page.click("#token-button")
    await bob.until(f"s.userId === {b}", "the pasted token to sign bob in")
    # Alice asks Bob from the page (POST /v1/users/{a}/friends/{b} with her token); Bob
    # accepts by asking back over HTTP (test_map_page_people.py accepts on the page).
    await alice.page.click("#tab-friends")
    await alice.page.fill("#friend-id", str(b))
    await alice.page.click("#befriend-button")
    await status_is(alice, f"Request sent to user {b}.")
    await befriend_over_http(services, b, a, expect=201)
    await replicas_caught_up(services.settings)

    await go_online(alice, OSLO)
    await go_online(bob, NEAR)
    await alice.until(f"s.friends.has({b})", "bob to appear on alice's map")
    await bob.until(f"s.friends.has({a})", "alice to appear on bob's map")
    where = (
        f"(() => {{ const m = s.friends.get({b}).marker; const r = m.getElement().getBoundingClientRect(); "
        f"return [m.getLatLng().lat, m.getLatLng().lng, r.left, r.top]; }})()"
    )
    before = await alice.state(where)
    assert before[:2] == list(NEAR)
    item = await alice.page.text_content(f"#friends-list li[data-user-id='{b}']")
    assert item is not None and f"user {b}" in item and ("ago" in item or "just now" in item)

    # Bob moves through a WebSocket of the test's own: his marker moves on Alice's page.
    ws = await raw_client(services, b)
    try:
        await ws.send(
            orjson.dumps({"type": "location", "latitude": NEAR_MOVED[0], "longitude": NEAR_MOVED[1]}).decode()
        )
        await next_frame(ws, "init")
        await alice.until(f"s.friends.get({b}) && s.friends.get({b}).latitude === {NEAR_MOVED[0]}", "bob's move")
        after = await alice.state(where)
        assert after[:2] == list(NEAR_MOVED)
        assert after[2] > before[2] and after[3] < before[3]  # drawn further east and north
        await alice.shot("friends-alice")

        # Bob's switch shows the preference the server stored (from init: on), not "mixed".
        await bob.until("s.sharing && s.sharing.enabled === true", "init to tell bob's page his preference")
        assert await bob.page.eval_on_selector("#sharing", "e => [e.indeterminate, e.checked]") == [False, True]
        # Bob turns sharing off on his page: he leaves Alice's map.
        await bob.page.click("#sharing")
        await bob.until("s.sharing && s.sharing.enabled === false", "the server to confirm sharing off")
        await alice.until(f"!s.friends.has({b}) && s.lastLeft && s.lastLeft.user_id === {b}", "bob to leave")
        assert await alice.state("s.lastLeft.reason") == "sharing_off"
        assert await alice.page.query_selector(f"#friends-list li[data-user-id='{b}']") is None
        await bob.shot("friends-bob-sharing-off")
    finally:
        await ws.close()
    alice.assert_no_errors()
    bob.assert_no_errors()


async def test_watch_mode_shows_cached_positions(open_page: OpenPage, services: Services) -> None:
    users = [new_user() for _ in range(3)]
    clients = [await raw_client(services, u) for u in users]
    try:
        for i, ws in enumerate(clients):
            await ws.send(
                orjson.dumps({"type": "location", "latitude": 59.90 + i / 100, "longitude": 10.70 + i / 50}).decode()
            )
            await next_frame(ws, "init")
        tab = await open_page()
        await sign_in_dev(tab, new_user(), "admin")
        await tab.page.click("#tab-watch")
        await tab.page.fill("#watch-limit", "5000")
        await tab.page.click("#watch-button")
        ids = ",".join(map(str, users))
        await tab.until(
            f"s.watch.fetches >= 1 && [{ids}].every(id => s.watch.markers.has(id))", "the watched positions"
        )
        shown = await tab.state(
            f"[{ids}].map(id => {{ const p = s.watch.markers.get(id).getLatLng(); return [p.lat, p.lng]; }})"
        )
        assert shown == [[59.90 + i / 100, 10.70 + i / 50] for i in range(3)]
        admin = {"Authorization": f"Bearer {services.token(1, Role.ADMIN)}"}
        async with services.api.http.get("/v1/watch/positions", params={"limit": "5000"}, headers=admin) as resp:
            body = await resp.json()
        assert set(users) <= {p["user_id"] for p in body["positions"]}
        assert await tab.state("s.watch.count") >= len(users)
        assert await tab.page.get_attribute("#watch-button", "aria-pressed") == "true"
        await tab.shot("watch")
        await tab.page.click("#watch-button")
        assert await tab.page.get_attribute("#watch-button", "aria-pressed") == "false"
    finally:
        for ws in clients:
            await ws.close()
    tab.assert_no_errors()


async def test_readable_at_360px_and_operable_by_keyboard(open_page: OpenPage, services: Services) -> None:
    tab = await open_page(width=360, height=740)
    page = tab.page
    overflow = await page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth, document.body.scrollWidth]"
    )
    assert overflow[0] <= overflow[1] and overflow[2] <= overflow[1], overflow

    # Tab from the top of the page reaches the search form; Enter in a field runs the search.
    focused: list[str] = []
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused.append(await page.evaluate("() => document.activeElement.id || document.activeElement.tagName"))
        if focused[-1] == "lat":
            break
    assert focused[-1] == "lat", focused
    assert {"dev-user", "dev-role", "dev-signin-button", "token", "token-button", "tab-search"} <= set(focused), focused
    await page.keyboard.press("Control+A")
    await page.keyboard.type(str(OSLO[0]))
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.id") == "lon"
    await page.keyboard.press("Control+A")
    await page.keyboard.type(str(OSLO[1]))
    await page.keyboard.press("Enter")
    query = await search_done(tab, latitude=str(OSLO[0]), longitude=str(OSLO[1]))
    expected = await api_search(services, query)
    assert expected and await listed(tab) == expected
    # The mode tabs move with the arrow keys.
    await page.focus("#tab-search")
    await page.keyboard.press("ArrowRight")
    assert await tab.state("s.mode") == "friends"
    assert await page.evaluate("() => document.activeElement.id") == "tab-friends"
    assert await page.is_visible("#connect") and not await page.is_visible("#search-form")
    await page.keyboard.press("ArrowLeft")
    assert await tab.state("s.mode") == "search"
    overflow = await page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert overflow[0] <= overflow[1], overflow
    await tab.shot("narrow-360px")
    tab.assert_no_errors()


async def test_the_pure_helpers_give_known_values(open_page: OpenPage, services: Services) -> None:
    tab = await open_page()
    token = services.token(42, Role.OWNER)
    got = await tab.page.evaluate(
        """async (token) => {
        const g = await import('/static/geo.js');
        return {
            wrap: [190, -180, 180, -540, 10.76].map(g.wrapLongitude),
            near: [g.nearLongitude(-179.96, 179.99), g.nearLongitude(10.76, 10.7)],
            distance: g.haversineM(59.9139, 10.7522, -16.81, 179.99),
            circle: g.circlePolygon(-16.81, 179.99, 50000, 16),
            ring: g.unwrapRing([[179, 0], [-179, 0], [-179, 1], [179, 1], [179, 0]]).map(p => p[0]),
            pole: g.unwrapRing([[-180, -80], [0, -70], [180, -80]]).map(p => p[1]),
            shown: [0.4, 999.4, 999.5, 1234.5, 50000].map(g.formatDistance),
            ages: [0, 12500, 185000, 7300000].map(g.formatAge),
            intervals: [2, 30, 90, 300, 3600, 5400].map(g.formatInterval),
            server: [g.serverNow({at: 1763890000000, receivedAt: 500.5}, 2500.5),
                     g.serverNow({at: 1763890000000, receivedAt: 500.5}, 400)],
            claims: g.tokenClaims(token),
            bad: g.tokenClaims('not a token'),
        };
    }""",
        token,
    )
    assert got["wrap"] == [-170, -180, -180, -180, 10.76]
    assert abs(got["near"][0] - 180.04) < 1e-9 and got["near"][1] == 10.76
    assert abs(got["distance"] - haversine_m(59.9139, 10.7522, -16.81, 179.99)) < 1e-6
    for lat, lon in got["circle"]:
        assert abs(haversine_m(-16.81, 179.99, lat, lon) - 50000) < 1e-6
    assert got["ring"] == [179, 181, 181, 179, 179]
    assert got["pole"] == [-80, -70, -80, -90, -90, -80]  # closed along the south pole
    assert got["shown"] == ["0 m", "999 m", "1.00 km", "1.23 km", "50.00 km"]
    assert got["ages"] == ["just now", "12 s ago", "3 min ago", "2 h ago"]
    assert got["intervals"] == ["2 s", "30 s", "1 min 30 s", "5 min", "1 h", "1 h 30 min"]
    assert got["server"] == [1763890002000, 1763890000000]  # never before what the server said
    assert got["claims"]["sub"] == "42" and got["claims"]["role"] == "owner" and got["bad"] is None
    tab.assert_no_errors()
