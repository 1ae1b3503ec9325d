"""Load shapes: a level that moves in straight lines from stage to stage, as k6's ``stages`` do.

``"30s:100,1m:1000,30s:0"`` is three stages: over the first 30 s the level goes linearly from
the start level (0 unless given) to 100, over the next minute from 100 to 1000, and over the
last 30 s down to 0. For searches the level is a rate (searches per second), for the friends
scenario a number of connected users. Pure: numbers in, numbers out; times are seconds since
the start of the run.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loadgen.durations import parse_duration


@dataclass(frozen=True, slots=True)
class Stage:
    """Over ``duration_s`` seconds (> 0), the level goes linearly to ``target`` (>= 0)."""

    duration_s: float
    target: float


@dataclass(frozen=True, slots=True)
class Segment:
    """One stage placed in time: from ``start_s`` to ``end_s`` the level goes from ``begin`` to ``end``."""

    start_s: float
    end_s: float
    begin: float
    end: float
    #: The integral of the level before ``start_s`` (for a rate: the requests due before it).
    area_before: float

    @property
    def area(self) -> float:
        """The integral of the level over this segment (trapezoid: exact for a straight line)."""
        return (self.begin + self.end) / 2.0 * (self.end_s - self.start_s)


def parse_level(text: str) -> float | None:
    """Read a level (a rate, or a number of users) as written on the command line.

    Args:
        text: the number as written.

    Returns:
        The level, a finite number >= 0, or None when ``text`` is not one (NaN included).
    """
    try:
        level = float(text)
    except ValueError:
        return None
    return level if math.isfinite(level) and level >= 0 else None


def parse_stages(text: str) -> tuple[Stage, ...]:
    """``DURATION:TARGET,...`` (``"30s:100,1m:1000,30s:0"``) to stages.

    Durations are read as :func:`loadgen.durations.parse_duration` reads them (> 0); targets are
    finite numbers >= 0; there is at least one stage.

    Raises:
        argparse.ArgumentTypeError: one line naming the stage that is wrong, as argparse
            expects of a type.
    """
    items = [item.strip() for item in text.split(",")]
    if not text.strip():
        raise argparse.ArgumentTypeError("needs at least one stage, e.g. 30s:100,1m:1000,30s:0")
    stages = []
    for number, item in enumerate(items, start=1):
        where = f"stage {number} ({item!r})" if len(items) > 1 else f"stage {item!r}"
        duration, colon, target = item.partition(":")
        if not colon:
            raise argparse.ArgumentTypeError(f"{where} is not DURATION:TARGET (e.g. 30s:100)")
        try:
            seconds = parse_duration(duration)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{where}: {exc}") from None
        level = parse_level(target)
        if level is None:
            raise argparse.ArgumentTypeError(f"{where}: the target must be a number >= 0, got {target.strip()!r}")
        stages.append(Stage(seconds, int(level) if level.is_integer() else level))
    return tuple(stages)


@dataclass(frozen=True, slots=True)
class Profile:
    """A level over time: ``start`` at time 0, then each stage's straight line in turn.

    A constant load is one stage whose start and target are equal (:meth:`constant`).
    """

    start: float
    stages: tuple[Stage, ...]

    @classmethod
    def constant(cls, level: float, duration_s: float) -> Profile:
        """``level`` for ``duration_s`` seconds.

        Raises:
            ValueError: level or duration not > 0 (NaN included).
        """
        if not level > 0:
            raise ValueError(f"rate must be > 0, got {level}")
        if not duration_s > 0:
            raise ValueError(f"duration must be > 0, got {duration_s}")
        return cls(level, (Stage(duration_s, level),))

    @property
    def duration_s(self) -> float:
        """The stages' total length, seconds."""
        return sum(stage.duration_s for stage in self.stages)

    @property
    def peak(self) -> float:
        """The highest level the profile reaches."""
        return max((self.start, *(stage.target for stage in self.stages)))

    def segments(self) -> list[Segment]:
        """The stages placed end to end from time 0, each with the integral before it."""
        out = []
        at, level, area = 0.0, self.start, 0.0
        for stage in self.stages:
            segment = Segment(at, at + stage.duration_s, level, stage.target, area)
            out.append(segment)
            at, level, area = segment.end_s, stage.target, area + segment.area
        return out

    def integral(self) -> float:
        """The integral of the level over the whole profile (for a rate: the requests due)."""
        last = self.segments()[-1]
        return last.area_before + last.area

    def mean(self) -> float:
        """The level's mean over the profile's duration."""
        return self.integral() / self.duration_s

    def scaled(self, factor: float) -> Profile:
        """Every level times ``factor`` (a worker's share of a rate)."""
        return Profile(self.start * factor, tuple(Stage(s.duration_s, s.target * factor) for s in self.stages))

    def inverse(self, levels: Iterable[float]) -> Iterator[float]:
        """The first time the integral of the level exceeds each of ``levels`` (increasing, >= 0).

        ``inf{t : area(t) > x}`` for each ``x``, in the profile's segments: solved exactly per
        segment (the area of a straight line is a quadratic in time), ends when a level is
        not below the whole integral. A stretch where the level is 0 adds no area, so no
        time inside it is ever returned: what comes due after it comes due where the level
        rises again.

        Args:
            levels: values of the integral, increasing.

        Yields:
            Times in seconds, non-decreasing, each below :attr:`duration_s`.
        """
        pending = iter(levels)
        x = next(pending, None)
        for segment in self.segments():
            # The level is ``r0 + slope*u`` at ``u`` seconds into the segment, so its integral
            # there is ``r0*u + slope*u**2/2``: ``m`` more of it is reached at the root
            # ``2m / (r0 + sqrt(r0**2 + 2*slope*m))``, which holds for a flat segment, one from 0
            # and a falling one alike, without the cancellation of the textbook form.
            start, length, before = segment.start_s, segment.end_s - segment.start_s, segment.area_before
            r0, slope = segment.begin, (segment.end - segment.begin) / length
            # Levels from here to the segment's end are in it; the tolerance keeps float noise at
            # a boundary (99.99999999 for 100) from putting one level in two segments or none.
            end = _less(before + segment.area)
            while x is not None and x < end:
                m = x - before
                root = math.sqrt(max(0.0, r0 * r0 + 2.0 * slope * m))
                yield start + min(length, 2.0 * m / (r0 + root)) if m > 0.0 else start
                x = next(pending, None)
            if x is None:
                return

    def marks(self) -> list[dict[str, float]]:
        """The stages as the report marks them: ``start_s``, ``end_s``, ``from`` and ``to``."""
        return [{"start_s": s.start_s, "end_s": s.end_s, "from": s.begin, "to": s.end} for s in self.segments()]

    def above(self, index: int) -> list[tuple[float, float]]:
        """The intervals ``(on, off)`` in which the level is above ``index``, seconds.

        For a number of users, user ``index`` (from 0) is online in these: it connects at
        ``on``, where the level rises past its index, and leaves at ``off``, where the level
        falls back to it; the users below the level are online, those at or above it are
        not. Intervals that touch are joined.
        """
        windows: list[tuple[float, float]] = []
        on = 0.0 if self.start > index else None
        for s in self.segments():
            if s.end > s.begin and on is None and s.begin <= index < s.end:
                on = s.start_s + (index - s.begin) / (s.end - s.begin) * (s.end_s - s.start_s)
                if windows and windows[-1][1] >= on:  # left as the level touched it, back at once
                    on = windows.pop()[0]
            elif s.end < s.begin and on is not None and s.end <= index < s.begin:
                off = s.start_s + (s.begin - index) / (s.begin - s.end) * (s.end_s - s.start_s)
                windows.append((on, off))
                on = None
        if on is not None:
            windows.append((on, self.duration_s))
        return windows


