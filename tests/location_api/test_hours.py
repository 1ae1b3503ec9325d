"""Opening hours in local time (location_api.hours) and a business's time zone
(location_api.time_zones): daylight-saving changes, overnight intervals, exceptions, zones
on both sides of the date line, and every malformed input named by its place."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from location_api.hours import (
    HORIZON_DAYS,
    InvalidHours,
    OpeningHours,
    OpenState,
    is_open,
    open_state,
    parse_hours,
)
from location_api.time_zones import check_zone, zone_at

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NINE_TO_FIVE = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def hours(weekly: dict[str, list[list[str]]], exceptions: list[dict[str, object]] | None = None) -> OpeningHours:
    return parse_hours({"weekly": weekly, "exceptions": exceptions or []})


def state(h: OpeningHours, zone: ZoneInfo, at: datetime) -> OpenState:
    found = open_state(h, zone, at)
    assert is_open(h, zone, at) is found.open  # the filter's shortcut agrees with the full answer
    return found


def test_a_weekday_business_opens_and_closes_in_its_local_time() -> None:
    h = hours(NINE_TO_FIVE)
    # Tuesday 2026-12-08, 08:59 and 09:00 in Berlin (UTC+1 in winter).
    assert state(h, BERLIN, local("2026-12-08T08:59", BERLIN)) == OpenState(False, local("2026-12-08T09:00", BERLIN))
    assert state(h, BERLIN, local("2026-12-08T09:00", BERLIN)) == OpenState(True, local("2026-12-08T17:00", BERLIN))
    # Friday evening: closed until Monday morning.
    assert state(h, BERLIN, local("2026-12-11T17:00", BERLIN)) == OpenState(False, local("2026-12-14T09:00", BERLIN))


def test_the_same_wall_clock_hours_move_with_daylight_saving_in_berlin() -> None:
    h = hours({day: [["09:00", "17:00"]] for day in EVERY_DAY})
    # 09:00 is 08:00 UTC in winter and 07:00 UTC in summer; the clocks change on the last
    # Sunday of March (29 March 2026) and of October (25 October 2026).
    assert state(h, BERLIN, utc("2026-03-28T07:30")).open is False
    assert state(h, BERLIN, utc("2026-03-28T08:00")).open is True
    assert state(h, BERLIN, utc("2026-03-30T07:00")).open is True
    assert state(h, BERLIN, utc("2026-03-30T06:59")).open is False
    assert state(h, BERLIN, utc("2026-10-24T07:00")).open is True
    assert state(h, BERLIN, utc("2026-10-26T07:30")).open is False
    assert open_state(h, BERLIN, utc("2026-10-24T16:00")).next_change == utc("2026-10-25T08:00")


def test_an_interval_across_the_spring_gap_is_an_hour_shorter_and_one_inside_it_never_opens() -> None:
    # 29 March 2026 in Berlin: 02:00 CET is followed by 03:00 CEST.
    sunday = {"sun": [["01:00", "04:00"]]}
    found = open_state(hours(sunday), BERLIN, utc("2026-03-29T00:30"))  # 01:30 CET
    assert found == OpenState(True, utc("2026-03-29T02:00"))  # 04:00 CEST: two real hours
    # 02:30 does not exist that night: it is read as 03:30 CEST, half an hour after the jump.
    skipped = hours({"sun": [["02:30", "05:00"]]})
    assert open_state(skipped, BERLIN, utc("2026-03-29T01:00")) == OpenState(False, utc("2026-03-29T01:30"))
    inside = hours({"sun": [["02:00", "03:00"]], "mon": [["10:00", "11:00"]]})
    assert open_state(inside, BERLIN, utc("2026-03-29T00:00")) == OpenState(False, utc("2026-03-30T08:00"))


def test_an_interval_across_the_autumn_fold_is_an_hour_longer() -> None:
    # 25 October 2026 in Berlin: 03:00 CEST is followed by 02:00 CET; 02:30 happens twice.
    h = hours({"sun": [["01:00", "04:00"]]})
    assert open_state(h, BERLIN, utc("2026-10-24T23:00")) == OpenState(True, utc("2026-10-25T03:00"))
    assert is_open(h, BERLIN, utc("2026-10-25T02:59")) is True  # 03:59 CET, four real hours after opening
    # A repeated time is its first occurrence.
    closing_in_fold = hours({"sat": [["22:00", "02:30"]]})
    assert open_state(closing_in_fold, BERLIN, utc("2026-10-24T21:00")).next_change == utc("2026-10-25T00:30")


def test_new_york_changes_on_its_own_dates() -> None:
    # The US moves its clocks on 8 March and 1 November 2026, Europe on 29 March and 25 October.
    h = hours({day: [["09:00", "17:00"]] for day in EVERY_DAY})
    assert is_open(h, NEW_YORK, utc("2026-03-09T13:00")) is True  # 09:00 EDT
    assert is_open(h, NEW_YORK, utc("2026-03-06T13:00")) is False  # 08:00 EST
    assert is_open(h, NEW_YORK, utc("2026-10-30T13:00")) is True  # 09:00 EDT
    assert is_open(h, NEW_YORK, utc("2026-11-02T13:00")) is False  # 08:00 EST
    assert is_open(h, BERLIN, utc("2026-03-09T13:00")) is True  # 14:00 CET


def test_an_overnight_bar_is_open_at_half_past_one_on_the_next_day() -> None:
    bar = hours({"fri": [["18:00", "02:00"]], "sat": [["18:00", "02:00"]]})
    # Saturday 01:30 belongs to Friday's interval; Sunday 01:30 to Saturday's.
    assert state(bar, BERLIN, local("2026-12-12T01:30", BERLIN)) == OpenState(True, local("2026-12-12T02:00", BERLIN))
    assert state(bar, BERLIN, local("2026-12-13T01:30", BERLIN)).open is True
    # Friday 01:30 would belong to Thursday, which has no hours.
    assert state(bar, BERLIN, local("2026-12-11T01:30", BERLIN)).open is False
    assert state(bar, BERLIN, local("2026-12-12T02:00", BERLIN)) == OpenState(False, local("2026-12-12T18:00", BERLIN))


def test_auckland_and_honolulu_at_the_same_instant() -> None:
    auckland, honolulu = ZoneInfo("Pacific/Auckland"), ZoneInfo("Pacific/Honolulu")
    h = hours({day: [["08:00", "20:00"]] for day in EVERY_DAY})
    at = utc("2026-12-06T20:00")  # 09:00 Monday in Auckland (NZDT), 10:00 Sunday in Honolulu
    assert state(h, auckland, at) == OpenState(True, local("2026-12-07T20:00", auckland))
    assert state(h, honolulu, at) == OpenState(True, local("2026-12-06T20:00", honolulu))
    weekdays = hours(NINE_TO_FIVE)
    assert state(weekdays, auckland, at).open is True  # Monday there
    assert state(weekdays, honolulu, at) == OpenState(False, local("2026-12-07T09:00", honolulu))


def test_an_exception_replaces_what_opens_on_its_date_only() -> None:
    h = hours(
        {day: [["18:00", "02:00"]] for day in EVERY_DAY},
        [{"date": "2026-12-25", "intervals": []}, {"date": "2026-12-31", "intervals": [["20:00", "04:00"]]}],
    )
    # Christmas Eve's interval still runs past midnight; Christmas Day opens nothing.
    assert state(h, BERLIN, local("2026-12-25T01:00", BERLIN)) == OpenState(True, local("2026-12-25T02:00", BERLIN))
    assert state(h, BERLIN, local("2026-12-25T19:00", BERLIN)) == OpenState(False, local("2026-12-26T18:00", BERLIN))
    assert state(h, BERLIN, local("2026-12-31T19:00", BERLIN)) == OpenState(False, local("2026-12-31T20:00", BERLIN))
    assert state(h, BERLIN, local("2027-01-01T03:00", BERLIN)).open is True


def test_touching_intervals_are_one_opening_and_all_day_every_day_never_changes() -> None:
    split = hours({"mon": [["09:00", "12:00"], ["12:00", "17:00"]], "sun": [["20:00", "09:00"]]})
    assert open_state(split, BERLIN, local("2026-12-07T08:00", BERLIN)).next_change == local("2026-12-07T17:00", BERLIN)
    always = hours({day: [["00:00", "24:00"]] for day in EVERY_DAY})
    assert state(always, BERLIN, utc("2026-12-06T12:00")) == OpenState(True, None)
    assert state(hours({}), BERLIN, utc("2026-12-06T12:00")) == OpenState(False, None)


def test_the_next_opening_is_found_past_a_long_closure() -> None:
    start = date(2027, 1, 1)
    closed = [{"date": (start + timedelta(days=i)).isoformat(), "intervals": []} for i in range(100)]
    h = hours({day: [["10:00", "11:00"]] for day in EVERY_DAY}, closed)
    reopens = start + timedelta(days=100)
    found = state(h, BERLIN, local("2027-01-01T00:00", BERLIN))
    assert found == OpenState(False, local(f"{reopens.isoformat()}T10:00", BERLIN))
    assert HORIZON_DAYS > 100


def test_hours_read_back_normalised() -> None:
    written = {
        "weekly": {"fri": [["18:00", "00:00"]], "mon": [["00:00", "24:00"]], "tue": []},
        "exceptions": [
            {"date": "2026-12-31", "intervals": [["20:00", "04:00"]]},
            {"date": "2026-12-25", "intervals": []},
        ],
    }
    assert parse_hours(written).to_json() == {
        "weekly": {"mon": [["00:00", "24:00"]], "fri": [["18:00", "24:00"]]},
        "exceptions": [
            {"date": "2026-12-25", "intervals": []},
            {"date": "2026-12-31", "intervals": [["20:00", "04:00"]]},
        ],
    }
    again = parse_hours(written).to_json()
    assert parse_hours(again) == parse_hours(written)


@pytest.mark.parametrize(
    ("written", "field", "says"),
    [
        ([], "hours", "must be an object"),
        ({}, "hours.weekly", "is required"),
        ({"weekly": {}, "holidays": []}, "hours.holidays", "unknown field"),
        ({"weekly": {"monday": []}}, "hours.weekly.monday", "unknown day"),
        ({"weekly": {"mon": "09:00-17:00"}}, "hours.weekly.mon", "must be an array"),
        ({"weekly": {"mon": [["9:00", "17:00"]]}}, "hours.weekly.mon[0]", "HH:MM"),
        ({"weekly": {"mon": [["09:00", "24:30"]]}}, "hours.weekly.mon[0]", "HH:MM"),
        ({"weekly": {"mon": [["24:00", "02:00"]]}}, "hours.weekly.mon[0]", "before 24:00"),
        ({"weekly": {"mon": [["09:00", "09:00"]]}}, "hours.weekly.mon[0]", "same time"),
        ({"weekly": {"mon": [["09:00"]]}}, "hours.weekly.mon[0]", "interval"),
        ({"weekly": {"mon": [["12:00", "14:00"], ["09:00", "11:00"]]}}, "hours.weekly.mon[1]", "in order"),
        ({"weekly": {"mon": [["09:00", "13:00"], ["12:00", "14:00"]]}}, "hours.weekly.mon[1]", "no overlap"),
        ({"weekly": {"mon": [[f"0{i}:00", f"0{i}:30"] for i in range(7)]}}, "hours.weekly.mon", "at most 6"),
        ({"weekly": {}, "exceptions": {}}, "hours.exceptions", "must be an array"),
        ({"weekly": {}, "exceptions": [{"date": "2026-02-30", "intervals": []}]}, "hours.exceptions[0].date", "YYYY"),
        ({"weekly": {}, "exceptions": [{"date": "2026-12-25"}]}, "hours.exceptions[0]", "exactly date and intervals"),
        (
            {"weekly": {}, "exceptions": [{"date": "2026-12-25", "intervals": []}] * 2},
            "hours.exceptions[1].date",
            "given twice",
        ),
        (
            {"weekly": {}, "exceptions": [{"date": f"2026-01-{d:02d}", "intervals": []} for d in range(1, 32)] * 4},
            "hours.exceptions",
            "at most 100",
        ),
    ],
)
def test_malformed_hours_name_the_place_at_fault(written: object, field: str, says: str) -> None:
    with pytest.raises(InvalidHours) as caught:
        parse_hours(written)
    assert [e.field for e in caught.value.errors] == [field]
    assert says in caught.value.errors[0].message


def test_every_fault_is_named_at_once() -> None:
    with pytest.raises(InvalidHours) as caught:
        parse_hours({"weekly": {"mon": [["25:00", "26:00"]], "xyz": []}, "exceptions": [{"date": 1, "intervals": 2}]})
    assert sorted(e.field for e in caught.value.errors) == [
        "hours.exceptions[0].date",
        "hours.exceptions[0].intervals",
        "hours.weekly.mon[0]",
        "hours.weekly.xyz",
    ]


_clock = st.integers(0, 24 * 60).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(_clock, _clock), max_size=3),
    st.sampled_from(EVERY_DAY),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Pacific/Auckland", "Australia/Lord_Howe", "Asia/Kolkata"]),
)
def test_the_state_agrees_with_a_minute_by_minute_walk(
    raw: list[tuple[str, str]], day: str, when: datetime, zone_name: str
) -> None:
    """Against a plain reference: walk the real minutes from the instant and ask each one."""
    try:
        h = parse_hours({"weekly": {day: [list(i) for i in raw]}})
    except InvalidHours:
        return
    zone = ZoneInfo(zone_name)
    at = when.replace(second=0, microsecond=0, tzinfo=UTC)
    found = open_state(h, zone, at)
    assert is_open(h, zone, at) is found.open
    if found.next_change is not None:
        minutes = int((found.next_change - at).total_seconds() // 60)
        assert minutes >= 1
        # Every minute before the change has the state; the change itself has the other.
        for m in sorted({0, 1, minutes // 2, minutes - 1}):
            assert is_open(h, zone, at + timedelta(minutes=m)) is found.open
        assert is_open(h, zone, found.next_change) is not found.open


def test_a_business_time_zone_comes_from_its_coordinates_across_the_date_line_and_near_the_pole() -> None:
    assert zone_at(-18.14, 178.44) == "Pacific/Fiji"  # Suva
    assert zone_at(-16.8, -179.9) == "Pacific/Fiji"  # Fiji east of the 180th meridian
    assert zone_at(64.73, 177.5) == "Asia/Anadyr"  # Chukotka
    assert zone_at(78.22, 15.65) == "Arctic/Longyearbyen"  # Svalbard
    assert zone_at(0.0, 0.0) == "Etc/GMT"  # at sea: the nautical zone
    assert zone_at(-36.85, 174.76) == "Pacific/Auckland"


@pytest.mark.parametrize("bad", [None, 5, "", "Mars/Olympus_Mons", "../../etc/passwd", "Europe/Berlin\x00", "x" * 65])
def test_an_unknown_time_zone_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="time zone"):
        check_zone(bad)
    assert check_zone("America/New_York") == "America/New_York"
