"""The businesses an instance holds in memory: each one's search card, and one spatial index per strategy.

A card is what a search needs of a business: its hit already rendered as JSON
(:func:`location_api.render.hit_prefix`) and its category (for ``category=`` filters). The
other fields are inside the JSON; :meth:`Catalog.business` reads them back when a write
needs the old state, which is rare next to searches.

A :class:`Catalog` is built in one go (in an executor thread: it is CPU-heavy) and then only
changed on the event loop's thread, one business at a time, by the refresher. A rebuild makes
a new catalog and swaps it in; the old one is never touched by two threads.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from geo_index import GeohashIndex, QuadTree, S2Index, SpatialIndex

from location_api.models import Business
from location_api.render import business_from_prefix, hit_prefix
from location_api.settings import MEMORY_STRATEGIES


class Card(NamedTuple):
    """What a search needs of one business.

    Attributes:
        hit: its search-hit JSON up to the distance (:func:`location_api.render.hit_prefix`).
        category: its category, for ``category=`` filters.
    """

    hit: bytes
    category: str


def make_index(strategy: str, max_radius_m: float) -> SpatialIndex[int]:
    """A new, empty index for a strategy.

    Args:
        strategy: ``geohash``, ``quadtree`` or ``s2``.
        max_radius_m: the largest radius it must accept, metres.

    Raises:
        ValueError: an unknown strategy.
    """
    if strategy == "geohash":
        return GeohashIndex(max_radius_m=max_radius_m)
    if strategy == "quadtree":
        return QuadTree(max_radius_m=max_radius_m)
    if strategy == "s2":
        return S2Index(max_radius_m=max_radius_m)
    raise ValueError(f"unknown in-memory strategy {strategy!r}")


def card_for(business: Business, intern: Any = sys.intern) -> Card:
    """The search card of a business (its category interned: many businesses share one)."""
    return Card(hit_prefix(business), intern(business.category))


#: Ids are kept in a list indexed by id while the largest is at most this many times the
#: number of businesses plus :data:`DENSE_SLACK`; beyond that, in a dict.
DENSE_FACTOR = 2
DENSE_SLACK = 1 << 16


class CardTable:
    """Cards by business id.

    ``slots`` is a list indexed by id while ids are dense (a database sequence hands them out
    so), else a dict; both are read as ``slots[id]``. A search reads up to 100 cards at random
    places in a large catalog, and a list slot costs one memory access where a dict entry
    costs three or four (20 random reads among a million: 3.8 us against 9.7 us).

    Args:
        cards: the cards, by id.
    """

    def __init__(self, cards: dict[int, Card]) -> None:
        self.slots: list[Card | None] | dict[int, Card] = dict(cards)
        self.count = len(cards)
        if not cards or min(cards) >= 0:
            self._to_list(max(cards, default=0))

    def _to_list(self, top: int) -> None:
        if top > DENSE_FACTOR * self.count + DENSE_SLACK:
            return
        slots: list[Card | None] = [None] * (top + 1)
        for bid, card in self.slots.items():  # type: ignore[union-attr]  # a dict until now
            slots[bid] = card
        self.slots = slots

    def get(self, business_id: int) -> Card | None:
        """The card of a business, or ``None``."""
        slots = self.slots
        if isinstance(slots, dict):
            return slots.get(business_id)
        return slots[business_id] if 0 <= business_id < len(slots) else None

    def put(self, business_id: int, card: Card) -> None:
        """Add or replace a business's card."""
        slots = self.slots
        if self.get(business_id) is None:
            self.count += 1
        if isinstance(slots, list):
            if 0 <= business_id < len(slots):
                slots[business_id] = card
                return
            if 0 <= business_id <= DENSE_FACTOR * self.count + DENSE_SLACK:
                slots.extend([None] * (business_id + 1 - len(slots)))
                slots[business_id] = card
                return
            self.slots = slots = {bid: c for bid, c in enumerate(slots) if c is not None}
        slots[business_id] = card

    def drop(self, business_id: int) -> None:
        """Forget a business's card (it must be held)."""
        slots = self.slots
        if isinstance(slots, dict):
            del slots[business_id]
        else:
            slots[business_id] = None
        self.count -= 1


class Catalog:
    """Business cards by id plus one index per in-memory strategy, always in step.

    Args:
        cards: the card of every business, by id.
        indexes: an index per strategy holding exactly those ids at those positions.
    """

    def __init__(self, cards: dict[int, Card], indexes: dict[str, SpatialIndex[int]]) -> None:
        self.cards = CardTable(cards)
        self.indexes = indexes

    @classmethod
    def build(
        cls,
        rows: Iterable[Sequence[Any]],
        *,
        max_radius_m: float,
        strategies: Sequence[str] = MEMORY_STRATEGIES,
    ) -> Catalog:
        """Build a catalog from database rows (CPU-heavy: run it in an executor).

        Args:
            rows: ``(id, name, latitude, longitude, category, address)`` rows.
            max_radius_m: the largest search radius, metres.
            strategies: which indexes to build.

        Returns:
            The new catalog.
        """
        cards: dict[int, Card] = {}
        points = []
        for bid, name, lat, lon, category, address in rows:
            cards[bid] = card_for(Business(bid, name, lat, lon, category, address))
            points.append((bid, lat, lon))
        indexes: dict[str, SpatialIndex[int]] = {}
        for strategy in strategies:
            index = make_index(strategy, max_radius_m)
            index.bulk_load(points)
            indexes[strategy] = index
        return cls(cards, indexes)

    def __len__(self) -> int:
        return self.cards.count

    def business(self, business_id: int) -> Business | None:
        """A business as held (read back from its card), or ``None``."""
        card = self.cards.get(business_id)
        return None if card is None else business_from_prefix(card.hit)

    def apply(self, business_id: int, business: Business | None) -> Business | None:
        """Make one business's entry match the database (idempotent).

        Args:
            business_id: the business.
            business: its current state, or ``None`` when it no longer exists.

        Returns:
            The business as held before (``None`` if it was not held).
        """
        old = self.business(business_id)
        if business is None:
            if old is not None:
                for index in self.indexes.values():
                    index.remove(business_id)
                self.cards.drop(business_id)
            return old
        if old is None:
            for index in self.indexes.values():
                index.insert(business_id, business.latitude, business.longitude)
        elif (old.latitude, old.longitude) != (business.latitude, business.longitude):
            for index in self.indexes.values():
                index.move(business_id, business.latitude, business.longitude)
        self.cards.put(business_id, card_for(business))
        return old
