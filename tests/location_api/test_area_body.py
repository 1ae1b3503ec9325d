"""The plain area search answered in one call (``location_api.search.area_body``,
``_carea.c``): held to the general path's answer of the same request
(tests/location_api/reference.py), across the 180th meridian, at the poles and where the
equator and the prime meridian cross."""

from __future__ import annotations

import orjson
from multidict import MultiDict
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from location_api._csearch import area_body as native_area_body
from location_api._csearch import area_search
from location_api.catalog import Catalog
from location_api.cursor import area_refinements, decode_cursor, encode_fields
from location_api.search import area_body, search_memory
from location_api.search_params import parse_area
from tests.location_api import reference
from tests.location_api.test_plain_body import CATALOG, CENTRES, KEY, MAX_RADIUS_M

_NUMBERS = st.one_of(
    st.floats(-200.0, 200.0).map(repr),
    st.integers(-200, 200).map(str),
    st.sampled_from(["", "1e", "nan", "-0", "1e-400", "180", "-180", "90", "-90", "1,2", " 1"]),
)


@st.composite
def _boxes(draw: st.DrawFn) -> str:
    """A box at or around one of the catalog's places, a few kilometres to a few hundred wide."""
    lat, lon = draw(st.sampled_from(CENTRES))
    half_lat, half_lon = draw(st.floats(0.0, 0.3)), draw(st.floats(0.0, 0.6))
    south, north = max(-90.0, lat - half_lat), min(90.0, lat + half_lat)
    west, east = lon - half_lon, lon + half_lon
    west, east = (west + 360.0 if west < -180.0 else west), (east - 360.0 if east > 180.0 else east)
    if draw(st.booleans()) and north > 89.5:
        west, east = -180.0, 180.0  # a polar cap
    return draw(st.sampled_from([",", "%2C", "%2c"])).join(repr(v) for v in (west, south, east, north))


@st.composite
def _query_strings(draw: st.DrawFn) -> str:
    """Mostly plain area searches; some with a malformed or extra parameter."""
    pairs = []
    if draw(st.integers(0, 3)):
        pairs.append(("bbox", draw(_boxes())))
        if draw(st.booleans()):
            pairs.append(("limit", str(draw(st.integers(0, 101)))))
    names = st.sampled_from(["bbox", "limit", "cursor", "sort", "latitude"])
    values = st.one_of(_NUMBERS, st.lists(_NUMBERS, min_size=3, max_size=5).map(",".join), st.just("1%2C2%2"))
    pairs += draw(st.lists(st.tuples(names, values), max_size=2 if not pairs else 1))
    draw(st.randoms()).shuffle(pairs)
    return "&".join(f"{name}={value}" for name, value in pairs)


@settings(max_examples=600, deadline=None)
@given(_query_strings())
def test_one_call_gives_the_bytes_of_the_general_path(raw: str) -> None:
    assert area_body(CATALOG, "geohash", raw, MAX_RADIUS_M, KEY) == reference.area_body(
        CATALOG, "geohash", raw, MAX_RADIUS_M, KEY
    )


@settings(max_examples=600, deadline=None)
@given(_query_strings())
def test_the_query_is_read_as_the_reference_reads_it(raw: str) -> None:
    read = area_search(raw, reference.limits(1e9))
    expected = reference.area_search(raw, 1e9)
    assert read == (None if expected is None else (*expected[0], expected[1]))


HARD = [
    "bbox=2.25,48.8,2.45,48.92",  # Paris
    "bbox=179.8,-17.0,-179.8,-16.6&limit=100",  # Fiji, across the 180th meridian
    "bbox=179.9,-16.9,180,-16.7",  # up to it from the east
    "bbox=-180,-16.9,-179.9,-16.7",  # and from the west
    "limit=5&bbox=-180,89.8,180,90",  # a cap around the North Pole
    "bbox=10,89.7,100,90&limit=50",  # reaching the pole, a quarter of the longitudes
    "bbox=-0.1,-0.1,0.1,0.1&limit=3",  # where the equator and the prime meridian cross
    "bbox=0,0,0,0",  # a point
    "bbox=2.3522,48.8566,2.3522,48.8566",
    "bbox=2.25%2C48.8%2c2.45%2C48.92",  # commas as browsers' URLSearchParams sends them
]


