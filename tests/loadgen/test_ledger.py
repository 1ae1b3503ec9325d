"""The friends ledger's accounting, against fixed sequences of sends, receipts and drops.

Every expected delivery must end as exactly one of delivered, lost or cut off, and nothing
else may count as done: these tests write out what each arrival is and check the counters.
"""

from __future__ import annotations

import pytest

from loadgen.sockets import BACKOFF_FIRST_S, BACKOFF_MAX_S, backoff_s
from loadgen.ledger import Ledger, accounting, describe
from loadgen.report import wall_phases
from loadgen.stats import Recorder

A, B, C = 1, 2, 3  # users


def ledger() -> tuple[Ledger, Recorder]:
    rec = Recorder()
    return Ledger(rec, settle_after_s=5.0), rec


def counts(rec: Recorder) -> dict[str, int]:
    return {k: v for k, v in rec.counters.items() if v}


def balanced(rec: Recorder) -> bool:
    c = rec.counters
    return c["expected"] == c["delivered"] + c["lost"] + c["cut_off"]


def test_only_expected_first_arrivals_are_done_and_the_rest_is_counted_apart() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B])  # C is inside the guard band
    led.on_receive(B, A, 1000, now=10.01, start=0.0)
    led.on_receive(C, A, 1000, now=10.02, start=0.0)
    led.settle(100.0)
    assert counts(rec) == {"updates_sent": 1, "expected": 1, "delivered": 1, "unjudged": 1}
    assert sum(b.count for b in rec.series.values()) == 1  # done: B's delivery only
    assert rec.histograms["latency"].get_total_count() == 1


def test_the_same_position_twice_in_view_is_a_duplicate_and_after_a_leave_a_resync() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B])
    led.on_receive(B, A, 1000, now=10.01, start=0.0)
    led.on_receive(B, A, 1000, now=10.02, start=0.0)  # sent twice while B shows A
    led.on_left(B, A)
    led.on_receive(B, A, 1000, now=10.03, start=0.0)  # A back in B's view at the same position
    led.settle(100.0)
    assert (rec.counters["delivered"], rec.counters["duplicates"], rec.counters["resync"]) == (1, 1, 1)
    assert balanced(rec)


def test_after_a_reconnect_a_position_the_receiver_had_is_a_resync_not_done() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B])
    led.on_receive(B, A, 1000, now=10.01, start=0.0)
    led.on_disconnect(B, now=11.0)
    led.on_receive(B, A, 1000, now=11.5, start=0.0)  # re-sent on B's new connection
    led.settle(100.0)
    assert counts(rec) == {"updates_sent": 1, "expected": 1, "delivered": 1, "resync": 1}


def test_a_position_shown_in_init_is_held_so_sending_it_again_is_a_duplicate() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[])  # B not online yet
    led.on_init(B, [(A, 1000), (C, None)])
    led.on_receive(B, A, 1000, now=10.5, start=0.0)
    assert rec.counters["duplicates"] == 1 and rec.counters["delivered"] == 0


def test_expected_deliveries_end_as_delivered_lost_or_cut_off_by_a_drop() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B, C])
    led.on_disconnect(C, now=10.5)  # C's connection drops before it arrives: cut off
    led.on_receive(C, A, 1000, now=11.0, start=0.0)  # on C's next connection: not the expected one
    led.on_send(A, 2000, 2, intended=12.0, sent=12.0, expected=[B, C])
    led.on_receive(B, A, 2000, now=12.01, start=0.0)
    led.on_receive(C, A, 2000, now=12.02, start=0.0)
    led.settle(100.0, everything=True)
    c = rec.counters
    assert (c["expected"], c["delivered"], c["lost"], c["cut_off"], c["unjudged"]) == (4, 2, 1, 1, 1)
    assert balanced(rec)


def test_what_a_sender_sent_before_its_connection_dropped_is_cut_off_not_lost() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B, C])
    led.on_disconnect(A, now=10.001)  # the frame may never have reached the server
    led.on_send(A, 2000, 2, intended=12.0, sent=12.0, expected=[B])  # on A's new connection
    led.settle(100.0, everything=True)
    assert (rec.counters["cut_off"], rec.counters["lost"]) == (2, 1)
    assert balanced(rec)


