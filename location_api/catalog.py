"""The businesses an instance holds in memory: each one's search card, and one spatial index per strategy.

A card (:mod:`location_api.cards`) is what a search needs of a business. The other fields
are inside its JSON; :meth:`Catalog.business` reads them back when a write needs the old
state, which is rare next to searches.

A catalog larger than the card budget (``Settings.api_cards_max``) holds *positions only*:
its indexes, and no card (:meth:`Catalog.of_positions`). A search then reads its page's
businesses by id (:func:`location_api.hydrate.hydrate_hits`), and a category search is
answered by the ``sql`` strategy: no category is held either.

A :class:`Catalog` is built in one go (in an executor thread: it is CPU-heavy) and then only
changed on the event loop's thread, one business at a time, by the refresher. A rebuild makes
a new catalog and swaps it in; the old one is never touched by two threads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from geo_index import GeohashIndex, IndexBase, QuadTree, S2Index

from location_api.cards import Card, CardTable, card_for
from location_api.filters import Facets, facets_of
from location_api.models import Business
from location_api.render import business_from_prefix
from location_api.contract import MEMORY_STRATEGIES


def make_index(strategy: str, max_radius_m: float) -> IndexBase:
    """A new, empty index for a strategy. Its changes wait in its delta until the refresher
    merges them, in a worker thread (:meth:`location_api.refresh.Refresher.poll`).

    Args:
        strategy: ``geohash``, ``quadtree`` or ``s2``.
        max_radius_m: the largest radius it must accept, metres.

    Raises:
        ValueError: an unknown strategy.
    """
    if strategy == "geohash":
        return GeohashIndex(max_radius_m=max_radius_m, merge_every=None)
    if strategy == "quadtree":
        return QuadTree(max_radius_m=max_radius_m, merge_every=None)
    if strategy == "s2":
        return S2Index(max_radius_m=max_radius_m, merge_every=None)
    raise ValueError(f"unknown in-memory strategy {strategy!r}")


def build_indexes(
    ids: npt.NDArray[np.int64],
    lats: npt.NDArray[np.float64],
    lons: npt.NDArray[np.float64],
    *,
    max_radius_m: float,
    strategies: Sequence[str],
) -> dict[str, IndexBase]:
    """One index per strategy holding these points (``bulk_load_arrays``: no tuple per point).

    Args:
        ids: business ids.
        lats: their latitudes, degrees.
        lons: their longitudes, degrees.
        max_radius_m: the largest search radius, metres.
        strategies: which indexes to build.
    """
    indexes: dict[str, IndexBase] = {}
    for strategy in strategies:
        index = make_index(strategy, max_radius_m)
        index.bulk_load_arrays(ids, lats, lons)
        indexes[strategy] = index
    return indexes


class Catalog:
    """Business cards by id plus one index per in-memory strategy, always in step.

    Args:
        cards: the card of every business, by id; ``None`` for a catalog of positions only.
        indexes: an index per strategy holding exactly those ids at those positions.
    """

    def __init__(self, cards: dict[int, Card] | None, indexes: dict[str, IndexBase]) -> None:
        #: The cards, or ``None`` when the catalog holds positions only.
        self.cards = None if cards is None else CardTable(cards)
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

        A caller that keeps the catalog for long builds it within
        :meth:`geo_common.tuning.ProcessTuning.building`, as the refresher does: otherwise
        collections walk what the build makes, during the build and after it.

        Args:
            rows: ``(id, name, latitude, longitude, category, address, time_zone, hours,
                price_level, rating)`` rows (:data:`location_api.catalog_queries.LISTING_COLUMNS`);
                a row may end after ``address`` (no details known).
            max_radius_m: the largest search radius, metres.
            strategies: which indexes to build.

        Returns:
            The new catalog.
        """
        cards: dict[int, Card] = {}
        ids: list[int] = []
        lats: list[float] = []
        lons: list[float] = []
        for bid, name, lat, lon, category, address, *details in rows:
            business = Business(bid, name, lat, lon, category, address)
            cards[bid] = card_for(business, facets_of(name, lat, lon, category, *details))
            ids.append(bid)
            lats.append(lat)
            lons.append(lon)
        indexes = build_indexes(
            np.array(ids, np.int64),
            np.array(lats, np.float64),
            np.array(lons, np.float64),
            max_radius_m=max_radius_m,
            strategies=strategies,
        )
        return cls(cards, indexes)

    @classmethod
    def of_positions(
        cls,
        ids: npt.NDArray[np.int64],
        lats: npt.NDArray[np.float64],
        lons: npt.NDArray[np.float64],
        *,
        max_radius_m: float,
        strategies: Sequence[str] = MEMORY_STRATEGIES,
    ) -> Catalog:
        """A catalog of positions only: its indexes, no card (CPU-heavy: run it in an executor).

        The arguments are those of :func:`build_indexes` (degrees, metres).
        """
        return cls(None, build_indexes(ids, lats, lons, max_radius_m=max_radius_m, strategies=strategies))

    def __len__(self) -> int:
        if self.cards is not None:
            return self.cards.count
        # Positions only: every index holds every business (none: nothing is held).
        return len(next(iter(self.indexes.values()))) if self.indexes else 0

    def business(self, business_id: int) -> Business | None:
        """A business as held (read back from its card), or ``None`` (also for positions only)."""
        card = None if self.cards is None else self.cards.get(business_id)
        return None if card is None else business_from_prefix(card.hit)

    def facets(self, business_id: int) -> Facets | None:
        """What the filters read of a business as held, or ``None`` (also for positions only)."""
        card = None if self.cards is None else self.cards.get(business_id)
        return None if card is None else card.facets

    def position(self, business_id: int) -> tuple[float, float] | None:
        """Where a business is held, ``(latitude, longitude)`` in degrees, or ``None``."""
        if self.cards is not None:
            old = self.business(business_id)
            return None if old is None else (old.latitude, old.longitude)
        index = next(iter(self.indexes.values()), None)  # positions only: every index holds them all
        if index is None or business_id not in index:
            return None
        return index.position(business_id)

    def apply(self, business_id: int, business: Business | None, facets: Facets | None = None) -> Business | None:
        """Make one business's entry match the database (idempotent).

        Args:
            business_id: the business.
            business: its current state, or ``None`` when it no longer exists.
            facets: what the filters read of it (with ``business``; needed when cards are held).

        Returns:
            The business as held before (``None`` if it was not held, or when the catalog
            holds positions only: it does not know the rest).
        """
        old = self.business(business_id)
        if self.cards is None:
            was = self.position(business_id)
        else:
            was = None if old is None else (old.latitude, old.longitude)
        if business is None:
            if was is not None:
                for index in self.indexes.values():
                    index.remove(business_id)
                if self.cards is not None:
                    self.cards.drop(business_id)
            return old
        if was is None:
            for index in self.indexes.values():
                index.insert(business_id, business.latitude, business.longitude)
        elif was != (business.latitude, business.longitude):
            for index in self.indexes.values():
                index.move(business_id, business.latitude, business.longitude)
        if self.cards is not None:
            assert facets is not None, "a catalog of cards holds each business's facets"
            self.cards.put(business_id, card_for(business, facets))
        return old
