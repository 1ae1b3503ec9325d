"""S2 geometry of ``geo_index.native``: leaf cell ids and cap coverings.

Leaf ids are checked bit for bit against s2sphere (the reference they promise to equal) and
against fixed known values. Coverings are checked against their contract: every point within
the cap's angle, including points placed at almost exactly that angle, has its leaf id in a
range; the ranges are sorted, separated and few; and every cell s2sphere's own coverer finds
at a finer level lies inside them.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right

import pytest
import s2sphere
from hypothesis import given, settings
from hypothesis import strategies as st

import geo_index.native as native
from geo_common.places import load_places, offset_point
from geo_index import EARTH_RADIUS_M, haversine_m
from tests.geo_index.strategies import RADII_M, clamp_lat, latitudes, longitudes, radii

Range = tuple[int, int]

WHOLE: list[Range] = [(0, 2**64 - 1)]
#: Corner of cube faces 0, 1, 2: the latitude of the point (1, 1, 1).
CUBE_CORNER_LAT = math.degrees(math.atan(1 / math.sqrt(2)))

#: The project's hard places, plus the places where S2's cube folds: a cube corner, and points
#: on face edges (x = y at longitude 45, x = z at latitude 45).
NAMED = [
    pytest.param(-16.8, 179.95, id="fiji-west-of-180"),
    pytest.param(-16.8, -179.95, id="fiji-east-of-180"),
    pytest.param(-16.8, 180.0, id="fiji-at-180"),
    pytest.param(-16.8, -180.0, id="fiji-at-minus-180"),
    pytest.param(-18.1416, 178.4419, id="suva"),
    pytest.param(64.7337, 177.4968, id="anadyr-chukotka"),
    pytest.param(66.0, -179.9, id="chukotka-across-180"),
    pytest.param(78.2232, 15.6267, id="svalbard-longyearbyen"),
    pytest.param(82.5018, -62.3481, id="alert"),
    pytest.param(89.9999999, 0.0, id="near-north-pole"),
    pytest.param(90.0, 0.0, id="north-pole"),
    pytest.param(-90.0, 123.0, id="south-pole"),
    pytest.param(0.0, 0.0, id="equator-prime-meridian"),
    pytest.param(0.0, 100.0, id="equator"),
    pytest.param(51.4779, 0.0, id="prime-meridian"),
    pytest.param(CUBE_CORNER_LAT, 45.0, id="cube-corner"),
    pytest.param(0.0, 45.0, id="face-edge-x-y"),
    pytest.param(45.0, 0.0, id="face-edge-x-z"),
]


def s2sphere_leaf(lat: float, lon: float) -> int:
    """The reference: s2sphere's leaf cell id of a point (degrees)."""
    return int(s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lon)).id())


def leaf(lat: float, lon: float) -> int:
    key: int = native.s2_leaf_id(lat, lon)
    return key


def cover(lat: float, lon: float, angle_rad: float, max_cells: int) -> list[Range]:
    ranges: list[Range] = native.s2_cap_ranges(lat, lon, angle_rad, max_cells)
    return ranges


def covered(ranges: list[Range], key: int) -> bool:
    """Whether ``key`` lies in one of the sorted, disjoint ``ranges``."""
    k = bisect_right(ranges, (key, 2**64)) - 1
    return k >= 0 and ranges[k][0] <= key <= ranges[k][1]


def assert_well_formed(ranges: list[Range], max_cells: int) -> None:
    """Sorted, within [0, 2^64), at least one leaf id apart, made of at most max_cells cells."""
    assert 1 <= len(ranges) <= max_cells
    if ranges == WHOLE:
        return
    for lo, hi in ranges:
        # A cell's leaves are the odd ids from id - lsb + 1 to id + lsb - 1.
        assert 0 < lo <= hi < 2**64 and lo % 2 == 1 and hi % 2 == 1
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert lo > hi + 2, "touching ranges should have been merged"
    # The covering's own level is this one or finer, with at least as many cells.
    span = 2 * 4 ** (30 - covering_level(ranges))
    assert sum((hi + 1 - (lo - 1)) // span for lo, hi in ranges) <= max_cells


def covering_level(ranges: list[Range]) -> int:
    """The coarsest level whose cells tile every range exactly: the ids of a level-L cell span
    2 * 4^(30 - L) integers from a multiple of that span (plus one, the first leaf)."""
    for level in range(31):
        span = 2 * 4 ** (30 - level)
        if all((lo - 1) % span == 0 and (hi + 1) % span == 0 for lo, hi in ranges):
            return level
    raise AssertionError(f"not whole cells: {ranges}")


def assert_covers(
    lat: float, lon: float, angle_rad: float, ranges: list[Range], points: list[tuple[float, float]]
) -> int:
    """Every point within ``angle_rad`` of the centre (by the project's haversine) has its leaf
    id in ``ranges``. Returns how many points were within."""
    inside = 0
    for p_lat, p_lon in points:
        if haversine_m(lat, lon, p_lat, p_lon) / EARTH_RADIUS_M <= angle_rad:
            inside += 1
            assert covered(ranges, leaf(p_lat, p_lon)), (lat, lon, angle_rad, p_lat, p_lon)
    return inside


def ring(lat: float, lon: float, radius_m: float, n: int = 64) -> list[tuple[float, float]]:
    """Points on the cap's edge (and a hair inside it) at n bearings, and the centre."""
    points = [(lat, lon)]
    for k in range(n):
        bearing = 2 * math.pi * k / n
        for d in (radius_m, radius_m * (1 - 1e-12), radius_m * (1 - 1e-9), radius_m * 0.5):
            p_lat, p_lon = offset_point(lat, lon, d, bearing)
            points.append((clamp_lat(p_lat), p_lon))
    return points


# -- leaf ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (0.0, 0.0, 0x1000000000000001),
        (90.0, 0.0, 0x5000000000000001),
        (-90.0, 0.0, 0xB000000000000001),
        (-16.8, 180.0, 0x6E1FE20A007800A9),
        (-16.8, -180.0, 0x71E01DF5FF87FF57),
        (78.2232, 15.6267, 0x459C5328C003C583),
        (82.5018, -62.3481, 0x4FC413E38662DE79),
        (64.7337, 177.4968, 0x59FC9FAE55570BFD),
    ],
)
def test_leaf_id_known_values(lat: float, lon: float, expected: int) -> None:
    assert leaf(lat, lon) == expected == s2sphere_leaf(lat, lon)


