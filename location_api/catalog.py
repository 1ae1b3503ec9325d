"""The businesses an instance holds in memory: each one's search card, and one spatial index per strategy.

A card (:mod:`location_api.cards`) is what a search needs of a business. The other fields
are inside its JSON; :meth:`Catalog.business` reads them back when a write needs the old
state, which is rare next to searches.

A :class:`Catalog` is built in one go (in an executor thread: it is CPU-heavy) and then only
changed on the event loop's thread, one business at a time, by the refresher. A rebuild makes
a new catalog and swaps it in; the old one is never touched by two threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from geo_index import GeohashIndex, QuadTree, S2Index, SpatialIndex

from location_api import collector
from location_api.cards import Card, CardTable, card_for
from location_api.models import Business
from location_api.render import business_from_prefix
from location_api.settings import MEMORY_STRATEGIES


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


class Catalog:
    """Business cards by id plus one index per in-memory strategy, always in step.

    Args:
        cards: the card of every business, by id.
        indexes: an index per strategy holding exactly those ids at those positions.
    """

    def __init__(self, cards: dict[int, Card], indexes: dict[str, SpatialIndex[int]]) -> None:
        self.cards = CardTable(cards)
        self.indexes = indexes
        #: ``GeohashIndex.compiled_levels()`` of each index that has them, by strategy: what
        #: :func:`location_api.search.plain_body` answers a plain search with in one call.
        self.compiled: dict[str, tuple[Any, int]] = {}
        for strategy, index in indexes.items():
            levels = index.compiled_levels() if isinstance(index, GeohashIndex) else None
            if levels is not None:
                self.compiled[strategy] = levels

    @classmethod
    def build(
        cls,
        rows: Iterable[Sequence[Any]],
        *,
        max_radius_m: float,
        strategies: Sequence[str] = MEMORY_STRATEGIES,
    ) -> Catalog:
        """Build a catalog from database rows (CPU-heavy: run it in an executor).

        The cyclic collector is paused meanwhile (:func:`location_api.collector.paused`);
        a caller that keeps the catalog for long should pause it around the build too, with
        ``freeze``, as the refresher does: otherwise the first collection after the build
        walks everything the build made.

        Args:
            rows: ``(id, name, latitude, longitude, category, address)`` rows.
            max_radius_m: the largest search radius, metres.
            strategies: which indexes to build.

        Returns:
            The new catalog.
        """
        with collector.paused():
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
