"""The friends scenario's phones, their pure parts: pace, resume, uploads' points, placement,
and what a client makes of the server's frames (the inbox, without a socket).

Fixed known values: the server side they speak to is tested in tests/friends_ws, and the
whole against the real services in test_phones_against_services.py.
"""

from __future__ import annotations

import random

import orjson
import pytest

from geo_index import haversine_m
from loadgen.catalog import catalog_for
from loadgen.freshness import PositionAges
from loadgen.graph import FAR_M, GraphKind, build_population
from loadgen.held import HeldView
from loadgen.inbox import Inbox
from loadgen.ledger import Ledger
from loadgen.movement import Movement, Mover
from loadgen.pacing import drop_times, next_send_at
from loadgen.phone import Client
from loadgen.stats import Recorder
from loadgen.thresholds import parse_thresholds
from loadgen.uploads import Point, PointLog, uploads_url


def test_the_next_location_is_due_an_interval_after_the_last_or_at_once() -> None:
    assert next_send_at(100.0, 30.0, now=110.0) == 130.0
    # A pace of 2 s after 20 s at the slow pace: 8 s overdue, so at once.
    assert next_send_at(100.0, 2.0, now=120.0) == 120.0
    # A longer pace pushes the next send back.
    assert next_send_at(100.0, 300.0, now=101.0) == 400.0


def test_each_client_drops_every_period_from_a_phase_of_its_own() -> None:
    times = drop_times(10.0, 5.0, 41.0, random.Random(3))
    assert 5.0 <= times[0] < 15.0
    assert all(b - a == pytest.approx(10.0) for a, b in zip(times, times[1:]))
    assert times[-1] < 41.0 <= times[-1] + 10.0
    assert drop_times(10.0, 5.0, 5.0, random.Random(3)) == []


def test_the_held_view_says_what_to_resume_with() -> None:
    held = HeldView()
    assert held.resume() is None  # nothing held yet
    held.on_init({"type": "init", "radius_m": 1609.3, "at": 5_000, "friends": [{"user_id": 43, "updated_at": 4_000}]})
    held.on_location(44, 6_000)
    held.on_location(43, 5_500)
    held.on_left(44)
    assert held.resume() == {"at": 6_000, "radius_m": 1609.3, "friends": {"43": 5_500}}
    held.on_resumed({"type": "resumed", "radius_m": 800.0, "at": 9_000, "sharing": {}})
    assert held.resume() == {"at": 9_000, "radius_m": 800.0, "friends": {"43": 5_500}}
    held.on_location(43, 7_000)  # older than the newest server time seen: at stays
    assert held.resume() == {"at": 9_000, "radius_m": 800.0, "friends": {"43": 7_000}}


def test_an_init_without_at_cannot_be_resumed() -> None:
    held = HeldView()
    held.on_init({"type": "init", "radius_m": 8047.0, "friends": [{"user_id": 43, "updated_at": 4_000}]})
    assert held.resume() is None


def test_position_ages_are_the_gaps_between_refreshes_while_in_view() -> None:
    ages = PositionAges()
    ages.start(1, [2, 3], at=10.0)
    assert ages.refresh(1, 2, at=12.0) == pytest.approx(2.0)  # since init
    assert ages.refresh(1, 2, at=15.5) == pytest.approx(3.5)
    assert ages.refresh(1, 4, at=16.0) is None  # comes into view
    ages.left(1, 3)
    assert ages.refresh(1, 3, at=17.0) is None  # back into view: no gap across the absence
    assert sorted(ages.held()) == [(1, 2, 15.5), (1, 3, 17.0), (1, 4, 16.0)]
    ages.forget(1)
    assert ages.refresh(1, 2, at=30.0) is None  # a new connection counts from its own view


def test_the_point_log_keeps_what_is_not_acknowledged_newest_last() -> None:
    log = PointLog(max_points=3)
    for seq in range(1, 6):
        log.record(Point(seq, 1.0, 2.0, 1_000 + seq))
    assert [p.seq for p in log.batch()] == [3, 4, 5]  # the newest three
    log.acknowledge(4)
    assert [p.seq for p in log.batch()] == [5]
    assert log.batch()[0].as_json() == {"seq": 5, "latitude": 1.0, "longitude": 2.0, "timestamp": 1_005}
    log.acknowledge(9)
    assert len(log) == 0


def test_uploads_go_to_the_websocket_tiers_http_port() -> None:
    assert uploads_url("ws://127.0.0.1:8081/") == "http://127.0.0.1:8081/v1/me/locations"
    assert uploads_url("wss://geo.example.com") == "https://geo.example.com/v1/me/locations"


def test_near_share_scatters_the_other_communities_out_of_each_others_range() -> None:
    pop = build_population(210, 20, GraphKind.COMMUNITIES, first_id=1, seed=4, near_share=0.2)
    homes = {u.user_id: u.home for u in pop.users}
    near = scattered = 0
    for uid, friends in pop.friends.items():
        distances = [haversine_m(*homes[uid], *homes[f]) for f in friends]
        if max(distances) < 60_000:
            near += 1
        else:
            # Homes are within tens of km of their place: far apart less two spreads.
            assert min(distances) > FAR_M - 100_000
            scattered += 1
    assert near % 21 == 0 and scattered % 21 == 0 and near + scattered == 210
    assert 0 < near < scattered  # about a fifth near


