"""The values the API passes around: a business, its record of ownership, a business as
written, a search request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple


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
    """

    business: Business
    owner_id: int | None
    created_by: int | None
    created_at: datetime
    updated_by: int | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``POST /v1/businesses`` and ``PUT /v1/businesses/{id}``."""
        return {
            **self.business.to_json(),
            "owner_id": self.owner_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_by": self.updated_by,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class BusinessInput:
    """The fields of a business a client writes (POST and PUT bodies), already validated."""

    name: str
    latitude: float
    longitude: float
    category: str = ""
    address: str = ""


class SearchQuery(NamedTuple):
    """A validated ``GET /v1/search/nearby`` request.

    (A NamedTuple: one is made per search, and a tuple is the cheapest immutable record.)

    Attributes:
        latitude: centre, degrees in [-90, 90].
        longitude: centre, degrees in [-180, 180].
        radius_m: the radius asked for, metres.
        limit: page size.
        category: only businesses of exactly this category, or all when ``None``.
        expand: widen the radius stepwise while fewer than ``limit`` match.
        cursor: the opaque cursor of the previous page, or ``None`` for the first page.
        strategy: the ``index`` parameter, or ``None`` for the instance's default.
    """

    latitude: float
    longitude: float
    radius_m: float
    limit: int
    category: str | None
    expand: bool
    cursor: str | None
    strategy: str | None
