"""A business's IANA time zone: the one it names, else the one its coordinates lie in.

The zone of a point comes from ``tzfpy`` (the timezone-boundary-builder polygons, offline,
in the wheel); at sea it is the nautical zone (``Etc/GMT-12``). The names a client may write
are those of the ``tzdata`` package (the IANA database, links such as
``Arctic/Longyearbyen`` included), whose version the lock file fixes: the same list on every
machine, and the one the OpenAPI document gives.
"""

from __future__ import annotations

import functools
from importlib.resources import files
from zoneinfo import ZoneInfo

import tzfpy

ZONES = frozenset(files("tzdata").joinpath("zones").read_text(encoding="ascii").split())


def zone_at(latitude: float, longitude: float) -> str:
    """The IANA name of the time zone at a point (degrees, WGS84)."""
    return tzfpy.get_tz(longitude, latitude)


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The zone of a name in :data:`ZONES`."""
    return ZoneInfo(name)


def check_zone(value: object) -> str:
    """A client's time zone: an IANA name such as ``Europe/Berlin``.

    Raises:
        ValueError: not a string, or no zone of that name.
    """
    if not isinstance(value, str):
        raise ValueError("must be an IANA time zone name such as Europe/Berlin")
    if value not in ZONES:
        raise ValueError(f"is not a known IANA time zone (such as Europe/Berlin), got {value!r:.70}")
    return value
