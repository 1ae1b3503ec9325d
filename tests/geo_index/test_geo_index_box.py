"""``geo_index.box_circle`` (C, ``geo_index/_box.c``): bit for bit its Python reference, and a
circle that holds every point of its box."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_index import box_circle, haversine_m, in_box
from tests.geo_index import reference

HARD_BOXES = [
    (2.25, 48.8, 2.45, 48.92),  # Paris
    (179.8, -17.0, -179.8, -16.6),  # Fiji, across the 180th meridian
    (177.0, 64.0, -172.0, 67.0),  # Chukotka, across it too
    (-180.0, 89.8, 180.0, 90.0),  # a cap around the North Pole
    (-180.0, -90.0, 180.0, -89.85),  # and the South
    (10.0, 89.9, 100.0, 90.0),  # reaching the pole, a quarter of the longitudes
    (-62.4, 82.4, -62.2, 82.6),  # Alert
    (-0.1, -0.1, 0.1, 0.1),  # where the equator and the prime meridian cross
    (-170.0, -0.05, 170.0, 0.05),  # wider than half the world
    (5.0, 10.0, 5.0, 10.0),  # a point
    (-180.0, -90.0, 180.0, 90.0),  # everything
    (180.0, 1.0, -180.0, 2.0),  # the antimeridian's two spellings: a strip of no width
]

_LAT = st.floats(-90.0, 90.0)
_LON = st.floats(-180.0, 180.0)


@st.composite
def _boxes(draw: st.DrawFn) -> tuple[float, float, float, float]:
    south, north = sorted((draw(_LAT), draw(_LAT)))
    return draw(_LON), south, draw(_LON), north


@pytest.mark.parametrize("box", HARD_BOXES)
def test_the_hard_boxes_match_the_reference_bit_for_bit(box: tuple[float, float, float, float]) -> None:
    assert box_circle(*box) == reference.box_circle(*box)


@settings(max_examples=2_000, deadline=None)
@given(_boxes())
def test_any_box_matches_the_reference_bit_for_bit(box: tuple[float, float, float, float]) -> None:
    assert box_circle(*box) == reference.box_circle(*box)


@pytest.mark.parametrize("box", HARD_BOXES)
def test_the_circle_holds_the_whole_box(box: tuple[float, float, float, float]) -> None:
    west, south, east, north = box
    lat, lon, reach = box_circle(*box)
    width = (east - west) % 360.0 if east != west else 0.0
    if west == -180.0 and east == 180.0:
        width = 360.0
    rng = random.Random(11)
    for _ in range(2_000):
        p = (rng.uniform(south, north), ((west + rng.uniform(0.0, width) + 180.0) % 360.0) - 180.0)
        assert in_box(*p, box)
        assert haversine_m(lat, lon, *p) <= reach
    corners = [haversine_m(lat, lon, s, w) for s in (south, north) for w in (west, east)]
    assert max(corners) <= reach


def test_the_centre_of_a_polar_cap_is_its_pole_and_of_fiji_the_meridian() -> None:
    assert box_circle(-180.0, 89.8, 180.0, 90.0)[:2] == (90.0, 0.0)
    assert box_circle(-180.0, -90.0, 180.0, -89.85)[:2] == (-90.0, 0.0)
    lat, lon, _ = box_circle(179.8, -17.0, -179.8, -16.6)
    assert lat == pytest.approx(-16.8) and abs(lon) == pytest.approx(180.0)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError):
        box_circle(1.0, 2.0, 3.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        box_circle("1", 2.0, 3.0, 4.0)  # type: ignore[arg-type]
