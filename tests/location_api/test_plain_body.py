"""The plain search answered in one call (``location_api.search.plain_body``, ``_cplain.c``):
held to the general path's answer of the same request (tests/location_api/reference.py)."""

from __future__ import annotations

import math
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_common.places import offset_point
from location_api._csearch import plain_body as native_plain_body
from location_api.catalog import Catalog
from location_api.filters import NO_FILTERS
from location_api.contract import DEFAULT_LIMIT, DEFAULT_RADIUS_M, MIN_RADIUS_M
from location_api.cursor import cursor_key, encode_cursor, encode_fields
from location_api.models import SearchQuery
from location_api.search import plain_body, search_memory
from tests.location_api import reference

MAX_RADIUS_M = 50_000.0
CENTRES = [(48.8566, 2.3522), (-16.8, 180.0), (89.9, 0.0), (0.0, 0.0)]
KEY = cursor_key("k" * 32)


def _rows() -> list[tuple[int, str, float, float, str, str]]:
    """Businesses around Paris, across the antimeridian in Fiji, near the pole and at (0, 0)."""
    rng = random.Random(7)
    rows: list[tuple[int, str, float, float, str, str]] = []
    for centre in CENTRES:
        for _ in range(300):
            lat, lon = offset_point(*centre, rng.uniform(0, 30_000), rng.uniform(0, 2 * math.pi))
            rows.append((len(rows) + 1, f"b{len(rows)}", lat, lon, "cafe", "somewhere"))
    return rows


ROWS = _rows()
CATALOG = Catalog.build(ROWS, max_radius_m=MAX_RADIUS_M, strategies=("geohash", "quadtree", "s2"))


def _expected(strategy: str, raw: str) -> bytes | None:
    return reference.plain_body(CATALOG, strategy, raw, MAX_RADIUS_M, KEY)


_NUMBERS = st.one_of(
    st.floats(-200.0, 200.0).map(repr),
    st.integers(-200, 60_000).map(str),
    st.sampled_from(["", "1e", "nan", "-0", "1e-400", "50000.000001", "0.0", "180", "-180", "90"]),
)


@st.composite
def _query_strings(draw: st.DrawFn) -> str:
    """Mostly plain searches at and around the catalog's businesses; some that are not."""
    pairs = []
    if draw(st.booleans()):
        lat, lon = draw(st.sampled_from(CENTRES))
        lat = max(-90.0, min(90.0, lat + draw(st.floats(-0.3, 0.3))))
        lon = lon + draw(st.floats(-0.3, 0.3))
        lon = lon - 360.0 if lon > 180.0 else lon
        pairs += [("latitude", repr(lat)), ("longitude", repr(lon))]
        if draw(st.booleans()):
            pairs.append(("radius", draw(st.sampled_from(["1", "100", "5000", "20000.5", "50000", "50001"]))))
        if draw(st.booleans()):
            pairs.append(("limit", str(draw(st.integers(0, 101)))))
    names = st.sampled_from(["latitude", "longitude", "radius", "limit", "cursor", "expand", "lat"])
    pairs += draw(st.lists(st.tuples(names, _NUMBERS), max_size=2 if not pairs else 1))
    draw(st.randoms()).shuffle(pairs)
    return "&".join(f"{name}={value}" for name, value in pairs)


@settings(max_examples=600, deadline=None)
@given(_query_strings())
def test_one_call_gives_the_bytes_of_the_general_path(raw: str) -> None:
    assert plain_body(CATALOG, "geohash", raw, MAX_RADIUS_M, KEY) == _expected("geohash", raw)


@pytest.mark.parametrize("strategy", ["quadtree", "s2"])
def test_other_strategies_answer_in_one_call_too(strategy: str) -> None:
    rng = random.Random(3)
    for _ in range(60):
        _, _, lat, lon, _, _ = ROWS[rng.randrange(len(ROWS))]
        raw = f"latitude={lat!r}&longitude={lon!r}&radius={rng.choice([100, 5000, 50000])}&limit={rng.randint(1, 100)}"
        body = plain_body(CATALOG, strategy, raw, MAX_RADIUS_M, KEY)
        assert body is not None and body == _expected(strategy, raw)
        assert body == plain_body(CATALOG, "geohash", raw, MAX_RADIUS_M, KEY)  # strategies agree
    assert plain_body(CATALOG, strategy, "latitude=1&longitude=2&expand=true", MAX_RADIUS_M, KEY) is None


