"""The compiled pieces of geo_index (geo_index/native.c) against references written here in
Python: the distance bit for bit, the Z-order key (the geohash bits), and the key ranges each
planner reads, which must hold every point within the radius."""

from __future__ import annotations


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import geo_index.native as native
from geo_index import GeohashIndex, QuadTree, S2Index, haversine_m
from tests.geo_index import reference
from geo_index.distance import cap_bounds, padded_angle_rad
from tests.geo_index.strategies import FILLS, INDEXES, Scene, fill, latitudes, longitudes, oracle, radii, scenes

Ranges = list[tuple[int, int]]

# ----------------------------------------------------------------------------- references


def grid_cell(v: float, lo: float, span: float) -> int:
    """geo_index/_keys.h's grid_cell: the 32-bit row or column of a coordinate (degrees)."""
    t = (v - lo) * (4294967296.0 / span)
    if not t > 0.0:
        return 0
    if t >= 4294967295.0:
        return 0xFFFFFFFF
    return int(t)


def grid_row(lat: float) -> int:
    return grid_cell(lat, -90.0, 180.0)


def grid_col(lon: float) -> int:
    return grid_cell(lon, -180.0, 360.0)


def interleave(row: int, col: int, bits: int) -> int:
    """The geohash code of ``bits`` bits: a column (longitude) bit first, then a row bit, and
    so on, each from its most significant end; the column has ``bits - bits // 2`` bits."""
    lat_bits, lon_bits = bits // 2, bits - bits // 2
    code = 0
    for k in range(bits):
        if k % 2 == 0:
            code = code << 1 | (col >> (lon_bits - 1 - k // 2)) & 1
        else:
            code = code << 1 | (row >> (lat_bits - 1 - k // 2)) & 1
    return code


def zorder(lat: float, lon: float) -> int:
    return interleave(grid_row(lat), grid_col(lon), 64)


def merged(ranges: Ranges) -> Ranges:
    """Sorted, with overlapping and touching ranges joined."""
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def geohash_cells(lat: float, lon: float, radius_m: float, bits: int) -> list[int]:
    """The codes of the cells of ``bits`` bits overlapping the query's padded bounding box."""
    box = cap_bounds(lat, lon, radius_m)
    lat_shift, lon_shift = 32 - bits // 2, 32 - (bits - bits // 2)
    rows = range(grid_row(box.lat_lo) >> lat_shift, (grid_row(box.lat_hi) >> lat_shift) + 1)
    cols = [c for lo, hi in box.lon_ranges for c in range(grid_col(lo) >> lon_shift, (grid_col(hi) >> lon_shift) + 1)]
    return [interleave(row, col, bits) for row in rows for col in cols]


def geohash_level(idx: GeohashIndex, max_cells: int, lat: float, lon: float, radius_m: float) -> int:
    """_plan.c's choice: the finest level whose mean count of cells over the box's positions,
    (height / cell height + 1) * (width / cell width + 1), is at most max_cells; else the coarsest."""
    box = cap_bounds(lat, lon, radius_m)
    height, width = box.lat_hi - box.lat_lo, sum(hi - lo for lo, hi in box.lon_ranges)
    for bits in reversed(idx.levels):
        rows_per_deg, cols_per_deg = (1 << bits // 2) / 180.0, (1 << (bits - bits // 2)) / 360.0
        if (height * rows_per_deg + 1.0) * (width * cols_per_deg + 1.0) <= max_cells:
            return bits
    return idx.levels[0]


def key_of(idx: object, lat: float, lon: float) -> int:
    return native.s2_leaf_id(lat, lon) if isinstance(idx, S2Index) else native.zorder_key(lat, lon)


def covered(key: int, ranges: Ranges) -> bool:
    return any(lo <= key <= hi for lo, hi in ranges)


def assert_sorted_and_separate(ranges: Ranges) -> None:
    assert all(0 <= lo <= hi < 2**64 for lo, hi in ranges)
    assert all(a[1] + 1 < b[0] for a, b in zip(ranges, ranges[1:]))


# ----------------------------------------------------------------------------- distance and keys


wide = st.one_of(latitudes, longitudes, st.floats(-720.0, 720.0))


@settings(max_examples=500, deadline=None)
@given(latitudes, longitudes, latitudes, longitudes)
def test_haversine_is_the_reference_bit_for_bit(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    assert haversine_m(lat1, lon1, lat2, lon2).hex() == reference.haversine_m(lat1, lon1, lat2, lon2).hex()


@settings(max_examples=200, deadline=None)
@given(wide, wide, wide, wide)
def test_haversine_is_the_reference_bit_for_bit_off_the_map(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    assert haversine_m(lat1, lon1, lat2, lon2).hex() == reference.haversine_m(lat1, lon1, lat2, lon2).hex()


def test_haversine_m_is_the_compiled_one_and_refuses_what_is_not_a_number() -> None:
    assert haversine_m is native.haversine
    assert haversine_m(0, 0, 0, 1) == reference.haversine_m(0.0, 0.0, 0.0, 1.0)  # ints are numbers
    with pytest.raises(TypeError, match="4 arguments"):
        haversine_m(0.0, 0.0, 0.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        haversine_m(0.0, 0.0, "1", 0.0)  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(st.one_of(latitudes, st.floats()), st.one_of(longitudes, st.floats()))
def test_zorder_key_interleaves_the_grid_row_and_column(lat: float, lon: float) -> None:
    assert native.zorder_key(lat, lon) == zorder(lat, lon)


def test_zorder_key_edges_and_a_known_geohash() -> None:
    # Latitude 90 is in the top row, longitude 180 in the last column, -180 in the first.
    assert native.zorder_key(-90.0, -180.0) == 0
    assert native.zorder_key(90.0, 180.0) == 2**64 - 1
    assert native.zorder_key(0.0, -180.0) == interleave(2**31, 0, 64)
    assert native.zorder_key(0.0, 180.0) == interleave(2**31, 2**32 - 1, 64)
    assert native.zorder_key(90.0, 0.0) == interleave(2**32 - 1, 2**31, 64)
    # The top 55 bits are the 11-character geohash (Wikipedia's example, Jutland).
    alphabet = "0123456789bcdefghjkmnpqrstuvwxyz"
    code = 0
    for ch in "u4pruydqqvj":
        code = code * 32 + alphabet.index(ch)
    assert native.zorder_key(57.64911, 10.40744) >> 9 == code


# ----------------------------------------------------------------------------- plans

GEOHASH_CONFIGS = [((13, 15, 17, 19, 21, 23, 25, 27), 12), ((5, 9), 4), ((2, 3, 16, 24, 32), 40)]

HARD_QUERIES = [
    (0.0, 0.0),
    (0.0, 180.0),
    (0.0, -180.0),
    (-17.8, 179.99),
    (-17.8, -179.99),
    (64.7, 177.5),
    (89.99, 0.0),
    (90.0, 45.0),
    (-90.0, -45.0),
    (82.5, -62.3),
    (-0.0001, -0.0001),
]


def _check_geohash_plan(levels: tuple[int, ...], max_cells: int, lat: float, lon: float, radius: float) -> None:
    idx = GeohashIndex(levels=levels, max_cells=max_cells)
    bits, count = idx.plan(lat, lon, radius)
    assert bits == geohash_level(idx, max_cells, lat, lon, radius)
    cells = geohash_cells(lat, lon, radius, bits)
    assert count == len(cells)
    span = 1 << (64 - bits)
    assert idx.ranges(lat, lon, radius) == merged([(c * span, c * span + span - 1) for c in cells])


@pytest.mark.parametrize(("levels", "max_cells"), GEOHASH_CONFIGS)
@settings(max_examples=150, deadline=None)
@given(lat=latitudes, lon=longitudes, radius=radii)
def test_geohash_ranges_are_the_cells_of_its_plan(
    levels: tuple[int, ...], max_cells: int, lat: float, lon: float, radius: float
) -> None:
    _check_geohash_plan(levels, max_cells, lat, lon, radius)


@pytest.mark.parametrize(("levels", "max_cells"), GEOHASH_CONFIGS)
@pytest.mark.parametrize(("lat", "lon"), HARD_QUERIES)
def test_geohash_ranges_at_the_hard_places(levels: tuple[int, ...], max_cells: int, lat: float, lon: float) -> None:
    for radius in (1.0, 150.0, 5_000.0, 50_000.0):
        _check_geohash_plan(levels, max_cells, lat, lon, radius)


def test_geohash_plan_depends_on_radius_and_latitude() -> None:
    idx = GeohashIndex()
    assert idx.levels == (13, 15, 17, 19, 21, 23, 25, 27)
    bits_equator = [idx.plan(0.0, 10.0, r)[0] for r in (500.0, 5_000.0, 50_000.0)]
    assert bits_equator == sorted(bits_equator, reverse=True) and len(set(bits_equator)) == 3
    assert idx.plan(70.0, 10.0, 5_000.0)[0] < idx.plan(0.0, 10.0, 5_000.0)[0]
    bits, cells = idx.plan(90.0, 0.0, 5_000.0)
    assert bits == 13 and cells == 128  # over the pole: every column of the top row


@pytest.mark.parametrize("max_cells", [4, 8, 64])
@settings(max_examples=100, deadline=None)
@given(lat=latitudes, lon=longitudes, radius=radii)
def test_s2_ranges_are_the_covering_of_the_padded_cap(max_cells: int, lat: float, lon: float, radius: float) -> None:
    expected = native.s2_cap_ranges(lat, lon, padded_angle_rad(radius), max_cells)
    assert S2Index(max_cells=max_cells).ranges(lat, lon, radius) == expected


@pytest.mark.parametrize("name", list(INDEXES))
@settings(max_examples=40, deadline=None)
@given(scene=scenes(), how=st.sampled_from(FILLS))
def test_ranges_hold_the_key_of_every_point_within_the_radius(name: str, scene: Scene, how: str) -> None:
    (qlat, qlon), radius, points = scene
    idx = INDEXES[name]()
    fill(idx, points, how)
    ranges = idx.ranges(qlat, qlon, radius)
    assert_sorted_and_separate(ranges)
    for lat, lon in points:
        if haversine_m(qlat, qlon, lat, lon) <= radius:
            assert covered(key_of(idx, lat, lon), ranges), (lat, lon)


@pytest.mark.parametrize("max_depth", [1, 5, 20, 32])
@pytest.mark.parametrize("leaf_capacity", [1, 3, 100])
@settings(max_examples=15, deadline=None)
@given(scene=scenes(), how=st.sampled_from(FILLS), limit=st.integers(1, 4))
def test_quadtree_options_keep_every_match_in_nodes_no_deeper_than_max_depth(
    leaf_capacity: int, max_depth: int, scene: Scene, how: str, limit: int
) -> None:
    # The options decide how deep the tree is split where points crowd: never what it answers.
    (qlat, qlon), radius, points = scene
    tree = QuadTree(leaf_capacity=leaf_capacity, max_depth=max_depth)
    fill(tree, points, how)
    ranges = tree.ranges(qlat, qlon, radius)
    assert_sorted_and_separate(ranges)
    node = 4 ** (32 - max_depth)  # keys in a node of the deepest depth allowed
    assert all(lo % node == 0 and (hi + 1) % node == 0 for lo, hi in ranges)
    for lat, lon in points:
        if haversine_m(qlat, qlon, lat, lon) <= radius:
            assert covered(native.zorder_key(lat, lon), ranges)
    ref = oracle(points)
    assert tree.within(qlat, qlon, radius) == ref.within(qlat, qlon, radius)
    assert tree.page(qlat, qlon, radius, limit) == ref.page(qlat, qlon, radius, limit)
    assert tree.nearest(qlat, qlon, limit) == ref.nearest(qlat, qlon, limit)
