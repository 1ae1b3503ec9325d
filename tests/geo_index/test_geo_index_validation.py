"""Argument checking: typed errors that subclass built-ins and name the argument."""

from __future__ import annotations

import math
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
    InvalidOption,
    InvalidRadius,
    QuadTree,
    S2Index,
    SpatialIndex,
    UnknownId,
)
from geo_index._base import IndexBase

ALL = [GeohashIndex, QuadTree, S2Index, BruteForceIndex]


@pytest.fixture(params=ALL, ids=lambda c: c.__name__)
def index(request: pytest.FixtureRequest) -> IndexBase[Any]:
    idx: IndexBase[Any] = request.param()
    idx.bulk_load([(1, 10.0, 20.0), (2, 10.001, 20.001)])
    return idx


def test_error_hierarchy() -> None:
    for cls in (InvalidCoordinate, InvalidRadius, InvalidCount, InvalidOption, DuplicateId):
        assert issubclass(cls, GeoIndexError)
        assert issubclass(cls, ValueError)
    assert issubclass(UnknownId, GeoIndexError)
    assert issubclass(UnknownId, KeyError)
    assert str(UnknownId("id 3 is not in the index")) == "id 3 is not in the index"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_constructible_without_arguments_and_satisfies_the_protocol(cls: type[IndexBase[Any]]) -> None:
    idx = cls()
    assert isinstance(idx, SpatialIndex)
    assert len(idx) == 0
    assert idx.max_radius_m == DEFAULT_MAX_RADIUS_M == 50_000
    assert idx.within(0.0, 0.0, 1_000.0) == []
    assert idx.nearest(0.0, 0.0, 3) == []


BAD_LATS = [91.0, -90.0000001, math.nan, math.inf, -math.inf, "10", None, True]
BAD_LONS = [180.0000001, -181.0, math.nan, math.inf, "0", None, False]


@pytest.mark.parametrize("lat", BAD_LATS, ids=repr)
def test_bad_latitude_is_named(index: IndexBase[Any], lat: Any) -> None:
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
def test_bad_longitude_is_named(index: IndexBase[Any], lon: Any) -> None:
    for call in (
        lambda: index.within(0.0, lon, 100.0),
        lambda: index.nearest(0.0, lon, 1),
        lambda: index.insert(99, 0.0, lon),
        lambda: index.move(1, 0.0, lon),
    ):
        with pytest.raises(InvalidCoordinate, match=r"^lon must be"):
            call()


def test_integer_coordinates_and_both_antimeridian_spellings_are_accepted(index: IndexBase[Any]) -> None:
    index.insert(3, 0, 180)
    index.insert(4, -90, -180)
    assert index.position(3) == (0, 180)
    assert index.within(0, -180, 1) == [(3, 0.0)]


@pytest.mark.parametrize("radius", [0.0, -1.0, 50_000.001, math.nan, math.inf, "5", None, True])
def test_bad_radius_is_named(index: IndexBase[Any], radius: Any) -> None:
    with pytest.raises(InvalidRadius, match=r"^radius_m must be"):
        index.within(0.0, 0.0, radius)
    if radius is not None:
        with pytest.raises(InvalidRadius, match=r"^max_radius_m must be"):
            index.nearest(0.0, 0.0, 1, max_radius_m=radius)


def test_radius_maximum_is_configurable() -> None:
    idx: GeohashIndex[int] = GeohashIndex(max_radius_m=1_000_000)
    idx.insert(1, 0.0, 0.0)
    assert idx.within(0.0, 5.0, 600_000.0) == [(1, pytest.approx(555_975.4, abs=0.1))]
    with pytest.raises(InvalidRadius, match="1e\\+06"):
        idx.within(0.0, 0.0, 1_000_001.0)
    assert GeohashIndex().within(0.0, 0.0, 50_000) == []  # an int radius at the maximum


@pytest.mark.parametrize("k", [0, -1, 1.5, "3", None, True])
def test_bad_k_is_named(index: IndexBase[Any], k: Any) -> None:
    with pytest.raises(InvalidCount, match=r"^k must be"):
        index.nearest(0.0, 0.0, k)


@pytest.mark.parametrize("limit", [0, -5, 2.0, "1", False])
def test_bad_limit_is_named(index: IndexBase[Any], limit: Any) -> None:
    with pytest.raises(InvalidCount, match=r"^limit must be"):
        index.within(0.0, 0.0, 10.0, limit=limit)


def test_duplicate_id_on_insert_raises_and_changes_nothing(index: IndexBase[Any]) -> None:
    with pytest.raises(DuplicateId, match="move"):
        index.insert(1, 0.0, 0.0)
    assert index.position(1) == (10.0, 20.0)
    assert len(index) == 2


def test_bulk_load_is_all_or_nothing(index: IndexBase[Any]) -> None:
    with pytest.raises(DuplicateId):
        index.bulk_load([(5, 0.0, 0.0), (6, 0.0, 0.0), (5, 1.0, 1.0)])
    with pytest.raises(DuplicateId):
        index.bulk_load([(7, 0.0, 0.0), (2, 1.0, 1.0)])
    with pytest.raises(InvalidCoordinate):
        index.bulk_load([(8, 0.0, 0.0), (9, 100.0, 1.0)])
    assert len(index) == 2
    assert 5 not in index and 7 not in index and 8 not in index
    assert [pid for pid, _ in index.nearest(0.0, 0.0, 10)] == [1, 2]


def test_unknown_id_on_remove_move_and_position(index: IndexBase[Any]) -> None:
    with pytest.raises(UnknownId, match="42"):
        index.remove(42)
    with pytest.raises(UnknownId):
        index.move(42, 0.0, 0.0)
    with pytest.raises(KeyError):
        index.position(42)
    assert len(index) == 2


def test_move_validates_before_looking_up_the_id(index: IndexBase[Any]) -> None:
    with pytest.raises(InvalidCoordinate):
        index.move(42, 95.0, 0.0)


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: GeohashIndex(levels=()), "levels"),
        (lambda: GeohashIndex(levels=(1,)), "levels"),
        (lambda: GeohashIndex(levels=(40,)), "levels"),
        (lambda: GeohashIndex(max_cells=0), "max_cells"),
        (lambda: GeohashIndex(dense_min=0), "dense_min"),
        (lambda: QuadTree(dense_min=1.5), "dense_min"),
        (lambda: QuadTree(native=1), "native"),
        (lambda: S2Index(native="yes"), "native"),
        (lambda: QuadTree(leaf_capacity=0), "leaf_capacity"),
        (lambda: QuadTree(max_depth=0), "max_depth"),
        (lambda: S2Index(level=31), "level"),
        (lambda: S2Index(max_cells=0), "max_cells"),
        (lambda: BruteForceIndex(max_radius_m=0), "max_radius_m"),
        (lambda: QuadTree(max_radius_m=math.inf), "max_radius_m"),
    ],
)
def test_bad_options(factory: Any, match: str) -> None:
    with pytest.raises(InvalidOption, match=match):
        factory()
