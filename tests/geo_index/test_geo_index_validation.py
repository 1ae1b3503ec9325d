"""Argument checking: typed errors that subclass built-ins and name the argument."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from geo_index import (
    DEFAULT_MAX_RADIUS_M,
    BruteForceIndex,
    DuplicateId,
    GeohashIndex,
    GeoIndexError,
    InvalidCoordinate,
    InvalidCount,
    InvalidId,
    InvalidOption,
    InvalidPosition,
    InvalidRadius,
    QuadTree,
    S2Index,
    SpatialIndex,
    UnknownId,
)
from geo_index._base import IndexBase
from geo_index.validate import MAX_ID, MIN_ID

ALL = [GeohashIndex, QuadTree, S2Index, BruteForceIndex]
COMPACT = [GeohashIndex, QuadTree, S2Index]


#: Every index, the oracle included.
AnyIndex = IndexBase | BruteForceIndex[Any]


@pytest.fixture(params=ALL, ids=lambda c: c.__name__)
def index(request: pytest.FixtureRequest) -> AnyIndex:
    idx: AnyIndex = request.param()
    idx.bulk_load([(1, 10.0, 20.0), (2, 10.001, 20.001)])
    return idx


@pytest.fixture(params=COMPACT, ids=lambda c: c.__name__)
def compact(request: pytest.FixtureRequest) -> IndexBase:
    idx: IndexBase = request.param(merge_every=None)
    idx.bulk_load([(1, 10.0, 20.0), (2, 10.001, 20.001)])
    idx.insert(3, 10.0, 20.0)  # one point in the delta too
    return idx


def test_error_hierarchy() -> None:
    for cls in (InvalidCoordinate, InvalidRadius, InvalidCount, InvalidOption, InvalidPosition, InvalidId, DuplicateId):
        assert issubclass(cls, GeoIndexError)
        assert issubclass(cls, ValueError)
    assert issubclass(UnknownId, GeoIndexError)
    assert issubclass(UnknownId, KeyError)
    assert str(UnknownId("id 3 is not in the index")) == "id 3 is not in the index"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_constructible_without_arguments_and_satisfies_the_protocol(cls: Callable[[], AnyIndex]) -> None:
    idx = cls()
    assert isinstance(idx, SpatialIndex)
    assert len(idx) == 0
    assert idx.max_radius_m == DEFAULT_MAX_RADIUS_M == 50_000
    assert idx.within(0.0, 0.0, 1_000.0) == []
    assert idx.nearest(0.0, 0.0, 3) == []


BAD_LATS = [91.0, -90.0000001, math.nan, math.inf, -math.inf, "10", None, True]
BAD_LONS = [180.0000001, -181.0, math.nan, math.inf, "0", None, False]


@pytest.mark.parametrize("lat", BAD_LATS, ids=repr)
def test_bad_latitude_is_named(index: AnyIndex, lat: Any) -> None:
    for call in (
        lambda: index.within(lat, 0.0, 100.0),
        lambda: index.nearest(lat, 0.0, 1),
        lambda: index.insert(99, lat, 0.0),
        lambda: index.move(1, lat, 0.0),
        lambda: index.bulk_load([(99, lat, 0.0)]),
    ):
        with pytest.raises(InvalidCoordinate, match=r"^lat must be"):
            call()
    assert len(index) == 2 and index.position(1) == (10.0, 20.0)


@pytest.mark.parametrize("lon", BAD_LONS, ids=repr)
def test_bad_longitude_is_named(index: AnyIndex, lon: Any) -> None:
    for call in (
        lambda: index.within(0.0, lon, 100.0),
        lambda: index.nearest(0.0, lon, 1),
        lambda: index.insert(99, 0.0, lon),
        lambda: index.move(1, 0.0, lon),
    ):
        with pytest.raises(InvalidCoordinate, match=r"^lon must be"):
            call()


def test_integer_coordinates_and_both_antimeridian_spellings_are_accepted(index: AnyIndex) -> None:
    index.insert(3, 0, 180)
    index.insert(4, -90, -180)
    assert index.position(3) == (0, 180)
    assert index.within(0, -180, 1) == [(3, 0.0)]


@pytest.mark.parametrize("radius", [0.0, -1.0, 50_000.001, math.nan, math.inf, "5", None, True])
def test_bad_radius_is_named(index: AnyIndex, radius: Any) -> None:
    with pytest.raises(InvalidRadius, match=r"^radius_m must be"):
        index.within(0.0, 0.0, radius)
    if radius is not None:
        with pytest.raises(InvalidRadius, match=r"^max_radius_m must be"):
            index.nearest(0.0, 0.0, 1, max_radius_m=radius)


def test_radius_maximum_is_configurable() -> None:
    idx = GeohashIndex(max_radius_m=1_000_000)
    idx.insert(1, 0.0, 0.0)
    ((id, d),) = idx.within(0.0, 5.0, 600_000.0)
    assert id == 1 and d == pytest.approx(555_975.4, abs=0.1)
    with pytest.raises(InvalidRadius, match="1e\\+06"):
        idx.within(0.0, 0.0, 1_000_001.0)
    assert GeohashIndex().within(0.0, 0.0, 50_000) == []  # an int radius at the maximum


@pytest.mark.parametrize("k", [0, -1, 1.5, "3", None, True])
def test_bad_k_is_named(index: AnyIndex, k: Any) -> None:
    with pytest.raises(InvalidCount, match=r"^k must be"):
        index.nearest(0.0, 0.0, k)


@pytest.mark.parametrize("limit", [0, -5, 2.0, "1", False])
def test_bad_limit_is_named(index: AnyIndex, limit: Any) -> None:
    with pytest.raises(InvalidCount, match=r"^limit must be"):
        index.within(0.0, 0.0, 10.0, limit=limit)


def test_duplicate_id_on_insert_raises_and_changes_nothing(index: AnyIndex) -> None:
    with pytest.raises(DuplicateId, match="move"):
        index.insert(1, 0.0, 0.0)
    assert index.position(1) == (10.0, 20.0)
    assert len(index) == 2


def test_bulk_load_is_all_or_nothing(index: AnyIndex) -> None:
    with pytest.raises(DuplicateId):
        index.bulk_load([(5, 0.0, 0.0), (6, 0.0, 0.0), (5, 1.0, 1.0)])
    with pytest.raises(DuplicateId):
        index.bulk_load([(7, 0.0, 0.0), (2, 1.0, 1.0)])
    with pytest.raises(InvalidCoordinate):
        index.bulk_load([(8, 0.0, 0.0), (9, 100.0, 1.0)])
    assert len(index) == 2
    assert 5 not in index and 7 not in index and 8 not in index
    assert [pid for pid, _ in index.nearest(0.0, 0.0, 10)] == [1, 2]


def test_unknown_id_on_remove_move_and_position(index: AnyIndex) -> None:
    with pytest.raises(UnknownId, match="42"):
        index.remove(42)
    with pytest.raises(UnknownId):
        index.move(42, 0.0, 0.0)
    with pytest.raises(KeyError):
        index.position(42)
    assert len(index) == 2


def test_move_validates_before_looking_up_the_id(index: AnyIndex) -> None:
    with pytest.raises(InvalidCoordinate):
        index.move(42, 95.0, 0.0)


BAD_IDS = [pytest.param(v, id=repr(v)) for v in ("7", 7.0, True, False, 2**63, -(2**63) - 1, None, (1,))]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_are_signed_64_bit_integers(compact: IndexBase, bad: Any) -> None:
    before = (len(compact), compact.pending, compact.within(10.0, 20.0, 1_000.0))
    with pytest.raises(InvalidId, match=r"^ids are integers in -9223372036854775808\.\.9223372036854775807"):
        compact.insert(bad, 0.0, 0.0)
    with pytest.raises(InvalidId):
        compact.bulk_load([(4, 0.0, 0.0), (bad, 0.0, 0.0)])
    with pytest.raises(InvalidId):
        compact.position(bad)
    # A page's start names an id as well; a malformed one is a malformed start.
    with pytest.raises(InvalidPosition, match="after must be None or a"):
        compact.page(10.0, 20.0, 1_000.0, 5, (0.0, bad))
    # An id that cannot be held is not held.
    assert bad not in compact
    with pytest.raises(UnknownId):
        compact.remove(bad)
    with pytest.raises(UnknownId):
        compact.move(bad, 0.0, 0.0)
    assert (len(compact), compact.pending, compact.within(10.0, 20.0, 1_000.0)) == before
    assert 4 not in compact


def test_the_extreme_ids_are_accepted(compact: IndexBase) -> None:
    compact.insert(MAX_ID, 0.0, 0.0)
    compact.bulk_load([(MIN_ID, 0.0, 0.0)])
    assert compact.page(0.0, 0.0, 1.0, 5, (0.0, MIN_ID)).hits == [(MAX_ID, 0.0)]
    assert compact.position(MIN_ID) == compact.position(MAX_ID) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("cls", "option", "value"),
    [
        (GeohashIndex, "levels", ()),
        (GeohashIndex, "levels", (1,)),
        (GeohashIndex, "levels", (33,)),
        (GeohashIndex, "levels", (5, 9.0)),
        (GeohashIndex, "levels", (True, 9)),
        (GeohashIndex, "levels", {5, 9}),
        (GeohashIndex, "levels", range(5, 9)),
        (GeohashIndex, "max_cells", 0),
        (GeohashIndex, "max_cells", True),
        (GeohashIndex, "max_cells", (1 << 20) + 1),
        (QuadTree, "leaf_capacity", 0),
        (QuadTree, "leaf_capacity", 2.0),
        (QuadTree, "max_depth", 0),
        (QuadTree, "max_depth", 33),
        (QuadTree, "max_depth", None),
        (S2Index, "max_cells", 3),
        (S2Index, "max_cells", 65),
        (S2Index, "max_cells", 8.0),
        (GeohashIndex, "merge_every", 0),
        (QuadTree, "merge_every", -1),
        (S2Index, "merge_every", True),
        (S2Index, "merge_every", 1.5),
        (GeohashIndex, "merge_every", (1 << 30) + 1),
        (BruteForceIndex, "max_radius_m", 0),
        (QuadTree, "max_radius_m", math.inf),
        (S2Index, "max_radius_m", math.nan),
        (GeohashIndex, "max_radius_m", "5"),
    ],
)
def test_bad_options_are_named(cls: type[Any], option: str, value: Any) -> None:
    with pytest.raises(InvalidOption, match=f"^{option} must be"):
        cls(**{option: value})


def test_the_option_limits_are_accepted() -> None:
    geohash = GeohashIndex(levels=[2, 32, 2], max_cells=1, merge_every=1)
    assert geohash.levels == (2, 32)
    tree = QuadTree(leaf_capacity=1, max_depth=32, merge_every=1 << 30)
    for idx in (geohash, tree, QuadTree(max_depth=1), S2Index(max_cells=4), S2Index(max_cells=64, merge_every=None)):
        idx.insert(1, 45.0, 7.0)
        assert idx.within(45.0, 7.0, 1.0) == [(1, 0.0)]