@pytest.mark.parametrize(("lat", "lon"), NAMED)
def test_leaf_id_matches_s2sphere_at_named_places(lat: float, lon: float) -> None:
    for d_lat in (-1e-9, 0.0, 1e-9):
        for d_lon in (-1e-9, 0.0, 1e-9):
            p = (clamp_lat(lat + d_lat), max(-180.0, min(180.0, lon + d_lon)))
            assert leaf(*p) == s2sphere_leaf(*p), p


@settings(max_examples=500)
@given(latitudes, longitudes)
def test_leaf_id_matches_s2sphere(lat: float, lon: float) -> None:
    assert leaf(lat, lon) == s2sphere_leaf(lat, lon)


def test_leaf_id_matches_s2sphere_in_bulk() -> None:
    rnd = random.Random(20240611)
    points = [(rnd.uniform(-90.0, 90.0), rnd.uniform(-180.0, 180.0)) for _ in range(20_000)]
    points += [(p.latitude, p.longitude) for p in load_places()[::97]]
    # Face edges and cube corners, where the face is chosen by comparing components.
    points += [(rnd.uniform(-45.0, 45.0), rnd.choice([45.0, 135.0, -45.0, -135.0])) for _ in range(500)]
    points += [(s * CUBE_CORNER_LAT, lon) for s in (1, -1) for lon in (45.0, 135.0, -45.0, -135.0)]
    assert [leaf(*p) for p in points] == [s2sphere_leaf(*p) for p in points]


def test_antimeridian_spellings_are_one_meridian() -> None:
    # +180 and -180 differ by one ulp of pi in s2sphere's radians, which puts them on either
    # side of a face's centre line (different leaves); a cap of radius 0 still holds both.
    for lat in (-89.0, -16.8, 0.0, 45.0, 66.0, 89.9):
        a, b = leaf(lat, 180.0), leaf(lat, -180.0)
        assert (a, b) == (s2sphere_leaf(lat, 180.0), s2sphere_leaf(lat, -180.0))
        for lon in (180.0, -180.0):
            ranges = cover(lat, lon, 0.0, 4)
            assert_well_formed(ranges, 4)
            assert covered(ranges, a) and covered(ranges, b)


# -- coverings --------------------------------------------------------------------------------


@st.composite
def caps(draw: st.DrawFn) -> tuple[float, float, float, int, list[tuple[float, float]]]:
    """A cap (centre in degrees, radius in metres, max_cells) and points in and around it:
    on its edge and a hair inside, anywhere inside, and slightly outside."""
    lat, lon = draw(latitudes), draw(longitudes)
    radius_m = draw(st.one_of(radii, st.floats(50_000.0, 3_000_000.0)))
    max_cells = draw(st.sampled_from([4, 8, 8, 16]))
    fractions = st.one_of(st.sampled_from([1.0, 1.0 - 1e-12, 1.0 - 1e-9, 1.0 + 1e-9, 0.0]), st.floats(0.0, 1.0))
    points = []
    for _ in range(draw(st.integers(1, 24))):
        d = radius_m * draw(fractions)
        p_lat, p_lon = offset_point(lat, lon, d, draw(st.floats(0.0, 2 * math.pi)))
        points.append((clamp_lat(p_lat), p_lon))
    return lat, lon, radius_m, max_cells, points


@settings(max_examples=400)
@given(caps())
def test_covering_holds_every_point_within_the_angle(
    cap: tuple[float, float, float, int, list[tuple[float, float]]],
) -> None:
    lat, lon, radius_m, max_cells, points = cap
    angle = radius_m / EARTH_RADIUS_M
    ranges = cover(lat, lon, angle, max_cells)
    assert_well_formed(ranges, max_cells)
    assert covered(ranges, leaf(lat, lon))
    assert_covers(lat, lon, angle, ranges, points)


