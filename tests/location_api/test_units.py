"""The API's pure pieces against fixed values and brute force: cells, cursors, parsing, demo data, request metrics,
the assembled search body and the catalog's cards."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import re
import struct
import warnings
from typing import Any

import geohash
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from prometheus_client.parser import text_string_to_metric_families

from geo_common.database_node import format_lsn, lsn_from_text
from geo_common.places import Place, offset_point
from geo_index import haversine_m
from location_api._csearch import plain_search as compiled_plain_search
from location_api._csearch import search_body as compiled_search_body
from location_api.cards import CardTable, card_for
from location_api.area import Box
from location_api.filters import NO_FILTERS, SearchFilters, facets_of
from location_api.catalog import Catalog
from location_api.cells import LEVELS, cell_of, cells_containing, cover, geohash12, text_ranges
from location_api.cursor import (
    CursorPosition,
    cursor_key,
    decode_cursor,
    encode_cursor,
    encode_fields,
    query_fingerprint,
)
from location_api.demo import CATEGORIES, address_for, category_for, synthetic_records
from location_api.demo_details import ALSO, PATTERNS, PRICES, demo_details
from location_api.errors import InvalidCursor, InvalidRequest
from location_api.metrics import Metrics
from location_api.models import Business, SearchQuery
from location_api.render import business_from_prefix, hit_prefix, search_body
from location_api.search import plain_body, search_memory
from location_api.search_params import parse_search
from tests.location_api import reference
from yarl import URL

# ----------------------------------------------------------------------------- cells


def test_geohash12_is_python_geohash_and_files_the_pole_in_the_top_row() -> None:
    assert geohash12(57.64911, 10.40744) == geohash.encode(57.64911, 10.40744, 12) == "u4pruydqqvj8"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # python-geohash warns at latitude 90; geohash12 must not
        assert geohash12(90.0, 0.0) == geohash.encode(math.nextafter(90.0, 0.0), 0.0, 12)
    assert geohash12(0.0, 180.0) == geohash12(0.0, -180.0)
    # python-geohash misplaces magnitudes below ~1e-16 degrees; geohash12 keeps them in their cell.
    assert geohash12(-1e-20, 0.0) == geohash12(-1e-9, 0.0) != geohash12(0.0, 0.0)
    assert geohash12(2e-21, -1e-40) == geohash12(1e-9, -1e-9)


def test_text_ranges_of_whole_and_partial_characters() -> None:
    # 25 bits = 5 characters: one cell is one prefix.
    assert text_ranges(cover(48.85, 2.35, 1.0).cells)[0][0].startswith("u09t")
    cell = cell_of("u4pruydqqvj8", 25)
    assert text_ranges((cell,)) == [("u4pru", "u4prv")]
    # 13 bits = 2 characters and 3 bits: 4 consecutive third characters.
    cell = cell_of("u4pruydqqvj8", 13)
    assert text_ranges((cell,)) == [("u4n", "u4s")]  # p = 10101: third characters 10100..10111
    assert "u4n" <= "u4pruydqqvj8" < "u4s"
    # The last cell of the world has no upper bound within the alphabet.
    assert text_ranges((cell_of("zzzzzzzzzzzz", 13),)) == [("zzw", "{")]


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    radius=st.floats(1.0, 50_000.0),
    distance=st.floats(0.0, 1.0),
    bearing=st.floats(0.0, 2 * math.pi),
)
def test_every_point_within_the_radius_is_in_a_covering_range(
    lat: float, lon: float, radius: float, distance: float, bearing: float
) -> None:
    plat, plon = offset_point(lat, lon, distance * radius, bearing)
    if haversine_m(lat, lon, plat, plon) > radius:
        return
    ranges = text_ranges(cover(lat, lon, radius).cells)
    stored = geohash12(plat, plon)
    assert any(lo <= stored < hi for lo, hi in ranges)


def test_cells_containing_a_position_match_the_cover_cells() -> None:
    rng = random.Random(7)
    for _ in range(500):
        lat, lon = rng.uniform(-90, 90), rng.uniform(-180, 180)
        stored = geohash12(lat, lon)
        containing = cells_containing(stored)
        assert [c.bits for c in containing] == list(LEVELS)
        for radius in (10.0, 5_000.0, 50_000.0):
            cells = cover(lat, lon, radius).cells
            assert any(c in cells for c in containing), "a search at the point covers its own cell"


# ----------------------------------------------------------------------------- cursors

QUERY = SearchQuery(48.85, 2.35, 5000.0, 20, NO_FILTERS, False, None, None)


def test_cursor_round_trip_keeps_exact_floats() -> None:
    key = cursor_key("k" * 32)
    position = CursorPosition(5000.0, 1234.567890123456789, 42)
    token = encode_cursor(key, QUERY, position)
    assert decode_cursor(key, QUERY, token) == position
    # Page size and strategy are not part of the query's identity.
    other_page = SearchQuery(48.85, 2.35, 5000.0, 50, NO_FILTERS, False, None, "sql")
    assert decode_cursor(key, other_page, token) == position


@pytest.mark.parametrize(
    "other",
    [
        SearchQuery(48.85, 2.36, 5000.0, 20, NO_FILTERS, False, None, None),
        SearchQuery(48.85, 2.35, 5001.0, 20, NO_FILTERS, False, None, None),
        SearchQuery(48.85, 2.35, 5000.0, 20, SearchFilters(categories=frozenset({"cafe"})), False, None, None),
        SearchQuery(48.85, 2.35, 5000.0, 20, NO_FILTERS, True, None, None),
        SearchQuery(48.85, 2.35, 5000.0, 20, SearchFilters(categories=frozenset({"bar"})), False, None, None),
        SearchQuery(48.85, 2.35, 5000.0, 20, SearchFilters(price_levels=frozenset({1})), False, None, None),
        SearchQuery(48.85, 2.35, 5000.0, 20, SearchFilters(min_rating=4.0), False, None, None),
        SearchQuery(48.85, 2.35, 5000.0, 20, SearchFilters(open_now=True), False, None, None),
        SearchQuery(48.85, 2.35, 5000.0, 20, SearchFilters(q=("cafe",)), False, None, None),
        SearchQuery(48.85, 2.35, 5000.0, 20, NO_FILTERS, False, None, None, "rating"),
        SearchQuery(48.85, 2.35, 5000.0, 20, NO_FILTERS, False, None, None, box=Box(2.3, 48.8, 2.4, 48.9)),
    ],
)
def test_cursor_of_another_query_is_refused(other: SearchQuery) -> None:
    key = cursor_key("k" * 32)
    token = encode_cursor(key, QUERY, CursorPosition(5000.0, 1.0, 1))
    with pytest.raises(InvalidCursor, match="different query"):
        decode_cursor(key, other, token)


def test_forged_or_foreign_cursors_are_refused() -> None:
    key = cursor_key("k" * 32)
    token = encode_cursor(key, QUERY, CursorPosition(5000.0, 1.0, 1))
    for bad in ["", "x", "====", token[:-1], token + "A", token.upper(), "!" * 20]:
        with pytest.raises(InvalidCursor):
            decode_cursor(key, QUERY, bad)
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor_key("z" * 32), QUERY, token)  # signed under another secret


def test_a_cursor_is_87_url_safe_characters_and_ids_keep_64_bits() -> None:
    key = cursor_key("k" * 32)
    for business_id in (1, 2**63 - 1):
        token = encode_cursor(key, QUERY, CursorPosition(50_000.0, 0.0, business_id))
        assert len(token) == 87 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
        assert decode_cursor(key, QUERY, token).business_id == business_id


@pytest.mark.parametrize(
    ("version", "radius", "distance"),
    [(2, 5000.0, 1.0), (4, 5000.0, 1.0), (3, math.nan, 1.0), (3, 5000.0, math.inf)],
)
def test_a_signed_cursor_of_another_version_or_with_non_finite_numbers_is_refused(
    version: int, radius: float, distance: float
) -> None:
    # Signed with the right key, as a cursor of another release of the API would be.
    key = cursor_key("k" * 32)
    payload = struct.pack("<B8sddddq", version, query_fingerprint(QUERY), radius, 0.0, 0.0, distance, 7)
    token = base64.urlsafe_b64encode(payload + hashlib.blake2b(payload, key=key, digest_size=16).digest()).decode()
    assert decode_cursor(key, QUERY, encode_cursor(key, QUERY, CursorPosition(5000.0, 1.0, 7))).business_id == 7
    with pytest.raises(InvalidCursor, match="before an upgrade: search again without it"):
        decode_cursor(key, QUERY, token.rstrip("="))


@settings(max_examples=300, deadline=None)
@given(
    key=st.binary(max_size=64),
    latitude=st.floats(-90.0, 90.0),
    longitude=st.floats(-180.0, 180.0),
    query_radius=st.floats(1.0, 50_000.0),
    expand=st.booleans(),
    # A filter of none, one and many categories (long enough in UTF-8 for the fingerprint to
    # span several blocks)
    category=st.one_of(st.none(), st.text(max_size=3), st.text(min_size=60, max_size=200)),
    radius=st.floats(allow_nan=True, allow_infinity=True),
    distance=st.floats(allow_nan=True, allow_infinity=True),
    business_id=st.integers(0, 2**63 - 1),
)
def test_a_cursor_from_fields_is_the_cursor_of_the_query_and_decodes_back(
    key: bytes,
    latitude: float,
    longitude: float,
    query_radius: float,
    expand: bool,
    category: str | None,
    radius: float,
    distance: float,
    business_id: int,
) -> None:
    # What the compiled plain search calls (encode_fields) and what the general path calls
    # (encode_cursor) make one cursor; it is signed with hashlib's keyed BLAKE2b.
    filters = NO_FILTERS if category is None else SearchFilters(categories=frozenset({category}))
    query = SearchQuery(latitude, longitude, query_radius, 20, filters, expand, None, None)
    position = CursorPosition(radius, distance, business_id)
    token = encode_cursor(key, query, position)
    refinements = None if category is None else b"distance\x00\x00" + filters.fingerprint()
    assert (
        encode_fields(key, latitude, longitude, query_radius, expand, refinements, radius, distance, business_id)
        == token
    )
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert raw[-16:] == hashlib.blake2b(raw[:-16], key=key, digest_size=16).digest()
    if math.isfinite(radius) and math.isfinite(distance):
        assert repr(decode_cursor(key, query, token)) == repr(position)
    else:
        with pytest.raises(InvalidCursor):
            decode_cursor(key, query, token)


def test_cursors_are_signed_under_each_key_they_are_given() -> None:
    first, second = cursor_key("a" * 32), cursor_key("b" * 32)
    position = CursorPosition(5000.0, 1.0, 7)
    tokens = [encode_cursor(k, QUERY, position) for k in (first, second, first, b"", second)]
    assert tokens[0] == tokens[2] != tokens[1] == tokens[4] != tokens[3]
    assert decode_cursor(second, QUERY, tokens[1]) == position
    with pytest.raises(InvalidCursor):
        decode_cursor(first, QUERY, tokens[1])


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("raw", ["1", "-1", "+1", "1.", ".5", "1e1", "1E-1", "-0", "45.000001"])
def test_decimal_numbers_are_accepted(raw: str) -> None:
    query = parse_search(MultiDict(latitude=raw, longitude="0"), max_radius_m=50_000.0)
    assert query.latitude == float(raw)


@pytest.mark.parametrize(
    "raw", ["nan", "inf", "-inf", "Infinity", "1e999", "0x1", "1_0", " 1", "1 ", "", ".", "e5", "１"]
)
def test_other_spellings_are_refused_naming_the_field(raw: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_search(MultiDict(latitude=raw, longitude="0"), max_radius_m=50_000.0)
    assert [e.field for e in info.value.errors] == ["latitude"]


def _decoded(raw: str) -> MultiDict[str]:
    """The query mapping aiohttp gives a handler for this raw query string."""
    return MultiDict(URL.build(path="/v1/search/nearby", query_string=raw, encoded=True).query)


def _full_parse(raw: str) -> SearchQuery | str:
    try:
        return parse_search(_decoded(raw), max_radius_m=50_000.0)
    except InvalidRequest as exc:
        return f"400 {sorted(e.field for e in exc.errors)}"


_PAIR_NAMES = st.sampled_from(["latitude", "longitude", "radius", "limit", "cursor", "index", "lat", "", "Latitude"])
_PAIR_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-200, 200_000).map(str),
    st.text(alphabet="0123456789.-+eE%2B&=;_ x", max_size=8),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_PAIR_NAMES, st.sampled_from(["=", "", "=="]), _PAIR_VALUES), max_size=6))
def test_plain_query_string_parse_is_parse_search_on_the_decoded_query(pairs: list[tuple[str, str, str]]) -> None:
    raw = "&".join(name + eq + value for name, eq, value in pairs)
    fast = _compiled_read(raw)
    if fast is not None:
        assert fast == _full_parse(raw)


def _compiled_read(raw: str, max_radius_m: float = 50_000.0) -> SearchQuery | None:
    """The compiled reader's result as the general path's :class:`SearchQuery`."""
    plain = compiled_plain_search(raw, reference.limits(max_radius_m))
    return None if plain is None else SearchQuery(*plain, NO_FILTERS, False, None, None)


def _same_parse(raw: str, max_radius_m: float = 50_000.0) -> None:
    """The compiled reader and the Python reference agree, value for value (sign of zero included)."""
    native = compiled_plain_search(raw, reference.limits(max_radius_m))
    python = reference.plain_search(raw, max_radius_m)
    assert repr(None if native is None else SearchQuery(*native, NO_FILTERS, False, None, None)) == repr(python)
    if native is not None and python is not None:
        assert [type(v) for v in native] == [type(v) for v in python[:4]]


@settings(max_examples=1500, deadline=None)
@given(
    st.lists(st.tuples(_PAIR_NAMES, st.sampled_from(["=", "", "=="]), _PAIR_VALUES), max_size=5),
    st.sampled_from([1.0, 5_000.0, 50_000.0]),
)
def test_compiled_and_python_query_string_readers_agree(pairs: list[tuple[str, str, str]], max_radius_m: float) -> None:
    _same_parse("&".join(name + eq + value for name, eq, value in pairs), max_radius_m)


@settings(max_examples=800, deadline=None)
@given(st.text(alphabet="latitudeongrcmx=&0123456789.-+eE%_ \x00é１", max_size=60))
def test_compiled_and_python_readers_agree_on_any_text(raw: str) -> None:
    _same_parse(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "latitude=48.85&longitude=2.35",
        "latitude=-0&longitude=-0.0",
        "latitude=-0.&longitude=.0e0",
        "latitude=90&longitude=180&radius=50000&limit=100",
        "latitude=90.0000000000000000001&longitude=0",
        "latitude=1e-400&longitude=-1e-400",
        "latitude=1e999&longitude=0",
        "latitude=" + "1" * 80 + "e-79&longitude=0",
        "latitude=1&longitude=2&radius=1e0&limit=010",
        "latitude=1&longitude=2&limit=0",
        "latitude=1&longitude=2&limit=",
        "latitude=1&longitude=2&radius=",
        "latitude=1E+1&longitude=2e-1",
        "latitude=1e&longitude=2",
        "latitude=.&longitude=2",
        "latitude=1..2&longitude=2",
        "latitude=1&longitude=2&radius=50000.000001",
        "latitude=1&latitude=1",
        "latitude=é&longitude=2",
        "lat\u00e9=1&longitude=2",
        "latitude=1&longitude=2\x00",
    ],
)
def test_compiled_and_python_readers_agree_on_edges(raw: str) -> None:
    _same_parse(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "latitude=48.85&longitude=2.35",
        "longitude=-180&latitude=-90&radius=1&limit=100",
        "latitude=1e1&longitude=.5&radius=50000.0&limit=001",
    ],
)
def test_plain_query_strings_are_read_without_decoding(raw: str) -> None:
    fast = _compiled_read(raw)
    assert fast is not None and fast == _full_parse(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "latitude=48.85",
        "latitude=48.85&longitude=2.35&",
        "latitude=48.85&&longitude=2.35",
        "latitude=4%38&longitude=2",
        "latitude=+48&longitude=2",
        "latitude=48 &longitude=2",
        "latitude=1&longitude=2&latitude=1",
        "latitude=1&longitude=2&expand=true",
        "latitude=91&longitude=0",
        "latitude=1&longitude=2&radius=0",
        "latitude=1&longitude=2&limit=101",
        "latitude=1&longitude=2&limit=1.0",
        "latitude=1&longitude",
        "latitude==1&longitude=2",
        "latitude=1;longitude=2",
        "latitude=nan&longitude=0",
    ],
)
def test_other_query_strings_are_left_to_the_full_parse(raw: str) -> None:
    assert _compiled_read(raw) is None


def test_lsn_text_round_trip() -> None:
    for text in ("0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF"):
        assert format_lsn(lsn_from_text(text)) == text


# ----------------------------------------------------------------------------- demo data


def test_category_is_a_stable_hash_of_the_name() -> None:
    # Fixed values: the same on every machine and in every process (no PYTHONHASHSEED).
    assert category_for("Paris") == "bakery"
    assert category_for("Longyearbyen") == category_for("Longyearbyen")
    assert {category_for(f"Place {i}") for i in range(1000)} == set(CATEGORIES)


def test_address_skips_blank_parts() -> None:
    assert address_for(Place(0, 0, "x", "Ile-de-France", "Paris", "FR")) == "Paris, Ile-de-France, FR"
    assert address_for(Place(0, 0, "x", "Svalbard", "", "SJ")) == "Svalbard, SJ"
    assert address_for(Place(0, 0, "x", " ", "", "")) == ""


def test_every_demo_category_has_details_spread_over_its_patterns_and_prices() -> None:
    assert set(PATTERNS) == set(CATEGORIES) == set(PRICES)
    for category, patterns in PATTERNS.items():
        chosen = [demo_details(f"place {i}", category) for i in range(300)]
        assert len({hours for hours, *_ in chosen}) == len(patterns), category  # every pattern, and only those
        lo, hi = PRICES[category]
        assert {price for _, price, *_ in chosen} == set(range(lo, hi + 1)), category
        assert all(2.5 <= rating <= 5.0 and 1 <= reviews <= 1000 for _, _, rating, reviews, _ in chosen)
        assert len({round(rating, 1) for _, _, rating, *_ in chosen}) > 20  # spread, not one value
        also = {tuple(more) for *_, more in chosen}
        assert also == ({(ALSO[category],), ()} if category in ALSO else {()}), category
    always = [["00:00", "24:00"]]
    week = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    hours = demo_details("Oslo", "hotel")[0] or ""
    assert orjson.loads(hours) == {"weekly": dict.fromkeys(week, always), "exceptions": []}


def test_synthetic_businesses_are_deterministic_and_near_their_place() -> None:
    places = [Place(78.2232, 15.6267, "Longyearbyen", "Svalbard", "", "SJ")]
    first = list(synthetic_records(places, 50, seed=3))
    assert first == list(synthetic_records(places, 50, seed=3))
    for name, lat, lon, category, address, stored, *details in first:
        assert name.startswith("Longyearbyen #") and category == category_for(name) and address == "Svalbard, SJ"
        assert tuple(details) == demo_details(name, category) and details[0] is not None
        assert haversine_m(78.2232, 15.6267, lat, lon) <= 50_000.0 + 1e-6
        assert stored == geohash12(lat, lon)


# ----------------------------------------------------------------------------- request metrics


def test_request_metrics_render_as_prometheus_counters_and_cumulative_histograms() -> None:
    metrics = Metrics()
    for status, seconds in [(200, 0.0004), (200, 0.0005), (200, 0.003), (400, 0.0002), (200, 7.0)]:
        metrics.observe("/v1/search/nearby", "GET", status, seconds)
    metrics.observe("/v1/businesses/{id}", "GET", 404, 0.02)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }

    def sample(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    search = {"route": "/v1/search/nearby", "method": "GET"}
    assert sample("geo_api_requests_total", status="200", **search) == 4
    assert sample("geo_api_requests_total", status="400", **search) == 1
    assert sample("geo_api_requests_total", route="/v1/businesses/{id}", method="GET", status="404") == 1
    # "le" is inclusive: 0.0005 falls in the 0.0005 bucket; buckets are cumulative.
    assert sample("geo_api_request_duration_seconds_bucket", le="0.0005", **search) == 3
    assert sample("geo_api_request_duration_seconds_bucket", le="0.001", **search) == 3
    assert sample("geo_api_request_duration_seconds_bucket", le="0.005", **search) == 4
    assert sample("geo_api_request_duration_seconds_bucket", le="5.0", **search) == 4
    assert sample("geo_api_request_duration_seconds_bucket", le="+Inf", **search) == 5
    assert sample("geo_api_request_duration_seconds_count", **search) == 5
    assert sample("geo_api_request_duration_seconds_sum", **search) == pytest.approx(7.0041)


# ----------------------------------------------------------------------------- rendering

_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_businesses = st.builds(
    Business,
    id=st.integers(1, 2**63 - 1),
    name=_texts,
    latitude=st.floats(-90.0, 90.0),
    longitude=st.floats(-180.0, 180.0),
    category=_texts,
    address=_texts,
)


# Distances as the index makes them, and every float besides (tiny, huge, -0.0, non-finite).
_distances = st.one_of(
    st.floats(0.0, 50_000.0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 5e-324, 1e-7]),
)


@settings(max_examples=300, deadline=None)
@given(
    page=st.lists(st.tuples(_businesses, _distances), max_size=6),
    total=st.one_of(st.integers(0, 10**6), st.integers(0, 2**63 - 1), st.integers(-(2**63), -1)),
    radius=st.one_of(st.floats(1.0, 50_000.0), _distances),
    cursor=st.one_of(
        st.none(), st.text("ABCxyz-_019", min_size=1, max_size=30), st.text('Az9-_"\\/\n\u00e9=+', max_size=8), _texts
    ),
    as_dict=st.booleans(),
)
def test_the_assembled_search_body_is_byte_for_byte_what_orjson_makes_of_the_dicts(
    page: list[tuple[Business, float]], total: int, radius: float, cursor: str | None, as_dict: bool
) -> None:
    # Names with quotes, backslashes, control characters and any Unicode; floats such as
    # 5e-324 and -0.0 that have more than one spelling elsewhere; cursors that need escaping.
    want = orjson.dumps(
        {
            "total": total,
            "radius_m": radius,
            "businesses": [b.to_hit_json(d) for b, d in page],
            "next_cursor": cursor,
        }
    )
    # Ids 2, 4, 6...: a list of prefixes indexed by id has holes, as the catalog's does.
    hits = [(2 * i + 2, d) for i, (_, d) in enumerate(page)]
    prefixes: list[bytes | None] | dict[int, bytes] = {2 * i + 2: hit_prefix(b) for i, (b, _) in enumerate(page)}
    if not as_dict:
        prefixes = [prefixes.get(i) for i in range(2 * len(page) + 3)]  # type: ignore[union-attr]
    assert search_body(total, radius, hits, prefixes, cursor) == want
    assert reference.search_body(total, radius, hits, prefixes, cursor) == want
    if all(math.isfinite(d) for _, d in page):
        assert orjson.loads(want)["businesses"] == [b.to_hit_json(d) for b, d in page]


@pytest.mark.parametrize("assemble", [search_body, reference.search_body], ids=["compiled", "reference"])
def test_a_hit_without_a_prefix_is_a_key_error_in_both_assemblies(assemble: Any) -> None:
    prefix = hit_prefix(Business(1, "a", 0.0, 0.0, "cafe", ""))
    for prefixes in ([None, prefix], {1: prefix}):
        assert assemble(1, 5.0, [(1, 2.5)], prefixes, None).startswith(b'{"total":1')
        for missing in (0, 2, 99, -1):
            with pytest.raises(KeyError):
                assemble(1, 5.0, [(1, 2.5), (missing, 3.0)], prefixes, None)


def test_the_compiled_assembly_refuses_malformed_arguments() -> None:
    native = compiled_search_body
    prefix = hit_prefix(Business(1, "a", 0.0, 0.0, "cafe", ""))
    with pytest.raises(TypeError):
        native(1, 5.0, ((1, 2.5),), [None, prefix], None, orjson.dumps)  # hits not a list
    with pytest.raises(TypeError):
        native(1, 5.0, [(1, 2.5, 0)], [None, prefix], None, orjson.dumps)  # not a pair
    with pytest.raises(TypeError):
        native(1, 5.0, [(1, 2.5)], (None, prefix), None, orjson.dumps)  # prefixes a tuple
    with pytest.raises(TypeError):
        native(1, 5.0, [(1, 2.5)], [None, "text"], None, orjson.dumps)  # a prefix not bytes
    with pytest.raises(TypeError):
        native(1, 5.0, [(1, 2.5)], [None, prefix], None)  # no dumps


def test_pages_past_one_call_of_dumps_and_values_other_than_floats_are_assembled_alike() -> None:
    # The compiled assembly writes a page's floats with one dumps call up to 128 hits, and
    # value by value beyond that or when a value is not a float.
    business = Business(1, "a", 0.0, 0.0, "cafe", "")
    prefixes = {i: hit_prefix(business._replace(id=i)) for i in range(1, 301)}
    rng = random.Random(11)
    for size in (0, 1, 127, 128, 129, 300):
        hits = [(rng.randint(1, 300), rng.uniform(0.0, 50_000.0)) for _ in range(size)]
        for radius in (5000.0, 5000, 0.1 + 0.2):
            for page in (hits, [*hits, (1, 7)]):  # an int distance: not a float
                want = reference.search_body(3, radius, page, prefixes, None)
                assert search_body(3, radius, page, prefixes, None) == want
                assert orjson.loads(want)["radius_m"] == radius


@pytest.mark.parametrize("strategy", ["geohash", "quadtree", "s2"])
def test_the_plain_search_body_is_the_general_paths(strategy: str) -> None:
    # Businesses around Paris, across the antimeridian in Fiji and near the pole; searches at
    # and between them, with pages that end before and at the last match.
    rng = random.Random(7)
    rows = []
    for centre in [(48.8566, 2.3522), (-16.8, 180.0), (89.9, 0.0)]:
        for _ in range(400):
            lat, lon = offset_point(*centre, rng.uniform(0, 30_000), rng.uniform(0, 2 * math.pi))
            rows.append((len(rows) + 1, f"b{len(rows)}", lat, lon, "cafe", "somewhere"))
    catalog = Catalog.build(rows, max_radius_m=50_000.0, strategies=(strategy,))
    key = cursor_key("k" * 32)
    cursors = 0
    for _ in range(150):
        _, _, lat, lon, _, _ = rows[rng.randrange(len(rows))]
        radius, limit = rng.choice([100.0, 5000.0, 20_000.0, 50_000.0]), rng.randint(1, 100)
        query = SearchQuery(lat, lon, radius, limit, NO_FILTERS, False, None, None)
        page = search_memory(catalog, strategy, query, None, 50_000.0)
        nxt = None if page.next_position is None else encode_cursor(key, query, page.next_position)
        cursors += nxt is not None
        want = search_body(page.total, page.radius_m, page.hits, page.prefixes, nxt)
        raw = f"latitude={lat!r}&longitude={lon!r}&radius={radius!r}&limit={limit}"
        assert plain_body(catalog, strategy, raw, 50_000.0, key) == want
    assert 20 < cursors < 150, "pages both with and without a next page"


@settings(max_examples=200, deadline=None)
@given(business=_businesses)
def test_a_card_gives_back_the_business_it_was_rendered_from(business: Business) -> None:
    back = business_from_prefix(hit_prefix(business))
    assert back == business
    assert math.copysign(1.0, back.latitude) == math.copysign(1.0, business.latitude)
    card = card_for(business, facets_of(business.name, business.latitude, business.longitude, business.category))
    assert card.hit == hit_prefix(business) and card.facets.categories == _folded(business.category)


def _folded(category: str) -> tuple[str, ...]:
    return (category.casefold(),) if category else ()


def test_the_catalog_keeps_cards_and_indexes_in_step_and_reports_the_old_state() -> None:
    cafe = Business(1, 'Caf\u00e9 "Chez Nous"', 48.8566, 2.3522, "cafe", "Paris, FR")
    catalog = Catalog.build([tuple(cafe)], max_radius_m=50_000.0, strategies=("geohash", "s2"))
    assert catalog.business(1) == cafe and len(catalog) == 1
    moved = cafe._replace(latitude=48.9, name="Caf\u00e9")
    assert catalog.apply(1, moved, facets_of("Caf\u00e9", 48.9, 2.3522, "cafe", price_level=2)) == cafe
    assert catalog.facets(1) == facets_of("Caf\u00e9", 48.9, 2.3522, "cafe", price_level=2)
    assert catalog.business(1) == moved
    for index in catalog.indexes.values():
        assert index.position(1) == (48.9, 2.3522)
    assert catalog.apply(1, None) == moved
    assert catalog.business(1) is None and len(catalog) == 0
    assert all(1 not in index for index in catalog.indexes.values())
    assert catalog.apply(1, None) is None


def test_the_card_table_is_a_list_while_ids_are_dense_and_a_dict_once_they_are_not() -> None:
    card = card_for(Business(1, "a", 0.0, 0.0, "cafe", ""), facets_of("a", 0.0, 0.0, "cafe"))
    other = card_for(Business(2, "b", 0.0, 0.0, "bar", ""), facets_of("b", 0.0, 0.0, "bar"))
    table = CardTable({i: card for i in range(1, 1001)})

    def kinds() -> tuple[type, type]:
        return type(table.hits), type(table.facets)

    assert kinds() == (list, list) and table.count == 1000
    assert table.hits[1000] == card.hit and table.facets[1000] == card.facets
    assert table.get(1000) == card and table.get(0) is None and table.get(5000) is None and table.get(-1) is None
    table.put(1500, other)  # past the end, still dense: the lists grow together
    assert kinds() == (list, list) and table.get(1500) == other and table.count == 1001
    assert len(table.hits) == len(table.facets) == 1501
    table.put(1500, other)  # a replacement counts once
    table.drop(7)
    assert table.count == 1000 and table.get(7) is None
    table.put(10**12, other)  # far beyond: dicts from now on, every card kept
    assert kinds() == (dict, dict) and table.count == 1001
    assert table.get(10**12) == other and table.get(1500) == other and table.get(7) is None and table.get(1) == card
    assert table.hits[10**12] == other.hit and table.facets[10**12] == other.facets
    table.drop(10**12)
    assert table.count == 1000 and table.get(10**12) is None and 10**12 not in table.facets
    assert isinstance(CardTable({-5: card}).hits, dict)
    assert isinstance(CardTable({10**9: card}).facets, dict)
    assert CardTable({}).count == 0 and CardTable({}).get(3) is None


def test_a_sealed_token_opens_only_under_its_key_person_and_size() -> None:
    from location_api.sealed import seal, unseal

    key, payload = cursor_key("k" * 32), b"\x01" * 25
    token = seal(key, payload, person=b"lists")
    assert unseal(key, token, 25, person=b"lists") == payload
    assert unseal(key, token, 25) is None  # the search cursors' (empty) person
    assert unseal(cursor_key("z" * 32), token, 25, person=b"lists") is None
    assert unseal(key, token, 24, person=b"lists") is None
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]  # six data bits
    for bad in ("", "!", token[:-2], flipped):
        assert unseal(key, bad, 25, person=b"lists") is None
