"""The region map: which region a point belongs to, and each region's Redis endpoints (pure).

A deployment is partitioned into named regions, each a set of latitude/longitude boxes with
its own Redis for the location cache and its own pub/sub nodes. A user's cached location and
channels live in the user's *home region* (kept in the ``users`` table); a server
subscribes to each friend's channel in that friend's home region. See ``docs/regions.md``.

``GEO_REGIONS`` holds the map as JSON (or the path of a JSON file)::

    {"americas": {"boxes": [[-60, -170, 75, -30]], "redis_url": "redis://10.1.0.5:6379/0",
                  "pubsub": {"backend": "ring", "nodes": ["redis://10.1.0.6:6379", "redis://10.1.0.7:6379"]}},
     "emea":     {"boxes": [[-40, -30, 75, 60]], "pubsub": {"backend": "cluster", "nodes": ["10.2.0.5:7000"]}}}

Boxes are ``[south, west, north, east]`` in degrees; ``west > east`` crosses the antimeridian.
The first region is the default: it takes points outside every box and users whose home is
not known yet. Endpoints left out fall back to ``GEO_REDIS_URL``, ``GEO_PUBSUB_BACKEND``,
``GEO_PUBSUB_RING`` and ``GEO_REDIS_CLUSTER``. With no map, there is one region, ``default``,
covering the world with those endpoints.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from geo_common.setting_values import SettingsError
from pubsub.sentinel import is_sentinel_url, parse_sentinel_url

#: Pub/sub backends a region may use (the ``GEO_PUBSUB_BACKEND`` values).
PUBSUB_BACKENDS = ("redis", "ring", "cluster")
#: The region's name when no map is configured.
DEFAULT_REGION = "default"

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True, slots=True)
class Box:
    """A latitude/longitude box, degrees; ``west > east`` wraps across the antimeridian."""

    south: float
    west: float
    north: float
    east: float

    def contains(self, latitude: float, longitude: float) -> bool:
        """True when the point (degrees) lies in the box, edges included."""
        if not self.south <= latitude <= self.north:
            return False
        if self.west <= self.east:
            return self.west <= longitude <= self.east
        return longitude >= self.west or longitude <= self.east


@dataclass(frozen=True, slots=True)
class Region:
    """One region as configured; endpoints left as None fall back to the global settings."""

    name: str
    boxes: tuple[Box, ...] = ()
    redis_url: str | None = None
    pubsub_backend: str | None = None
    pubsub_nodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegionEndpoints:
    """One region with every endpoint resolved.

    Attributes:
        name: the region's name.
        boxes: where it applies.
        redis_url: the Redis of its location cache.
        pubsub_backend: ``redis``, ``ring`` or ``cluster``.
        pubsub_nodes: the nodes for that backend (one URL; URLs; cluster seed ``host:port``).
    """

    name: str
    boxes: tuple[Box, ...]
    redis_url: str
    pubsub_backend: str
    pubsub_nodes: tuple[str, ...]


class GlobalEndpoints(Protocol):
    """What :meth:`RegionMap.from_settings` reads of :class:`geo_common.settings.Settings`."""

    @property
    def regions(self) -> tuple[Region, ...]: ...
    @property
    def pubsub_backend(self) -> str: ...
    @property
    def redis_url(self) -> str: ...
    @property
    def pubsub_ring(self) -> tuple[str, ...]: ...
    @property
    def redis_cluster(self) -> tuple[str, ...]: ...


class RegionMap:
    """The resolved regions, in configured order (the first is the default).

    Args:
        regions: at least one region, names unique.

    Raises:
        ValueError: no regions, or a name repeated.
    """

    def __init__(self, regions: tuple[RegionEndpoints, ...]) -> None:
        if not regions:
            raise ValueError("a region map needs at least one region")
        self.regions = regions
        self._by_name = {r.name: r for r in regions}
        if len(self._by_name) != len(regions):
            raise ValueError("region names must be unique")

    @classmethod
    def from_settings(cls, settings: GlobalEndpoints) -> RegionMap:
        """Resolve ``settings.regions`` against the global endpoints.

        Raises:
            SettingsError: a region (or the default) needs nodes that are not configured;
                the message names the variable to set.
        """
        configured = settings.regions or (Region(DEFAULT_REGION),)
        resolved = []
        for region in configured:
            backend = region.pubsub_backend or settings.pubsub_backend
            redis_url = region.redis_url or settings.redis_url
            nodes = region.pubsub_nodes
            if not nodes:
                nodes = {"redis": (redis_url,), "ring": settings.pubsub_ring, "cluster": settings.redis_cluster}[
                    backend
                ]
            if not nodes:
                variable = "GEO_PUBSUB_RING" if backend == "ring" else "GEO_REDIS_CLUSTER"
                raise SettingsError(
                    f"{variable}: region {region.name!r} uses the {backend} pub/sub backend but no nodes are set "
                    f"(set {variable}, or pubsub.nodes of the region in GEO_REGIONS)"
                )
            if backend == "redis" and len(nodes) != 1:
                raise SettingsError(f"GEO_REGIONS: region {region.name!r}: the redis backend takes exactly one node")
            resolved.append(RegionEndpoints(region.name, region.boxes, redis_url, backend, tuple(nodes)))
        return cls(tuple(resolved))

    @property
    def default(self) -> RegionEndpoints:
        """The first region: for points outside every box and users without a home yet."""
        return self.regions[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions)

    def region_for(self, latitude: float, longitude: float) -> RegionEndpoints:
        """The first region with a box containing the point (degrees), else the default."""
        for region in self.regions:
            for box in region.boxes:
                if box.contains(latitude, longitude):
                    return region
        return self.default

    def get(self, name: str | None) -> RegionEndpoints:
        """A region by name; None or a name no longer configured gives the default."""
        if name is None:
            return self.default
        return self._by_name.get(name, self.default)


# --- parsing GEO_REGIONS ---------------------------------------------------------------------


def parse_regions(raw: str) -> tuple[Region, ...]:
    """Parse ``GEO_REGIONS``: JSON text, or the path of a file holding it; empty means none.

    Returns:
        The regions in order.

    Raises:
        ValueError: with a message saying what is wrong (the settings loader adds the name).
    """
    text = raw.strip()
    if not text:
        return ()
    if not text.startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise ValueError("expected a JSON object or the path of a JSON file")
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError("expected a JSON object of region name -> region")
    return tuple(_region(name, body) for name, body in data.items())


def _region(name: str, body: Any) -> Region:
    if not _NAME.match(name):
        raise ValueError(f"region name {name!r}: expected 1 to 32 of a-z, 0-9, '-', '_'")
    if not isinstance(body, dict):
        raise ValueError(f"region {name!r}: expected an object")
    unknown = set(body) - {"boxes", "redis_url", "pubsub"}
    if unknown:
        raise ValueError(f"region {name!r}: unknown key(s) {', '.join(sorted(unknown))}")
    boxes = tuple(_box(name, b) for b in body.get("boxes", []))
    redis_url = body.get("redis_url")
    if redis_url is not None:
        _check_url(name, redis_url, sentinel=True)
    pubsub = body.get("pubsub", {})
    if not isinstance(pubsub, dict) or set(pubsub) - {"backend", "nodes"}:
        raise ValueError(f"region {name!r}: pubsub must be an object with 'backend' and 'nodes'")
    backend = pubsub.get("backend")
    if backend is not None and backend not in PUBSUB_BACKENDS:
        raise ValueError(f"region {name!r}: pubsub backend must be one of {', '.join(PUBSUB_BACKENDS)}")
    nodes = pubsub.get("nodes", [])
    if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
        raise ValueError(f"region {name!r}: pubsub nodes must be a list of strings")
    for node in nodes:
        if "://" in node:
            _check_url(name, node, sentinel=backend in (None, "redis"))
        elif backend != "cluster":
            raise ValueError(f"region {name!r}: node {node!r}: expected redis://host:port")
    return Region(name, boxes, redis_url, backend, tuple(nodes))


def _box(name: str, raw: Any) -> Box:
    if (
        not isinstance(raw, list)
        or len(raw) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw)
    ):
        raise ValueError(f"region {name!r}: a box is [south, west, north, east] in degrees")
    south, west, north, east = (float(v) for v in raw)
    if not (-90 <= south <= north <= 90 and -180 <= west <= 180 and -180 <= east <= 180):
        raise ValueError(f"region {name!r}: box {raw}: need -90 <= south <= north <= 90 and longitudes in [-180, 180]")
    return Box(south, west, north, east)


def _check_url(name: str, url: Any, *, sentinel: bool = False) -> None:
    if sentinel and isinstance(url, str) and is_sentinel_url(url):
        try:
            parse_sentinel_url(url)
        except ValueError as exc:
            raise ValueError(f"region {name!r}: {exc}") from None
        return
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"region {name!r}: {url!r} is not a redis:// URL")
