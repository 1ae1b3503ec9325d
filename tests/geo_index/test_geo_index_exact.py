"""Every index returns exactly what the brute-force haversine scan returns: same ids, same
distances (bit for bit), same order, worldwide, with the hard cases weighted up, whether the
points sit in the bulk, in the delta of changes or behind tombstones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_index import BruteForceIndex, haversine_m
from geo_index.validate import MAX_ID, MIN_ID
from tests.geo_index.strategies import FILLS, INDEXES, Scene, fill, oracle, scenes

MAX_EXAMPLES = 50

#: The fills the fixed-case tests use: the bulk, the delta, and tombstones under the delta.
SOME_FILLS = ("bulk_load", "insert", "moved")


def test_the_oracle_is_a_plain_scan() -> None:
    points = [(0.0, 0.0), (0.0, 0.001), (0.001, 0.0), (0.0, 0.0), (45.0, 180.0)]
    ref = oracle(points)
    expected = sorted((haversine_m(0.0, 0.0, la, lo), i) for i, (la, lo) in enumerate(points))
    assert ref.within(0.0, 0.0, 200.0) == [(i, d) for d, i in expected if d <= 200.0]
    assert ref.nearest(0.0, 0.0, 2) == [(0, 0.0), (3, 0.0)]


@pytest.mark.parametrize("name", list(INDEXES))
@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(scene=scenes(), limit=st.one_of(st.none(), st.integers(1, 5)), how=st.sampled_from(FILLS))
def test_within_matches_brute_force(name: str, scene: Scene, limit: int | None, how: str) -> None:
    (qlat, qlon), radius, points = scene
    idx = INDEXES[name]()
    fill(idx, points, how)
    expected = oracle(points).within(qlat, qlon, radius, limit)
    assert idx.within(qlat, qlon, radius, limit) == expected
    if abs(qlon) == 180.0:
        assert idx.within(qlat, -qlon, radius, limit) == expected
    # A merge changes where the points are kept, never what a query answers.
    assert idx.merge() is True
    assert idx.pending == 0
    assert idx.within(qlat, qlon, radius, limit) == expected


@pytest.mark.parametrize("name", list(INDEXES))
@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(scene=scenes(), k=st.integers(1, 8), capped=st.booleans(), how=st.sampled_from(FILLS))
def test_nearest_matches_brute_force(name: str, scene: Scene, k: int, capped: bool, how: str) -> None:
    (qlat, qlon), radius, points = scene
    idx = INDEXES[name]()
    fill(idx, points, how)
    cap = radius if capped else None
    expected = oracle(points).nearest(qlat, qlon, k, cap)
    assert idx.nearest(qlat, qlon, k, cap) == expected
    assert len(expected) == min(k, len(points)) or capped


@pytest.mark.parametrize("how", SOME_FILLS)
@pytest.mark.parametrize("name", list(INDEXES))
def test_pole_queries_find_every_longitude(name: str, how: str) -> None:
    points = [(89.99, lon) for lon in range(-180, 181, 15)] + [(90.0, 33.0), (-90.0, 0.0), (89.0, 0.0)]
    idx = INDEXES[name]()
    fill(idx, [(la, float(lo)) for la, lo in points], how)
    ref = oracle(points)
    for qlat, qlon in [(90.0, 0.0), (90.0, -180.0), (89.995, 100.0), (-90.0, 180.0)]:
        for radius in (1.0, 1_200.0, 5_000.0, 50_000.0):
            assert idx.within(qlat, qlon, radius) == ref.within(qlat, qlon, radius)
        assert idx.nearest(qlat, qlon, 5) == ref.nearest(qlat, qlon, 5)
    hits = idx.within(90.0, 0.0, 1_200.0)
    assert len(hits) == 26  # the ring of 25 at 1.11 km and the pole itself


@pytest.mark.parametrize("how", SOME_FILLS)
@pytest.mark.parametrize("name", list(INDEXES))
def test_antimeridian_queries_see_both_sides(name: str, how: str) -> None:
    points = [(0.0, 179.99), (0.0, -179.99), (0.0, 180.0), (0.0, -180.0), (-18.14, 178.44), (-16.5, -179.9)]
    idx = INDEXES[name]()
    fill(idx, points, how)
    assert [i for i, _ in idx.within(0.0, 180.0, 2_000.0)] == [2, 3, 0, 1]
    assert idx.within(0.0, 180.0, 2_000.0) == idx.within(0.0, -180.0, 2_000.0)
    assert [i for i, _ in idx.nearest(-17.0, 179.5, 2)] == [5, 4]
    assert idx.nearest(-17.0, 179.5, 6) == oracle(points).nearest(-17.0, 179.5, 6)


@pytest.mark.parametrize("how", SOME_FILLS)
@pytest.mark.parametrize("name", list(INDEXES))
def test_tiny_coordinates_near_null_island(name: str, how: str) -> None:
    # python-geohash mis-encodes magnitudes below ~1e-17; the index must not care.
    points = [(3.799727235697886e-233, 0.0), (0.0, 5e-324), (-1e-300, -1e-300), (1e-17, 1e-17), (0.0, 0.0)]
    idx = INDEXES[name]()
    fill(idx, points, how)
    expected = oracle(points).within(0.0, 0.0, 1.0)
    assert sorted(i for i, _ in expected) == [0, 1, 2, 3, 4]
    assert idx.within(0.0, 0.0, 1.0) == expected
    assert idx.within(1e-300, -1e-300, 1.0) == oracle(points).within(1e-300, -1e-300, 1.0)


@pytest.mark.parametrize("name", list(INDEXES))
def test_duplicates_are_ordered_by_signed_id(name: str) -> None:
    idx = INDEXES[name]()
    for i in (5, MAX_ID, 3, -1, MIN_ID, 9):
        idx.insert(i, 51.5, -0.12)
    idx.bulk_load([(1, 51.5, -0.12), (7, 51.5001, -0.12)])
    assert [i for i, _ in idx.within(51.5, -0.12, 100.0)] == [MIN_ID, -1, 1, 3, 5, 9, MAX_ID, 7]
    assert idx.within(51.5, -0.12, 100.0, limit=2) == [(MIN_ID, 0.0), (-1, 0.0)]
    assert idx.nearest(51.5, -0.12, 3) == [(MIN_ID, 0.0), (-1, 0.0), (1, 0.0)]
    assert idx.page(51.5, -0.12, 100.0, 2, (0.0, -1)).hits == [(1, 0.0), (3, 0.0)]


@pytest.mark.parametrize("name", list(INDEXES))
def test_nearest_without_a_cap_reaches_the_antipode(name: str) -> None:
    idx = INDEXES[name]()
    idx.insert(2, 0.0, 180.0)
    idx.insert(1, 45.0, 0.0)
    assert idx.nearest(0.0, 0.0, 2) == [
        (1, haversine_m(0.0, 0.0, 45.0, 0.0)),
        (2, haversine_m(0.0, 0.0, 0.0, 180.0)),
    ]
    assert idx.nearest(0.0, 0.0, 2, max_radius_m=50_000.0) == []


def test_brute_force_index_is_an_index_too() -> None:
    # The oracle takes any orderable hashable ids, which the compact indexes do not.
    idx: BruteForceIndex[str] = BruteForceIndex()
    idx.bulk_load([("a", 1.0, 1.0), ("b", 1.0, 1.0001)])
    assert [i for i, _ in idx.within(1.0, 1.0, 20.0)] == ["a", "b"]
