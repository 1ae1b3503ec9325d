"""What a search reads of each business it returns: a *card*, and the table of cards by id.

A card holds the business's search hit already rendered as JSON up to the distance
(:func:`location_api.render.hit_prefix`) and its facets (what filters read:
:class:`location_api.filters.Facets`): a page is then one card per hit, its distance
appended, joined (:func:`location_api.render.search_body`).
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

from location_api.filters import Facets
from location_api.models import Business
from location_api.render import hit_prefix


class Card(NamedTuple):
    """What a search needs of one business.

    Attributes:
        hit: its search-hit JSON up to the distance (:func:`location_api.render.hit_prefix`).
        facets: what the filters read of it.
    """

    hit: bytes
    facets: Facets


def card_for(business: Business, facets: Facets, intern: Any = sys.intern) -> Card:
    """The search card of a business (its zone's name interned: many businesses share one)."""
    return Card(hit_prefix(business), facets._replace(time_zone=intern(facets.time_zone)))


#: Ids are kept in a list indexed by id while the largest is at most this many times the
#: number of businesses plus :data:`DENSE_SLACK`; beyond that, in a dict.
DENSE_FACTOR = 2
DENSE_SLACK = 1 << 16


class CardTable:
    """Cards by business id, kept as two parallel tables: ``hits`` (each card's hit prefix)
    and ``facets``.

    Both are lists indexed by id while ids are dense (a database sequence hands them out
    so), else dicts; both are read as ``table[id]``. A search reads up to 100 hit prefixes
    at random places in a large catalog: a list slot that holds the bytes themselves is one
    memory access, where a dict entry is three or four (its index slot, its entry, the
    stored key compared, then the value) and a :class:`Card` tuple one more. Only filtered
    searches read ``facets``.

    Args:
        cards: the cards, by id.
    """

    def __init__(self, cards: dict[int, Card]) -> None:
        self.hits: list[bytes | None] | dict[int, bytes] = {bid: card.hit for bid, card in cards.items()}
        self.facets: list[Facets | None] | dict[int, Facets] = {bid: card.facets for bid, card in cards.items()}
        self.count = len(cards)
        if not cards or min(cards) >= 0:
            self._to_lists(max(cards, default=0))

    def _to_lists(self, top: int) -> None:
        if top > DENSE_FACTOR * self.count + DENSE_SLACK:
            return
        hits: list[bytes | None] = [None] * (top + 1)
        facets: list[Facets | None] = [None] * (top + 1)
        for bid, hit in self.hits.items():  # type: ignore[union-attr]  # dicts until now
            hits[bid] = hit
        for bid, held in self.facets.items():  # type: ignore[union-attr]
            facets[bid] = held
        self.hits, self.facets = hits, facets

    def get(self, business_id: int) -> Card | None:
        """The card of a business, or ``None``."""
        hits = self.hits
        if isinstance(hits, dict):
            hit = hits.get(business_id)
        else:
            hit = hits[business_id] if 0 <= business_id < len(hits) else None
        return None if hit is None else Card(hit, self.facets[business_id])  # type: ignore[arg-type]

    def put(self, business_id: int, card: Card) -> None:
        """Add or replace a business's card."""
        if self.get(business_id) is None:
            self.count += 1
        hits, facets = self.hits, self.facets
        if isinstance(hits, list):
            assert isinstance(facets, list)
            if not 0 <= business_id < len(hits):
                if not 0 <= business_id <= DENSE_FACTOR * self.count + DENSE_SLACK:
                    self.hits = {bid: hit for bid, hit in enumerate(hits) if hit is not None}
                    self.facets = {bid: held for bid, held in enumerate(facets) if held is not None}
                    self.hits[business_id] = card.hit
                    self.facets[business_id] = card.facets
                    return
                grow = [None] * (business_id + 1 - len(hits))
                hits.extend(grow)
                facets.extend(grow)
        hits[business_id] = card.hit
        facets[business_id] = card.facets

    def drop(self, business_id: int) -> None:
        """Forget a business's card (it must be held)."""
        hits, facets = self.hits, self.facets
        if isinstance(hits, dict) and isinstance(facets, dict):
            del hits[business_id]
            del facets[business_id]
        elif isinstance(hits, list) and isinstance(facets, list):
            hits[business_id] = None
            facets[business_id] = None
        self.count -= 1