@pytest.mark.parametrize("strategy", ["geohash", "quadtree", "s2"])
def test_the_hard_places_in_every_strategy(strategy: str) -> None:
    found = 0
    for raw in HARD:
        body = area_body(CATALOG, strategy, raw, MAX_RADIUS_M, KEY)
        assert body is not None and body == reference.area_body(CATALOG, strategy, raw, MAX_RADIUS_M, KEY)
        assert body == area_body(CATALOG, "geohash", raw, MAX_RADIUS_M, KEY)  # strategies agree
        found += orjson.loads(body)["total"] > 0
    assert found >= 6, "most of the boxes hold businesses"


def test_the_next_page_continues_on_the_general_path() -> None:
    raw = "bbox=179.8,-17.0,-179.8,-16.6&limit=7"
    first = orjson.loads(area_body(CATALOG, "geohash", raw, MAX_RADIUS_M, KEY) or b"")
    assert first["total"] > 7 and first["next_cursor"] is not None
    sent = MultiDict(bbox="179.8,-17.0,-179.8,-16.6", limit="7", cursor=first["next_cursor"])
    query = parse_area(sent, max_radius_m=MAX_RADIUS_M)
    after = decode_cursor(KEY, query, first["next_cursor"])  # the cursor is the general path's own
    second = search_memory(CATALOG, "geohash", query, after, MAX_RADIUS_M)
    seen = [b["id"] for b in first["businesses"]] + [bid for bid, _ in second.hits]
    every = search_memory(CATALOG, "geohash", query._replace(limit=100), None, MAX_RADIUS_M)
    assert seen == [bid for bid, _ in every.hits][:14]


def test_what_is_not_a_plain_area_search_is_left_to_the_general_path() -> None:
    for raw in [
        "bbox=2.25,48.8,2.45,48.92&sort=rating",  # a sort
        "bbox=2.25,48.8,2.45,48.92&category=cafe",  # a filter
        "bbox=2.25%2C48.8%2C2.45%2C48.9%32",  # an escape other than a comma's
        "bbox=2.25%2C48.8%2C2.45%2",
        "bb%6Fx=2.25,48.8,2.45,48.92",  # a name escaped
        "bbox=2.25,48.92,2.45,48.8",  # south north of north: a problem to name
        "bbox=2.25,48.8,2.45",  # three numbers
        "bbox=2.25,48.8,2.45,48.92,1",  # five
        "bbox=-10,40,10,60",  # too large for the largest radius
        "bbox=2.25,48.8,2.45,48.92&bbox=2.25,48.8,2.45,48.92",  # twice
        "bbox=2.25,48.8,2.45,48.92&limit=0",
        "limit=20",
        "",
    ]:
        assert area_body(CATALOG, "geohash", raw, MAX_RADIUS_M, KEY) is None, raw


def test_a_catalog_of_positions_only_is_left_to_the_general_path() -> None:
    positions = Catalog(None, CATALOG.indexes)
    assert area_body(positions, "geohash", HARD[0], MAX_RADIUS_M, KEY) is None


def test_bad_arguments_are_refused() -> None:
    assert CATALOG.cards is not None
    args = [
        HARD[1],
        reference.limits(MAX_RADIUS_M),
        CATALOG.indexes["geohash"].native,
        CATALOG.cards.hits,
        KEY,
        encode_fields,
        orjson.dumps,
        area_refinements,
    ]
    assert native_area_body(*args) == reference.area_body(CATALOG, "geohash", HARD[1], MAX_RADIUS_M, KEY)
    with pytest.raises(TypeError):
        native_area_body(*args[:7])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        native_area_body(*args[:2], CATALOG.indexes["geohash"], *args[3:])  # the Python index
    with pytest.raises(ZeroDivisionError):
        native_area_body(*args[:7], lambda *_: 1 / 0)  # the refinements' error reaches the caller
    with pytest.raises(TypeError):
        native_area_body(b"bbox=1,2,3,4", *args[1:])  # type: ignore[arg-type]
