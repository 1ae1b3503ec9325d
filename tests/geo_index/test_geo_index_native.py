"""The compiled scan (geo_index/_cscan.c): built here, used by default, and identical to the
Python scan it replaces, including on the inputs only it sees (numpy buffers, bad groups)."""

from __future__ import annotations

import gc
import random
import sys
import weakref

import numpy as np
import pytest

from geo_index import GeohashIndex, QuadTree, S2Index, haversine_m
from geo_index._scan import (
    HAVE_NATIVE,
    CellMap,
    make_record,
    scan_levels,
    search,
    search_native,
    unit_vector,
    vec_array,
)
from geo_index.distance import cap_bounds, point_terms
from geo_index.geohash_codes import SPREAD
from geo_index.geohash_index import _PACK, _PACKED_BYTES, packed_row
from geo_index.errors import InvalidOption
from tests.geo_index.strategies import oracle


def _groups(
    points: list[tuple[float, float]], size: int
) -> tuple[list[list[tuple[float, float, float]]], list[list[tuple[float, float, float, int]]]]:
    vecs = [unit_vector(point_terms(la, lo)) for la, lo in points]
    recs = [make_record(point_terms(la, lo), i) for i, (la, lo) in enumerate(points)]
    return [vecs[i : i + size] for i in range(0, len(vecs), size)], [
        recs[i : i + size] for i in range(0, len(recs), size)
    ]


def test_the_extension_is_built_and_is_the_default() -> None:
    # `make install` compiles it; a checkout where this fails is running the slower path.
    assert HAVE_NATIVE, "geo_index._cscan is not built: run `make install` with gcc and python3-dev"
    for idx in (GeohashIndex(), QuadTree(), S2Index()):
        assert idx._native is True  # noqa: SLF001 - the option's resolved value


def test_native_false_selects_the_python_scan_and_true_is_accepted() -> None:
    assert GeohashIndex(native=False)._native is False  # noqa: SLF001
    assert QuadTree(native=True)._native is True  # noqa: SLF001


def test_native_true_without_the_extension_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("geo_index._scan.HAVE_NATIVE", False)
    with pytest.raises(InvalidOption, match="native=True.*not built"):
        GeohashIndex(native=True)
    assert GeohashIndex()._native is False  # noqa: SLF001 - the default falls back


@pytest.mark.parametrize("limit", [None, 1, 3, 20])
@pytest.mark.parametrize("radius", [1.0, 800.0, 5_000.0, 50_000.0, float("inf")])
def test_same_answer_as_the_python_scan_bit_for_bit(limit: int | None, radius: float) -> None:
    rng = random.Random(7)
    # A dense cluster (many candidates, so the limit cut runs), exact duplicates (ties
    # broken by id) and points across the antimeridian.
    pts = [(rng.uniform(-0.05, 0.05), (rng.uniform(-0.07, 0.03) + 360.0) % 360.0 - 180.0) for _ in range(400)]
    pts += [(0.01, 179.99)] * 5 + [(0.0, -180.0), (0.0, 180.0)]
    vg, rg = _groups(pts, 37)
    got = search_native(vg, rg, 0.0, 180.0, radius, limit)
    assert got == search(vg, rg, 0.0, 180.0, radius, limit)
    assert got == search_native(vg, rg, 0.0, -180.0, radius, limit)
    if radius != float("inf"):
        assert got == oracle(pts).within(0.0, 180.0, radius, limit)
    assert all(d == haversine_m(0.0, 180.0, *pts[i]) for i, d in got)


def test_numpy_buffers_and_lists_give_the_same_answer() -> None:
    rng = random.Random(3)
    pts = [(89.9 + rng.uniform(0, 0.1), rng.uniform(-180, 180)) for _ in range(300)]
    vg, rg = _groups(pts, 50)
    arrays = [vec_array(g) for g in vg]
    mixed = [a if i % 2 else v for i, (a, v) in enumerate(zip(arrays, vg))]
    want = search(vg, rg, 90.0, 0.0, 20_000.0, 10)
    assert len(want) == 10
    assert search_native(arrays, rg, 90.0, 0.0, 20_000.0, 10) == want
    assert search_native(mixed, rg, 90.0, 0.0, 20_000.0, 10) == want