def test_near_share_one_is_the_population_as_before() -> None:
    assert build_population(63, 20, GraphKind.COMMUNITIES, first_id=1, seed=1) == build_population(
        63, 20, GraphKind.COMMUNITIES, first_id=1, seed=1, near_share=1.0
    )


@pytest.mark.parametrize(("kind", "share"), [(GraphKind.COMMUNITIES, 1.5), (GraphKind.RANDOM, 0.5)])
def test_near_share_out_of_range_or_without_communities_is_refused(kind: GraphKind, share: float) -> None:
    with pytest.raises(ValueError, match="near-share"):
        build_population(50, 5, kind, first_id=1, seed=0, near_share=share)


class OneRun:
    """The run an inbox reads: two clients in range of each other (a narrow seam, no socket)."""

    def __init__(self, clients: list[Client], *, in_range: bool = True) -> None:
        self.recorder = Recorder()
        self.clients = {c.user_id: c for c in clients}
        self.start, self.end = 0.0, 100.0
        self._in_range = in_range

    def in_range(self, receiver: Client, sender: Client) -> bool:
        return self._in_range


def phone(user_id: int) -> Client:
    return Client(user_id, "token", Mover(Movement.STATIC, (0.0, 0.0), random.Random(1)), frozenset(), 5.0)


def frame(**fields: object) -> bytes:
    return orjson.dumps(fields)


def test_a_paced_client_takes_the_interval_of_each_pace_frame_and_is_woken() -> None:
    a = phone(1)
    run = OneRun([a])
    inbox = Inbox(run, Ledger(run.recorder), PositionAges(), paced=True)
    inbox.on_frame(a, frame(type="pace", interval_s=30), 1.0, 0.0)
    assert a.interval_s == 30.0 and a.wake.is_set()
    unpaced = phone(2)
    Inbox(run, Ledger(run.recorder), PositionAges(), paced=False).on_frame(
        unpaced, frame(type="pace", interval_s=30), 1.0, 0.0
    )
    assert unpaced.interval_s == 5.0 and not unpaced.wake.is_set()
    assert run.recorder.counters["pace_frames"] == 2


def test_the_inbox_keeps_the_view_to_resume_with_and_records_the_ages_in_range() -> None:
    a, b = phone(1), phone(2)
    run = OneRun([a, b])
    inbox = Inbox(run, Ledger(run.recorder), PositionAges(), paced=True)
    inbox.on_frame(a, frame(type="init", radius_m=1000.0, at=5_000, friends=[], sharing={}), 1.0, 0.9)
    assert a.ready and a.radius_m == 1000.0
    inbox.on_frame(a, frame(type="friend_location", user_id=2, updated_at=6_000, sent_at=None), 2.0, 0.9)
    inbox.on_frame(a, frame(type="friend_location", user_id=2, updated_at=8_000, sent_at=None), 4.5, 0.9)
    assert a.held.resume() == {"at": 8_000, "radius_m": 1000.0, "friends": {"2": 8_000}}
    ages = run.recorder.histograms["position_age"]
    assert ages.get_total_count() == 1 and ages.get_max_value() == pytest.approx(2_500_000, rel=0.01)  # us
    # A resume: the view is kept, and its friends count from the resumed frame.
    a.ready, a.resuming = False, True
    inbox.on_frame(a, frame(type="resumed", radius_m=1000.0, at=9_000, sharing={}), 10.0, 9.9)
    inbox.on_frame(a, frame(type="friend_location", user_id=2, updated_at=9_500, sent_at=None), 11.0, 9.9)
    assert a.ready and run.recorder.counters["resumes"] == 1
    assert run.recorder.histograms["position_age"].get_total_count() == 2
    inbox.on_frame(a, frame(type="friend_left", user_id=2, reason="out_of_range"), 12.0, 9.9)
    assert a.held.resume() == {"at": 9_500, "radius_m": 1000.0, "friends": {}}
    # A fresh init where a resume was asked for is counted.
    a.resuming = True
    inbox.on_frame(a, frame(type="init", radius_m=1000.0, at=20_000, friends=[], sharing={}), 20.0, 19.9)
    assert run.recorder.counters["resume_refused"] == 1


def test_gaps_of_friends_out_of_range_are_not_ages_of_what_a_map_shows() -> None:
    a, b = phone(1), phone(2)
    run = OneRun([a, b], in_range=False)
    inbox = Inbox(run, Ledger(run.recorder), PositionAges(), paced=True)
    inbox.on_frame(a, frame(type="init", radius_m=1000.0, at=5_000, friends=[], sharing={}), 1.0, 0.9)
    for t in (2.0, 30.0):
        inbox.on_frame(a, frame(type="friend_location", user_id=2, updated_at=int(t * 1000), sent_at=None), t, 0.9)
    assert "position_age" not in run.recorder.histograms


def test_rules_may_hold_a_run_to_the_age_of_positions_and_the_resumes() -> None:
    rules = parse_thresholds("position_age.max<2.5s,resume_refused==0,upload_status_429==0", catalog_for("friends"))
    assert [(r.measure.kind, r.measure.name, r.value) for r in rules] == [
        ("latency", "position_age", 2500.0),
        ("counter", "resume_refused", 0.0),
        ("counter", "upload_status_429", 0.0),
    ]
