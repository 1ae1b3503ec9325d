"""Running a scenario: in this process or in ``--workers K`` processes merged exactly.

The parent shows progress, merges the workers' recorders (histogram addition), prints the
summary, writes ``--out`` files and judges ``--fail-if`` rules.
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

from loadgen.monitor import watch_cpu, watch_loop_lag
from loadgen.progress import Snapshot, show_progress, snapshot
from loadgen.report import build_summary, print_summary, write_outputs
from loadgen.stats import Recorder
from loadgen.thresholds import Threshold, Verdict, evaluate


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
    fail_if: tuple[Threshold, ...] = ()
    progress: bool = True
    progress_interval_s: float = 5.0


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

    recorder = Recorder(main_metric=main_metric)
    live = live_factory()
    try:
        run_loop(
            run_in_process(
                scenario,
                options,
                live,
                recorder,
                name=f"{name}[{index}]",
                progress=False,
                progress_interval_s=1.0,
                tick=tick,
            )
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
) -> int:
    """Run a scenario to its end and report; returns the process exit code.

    0: done and every ``--fail-if`` rule passed; 1: a rule failed or a worker crashed.
    """
    started = time.monotonic()
    if config.workers <= 1:
        recorder = Recorder(main_metric=main_metric)
        live = live_factory()
        run_loop(
            run_in_process(
                scenario,
                options,
                live,
                recorder,
                name=config.name,
                progress=config.progress,
                progress_interval_s=config.progress_interval_s,
            )
        )
        failed_workers: list[str] = []
    else:
        recorder, failed_workers = _run_workers(scenario, options, live_factory, config, main_metric, started)
    wall = time.monotonic() - started
    summary = build_summary(config.name, recorder, wall, _plain(options))
    latency = summary["metrics"].get(main_metric, {})
    verdicts: list[Verdict] = evaluate(
        list(config.fail_if), latency, recorder.counters, summary["operations"], summary["rate"]
    )
    print_summary(summary, verdicts, sys.stdout)
    if config.out is not None:
        files = write_outputs(config.out, summary, recorder, verdicts)
        print(f"geo-loadgen: wrote {', '.join(str(f) for f in files)}")
    for message in failed_workers:
        print(f"geo-loadgen: {message}", file=sys.stderr)
    return 1 if failed_workers or not all(v.passed for v in verdicts) else 0


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
    raw = asdict(options)
    return {k: (v.value if hasattr(v, "value") else v) for k, v in raw.items()}