def test_ids_of_any_orderable_type_are_ordered_by_python() -> None:
    vg, rg = _groups([(1.0, 1.0)] * 3, 3)
    rg = [[r[:3] + (name,) for r, name in zip(rg[0], ["b", "c", "a"])]]
    assert [i for i, _ in search_native(vg, rg, 1.0, 1.0, 10.0, None)] == ["a", "b", "c"]
    mixed = [[rg[0][0], rg[0][1][:3] + (5,)]]
    with pytest.raises(TypeError):
        search_native([vg[0][:2]], mixed, 1.0, 1.0, 10.0, None)


def _packed(
    vec_groups: list[list[tuple[float, float, float]]], rec_groups: list[list[tuple[float, float, float, int]]]
) -> tuple[list[bytearray], list[list[int]]]:
    """The same groups packed as GeohashIndex packs its cells: six doubles per point, and the ids."""
    packed = [bytearray(b"".join(_PACK(*v, *r[:3]) for v, r in zip(vg, rg))) for vg, rg in zip(vec_groups, rec_groups)]
    return packed, [[r[3] for r in rg] for rg in rec_groups]


@pytest.mark.parametrize("limit", [None, 1, 20])
@pytest.mark.parametrize("radius", [1.0, 5_000.0, 50_000.0, float("inf")])
def test_packed_groups_give_the_same_answer_as_record_groups(limit: int | None, radius: float) -> None:
    rng = random.Random(13)
    pts = [(rng.uniform(-0.05, 0.05), (rng.uniform(-0.07, 0.03) + 360.0) % 360.0 - 180.0) for _ in range(400)]
    pts += [(0.01, 179.99)] * 5 + [(0.0, -180.0), (0.0, 180.0)]
    vg, rg = _groups(pts, 37)
    packed, ids = _packed(vg, rg)
    want = search_native(vg, rg, 0.0, 180.0, radius, limit)
    assert search_native(packed, ids, 0.0, 180.0, radius, limit) == want
    mixed = [p if i % 2 else v for i, (p, v) in enumerate(zip(packed, vg))]
    assert (
        search_native(mixed, [i if n % 2 else r for n, (i, r) in enumerate(zip(ids, rg))], 0.0, 180.0, radius, limit)
        == want
    )
    if limit is not None:  # paging: counts and the page after a (distance, id) in the middle
        first = search_native(vg, rg, 0.0, 180.0, radius, limit, None)
        assert search_native(packed, ids, 0.0, 180.0, radius, limit, None) == first
        if first[2]:
            after = (first[2][-1][1], first[2][-1][0])
            assert search_native(packed, ids, 0.0, 180.0, radius, limit, after) == search_native(
                vg, rg, 0.0, 180.0, radius, limit, after
            )


def test_packed_groups_are_checked() -> None:
    vg, rg = _groups([(1.0, 1.0), (1.0, 1.0001)], 2)
    packed, ids = _packed(vg, rg)
    with pytest.raises(ValueError, match="6 float64 per id"):
        search_native([packed[0][:-8]], ids, 1.0, 1.0, 1_000.0, None)
    with pytest.raises(ValueError, match="6 float64 per id"):
        search_native(packed, [ids[0] + [7]], 1.0, 1.0, 1_000.0, None)
    with pytest.raises(TypeError):
        search_native(packed, [tuple(ids[0])], 1.0, 1.0, 1_000.0, None)


