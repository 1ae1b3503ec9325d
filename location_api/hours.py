"""A business's opening hours in its own local time: read from JSON, and asked whether the
business is open at an instant and when that next changes.

The JSON a client writes (and reads back, normalised)::

    {"weekly": {"mon": [["09:00", "17:00"]], "fri": [["18:00", "02:00"]]},
     "exceptions": [{"date": "2026-12-25", "intervals": []}]}

* ``weekly`` names the days that have hours (``mon`` to ``sun``); a day it leaves out is
  closed. Each day holds up to six intervals ``[open, close]`` of wall-clock times
  ``"HH:MM"``, in order and not overlapping. ``close`` may be ``"24:00"``; a ``close`` at or
  before ``open`` runs past midnight into the next day (``["18:00", "02:00"]``), and
  ``["00:00", "24:00"]`` is the whole day. An interval belongs to the day it opens on.
* ``exceptions`` (optional, up to 100) replace the weekly intervals of given local dates
  (``[]``: closed that day). An interval of the day before that runs past midnight still
  runs: the exception replaces what *opens* on its date.

Wall-clock times are read in the business's IANA time zone: across a daylight-saving change
an interval keeps its wall-clock times, so its length in real time changes. A time the
clocks skip (02:30 when they jump from 02:00 to 03:00) is read as that many minutes after
the jump (03:30), and a time that happens twice (02:30 when they fall back) as its first
occurrence, as calendars do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from geo_common.problems import FieldError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_INTERVALS_PER_DAY = 6
MAX_EXCEPTIONS = 100
_DAY_MINUTES = 1440
_TIME = re.compile(r"([01][0-9]|2[0-4]):([0-5][0-9])")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
#: How far ahead the next change is looked for: past the longest run of closed exception
#: dates, plus a week of weekly hours.
HORIZON_DAYS = MAX_EXCEPTIONS + 8

#: An interval as minutes after its day's local midnight: ``0 <= open < 1440`` and
#: ``open < close <= open + 1440`` (a close past 1440 is on the next day).
Interval = tuple[int, int]


class InvalidHours(ValueError):
    """The hours are malformed: ``errors`` names each place at fault (``hours.weekly.fri[0]``)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """Weekly intervals (Monday first) and the local dates whose intervals replace them."""

    weekly: tuple[tuple[Interval, ...], ...]
    exceptions: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        """The intervals that open on a local date."""
        found = self.exceptions.get(day)
        return self.weekly[day.weekday()] if found is None else found

    def to_json(self) -> dict[str, object]:
        """The JSON object, as written but normalised (closed days left out, dates in order)."""
        return {
            "weekly": {name: _intervals_json(days) for name, days in zip(DAYS, self.weekly, strict=True) if days},
            "exceptions": [
                {"date": day.isoformat(), "intervals": _intervals_json(self.exceptions[day])}
                for day in sorted(self.exceptions)
            ],
        }


@dataclass(frozen=True, slots=True)
class OpenState:
    """Whether a business is open at an instant, and the instant that changes (``None``: not
    within :data:`HORIZON_DAYS`, as for a business open around the clock or one without
    any hours ahead)."""

    open: bool
    next_change: datetime | None


def is_open(hours: OpeningHours, zone: ZoneInfo, at: datetime) -> bool:
    """Whether the business is open at ``at`` (an aware instant).

    Only the local day of ``at`` and the day before can hold it: no interval is longer than a
    day.
    """
    today = at.astimezone(zone).date()
    return any(start <= at < end for start, end in _ranges(hours, zone, today - timedelta(days=1), 2))


def open_state(hours: OpeningHours, zone: ZoneInfo, at: datetime) -> OpenState:
    """Whether the business is open at ``at`` and when that next changes.

    Intervals that touch or overlap (an overnight one and the next morning's, say) are one
    opening: the change is when the last of them closes.
    """
    first = at.astimezone(zone).date() - timedelta(days=1)
    run: tuple[datetime, datetime] | None = None
    for start, end in _ranges(hours, zone, first, HORIZON_DAYS + 1):
        if run is not None and start <= run[1]:
            run = (run[0], max(run[1], end))
            continue
        if run is not None and run[0] <= at < run[1]:
            return OpenState(True, run[1])
        if start > at:
            return OpenState(False, start)
        run = (start, end)
    if run is not None and run[0] <= at < run[1]:
        horizon = datetime.combine(first + timedelta(days=HORIZON_DAYS + 1), datetime.min.time(), zone)
        return OpenState(True, run[1] if run[1] < horizon else None)
    return OpenState(False, None)


def _ranges(hours: OpeningHours, zone: ZoneInfo, first: date, days: int) -> Iterator[tuple[datetime, datetime]]:
    """The intervals opening on ``days`` local dates from ``first``, as instants in order of
    opening (wall-clock order within a day is instant order: a repeated time is read as its
    first occurrence)."""
    for offset in range(days):
        day = first + timedelta(days=offset)
        for opens, closes in hours.intervals_on(day):
            start, end = _instant(day, opens, zone), _instant(day, closes, zone)
            if start < end:  # an interval inside a skipped hour never opens
                yield start, end


