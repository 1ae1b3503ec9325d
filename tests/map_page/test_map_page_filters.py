"""The search filters and "Search this area" of the map page in a real browser.

Each test creates its own businesses in an empty stretch of the South Atlantic (a spot of its
own, so the tests do not see each other's), then checks the listed names against what was
created, and the listed rows against the API's own answer to the query the page sent.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.location_api.conftest import settled

from .conftest import OpenPage, Services, Tab
from .test_map_page import listed, search_done, set_radius
from .test_map_page_card import create

#: Open sea, far from the card tests' spot: each test searches around a point of its own near here.
SPOT = (-35.0, -20.0)
ALWAYS = {"weekly": {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}


async def search_at(tab: Tab, at: tuple[float, float], radius: int = 1000) -> None:
    """A nearby search from the form around ``at``; wait until it is listed."""
    await tab.page.fill("#lat", str(at[0]))
    await tab.page.fill("#lon", str(at[1]))
    await set_radius(tab, radius)
    await tab.page.click("#search-button")
    await search_done(tab, latitude=str(at[0]), longitude=str(at[1]), radius=str(radius))


async def names(tab: Tab) -> list[str]:
    return [name for _, name, _, _ in await listed(tab)]


async def api_area(services: Services, query: dict[str, str]) -> list[tuple[int, str]]:
    params = {k: v for k, v in query.items() if v != ""}
    async with services.api.http.get("/v1/search/area", params=params) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    return [(b["id"], b["name"]) for b in body["businesses"]]


async def area_search(tab: Tab, centre: tuple[float, float], zoom: float) -> dict[str, str]:
    """Show ``centre`` at ``zoom``, press "Search this area"; the query the page searched with."""
    await tab.page.evaluate("([c, z]) => { window.geoPage.map.setView(c, z, {animate: false}); }", [list(centre), zoom])
    await tab.page.click("#area-button")
    query: dict[str, str] = await tab.until("s.search.kind === 'area' && s.search.query", "the area search")
    return query


def inside(bbox: str, lat: float, lon: float) -> bool:
    west, south, east, north = map(float, bbox.split(","))
    in_lon = west <= lon <= east if west <= east else lon >= west or lon <= east
    return south <= lat <= north and in_lon


async def test_category_and_price_narrow_the_list(open_page: OpenPage, services: Services) -> None:
    at = SPOT
    for name, category, price in [("Crust One", "bakery", 1), ("Crust Three", "bakery", 3), ("Cup One", "cafe", 1)]:
        await create(services, name=name, latitude=at[0], longitude=at[1] + 0.001, category=category, price_level=price)
    await settled(services.api)
    tab = await open_page()
    await search_at(tab, at)
    assert sorted(await names(tab)) == ["Crust One", "Crust Three", "Cup One"]

    await tab.page.fill("#category", "bakery")
    await tab.page.press("#category", "Enter")
    await search_done(tab, category="bakery", price="")
    assert sorted(await names(tab)) == ["Crust One", "Crust Three"]
    await tab.page.select_option("#price", "1")  # a change searches again at once
    await search_done(tab, category="bakery", price="1", latitude=str(at[0]))
    assert await names(tab) == ["Crust One"]

    # Relevance ranks by words: it is offered only once there are some.
    relevance = "#sort option[value='relevance']"
    assert await tab.page.eval_on_selector(relevance, "o => o.disabled")
    await tab.page.fill("#q", "crust")
    assert not await tab.page.eval_on_selector(relevance, "o => o.disabled")
    await tab.shot("filters-category-price")
    tab.assert_no_errors()


async def test_open_now_lists_only_what_is_open(open_page: OpenPage, services: Services) -> None:
    at = (SPOT[0] + 1, SPOT[1])
    await create(services, name="Night Owl", latitude=at[0], longitude=at[1], category="cafe", hours=ALWAYS)
    await create(services, name="Shut Shop", latitude=at[0] + 0.001, longitude=at[1], hours={"weekly": {}})
    await settled(services.api)
    tab = await open_page()
    await search_at(tab, at)
    assert sorted(await names(tab)) == ["Night Owl", "Shut Shop"]
    await tab.page.check("#open-now")
    await search_done(tab, open_now="true", latitude=str(at[0]))
    assert await names(tab) == ["Night Owl"]
    tab.assert_no_errors()


async def test_search_this_area_lists_what_is_in_view(open_page: OpenPage, services: Services) -> None:
    at = (SPOT[0] + 2, SPOT[1])
    # Two in view; one just east of it, inside the circle that holds the view but not in the box.
    places = {
        "Lantern Cafe": (at[0], at[1] - 0.004),
        "Biscuit Pier": (at[0] + 0.003, at[1] + 0.004),
        "Outer Buoy": (at[0], at[1] + 0.022),
    }
    for name, (lat, lon) in places.items():
        await create(services, name=name, latitude=lat, longitude=lon, category="cafe")
    await settled(services.api)
    tab = await open_page()
    query = await area_search(tab, at, 15)
    west, south, east, north = map(float, query["bbox"].split(","))
    view = await tab.state("(b => [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()])(s.map.getBounds())")
    assert all(abs(a - b) < 1e-5 for a, b in zip([west, south, east, north], view, strict=True)), (query, view)
    in_view = {name for name, (lat, lon) in places.items() if inside(query["bbox"], lat, lon)}
    assert in_view == {"Lantern Cafe", "Biscuit Pier"}
    assert set(await names(tab)) == in_view
    assert [(i, n) for i, n, _, _ in await listed(tab)] == await api_area(services, query)

    # A filter searches the same area again.
    await tab.page.fill("#q", "lantern")
    await tab.page.press("#q", "Enter")
    await search_done(tab, bbox=query["bbox"], q="lantern")
    assert await names(tab) == ["Lantern Cafe"]
    await tab.shot("filters-area")
    tab.assert_no_errors()


async def test_an_area_across_the_antimeridian(open_page: OpenPage, services: Services) -> None:
    tab = await open_page()
    query = await area_search(tab, (-16.81, 180.0), 12)
    west, _, east, _ = map(float, query["bbox"].split(","))
    assert 179 < west <= 180 and -180 <= east < -179, query  # west > east: across the meridian
    listed_names = await names(tab)
    assert {"Dateline West Cafe", "Dateline East Cafe"} <= set(listed_names)
    assert [(i, n) for i, n, _, _ in await listed(tab)] == await api_area(services, query)
    tab.assert_no_errors()


async def test_too_large_an_area_says_to_zoom_in(open_page: OpenPage, services: Services) -> None:
    tab = await open_page()
    page = tab.page
    await page.evaluate("() => { window.geoPage.map.setView([20, 0], 1, {animate: false}); }")  # wider than the world
    async with page.expect_request(lambda r: "/v1/search/area" in r.url) as request:
        await page.click("#area-button")
    bbox = parse_qs(urlsplit((await request.value).url).query)["bbox"][0]
    west, _, east, _ = map(float, bbox.split(","))
    assert (west, east) == (-180, 180)
    limit = f"at most {services.settings.max_radius_m / 1000:g} km"
    shown = await tab.until(
        "(t => t.startsWith('This area is too large') && t)(document.getElementById('search-status').textContent)",
        "the too-large message",
    )
    assert limit in shown and shown.endswith("Zoom in, then search this area again."), shown
    assert await tab.state("s.search.query") is None  # nothing searched, nothing drawn
    tab.assert_no_errors(expected="400")