def _cells_hold_exactly(idx: GeohashIndex, where: dict[int, tuple[float, float]]) -> None:
    """Every level's packed cells hold each point once, in its cell, its row the packing of its terms."""
    for lv in idx._levels:  # noqa: SLF001 - the cell maps
        seen = []
        for code, (packed, ids) in lv.cells.items():
            assert type(packed) is bytearray and len(packed) == _PACKED_BYTES * len(ids) > 0
            for i, bid in enumerate(ids):
                entry = idx._points[bid]  # noqa: SLF001
                assert entry.key >> lv.shift == code
                assert packed[i * _PACKED_BYTES : (i + 1) * _PACKED_BYTES] == packed_row(entry)
                assert (entry.lat, entry.lon) == where[bid]
            seen += ids
        assert sorted(seen) == sorted(where)


def test_geohash_cells_stay_packed_and_aligned_through_updates() -> None:
    rng = random.Random(17)
    idx = GeohashIndex()
    where = {i: (rng.uniform(48.0, 48.2), rng.uniform(2.2, 2.4)) for i in range(500)}
    idx.bulk_load((i, la, lo) for i, (la, lo) in where.items())
    _cells_hold_exactly(idx, where)
    for step in range(600):
        bid = rng.randrange(700)
        near = (rng.uniform(48.0, 48.2), rng.uniform(2.2, 2.4))
        if bid in where and step % 3 == 0:
            idx.remove(bid)
            del where[bid]
        elif bid in where:
            idx.move(bid, *near)
            where[bid] = near
        else:
            idx.insert(bid, *near)
            where[bid] = near
    _cells_hold_exactly(idx, where)
    python = GeohashIndex(native=False)
    python.bulk_load((i, la, lo) for i, (la, lo) in where.items())
    for lat, lon in [(48.1, 2.3), (48.0, 2.2), (48.2, 2.45)]:
        assert idx.page(lat, lon, 5_000.0, 20) == python.page(lat, lon, 5_000.0, 20)
        assert idx.within(lat, lon, 30_000.0) == python.within(lat, lon, 30_000.0)