def test_older_positions_and_unknown_ones_are_reordered_and_unmatched() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B])
    led.on_send(A, 2000, 2, intended=11.0, sent=11.0, expected=[B])
    led.on_receive(B, A, 2000, now=11.01, start=0.0)
    led.on_receive(B, A, 1000, now=11.02, start=0.0)
    led.on_receive(B, C, 5, now=11.03, start=0.0)
    led.settle(100.0)
    assert (rec.counters["reordered"], rec.counters["unmatched"], rec.counters["lost"]) == (1, 1, 1)


def test_settling_waits_for_updates_to_age() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B])
    led.settle(14.0)
    assert rec.counters["lost"] == 0
    led.settle(15.5)
    assert rec.counters["lost"] == 1
    # Which one, for the report (error_samples).
    assert rec.samples["lost"] == ["update 1 of user 1 to user 2: not arrived 5.500 s after it was sent"]


def test_accounting_and_its_line_say_what_done_of_expected_counts() -> None:
    assert accounting({"errors": 3}) is None  # a run that sent nothing: no deliveries block
    figures = accounting({"updates_sent": 10, "expected": 30, "delivered": 27, "lost": 1, "cut_off": 2, "resync": 4})
    assert figures is not None
    assert figures["expected"] == figures["delivered"] + figures["lost"] + figures["cut_off"]
    line = describe(figures)
    assert line.startswith("deliveries: expected 30 (each of 10 updates sent x friends then online")
    assert "= delivered 27 + lost 1 + cut off by a dropped connection 2;" in line
    assert "resync 4, duplicates 0" in line


def test_reconnection_backoff_doubles_to_its_cap() -> None:
    waits = [backoff_s(n) for n in range(1, 9)]
    assert waits[0] == BACKOFF_FIRST_S
    assert all(b == min(BACKOFF_MAX_S, 2 * a) for a, b in zip(waits, waits[1:]))
    assert waits[-1] == BACKOFF_MAX_S


def test_wall_time_is_the_phases_the_options_ask_for_and_the_rest() -> None:
    phases = wall_phases(9.5, {"ramp_s": 1.0, "duration_s": 4, "drain_s": 2.0, "users": 30})
    assert phases == {"ramp_s": 1.0, "duration_s": 4.0, "drain_s": 2.0, "other_s": pytest.approx(2.5)}
    assert wall_phases(3.2, {"duration_s": 3.0, "rate": 100.0}) == {"duration_s": 3.0, "other_s": pytest.approx(0.2)}


def balanced_with_superseded(rec: Recorder) -> bool:
    c = rec.counters
    return c["expected"] == c["delivered"] + c["lost"] + c["cut_off"] + c["superseded"]


def test_a_receiver_that_resumes_is_owed_the_newest_position_only() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B])  # on its way when B drops
    led.on_disconnect(B, now=10.001, resumes=True)
    led.on_send(A, 2000, 2, intended=11.0, sent=11.0, expected=[], owed_to=[B])  # supersedes update 1
    led.on_send(A, 3000, 3, intended=12.0, sent=12.0, expected=[], owed_to=[B])  # supersedes update 2
    led.on_resumed(B, now=12.5)
    led.on_receive(B, A, 3000, now=12.51, start=0.0)  # the newest, after the resume: delivered
    led.settle(100.0, everything=True)
    assert counts(rec) == {"updates_sent": 3, "expected": 3, "delivered": 1, "superseded": 2}
    assert balanced_with_superseded(rec)
    assert "latency" not in rec.histograms  # its latency is the time away: not recorded


def test_what_is_owed_is_kept_past_settling_until_the_receiver_is_back() -> None:
    led, rec = ledger()
    led.on_away(B, now=9.0)  # B went to the background: no drop
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[], owed_to=[B])
    led.settle(40.0)  # 30 s later B is still away: nothing settled, and the update still matches
    assert rec.counters["lost"] == 0
    led.on_resumed(B, now=41.0)
    led.on_receive(B, A, 1000, now=41.01, start=0.0)
    led.settle(100.0, everything=True)
    assert (rec.counters["delivered"], rec.counters["lost"], rec.counters["unmatched"]) == (1, 0, 0)


