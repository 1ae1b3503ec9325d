"""Running a scenario: in this process or in ``--workers K`` processes merged exactly.

The parent shows progress, merges the workers' recorders (histogram addition), prints the
summary, writes ``--out`` files and judges the run: its ``--fail-if`` and ``--max-errors``
rules, and whether each part of it succeeded at anything at all.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from loadgen.catalog import Catalog, breakdown, no_success_reasons
from loadgen.junit import write_junit
from loadgen.monitor import watch_cpu, watch_loop_lag
from loadgen.progress import Snapshot, show_progress, snapshot
from loadgen.redact import plain
from loadgen.report import build_summary, print_summary, write_outputs
from loadgen.stats import Recorder
from loadgen.thresholds import MAX_ERRORS, Threshold, Verdict, evaluate


Scenario = Callable[[Any, Recorder, Any], Awaitable[None]]
T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to its end on uvloop, or on asyncio's own loop where uvloop is missing.

    On uvloop the generator spends less CPU per request (docs/loadgen.md has the figures),
    which it leaves to the server it measures when they share a machine. Its
    times are read from :func:`loadgen.clock.now`, not from the loop, whose clock uvloop keeps
    in whole milliseconds.
    """
    try:
        import uvloop
    except ImportError:  # not built for this platform (Windows)
        return asyncio.run(main)
    return uvloop.run(main)


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """How to run, whatever the scenario."""

    name: str
    workers: int = 1
    out: Path | None = None
    #: Every rule the run is held to: ``--fail-if``'s and ``--max-errors``'.
    fail_if: tuple[Threshold, ...] = ()
    #: What the scenario records; with it, a part that succeeded at nothing fails the run.
    catalog: Catalog | None = None
    progress: bool = True
    progress_interval_s: float = 5.0
    #: Where to write the verdict as JUnit XML (``--junit``), if anywhere.
    junit: Path | None = None


async def run_in_process(
    scenario: Scenario,
    options: Any,
    live: Any,
    recorder: Recorder,
    *,
    name: str,
    progress: bool,
    progress_interval_s: float,
    tick: Callable[[Recorder, Any], None] | None = None,
) -> None:
    """Run a scenario with the loop-lag and CPU watchers and live progress; count the CPU it used
    (``generator_cpu_ms``)."""
    stop = asyncio.Event()
    started = time.monotonic()
    helpers = [
        asyncio.create_task(watch_loop_lag(recorder, stop)),
        asyncio.create_task(watch_cpu(recorder, stop, label=f"geo-loadgen {name}")),
        asyncio.create_task(
            show_progress(
                name,
                lambda: snapshot(recorder, started, live.in_flight),
                stop,
                interval_s=progress_interval_s,
                enabled=progress,
            )
        ),
    ]
    if tick is not None:
        helpers.append(asyncio.create_task(_ticker(tick, recorder, live, stop)))
    cpu = time.process_time()
    try:
        await scenario(options, recorder, live)
    finally:
        stop.set()
        await asyncio.gather(*helpers, return_exceptions=True)
        # What the generator took from the machine's cores while the scenario ran (its
        # preparation included; start-up and the report after it not).
        recorder.count("generator_cpu_ms", round((time.process_time() - cpu) * 1000))


async def _ticker(tick: Callable[[Recorder, Any], None], recorder: Recorder, live: Any, stop: asyncio.Event) -> None:
    while not stop.is_set():
        tick(recorder, live)
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            pass


def _run_here(
    scenario: Scenario,
    options: Any,
    live: Any,
    main_metric: str,
    *,
    name: str,
    progress: bool,
    progress_interval_s: float,
    tick: Callable[[Recorder, Any], None] | None = None,
) -> Recorder:
    """:func:`run_in_process` on its own event loop, into a new recorder, which it returns."""
    recorder = Recorder(main_metric=main_metric)
    run_loop(
        run_in_process(
            scenario,
            options,
            live,
            recorder,
            name=name,
            progress=progress,
            progress_interval_s=progress_interval_s,
            tick=tick,
        )
    )
    return recorder


def _worker(
    scenario: Scenario,
    options: Any,
    live_factory: Callable[[], Any],
    main_metric: str,
    name: str,
    updates: Any,
    results: Any,
    index: int,
) -> None:
    def tick(recorder: Recorder, live: Any) -> None:
        updates.put((index, recorder.to_dict(), live.in_flight))

    live = live_factory()
    try:
        recorder = _run_here(
            scenario,
            options,
            live,
            main_metric,
            name=f"{name}[{index}]",
            progress=False,
            progress_interval_s=1.0,
            tick=tick,
        )
        results.put((index, recorder.to_dict(), None))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which exits non-zero
        results.put((index, None, f"{type(exc).__name__}: {exc}"))


