"""``page``: the number of matches and one page of them, equal to cutting ``within``'s full
answer (the oracle's), for every index and fill; the compiled scan counts without building
the matches, and ``where`` filters as if no other point were held."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_index import (
    GeohashIndex,
    InvalidCoordinate,
    InvalidCount,
    InvalidOption,
    InvalidPosition,
    InvalidRadius,
    Page,
    haversine_m,
    in_box,
    page_of,
)
from geo_index._base import IndexBase
from tests.geo_index.strategies import FILLS, INDEXES, Scene, fill, oracle, scenes

MAX_EXAMPLES = 50
REPO = Path(__file__).resolve().parents[2]


def _walk(
    idx: IndexBase, lat: float, lon: float, radius: float, limit: int
) -> tuple[list[tuple[int, float]], list[Page]]:
    """Follow the pages from the first to the last; return every hit and every page."""
    seen: list[tuple[int, float]] = []
    pages = []
    after = None
    while True:
        page = idx.page(lat, lon, radius, limit, after)
        pages.append(page)
        seen += page.hits
        if page.following <= len(page.hits):
            return seen, pages
        after = (page.hits[-1][1], page.hits[-1][0])


def _cluster() -> list[tuple[float, float]]:
    """A dense cluster across the antimeridian, with exact duplicates (ties broken by id)."""
    rng = random.Random(11)
    pts = [(rng.uniform(-0.05, 0.05), (rng.uniform(-0.07, 0.03) + 360.0) % 360.0 - 180.0) for _ in range(300)]
    return pts + [(0.01, 179.99)] * 6 + [(0.0, -180.0), (0.0, 180.0)] + [pts[5]] * 4


@pytest.mark.parametrize("name", list(INDEXES))
@pytest.mark.parametrize("limit", [1, 4, 9])
@pytest.mark.parametrize("radius", [2_000.0, 5_000.0, 50_000.0])
def test_pages_list_every_match_once_in_order_with_the_count(name: str, limit: int, radius: float) -> None:
    pts = _cluster()
    idx = INDEXES[name]()
    fill(idx, pts, "split")
    want = oracle(pts).within(0.0, 180.0, radius)
    assert len(want) > 2 * limit  # several pages, and the compiled scan's limit cut runs
    seen, pages = _walk(idx, 0.0, 180.0, radius, limit)
    assert seen == want
    assert all(p.total == len(want) for p in pages)
    assert [p.following for p in pages] == list(range(len(want), 0, -limit))
    assert idx.page(0.0, -180.0, radius, limit) == pages[0]


@pytest.mark.parametrize("name", list(INDEXES))
@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(scene=scenes(), limit=st.integers(1, 5), pick=st.integers(0, 1_000), how=st.sampled_from(FILLS))
def test_a_page_equals_the_full_answer_cut(name: str, scene: Scene, limit: int, pick: int, how: str) -> None:
    # The scenes weight up points at the radius itself (+-1e-9), duplicates, the poles and
    # the antimeridian: where counting by a bound must fall back to the exact distance.
    (qlat, qlon), radius, points = scene
    idx = INDEXES[name]()
    fill(idx, points, how)
    full = oracle(points).within(qlat, qlon, radius)
    assert idx.page(qlat, qlon, radius, limit) == page_of(full, limit, None)
    if full:
        at, d = full[pick % len(full)]
        for after in (
            (d, at),
            (d, at - 1),
            (d, at + 1),
            (math.nextafter(d, 0.0), at),
            (math.nextafter(d, math.inf), at),
        ):
            assert idx.page(qlat, qlon, radius, limit, after) == page_of(full, limit, after)


@pytest.mark.parametrize("name", list(INDEXES))
def test_a_point_exactly_on_the_radius_counts_and_one_a_hair_beyond_does_not(name: str) -> None:
    pts = [(51.5, -0.12), (51.53, -0.1), (51.53, -0.1)]
    idx = INDEXES[name]()
    fill(idx, pts, "insert")
    d = haversine_m(51.5, -0.12, 51.53, -0.1)
    assert idx.page(51.5, -0.12, d, 5) == Page(3, 3, [(0, 0.0), (1, d), (2, d)])
    assert idx.page(51.5, -0.12, math.nextafter(d, 0.0), 5) == Page(1, 1, [(0, 0.0)])
    # The cursor at the first of two ties: only the second follows.
    assert idx.page(51.5, -0.12, d, 5, (d, 1)) == Page(3, 1, [(2, d)])
    assert idx.page(51.5, -0.12, d, 5, (d, 2)) == Page(3, 0, [])


@pytest.mark.parametrize("merge_every", [500, None])
def test_a_dense_area_pages_as_the_oracle_cuts_it(merge_every: int | None) -> None:
    # 20,000 points within ~3 km: the bounds decide almost every one without a distance.
    # A tenth of them were moved: with merge_every=None they sit in the delta, else they
    # were merged four times over.
    rng = random.Random(5)
    pts = [(48.85 + rng.gauss(0, 0.02), 2.35 + rng.gauss(0, 0.03)) for _ in range(20_000)]
    idx = GeohashIndex(merge_every=merge_every)
    idx.bulk_load((i, 0.0, 0.0) if i % 10 == 0 else (i, la, lo) for i, (la, lo) in enumerate(pts))
    for i in range(0, len(pts), 10):
        idx.move(i, *pts[i])
    assert idx.pending == (2_000 if merge_every is None else 0)
    ref = oracle(pts)
    for lat, lon, radius in ((48.85, 2.35, 2_000.0), (48.86, 2.34, 50_000.0), (48.86, 2.36, 700.0)):
        full = ref.within(lat, lon, radius)
        got = idx.page(lat, lon, radius, 20)
        assert got == page_of(full, 20, None)
        assert got.total > 100
        mid = full[len(full) // 2]
        assert idx.page(lat, lon, radius, 20, (mid[1], mid[0])) == page_of(full, 20, (mid[1], mid[0]))


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((91.0, 0.0, 1_000.0, 5, None), InvalidCoordinate),
        ((0.0, 0.0, 0.0, 5, None), InvalidRadius),
        ((0.0, 0.0, 1_000.0, 0, None), InvalidCount),
        ((0.0, 0.0, 1_000.0, -1, None), InvalidCount),
        ((0.0, 0.0, 1_000.0, True, None), InvalidCount),
        ((0.0, 0.0, 1_000.0, 5, (1.0,)), InvalidPosition),
        ((0.0, 0.0, 1_000.0, 5, [1.0, 1]), InvalidPosition),
        ((0.0, 0.0, 1_000.0, 5, ("1", 1)), InvalidPosition),
        ((0.0, 0.0, 1_000.0, 5, (math.nan, 1)), InvalidPosition),
        ((0.0, 0.0, 1_000.0, 5, 3.0), InvalidPosition),
    ],
)
def test_bad_arguments_raise_a_named_error(args: tuple[object, ...], error: type[Exception]) -> None:
    idx = GeohashIndex()
    idx.insert(1, 0.0, 0.0)
    with pytest.raises(error):
        idx.page(*args)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- where


def _tables(n: int, seed: int) -> tuple[list[str | None], dict[int, str]]:
    """Categories of ids 0..n-1 as a list and as a dict; some ids lack one (None in the list,
    absent from the dict), and the list is one short: the last id is not in it at all."""
    rng = random.Random(seed)
    cats: list[str | None] = [rng.choice(["cafe", "bar", "bank", None]) for _ in range(n)]
    return cats[:-1], {i: c for i, c in enumerate(cats) if c is not None}


@pytest.mark.parametrize("name", list(INDEXES))
@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    scene=scenes(max_points=60),
    limit=st.integers(1, 5),
    pick=st.integers(0, 1_000),
    seed=st.integers(0, 99),
    how=st.sampled_from(FILLS),
)
def test_a_filtered_page_equals_the_filtered_answer_cut(
    name: str, scene: Scene, limit: int, pick: int, seed: int, how: str
) -> None:
    (qlat, qlon), radius, points = scene
    idx = INDEXES[name]()
    fill(idx, points, how)
    full = oracle(points).within(qlat, qlon, radius)
    as_list, as_dict = _tables(len(points) + 1, seed)
    for table in (as_list, as_dict):
        # A fresh str equal to the stored one: equality, not identity, decides.
        wanted = "".join(["ca", "fe"])
        kept = [h for h in full if h[0] < len(as_list) and as_list[h[0]] == "cafe"]
        assert idx.page(qlat, qlon, radius, limit, where=(table, wanted)) == page_of(kept, limit, None)
        if kept:
            at, d = kept[pick % len(kept)]
            after = (d, at)
            assert idx.page(qlat, qlon, radius, limit, after, where=(table, wanted)) == page_of(kept, limit, after)
    assert idx.page(qlat, qlon, radius, limit, where=(as_dict, "tea")) == Page(0, 0, [])
    # A callable filter: the same, asked of each id.
    wanted_ids = {i for i, c in as_dict.items() if c == "bar"}
    kept = [h for h in full if h[0] in wanted_ids]
    assert idx.page(qlat, qlon, radius, limit, where=wanted_ids.__contains__) == page_of(kept, limit, None)
    assert idx.page(qlat, qlon, radius, None, where=wanted_ids.__contains__) == page_of(kept, None, None)
    if kept:
        at, d = kept[pick % len(kept)]
        after = (d, at)
        assert idx.page(qlat, qlon, radius, limit, after, where=wanted_ids.__contains__) == page_of(kept, limit, after)
        assert idx.page(qlat, qlon, radius, None, after, where=wanted_ids.__contains__) == page_of(kept, None, after)


@pytest.mark.parametrize("name", list(INDEXES))
def test_a_filter_pages_a_dense_cluster_through_every_match_once(name: str) -> None:
    # Several pages, the compiled scan's limit cut, ties by id, and ids out of the table's range.
    pts = _cluster()
    idx = INDEXES[name]()
    fill(idx, pts, "moved")
    table = ["even" if i % 2 == 0 else "odd" for i in range(len(pts) - 5)]
    want = [h for h in oracle(pts).within(0.0, 180.0, 50_000.0) if h[0] < len(table) and h[0] % 2 == 0]
    seen: list[tuple[int, float]] = []
    after = None
    while True:
        page = idx.page(0.0, 180.0, 50_000.0, 7, after, where=(table, "even"))
        assert page.total == len(want)
        seen += page.hits
        if page.following <= len(page.hits):
            break
        after = (page.hits[-1][1], page.hits[-1][0])
    assert seen == want and len(want) > 20


@pytest.mark.parametrize(
    "where", [("cafe",), (["cafe"],), ("ab", "a"), ((), "a"), [[], "a"], ({1: "a"}, "a", 1), "cafe"]
)
@pytest.mark.parametrize("name", ["geohash", "quadtree", "s2"])
def test_a_malformed_filter_is_refused(name: str, where: object) -> None:
    idx = INDEXES[name]()
    idx.insert(1, 0.0, 0.0)
    with pytest.raises(InvalidOption, match="where must be None, a callable or a"):
        idx.page(0.0, 0.0, 1_000.0, 5, where=where)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["geohash", "quadtree_delta", "s2"])
def test_a_list_filter_reads_ids_in_its_range_and_a_dict_any_id(name: str) -> None:
    idx = INDEXES[name]()
    for id in (0, 1, -1, -3, 2**62):
        idx.insert(id, 1.0, 1.0)
    # A list is indexed by id: a negative id does not count from its end, and ids past it
    # (2**62) are not in it; a dict holds any id.
    assert idx.page(1.0, 1.0, 10.0, 5, where=(["x", "x", "x"], "x")) == Page(2, 2, [(0, 0.0), (1, 0.0)])
    by_id = {0: "y", 2**62: "x", -3: "x", True: "y"}  # True == 1: id 1 is "y"
    assert idx.page(1.0, 1.0, 10.0, 5, where=(by_id, "x")) == Page(2, 2, [(-3, 0.0), (2**62, 0.0)])
    assert idx.page(1.0, 1.0, 10.0, 5, (0.0, -3), where=(by_id, "x")) == Page(2, 1, [(2**62, 0.0)])
    assert idx.page(1.0, 1.0, 10.0, 5, where=(by_id, "y")).hits == [(0, 0.0), (1, 0.0)]


def test_a_callable_filter_that_raises_fails_the_page() -> None:
    idx = GeohashIndex()
    idx.bulk_load([(0, 1.0, 1.0), (1, 1.0, 1.0)])

    def refuse(bid: int) -> bool:
        raise LookupError(f"no verdict for {bid}")

    with pytest.raises(LookupError, match="no verdict"):
        idx.page(1.0, 1.0, 10.0, 5, where=refuse)
    assert idx.page(1.0, 1.0, 10.0, 5, where=lambda bid: bid == 1) == Page(1, 1, [(1, 0.0)])


def test_a_table_value_whose_equality_fails_fails_the_page() -> None:
    class Broken:
        def __eq__(self, other: object) -> bool:
            raise LookupError("no comparison")

        __hash__ = object.__hash__

    idx = GeohashIndex()
    idx.bulk_load([(0, 1.0, 1.0), (1, 1.0, 1.0)])
    with pytest.raises(LookupError, match="no comparison"):
        idx.page(1.0, 1.0, 10.0, 5, where=([Broken(), Broken()], "x"))
    assert idx.page(1.0, 1.0, 10.0, 5, where=(["x", "x"], "x")) == Page(2, 2, [(0, 0.0), (1, 0.0)])


def test_a_table_value_whose_equality_empties_the_table_is_survived() -> None:
    # The filter reads the table's entry while the comparison runs: an __eq__ that empties
    # the table frees nothing under it, and the next id finds the table empty.
    table: list[object] = []

    class Clearing:
        def __eq__(self, other: object) -> bool:
            table.clear()
            return True

        __hash__ = object.__hash__

    table.extend([Clearing(), Clearing()])
    idx = GeohashIndex()
    idx.bulk_load([(0, 1.0, 1.0), (1, 1.0, 1.0)])
    assert idx.page(1.0, 1.0, 10.0, 5, where=(table, "x")) == Page(1, 1, [(0, 0.0)])
    assert table == []


_CHANGES_DURING_A_FILTER = """
from geo_index import GeohashIndex, GeoIndexError
idx = GeohashIndex(merge_every=None)
for i in range(2000):
    idx.insert(i, 1.0 + i * 1e-6, 1.0)
{setup}
want = idx.page(1.0, 1.0, 5000.0, 3)
calls = 0
class Meddler:
    def __eq__(self, other):
        global calls
        calls += 1
        if calls == 5:
            for j in range(5000, 9000):
                idx.insert(j, 1.0, 1.0)
            {change}
        return True
    __hash__ = object.__hash__
