"""The search filters as pure code: text matching with typos, the area's box and its reach,
and each filter's verdict on a business's facets."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_index import haversine_m
from location_api.area import Box
from location_api.filters import SearchFilters, facets_of, matcher
from location_api.text_match import TextQuery, edits_within, word_score, words

# ----------------------------------------------------------------------------- text


def test_words_drop_accents_and_case_and_keep_letters_and_digits() -> None:
    assert words("Café DU Marché, 24h!") == ("cafe", "du", "marche", "24h")
    assert words("Straße_7") == ("strasse", "7")
    assert words("…") == ()


@pytest.mark.parametrize(
    ("query", "word", "score"),
    [
        ("bakery", "bakery", 2),
        ("bak", "bakery", 2),  # what a user is still typing
        ("bakry", "bakery", 1),  # a letter dropped
        ("bakkery", "bakery", 1),  # a letter added
        ("bakety", "bakery", 1),  # a letter changed
        ("bakrey", "bakery", 1),  # two neighbours swapped
        ("resturant", "restaurant", 1),
        ("restuarnt", "restaurant", 1),  # 9 letters: two edits allowed
        ("rstuarnt", "restaurant", 0),  # three edits
        ("cafw", "cafe", 1),
        ("cafw", "cafeteria", 1),  # a typo in the start of a longer word
        ("bar", "car", 0),  # three letters: no typo
        ("bar", "bay", 0),
        ("ba", "bar", 2),
    ],
)
def test_a_query_word_scores_exact_prefix_typo_or_nothing(query: str, word: str, score: int) -> None:
    assert word_score(query, word) == score


@settings(max_examples=300, deadline=None)
@given(a=st.text("abcd", max_size=7), b=st.text("abcd", max_size=7), most=st.integers(0, 2))
def test_bounded_edits_agree_with_the_full_distance(a: str, b: str, most: int) -> None:
    assert edits_within(a, b, most) == (_osa(a, b) <= most)


def _osa(a: str, b: str) -> int:
    """The optimal string alignment distance, the whole table (the reference)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def test_every_query_word_must_match_and_exact_outranks_typo() -> None:
    text = TextQuery(words("Boulangerie Paris"))
    assert text.score(["Boulangerie de Paris", "bakery"]) == 4
    assert text.score(["Boulangrie de Parus", "bakery"]) == 2
    assert text.score(["Boulangerie de Lyon", "bakery"]) == 0
    assert TextQuery(("bakery",)).score(["Chez Paul", "bakery"]) == 2  # categories count


# ----------------------------------------------------------------------------- area


def _inside(box: Box, rng: random.Random) -> tuple[float, float]:
    lat = rng.uniform(box.south, box.north)
    lon = box.west + rng.uniform(0.0, box.width)
    return lat, lon - 360.0 if lon > 180.0 else lon


@pytest.mark.parametrize(
    "box",
    [
        Box(2.25, 48.8, 2.45, 48.92),  # Paris
        Box(179.8, -17.0, -179.8, -16.6),  # Fiji, across the 180th meridian
        Box(-180.0, 89.8, 180.0, 90.0),  # a cap around the North Pole
        Box(-180.0, -90.0, 180.0, -89.85),  # and the South
        Box(10.0, 89.9, 100.0, 90.0),  # reaching the pole, a quarter of the longitudes
        Box(-0.1, -0.1, 0.1, 0.1),  # where the equator and the prime meridian cross
        Box(-170.0, -0.05, 170.0, 0.05),  # wider than half the world
    ],
)
def test_the_reach_holds_every_point_of_the_box(box: Box) -> None:
    rng = random.Random(7)
    lat, lon = box.centre()
    reach = box.reach_m()
    for _ in range(3_000):
        p = _inside(box, rng)
        assert box.contains(*p)
        assert haversine_m(lat, lon, *p) <= reach * (1 + 1e-12) + 1e-6
    # and not much more: some point of the box lies near the reach
    edge = [(s, w) for s in (box.south, box.north) for w in (box.west, box.east)]
    samples = edge + [_inside(box, rng) for _ in range(3_000)]
    assert max(haversine_m(lat, lon, *p) for p in samples) > reach * 0.98


