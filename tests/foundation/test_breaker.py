"""The circuit breaker's state machine, driven by a fake clock: every transition, and a model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_common.breaker import Breaker, CircuitOpen, Permit, State
from geo_common.breaker_metrics import breaker_metrics


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(failures: int = 3, reset_s: float = 2.0) -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker("dep", failures=failures, reset_s=reset_s, clock=clock), clock


def fail(breaker: Breaker, times: int = 1) -> None:
    for _ in range(times):
        permit = breaker.allow()
        assert permit is not None
        breaker.failure(permit)


def opened(breaker: Breaker) -> None:
    fail(breaker, breaker.failure_threshold)
    assert breaker.state is State.OPEN


def test_starts_closed_and_lets_everything_through() -> None:
    breaker, _ = make()
    permits = [breaker.allow() for _ in range(100)]
    assert all(p is not None and not p.probe for p in permits)
    assert breaker.state is State.CLOSED and breaker.rejected == 0 and breaker.retry_after_s() == 0.0


def test_opens_after_n_consecutive_failures_only() -> None:
    breaker, _ = make(failures=3)
    fail(breaker, 2)
    assert breaker.state is State.CLOSED and breaker.consecutive_failures == 2
    ok = breaker.allow()
    assert ok is not None
    breaker.success(ok)  # a success in between resets the count
    assert breaker.consecutive_failures == 0
    fail(breaker, 2)
    assert breaker.state is State.CLOSED
    fail(breaker)
    assert breaker.state is State.OPEN and breaker.opened == 1


def test_threshold_of_one_opens_at_the_first_failure() -> None:
    breaker, _ = make(failures=1)
    fail(breaker)
    assert breaker.state is State.OPEN


def test_open_fast_fails_and_counts_until_the_cool_down_is_over() -> None:
    breaker, clock = make(reset_s=2.0)
    opened(breaker)
    assert breaker.retry_after_s() == pytest.approx(2.0)
    clock.now += 1.5
    assert breaker.allow() is None and breaker.allow() is None
    assert breaker.rejected == 2
    assert breaker.retry_after_s() == pytest.approx(0.5)
    assert not breaker.would_allow()
    assert breaker.rejected == 2  # would_allow counts nothing
    assert breaker.state is State.OPEN


def test_after_the_cool_down_exactly_one_probe_goes_through() -> None:
    breaker, clock = make(reset_s=2.0)
    opened(breaker)
    clock.now += 2.0
    assert breaker.would_allow()
    probe = breaker.allow()
    assert probe is not None and probe.probe
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow() is None  # the others are refused while the probe runs
    assert not breaker.would_allow()
    assert breaker.rejected == 1


def test_probe_success_closes() -> None:
    breaker, clock = make()
    opened(breaker)
    clock.now += 2.0
    probe = breaker.allow()
    assert probe is not None
    breaker.success(probe)
    assert breaker.state is State.CLOSED and breaker.consecutive_failures == 0
    # Closed again means a full N failures to reopen.
    fail(breaker, breaker.failure_threshold - 1)
    assert breaker.state is State.CLOSED


def test_probe_failure_reopens_for_a_whole_cool_down() -> None:
    breaker, clock = make(reset_s=2.0)
    opened(breaker)
    clock.now += 5.0
    probe = breaker.allow()
    assert probe is not None
    clock.now += 0.5
    breaker.failure(probe)
    assert breaker.state is State.OPEN and breaker.opened == 2
    assert breaker.retry_after_s() == pytest.approx(2.0)
    clock.now += 1.9
    assert breaker.allow() is None
    clock.now += 0.1
    assert breaker.allow() is not None


def test_a_cancelled_probe_frees_its_slot() -> None:
    breaker, clock = make()
    opened(breaker)
    clock.now += 2.0
    probe = breaker.allow()
    assert probe is not None
    breaker.release(probe)
    assert breaker.state is State.HALF_OPEN
    second = breaker.allow()
    assert second is not None and second.probe
    breaker.success(probe)  # the first probe's late word changes nothing
    assert breaker.state is State.HALF_OPEN
    breaker.success(second)
    assert breaker.state is State.CLOSED


def test_a_probe_that_never_reports_is_replaced_after_a_cool_down() -> None:
    breaker, clock = make(reset_s=2.0)
    opened(breaker)
    clock.now += 2.0
    lost = breaker.allow()
    assert lost is not None
    clock.now += 1.0
    assert breaker.allow() is None
    assert breaker.retry_after_s() == pytest.approx(1.0)
    clock.now += 1.0
    replacement = breaker.allow()
    assert replacement is not None and replacement.probe
    breaker.failure(lost)  # stale: ignored
    assert breaker.state is State.HALF_OPEN
    breaker.success(replacement)
    assert breaker.state is State.CLOSED


def test_late_outcomes_of_calls_from_an_earlier_state_are_ignored() -> None:
    breaker, clock = make(failures=2)
    slow_ok, slow_bad = breaker.allow(), breaker.allow()
    assert slow_ok is not None and slow_bad is not None
    opened(breaker)
    breaker.success(slow_ok)  # made while closed, answered while open: not a probe
    assert breaker.state is State.OPEN
    clock.now += 2.0
    probe = breaker.allow()
    assert probe is not None
    breaker.failure(slow_bad)
    breaker.success(slow_ok)
    assert breaker.state is State.HALF_OPEN
    breaker.success(probe)
    assert breaker.state is State.CLOSED
    breaker.failure(slow_bad)  # from before the opening: does not count towards the next one
    assert breaker.consecutive_failures == 0


def test_zero_cool_down_probes_at_once() -> None:
    breaker, _ = make(failures=1, reset_s=0.0)
    fail(breaker)
    probe = breaker.allow()
    assert probe is not None and probe.probe


@pytest.mark.parametrize(("failures", "reset_s"), [(0, 1.0), (-1, 1.0), (1, -0.1), (1, float("nan"))])
def test_bad_parameters_are_refused(failures: int, reset_s: float) -> None:
    with pytest.raises(ValueError):
        Breaker("x", failures=failures, reset_s=reset_s)


# --- guard ---------------------------------------------------------------------------------


class Down(ConnectionError):
    pass


def test_guard_counts_listed_errors_as_failures_and_others_as_answers() -> None:
    breaker, _ = make(failures=2)
    with pytest.raises(ValueError), breaker.guard((Down,)):
        raise ValueError("a query error: the server answered")
    assert breaker.consecutive_failures == 0
    for _ in range(2):
        with pytest.raises(Down), breaker.guard((Down,)):
            raise Down
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpen) as info, breaker.guard((Down,)):
        raise AssertionError("not called")  # pragma: no cover
    assert info.value.dependency == "dep" and info.value.retry_after_s == pytest.approx(2.0)
    assert isinstance(info.value, ConnectionError)
    assert breaker.rejected == 1


def test_guard_success_closes_a_half_open_breaker() -> None:
    breaker, clock = make(failures=1)
    fail(breaker)
    clock.now += 2.0
    with breaker.guard((Down,)) as permit:
        assert permit.probe
    assert breaker.state is State.CLOSED


def test_guard_releases_a_probe_on_cancellation() -> None:
    breaker, clock = make(failures=1)
    fail(breaker)
    clock.now += 2.0

    class Cancelled(BaseException):
        pass

    with pytest.raises(Cancelled), breaker.guard((Down,)):
        raise Cancelled
    assert breaker.state is State.HALF_OPEN
    assert breaker.allow() is not None  # the slot is free again


def test_metrics_show_state_rejections_and_openings() -> None:
    closed, _ = make()
    broken, _ = make(failures=1)
    broken.name = "broken"
    fail(broken)
    broken.allow()
    metrics = list(breaker_metrics([closed, broken]))
    families = {
        m.name: {s.labels["dependency"]: s.value for s in m.samples if not s.name.endswith("_created")}
        for m in metrics
        if m.name != "geo_circuit_breaker_state"
    }
    # A state set: one sample per state, 1 for the one the breaker is in.
    states = {(s.labels["dependency"], s.labels["state"]): s.value for s in metrics[0].samples}
    assert metrics[0].name == "geo_circuit_breaker_state"
    assert states == {
        ("dep", "closed"): 1.0,
        ("dep", "half_open"): 0.0,
        ("dep", "open"): 0.0,
        ("broken", "closed"): 0.0,
        ("broken", "half_open"): 0.0,
        ("broken", "open"): 1.0,
    }
    assert families["geo_circuit_breaker_rejected"] == {"dep": 0.0, "broken": 1.0}
    assert families["geo_circuit_breaker_opened"] == {"dep": 0.0, "broken": 1.0}


# --- against a model -----------------------------------------------------------------------


@dataclass
class Model:
    """The specification, written out plainly: what the breaker must do at each step."""

    failures: int
    reset_s: float
    state: State = State.CLOSED
    count: int = 0
    since: float = 0.0  # when it opened, or when the probe started
    probing: bool = False


Op = tuple[str, float]


@settings(max_examples=300, deadline=None)
@given(
    failures=st.integers(1, 4),
    ops=st.lists(
        st.tuples(st.sampled_from(["ok", "fail", "cancel", "wait"]), st.sampled_from([0.0, 0.5, 1.0, 2.5])), max_size=60
    ),
)
def test_matches_the_model(failures: int, ops: list[Op]) -> None:
    reset_s = 1.0
    breaker, clock = make(failures=failures, reset_s=reset_s)
    model = Model(failures, reset_s)
    rejected = 0

    def model_allow() -> bool:
        if model.state is State.OPEN:
            if clock.now - model.since < reset_s:
                return False
            model.state = State.HALF_OPEN
        if model.state is State.HALF_OPEN:
            if model.probing and clock.now - model.since < reset_s:
                return False
            model.probing, model.since = True, clock.now
        return True

    outcomes: dict[str, Callable[[Permit], None]] = {
        "ok": breaker.success,
        "fail": breaker.failure,
        "cancel": breaker.release,
    }
    for kind, dt in ops:
        clock.now += dt
        if kind == "wait":
            continue
        allowed = model_allow()
        permit = breaker.allow()
        assert (permit is not None) == allowed, (kind, model, breaker)
        if permit is None:
            rejected += 1
            continue
        assert permit.probe == (model.state is State.HALF_OPEN)
        outcomes[kind](permit)
        if model.state is State.HALF_OPEN:
            if kind == "ok":
                model.state, model.count, model.probing = State.CLOSED, 0, False
            elif kind == "fail":
                model.state, model.since, model.probing = State.OPEN, clock.now, False
            else:
                model.probing = False
        elif kind == "ok":
            model.count = 0
        elif kind == "fail":
            model.count += 1
            if model.count >= failures:
                model.state, model.since, model.count = State.OPEN, clock.now, 0
        assert breaker.state is model.state
        assert breaker.rejected == rejected