def rate_profile(start: float, stages: tuple[Stage, ...]) -> Profile:
    """The rate of searches from ``start`` (>= 0) through ``stages``.

    Raises:
        ValueError: the start is negative, or the rate is 0 throughout (nothing would be sent).
    """
    if not (math.isfinite(start) and start >= 0):
        raise ValueError(f"the start rate must be a number >= 0, got {start}")
    profile = Profile(start, stages)
    if not profile.peak > 0:
        raise ValueError("the rate is 0 in every stage: nothing would be sent")
    return profile


def users_profile(stages: tuple[Stage, ...], users: int) -> Profile:
    """The number of connected users through ``stages``, from 0, out of ``users`` simulated.

    Raises:
        ValueError: a target is not a whole number or above ``users``, or every target is 0.
    """
    for number, stage in enumerate(stages, start=1):
        if not float(stage.target).is_integer():
            raise ValueError(f"stage {number}: a number of users is whole, got {stage.target:g}")
        if stage.target > users:
            raise ValueError(f"stage {number}: {stage.target:g} users is more than the {users} simulated")
    profile = Profile(0, stages)
    if not profile.peak > 0:
        raise ValueError("every target is 0 users: nobody would connect")
    return profile


def online_windows(
    users: Sequence[int], stages: tuple[Stage, ...], *, ramp_s: float, window_s: float
) -> list[list[tuple[float, float]]]:
    """When each user is meant to be connected: its windows ``(on, off)``, seconds since the start.

    With stages, user ``i`` (from 0, by id) is online while the number they ask for is above
    ``i`` (:meth:`Profile.above`): users come online in id order and leave in the reverse, maybe
    more than once. Without, the ``k``-th of ``n`` connects ``ramp_s * k / n`` after the start
    and stays to ``window_s``.

    Args:
        users: each user's place in the population (its id less the first id).
        stages: the users' stages, or none for the ramp.
        ramp_s: the ramp's length, seconds (without stages).
        window_s: the ramp and the measured window, seconds (the stages' total with them).
    """
    if stages:
        profile = Profile(0, stages)
        return [profile.above(i) for i in users]
    return [[(ramp_s * k / max(1, len(users)), window_s)] for k in range(len(users))]