def test_pages_with_and_without_a_cursor_and_the_hard_places() -> None:
    cursors = 0
    for lat, lon in CENTRES:
        for radius, limit in [(1, 20), (5000, 1), (5000, 20), (50000, 100), (50000, 7)]:
            raw = f"longitude={lon!r}&latitude={lat!r}&limit={limit}&radius={radius}"
            body = plain_body(CATALOG, "geohash", raw, MAX_RADIUS_M, KEY)
            assert body is not None and body == _expected("geohash", raw)
            cursors += orjson.loads(body)["next_cursor"] is not None
    assert 5 < cursors < 20, "pages both with and without a next page"
    # Longitude -180 is the same meridian as 180: the same page, but the query (and so its
    # cursor) as sent.
    west = plain_body(CATALOG, "geohash", "latitude=-16.8&longitude=-180&radius=50000", MAX_RADIUS_M, KEY)
    assert west == _expected("geohash", "latitude=-16.8&longitude=-180&radius=50000")
    east = plain_body(CATALOG, "geohash", "latitude=-16.8&longitude=180&radius=50000", MAX_RADIUS_M, KEY)
    assert west is not None and east is not None
    assert orjson.loads(west)["businesses"] == orjson.loads(east)["businesses"]
    assert orjson.loads(west)["next_cursor"] != orjson.loads(east)["next_cursor"]


def _native(raw: str, *, max_limit: int = 100, **changed: object) -> bytes | None:
    assert CATALOG.cards is not None
    args = {
        "limits": (MIN_RADIUS_M, MAX_RADIUS_M, DEFAULT_RADIUS_M, DEFAULT_LIMIT, max_limit),
        "index": CATALOG.indexes["geohash"].native,
        "prefixes": CATALOG.cards.hits,
        "key": KEY,
        "encode_cursor": encode_fields,
        "dumps": orjson.dumps,
    }
    args.update(changed)
    return native_plain_body(raw, *args.values())  # type: ignore[arg-type]


def test_pages_longer_than_one_batch_of_floats() -> None:
    # Up to 128 hits the floats are written by one dumps call; a longer page value by value.
    for limit in (128, 129, 300):
        body = _native(f"latitude=48.8566&longitude=2.3522&radius=50000&limit={limit}", max_limit=300)
        query = SearchQuery(48.8566, 2.3522, 50_000.0, limit, NO_FILTERS, False, None, None)
        page = search_memory(CATALOG, "geohash", query, None, MAX_RADIUS_M)
        nxt = None if page.next_position is None else encode_cursor(KEY, query, page.next_position)
        assert body == reference.search_body(page.total, page.radius_m, page.hits, page.prefixes, nxt)
        assert body is not None and len(orjson.loads(body)["businesses"]) == limit


def test_the_compiled_index_follows_the_index_as_it_changes() -> None:
    catalog = Catalog.build(ROWS, max_radius_m=MAX_RADIUS_M, strategies=("geohash",))
    index = catalog.indexes["geohash"]
    compiled = index.native
    rng = random.Random(5)
    for bid in rng.sample(range(1, len(ROWS) + 1), 200):
        index.remove(bid)
    for bid in range(len(ROWS) + 1, len(ROWS) + 101):
        index.insert(bid, 48.85 + rng.uniform(-0.1, 0.1), 2.35 + rng.uniform(-0.1, 0.1))
    for lat, lon in CENTRES:
        for radius in (1000.0, 20_000.0, 50_000.0):
            assert compiled.page(lat, lon, radius, 20) == tuple(index.page(lat, lon, radius, 20))


def test_bad_arguments_are_refused() -> None:
    plain = "latitude=48.8566&longitude=2.3522&radius=50000"  # a page with a next one: a cursor is made
    assert _native(plain) == _expected("geohash", plain) and b'"next_cursor":null' not in (_native(plain) or b"")
    with pytest.raises(TypeError):
        native_plain_body(plain)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _native(b"latitude=1&longitude=2")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _native(plain, index=[])
    with pytest.raises(TypeError):
        _native(plain, index=CATALOG.indexes["geohash"])  # the Python index, not its compiled part
    with pytest.raises(TypeError):
        _native(plain, key="text")
    with pytest.raises(ValueError, match="64 bytes"):
        _native(plain, key=b"k" * 65)  # hashlib's limit for a BLAKE2b key
    with pytest.raises(TypeError):
        _native(plain, limits=(MIN_RADIUS_M, MAX_RADIUS_M))
    with pytest.raises(ZeroDivisionError):
        _native(plain, encode_cursor=lambda *_: 1 / 0)  # the cursor's error reaches the caller
    with pytest.raises(TypeError):
        _native(plain, encode_cursor=None)
    with pytest.raises(TypeError):
        _native(plain, prefixes=tuple(CATALOG.cards.hits))
    with pytest.raises(KeyError):
        _native(plain, prefixes={})  # the page's businesses have no prefix there
    # Not a plain search: nothing else is looked at.
    assert _native("latitude=48.85&longitude=2.35&expand=true", index=None) is None
