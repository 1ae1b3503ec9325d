"""The HTTP API's fixed limits and names: its contract, as opposed to its configuration.

Configuration (where the databases are, the default strategy, cache lifetime...) lives in the
shared :class:`geo_common.settings.Settings`, in the block of ``api_*`` fields. What is here
changes only with the API's documented contract (docs/api.md and /openapi.json).
"""

from __future__ import annotations

from enum import Enum

from geo_common.settings import Settings

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_RADIUS_M",
    "MAX_ADDRESS_CHARS",
    "MAX_BODY_BYTES",
    "MAX_CATEGORY_CHARS",
    "MAX_LIMIT",
    "MAX_NAME_CHARS",
    "MEMORY_STRATEGIES",
    "MIN_RADIUS_M",
    "STRATEGIES",
    "Role",
    "Settings",
]

#: Search radius when none is given, metres.
DEFAULT_RADIUS_M = 5_000.0
#: Smallest search radius accepted, metres (the largest is ``Settings.max_radius_m``).
MIN_RADIUS_M = 1.0
#: Page size when none is given, and the largest accepted.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
#: Largest request body, bytes; a larger one is answered 413.
MAX_BODY_BYTES = 64 * 1024
#: Longest text fields of a business, characters (``name`` also has a CHECK in the schema).
MAX_NAME_CHARS = 200
MAX_CATEGORY_CHARS = 100
MAX_ADDRESS_CHARS = 500

#: The in-memory search strategies, one per ``geo_index`` structure.
MEMORY_STRATEGIES = ("geohash", "quadtree", "s2")
#: Every value of the ``index`` query parameter: the in-memory ones, and ``sql`` on a replica.
STRATEGIES = (*MEMORY_STRATEGIES, "sql")


class Role(str, Enum):
    """Which routes an instance serves (``geo-api --role``), so reads and writes scale apart."""

    READ = "read"
    WRITE = "write"
    ALL = "all"

    @property
    def reads(self) -> bool:
        """True when the instance serves searches and GETs (and so keeps in-memory indexes)."""
        return self is not Role.WRITE

    @property
    def writes(self) -> bool:
        """True when the instance serves POST, PUT and DELETE."""
        return self is not Role.READ
