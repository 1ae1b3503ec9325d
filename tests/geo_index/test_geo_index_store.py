"""The compact store under every index: bulk_load_arrays' checks (all or nothing), the delta
of changes and its merges, and the bytes a point costs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import geo_index.native as native
from geo_index import (
    BruteForceIndex,
    DuplicateId,
    GeohashIndex,
    GeoIndexError,
    InvalidCoordinate,
    InvalidId,
    QuadTree,
    S2Index,
)
from geo_index._base import DEFAULT_MERGE_EVERY, IndexBase

KINDS: list[Callable[..., IndexBase]] = [GeohashIndex, QuadTree, S2Index]
kinds = pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)

HELD = [(1, 10.0, 20.0), (2, 10.001, 20.001), (3, 10.002, 20.0)]


def _held(kind: Callable[..., IndexBase]) -> IndexBase:
    """An index holding id 1 in the bulk, 2 moved from it into the delta, 4 inserted into the
    delta, and 3 removed (its id free again)."""
    idx = kind(merge_every=None)
    idx.bulk_load(HELD)
    idx.move(2, 10.0005, 20.0005)
    idx.remove(3)
    idx.insert(4, 10.0, 20.0)
    return idx


def _state(idx: IndexBase) -> tuple[object, ...]:
    """What a refused load must leave as it was."""
    return (
        len(idx),
        idx.pending,
        [idx.position(i) if i in idx else None for i in range(1, 6)],
        idx.within(10.0, 20.0, 1_000.0),
        idx.page(10.0, 20.0, 1_000.0, 2),
    )


def test_every_index_holds_a_native_index() -> None:
    for kind in KINDS:
        assert type(kind().native) is native.Index


@kinds
def test_bulk_load_arrays_takes_arrays_lists_and_strided_views(kind: Callable[..., IndexBase]) -> None:
    idx = _held(kind)
    ids = np.arange(100, 120, dtype=np.int64)
    lats = np.linspace(-90.0, 90.0, 39)[::2]  # a strided view, copied into a contiguous one
    idx.bulk_load_arrays(ids, lats, np.full(20, -180.0))
    idx.bulk_load_arrays([5, 6], np.array([0.5, -0.5], dtype=np.float32), [179.5, 180])
    idx.bulk_load_arrays(np.array([7], dtype=np.int32), [1], [2])
    idx.bulk_load_arrays([], [], [])
    assert len(idx) == 3 + 20 + 3 and idx.pending == 0
    assert idx.position(105) == (float(lats[5]), -180.0)
    assert idx.position(5) == (0.5, 179.5) and idx.position(7) == (1.0, 2.0)
    assert [i for i, _ in idx.within(90.0, 180.0, 1.0)] == [119]
    assert [i for i, _ in idx.nearest(0.0, 180.0, 2)] == [6, 5]


REFUSED = [
    pytest.param([5, 6], [0.0], [0.0, 0.0], InvalidCoordinate, id="lengths"),
    pytest.param([[5]], [[0.0]], [[0.0]], InvalidId, id="two-dimensional-ids"),
    pytest.param([5], [[0.0]], [[0.0]], InvalidCoordinate, id="two-dimensional-coordinates"),
    pytest.param([5, 6], [0.0, math.nan], [0.0, 0.0], InvalidCoordinate, id="nan-lat"),
    pytest.param([5, 6], [0.0, 0.0], [math.nan, 0.0], InvalidCoordinate, id="nan-lon"),
    pytest.param([5, 6], [0.0, math.inf], [0.0, 0.0], InvalidCoordinate, id="inf-lat"),
    pytest.param([5, 6], [90.5, 0.0], [0.0, 0.0], InvalidCoordinate, id="lat-out-of-range"),
    pytest.param([5, 6], [0.0, 0.0], [0.0, -180.001], InvalidCoordinate, id="lon-out-of-range"),
    pytest.param([5, 6, 5], [0.0] * 3, [0.0] * 3, DuplicateId, id="repeated-in-the-arrays"),
    pytest.param([5, 1], [0.0] * 2, [0.0] * 2, DuplicateId, id="held-in-the-bulk"),
    pytest.param([5, 2], [0.0] * 2, [0.0] * 2, DuplicateId, id="moved-into-the-delta"),
    pytest.param([4, 5], [0.0] * 2, [0.0] * 2, DuplicateId, id="inserted-into-the-delta"),
    pytest.param([5, 2**63], [0.0] * 2, [0.0] * 2, InvalidId, id="id-past-int64"),
    pytest.param(["5", "x"], [0.0] * 2, [0.0] * 2, InvalidId, id="id-not-a-number"),
    pytest.param([5, None], [0.0] * 2, [0.0] * 2, InvalidId, id="id-none"),
]


# Arrays of the wrong type are refused as insert and bulk_load refuse the same values (not cast).
WRONG_TYPES = [
    pytest.param(np.array([5.5, 6.0]), [0.0] * 2, [0.0] * 2, InvalidId, id="float-ids"),
    pytest.param(np.array([5.0, 6.0]), [0.0] * 2, [0.0] * 2, InvalidId, id="whole-float-ids"),
    pytest.param(np.array([True, False]), [0.0] * 2, [0.0] * 2, InvalidId, id="bool-ids"),
    pytest.param(
        np.array([5, 2**63], dtype=np.uint64),
        [0.0] * 2,
        [0.0] * 2,
        InvalidId,
        id="uint64-ids",
    ),
    pytest.param(["5", "6"], [0.0] * 2, [0.0] * 2, InvalidId, id="str-ids"),
    pytest.param(
        [5, 6],
        ["north", 0.0],
        [0.0] * 2,
        InvalidCoordinate,
        id="str-lat",
    ),
]


@kinds
@pytest.mark.parametrize(("ids", "lats", "lons", "error"), REFUSED + WRONG_TYPES)
def test_bulk_load_arrays_refuses_bad_input_all_or_nothing(
    kind: Callable[..., IndexBase], ids: Any, lats: Any, lons: Any, error: type[GeoIndexError]
) -> None:
    idx = _held(kind)
    before = _state(idx)
    with pytest.raises(error):
        idx.bulk_load_arrays(ids, lats, lons)
    assert _state(idx) == before
    assert 5 not in idx and 6 not in idx


@kinds
def test_a_removed_id_may_be_loaded_again(kind: Callable[..., IndexBase]) -> None:
    idx = _held(kind)
    idx.bulk_load_arrays([3], [10.002], [20.0])
    assert idx.position(3) == (10.002, 20.0) and len(idx) == 4


# ----------------------------------------------------------------------------- the delta


@kinds
def test_with_merge_every_none_changes_wait_for_merge(kind: Callable[..., IndexBase]) -> None:
    idx = kind(merge_every=None)
    assert idx.merge() is True and idx.pending == 0  # an empty merge
    idx.bulk_load((i, 0.0, i * 1e-3) for i in range(10))
    assert idx.pending == 0
    for i in range(10, 15):
        idx.insert(i, 0.0, i * 1e-3)
    assert idx.pending == 5
    idx.remove(0)  # from the bulk: a tombstone, nothing pending
    idx.remove(14)  # from the delta: gone from it
    idx.move(1, 1.0, 1.0)  # from the bulk into the delta
    idx.move(13, 1.0, 1.0)  # within the delta
    assert idx.pending == 5 and len(idx) == 13
    points = {i: idx.position(i) for i in range(15) if i in idx}
    answers = [idx.within(0.0, 0.0, 50_000.0), idx.nearest(1.0, 1.0, 3), idx.page(0.0, 0.0, 20_000.0, 4)]
    assert idx.merge() is True
    assert idx.pending == 0 and len(idx) == 13
    assert {i: idx.position(i) for i in points} == points
    assert [idx.within(0.0, 0.0, 50_000.0), idx.nearest(1.0, 1.0, 3), idx.page(0.0, 0.0, 20_000.0, 4)] == answers
    ref: BruteForceIndex[int] = BruteForceIndex()
    ref.bulk_load((i, la, lo) for i, (la, lo) in points.items())
    assert answers == [ref.within(0.0, 0.0, 50_000.0), ref.nearest(1.0, 1.0, 3), ref.page(0.0, 0.0, 20_000.0, 4)]


@kinds
def test_merge_every_k_merges_after_k_changes(kind: Callable[..., IndexBase]) -> None:
    idx = kind(merge_every=3)
    pending = []
    for i in range(7):
        idx.insert(i, 5.0, 5.0 + i * 1e-4)
        pending.append(idx.pending)
    assert pending == [1, 2, 0, 1, 2, 0, 1]
    idx.move(0, 5.0, 5.0)
    idx.move(1, 5.0, 5.0)
    assert idx.pending == 0
    idx.bulk_load([(7, 5.0, 5.0)])
    assert [i for i, _ in idx.within(5.0, 5.0, 1.0)] == [0, 1, 7]


@kinds
def test_by_default_the_delta_is_merged_at_4096_changes(kind: Callable[..., IndexBase]) -> None:
    idx = kind()
    for i in range(DEFAULT_MERGE_EVERY - 1):
        idx.insert(i, 0.0, i * 1e-5)
    assert idx.pending == DEFAULT_MERGE_EVERY - 1 == 4095
    idx.insert(-1, 0.0, 0.0)
    assert idx.pending == 0 and len(idx) == 4096
    assert [i for i, _ in idx.within(0.0, 0.0, 1.0)] == [-1, 0]


@kinds
def test_a_merge_after_a_refused_load_folds_every_pending_change(kind: Callable[..., IndexBase]) -> None:
    idx = kind(merge_every=None)
    idx.insert(1, 10.0, 10.0)
    with pytest.raises(DuplicateId):
        idx.bulk_load([(1, 0.0, 0.0)])
    idx.insert(2, 10.0, 10.0)
    assert idx.within(10.0, 10.0, 1.0) == [(1, 0.0), (2, 0.0)]
    assert idx.merge() is True
    assert idx.pending == 0


# ----------------------------------------------------------------------------- memory


@kinds
def test_a_point_costs_under_40_bytes(kind: Callable[..., IndexBase]) -> None:
    # The layout: lat, lon and id (24 bytes), a key every 16th point, a 32-bit slot per id
    # at load 2/3. A layout of Python objects would cost well over 100.
    n = 100_000
    rng = np.random.default_rng(7)
    idx = kind()
    assert idx.nbytes == 0
    idx.bulk_load_arrays(np.arange(n), rng.uniform(-90.0, 90.0, n), rng.uniform(-180.0, 180.0, n))
    assert 24 * n < idx.nbytes < 40 * n
    for i in range(0, n, 10):  # tombstones cost a bit each; a merge drops them
        idx.remove(i)
    assert idx.nbytes < 40 * n
    idx.merge()
    assert 24 * len(idx) < idx.nbytes < 40 * len(idx)