def _instant(day: date, minute: int, zone: ZoneInfo) -> datetime:
    day += timedelta(days=minute // _DAY_MINUTES)
    minute %= _DAY_MINUTES
    # fold=0: a repeated wall time is its first occurrence; a skipped one is read with the
    # offset before the jump, which lands that many minutes after it.
    return datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone).astimezone(UTC)


def parse_hours(value: object, name: str = "hours") -> OpeningHours:
    """Read the JSON of opening hours (the module's docstring says what it may hold).

    Raises:
        InvalidHours: naming every place at fault, below ``name``.
    """
    errors: list[FieldError] = []
    if not isinstance(value, dict):
        raise InvalidHours([FieldError(name, "must be an object with weekly and exceptions")])
    for key in value:
        if key not in ("weekly", "exceptions"):
            errors.append(FieldError(f"{name}.{key}", "unknown field; known: weekly, exceptions"))
    weekly: list[tuple[Interval, ...]] = [()] * 7
    raw_weekly = value.get("weekly")
    if not isinstance(raw_weekly, dict):
        errors.append(FieldError(f"{name}.weekly", "is required: an object of days (mon to sun)"))
    else:
        for day, intervals in raw_weekly.items():
            if day not in DAYS:
                errors.append(FieldError(f"{name}.weekly.{day}", f"unknown day; days: {', '.join(DAYS)}"))
                continue
            weekly[DAYS.index(day)] = _day(intervals, f"{name}.weekly.{day}", errors)
    exceptions = _exceptions(value.get("exceptions", []), f"{name}.exceptions", errors)
    if errors:
        raise InvalidHours(errors)
    return OpeningHours(tuple(weekly), exceptions)


def _exceptions(value: object, where: str, errors: list[FieldError]) -> dict[date, tuple[Interval, ...]]:
    if not isinstance(value, list):
        errors.append(FieldError(where, "must be an array of {date, intervals}"))
        return {}
    if len(value) > MAX_EXCEPTIONS:
        errors.append(FieldError(where, f"must hold at most {MAX_EXCEPTIONS} dates, got {len(value)}"))
        return {}
    found: dict[date, tuple[Interval, ...]] = {}
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if not isinstance(item, dict) or set(item) != {"date", "intervals"}:
            errors.append(FieldError(at, "must be an object with exactly date and intervals"))
            continue
        day = _date(item["date"])
        if day is None:
            errors.append(FieldError(f"{at}.date", "must be a date YYYY-MM-DD"))
        elif day in found:
            errors.append(FieldError(f"{at}.date", f"{day.isoformat()} is given twice"))
        intervals = _day(item["intervals"], f"{at}.intervals", errors)
        if day is not None:
            found[day] = intervals
    return found


def _day(value: object, where: str, errors: list[FieldError]) -> tuple[Interval, ...]:
    if not isinstance(value, list):
        errors.append(FieldError(where, 'must be an array of intervals ["HH:MM", "HH:MM"]'))
        return ()
    if len(value) > MAX_INTERVALS_PER_DAY:
        errors.append(FieldError(where, f"must hold at most {MAX_INTERVALS_PER_DAY} intervals, got {len(value)}"))
        return ()
    intervals: list[Interval] = []
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        try:
            interval = _interval(item)
        except ValueError as exc:
            errors.append(FieldError(at, str(exc)))
            continue
        if intervals and interval[0] < intervals[-1][1]:
            errors.append(FieldError(at, "must open after the interval before it closes (in order, no overlap)"))
            continue
        intervals.append(interval)
    return tuple(intervals)


def _interval(value: object) -> Interval:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError('must be an interval ["HH:MM", "HH:MM"]')
    opens, closes = (_minute(v) for v in value)
    if opens >= _DAY_MINUTES:
        raise ValueError("must open before 24:00")
    if closes == opens:
        raise ValueError('must not open and close at the same time; the whole day is ["00:00", "24:00"]')
    if closes < opens:  # past midnight
        closes += _DAY_MINUTES
    return opens, closes


def _minute(value: object) -> int:
    matched = _TIME.fullmatch(value) if isinstance(value, str) else None
    if matched is None or (matched[1] == "24" and matched[2] != "00"):
        raise ValueError(f"must be wall-clock times HH:MM from 00:00 to 24:00, got {value!r:.40}")
    return int(matched[1]) * 60 + int(matched[2])


def _date(value: object) -> date | None:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _intervals_json(intervals: tuple[Interval, ...]) -> list[list[str]]:
    return [
        [_clock(opens), _clock(closes if closes == _DAY_MINUTES else closes % _DAY_MINUTES)]
        for opens, closes in intervals
    ]


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