try:
    got = idx.page(1.0, 1.0, 5000.0, 3, where=([Meddler()] * 2000, "x"))
except (RuntimeError, GeoIndexError) as exc:
    print("refused", type(exc).__name__)
else:
    print("answered", got == want, got)
"""


@pytest.mark.parametrize(
    ("setup", "change"),
    [("", "pass"), ("", "idx.merge()"), ("idx.merge()", "idx.merge()")],
    ids=["insert", "insert-and-merge", "from-the-bulk"],
)
def test_changing_the_index_from_a_filter_is_refused_or_not_seen(setup: str, change: str) -> None:
    # Run in a child: today this crashes the interpreter. The filter's equality may run
    # Python code, which may change the index (or let another thread do it): the page must
    # then be refused, or be the answer of the index as the page began.
    script = textwrap.dedent(_CHANGES_DURING_A_FILTER).format(setup=setup, change=change)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(("refused", "answered True")), done.stdout


# --------------------------------------------------------------------------- box


@pytest.mark.parametrize("name", list(INDEXES))
@settings(max_examples=MAX_EXAMPLES, deadline=None)
@given(
    scene=scenes(max_points=60),
    limit=st.integers(1, 5),
    corner=st.tuples(st.floats(-180.0, 180.0), st.floats(-90.0, 90.0), st.floats(0.0, 40.0), st.floats(0.0, 20.0)),
    how=st.sampled_from(FILLS),
)
def test_a_boxed_page_equals_the_answer_in_the_box_cut(
    name: str, scene: Scene, limit: int, corner: tuple[float, float, float, float], how: str
) -> None:
    # Boxes near the query (so they hold some of its points), across the 180th meridian when
    # they run past it, up to a pole; with and without a filter besides.
    (qlat, qlon), radius, points = scene
    west = qlon - corner[2]
    west = west + 360.0 if west < -180.0 else west
    east = qlon + corner[2]
    east = east - 360.0 if east > 180.0 else east
    box = (west, max(-90.0, qlat - corner[3]), east, min(90.0, qlat + corner[3]))
    idx = INDEXES[name]()
    fill(idx, points, how)
    reference = oracle(points)
    kept = [h for h in reference.within(qlat, qlon, radius) if in_box(*points[h[0]], box)]
    assert idx.page(qlat, qlon, radius, limit, box=box) == page_of(kept, limit, None)
    assert reference.page(qlat, qlon, radius, limit, box=box) == page_of(kept, limit, None)
    odd = [h for h in kept if h[0] % 2]
    assert idx.page(qlat, qlon, radius, None, box=box, where=lambda i: i % 2) == page_of(odd, None, None)


@pytest.mark.parametrize(
    "box", [(1.0, 2.0, 3.0), (1, 2.0, 3.0, 4.0), (0.0, 10.0, 1.0, 5.0), (0.0, 0.0, 181.0, 1.0), [0.0, 0.0, 1.0, 1.0]]
)
def test_a_malformed_box_is_refused(box: object) -> None:
    idx = GeohashIndex()
    idx.insert(1, 0.0, 0.0)
    with pytest.raises(InvalidOption, match="box must be None or"):
        idx.page(0.0, 0.0, 1_000.0, 5, box=box)  # type: ignore[arg-type]


def test_a_box_across_the_meridian_and_at_a_pole() -> None:
    idx = GeohashIndex()
    idx.bulk_load([(1, -16.8, 179.99), (2, -16.8, -179.99), (3, -16.8, 179.0), (4, 90.0, 123.0), (5, 89.99, -60.0)])
    fiji = idx.page(-16.8, 180.0, 50_000.0, None, box=(179.5, -17.0, -179.5, -16.5))
    assert sorted(i for i, _ in fiji.hits) == [1, 2]
    cap = idx.page(90.0, 0.0, 50_000.0, None, box=(0.0, 89.95, 90.0, 90.0))
    assert [i for i, _ in cap.hits] == [4]  # the pole is at every longitude; 5 is outside the longitudes


def _dense_places() -> list[tuple[float, float]]:
    """Crowds the scan splits into many nodes: Paris, Fiji across the 180th meridian, around the
    North Pole (with points exactly on it), and where the equator and the prime meridian cross;
    with exact duplicates."""
    rng = random.Random(23)
    pts: list[tuple[float, float]] = []
    for lat, lon, spread in ((48.85, 2.35, 0.05), (-16.8, 180.0, 0.1), (89.9, 0.0, 0.08), (0.0, 0.0, 0.05)):
        for _ in range(2_500):
            la = max(-90.0, min(90.0, lat + rng.gauss(0, spread)))
            lo = lon + rng.gauss(0, spread * (5.0 if lat > 89.0 else 1.0))
            pts.append((la, (lo + 180.0) % 360.0 - 180.0 if abs(lo) > 180.0 else lo))
    pts += [(90.0, rng.uniform(-180.0, 180.0)) for _ in range(60)] + [(90.0, 0.0)] * 40
    pts += [(-16.8, 180.0)] * 40 + [(-16.8, -180.0)] * 40 + [(48.85, 2.35)] * 40
    return pts


DENSE = _dense_places()
DENSE_BOXES = [
    (48.85, 2.35, (2.30, 48.80, 2.40, 48.90)),  # a city's box, its edges across many nodes
    (48.85, 2.35, (2.35, 48.85, 2.35, 48.85)),  # a point
    (-16.8, 180.0, (179.9, -16.9, -179.9, -16.7)),  # across the 180th meridian
    (-16.8, 180.0, (180.0, -16.9, -179.95, -16.7)),  # starting on it
    (-16.8, -180.0, (179.95, -16.9, -180.0, -16.7)),  # and ending on it
    (90.0, 0.0, (-180.0, 89.8, 180.0, 90.0)),  # a polar cap
    (90.0, 0.0, (10.0, 89.7, 100.0, 90.0)),  # reaching the pole, a quarter of the longitudes
    (89.9, 0.0, (0.0, 90.0, 0.0, 90.0)),  # only the pole itself
    (0.0, 0.0, (-0.03, -0.02, 0.0, 0.0)),  # up to the equator and the prime meridian
    (0.0, 0.0, (0.0, 0.0, 0.05, 0.05)),
]


@pytest.mark.parametrize("name", list(INDEXES))
def test_dense_boxes_count_and_page_as_the_oracle(name: str) -> None:
    # Crowded enough that whole nodes inside a box are counted without reading a point and
    # nodes outside it are dropped: the counts and pages are still the oracle's, on the first
    # page, the one after it and with a filter besides; a tenth of the points moved.
    idx = INDEXES[name]()
    fill(idx, DENSE, "moved")
    reference = oracle(DENSE)
    for lat, lon, box in DENSE_BOXES:
        for radius in (2_000.0, 20_000.0, 50_000.0):
            kept = [h for h in reference.within(lat, lon, radius) if in_box(*DENSE[h[0]], box)]
            for limit in (1, 20):
                first = idx.page(lat, lon, radius, limit, box=box)
                assert first == page_of(kept, limit, None), (box, radius, limit)
                if len(kept) > limit:
                    mid = (kept[len(kept) // 2][1], kept[len(kept) // 2][0])
                    assert idx.page(lat, lon, radius, limit, mid, box=box) == page_of(kept, limit, mid)
            odd = [h for h in kept if h[0] % 2]
            assert idx.page(lat, lon, radius, 5, box=box, where=lambda i: i % 2) == page_of(odd, 5, None)
    assert max(len(idx.within(lat, lon, 50_000.0)) for lat, lon, _ in DENSE_BOXES) > 2_000


@pytest.mark.parametrize("name", list(INDEXES))
@pytest.mark.parametrize(("lat", "lon"), [(90.0, 0.0), (-90.0, 0.0), (90.0, 180.0), (-90.0, -180.0)])
def test_a_crowd_exactly_on_a_pole_is_found(name: str, lat: float, lon: float) -> None:
    # The grid's last row at full depth: every point of a crowd on the pole, however deep the
    # scan splits its node.
    idx = INDEXES[name]()
    idx.bulk_load((i, lat, lon) for i in range(100))
    assert idx.page(lat, lon, 1.0, 5).total == 100
    assert len(idx.within(lat, -lon, 1.0)) == 100
    assert idx.page(lat, lon, 1_000.0, 5, box=(-180.0, -90.0, 180.0, 90.0)).total == 100
