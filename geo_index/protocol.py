"""The interface every index implements (a structural :class:`typing.Protocol`)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, Protocol, TypeVar, runtime_checkable

from geo_index._base import Page

#: The type of point ids: any hashable value; ids within one index must be mutually
#: orderable (``<``), because equal distances are ordered by id.
K = TypeVar("K", bound=Hashable)

#: One result: ``(id, distance_m)``, the distance in metres from :func:`geo_index.haversine_m`.
Hit = tuple[K, float]


@runtime_checkable
class SpatialIndex(Protocol[K]):
    """A mutable set of points (id, latitude, longitude) with exact proximity queries.

    Coordinates are degrees: latitude in [-90, 90], longitude in [-180, 180] where 180 and
    -180 name the same meridian. Distances are metres on the sphere of
    :data:`geo_index.EARTH_RADIUS_M`. Query results equal, in content and order, a plain
    scan that keeps points with ``haversine_m(lat, lon, p_lat, p_lon) <= radius`` and sorts
    by (distance, id).
    """

    def insert(self, id: K, lat: float, lon: float) -> None:
        """Add a point (raises ``DuplicateId`` if ``id`` is present)."""
        ...

    def remove(self, id: K) -> None:
        """Delete a point (raises ``UnknownId`` if ``id`` is absent)."""
        ...

    def move(self, id: K, lat: float, lon: float) -> None:
        """Change a point's coordinates (raises ``UnknownId`` if ``id`` is absent)."""
        ...

    def bulk_load(self, items: Iterable[tuple[K, float, float]]) -> None:
        """Add many ``(id, lat, lon)`` points at once; all-or-nothing on errors."""
        ...

    def __len__(self) -> int:
        """Number of points held."""
        ...

    def __contains__(self, id: object) -> bool:
        """True if ``id`` is held."""
        ...

    def within(self, lat: float, lon: float, radius_m: float, limit: int | None = None) -> list[tuple[K, float]]:
        """Points within ``radius_m`` metres, nearest first (ties by id), at most ``limit``."""
        ...

    def page(
        self,
        lat: float,
        lon: float,
        radius_m: float,
        limit: int | None,
        after: tuple[float, K] | None = None,
        *,
        where: tuple[list[Any] | dict[Any, Any], Any] | Callable[[K], object] | None = None,
        box: tuple[float, float, float, float] | None = None,
    ) -> Page:
        """A :class:`Page` of ``within``: the match count and ``limit`` hits after ``after``
        (``None``: all of them), counting only the points whose ``table[id] == value`` when
        ``where=(table, value)``, or those ``where(id)`` is true of when it is a callable, and
        only those in ``box`` (:func:`geo_index.in_box`) when given."""
        ...

    def nearest(self, lat: float, lon: float, k: int, max_radius_m: float | None = None) -> list[tuple[K, float]]:
        """The ``k`` nearest points (ties by id), optionally only within ``max_radius_m``."""
        ...