def connected_target(windows: Iterable[list[tuple[float, float]]], window_s: float, drain_s: float) -> dict[int, int]:
    """The users meant to be connected at the middle of each second: those connected at the
    end of the window (``window_s``) stay through the drain after it."""
    drained = ([(on, off + drain_s if off >= window_s else off) for on, off in one] for one in windows)
    return midsecond_counts(drained)


def midsecond_counts(windows: Iterable[Iterable[tuple[float, float]]]) -> dict[int, int]:
    """How many users are online at the middle of each second (when the ``connected`` gauge is
    read), from each one's windows as :meth:`Profile.above` gives them.

    A window is open at both ends (the level is above the user's index strictly inside it),
    so a middle of a second that is a window's end or its start does not count: the count is
    the number of users below the level there.
    """
    counts: Counter[int] = Counter()
    for one in windows:
        for on, off in one:
            counts.update(range(max(0, math.floor(on - 0.5) + 1), math.ceil(off - 0.5)))
    return dict(counts)


def _less(value: float) -> float:
    """``value`` less a relative billionth: below it by more than float noise, by less than any count."""
    return value - 1e-9 * max(1.0, abs(value))


def reported_marks(options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A run's stages as report.json marks them, from its options as the report holds them.

    Each stage is ``{start_s, end_s, from, to}`` (seconds since the start; searches a second
    or users); a mixed run's parts each add theirs with ``part`` (``search``, ``friends``).
    Empty when nothing ran in stages.
    """
    parts = [(part, options[part]) for part in ("search", "friends") if isinstance(options.get(part), Mapping)]
    if not parts:
        return _marks(options)
    return [{**mark, "part": part} for part, opts in parts for mark in _marks(opts)]


def _marks(options: Mapping[str, Any]) -> list[dict[str, Any]]:
    stages = tuple(Stage(float(s["duration_s"]), s["target"]) for s in options.get("stages") or ())
    return Profile(options.get("start_rate", 0), stages).marks() if stages else []
