"""All 144,563 GeoNames places (geo_common/data/cities1000.csv.gz) in every index, queried at real places.

Each index is loaded once as the catalog loader does it (bulk_load_arrays; the geohash one
through bulk_load), and once more with the places around the hard queries and a random
sample removed and inserted again, so that they sit in the delta of changes (not merged)
behind tombstones in the bulk: the answers must not change.

The oracle here is still ``haversine_m`` over every place: numpy computes an approximate
distance to all places at once only to skip the ones that are more than a metre beyond
the radius (numpy's and libm's rounding differ by far less than that), and every remaining
place gets its distance from ``haversine_m`` itself. So the expected answer is exactly the
brute-force scan's, at a fraction of the time of a pure-Python loop over 144k places.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from geo_common.places import load_places
from geo_index import GeohashIndex, QuadTree, S2Index, haversine_m
from geo_index._base import IndexBase

Answer = list[tuple[int, float]]

R = 6_371_008.8
SLACK_M = 1.0

#: Hard real places: near the antimeridian, in the Arctic, and the null island.
SPECIAL = [
    (-18.14, 178.44),  # Suva, Fiji
    (-16.79, 179.99),  # Fiji, east of the antimeridian
    (-16.0, -180.0),  # the antimeridian, spelled -180
    (-16.0, 180.0),  # and +180
    (64.73, 177.5),  # Anadyr, Chukotka
    (65.0, -179.9),  # Chukotka across the line
    (78.22, 15.65),  # Longyearbyen, Svalbard
    (82.5, -62.3),  # Alert, Nunavut
    (0.0, 0.0),  # the equator at the prime meridian (the sea off Ghana)
    (51.4779, -0.0015),  # Greenwich: places on both sides of the prime meridian
    (0.0, -78.45),  # the equator by Quito: places in both hemispheres
    (90.0, 0.0),
    (-90.0, 0.0),
]


class Oracle:
    """Exact brute force over the places, with a numpy pre-filter (see the module doc)."""

    def __init__(self, lats: list[float], lons: list[float]) -> None:
        self.lats = lats
        self.lons = lons
        self.phi = np.radians(np.array(lats))
        self.lam = np.radians(np.array(lons))
        self.cos_phi = np.cos(self.phi)
        # Every index is asked the same questions: the answers are computed once.
        self._within: dict[tuple[float, float, float], Answer] = {}
        self._nearest: dict[tuple[float, float, int, float | None], Answer] = {}

    def _approx(self, lat: float, lon: float) -> Any:
        qphi = np.radians(lat)
        a = (
            np.sin((self.phi - qphi) / 2) ** 2
            + np.cos(qphi) * self.cos_phi * np.sin((self.lam - np.radians(lon)) / 2) ** 2
        )
        return 2 * R * np.arcsin(np.sqrt(np.minimum(a, 1.0)))

    def _exact(self, lat: float, lon: float, ids: Any, radius: float) -> list[tuple[int, float]]:
        out = []
        for i in ids.tolist():
            d = haversine_m(lat, lon, self.lats[i], self.lons[i])
            if d <= radius:
                out.append((d, i))
        out.sort()
        return [(i, d) for d, i in out]

    def within(self, lat: float, lon: float, radius: float, limit: int | None = None) -> Answer:
        key = (lat, lon, radius)
        if key not in self._within:
            ids = np.nonzero(self._approx(lat, lon) <= radius + SLACK_M)[0]
            self._within[key] = self._exact(lat, lon, ids, radius)
        return self._within[key][:limit]

    def nearest(self, lat: float, lon: float, k: int, cap: float | None = None) -> Answer:
        key = (lat, lon, k, cap)
        if key not in self._nearest:
            d = self._approx(lat, lon)
            kth = np.partition(d, k - 1)[k - 1]
            ids = np.nonzero(d <= kth + SLACK_M)[0]
            self._nearest[key] = self._exact(lat, lon, ids, float("inf") if cap is None else cap)[:k]
        return self._nearest[key]

    def around(self, lat: float, lon: float, radius: float) -> list[int]:
        """Ids of the places roughly within ``radius`` metres (a generous superset)."""
        return [int(i) for i in np.nonzero(self._approx(lat, lon) <= radius * 1.01 + SLACK_M)[0]]


@pytest.fixture(scope="module")
def places() -> tuple[list[float], list[float]]:
    all_places = load_places()
    assert len(all_places) == 144_563
    return [p.latitude for p in all_places], [p.longitude for p in all_places]


@pytest.fixture(scope="module")
def oracle(places: tuple[list[float], list[float]]) -> Oracle:
    return Oracle(*places)


VARIANTS: dict[str, tuple[Callable[..., IndexBase], bool]] = {
    "geohash": (GeohashIndex, False),
    "quadtree": (QuadTree, False),
    "s2": (S2Index, False),
    "geohash_delta": (GeohashIndex, True),
    "quadtree_delta": (QuadTree, True),
    "s2_delta": (S2Index, True),
}


@pytest.fixture(scope="module", params=list(VARIANTS))
def loaded(request: pytest.FixtureRequest, places: tuple[list[float], list[float]], oracle: Oracle) -> IndexBase:
    kind, delta = VARIANTS[request.param]
    lats, lons = places
    idx = kind(merge_every=None) if delta else kind()
    if kind is GeohashIndex and not delta:
        idx.bulk_load(zip(range(len(lats)), lats, lons))
    else:
        idx.bulk_load_arrays(np.arange(len(lats)), np.array(lats), np.array(lons))
    if delta:
        again = {i for lat, lon in SPECIAL for i in oracle.around(lat, lon, 60_000.0)}
        again |= set(random.Random(7).sample(range(len(lats)), 2_000))
        for i in sorted(again):
            idx.remove(i)
            idx.insert(i, lats[i], lons[i])
        assert idx.pending == len(again) > 2_000
    assert len(idx) == len(lats)
    return idx


@pytest.fixture(scope="module")
def queries(places: tuple[list[float], list[float]]) -> list[tuple[float, float]]:
    lats, lons = places
    rng = random.Random(20240611)
    picked = [(lats[i], lons[i]) for i in rng.sample(range(len(lats)), 120)]
    return SPECIAL + picked


def test_within_at_real_places(loaded: IndexBase, oracle: Oracle, queries: list[tuple[float, float]]) -> None:
    found = 0
    for lat, lon in queries:
        for radius in (500.0, 5_000.0, 20_000.0, 50_000.0):
            expected = oracle.within(lat, lon, radius)
            assert loaded.within(lat, lon, radius) == expected, (lat, lon, radius)
            assert loaded.within(lat, lon, radius, limit=20) == expected[:20]
            found += len(expected)
    assert found > 10_000


def test_nearest_at_real_places(loaded: IndexBase, oracle: Oracle, queries: list[tuple[float, float]]) -> None:
    for lat, lon in queries[:70]:
        for k in (1, 10):
            assert loaded.nearest(lat, lon, k) == oracle.nearest(lat, lon, k), (lat, lon, k)
        assert loaded.nearest(lat, lon, 5, max_radius_m=3_000.0) == oracle.nearest(lat, lon, 5, 3_000.0)


def test_known_neighbourhoods(loaded: IndexBase, places: tuple[list[float], list[float]]) -> None:
    _, lons = places
    all_places = load_places()
    # Suva's nearest place is Suva itself (or a suburb at the same spot)
    ((i, d),) = loaded.nearest(-18.14161, 178.44149, 1)
    assert d < 2_000.0 and all_places[i].country == "FJ"
    # Across the antimeridian: Egvekinot (lon -179.12) from lon +179.9, Lambasa (+179.38)
    # from lon -179.9
    assert [all_places[i].name for i, _ in loaded.within(66.32, 179.9, 50_000.0)] == ["Egvekinot"]
    ((lambasa, d),) = loaded.nearest(-16.4, -179.9, 1)
    assert all_places[lambasa].name == "Lambasa" and 70_000.0 < d < 80_000.0
    assert lons[lambasa] > 179.0
    # Longyearbyen and Alert are found in the Arctic
    assert any(all_places[i].country == "SJ" for i, _ in loaded.within(78.22, 15.65, 5_000.0))
    # Alert (too small for the file) is 1,088 km from Upernavik, Greenland
    ((upernavik, d),) = loaded.nearest(82.5, -62.3, 1)
    assert all_places[upernavik].name == "Upernavik" and d == pytest.approx(1_088_404.9, abs=1.0)
    # The prime meridian and the equator: Greenwich's neighbours lie east and west of it,
    # Quito's north and south of the equator; the sea at (0, 0) is 577 km from Takoradi.
    greenwich = [i for i, _ in loaded.within(51.4779, -0.0015, 5_000.0)]
    assert min(lons[i] for i in greenwich) < 0.0 < max(lons[i] for i in greenwich)
    equator = [all_places[i] for i, _ in loaded.within(0.0, -78.45, 50_000.0)]
    assert {p.name for p in equator} >= {"Quito", "Otavalo"}
    assert min(p.latitude for p in equator) < 0.0 < max(p.latitude for p in equator)
    ((takoradi, d),) = loaded.nearest(0.0, 0.0, 1)
    assert all_places[takoradi].name == "Takoradi" and d == pytest.approx(577_057.1, abs=1.0)
    # Nothing within 50 km of the poles; the place nearest the north pole is Longyearbyen,
    # whichever meridian the pole is approached along
    assert loaded.within(90.0, 0.0, 50_000.0) == []
    for lon in (-180.0, 0.0, 123.0, 180.0):
        ((i, _),) = loaded.nearest(90.0, lon, 1)
        assert all_places[i].name == "Longyearbyen"
