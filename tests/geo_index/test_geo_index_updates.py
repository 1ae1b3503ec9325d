"""Insert, remove, move and bulk_load keep every index equal to the brute-force scan."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_index import BruteForceIndex, DuplicateId, GeohashIndex, QuadTree, UnknownId
from geo_index._base import IndexBase
from tests.geo_index.strategies import INDEXES, latitudes, longitudes

# A small neighbourhood so that queries actually hit the moving points, plus the hard places.
near = st.tuples(st.floats(59.99, 60.01), st.floats(10.99, 11.01))
anywhere = st.tuples(latitudes, longitudes)
positions = st.one_of(near, near, anywhere)

operations = st.lists(
    st.tuples(st.sampled_from(["insert", "insert", "move", "remove", "query"]), st.integers(0, 12), positions),
    max_size=60,
)


def assert_same(idx: IndexBase[Any], ref: BruteForceIndex[Any], lat: float, lon: float) -> None:
    for radius in (100.0, 2_000.0, 50_000.0):
        assert idx.within(lat, lon, radius) == ref.within(lat, lon, radius)
    assert idx.nearest(lat, lon, 3) == ref.nearest(lat, lon, 3)


@pytest.mark.parametrize("name", list(INDEXES))
@settings(max_examples=60, deadline=None)
@given(ops=operations, initial=st.lists(positions, max_size=20))
def test_random_updates_match_brute_force(
    name: str, ops: list[tuple[str, int, tuple[float, float]]], initial: list[tuple[float, float]]
) -> None:
    idx = INDEXES[name]()
    ref: BruteForceIndex[int] = BruteForceIndex()
    items = [(100 + i, la, lo) for i, (la, lo) in enumerate(initial)]
    idx.bulk_load(items)
    ref.bulk_load(items)
    for op, id, (lat, lon) in ops:
        if op == "insert":
            if id in ref:
                with pytest.raises(DuplicateId):
                    idx.insert(id, lat, lon)
            else:
                idx.insert(id, lat, lon)
                ref.insert(id, lat, lon)
        elif op == "move":
            if id in ref:
                idx.move(id, lat, lon)
                ref.move(id, lat, lon)
            else:
                with pytest.raises(UnknownId):
                    idx.move(id, lat, lon)
        elif op == "remove":
            if id in ref:
                idx.remove(id)
                ref.remove(id)
            else:
                with pytest.raises(UnknownId):
                    idx.remove(id)
        else:
            assert_same(idx, ref, lat, lon)
        assert len(idx) == len(ref)
    assert_same(idx, ref, 60.0, 11.0)
    used = dict.fromkeys([*(item[0] for item in items), *(op_id for _, op_id, _ in ops)])  # in first-use order
    for id in [i for i in used if i in ref]:
        assert idx.position(id) == ref.position(id)
        idx.remove(id)
    assert len(idx) == 0
    assert idx.within(60.0, 11.0, 50_000.0) == []
    assert idx.nearest(60.0, 11.0, 1) == []


@pytest.mark.parametrize("name", list(INDEXES))
def test_string_ids(name: str) -> None:
    idx: IndexBase[str] = INDEXES[name]()  # type: ignore[assignment]
    idx.bulk_load([("cafe", 48.8566, 2.3522), ("bakery", 48.8566, 2.3522), ("museum", 48.8606, 2.3376)])
    idx.insert("zoo", 48.8566, 2.3522)
    assert [i for i, _ in idx.within(48.8566, 2.3522, 2_000.0)] == ["bakery", "cafe", "zoo", "museum"]
    idx.move("zoo", 48.8606, 2.3376)
    idx.remove("cafe")
    assert [i for i, _ in idx.nearest(48.8566, 2.3522, 4)] == ["bakery", "museum", "zoo"]
    assert "cafe" not in idx and "zoo" in idx


@pytest.mark.parametrize("name", list(INDEXES))
def test_tuple_ids_and_coordinates_kept_as_given(name: str) -> None:
    idx: IndexBase[tuple[int, int]] = INDEXES[name]()  # type: ignore[assignment]
    idx.insert((1, 2), 10, -180)
    idx.insert((1, 1), 10.0, 180.0)
    assert idx.position((1, 2)) == (10, -180)
    assert [i for i, _ in idx.within(10.0, 180.0, 1.0)] == [(1, 1), (1, 2)]


def test_quadtree_splits_and_collapses_in_place() -> None:
    tree: QuadTree[int] = QuadTree(leaf_capacity=4)
    for i in range(64):
        tree.insert(i, 10.0 + (i % 8) * 0.01, 20.0 + (i // 8) * 0.01)
    assert tree.depth() > 2
    for i in range(62):
        tree.remove(i)
    assert tree.depth() == 0
    assert [i for i, _ in tree.nearest(10.0, 20.0, 5)] == [62, 63]


def test_quadtree_bulk_load_into_a_non_empty_tree() -> None:
    tree: QuadTree[int] = QuadTree(leaf_capacity=2)
    tree.insert(0, 1.0, 1.0)
    tree.bulk_load((i, 1.0 + i * 1e-4, 1.0) for i in range(1, 50))
    tree.bulk_load([(50, 1.0, 1.0)])
    assert len(tree) == 51
    assert [i for i, _ in tree.within(1.0, 1.0, 12.0)] == [0, 50, 1]


def test_quadtree_keeps_duplicates_at_the_depth_limit() -> None:
    tree: QuadTree[int] = QuadTree(leaf_capacity=2, max_depth=6)
    tree.bulk_load((i, -33.0, 151.0) for i in range(20))
    assert tree.depth() == 6
    assert len(tree.within(-33.0, 151.0, 1.0)) == 20


def test_geohash_plan_depends_on_radius_and_latitude() -> None:
    idx: GeohashIndex[int] = GeohashIndex()
    assert idx.levels == (13, 15, 17, 19, 21, 23, 25, 27)
    bits_equator = [idx.plan(0.0, 10.0, r)[0] for r in (500.0, 5_000.0, 50_000.0)]
    assert bits_equator == sorted(bits_equator, reverse=True)
    assert idx.plan(70.0, 10.0, 5_000.0)[0] < idx.plan(0.0, 10.0, 5_000.0)[0]
    bits, cells = idx.plan(90.0, 0.0, 5_000.0)
    assert bits == 13 and cells == 128  # over the pole: every column of the top row
