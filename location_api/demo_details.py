"""Synthetic details for the demo businesses: opening hours, price level and rating,
plausible for their category, the same on every machine (chosen by the CRC-32 of the name,
as the category is), and not real.

GeoNames places are towns, not shops: these details only give the demo something to filter
and show. Each category has a few weekly patterns (a bakery opens early and shuts on Sunday
noon, some restaurants are bars open past midnight at weekends, a few groceries, fuel
stations and every hotel are open around the clock) and a range of price levels; ratings run
from 2.5 to 5.0 over 1 to about 1,000 reviews; a third of some categories' businesses have
a second category (:data:`ALSO`). The time zone is left to the coordinates;
phone and website are left out, so that no demo business shows a real number or address.
"""

from __future__ import annotations

import zlib

import orjson

from location_api.hours import parse_hours

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
_WEEK = (*_WEEKDAYS, "sat", "sun")
_ALWAYS = {day: [["00:00", "24:00"]] for day in _WEEK}


def _days(days: tuple[str, ...], *intervals: tuple[str, str]) -> dict[str, list[list[str]]]:
    return {day: [list(i) for i in intervals] for day in days}


#: Each category's weekly patterns (a name picks one).
PATTERNS: dict[str, tuple[dict[str, list[list[str]]], ...]] = {
    "restaurant": (
        _days(("tue", "wed", "thu", "fri", "sat", "sun"), ("11:30", "14:30"), ("18:00", "22:30")),
        {**_days(("mon", "tue", "wed", "thu"), ("17:00", "23:30")), **_days(("fri", "sat"), ("17:00", "02:00"))},
        _days(_WEEK, ("12:00", "22:00")),
    ),
    "cafe": (
        {**_days(_WEEKDAYS, ("07:00", "18:00")), **_days(("sat", "sun"), ("08:00", "17:00"))},
        _days(_WEEK, ("08:00", "20:00")),
    ),
    "bakery": ({**_days((*_WEEKDAYS, "sat"), ("06:30", "18:30")), **_days(("sun",), ("07:00", "12:00"))},),
    "grocery": (
        {**_days((*_WEEKDAYS, "sat"), ("08:00", "21:00")), **_days(("sun",), ("10:00", "18:00"))},
        _ALWAYS,
    ),
    "pharmacy": ({**_days(_WEEKDAYS, ("08:30", "19:00")), **_days(("sat",), ("09:00", "13:00"))},),
    "hotel": (_ALWAYS,),
    "fuel": (_days(_WEEK, ("06:00", "22:00")), _ALWAYS),
    "bank": (_days(_WEEKDAYS, ("09:00", "16:00")), _days(_WEEKDAYS, ("09:00", "12:30"), ("13:30", "16:00"))),
    "bookstore": (_days((*_WEEKDAYS, "sat"), ("10:00", "19:00")),),
    "gym": ({**_days(_WEEKDAYS, ("06:00", "23:00")), **_days(("sat", "sun"), ("08:00", "20:00"))},),
    "hardware": ({**_days(_WEEKDAYS, ("07:30", "18:00")), **_days(("sat",), ("08:00", "14:00"))},),
    "florist": ({**_days(_WEEKDAYS, ("09:00", "18:00")), **_days(("sat",), ("09:00", "13:00"))},),
}

#: The stored JSON (``businesses.hours``) of every pattern, checked by the parser once.
_STORED = {
    category: tuple(orjson.dumps(parse_hours({"weekly": weekly}).to_json()).decode() for weekly in patterns)
    for category, patterns in PATTERNS.items()
}


#: Each category's price levels, cheapest and dearest.
PRICES = {
    "restaurant": (1, 4),
    "cafe": (1, 2),
    "bakery": (1, 2),
    "grocery": (1, 2),
    "pharmacy": (2, 2),
    "hotel": (2, 4),
    "fuel": (1, 1),
    "bank": (1, 1),
    "bookstore": (2, 3),
    "gym": (2, 3),
    "hardware": (1, 2),
    "florist": (2, 3),
}


#: What a third of each category's businesses also are (a bakery that serves coffee).
ALSO = {
    "bakery": "cafe",
    "restaurant": "bar",
    "hotel": "restaurant",
    "grocery": "bakery",
    "fuel": "grocery",
    "bookstore": "cafe",
}


def demo_details(name: str, category: str) -> tuple[str | None, int | None, float, int, list[str]]:
    """A demo business's hours (their stored JSON), price level, rating, review count and
    further categories (``None`` hours and price for a category without them)."""
    # The category took the CRC modulo 12; the bits above pick the rest.
    bits = zlib.crc32(name.encode("utf-8")) // 12
    patterns = _STORED.get(category)
    hours = patterns[bits % len(patterns)] if patterns else None
    lo, hi = PRICES.get(category, (0, -1))
    price = lo + (bits >> 4) % (hi - lo + 1) if hi >= lo else None
    reviews = int(10 ** (((bits >> 8) % 1000) / 333))
    rating = round(2.5 + ((bits >> 18) % 26) / 10, 1)
    also = ALSO.get(category)
    return hours, price, rating, reviews, [also] if also and (bits >> 12) % 3 == 0 else []
