"""The load generator's pure parts: schedules, histograms and merging, thresholds, points."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from geo_index import haversine_m
from loadgen.points import PointsError, query_points
from loadgen.schedule import Arrivals, intended_offsets
from loadgen.stages import Profile
from loadgen.search import search_target
from loadgen.stats import Recorder, summarize
from loadgen.verify import GroundTruth


def test_constant_schedule_is_evenly_spaced() -> None:
    offsets = list(intended_offsets(Profile.constant(4, 2.0)))
    assert offsets == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


def test_poisson_schedule_keeps_the_mean_rate_and_is_seeded() -> None:
    a = list(intended_offsets(Profile.constant(1000, 10.0), arrivals=Arrivals.POISSON, seed=3))
    b = list(intended_offsets(Profile.constant(1000, 10.0), arrivals=Arrivals.POISSON, seed=3))
    assert a == b
    assert 9_500 < len(a) < 10_500
    assert all(x < y for x, y in zip(a, a[1:]))
    assert a[-1] < 10.0


@pytest.mark.parametrize(("rate", "duration"), [(0, 1), (-1, 1), (1, 0), (math.nan, 1)])
def test_schedule_refuses_non_positive_values(rate: float, duration: float) -> None:
    with pytest.raises(ValueError):
        Profile.constant(rate, duration)


def test_merged_recorders_equal_one_recorder() -> None:
    one, left, right = Recorder(), Recorder(), Recorder()
    for i in range(1, 2001):
        latency = i / 1000.0  # 1 ms .. 2 s
        one.complete(i % 7, latency, error=i % 100 == 0)
        one.count("status_200")
        half = left if i % 2 else right
        half.complete(i % 7, latency, error=i % 100 == 0)
        half.count("status_200")
    merged = Recorder.from_dict(left.to_dict())
    merged.merge(Recorder.from_dict(right.to_dict()))
    assert summarize(merged.histograms["latency"]) == summarize(one.histograms["latency"])
    assert merged.counters == one.counters
    assert {s: (b.count, b.errors) for s, b in merged.series.items()} == {
        s: (b.count, b.errors) for s, b in one.series.items()
    }


def test_summary_percentiles_in_milliseconds() -> None:
    rec = Recorder()
    for ms in range(1, 101):
        rec.complete(0, ms / 1000.0)
    s = summarize(rec.histograms["latency"])
    assert s["count"] == 100
    assert s["p50"] == pytest.approx(50.0, rel=0.01)
    assert s["p99"] == pytest.approx(99.0, rel=0.01)
    assert s["max"] == pytest.approx(100.0, rel=0.01)


def test_points_sources(tmp_path: Path) -> None:
    geonames = query_points("geonames", 50, seed=1)
    assert len(geonames) == 50 and geonames == query_points("geonames", 50, seed=1)
    uniform = query_points("uniform", 2000, seed=1)
    assert all(-90 <= lat <= 90 and -180 <= lon <= 180 for lat, lon in uniform)
    # Uniform on the sphere: about half the points within 30 degrees of the equator.
    assert 0.45 < sum(abs(lat) < 30 for lat, _ in uniform) / 2000 < 0.55
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("lat,lon\n1.5,2.5\n-3,4\n")
    assert query_points(str(csv_file), 3) == [(1.5, 2.5), (-3.0, 4.0), (1.5, 2.5)]


@pytest.mark.parametrize("content", ["lat,lon\n", "1,x\n", "91,0\n"])
def test_bad_points_files(tmp_path: Path, content: str) -> None:
    f = tmp_path / "p.csv"
    f.write_text(content)
    with pytest.raises(PointsError):
        query_points(str(f), 1)
    with pytest.raises(PointsError):
        query_points(str(tmp_path / "missing.csv"), 1)


def test_ground_truth_judges_recall_order_and_total() -> None:
    # Four places north of the origin at 10, 20, 20 and 30 m (two tied), one far away.
    step = 10.0 / 111_195.0
    places = [(step, 0.0), (2 * step, 0.0), (2 * step, 0.0), (3 * step, 0.0), (1.0, 0.0)]
    truth = GroundTruth(places)
    exact = [(haversine_m(0.0, 0.0, lat, lon), (lat, lon)) for lat, lon in places[:4]]

    def answer(hits: list[tuple[float, tuple[float, float]]], total: int = 4) -> dict[str, object]:
        return {"total": total, "businesses": [{"distance_m": d, "latitude": p[0], "longitude": p[1]} for d, p in hits]}

    assert [p for _, p in truth.within(0.0, 0.0, 35.0)] == places[:4]
    assert truth.check(0.0, 0.0, 35.0, 10, answer(exact)).ok
    # A page of 2 cut between the tied places: either one fills it.
    assert truth.check(0.0, 0.0, 35.0, 2, answer(exact[:2])).ok
    assert truth.check(0.0, 0.0, 35.0, 2, answer([exact[0], exact[2]])).ok
    missing = truth.check(0.0, 0.0, 35.0, 10, answer(exact[:3]))
    assert (missing.expected, missing.found, missing.ok) == (4, 3, False)
    swapped = truth.check(0.0, 0.0, 35.0, 10, answer([exact[1], exact[0], *exact[2:]]))
    assert swapped.found == 4 and not swapped.order_ok and not swapped.ok
    far = (haversine_m(0.0, 0.0, 1.0, 0.0), (1.0, 0.0))
    wrong = truth.check(0.0, 0.0, 35.0, 10, answer([*exact, far], total=5))
    assert wrong.listed == 5 and not wrong.total_ok and not wrong.ok
    assert not truth.check(0.0, 0.0, 35.0, 10, answer(exact, total=3)).total_ok
    fibbed = truth.check(0.0, 0.0, 35.0, 10, answer([(d + 1.0, p) for d, p in exact]))
    assert not fibbed.order_ok


@pytest.mark.parametrize(
    ("lat", "lon", "radius"),
    [(48.8566, 2.3522, 5000.0), (-33.8688, -151.2093, 50.5), (1e-05, -0.0, 1.0), (89.99999999999999, 180.0, 1e6)],
)
def test_search_targets_are_what_urlencode_would_make(lat: float, lon: float, radius: float) -> None:
    from urllib.parse import parse_qs, urlencode, urlsplit

    target = search_target(lat, lon, radius, 20)
    query = urlencode({"latitude": repr(lat), "longitude": repr(lon), "radius": f"{radius:g}", "limit": 20})
    assert target == f"/v1/search/nearby?{query}"
    parsed = parse_qs(urlsplit(target).query)
    assert float(parsed["latitude"][0]) == lat and float(parsed["longitude"][0]) == lon  # exact, sign of -0.0 too
    assert float(parsed["radius"][0]) == radius  # 1e+06: the + escaped, not read as a space


def test_a_second_of_results_keeps_one_histogram_however_many_complete_in_it() -> None:
    recorder = Recorder()
    for i in range(100):
        recorder.complete(3, 0.001 * (i + 1), error=i % 10 == 0)
    bucket = recorder.series[3]
    assert (bucket.count, bucket.errors, bucket.latency.get_total_count()) == (100, 10, 100)
    assert list(recorder.series) == [3]
