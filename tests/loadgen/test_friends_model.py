"""The friends scenario's pure parts: graphs, movement, and the delivery ledger."""

from __future__ import annotations

import random

import pytest

from geo_index import haversine_m
from loadgen.graph import GraphKind, build_population
from loadgen.ledger import Ledger
from loadgen.movement import COMMUTE_DISTANCE_M, WALK_SPEED_MPS, Mover, Movement
from loadgen.stats import Recorder


def test_communities_are_cliques_of_nearby_users() -> None:
    pop = build_population(63, 20, GraphKind.COMMUNITIES, first_id=100, seed=1)
    assert [u.user_id for u in pop.users] == list(range(100, 163))
    by_community: dict[int, list[int]] = {}
    for u in pop.users:
        by_community.setdefault(u.community, []).append(u.user_id)
    assert sorted(len(m) for m in by_community.values()) == [21, 21, 21]
    homes = {u.user_id: u.home for u in pop.users}
    for members in by_community.values():
        for uid in members:
            assert pop.friends[uid] == frozenset(members) - {uid}
            # Everyone starts within a few tens of km of their community (mean spread 2 km).
            assert all(haversine_m(*homes[uid], *homes[f]) < 60_000 for f in pop.friends[uid])
    assert len(pop.edges()) == 3 * 21 * 20 // 2


def test_random_graph_is_mutual_with_the_mean_degree() -> None:
    pop = build_population(500, 10, GraphKind.RANDOM, first_id=1, seed=2)
    degrees = [len(fs) for fs in pop.friends.values()]
    assert sum(degrees) == 500 * 10
    for a, fs in pop.friends.items():
        assert a not in fs
        assert all(a in pop.friends[b] for b in fs)
    assert pop == build_population(500, 10, GraphKind.RANDOM, first_id=1, seed=2)


@pytest.mark.parametrize(("n", "f"), [(1, 1), (5, 0), (5, 5)])
def test_population_bad_sizes(n: int, f: int) -> None:
    with pytest.raises(ValueError):
        build_population(n, f, GraphKind.RANDOM, first_id=1, seed=0)


def test_movement_models_move_as_far_as_they_say() -> None:
    home = (60.0, 179.99)  # steps cross the antimeridian
    static = Mover(Movement.STATIC, home, random.Random(1))
    assert static.step(30) == home and static.max_step_m(30) == 0
    walk = Mover(Movement.RANDOM_WALK, home, random.Random(1))
    for _ in range(20):
        before = walk.position
        after = walk.step(10)
        assert haversine_m(*before, *after) == pytest.approx(WALK_SPEED_MPS * 10, rel=1e-6)
        assert -180 <= after[1] < 180
    commute = Mover(Movement.COMMUTE, home, random.Random(1))
    farthest = max(haversine_m(*home, *commute.step(30)) for _ in range(100))
    assert farthest == pytest.approx(COMMUTE_DISTANCE_M, rel=0.02)


def test_ledger_counts_delivered_lost_duplicates_and_reordered() -> None:
    rec = Recorder()
    ledger = Ledger(rec, settle_after_s=5.0)
    ledger.on_send(1, 1000, 1, intended=10.0, sent=10.001, expected=[2, 3])
    ledger.on_send(1, 2000, 2, intended=11.0, sent=11.0, expected=[2, 3])
    ledger.on_receive(2, 1, 1000, now=10.021, start=0.0)
    ledger.on_receive(2, 1, 1000, now=10.03, start=0.0)  # the same update again
    ledger.on_receive(2, 1, 2000, now=11.01, start=0.0)
    ledger.on_receive(3, 1, 2000, now=11.02, start=0.0)
    ledger.on_receive(3, 1, 1000, now=11.03, start=0.0)  # older than what 3 already has
    ledger.on_receive(3, 9, 5, now=11.04, start=0.0)  # never sent in this run
    ledger.settle(12.0)
    assert rec.counters["lost"] == 0  # nothing old enough yet
    ledger.settle(20.0)
    assert rec.counters["expected"] == 4
    assert rec.counters["delivered"] == 3
    assert rec.counters["duplicates"] == 1
    assert rec.counters["reordered"] == 1
    assert rec.counters["unmatched"] == 1
    assert rec.counters["lost"] == 1  # user 3 never got update 1 in order
    latency = rec.histograms["latency"]
    assert latency.get_total_count() == 3
    assert latency.get_min_value() == pytest.approx(10_000, rel=0.01)  # 10 ms from the intended time, in us
