"""A circuit breaker: stop calling a dependency that keeps failing, and probe it to come back.

Pure state machine, no I/O and no clock of its own (the clock is injected), used at the edges
of both services around every PostgreSQL and Redis call::

    CLOSED --(N consecutive failures)--> OPEN --(cool-down elapsed, next call)--> HALF_OPEN
       ^                                  ^                                          |
       +---------(the probe succeeds)-----|-----------------------------------------+
                                          +------------(the probe fails)-------------+

* **closed**: every call goes through; a success resets the count of consecutive failures.
* **open**: every call is refused at once (counted in :attr:`Breaker.rejected`) until the
  cool-down has passed since the breaker opened.
* **half-open**: exactly one call, the probe, goes through; the others are refused. The
  probe's success closes the breaker, its failure opens it again for another cool-down. A
  probe that never reports (its task was cancelled, or it hangs) is replaced by a new one
  after a cool-down, so the breaker cannot stay half-open for ever.

Each call is let through with a :class:`Permit`; outcomes are reported with the permit, so a
late answer to a call made before the breaker changed state (a slow query that started while
closed and fails after the breaker opened) changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from types import TracebackType

__all__ = ["Breaker", "BreakerError", "CircuitOpen", "Guard", "Permit", "State"]


class State(IntEnum):
    """A breaker's state (``geo_circuit_breaker_state{state}`` on ``/metrics``: closed, half_open, open)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class BreakerError(Exception):
    """Base class of the breaker's errors."""


class CircuitOpen(BreakerError, ConnectionError):
    """A call was refused without trying: the dependency's breaker is open.

    A :class:`ConnectionError`, so code that already treats "the server cannot be reached"
    handles a fast-failed call the same way.

    Attributes:
        dependency: the breaker's name (``postgres-primary``, ``redis-cache``...).
        retry_after_s: seconds until the breaker lets a probe through (0 when one may go now).
    """

    def __init__(self, dependency: str, retry_after_s: float) -> None:
        super().__init__(f"{dependency} is failing; calls are refused for {retry_after_s:.1f} s (circuit open)")
        self.dependency = dependency
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Permit:
    """The right to make one call, returned by :meth:`Breaker.allow`.

    Attributes:
        generation: the breaker's state change this call was let through under.
        probe: True for the one call of the half-open state.
    """

    generation: int
    probe: bool


