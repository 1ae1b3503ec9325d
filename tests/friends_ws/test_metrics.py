"""The hot path's counters in Prometheus form, and the sampled delivery lag (no server)."""

from __future__ import annotations

from friends_ws.metrics import LAG_BUCKETS, LAG_SAMPLE_EVERY, Stats, StatsCollector, sample_delivery_lag
from geo_common.presence import Left, Location, encode_left, encode_location

NOW_MS = 1_800_000_000_000


def lag_buckets(stats: Stats) -> dict[str, float]:
    family = next(m for m in StatsCollector(stats).collect() if m.name == "geo_friends_delivery_lag_seconds")
    return {s.labels.get("le", s.name): s.value for s in family.samples}


def test_a_sampled_location_counts_its_age_in_the_first_bucket_that_holds_it() -> None:
    stats = Stats()
    sample_delivery_lag(stats, encode_location(Location(7, 48.85, 2.35, NOW_MS - 30)), NOW_MS)  # 30 ms
    sample_delivery_lag(stats, encode_location(Location(8, 48.85, 2.35, NOW_MS - 2)), NOW_MS)  # 2 ms
    buckets = lag_buckets(stats)
    assert buckets["0.001"] == 0 and buckets["0.0025"] == 1 and buckets["0.025"] == 1 and buckets["0.05"] == 2
    assert buckets["+Inf"] == 2 and buckets["geo_friends_delivery_lag_seconds_count"] == 2
    assert abs(buckets["geo_friends_delivery_lag_seconds_sum"] - 0.032) < 1e-9


def test_departures_garbage_and_clocks_ahead() -> None:
    stats = Stats()
    sample_delivery_lag(stats, encode_left(Left(7, "offline")), NOW_MS)
    sample_delivery_lag(stats, b"not json", NOW_MS)
    assert lag_buckets(stats)["+Inf"] == 0
    # The sender's clock is ahead: counted as no lag rather than dropped or negative.
    sample_delivery_lag(stats, encode_location(Location(7, 48.85, 2.35, NOW_MS + 500)), NOW_MS)
    buckets = lag_buckets(stats)
    assert buckets[str(LAG_BUCKETS[0])] == 1 and buckets["geo_friends_delivery_lag_seconds_sum"] == 0


def test_sampling_is_a_power_of_two() -> None:
    assert LAG_SAMPLE_EVERY & (LAG_SAMPLE_EVERY - 1) == 0


def test_counters_are_exported_with_total() -> None:
    stats = Stats()
    stats.deliveries, stats.errors["invalid_json"] = 5, 2
    families = {m.name: m for m in StatsCollector(stats).collect()}
    assert families["geo_friends_deliveries"].type == "counter"
    assert [(s.name, s.value) for s in families["geo_friends_deliveries"].samples] == [
        ("geo_friends_deliveries_total", 5)
    ]
    assert [(s.labels, s.value) for s in families["geo_friends_errors"].samples] == [({"code": "invalid_json"}, 2)]