@pytest.mark.parametrize(
    ("vec_groups", "rec_groups", "error"),
    [
        ([[(1.0, 0.0, 0.0)]], [], TypeError),  # groups of different lengths
        ([[(1.0, 0.0, 0.0)], [(1.0, 0.0, 0.0)]], [[(0.0, 0.0, 1.0, 1)], ((0.0, 0.0, 1.0, 2),)], TypeError),
        ([[(1.0, 0.0)]], [[(0.0, 0.0, 1.0, 1)]], TypeError),  # a vector of 2
        ([[(1.0, 0.0, 0.0), (1.0, 0.0, 0.0)]], [[(0.0, 0.0, 1.0, 1)]], ValueError),
        ([np.zeros((2, 3))], [[(0.0, 0.0, 1.0, 1)]], ValueError),  # array of another length
        ([np.zeros((1, 3), dtype=np.float32)], [[(0.0, 0.0, 1.0, 1)]], ValueError),
        ([[("x", 0.0, 0.0)]], [[(0.0, 0.0, 1.0, 1)]], TypeError),
        ([[(1.0, 0.0, 0.0)]], [[(0.0, 0.0, 1)]], TypeError),  # a record of 3
    ],
)
def test_malformed_groups_raise_instead_of_crashing(
    vec_groups: list[object], rec_groups: list[object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        search_native(vec_groups, rec_groups, 0.0, 0.0, 1_000.0, None)  # type: ignore[misc, arg-type]


def test_bad_arguments_raise() -> None:
    with pytest.raises(TypeError):
        search_native([], [], 0.0, 0.0, 1.0)  # type: ignore[misc, call-arg]
    with pytest.raises(ValueError, match="limit"):
        search_native([], [], 0.0, 0.0, 1.0, 0)  # type: ignore[misc]
    assert search_native([], [], 0.0, 0.0, 1.0, None) == []  # type: ignore[misc]


def _probe_levels(idx: GeohashIndex, lat: float, lon: float, radius: float) -> tuple[tuple[object, ...], ...]:
    """``idx``'s levels for the compiled scan, each cell overlapping the query's box, and one
    row and column of cells around it, holding one record at the query's centre whose id is
    (level bits, cell code): a scan then returns exactly the cells it visited. (Levels whose
    cells for the box would number thousands stay empty.)"""
    box = cap_bounds(lat, 180.0 if lon == -180.0 else lon, radius)
    centre = point_terms(lat, lon)
    specs = []
    for lv in idx._levels:  # noqa: SLF001 - the index's own level parameters
        r0, r1, ranges = lv.span(box)
        cols = {c for c0, c1 in ranges for c in range(c0 - 1, c1 + 2) if 0 <= c < lv.ncols}
        cells: dict[int, object] = {}
        if (r1 - r0 + 3) * len(cols) > 10_000:  # a level far too fine for this box: left empty,
            specs.append((lv.rows_per_deg, lv.cols_per_deg, lv.nrows, lv.ncols, lv.row_shift, lv.col_shift, cells))
            continue  # so choosing it would find nothing
        for row in range(max(r0 - 1, 0), min(r1 + 1, lv.nrows - 1) + 1):
            for col in cols:
                code = (SPREAD[row] << lv.row_shift) | (SPREAD[col] << lv.col_shift)
                cells[code] = ([unit_vector(centre)], [make_record(centre, (lv.bits, code))])
        specs.append((lv.rows_per_deg, lv.cols_per_deg, lv.nrows, lv.ncols, lv.row_shift, lv.col_shift, cells))
    return tuple(specs)


_GRID_QUERIES = [
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
    (78.2, 15.6),
    (-0.0001, -0.0001),
    (48.85, 2.35),
]


@pytest.mark.parametrize("radius", [1.0, 150.0, 5_000.0, 20_000.0, 50_000.0, 3_000_000.0, float("inf")])
def test_scan_levels_visits_exactly_the_cells_the_python_grid_finds(radius: float) -> None:
    rng = random.Random(11)
    queries = _GRID_QUERIES + [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(40)]
    for idx in (GeohashIndex(), GeohashIndex(levels=(5, 9, 12), max_cells=4)):
        for lat, lon in queries:
            lv, rows, scols = idx._grid(lat, 180.0 if lon == -180.0 else lon, radius)  # noqa: SLF001
            want = sorted((lv.bits, (SPREAD[row] << lv.row_shift) | col) for row in rows for col in scols)
            hits = scan_levels(_probe_levels(idx, lat, lon, radius), idx._max_cells, lat, lon, radius, None)  # noqa: SLF001
            assert sorted(bid for bid, _ in hits) == want, (lat, lon, radius)


def test_scan_levels_pages_as_the_python_scan_does() -> None:
    rng = random.Random(5)
    native, python = GeohashIndex(), GeohashIndex(native=False)
    for i in range(3_000):
        lat, lon = rng.uniform(-0.2, 0.2), (rng.uniform(-0.2, 0.2) + 360.0) % 360.0 - 180.0
        native.insert(i, lat, lon)
        python.insert(i, lat, lon)
    for lat, lon in [(0.0, 180.0), (0.0, -180.0), (0.1, 179.95), (-0.1, -179.9)]:
        first = native.page(lat, lon, 20_000.0, 25)
        assert first == python.page(lat, lon, 20_000.0, 25) and first.total > 25
        after = (first.hits[-1][1], first.hits[-1][0])
        assert native.page(lat, lon, 20_000.0, 25, after) == python.page(lat, lon, 20_000.0, 25, after)
        assert native.within(lat, lon, 20_000.0) == python.within(lat, lon, 20_000.0)


_CELLS: dict[int, object] = {}


@pytest.mark.parametrize(
    ("levels", "error"),
    [
        ([(1.0, 1.0, 2, 2, 0, 1, _CELLS)], TypeError),  # a list
        ((), TypeError),
        (((1.0, 1.0, 2, 2, 0, 1),), TypeError),  # no cells
        (((1.0, 1.0, 2, 2, 0, 1, []),), TypeError),
        ((("1", 1.0, 2, 2, 0, 1, _CELLS),), TypeError),
        (((1.0, 1.0, 0, 2, 0, 1, _CELLS),), ValueError),  # no rows
        (((1.0, 1.0, 2, 1 << 17, 0, 1, _CELLS),), ValueError),  # more columns than a code spreads
        (((1.0, 1.0, 2, 2, 2, 1, _CELLS),), ValueError),  # a shift of 2
        (((2 / 180, 2 / 360, 2, 2, 0, 1, {0: ([], [], [])}),), TypeError),  # a malformed cell
    ],
)
def test_scan_levels_rejects_malformed_levels(levels: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        scan_levels(levels, 4, 0.0, 0.0, 100_000.0, None)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- CellMap


def test_a_cell_map_behaves_as_a_dict_of_its_codes_through_growth_and_deletions() -> None:
    # Small key spaces make long probe runs, so deletions shift slots back across them (and
    # across the end of the table); large ones make the table grow and rehash.
    rng = random.Random(23)
    for space in (16, 300, 2**64):
        cells, want = CellMap(), {}
        for step in range(6000):
            code = rng.randrange(space) if space < 2**64 else rng.choice([rng.randrange(2**64), rng.randrange(64)])
            roll = rng.random()
            if roll < 0.5:
                cells[code] = want[code] = (bytearray(), [step])
            elif roll < 0.8:
                if code in want:
                    del cells[code], want[code]
                else:
                    with pytest.raises(KeyError):
                        del cells[code]
            else:
                assert cells.get(code) == want.get(code) and (code in cells) == (code in want)
                assert cells.get(code, "none") == want.get(code, "none")
            if step % 1000 == 999:
                assert len(cells) == len(want)
                assert sorted(cells.items()) == sorted(want.items()) and sorted(cells) == sorted(want)
                assert sorted(cells.keys()) == sorted(want.keys()) and len(cells.values()) == len(want)
                assert all(cells[c] is v for c, v in want.items())
        cells.clear()
        assert len(cells) == 0 and cells.get(1) is None and not cells.items()
        cells[3] = (bytearray(), [3])
        assert cells[3] == (bytearray(), [3])


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, "7", None])
def test_what_is_not_a_code_is_never_in_a_cell_map_and_cannot_be_filed(bad: object) -> None:
    cells = CellMap()
    cells[7] = (bytearray(), [])
    assert cells.get(bad) is None and bad not in cells and len(cells) == 1
    with pytest.raises(KeyError):
        cells[bad]  # type: ignore[index]
    with pytest.raises(KeyError):
        del cells[bad]  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cell code"):
        cells[bad] = (bytearray(), [])  # type: ignore[index]
    with pytest.raises(TypeError):
        CellMap({1: 2})  # type: ignore[call-arg]


def test_a_cell_map_releases_its_cells_and_its_cycles_are_collected() -> None:
    cells = CellMap()
    payload = [1, 2, 3]
    cells[1] = (bytearray(), payload)
    before = sys.getrefcount(payload)
    cells[1] = (bytearray(), [])  # replaced: the old cell is released
    assert sys.getrefcount(payload) == before - 1

    class Holder:
        pass

    loop, holder = CellMap(), Holder()
    loop[5] = (bytearray(), [loop, holder])
    ref = weakref.ref(holder)
    del loop, holder
    gc.collect()
    assert ref() is None


def test_native_geohash_levels_keep_cell_maps_and_python_ones_dicts() -> None:
    native, python = GeohashIndex(native=True), GeohashIndex(native=False)
    assert all(type(lv.cells) is CellMap for lv in native._levels)  # noqa: SLF001
    assert all(type(lv.cells) is dict for lv in python._levels)  # noqa: SLF001
    rng = random.Random(29)
    points = [(i, rng.uniform(40, 50), rng.uniform(0, 10)) for i in range(3000)]
    for idx in (native, python):
        idx.bulk_load(points)
    for bid, _, _ in points[:1000]:
        native.remove(bid)
        python.remove(bid)
    for _ in range(200):
        lat, lon = rng.uniform(40, 50), rng.uniform(0, 10)
        assert native.page(lat, lon, 50_000.0, 15) == python.page(lat, lon, 50_000.0, 15)
