"""The compiled scan (geo_index/_cscan.c): built here, used by default, and identical to the
Python scan it replaces, including on the inputs only it sees (numpy buffers, bad groups)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from geo_index import GeohashIndex, QuadTree, S2Index, haversine_m
from geo_index._scan import HAVE_NATIVE, make_record, search, search_native, unit_vector, vec_array
from geo_index.distance import point_terms
from geo_index.errors import InvalidOption
from tests.geo_index.strategies import oracle


def _groups(points: list[tuple[float, float]], size: int) -> tuple[list[list[tuple[float, float, float]]], list[list[tuple[float, float, float, int]]]]:
    vecs = [unit_vector(point_terms(la, lo)) for la, lo in points]
    recs = [make_record(point_terms(la, lo), i) for i, (la, lo) in enumerate(points)]
    return [vecs[i : i + size] for i in range(0, len(vecs), size)], [recs[i : i + size] for i in range(0, len(recs), size)]


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
def test_malformed_groups_raise_instead_of_crashing(vec_groups: list[object], rec_groups: list[object], error: type[Exception]) -> None:
    with pytest.raises(error):
        search_native(vec_groups, rec_groups, 0.0, 0.0, 1_000.0, None)  # type: ignore[misc, arg-type]


def test_bad_arguments_raise() -> None:
    with pytest.raises(TypeError):
        search_native([], [], 0.0, 0.0, 1.0)  # type: ignore[misc, call-arg]
    with pytest.raises(ValueError, match="limit"):
        search_native([], [], 0.0, 0.0, 1.0, 0)  # type: ignore[misc]
    assert search_native([], [], 0.0, 0.0, 1.0, None) == []  # type: ignore[misc]


def test_scan_grid_looks_up_every_row_and_column_code() -> None:
    from geo_index._scan import scan_grid

    pts = [(0.001 * i, 0.001 * i) for i in range(12)]
    vg, rg = _groups(pts, 3)
    cells = {code: (v, r) for code, v, r in zip((0b00, 0b01, 0b10, 0b11), vg, rg)}
    want = search(vg, rg, 0.0, 0.0, 5_000.0, None)
    assert len(want) == 12
    assert scan_grid(cells, [0b00, 0b10], [0b00, 0b01], 0.0, 0.0, 5_000.0, None) == want  # type: ignore[misc]
    # Codes with no cell are skipped; only the cells asked for are scanned.
    assert scan_grid(cells, [0b10, 0b100], [0b01], 0.0, 0.0, 5_000.0, None) == search(vg[3:], rg[3:], 0.0, 0.0, 5_000.0, None)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cells", "srows", "error"),
    [
        ([], [0], TypeError),
        ({0: ([], [], [])}, [0], TypeError),
        ({0: ([], [])}, [-1], OverflowError),
        ({0: ([], [])}, ["0"], TypeError),
    ],
)
def test_scan_grid_rejects_malformed_input(cells: object, srows: list[object], error: type[Exception]) -> None:
    from geo_index._scan import scan_grid

    with pytest.raises(error):
        scan_grid(cells, srows, [0], 0.0, 0.0, 1.0, None)  # type: ignore[misc, arg-type]
