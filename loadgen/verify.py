"""``geo-loadgen search --verify``: check a sample of answers against a brute-force scan.

The generator holds the places it expects the API to serve (the GeoNames demo set that
``geo-stack run`` loads, or a CSV of ``lat,lon[,name]``) and, after the run, recomputes each
sampled query by scanning every place with :func:`geo_index.haversine_m`, the distance the API
uses. A hit is identified by its exact coordinates (the demo set keeps them unrounded).

For each sampled answer it reports:

* **recall**: the share of the expected first page present in the answer; at the page's
  last distance, any of the places tied there may fill the page;
* **order**: the answer is sorted by distance and every ``distance_m`` is the recomputed one;
* **total**: the answer's ``total`` equals the number of places within the radius.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geo_index import haversine_m
from geo_index.distance import EARTH_RADIUS_M

#: Distances agree when they differ by less than this (metres): float noise, not an error.
DISTANCE_TOLERANCE_M = 1e-3


@dataclass(frozen=True, slots=True)
class Check:
    """The verdict on one answer."""

    expected: int  # hits the first page should hold
    found: int  # of those, present in the answer
    listed: int  # hits the answer holds (more than ``found`` when it lists wrong places)
    order_ok: bool
    total_ok: bool

    @property
    def ok(self) -> bool:
        return self.found == self.expected == self.listed and self.order_ok and self.total_ok


class GroundTruth:
    """Every place the API is expected to serve, scanned by brute force."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        if not points:
            raise ValueError("ground truth needs at least one place")
        self._points = list(points)
        coords = np.radians(np.asarray(self._points, dtype=np.float64))
        self._lat = coords[:, 0]
        self._lon = coords[:, 1]
        self._cos_lat = np.cos(self._lat)

    def __len__(self) -> int:
        return len(self._points)

    def within(self, lat: float, lon: float, radius_m: float) -> list[tuple[float, tuple[float, float]]]:
        """(distance, point) of every place within ``radius_m``, nearest first (exact distances)."""
        # A vectorised pass with a metre of slack finds the candidates; the exact function decides.
        la, lo = math.radians(lat), math.radians(lon)
        h = np.sin((self._lat - la) / 2) ** 2 + math.cos(la) * self._cos_lat * np.sin((self._lon - lo) / 2) ** 2
        rough = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
        hits = []
        for i in np.nonzero(rough <= radius_m + 1.0)[0]:
            p = self._points[int(i)]
            d = haversine_m(lat, lon, p[0], p[1])
            if d <= radius_m:
                hits.append((d, p))
        hits.sort()
        return hits

    def check(self, lat: float, lon: float, radius_m: float, limit: int, answer: dict[str, Any]) -> Check:
        """Judge one first-page answer of ``GET /v1/search/nearby``."""
        truth = self.within(lat, lon, radius_m)
        page = truth[:limit]
        listed = answer.get("businesses") or []
        got = [(float(b["distance_m"]), (float(b["latitude"]), float(b["longitude"]))) for b in listed]
        if page:
            # Places tied with the page's last distance are interchangeable at the cut.
            edge = page[-1][0]
            allowed = Counter(p for d, p in truth if d <= edge + DISTANCE_TOLERANCE_M)
        else:
            allowed = Counter()
        found = 0
        for _, point in got:
            if allowed[point] > 0:
                allowed[point] -= 1
                found += 1
        order_ok = all(a[0] <= b[0] + DISTANCE_TOLERANCE_M for a, b in zip(got, got[1:])) and all(
            abs(d - haversine_m(lat, lon, p[0], p[1])) <= DISTANCE_TOLERANCE_M for d, p in got
        )
        return Check(
            expected=len(page),
            found=min(found, len(page)),
            listed=len(got),
            order_ok=order_ok,
            total_ok=answer.get("total") == len(truth),
        )
