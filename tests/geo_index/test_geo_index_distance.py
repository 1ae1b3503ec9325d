"""haversine_m against fixed known values, and the query bounding box (cap_bounds, which the
planners in geo_index/_plan.c mirror) against haversine_m."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_common.places import offset_point
from geo_index import EARTH_RADIUS_M, HALF_CIRCUMFERENCE_M, haversine_m
from geo_index.distance import cap_bounds, padded_angle_rad
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


@settings(max_examples=400, deadline=None)
@given(
    latitudes,
    longitudes,
    radii,
    st.one_of(st.floats(0.0, 1.0), st.sampled_from([1.0, 1.0 - 1e-9, 1.0 + 1e-12])),
    st.floats(0.0, 2 * math.pi),
)
def test_cap_bounds_contain_every_point_within_the_radius(
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


@settings(max_examples=300, deadline=None)
@given(st.one_of(radii, st.floats(0.0, 3e7)))
def test_the_padded_angle_exceeds_the_radius_by_a_hair(radius: float) -> None:
    angle = padded_angle_rad(radius)
    assert angle > radius / EARTH_RADIUS_M
    assert angle * EARTH_RADIUS_M <= radius * (1.0 + 2e-9) + 2e-3
