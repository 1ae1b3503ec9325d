"""haversine_m against fixed known values, and the pruning bounds against haversine_m."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_common.places import offset_point
from geo_index import EARTH_RADIUS_M, HALF_CIRCUMFERENCE_M, haversine_m
from geo_index._scan import chord_upper_bound, unit_vector
from geo_index.distance import cap_bounds, distance_from_a, point_terms, rect_lower_bound_m
from tests.geo_index.strategies import latitudes, longitudes, radii


def test_earth_radius_is_the_iugg_mean() -> None:
    assert EARTH_RADIUS_M == 6_371_008.8


def test_one_degree_along_the_equator() -> None:
    # R * pi / 180 with R = 6,371,008.8 m
    assert haversine_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(111_195.08, abs=0.01)
    assert haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(111_195.08, abs=0.01)


def test_pole_to_pole_and_antipodes_are_half_the_circumference() -> None:
    assert HALF_CIRCUMFERENCE_M == pytest.approx(20_015_114.44, abs=0.01)
    assert haversine_m(90.0, 0.0, -90.0, 0.0) == pytest.approx(HALF_CIRCUMFERENCE_M, abs=1e-6)
    assert haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(HALF_CIRCUMFERENCE_M, abs=1e-6)
    assert haversine_m(45.0, 10.0, -45.0, -170.0) == pytest.approx(HALF_CIRCUMFERENCE_M, abs=1e-3)


def test_equator_to_pole_is_a_quarter() -> None:
    assert haversine_m(0.0, 0.0, 90.0, 0.0) == pytest.approx(HALF_CIRCUMFERENCE_M / 2, abs=1e-6)
    # every meridian meets at the pole
    assert haversine_m(90.0, 0.0, 90.0, 123.0) == pytest.approx(0.0, abs=1e-9)


def test_nashville_to_los_angeles() -> None:
    # The classic haversine example (BNA -> LAX) is 2887.26 km on a 6372.8 km sphere;
    # scaled to our sphere: 2887.2599506 * 6371.0088 / 6372.8 km.
    expected_m = 2_887_259.9506 * 6_371_008.8 / 6_372_800.0
    assert haversine_m(36.12, -86.67, 33.94, -118.40) == pytest.approx(expected_m, abs=1.0)


def test_same_point_is_zero() -> None:
    assert haversine_m(12.5, -7.25, 12.5, -7.25) == 0.0
    assert haversine_m(0.0, 0.0, -0.0, -0.0) == 0.0


def test_antimeridian_spellings_are_bit_identical() -> None:
    for lat, other_lat, other_lon in [(10.0, 10.0, 179.0), (-18.14, -18.0, -179.9), (89.0, 88.0, 0.0)]:
        a = haversine_m(lat, 180.0, other_lat, other_lon)
        b = haversine_m(lat, -180.0, other_lat, other_lon)
        assert a == b
    assert haversine_m(0.0, 180.0, 0.0, -180.0) == 0.0
    assert haversine_m(0.0, 179.5, 0.0, -179.5) == pytest.approx(111_195.08, abs=0.01)


@settings(max_examples=300, deadline=None)
@given(latitudes, longitudes, latitudes, longitudes)
def test_symmetric_and_bounded(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    d = haversine_m(lat1, lon1, lat2, lon2)
    assert 0.0 <= d <= HALF_CIRCUMFERENCE_M
    assert d == haversine_m(lat2, lon2, lat1, lon1)


@settings(max_examples=300, deadline=None)
@given(latitudes, longitudes, latitudes, longitudes)
def test_precomputed_terms_reproduce_haversine_bit_for_bit(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    q = point_terms(lat1, lon1)
    p = point_terms(lat2, lon2)
    s1 = math.sin((p.phi - q.phi) * 0.5)
    s2 = math.sin((p.lam - q.lam) * 0.5)
    a = s1 * s1 + q.cos_phi * p.cos_phi * s2 * s2
    assert distance_from_a(a) == haversine_m(lat1, lon1, lat2, lon2)


@settings(max_examples=400, deadline=None)
@given(latitudes, longitudes, radii, st.floats(0.0, 1.0), st.floats(0.0, 2 * math.pi))
def test_cap_bounds_and_chord_contain_every_point_within_the_radius(
    lat: float, lon: float, radius: float, frac: float, bearing: float
) -> None:
    plat, plon = offset_point(lat, lon, radius * frac, bearing)
    plat = max(-90.0, min(90.0, plat))
    if haversine_m(lat, lon, plat, plon) > radius:
        return
    box = cap_bounds(lat, lon, radius)
    assert box.lat_lo <= plat <= box.lat_hi
    assert any(lo <= plon <= hi for lo, hi in box.lon_ranges) or (
        abs(plon) == 180.0 and any(lo <= -plon <= hi for lo, hi in box.lon_ranges)
    )
    chord = math.dist(unit_vector(point_terms(lat, lon)), unit_vector(point_terms(plat, plon)))
    assert chord <= chord_upper_bound(radius)


def test_cap_bounds_shapes() -> None:
    assert cap_bounds(90.0, 0.0, 1_000.0).full_lon
    assert cap_bounds(-89.995, 0.0, 1_000.0).full_lon
    assert cap_bounds(10.0, 0.0, math.inf).full_lon
    box = cap_bounds(0.0, 179.99, 5_000.0)
    assert len(box.lon_ranges) == 2
    assert box.lon_ranges[0][0] == -180.0 and box.lon_ranges[1][1] == 180.0
    assert cap_bounds(0.0, 180.0, 5_000.0) == cap_bounds(0.0, -180.0, 5_000.0)
    single = cap_bounds(45.0, 7.0, 5_000.0)
    assert len(single.lon_ranges) == 1
    # at 45 degrees a 5 km circle is about 0.045 deg tall and 0.064 deg wide (half sizes)
    assert single.lat_hi - 45.0 == pytest.approx(5_000.0 / EARTH_RADIUS_M * 180 / math.pi, rel=1e-6)
    assert single.lon_ranges[0][1] - 7.0 == pytest.approx(0.0636, abs=1e-3)


@settings(max_examples=400, deadline=None)
@given(
    latitudes,
    longitudes,
    st.floats(-90.0, 90.0),
    st.floats(0.0, 30.0),
    st.floats(-180.0, 180.0),
    st.floats(0.0, 60.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
)
def test_rect_lower_bound_never_exceeds_a_distance_into_the_rectangle(
    lat: float, lon: float, lat0: float, height: float, lon0: float, width: float, u: float, v: float
) -> None:
    lat1 = min(90.0, lat0 + height)
    lon1 = min(180.0, lon0 + width)
    plat = lat0 + (lat1 - lat0) * u
    plon = lon0 + (lon1 - lon0) * v
    bound = rect_lower_bound_m(lat, lon, lat0, lat1, lon0, lon1)
    assert bound <= haversine_m(lat, lon, plat, plon)
    for clat, clon in [(lat0, lon0), (lat0, lon1), (lat1, lon0), (lat1, lon1)]:
        assert bound <= haversine_m(lat, lon, clat, clon)


def test_rect_lower_bound_is_tight_in_simple_cases() -> None:
    # due south of a rectangle: the latitude gap
    assert rect_lower_bound_m(0.0, 5.0, 1.0, 2.0, 0.0, 10.0) == pytest.approx(111_195.08, abs=0.01)
    # inside
    assert rect_lower_bound_m(1.5, 5.0, 1.0, 2.0, 0.0, 10.0) == 0.0
    # east of it on the equator: one degree of longitude
    assert rect_lower_bound_m(0.0, 11.0, -1.0, 1.0, 0.0, 10.0) == pytest.approx(111_195.08, abs=0.01)
    # across the antimeridian: lon 179.5 to a rectangle starting at -180 is half a degree
    assert rect_lower_bound_m(0.0, 179.5, -1.0, 1.0, -180.0, -170.0) == pytest.approx(55_597.54, abs=0.01)
    # the rectangle touching the north pole is as far as the pole
    assert rect_lower_bound_m(80.0, 0.0, 89.0, 90.0, 100.0, 110.0) == pytest.approx(
        haversine_m(80.0, 0.0, 90.0, 0.0), abs=0.01
    )
