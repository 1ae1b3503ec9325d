"""The values the API passes around: a business, its record of ownership, a business as
written, a search request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from location_api.area import Box
from location_api.filters import SearchFilters
from location_api.hours import OpeningHours, open_state
from location_api.time_zones import zone


class Business(NamedTuple):
    """A business as stored: coordinates in degrees (WGS84), exactly as written.

    A NamedTuple rather than a dataclass: every API instance holds one per business in memory
    (a million of them in the large benchmark), and a tuple is the smallest record Python has.
    """

    id: int
    name: str
    latitude: float
    longitude: float
    category: str
    address: str

    def to_json(self) -> dict[str, Any]:
        """The business's JSON object (``GET /v1/businesses/{id}``)."""
        return {
            "id": self.id,
            "name": self.name,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "category": self.category,
            "address": self.address,
        }

    def to_hit_json(self, distance_m: float) -> dict[str, Any]:
        """The business's JSON object in search results, with its distance in metres."""
        return {**self.to_json(), "distance_m": distance_m}


@dataclass(frozen=True, slots=True)
class BusinessDetails:
    """What a business's detail adds to it (search hits leave these out).

    Attributes:
        time_zone: the IANA name its hours are read in.
        hours: its opening hours, or ``None``: not known.
        phone: how to call it, as written (digits, spaces, ``+ - ( ) .``), or ``None``.
        website: an ``http`` or ``https`` address, or ``None``.
        price_level: 1 (cheap) to 4 (very expensive), or ``None``: not known.
        rating: the mean review, 0 to 5, or ``None`` (no reviews).
        review_count: how many reviews the rating is the mean of.
        more_categories: its categories beyond its main one (``Business.category``).
    """

    time_zone: str
    hours: OpeningHours | None = None
    phone: str | None = None
    website: str | None = None
    price_level: int | None = None
    rating: float | None = None
    review_count: int = 0
    more_categories: tuple[str, ...] = ()

    def to_json(self, category: str) -> dict[str, Any]:
        """Every field; ``hours`` as :meth:`location_api.hours.OpeningHours.to_json`, null when
        not known; ``categories``: every category, the business's main ``category`` first
        (none when that is empty and there are no more)."""
        return {
            "categories": [category, *self.more_categories] if category or self.more_categories else [],
            "time_zone": self.time_zone,
            "hours": None if self.hours is None else self.hours.to_json(),
            "phone": self.phone,
            "website": self.website,
            "price_level": self.price_level,
            "rating": self.rating,
            "review_count": self.review_count,
        }

    def state_json(self, at: datetime) -> dict[str, Any]:
        """``open_now`` and ``next_change`` at an instant: null when the hours are not known;
        ``next_change`` in the business's local time with its offset, null when nothing
        changes within :data:`location_api.hours.HORIZON_DAYS`."""
        if self.hours is None:
            return {"open_now": None, "next_change": None}
        local = zone(self.time_zone)
        state = open_state(self.hours, local, at)
        change = state.next_change
        return {"open_now": state.open, "next_change": None if change is None else change.astimezone(local).isoformat()}


@dataclass(frozen=True, slots=True)
class BusinessRecord:
    """A business with who owns it and who wrote it: what a write answers its writer.

    Public reads and search hits show the :class:`Business` alone. The user ids here are
    private (they are the ids the friendship routes address users by, and would tie a
    business to a person), so only the writer sees them: the owner, of its own business, or
    an admin.

    Attributes:
        business: the business.
        owner_id: the owning user, or ``None``: the operator's (only admins change it).
        created_by: the user who created it through the API (``None``: loaded otherwise).
        created_at: when the row was inserted.
        updated_by: the user who wrote it last through the API (``None``: loaded otherwise).
        updated_at: when it was last written.
        details: its time zone, hours, contacts, price level and rating.
    """

    business: Business
    owner_id: int | None
    created_by: int | None
    created_at: datetime
    updated_by: int | None
    updated_at: datetime
    details: BusinessDetails

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``POST /v1/businesses`` and ``PUT /v1/businesses/{id}``."""
        return {
            **self.business.to_json(),
            **self.details.to_json(self.business.category),
            "owner_id": self.owner_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class BusinessInput:
    """The fields of a business a client writes (POST and PUT bodies), already validated;
    ``details.time_zone`` is the one named, else the zone of the coordinates.

    ``rates`` says whether the body named ``rating`` or ``review_count``, which only an admin
    writes (an owner's write keeps them as they are).
    """

    name: str
    latitude: float
    longitude: float
    details: BusinessDetails
    category: str = ""
    address: str = ""
    rates: bool = False


class SearchQuery(NamedTuple):
    """A validated ``GET /v1/search/nearby`` or ``GET /v1/search/area`` request.

    (A NamedTuple: one is made per search, and a tuple is the cheapest immutable record.)

    Attributes:
        latitude: centre, degrees in [-90, 90] (an area's: :meth:`location_api.area.Box.centre`).
        longitude: centre, degrees in [-180, 180].
        radius_m: the radius asked for, metres (an area's: the reach of its box; ``k``'s: the
            first of the radii it widens through).
        limit: page size (``k``'s: ``k``).
        filters: what else a business must be (:class:`location_api.filters.SearchFilters`).
        expand: widen the radius stepwise while fewer than ``limit`` match.
        cursor: the opaque cursor of the previous page, or ``None`` for the first page.
        strategy: the ``index`` parameter, or ``None`` for the instance's default.
        sort: ``distance``, ``rating`` or ``relevance``.
        k: the k nearest were asked for (one page, no cursor), or ``None``.
        box: the area searched (only its businesses match), or ``None``.
    """

    latitude: float
    longitude: float
    radius_m: float
    limit: int
    filters: SearchFilters
    expand: bool
    cursor: str | None
    strategy: str | None
    sort: str = "distance"
    k: int | None = None
    box: Box | None = None

    @property
    def plain(self) -> bool:
        """True for a search by distance alone: no filter, no area, nearest first."""
        return self.sort == "distance" and self.box is None and not self.filters.any
