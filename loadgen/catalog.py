"""What each scenario records, declared once: its histograms, its counters, and what a success is.

``--fail-if`` accepts exactly these names and nothing else (:mod:`loadgen.thresholds`): a rule
on a misspelt counter would otherwise read 0 and pass for ever. And a run in which a part
succeeded at nothing fails whatever its rules say (:func:`no_success_reasons`), so a run of
404s or of refused connections is never a green CI job.

Each name here is one that :mod:`loadgen.search`, :mod:`loadgen.friends`,
:mod:`loadgen.ledger`, :mod:`loadgen.strangers`, :mod:`loadgen.sockets`, :mod:`loadgen.monitor`
or :mod:`loadgen.runner` records;
``tests/loadgen/test_catalog.py`` reads those modules and fails on any name they record that
is not declared here. Counters whose names carry a value (``status_404``,
``error_rate_limited``) are declared as a :class:`Family`: a stem and the pattern of the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from loadgen.friends_options import EventKind

#: The summary figures a rule may take of a histogram, in milliseconds.
STATS = ("p50", "p90", "p95", "p99", "p99.9", "max", "mean", "min")
#: Where a mixed run reports its search part (:func:`loadgen.mixed.run_mixed`).
SEARCH_PREFIX = "search."


@dataclass(frozen=True, slots=True)
class Family:
    """Counters named ``stem`` followed by a value matching ``tail``: ``status_`` + ``404``."""

    stem: str
    tail: str
    #: How docs and messages write it: ``status_<code>``.
    shown: str
    #: Whether a counter of the family counts failed operations (they explain a failed run).
    failure: bool = False

    def matches(self, name: str) -> bool:
        return name.startswith(self.stem) and re.fullmatch(self.tail, name[len(self.stem) :]) is not None


@dataclass(frozen=True, slots=True)
class Part:
    """The figures one scenario records; in a report they appear under ``prefix``."""

    name: str
    metrics: tuple[str, ...]
    counters: tuple[str, ...]
    families: tuple[Family, ...] = ()
    #: Exact counters that count failed operations, beside the failure families.
    failures: tuple[str, ...] = ()
    #: What one success is ("search answered 2xx"), or "" for a part that is not judged.
    success: str = ""
    #: What its ``operations`` counter counts ("sent").
    operations: str = "operations"
    #: How many operations succeeded, from the part's own (unprefixed) counters.
    successes: Callable[[Mapping[str, int]], int] | None = None
    #: A histogram that must have counted something, and what it means when it has not.
    needs: tuple[str, str] | None = None
    prefix: str = ""

    def under(self, prefix: str) -> Part:
        """This part reported under ``prefix`` (a mixed run's ``search.``)."""
        return replace(self, prefix=prefix)

    def own(self, counters: Mapping[str, int]) -> dict[str, int]:
        """This part's counters, by their unprefixed names."""
        n = len(self.prefix)
        return {k[n:]: v for k, v in counters.items() if k.startswith(self.prefix)}

    def knows_counter(self, name: str) -> bool:
        """Whether ``name`` (unprefixed) is a counter this part records."""
        return name in self.counters or any(f.matches(name) for f in self.families)

    def is_failure(self, name: str) -> bool:
        """Whether counter ``name`` (unprefixed) counts failed operations of a kind."""
        return name in self.failures or any(f.failure and f.matches(name) for f in self.families)


def _successful_statuses(counters: Mapping[str, int]) -> int:
    return sum(n for name, n in counters.items() if _STATUS_2XX.matches(name))


def _delivered(counters: Mapping[str, int]) -> int:
    return int(counters.get("delivered", 0))


def _strangers_sent(counters: Mapping[str, int]) -> int:
    return sum(int(counters.get(k, 0)) for k in ("stranger_appeared", "stranger_moved", "stranger_repeated"))


# ``status_4xx`` and ``status_5xx`` sum the codes; the codes themselves explain a failure.
_STATUS_2XX = Family("status_", r"2[0-9][0-9]", "status_<2xx code>")
_STATUS_OTHER = Family("status_", r"[13-5][0-9][0-9]", "status_<code>", failure=True)
#: A Python exception's class name, as ``type(exc).__name__`` gives it.
_EXCEPTION = r"[A-Za-z_][A-Za-z0-9_]*"
#: What a WebSocket client of either scenario counts of its sockets (loadgen/sockets.py) and
#: of the server's ``error`` frames.
_SOCKET_FAMILIES = (
    Family("connect_error_", _EXCEPTION, "connect_error_<exception>", failure=True),
    Family("client_error_", _EXCEPTION, "client_error_<exception>", failure=True),
    Family("error_", r"[a-z][a-z0-9_]*", "error_<code>", failure=True),
    Family("disconnect_", r"[0-9]{4}", "disconnect_<close code>"),
)

#: ``geo-loadgen search`` (loadgen/search.py).
SEARCH = Part(
    name="search",
    metrics=("latency", "service_time", "send_lag"),
    counters=(
        "operations",
        "errors",
        "timeout",
        "connect_error",
        "status_4xx",
        "status_5xx",
        "verified",
        "verify_expected",
        "verify_missed",
        "verify_wrong",
        "verify_order_errors",
        "verify_total_errors",
        "verify_mismatches",
    ),
    families=(_STATUS_2XX, _STATUS_OTHER),
    failures=("timeout", "connect_error"),
    success="search answered 2xx",
    operations="sent",
    successes=_successful_statuses,
)

#: ``geo-loadgen friends`` (loadgen/friends.py, loadgen/ledger.py, loadgen/background.py,
#: loadgen/uploads.py).
FRIENDS = Part(
    name="friends",
    metrics=("latency", "send_lag", "init", "connect", "delivery_since_sent", "position_age", "resume", "upload"),
    counters=(
        "operations",
        "errors",
        "bad_frames",
        "reconnects",
        "disconnects",
        "disconnected_at_end",
        "updates_sent",
        "expected",
        "unmatched",
        "unjudged",
        "duplicates",
        "resync",
        "reordered",
        "delivered",
        "lost",
        "cut_off",
        "superseded",
        "pace_frames",
        "resumes",
        "resume_refused",
        "resume_skipped",
        "forced_disconnects",
        "backgrounded",
        "foregrounds",
        "uploads",
        "upload_points",
        "upload_ignored",
        *(f"event_{kind.value}" for kind in EventKind),
    ),
    families=(
        Family("setup_status_", r"[0-9]{3}", "setup_status_<code>", failure=True),
        Family("setup_error_", _EXCEPTION, "setup_error_<exception>", failure=True),
        Family("upload_status_", r"[0-9]{3}", "upload_status_<code>", failure=True),
        Family("upload_error_", _EXCEPTION, "upload_error_<exception>", failure=True),
        *_SOCKET_FAMILIES,
        Family("friend_left_", r"[a-z][a-z0-9_]*", "friend_left_<reason>"),
    ),
    failures=("bad_frames",),
    success="delivery",
    operations="expected",
    successes=_delivered,
    needs=("connect", "no client connected"),
)

#: ``geo-loadgen strangers`` (loadgen/strangers.py, loadgen/sockets.py).
STRANGERS = Part(
    name="strangers",
    metrics=("latency", "appear_age", "send_lag", "init", "discover", "connect"),
    counters=(
        "operations",
        "errors",
        "bad_frames",
        "reconnects",
        "disconnects",
        "stranger_appeared",
        "stranger_moved",
        "stranger_repeated",
        "left_unshown",
        "clock_behind",
    ),
    families=(
        *_SOCKET_FAMILIES,
        Family("stranger_left_", r"[a-z][a-z0-9_]*", "stranger_left_<reason>"),
        Family("visible_", r"[0-9]+", "visible_<strangers>"),
    ),
    failures=("bad_frames",),
    success="stranger frame",
    operations="locations sent",
    successes=_strangers_sent,
    needs=("connect", "no client connected"),
)

#: The generator watching itself, in every scenario (loadgen/monitor.py, loadgen/runner.py).
GENERATOR = Part(
    name="generator",
    metrics=("loop_lag",),
    counters=("generator_cpu_ms", "generator_cpu_saturated_s"),
)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every name a run of one scenario can report, and the part whose ``latency`` bare
    statistics (``p99``) and ``rate`` refer to (None: they must be named)."""

    parts: tuple[Part, ...]
    main: Part | None

    def counter_part(self, name: str) -> Part | None:
        """The part that records counter ``name`` (as the report writes it), if any."""
        for part in self.parts:
            if name.startswith(part.prefix) and part.knows_counter(name[len(part.prefix) :]):
                return part
        return None

    def metrics(self) -> list[str]:
        """Every histogram, as the report names it."""
        return [part.prefix + m for part in self.parts for m in part.metrics]

    def counters(self) -> list[str]:
        """Every counter declared by exact name, as the report names it (families aside)."""
        return [part.prefix + c for part in self.parts for c in part.counters]

    def families(self) -> list[tuple[str, Family]]:
        """Every counter family with the prefix it is reported under."""
        return [(part.prefix, f) for part in self.parts for f in part.families]

    def judged(self) -> list[Part]:
        """The parts whose success is judged (not the generator's own figures)."""
        return [part for part in self.parts if part.successes is not None]


def catalog_for(scenario: str, *, search: bool = True, friends: bool = True) -> Catalog:
    """The catalog of ``geo-loadgen SCENARIO``; for ``mixed``, of the parts its file holds.

    Raises:
        ValueError: an unknown scenario.
    """
    if scenario == "search":
        return Catalog((SEARCH, GENERATOR), SEARCH)
    if scenario == "friends":
        return Catalog((FRIENDS, GENERATOR), FRIENDS)
    if scenario == "strangers":
        return Catalog((STRANGERS, GENERATOR), STRANGERS)
    if scenario == "mixed":
        # The friends part records into the run's own recorder, so its latency is the main one.
        parts = ((FRIENDS,) if friends else ()) + ((SEARCH.under(SEARCH_PREFIX),) if search else ())
        return Catalog((*parts, GENERATOR), FRIENDS if friends else None)
    raise ValueError(f"unknown scenario {scenario!r}")


def no_success_reasons(catalog: Catalog, counters: Mapping[str, int], counts: Mapping[str, int]) -> list[str]:
    """Why each judged part of a finished run succeeded at nothing; empty when each did something.

    Args:
        catalog: the run's scenario.
        counters: the run's counters, as the report names them.
        counts: how many values each histogram holds, as the report names them.
    """
    reasons = []
    for part in catalog.judged():
        assert part.successes is not None  # judged() holds only those
        own = part.own(counters)
        label = part.prefix.rstrip(".") or part.name
        if part.needs is not None and not counts.get(part.prefix + part.needs[0], 0):
            reasons.append(f"{label}: {part.needs[1]}{breakdown(part, counters)}")
        elif part.successes(own) == 0:
            done = own.get("operations", 0)
            reasons.append(f"{label}: no {part.success} of {done} {part.operations}{breakdown(part, counters)}")
    return reasons


def breakdown(part: Part, counters: Mapping[str, int]) -> str:
    """`` (status_404=300, timeout=2)``: the part's failure counters that counted something."""
    own = part.own(counters)
    kinds = [f"{part.prefix}{k}={v}" for k, v in sorted(own.items()) if v and part.is_failure(k)]
    return f" ({', '.join(kinds)})" if kinds else ""