def run(
    scenario: Scenario,
    options: Any,
    live_factory: Callable[[], Any],
    config: RunConfig,
    *,
    main_metric: str = "latency",
    reported: Any = None,
) -> int:
    """Run a scenario to its end and report; returns the process exit code.

    Args:
        reported: the options the report shows, when they differ from those the scenario runs
            with (set-up done before the run, so not done again by it); default ``options``.

    Returns:
        0: done and every rule passed; 1: a rule failed, a part of the run succeeded at
        nothing, or a worker crashed (a one-line reason each on stderr).
    """
    started = time.monotonic()
    if config.workers <= 1:
        recorder = _run_here(
            scenario,
            options,
            live_factory(),
            main_metric,
            name=config.name,
            progress=config.progress,
            progress_interval_s=config.progress_interval_s,
        )
        failed_workers: list[str] = []
    else:
        recorder, failed_workers = _run_workers(scenario, options, live_factory, config, main_metric, started)
    wall = time.monotonic() - started
    summary = build_summary(config.name, recorder, wall, _plain(options if reported is None else reported))
    verdicts: list[Verdict] = evaluate(list(config.fail_if), recorder.histograms, recorder.counters, summary["rate"])
    failures = _failures(config.catalog, verdicts, recorder)
    if failures:
        summary["failures"] = failures
    if failed_workers:
        summary["worker_failures"] = failed_workers
    print_summary(summary, verdicts, sys.stdout)
    if config.out is not None:
        files = write_outputs(config.out, summary, recorder, verdicts)
        print(f"geo-loadgen: wrote {', '.join(str(f) for f in files)}")
    if config.junit is not None:
        print(f"geo-loadgen: wrote {write_junit(config.junit, summary, verdicts)}")
    for message in failed_workers:
        print(f"geo-loadgen: {message}", file=sys.stderr)
    for reason in failures:
        print(f"geo-loadgen: FAILED: {reason}", file=sys.stderr)
    return 1 if failed_workers or failures or not all(v.passed for v in verdicts) else 0


def _failures(catalog: Catalog | None, verdicts: list[Verdict], recorder: Recorder) -> list[str]:
    """Why the run fails without a ``--fail-if`` rule saying so: a part that succeeded at
    nothing, else errors above ``--max-errors``. Empty when neither."""
    if catalog is None:
        return []
    counts = {name: h.get_total_count() for name, h in recorder.histograms.items()}
    reasons = no_success_reasons(catalog, recorder.counters, counts)
    if reasons:  # its errors are then all there is; saying so again adds nothing
        return reasons
    for verdict in verdicts:
        rule = verdict.threshold
        if rule.origin != MAX_ERRORS or verdict.passed:
            continue
        part = catalog.counter_part(rule.measure.name)
        unit = "%" if rule.percent else ""
        of = f" of {recorder.counters.get(rule.measure.base, 0)} operations" if rule.percent else ""
        reasons.append(
            f"{rule.measure.name} {verdict.actual:.3g}{unit}{of}, above {MAX_ERRORS} {rule.value:g}{unit}"
            + (breakdown(part, recorder.counters) if part is not None else "")
        )
    return reasons


def _run_workers(
    scenario: Scenario,
    options: Any,
    live_factory: Callable[[], Any],
    config: RunConfig,
    main_metric: str,
    started: float,
) -> tuple[Recorder, list[str]]:
    ctx = mp.get_context("spawn")
    updates: Any = ctx.Queue()
    results: Any = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                scenario,
                options.for_worker(i, config.workers),
                live_factory,
                main_metric,
                config.name,
                updates,
                results,
                i,
            ),
            daemon=True,
        )
        for i in range(config.workers)
    ]
    for p in procs:
        p.start()
    latest: dict[int, tuple[Recorder, int]] = {}
    done: dict[int, tuple[dict[str, Any] | None, str | None]] = {}
    last_print = time.monotonic()
    while len(done) < len(procs):
        try:
            index, raw, in_flight = updates.get(timeout=0.5)
            latest[index] = (Recorder.from_dict(raw), in_flight)
        except queue.Empty:
            pass
        while True:
            try:
                index, raw, error = results.get_nowait()
            except queue.Empty:
                break
            done[index] = (raw, error)
        if any(not p.is_alive() and p.exitcode not in (0, None) and i not in done for i, p in enumerate(procs)):
            for i, p in enumerate(procs):
                if not p.is_alive() and i not in done:
                    done[i] = (None, f"worker {i} died with exit code {p.exitcode}")
        if config.progress and time.monotonic() - last_print >= config.progress_interval_s and latest:
            last_print = time.monotonic()
            merged = Recorder(main_metric=main_metric)
            for rec, _ in latest.values():
                merged.merge(rec)
            snap: Snapshot = snapshot(merged, started, sum(f for _, f in latest.values()))
            print(
                f"{config.name} x{config.workers} {snap.elapsed_s:6.1f}s  rate {snap.rate:8.1f}/s  done {snap.completed:>9}  "
                f"in flight {snap.in_flight:>5}  errors {snap.errors:>6}  p99 {snap.p99_ms:8.2f} ms",
                file=sys.stderr,
                flush=True,
            )
    for p in procs:
        p.join(timeout=10)
    recorder = Recorder(main_metric=main_metric)
    failures = []
    for index in sorted(done):
        raw, error = done[index]
        if raw is not None:
            recorder.merge(Recorder.from_dict(raw))
        if error:
            failures.append(f"worker {index} failed: {error}")
    return recorder, failures


def _plain(options: Any) -> dict[str, Any]:
    """The options as the report's plain data: the one way options reach any output, so the
    one place secrets are kept out of it (:func:`loadgen.redact.plain`)."""
    result: dict[str, Any] = plain(asdict(options))
    return result
