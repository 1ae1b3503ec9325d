"""Load shapes in stages: the arrival schedule of a moving rate and who is online as users ramp.

The schedules are checked against the integral of the rate computed here, independently, by
the trapezoid of each straight stage (exact for a line), and who is online against the level
itself at sampled times.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.ledger import Ledger
from loadgen.schedule import Arrivals, intended_offsets, per_second
from loadgen.stages import (
    Profile,
    Stage,
    midsecond_counts,
    parse_stages,
    rate_profile,
    reported_marks,
    users_profile,
)
from loadgen.stats import Recorder


def level_at(profile: Profile, t: float) -> float:
    """The level at ``t``, straight from the stages (the reference, not the code under test)."""
    at, level = 0.0, profile.start
    for stage in profile.stages:
        if t < at + stage.duration_s:
            return level + (stage.target - level) * (t - at) / stage.duration_s
        at, level = at + stage.duration_s, stage.target
    return level


def area_until(profile: Profile, t: float) -> float:
    """The integral of the level from 0 to ``t`` (the reference)."""
    at, level, area = 0.0, profile.start, 0.0
    for stage in profile.stages:
        end = min(t, at + stage.duration_s)
        if end > at:  # the level is continuous: a trapezoid from ``at`` to ``end``
            area += (level + level_at(profile, end)) / 2 * (end - at)
        at, level = at + stage.duration_s, stage.target
    return area


def boundaries(profile: Profile) -> list[float]:
    """Where each stage ends, seconds since the start."""
    return list(itertools.accumulate(stage.duration_s for stage in profile.stages))


def counts_per_stage(offsets: list[float], profile: Profile) -> list[int]:
    ends = [bisect.bisect_left(offsets, b) for b in boundaries(profile)]
    return [b - a for a, b in zip([0, *ends], ends, strict=False)]


# --- parsing --------------------------------------------------------------------------------


def test_stages_read_as_people_write_them() -> None:
    assert parse_stages("30s:100,1m:1000,30s:0") == (Stage(30.0, 100), Stage(60.0, 1000), Stage(30.0, 0))
    assert parse_stages(" 500ms:2.5 , 1h:0 ") == (Stage(0.5, 2.5), Stage(3600.0, 0))
    assert parse_stages("2:7") == (Stage(2.0, 7),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "needs at least one stage"),
        ("  ", "needs at least one stage"),
        ("30s", "stage '30s' is not DURATION:TARGET"),
        ("30s:10,", "stage 2 ('') is not DURATION:TARGET"),
        ("soon:10", "stage 'soon:10': cannot read duration 'soon'"),
        ("0s:10", "stage '0s:10': duration must be > 0"),
        ("10s:-1", "stage '10s:-1': the target must be a number >= 0, got '-1'"),
        ("10s:lots", "the target must be a number >= 0, got 'lots'"),
        ("10s:nan", "the target must be a number >= 0, got 'nan'"),
        ("10s:inf", "the target must be a number >= 0, got 'inf'"),
        ("10s:5,2m:", "stage 2 ('2m:'): the target must be a number >= 0, got ''"),
    ],
)
def test_bad_stages_are_one_line_naming_the_stage(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        parse_stages(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_rate_that_is_zero_throughout_or_starts_below_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="0 in every stage: nothing would be sent"):
        rate_profile(0.0, parse_stages("10s:0,5s:0"))
    with pytest.raises(ValueError, match="start rate must be a number >= 0"):
        rate_profile(-1.0, parse_stages("10s:5"))
    assert rate_profile(3.0, parse_stages("10s:0")).integral() == 15.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10s:5,10s:2.5", "stage 2: a number of users is whole, got 2.5"),
        ("10s:41", "stage 1: 41 users is more than the 40 simulated"),
        ("10s:0", "every target is 0 users: nobody would connect"),
    ],
)
def test_users_in_stages_are_whole_and_at_most_the_users_simulated(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        users_profile(parse_stages(text), 40)


# --- constant arrivals --------------------------------------------------------------------------


def test_a_steady_rate_is_evenly_spaced_from_the_start() -> None:
    assert list(intended_offsets(Profile.constant(4, 2.0))) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


def test_each_stage_holds_exactly_its_integral_of_constant_arrivals() -> None:
    profile = Profile(0, parse_stages("30s:100,1m:1000,30s:0"))
    offsets = list(intended_offsets(profile))
    # 0->100 over 30 s, 100->1000 over 60 s, 1000->0 over 30 s: 1,500 + 33,000 + 15,000.
    assert counts_per_stage(offsets, profile) == [1_500, 33_000, 15_000]
    assert len(offsets) == profile.integral() == 49_500
    # The rate at each send: the gap between two sends is about 1 / the rate there.
    for k in (100, 1_499, 1_500, 20_000, 49_000):
        gap = offsets[k + 1] - offsets[k]
        assert gap == pytest.approx(1 / level_at(profile, offsets[k]), rel=0.01)


def test_the_per_second_counts_follow_the_shape() -> None:
    offsets = list(intended_offsets(Profile(0, parse_stages("2s:50,2s:150,2s:0"))))
    # Per second: the integral of the line over that second.
    assert per_second(offsets) == {0: 13, 1: 37, 2: 75, 3: 125, 4: 113, 5: 37}
    assert sum(per_second(offsets).values()) == 400


def test_zero_rate_stages_send_nothing_and_the_next_rise_starts_at_once() -> None:
    profile = Profile(0, parse_stages("1s:10,1s:0,3s:0,1s:10"))
    for arrivals in Arrivals:
        offsets = list(intended_offsets(profile, arrivals=arrivals, seed=5))
        assert not [t for t in offsets if 2.0 <= t < 5.0], arrivals
    offsets = list(intended_offsets(profile))
    assert counts_per_stage(offsets, profile) == [5, 5, 0, 5]
    # The fifth is due where the integral passes 5, at 1 s; the tenth only where it rises again.
    assert offsets[5] == 1.0 and offsets[10] == 5.0


def test_a_start_rate_begins_the_first_stage_there() -> None:
    profile = rate_profile(100.0, parse_stages("1s:100,1s:0"))
    offsets = list(intended_offsets(profile))
    assert counts_per_stage(offsets, profile) == [100, 50]
    assert offsets[:3] == [0.0, 0.01, 0.02]


stage_lists = st.lists(
    st.tuples(
        st.floats(min_value=0.05, max_value=20.0, allow_nan=False),
        st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=400.0, allow_nan=False)),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(start=st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=300.0)), stages=stage_lists)
def test_constant_arrivals_are_where_the_integral_crosses_each_whole_number(
    start: float, stages: list[tuple[float, float]]
) -> None:
    profile = Profile(start, tuple(Stage(d, r) for d, r in stages))
    offsets = list(intended_offsets(profile))
    total = area_until(profile, profile.duration_s)
    # Request k is due where the integral reaches k: one for each whole number below the total.
    assert abs(len(offsets) - total) < 1 + 1e-6 * total
    assert all(a <= b for a, b in zip(offsets, offsets[1:], strict=False))
    assert all(0.0 <= t < profile.duration_s for t in offsets)
    for k in range(0, len(offsets), max(1, len(offsets) // 50)):
        assert area_until(profile, offsets[k]) == pytest.approx(k, abs=1e-6 * max(1.0, total))
        assert level_at(profile, offsets[k] + 1e-9) > 0 or math.isclose(offsets[k], 0.0)
    # Each stage: its integral, give or take the request that straddles a boundary.
    ends = boundaries(profile)
    for begin, end, count in zip([0.0, *ends], ends, counts_per_stage(offsets, profile), strict=False):
        assert abs(count - (area_until(profile, end) - area_until(profile, begin))) <= 1 + 1e-6 * total


# --- Poisson arrivals ---------------------------------------------------------------------------


def test_poisson_arrivals_follow_the_stages_and_are_seeded() -> None:
    profile = Profile(0, parse_stages("10s:1000,10s:3000,10s:0"))
    a = list(intended_offsets(profile, arrivals=Arrivals.POISSON, seed=11))
    assert a == list(intended_offsets(profile, arrivals=Arrivals.POISSON, seed=11))
    assert a != list(intended_offsets(profile, arrivals=Arrivals.POISSON, seed=12))
    assert all(x < y for x, y in zip(a, a[1:], strict=False)) and a[-1] < 30.0
    for count, expected in zip(counts_per_stage(a, profile), (5_000, 20_000, 15_000), strict=True):
        assert abs(count - expected) <= 0.05 * expected
    # Within a stage the rate rises: the second half of the first stage holds three times the first.
    first, second = bisect.bisect_left(a, 5.0), bisect.bisect_left(a, 10.0) - bisect.bisect_left(a, 5.0)
    assert 2.7 < second / first < 3.3


def test_a_steady_poisson_rate_keeps_its_mean() -> None:
    a = list(intended_offsets(Profile.constant(1000, 10.0), arrivals=Arrivals.POISSON, seed=3))
    assert 9_500 < len(a) < 10_500


def test_workers_share_a_profile_exactly() -> None:
    profile = Profile(10, parse_stages("4s:50,2s:0"))
    share = profile.scaled(1 / 4)
    assert share.integral() * 4 == pytest.approx(profile.integral())
    assert share.marks()[0] == {"start_s": 0.0, "end_s": 4.0, "from": 2.5, "to": 12.5}


# --- users online -------------------------------------------------------------------------------


def test_users_come_online_in_order_as_the_target_rises_and_leave_in_reverse() -> None:
    users = users_profile(parse_stages("2s:20,2s:40,2s:0"), 40)
    assert users.above(0) == [(0.0, 6.0)]  # the first connects at once and leaves as the level reaches 0
    assert users.above(10) == [(1.0, 5.5)]
    assert users.above(20) == [(2.0, 5.0)]
    assert users.above(39) == [(3.9, 4.05)]
    assert users.above(40) == []
    # At the middle of each second, the users below the level then.
    assert midsecond_counts(users.above(i) for i in range(40)) == {0: 5, 1: 15, 2: 25, 3: 35, 4: 30, 5: 10}


def test_a_user_can_leave_and_come_back() -> None:
    users = users_profile(parse_stages("1s:10,1s:0,1s:0,1s:10"), 10)
    assert users.above(4) == [(0.4, 1.6), (3.4, 4.0)]
    # A dip that only touches a user's index does not disconnect it.
    touching = Profile(0, parse_stages("1s:10,1s:5,1s:10"))
    assert touching.above(5) == [(0.5, 3.0)]


@settings(max_examples=100, deadline=None)
@given(stages=st.lists(st.tuples(st.floats(0.1, 10.0), st.integers(0, 30)), min_size=1, max_size=5), data=st.data())
def test_the_users_online_are_those_below_the_level(stages: list[tuple[float, int]], data: st.DataObject) -> None:
    profile = Profile(0, tuple(Stage(d, n) for d, n in stages))
    windows = [profile.above(i) for i in range(31)]
    ends = [x for w in windows for pair in w for x in pair]
    for _ in range(20):
        t = data.draw(st.floats(0.0, profile.duration_s, exclude_max=True))
        if any(math.isclose(t, x, abs_tol=1e-9) for x in ends):
            continue  # at a crossing the level equals the index: rounding may go either way
        online = sum(1 for w in windows if any(on < t < off for on, off in w))
        assert online == math.ceil(level_at(profile, t))  # users 0, 1, ... below the level


def test_a_departing_user_waits_while_a_delivery_to_or_from_it_is_owed() -> None:
    ledger = Ledger(Recorder())
    ledger.on_send(1, 1_000, 1, 0.0, 0.0, [2, 3])
    assert ledger.awaits(1) and ledger.awaits(2) and ledger.awaits(3) and not ledger.awaits(4)
    ledger.on_receive(2, 1, 1_000, 0.01, 0.0)
    assert ledger.awaits(1) and not ledger.awaits(2) and ledger.awaits(3)
    ledger.on_receive(3, 1, 1_000, 0.02, 0.0)
    assert not ledger.awaits(1) and not ledger.awaits(3)


# --- what the report marks ----------------------------------------------------------------------


def test_the_report_marks_each_stage_of_each_part() -> None:
    search = {"rate": 75.0, "stages": [{"duration_s": 2.0, "target": 50}, {"duration_s": 2.0, "target": 0}]}
    assert reported_marks({**search, "start_rate": 10.0}) == [
        {"start_s": 0.0, "end_s": 2.0, "from": 10.0, "to": 50},
        {"start_s": 2.0, "end_s": 4.0, "from": 50, "to": 0},
    ]
    friends = {"users": 40, "stages": [{"duration_s": 3.0, "target": 40}]}
    assert reported_marks({"search": {"rate": 5.0, "stages": []}, "friends": friends}) == [
        {"start_s": 0.0, "end_s": 3.0, "from": 0, "to": 40, "part": "friends"}
    ]
    assert reported_marks({"rate": 5.0, "stages": []}) == []
