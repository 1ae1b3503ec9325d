"""A business's time zone and opening hours through the API: written, read back, asked
"open now?" in its local time, and every malformed field named (location_api.hours has the
calendar's own cases)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from location_api.time_zones import zone_at

from .conftest import Api
from .test_businesses import CONSISTENCY, create

ALL_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


async def detail(api: Api, bid: int, token: str) -> dict[str, Any]:
    async with api.http.get(f"/v1/businesses/{bid}", headers={CONSISTENCY: token}) as resp:
        assert resp.status == 200, await resp.text()
        return dict(await resp.json())


async def fields_refused(api: Api, headers: dict[str, str], fields: dict[str, object]) -> list[str]:
    """The fields a 400 names when a business is created with these."""
    body = {"name": "Bad Fields", "latitude": 10.0, "longitude": 10.0, **fields}
    async with api.http.post("/v1/businesses", json=body, headers=headers) as resp:
        assert resp.status == 400
        assert resp.content_type == "application/problem+json"
        problem = await resp.json()
    return [e["field"] for e in problem["errors"]]


async def test_hours_are_kept_and_read_in_the_business_s_local_time(api: Api, admin_headers: dict[str, str]) -> None:
    # Closed every week; open one day 60 days from now, 10:00-12:00 in Auckland.
    day = date.today() + timedelta(days=60)
    hours = {"weekly": {}, "exceptions": [{"date": day.isoformat(), "intervals": [["10:00", "12:00"]]}]}
    created, token = await create(api, admin_headers, latitude=-36.85, longitude=174.76, hours=hours)
    assert (created["time_zone"], created["hours"]) == ("Pacific/Auckland", hours)
    shown = await detail(api, created["id"], token)
    assert shown["hours"] == hours and shown["open_now"] is False
    opens = datetime.fromisoformat(shown["next_change"])
    auckland = datetime(day.year, day.month, day.day, 10, tzinfo=ZoneInfo("Pacific/Auckland"))
    assert opens == auckland and opens.utcoffset() == auckland.utcoffset()  # local time, its offset

    # The same hours named in Honolulu's zone: the same wall clock, another instant.
    body = {"name": "Elsewhere", "latitude": -36.85, "longitude": 174.76, "time_zone": "Pacific/Honolulu"}
    async with api.http.put(
        f"/v1/businesses/{created['id']}", json={**body, "hours": hours}, headers=admin_headers
    ) as r:
        assert r.status == 200, await r.text()
        token = r.headers[CONSISTENCY]
    shown = await detail(api, created["id"], token)
    assert shown["time_zone"] == "Pacific/Honolulu"
    honolulu = datetime(day.year, day.month, day.day, 10, tzinfo=ZoneInfo("Pacific/Honolulu"))
    assert datetime.fromisoformat(shown["next_change"]) == honolulu != auckland


async def test_open_around_the_clock_never_changes_and_unknown_hours_are_neither(
    api: Api, admin_headers: dict[str, str]
) -> None:
    created, token = await create(api, admin_headers, latitude=64.73, longitude=177.5, hours={"weekly": ALL_DAY})
    shown = await detail(api, created["id"], token)
    assert (shown["time_zone"], shown["open_now"], shown["next_change"]) == ("Asia/Anadyr", True, None)
    # PUT replaces every field: hours not written are unknown again.
    async with api.http.put(
        f"/v1/businesses/{created['id']}",
        json={"name": "x", "latitude": 78.22, "longitude": 15.65},
        headers=admin_headers,
    ) as resp:
        token = resp.headers[CONSISTENCY]
        assert (await resp.json())["hours"] is None
    shown = await detail(api, created["id"], token)
    assert (shown["time_zone"], shown["hours"], shown["open_now"]) == ("Arctic/Longyearbyen", None, None)


async def test_a_demo_business_has_synthetic_hours_in_the_zone_of_its_place(api: Api) -> None:
    # The demo load writes no zone (migration 0014): it is the zone of the coordinates.
    async with api.http.get("/v1/businesses/1") as resp:
        shown = await resp.json()
    assert shown["time_zone"] == zone_at(shown["latitude"], shown["longitude"])
    assert shown["hours"] is not None and isinstance(shown["open_now"], bool)


@pytest.mark.parametrize(
    ("fields", "at_fault"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, ["time_zone"]),
        ({"time_zone": 1}, ["time_zone"]),
        ({"hours": {"weekly": {"fri": [["18:00", "18:00"]]}}}, ["hours.weekly.fri[0]"]),
        ({"hours": {"weekly": {"mon": [["12:00", "13:00"], ["09:00", "10:00"]]}}}, ["hours.weekly.mon[1]"]),
        (
            {"hours": {"weekly": {}, "exceptions": [{"date": "2026-13-01", "intervals": []}]}},
            ["hours.exceptions[0].date"],
        ),
        ({"hours": "9-5"}, ["hours"]),
        ({"hours": {"weekly": {"sun": [["25:00", "26:00"]]}}, "time_zone": ""}, ["time_zone", "hours.weekly.sun[0]"]),
    ],
)
async def test_malformed_hours_and_zones_are_a_400_naming_each_place(
    api: Api, admin_headers: dict[str, str], fields: dict[str, object], at_fault: list[str]
) -> None:
    assert await fields_refused(api, admin_headers, fields) == at_fault


async def test_the_detail_answers_at_the_moment_it_is_asked(api: Api, admin_headers: dict[str, str]) -> None:
    """Open all of today (Berlin's today) and no other day: open now, closing at midnight."""
    berlin = ZoneInfo("Europe/Berlin")
    day = datetime.now(UTC).astimezone(berlin).date()
    hours = {"weekly": {}, "exceptions": [{"date": day.isoformat(), "intervals": [["00:00", "24:00"]]}]}
    created, token = await create(api, admin_headers, latitude=52.52, longitude=13.40, hours=hours)
    shown = await detail(api, created["id"], token)
    assert shown["time_zone"] == "Europe/Berlin"
    if datetime.now(UTC).astimezone(berlin).date() == day:  # the day did not end meanwhile
        assert shown["open_now"] is True
        next_day = day + timedelta(days=1)
        assert datetime.fromisoformat(shown["next_change"]) == datetime(
            next_day.year, next_day.month, next_day.day, tzinfo=berlin
        )