class Breaker:
    """One dependency's breaker.

    Args:
        name: the dependency, as the metrics label it (``postgres-replica-1``).
        failures: consecutive failures that open the breaker (at least 1).
        reset_s: cool-down, seconds: how long the breaker stays open before a probe, and how
            long a probe may stay unanswered before another replaces it.
        clock: monotonic seconds (``time.monotonic`` unless a test drives it).

    Raises:
        ValueError: ``failures`` below 1 or a negative ``reset_s``.
    """

    def __init__(
        self, name: str, *, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError(f"failures must be at least 1, got {failures}")
        if not reset_s >= 0:
            raise ValueError(f"reset_s must be 0 or more, got {reset_s}")
        self.name = name
        self.failure_threshold = failures
        self.reset_s = reset_s
        self._clock = clock
        self._state = State.CLOSED
        # Bumped on every state change and every new probe: permits of older generations
        # report outcomes nobody waits for any more.
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        #: Calls refused without trying, since creation.
        self.rejected = 0
        #: Times the breaker opened (from closed or after a failed probe), since creation.
        self.opened = 0

    def __repr__(self) -> str:
        return f"Breaker({self.name!r}, {self._state.name.lower()}, failures={self._failures})"

    # --- reading ---------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current state (an open breaker whose cool-down has passed stays open until called)."""
        return self._state

    @property
    def consecutive_failures(self) -> int:
        """Failures in a row while closed."""
        return self._failures

    def retry_after_s(self) -> float:
        """Seconds until a call may be let through: 0 when closed or when a probe may go now."""
        now = self._clock()
        if self._state is State.OPEN:
            return max(0.0, self._opened_at + self.reset_s - now)
        if self._state is State.HALF_OPEN and self._probe_started is not None:
            return max(0.0, self._probe_started + self.reset_s - now)
        return 0.0

    def would_allow(self) -> bool:
        """Whether :meth:`allow` would let a call through now (changes nothing, counts nothing).

        For optional calls, such as a background health check, that should simply not be
        made while the breaker is open rather than be counted as refused.
        """
        now = self._clock()
        if self._state is State.OPEN:
            return now - self._opened_at >= self.reset_s
        if self._state is State.HALF_OPEN:
            return self._probe_started is None or now - self._probe_started >= self.reset_s
        return True

    # --- deciding --------------------------------------------------------------------------

    def allow(self) -> Permit | None:
        """Ask to make a call.

        Returns:
            A permit to report the call's outcome with, or None when the call must not be
            made (counted in :attr:`rejected`).
        """
        now = self._clock()
        if self._state is State.CLOSED:
            return Permit(self._generation, probe=False)
        if self._state is State.OPEN and now - self._opened_at >= self.reset_s:
            self._state = State.HALF_OPEN
            return self._start_probe(now)
        if self._state is State.HALF_OPEN and (
            self._probe_started is None or now - self._probe_started >= self.reset_s
        ):
            return self._start_probe(now)
        self.rejected += 1
        return None

    def _start_probe(self, now: float) -> Permit:
        self._generation += 1
        self._probe_started = now
        return Permit(self._generation, probe=True)

    def _current(self, permit: Permit) -> bool:
        return permit.generation == self._generation and permit.probe == (self._state is State.HALF_OPEN)

    def success(self, permit: Permit) -> None:
        """The call was answered (even with an error of its own, such as a constraint violation)."""
        if not self._current(permit):
            return
        if self._state is State.HALF_OPEN:
            self._state = State.CLOSED
            self._generation += 1
            self._probe_started = None
        self._failures = 0

    def failure(self, permit: Permit) -> None:
        """The dependency could not answer the call (refused, reset, timed out, shutting down)."""
        if not self._current(permit):
            return
        if self._state is State.HALF_OPEN:
            self._open()
            return
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._open()

    def release(self, permit: Permit) -> None:
        """The call ended without telling anything (cancelled): a probe's slot is freed."""
        if self._current(permit) and self._state is State.HALF_OPEN:
            self._probe_started = None

    def _open(self) -> None:
        self._state = State.OPEN
        self._generation += 1
        self._opened_at = self._clock()
        self._probe_started = None
        self._failures = 0
        self.opened += 1

    # --- the usual way to call -------------------------------------------------------------

    def guard(self, failures: tuple[type[BaseException], ...]) -> Guard:
        """Make one call under the breaker (a plain ``with``, also around ``await``).

        An exception of one of ``failures`` types counts as the dependency failing; any other
        exception means it answered (success); a cancellation counts as neither.

        Args:
            failures: the exception types that mean "the dependency could not answer".

        Returns:
            A context manager whose ``with`` gives the call's permit.

        Raises:
            CircuitOpen: on entering, the breaker refused the call (nothing was tried).
        """
        return Guard(self, failures)


class Guard:
    """One call under a breaker: :meth:`Breaker.guard`'s context manager.

    A class rather than a generator: it is around every Redis command of a location update.
    """

    __slots__ = ("_breaker", "_failures", "_permit")

    def __init__(self, breaker: Breaker, failures: tuple[type[BaseException], ...]) -> None:
        self._breaker = breaker
        self._failures = failures
        self._permit: Permit | None = None

    def __enter__(self) -> Permit:
        breaker = self._breaker
        permit = self._permit = breaker.allow()
        if permit is None:
            raise CircuitOpen(breaker.name, breaker.retry_after_s())
        return permit

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        permit = self._permit
        assert permit is not None
        if kind is None:
            self._breaker.success(permit)
        elif issubclass(kind, self._failures):
            self._breaker.failure(permit)
        elif issubclass(kind, Exception):
            self._breaker.success(permit)  # it answered, with an error of the call's own
        else:
            self._breaker.release(permit)  # cancelled: neither
