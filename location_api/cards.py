"""What a search reads of each business it returns: a *card*, and the table of cards by id.

A card holds the business's search hit already rendered as JSON up to the distance
(:func:`location_api.render.hit_prefix`) and its category (for ``category=`` filters): a page
is then one card per hit, its distance appended, joined (:func:`location_api.render.search_body`).
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

from location_api.models import Business
from location_api.render import hit_prefix


class Card(NamedTuple):
    """What a search needs of one business.

    Attributes:
        hit: its search-hit JSON up to the distance (:func:`location_api.render.hit_prefix`).
        category: its category, for ``category=`` filters.
    """

    hit: bytes
    category: str


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
    places in a large catalog, and a list slot is one memory access where a dict entry is
    three or four (its index slot, its entry, the stored key compared, then the value).

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
