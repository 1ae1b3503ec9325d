"""The business card of the map page in a real browser: a search result's details, with its
hours and "open now" in the business's own local time, whatever the browser's time zone."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from geo_common.tokens import Role

from .conftest import OpenPage, Services, Tab, replicas_caught_up
from .test_map_page import search_done, set_radius

#: An empty stretch of the Atlantic: the test's businesses are the only ones there.
SPOT = (41.5, -38.5)
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


async def create(services: Services, **fields: Any) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {services.token(1, Role.ADMIN)}"}
    async with services.api.http.post("/v1/businesses", json=fields, headers=admin) as resp:
        assert resp.status == 201, await resp.text()
        created: dict[str, Any] = await resp.json()
    async with services.api.http.get(
        f"/v1/businesses/{created['id']}", headers={"X-Consistency-Token": resp.headers["X-Consistency-Token"]}
    ) as resp:
        detail: dict[str, Any] = await resp.json()
        return detail


def expected_open_text(detail: dict[str, Any]) -> str:
    """What the card says of now, from the API's answer (its local time, as written)."""
    if detail["open_now"] is None:
        return "Opening hours not known"
    if detail["next_change"] is None:
        return "Open around the clock" if detail["open_now"] else "Closed, no opening ahead"
    day, time = detail["next_change"].split("T")
    when = f"{DAY_NAMES[date.fromisoformat(day).weekday()]} {day[5:]} {time[:5]}"
    return f"Open now, closes {when}" if detail["open_now"] else f"Closed now, opens {when}"


async def open_card(tab: Tab, business_id: int) -> None:
    await tab.page.click(f"#results li[data-id='{business_id}']")
    await tab.until(
        f"s.card && s.card.id === {business_id} && !document.getElementById('business-card').hidden", "the card"
    )


async def text(tab: Tab, selector: str) -> str:
    return (await tab.page.text_content(selector) or "").strip()


async def test_a_result_opens_its_card_with_hours_in_its_local_time(open_page: OpenPage, services: Services) -> None:
    always = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    far = date.today() + timedelta(days=200)  # an exception beyond the horizon of next_change
    inn = await create(
        services,
        name="<b>Mid-Atlantic Inn</b>",  # shown as text, never as markup
        latitude=SPOT[0],
        longitude=SPOT[1],
        category="hotel",
        hours={"weekly": always, "exceptions": [{"date": far.isoformat(), "intervals": [["00:00", "12:00"]]}]},
        price_level=3,
        rating=4.25,
        review_count=128,
        phone="+351 296 000 000",
        website="https://inn.example/rooms",
    )
    # Hours of Auckland on a ship in the Atlantic: the card reads them in Auckland's time.
    galley = await create(
        services,
        name="Galley",
        latitude=SPOT[0] + 0.001,
        longitude=SPOT[1],
        category="cafe",
        time_zone="Pacific/Auckland",
        hours={"weekly": {"wed": [["10:00", "11:00"]], "sat": [["22:00", "02:00"]]}},
    )
    buoy = await create(services, name="Buoy", latitude=SPOT[0], longitude=SPOT[1] + 0.001)

    tab = await open_page()
    await tab.page.fill("#lat", str(SPOT[0]))
    await tab.page.fill("#lon", str(SPOT[1]))
    await set_radius(tab, 1000)
    await tab.page.click("#search-button")
    await search_done(tab, latitude=str(SPOT[0]), radius="1000")
    assert await tab.state("s.search.results.length") == 3

    await open_card(tab, inn["id"])
    assert await text(tab, "#card-name") == "<b>Mid-Atlantic Inn</b>"
    assert await tab.page.query_selector("#card-name b") is None
    assert await text(tab, "#card-category") == "hotel · $$$ · ★ 4.3 (128 reviews)"
    assert await text(tab, "#card-open") == expected_open_text(inn) == "Open around the clock"
    rows = await tab.page.eval_on_selector_all("#card-hours tr", "rows => rows.map(r => r.textContent)")
    assert rows == [f"{d}00:00–24:00" for d in DAY_NAMES] + [f"{far.isoformat()}00:00–12:00"]
    assert await text(tab, "#card-zone") == f"Local time: {inn['time_zone']}"
    links = await tab.page.eval_on_selector_all("#card-contact a", "as => as.map(a => [a.href, a.textContent, a.rel])")
    assert links == [
        ["tel:+351296000000", "+351 296 000 000", "noopener noreferrer"],
        ["https://inn.example/rooms", "inn.example", "noopener noreferrer"],
    ]
    await tab.shot("card-inn")

    await open_card(tab, galley["id"])
    assert await text(tab, "#card-open") == expected_open_text(galley)
    assert await text(tab, "#card-zone") == "Local time: Pacific/Auckland"
    rows = await tab.page.eval_on_selector_all("#card-hours tr", "rows => rows.map(r => r.textContent)")
    assert rows[2] == "Wed10:00–11:00" and rows[5] == "Sat22:00–02:00" and rows[0] == "MonClosed"
    assert await text(tab, "#card-contact") == ""

    # A business without details: hours not known, nothing else claimed.
    await open_card(tab, buoy["id"])
    assert await text(tab, "#card-open") == "Opening hours not known"
    assert await text(tab, "#card-category") == ""
    assert await tab.page.eval_on_selector_all("#card-hours tr", "rows => rows.length") == 0

    await tab.page.click("#card-close")
    await tab.until("s.card === null && document.getElementById('business-card').hidden", "the card to close")
    tab.assert_no_errors()


async def test_a_business_gone_since_the_search_says_so_on_the_card(open_page: OpenPage, services: Services) -> None:
    gone = await create(services, name="Driftwood", latitude=SPOT[0] - 0.3, longitude=SPOT[1])
    tab = await open_page()
    await tab.page.fill("#lat", str(SPOT[0] - 0.3))
    await tab.page.fill("#lon", str(SPOT[1]))
    await set_radius(tab, 500)
    await tab.page.click("#search-button")
    await search_done(tab, latitude=str(SPOT[0] - 0.3), radius="500")
    admin = {"Authorization": f"Bearer {services.token(1, Role.ADMIN)}"}
    async with services.api.http.delete(f"/v1/businesses/{gone['id']}", headers=admin) as resp:
        assert resp.status == 204
    await replicas_caught_up(services.settings)  # the page reads without a consistency token
    await tab.page.click(f"#results li[data-id='{gone['id']}']")
    await tab.until(
        "document.getElementById('card-status').textContent.startsWith('The business could not be read')",
        "the card to say the business is gone",
    )
    tab.assert_no_errors(expected="404")