def test_an_owed_position_missing_after_the_resume_is_lost_and_one_sent_again_a_duplicate() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B])
    led.on_send(C, 1500, 1, intended=10.0, sent=10.0, expected=[B])
    led.on_receive(B, C, 1500, now=10.01, start=0.0)
    led.on_disconnect(B, now=10.5, resumes=True)
    led.on_resumed(B, now=11.0)
    led.on_receive(B, C, 1500, now=11.01, start=0.0)  # held already: the resume must not send it
    led.settle(15.0)
    assert rec.counters["lost"] == 0  # not yet settle_after_s since the resume
    led.settle(16.5)
    assert (rec.counters["lost"], rec.counters["duplicates"], rec.counters["delivered"]) == (1, 1, 1)
    assert rec.samples["lost"] == ["update 1 of user 1 to user 2: owed after the resume, not arrived 5.500 s after it"]
    assert balanced_with_superseded(rec)


def test_a_fresh_init_instead_of_a_resume_cuts_off_what_was_owed() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B])
    led.on_disconnect(B, now=10.5, resumes=True)
    led.on_init(B, [(A, None)])
    led.settle(100.0, everything=True)
    assert (rec.counters["cut_off"], rec.counters["lost"]) == (1, 0)


def test_an_undelivered_update_overtaken_before_the_drop_is_lost_at_once() -> None:
    led, rec = ledger()
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B])
    led.on_send(A, 2000, 2, intended=11.0, sent=11.0, expected=[B])
    led.on_receive(B, A, 2000, now=11.01, start=0.0)
    led.on_disconnect(B, now=12.0, resumes=True)
    led.on_resumed(B, now=12.1)
    led.settle(100.0, everything=True)
    assert (rec.counters["lost"], rec.counters["delivered"], rec.counters["superseded"]) == (1, 1, 0)
    assert rec.samples["lost"] == [
        "update 1 of user 1 to user 2: update 2 arrived first; the receiver's socket dropped 2.000 s after"
    ]


def test_an_update_overtaken_after_its_sender_dropped_is_cut_off_not_lost() -> None:
    rec = Recorder()
    led = Ledger(rec, settle_after_s=5.0, drop_cuts_s=1.0)
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B, C])
    led.on_disconnect(A, now=10.2)  # the frame may have been reset away before the server read it
    led.on_send(A, 2000, 2, intended=10.5, sent=10.5, expected=[B, C])  # on A's new connection
    led.on_receive(B, A, 2000, now=10.51, start=0.0)
    led.on_receive(C, A, 2000, now=10.51, start=0.0)
    led.on_disconnect(B, now=11.0, resumes=True)
    assert (rec.counters["cut_off"], rec.counters["lost"]) == (1, 0)
    led.on_send(A, 3000, 3, intended=13.0, sent=13.0, expected=[C])  # A stays connected
    led.on_send(A, 4000, 4, intended=14.0, sent=14.0, expected=[C])
    led.on_receive(C, A, 4000, now=14.01, start=0.0)
    led.on_disconnect(A, now=16.0)  # 3 s after update 3: it had time to reach the server
    led.on_disconnect(C, now=16.5, resumes=True)
    led.settle(100.0, everything=True)
    assert (rec.counters["cut_off"], rec.counters["delivered"], rec.counters["lost"]) == (2, 3, 1)
    assert rec.samples["lost"] == [
        "update 3 of user 1 to user 3: update 4 arrived first; the receiver's socket dropped 3.500 s after"
    ]
    assert balanced(rec)


def test_with_a_drop_bound_only_a_drop_soon_after_the_send_excuses_it() -> None:
    rec = Recorder()
    led = Ledger(rec, settle_after_s=5.0, drop_cuts_s=1.0)
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[B])
    led.on_disconnect(A, now=10.2)  # may have kept it from the server: cut off
    led.on_send(A, 2000, 2, intended=12.0, sent=12.0, expected=[B])
    led.on_disconnect(A, now=14.0)  # 2 s later: it had time to arrive, and did not
    led.settle(100.0, everything=True)
    assert (rec.counters["cut_off"], rec.counters["lost"]) == (1, 1)


def test_the_receiver_away_at_the_end_had_what_it_was_owed_cut_off() -> None:
    led, rec = ledger()
    led.on_away(B, now=9.0)
    led.on_send(A, 1000, 1, intended=10.0, sent=10.0, expected=[], owed_to=[B])
    led.settle(100.0, everything=True)
    assert (rec.counters["cut_off"], rec.counters["lost"]) == (1, 0)