def test_the_box_test_across_the_meridian_and_at_a_pole() -> None:
    fiji = Box(179.8, -17.0, -179.8, -16.6)
    assert fiji.contains(-16.8, 180.0) and fiji.contains(-16.8, -180.0) and fiji.contains(-16.8, 179.9)
    assert not fiji.contains(-16.8, 0.0) and not fiji.contains(-16.8, 179.7) and not fiji.contains(-17.1, 180.0)
    assert fiji.centre() == pytest.approx((-16.8, 180.0)) and fiji.width == pytest.approx(0.4)
    cap = Box(-180.0, 89.8, 180.0, 90.0)
    assert cap.centre() == (90.0, 0.0) and cap.reach_m() == pytest.approx(haversine_m(90.0, 0.0, 89.8, 0.0))
    corner = Box(10.0, 89.9, 100.0, 90.0)
    assert corner.contains(90.0, -170.0)  # the pole is at every longitude
    assert not corner.contains(89.95, -170.0)


# ----------------------------------------------------------------------------- filters

BERLIN_BAR = facets_of(
    "Nachtbar Mitte",
    52.52,
    13.40,
    "Bar",
    hours='{"weekly": {"fri": [["18:00", "02:00"]]}}',
    price_level=2,
    rating=4.4,
)
UNKNOWN = facets_of("Somewhere", 52.52, 13.40, "")


def test_facets_read_the_zone_from_the_coordinates_and_fold_the_category() -> None:
    assert BERLIN_BAR.time_zone == "Europe/Berlin" and BERLIN_BAR.categories == ("bar",)
    assert UNKNOWN.categories == () and UNKNOWN.hours is None


@pytest.mark.parametrize(
    ("filters", "bar", "unknown"),
    [
        (SearchFilters(), True, True),
        (SearchFilters(categories=frozenset({"bar", "cafe"})), True, False),
        (SearchFilters(categories=frozenset({"cafe"})), False, False),
        (SearchFilters(price_levels=frozenset({1, 2})), True, False),
        (SearchFilters(price_levels=frozenset({3})), False, False),
        (SearchFilters(min_rating=4.4), True, False),
        (SearchFilters(min_rating=4.5), False, False),
        # Saturday 01:30 in Berlin (23:30 UTC on Friday, summer time): Friday's night is open
        (SearchFilters(open_at=datetime(2026, 7, 3, 23, 30, tzinfo=UTC)), True, False),
        (SearchFilters(open_at=datetime(2026, 7, 4, 0, 30, tzinfo=UTC)), False, False),
        (SearchFilters(q=("nachtbr",)), True, False),
        (SearchFilters(q=("bar", "mitte")), True, False),
        (SearchFilters(q=("bar", "moabit")), False, False),
        (SearchFilters(categories=frozenset({"bar"}), price_levels=frozenset({2}), min_rating=4.0), True, False),
    ],
)
def test_each_filter_passes_what_it_says_and_an_unknown_detail_never(
    filters: SearchFilters, bar: bool, unknown: bool
) -> None:
    check = matcher(filters, None)
    assert (check(BERLIN_BAR), check(UNKNOWN)) == (bar, unknown)


def test_open_now_reads_the_instant_given_and_open_at_overrides_nothing_else() -> None:
    friday_night = datetime(2026, 7, 3, 22, 0, tzinfo=UTC)  # 00:00 Saturday in Berlin
    assert matcher(SearchFilters(open_now=True), friday_night)(BERLIN_BAR)
    assert not matcher(SearchFilters(open_now=True), datetime(2026, 7, 3, 12, 0, tzinfo=UTC))(BERLIN_BAR)
    assert math.isclose(BERLIN_BAR.rating or 0.0, 4.4)


def test_a_filters_fingerprint_is_the_same_for_the_same_filters_only() -> None:
    a = SearchFilters(categories=frozenset({"bar", "cafe"}), price_levels=frozenset({1, 2}))
    b = SearchFilters(categories=frozenset({"cafe", "bar"}), price_levels=frozenset({2, 1}))
    assert a.fingerprint() == b.fingerprint() and a.any
    assert SearchFilters().fingerprint() == b"" and not SearchFilters().any
    others = [
        SearchFilters(categories=frozenset({"bar"})),
        SearchFilters(open_now=True),
        SearchFilters(open_at=datetime(2026, 1, 1, tzinfo=UTC)),
        SearchFilters(q=("bar",)),
        SearchFilters(min_rating=4.0),
    ]
    assert len({f.fingerprint() for f in [a, *others]}) == len(others) + 1