@pytest.mark.parametrize(("lat", "lon"), NAMED)
@pytest.mark.parametrize("radius_m", [*RADII_M, 2_500_000.0])
def test_covering_holds_the_cap_edge_at_named_places(lat: float, lon: float, radius_m: float) -> None:
    angle = radius_m / EARTH_RADIUS_M
    for max_cells in (4, 8):
        ranges = cover(lat, lon, angle, max_cells)
        assert_well_formed(ranges, max_cells)
        assert ranges != WHOLE
        points = ring(lat, lon, radius_m)
        # The pole, when the cap holds it, and the other spelling of the centre's meridian.
        points += [(90.0, 0.0), (90.0, 180.0), (-90.0, -77.0), (lat, -lon if abs(lon) == 180.0 else lon)]
        assert assert_covers(lat, lon, angle, ranges, points) > 64


@pytest.mark.parametrize(("lat", "lon"), NAMED)
@pytest.mark.parametrize("radius_m", [1.0, 5_000.0, 50_000.0])
def test_covering_holds_s2sphere_cells(lat: float, lon: float, radius_m: float) -> None:
    # s2sphere's coverer, two levels finer than ours, finds the cells that meet the cap with
    # its own geometry; each must lie inside one of our ranges.
    angle = radius_m / EARTH_RADIUS_M
    ranges = cover(lat, lon, angle, 8)
    finer = min(30, covering_level(ranges) + 2)
    coverer = s2sphere.RegionCoverer()
    coverer.min_level = coverer.max_level = finer
    coverer.max_cells = 10_000
    centre = s2sphere.LatLng.from_degrees(lat, lon).to_point()
    cells = coverer.get_covering(s2sphere.Cap.from_axis_angle(centre, s2sphere.Angle.from_radians(angle)))
    assert len(cells) >= 1
    for cell in cells:
        lo, hi = cell.range_min().id(), cell.range_max().id()
        assert covered(ranges, lo) and covered(ranges, hi)
        assert bisect_right(ranges, (lo, 2**64)) == bisect_right(ranges, (hi, 2**64)), cell


@settings(max_examples=300)
@given(latitudes, longitudes, st.one_of(radii, st.just(0.0)), st.sampled_from([4, 8, 16, 32]))
def test_covering_is_a_few_cells_of_about_the_cap_size(lat: float, lon: float, radius_m: float, max_cells: int) -> None:
    # A covering that is always correct but useless (a face, the whole curve) would pass the
    # tests above; this bounds the area it covers: at most 64 times the cap's (at least 1 m^2).
    angle = radius_m / EARTH_RADIUS_M
    ranges = cover(lat, lon, angle, max_cells)
    assert_well_formed(ranges, max_cells)
    leaves = sum((hi - lo + 2) // 2 for lo, hi in ranges)
    covered_sr = leaves * 4 * math.pi / (6 * 4**30)  # leaves times the mean leaf area
    cap_sr = max(2 * math.pi * 2 * math.sin(angle / 2) ** 2, 1.0 / EARTH_RADIUS_M**2)
    assert covered_sr <= 64 * cap_sr


@pytest.mark.parametrize("angle_rad", [1.5, math.pi / 2, 2.0, math.pi, 10.0, math.inf, math.nan])
@pytest.mark.parametrize(("lat", "lon"), [(0.0, 0.0), (90.0, 0.0), (-16.8, 180.0)])
def test_whole_sphere(lat: float, lon: float, angle_rad: float) -> None:
    assert cover(lat, lon, angle_rad, 8) == WHOLE


def test_large_caps_below_the_whole_sphere_threshold() -> None:
    # Just under 1.5 rad (about 9,550 km) the covering is still faces or finer, and holds the
    # cap's edge all round.
    for lat, lon in [(0.0, 0.0), (90.0, 0.0), (-16.8, 180.0), (CUBE_CORNER_LAT, 45.0)]:
        angle = 1.5 - 1e-9
        ranges = cover(lat, lon, angle, 8)
        assert_well_formed(ranges, 8)
        assert assert_covers(lat, lon, angle, ranges, ring(lat, lon, angle * EARTH_RADIUS_M, 32)) > 32


def test_cap_on_a_cube_corner_spans_three_faces() -> None:
    # A small cap centred on a cube corner meets three faces at every level: the flood fill
    # must cross face edges both ways round the corner, and stay at a fine level.
    angle = 1_000.0 / EARTH_RADIUS_M
    for s in (1, -1):
        for lon in (45.0, 135.0, -45.0, -135.0):
            ranges = cover(s * CUBE_CORNER_LAT, lon, angle, 4)
            assert_well_formed(ranges, 4)
            faces = {f for lo, hi in ranges for f in range(lo >> 61, (hi >> 61) + 1)}  # may merge
            assert len(faces) == 3
            assert covering_level(ranges) >= 10
