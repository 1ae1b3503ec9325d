"""The body of ``POST /v1/me/locations`` (pure): points a phone recorded in the background.

``{"locations": [{"seq", "latitude", "longitude", "timestamp"}, ...]}``: 1 to
``GEO_UPLOAD_MAX_POINTS`` points, each with the client's sequence number (it increases with
every point the user's device records), degrees, and the client's clock, Unix milliseconds.
Every fault is named by its field (``locations[2].latitude``) for the problem document.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from friends_ws.protocol import MAX_TIMESTAMP_MS
from geo_common.problems import FieldError

#: Largest body accepted, bytes (100 points take about 10 KiB).
MAX_UPLOAD_BYTES = 64 * 1024
#: Largest sequence number: JSON's exact integers (2^53 - 1).
MAX_SEQ = 2**53 - 1


@dataclass(frozen=True, slots=True)
class Point:
    """One recorded point: sequence number, degrees, client Unix milliseconds."""

    seq: int
    latitude: float
    longitude: float
    timestamp: int


class InvalidUpload(ValueError):
    """The body is not an upload; ``errors`` names each field at fault."""

    def __init__(self, detail: str, errors: list[FieldError]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


def _whole(value: Any, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _degrees(value: Any, bound: float) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and -bound <= value <= bound
    )


def parse_upload(body: bytes, *, max_points: int) -> list[Point]:
    """The points of an upload, in ``seq`` order (a ``seq`` sent twice is kept once).

    Raises:
        InvalidUpload: not JSON, not an object with ``locations``, too many or too few points,
            or a point with a missing or bad field.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidUpload("the body is not valid JSON", [FieldError("body", "not valid JSON")]) from None
    points = doc.get("locations") if isinstance(doc, dict) else None
    if not isinstance(points, list) or not 1 <= len(points) <= max_points:
        raise InvalidUpload(
            f"locations must be a list of 1 to {max_points} points",
            [FieldError("locations", f"a list of 1 to {max_points} points")],
        )
    errors: list[FieldError] = []
    parsed: dict[int, Point] = {}
    for i, point in enumerate(points):
        where = f"locations[{i}]"
        if not isinstance(point, dict):
            errors.append(FieldError(where, "must be an object"))
            continue
        values: list[Any] = [point.get(k) for k in ("seq", "latitude", "longitude", "timestamp")]
        seq, lat, lon, ts = values
        bad = [
            FieldError(f"{where}.{name}", message)
            for name, ok, message in (
                ("seq", _whole(seq, 0, MAX_SEQ), f"a whole number from 0 to {MAX_SEQ}"),
                ("latitude", _degrees(lat, 90.0), "a number between -90 and 90"),
                ("longitude", _degrees(lon, 180.0), "a number between -180 and 180"),
                ("timestamp", _whole(ts, 0, MAX_TIMESTAMP_MS), "a whole number of Unix milliseconds"),
            )
            if not ok
        ]
        if bad:
            errors.extend(bad)
        elif seq not in parsed:
            parsed[seq] = Point(seq, float(lat), float(lon), ts)
    if errors:
        raise InvalidUpload(f"{len(errors)} field(s) of the upload are invalid", errors[:20])
    return [parsed[s] for s in sorted(parsed)]
