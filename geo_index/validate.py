"""Argument checks shared by every index. Each error message names the argument.

The fast path of each check is a type test and one chained comparison (a NaN fails every
comparison, so it needs no separate test); the slow path only runs to build the error.
"""

from __future__ import annotations

import math
from typing import Any

from geo_index.errors import InvalidCoordinate, InvalidCount, InvalidId, InvalidOption, InvalidPosition, InvalidRadius

#: Default largest search radius accepted by ``within`` and ``nearest``, metres.
DEFAULT_MAX_RADIUS_M = 50_000.0

#: The ids an index holds: integers in the signed 64-bit range (the store keeps them as such).
MIN_ID = -(2**63)
MAX_ID = 2**63 - 1


def _is_real(value: Any) -> bool:
    # bool is an int subclass but True is not a coordinate; reject it explicitly.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_degrees(value: Any, name: str, limit: float) -> None:
    """Check a latitude (``limit`` 90) or a longitude (``limit`` 180; 180 and -180 are both
    accepted: the same meridian).

    Args:
        value: the value, degrees.
        name: the argument name used in the error message.
        limit: the largest magnitude accepted, degrees.

    Raises:
        InvalidCoordinate: ``value`` is not a finite real number in [-limit, limit].
    """
    if _is_real(value) and -limit <= value <= limit:
        return
    raise InvalidCoordinate(f"{name} must be a finite number of degrees in [-{limit:g}, {limit:g}], got {value!r}")


def check_point(lat: Any, lon: Any) -> None:
    """Check a latitude/longitude pair (degrees).

    Args:
        lat: latitude, degrees.
        lon: longitude, degrees.

    Raises:
        InvalidCoordinate: either value is out of range; the message names which.
    """
    if type(lat) is float and type(lon) is float and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
        return
    check_degrees(lat, "lat", 90.0)
    check_degrees(lon, "lon", 180.0)


def check_radius(radius_m: Any, max_radius_m: float, name: str = "radius_m") -> None:
    """Check a search radius.

    Args:
        radius_m: the value, metres.
        max_radius_m: the largest value the index accepts, metres.
        name: the argument name used in the error message.

    Raises:
        InvalidRadius: ``radius_m`` is not a finite real number with
            ``0 < radius_m <= max_radius_m``.
    """
    if type(radius_m) is float and 0.0 < radius_m <= max_radius_m:
        return
    if _is_real(radius_m) and 0.0 < radius_m <= max_radius_m:
        return
    raise InvalidRadius(
        f"{name} must be a finite number of metres with 0 < {name} <= {max_radius_m:g}, got {radius_m!r}"
    )


def check_count(value: Any, name: str) -> None:
    """Check a result count such as ``k`` or ``limit``.

    Args:
        value: the value.
        name: the argument name used in the error message.

    Raises:
        InvalidCount: ``value`` is not an ``int`` >= 1 (``bool`` is refused).
    """
    if type(value) is int and value >= 1:
        return
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return
    raise InvalidCount(f"{name} must be an integer >= 1, got {value!r}")


def check_after(after: Any) -> None:
    """Check where a page starts.

    Args:
        after: ``None`` (the first page) or ``(distance_m, id)``, the last hit of the page before.

    Raises:
        InvalidPosition: ``after`` is neither, or its distance is not a real number (NaN
            included: it orders against nothing).
    """
    if after is None:
        return
    if (
        type(after) is tuple
        and len(after) == 2
        and _is_real(after[0])
        and after[0] == after[0]
        and type(after[1]) is int
        and MIN_ID <= after[1] <= MAX_ID
    ):
        return
    raise InvalidPosition(f"after must be None or a (distance_m, id) pair, got {after!r}")


def check_where(where: Any) -> None:
    """Check a page's filter.

    Args:
        where: ``None`` (every point); ``(table, value)``: only points whose ``table[id]``
            equals ``value``, ``table`` a list (indexed by int id) or a dict; or a callable
            of an id.

    Raises:
        InvalidOption: ``where`` is none of these.
    """
    if where is None or callable(where):
        return
    if type(where) is tuple and len(where) == 2 and isinstance(where[0], (list, dict)):
        return
    raise InvalidOption(
        f"where must be None, a callable or a (table, value) pair with table a list or a dict, got {where!r}"
    )


def check_box(box: Any) -> None:
    """Check a page's box.

    Args:
        box: ``None``, or ``(west, south, east, north)``: floats, longitudes in [-180, 180],
            latitudes in [-90, 90], south not north of north.

    Raises:
        InvalidOption: ``box`` is neither.
    """
    if box is None:
        return
    if type(box) is tuple and len(box) == 4 and all(type(v) is float for v in box):
        west, south, east, north = box
        if -180.0 <= west <= 180.0 and -180.0 <= east <= 180.0 and -90.0 <= south <= north <= 90.0:
            return
    raise InvalidOption(f"box must be None or (west, south, east, north) in degrees, south <= north, got {box!r}")


def check_max_radius_option(max_radius_m: Any) -> float:
    """Check the ``max_radius_m`` constructor option of an index.

    Args:
        max_radius_m: the largest radius the index will accept, metres.

    Returns:
        The value as a float.

    Raises:
        InvalidOption: not a finite real number > 0.
    """
    if not _is_real(max_radius_m) or not math.isfinite(max_radius_m) or max_radius_m <= 0:
        raise InvalidOption(f"max_radius_m must be a finite number of metres > 0, got {max_radius_m!r}")
    return float(max_radius_m)


def check_int_option(value: Any, name: str, lo: int, hi: int) -> int:
    """Check an integer constructor option of an index.

    Args:
        value: the option's value.
        name: its name, for the error.
        lo: the smallest value accepted.
        hi: the largest value accepted.

    Returns:
        The value.

    Raises:
        InvalidOption: not an ``int`` in ``lo..hi`` (``bool`` is refused).
    """
    if type(value) is not int or not lo <= value <= hi:
        raise InvalidOption(f"{name} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def check_id(id: Any) -> None:
    """Check a point's id.

    Args:
        id: the id.

    Raises:
        InvalidId: not an ``int`` in the signed 64-bit range (``bool`` is refused).
    """
    if type(id) is int and MIN_ID <= id <= MAX_ID:
        return
    raise InvalidId(f"ids are integers in {MIN_ID}..{MAX_ID}, got {id!r}")
