"""Insert, remove, move, bulk_load and merges keep every index equal to the brute-force scan,
including while a merge runs in another thread."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_index import BruteForceIndex, DuplicateId, GeohashIndex, QuadTree, S2Index, UnknownId, haversine_m
from geo_index._base import IndexBase
from tests.geo_index.strategies import INDEXES, latitudes, longitudes

# A small neighbourhood so that queries actually hit the moving points, plus the hard places.
near = st.tuples(st.floats(59.99, 60.01), st.floats(10.99, 11.01))
anywhere = st.tuples(latitudes, longitudes)
positions = st.one_of(near, near, anywhere)

operations = st.lists(
    st.tuples(
        st.sampled_from(["insert", "insert", "move", "remove", "query", "merge", "bulk_load"]),
        st.integers(0, 12),
        positions,
    ),
    max_size=60,
)


def assert_same(idx: IndexBase, ref: BruteForceIndex[int], lat: float, lon: float) -> None:
    for radius in (100.0, 2_000.0, 50_000.0):
        assert idx.within(lat, lon, radius) == ref.within(lat, lon, radius)
    assert idx.page(lat, lon, 2_000.0, 2) == ref.page(lat, lon, 2_000.0, 2)
    assert idx.nearest(lat, lon, 3) == ref.nearest(lat, lon, 3)


def apply(idx: IndexBase, ref: BruteForceIndex[int], op: str, id: int, lat: float, lon: float) -> None:
    """One change to both indexes; an index refuses exactly what the oracle refuses."""
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
    elif op == "bulk_load":
        # Two points, one of them possibly held already: all or nothing.
        items = [(id, lat, lon), (20 + id, lon / 2.0, lat)]
        if id in ref or 20 + id in ref:
            with pytest.raises(DuplicateId):
                idx.bulk_load(items)
        else:
            idx.bulk_load(items)
            ref.bulk_load(items)
    else:
        raise AssertionError(op)


@pytest.mark.parametrize("name", list(INDEXES))
@settings(max_examples=45, deadline=None)
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
        if op == "query":
            assert_same(idx, ref, lat, lon)
        elif op == "merge":
            assert idx.merge() is True
        else:
            apply(idx, ref, op, id, lat, lon)
        assert len(idx) == len(ref)
    assert_same(idx, ref, 60.0, 11.0)
    used = dict.fromkeys([*(item[0] for item in items), *(op_id for _, op_id, _ in ops), *(20 + i for i in range(13))])
    for id in [i for i in used if i in ref]:
        assert id in idx
        assert idx.position(id) == ref.position(id)
        idx.remove(id)
        assert id not in idx
    assert len(idx) == 0
    assert idx.within(60.0, 11.0, 50_000.0) == []
    assert idx.nearest(60.0, 11.0, 1) == []


@pytest.mark.parametrize("merge_every", [None, 3])
@pytest.mark.parametrize("kind", [GeohashIndex, QuadTree, S2Index], ids=lambda k: k.__name__)
def test_a_merge_in_another_thread_loses_no_change(kind: Callable[..., IndexBase], merge_every: int | None) -> None:
    # A worker merges over and over while this thread changes and queries the index: every
    # answer along the way, and the final state, must be the oracle's. Merges run without the
    # interpreter's lock, so changes land in the middle of them (removals of points being
    # merged are replayed when it ends); with merge_every=3 this thread merges too, and
    # whichever merge comes second is refused (returns False) rather than run twice.
    rng = random.Random(f"{kind.__name__}-{merge_every}")
    idx = kind(merge_every=merge_every)
    ref: BruteForceIndex[int] = BruteForceIndex()
    initial = [(i, 60.0 + rng.uniform(-0.3, 0.3), 11.0 + rng.uniform(-0.3, 0.3)) for i in range(2_500)]
    idx.bulk_load(initial)
    ref.bulk_load(initial)
    stop = threading.Event()
    results: list[bool] = []
    failures: list[BaseException] = []

    def merge_until_stopped() -> None:
        try:
            while True:  # at least once, even if the changes below are over first
                results.append(idx.merge())
                if stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised on the test's thread
            failures.append(exc)

    worker = threading.Thread(target=merge_until_stopped)
    worker.start()
    try:
        for step in range(1_500):
            id = rng.randrange(2_800)
            lat, lon = 60.0 + rng.uniform(-0.3, 0.3), 11.0 + rng.uniform(-0.3, 0.3)
            roll = rng.random()
            if roll < 0.35:
                apply(idx, ref, "move" if id in ref else "insert", id, lat, lon)
            elif roll < 0.6:
                apply(idx, ref, "remove", id, lat, lon)
            elif step % 10 == 0:
                assert idx.within(lat, lon, 3_000.0) == ref.within(lat, lon, 3_000.0)
                assert idx.nearest(lat, lon, 4) == ref.nearest(lat, lon, 4)
            elif id in ref:
                assert idx.position(id) == ref.position(id)
            else:
                assert id not in idx
            assert len(idx) == len(ref)
    finally:
        stop.set()
        worker.join()
    assert failures == []
    assert True in results
    assert idx.merge() is True and idx.pending == 0
    assert len(idx) == len(ref)
    for id in range(2_800):
        assert (id in idx) == (id in ref)
        if id in ref:
            assert idx.position(id) == ref.position(id)
    for lat, lon in [(60.0, 11.0), (60.25, 10.8), (59.75, 11.2)]:
        assert idx.within(lat, lon, 20_000.0) == ref.within(lat, lon, 20_000.0)


@pytest.mark.parametrize("name", list(INDEXES))
def test_extreme_ids_and_coordinates_kept_as_given(name: str) -> None:
    idx = INDEXES[name]()
    idx.insert(2**63 - 1, 10, -180)
    idx.insert(-(2**63), 10.0, 180.0)
    idx.bulk_load([(0, -90, 0), (-5, 90.0, -180.0)])
    assert idx.position(2**63 - 1) == (10.0, -180.0)
    assert idx.position(-(2**63)) == (10.0, 180.0)
    assert [i for i, _ in idx.within(10.0, 180.0, 1.0)] == [-(2**63), 2**63 - 1]
    assert [i for i, _ in idx.within(90.0, 0.0, 1.0)] == [-5]
    idx.move(-5, -90.0, 180.0)
    # At the pole, cos(lat) is not exactly 0: the two spellings of the pole are nm apart.
    assert idx.within(-90.0, 45.0, 1.0) == sorted(
        ((i, haversine_m(-90.0, 45.0, -90.0, lon)) for i, lon in ((0, 0.0), (-5, 180.0))), key=lambda h: (h[1], h[0])
    )


@pytest.mark.parametrize("name", list(INDEXES))
def test_bulk_load_into_a_non_empty_index_with_pending_changes(name: str) -> None:
    idx = INDEXES[name]()
    idx.insert(0, 1.0, 1.0)
    idx.move(0, 1.0, 1.0)
    idx.bulk_load((i, 1.0 + i * 1e-4, 1.0) for i in range(1, 50))
    assert idx.pending == 0  # a bulk load folds the delta in with it
    idx.remove(3)
    idx.bulk_load([(50, 1.0, 1.0), (3, 1.0, 1.0)])  # a removed id may come back
    assert len(idx) == 51
    assert [i for i, _ in idx.within(1.0, 1.0, 12.0)] == [0, 3, 50, 1]


def test_a_quadtree_keeps_duplicates_at_the_depth_limit() -> None:
    tree = QuadTree(leaf_capacity=2, max_depth=6)
    tree.bulk_load((i, -33.0, 151.0) for i in range(20))
    assert [i for i, _ in tree.within(-33.0, 151.0, 1.0)] == list(range(20))
    assert [i for i, _ in tree.nearest(-33.0, 151.0, 3)] == [0, 1, 2]
