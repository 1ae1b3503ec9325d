"""What a search may ask of a business besides where it is, and the one function that checks it.

A business's *facets* (:class:`Facets`) are what the filters read: its categories, price
level, rating, hours in its time zone, and name. The in-memory catalog keeps them per
business; the ``sql`` strategy makes them from the candidate rows it reads. Both then ask
:func:`matcher`, so the two answer every filter alike.

* ``category``: any of several, compared case-folded (``Cafe`` is ``cafe``);
* ``price``: any of the levels 1 to 4 (a business whose level is not known never passes);
* ``min_rating``: a rating at least this (a business without reviews never passes);
* ``open_now`` / ``open_at``: open at that instant in its own time zone (a business whose
  hours are not known never passes);
* ``q``: :mod:`location_api.text_match` over its name and categories.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NamedTuple

import orjson

from location_api.hours import OpeningHours, is_open, parse_hours
from location_api.text_match import TextQuery
from location_api.time_zones import zone, zone_at

#: The categories the demo uses and clients are advised to use (categories are free text:
#: a business may name another, and a filter finds it all the same).
VOCABULARY = (
    "restaurant",
    "cafe",
    "bakery",
    "grocery",
    "pharmacy",
    "hotel",
    "fuel",
    "bank",
    "bookstore",
    "gym",
    "hardware",
    "florist",
)
#: Most categories one filter names.
MAX_CATEGORIES = 10
PRICE_LEVELS = (1, 2, 3, 4)


class Facets(NamedTuple):
    """What the filters read of one business.

    Attributes:
        name: its name (for ``q``).
        categories: its categories, the main one first, case-folded (empty ones left out).
        price_level: 1 to 4, or ``None``: not known.
        rating: 0 to 5, or ``None``: no reviews.
        hours: its opening hours, or ``None``: not known.
        time_zone: the IANA zone its hours are read in.
    """

    name: str
    categories: tuple[str, ...]
    price_level: int | None
    rating: float | None
    hours: OpeningHours | None
    time_zone: str


@functools.lru_cache(maxsize=4096)
def _stored_hours(text: str) -> OpeningHours:
    # A catalog's businesses share a few dozen weekly patterns: each is parsed once.
    return parse_hours(orjson.loads(text))


@functools.lru_cache(maxsize=4096)
def _category_key(category: str, more: tuple[str, ...]) -> tuple[str, ...]:
    # Shared by every business of the same categories (most have one of a dozen).
    return tuple(dict.fromkeys(c.casefold() for c in (category, *more) if c))


@functools.lru_cache(maxsize=1024)
def _shared(value: float) -> float:
    # Ratings repeat (4.5, 4.6): each value is then one float object, not one per business.
    return value


def facets_of(
    name: str,
    latitude: float,
    longitude: float,
    category: str,
    time_zone: str | None = None,
    hours: str | None = None,
    price_level: int | None = None,
    rating: float | None = None,
    more_categories: Sequence[str] | None = None,
) -> Facets:
    """The facets of a stored business: ``hours`` as stored (JSON text) and ``time_zone``
    ``None`` when its row names none (then the coordinates' zone); details left out are not
    known."""
    return Facets(
        name,
        _category_key(category, tuple(more_categories or ())),
        price_level,
        None if rating is None else _shared(rating),
        None if hours is None else _stored_hours(hours),
        time_zone or zone_at(latitude, longitude),
    )


class SearchFilters(NamedTuple):
    """The filters of one search; ``None`` (or false) for each one not asked.

    Attributes:
        categories: any of these categories (case-folded).
        price_levels: any of these price levels.
        min_rating: the lowest rating.
        open_now: open at the time of the search (its first page's: the cursor keeps it).
        open_at: open at this instant (aware).
        q: the words of the text query (:func:`location_api.text_match.words`).
    """

    categories: frozenset[str] | None = None
    price_levels: frozenset[int] | None = None
    min_rating: float | None = None
    open_now: bool = False
    open_at: datetime | None = None
    q: tuple[str, ...] | None = None

    @property
    def any(self) -> bool:
        """True when at least one filter is asked."""
        return self != NO_FILTERS

    def fingerprint(self) -> bytes:
        """The filters as bytes, the same for the same filters (a cursor is tied to them)."""
        if not self.any:
            return b""
        return orjson.dumps(
            [
                sorted(self.categories or ()),
                sorted(self.price_levels or ()),
                self.min_rating,
                self.open_now,
                None if self.open_at is None else self.open_at.timestamp(),
                list(self.q or ()),
            ]
        )


#: No filter at all.
NO_FILTERS = SearchFilters()


def matcher(filters: SearchFilters, at: datetime | None) -> Callable[[Facets], bool]:
    """The check of one search: whether a business's facets pass every filter.

    Args:
        filters: the search's filters.
        at: the instant ``open_now`` means (ignored without it).

    Returns:
        A function of :class:`Facets`; it remembers, for this search only, what several
        businesses share (a weekly pattern in a zone, a word of a name).
    """
    categories = filters.categories
    prices = filters.price_levels
    min_rating = filters.min_rating
    instant = filters.open_at if filters.open_at is not None else at if filters.open_now else None
    text = None if filters.q is None else TextQuery(filters.q)
    # By the hours object's id and the zone; the object is kept beside the verdict, so an id
    # is never reused while its entry lives.
    open_by_pattern: dict[tuple[int, str], tuple[OpeningHours, bool]] = {}

    def passes(f: Facets) -> bool:
        if categories is not None and categories.isdisjoint(f.categories):
            return False
        if prices is not None and f.price_level not in prices:
            return False
        if min_rating is not None and (f.rating is None or f.rating < min_rating):
            return False
        if instant is not None:
            if f.hours is None:
                return False
            key = (id(f.hours), f.time_zone)
            known = open_by_pattern.get(key)
            if known is None:
                known = open_by_pattern[key] = (f.hours, is_open(f.hours, zone(f.time_zone), instant))
            if not known[1]:
                return False
        return text is None or text.score((f.name, *f.categories)) > 0

    return passes


def relevance(filters: SearchFilters) -> Callable[[Facets], int]:
    """A business's relevance to the search's ``q`` (:meth:`location_api.text_match.TextQuery.score`)."""
    text = TextQuery(filters.q or ())
    return lambda f: text.score((f.name, *f.categories))
