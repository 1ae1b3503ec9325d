"""What ``geo-loadgen search`` costs to run: its CPU per request, beside the leanest sender.

The generator shares the machine with the server it measures, so every core-second it
spends is one the server lacks. At each rate, one hello-world aiohttp process (the
location_api benchmark's) is driven open loop for the same seconds by:

* ``geo-loadgen search`` (the command users run: scheduling, its own HTTP/1.1 client, HDR
  histograms, progress and the report), as a process of its own;
* the location_api benchmark's own driver (raw asyncio protocols, no histograms, no report):
  the floor for an open-loop sender written in Python;
* with ``--against REV``, also ``geo-loadgen search`` as of git revision REV (checked out in a
  temporary worktree), to compare a change with what came before.

Each sender's CPU is read twice: its process's user + system time from start to exit
(start-up and, for the generator, its report included), from ``getrusage``; and what it
used while it sent (the generator's ``generator_cpu_ms`` counter, the driver's own
``process_time`` around its run): what it took from the server's cores, the figure the ratio
uses. The rounds interleave the senders; figures are medians.

Usage::

    .venv/bin/python bench/loadgen_bench.py                       # 2,000, 5,000, 10,000 req/s, 10 s, 3 rounds
    .venv/bin/python bench/loadgen_bench.py --against 9584481     # and the generator as of that commit

Figures go to stdout and ``bench/out/loadgen/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import location_api_bench as api_bench  # noqa: E402
from host_steal import StealMeter  # noqa: E402

from geo_common.places import scatter  # noqa: E402

OUT = REPO / "bench" / "out" / "loadgen"


def say(message: str) -> None:
    print(f"loadgen_bench: {message}", file=sys.stderr, flush=True)


def measured(run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``'s figures with the CPU its child processes used and the host's steal meanwhile."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with StealMeter() as steal:
        figures = run()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**figures, "cpu_s": cpu, "host_steal": steal.share}


def run_geo_loadgen(
    checkout: Path, port: int, points_file: Path, rate: float, duration_s: int, out: Path
) -> dict[str, Any]:
    """``geo-loadgen search`` from the source tree at ``checkout``; its report's figures."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "loadgen",
            "search",
            "--url",
            f"http://127.0.0.1:{port}",
            "--rate",
            f"{rate:.0f}",
            "--duration",
            f"{duration_s}s",
            "--points",
            str(points_file),
            "--no-progress",
            "--out",
            str(out),
        ],
        cwd=checkout,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    report = json.loads((out / "report.json").read_text())
    latency = report["metrics"]["latency"]
    cpu_ms = report["counters"].get("generator_cpu_ms")  # None before the generator counted it
    return {
        "completed": report["completed"],
        "p50_ms": latency["p50"],
        "p99_ms": latency["p99"],
        "errors": report["counters"].get("errors", 0),
        "run_cpu_s": None if cpu_ms is None else cpu_ms / 1000,
    }


def run_driver(port: int, paths_file: Path, rate: float, duration_s: int) -> dict[str, Any]:
    result = api_bench.drive(port, paths_file, rate, duration_s)
    return {
        "completed": result["completed"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "errors": result["errors"],
        "run_cpu_s": result["cpu_s"],
    }


def median(values: list[float]) -> float:
    return api_bench.median(values)


def optional_median(values: list[float | None]) -> float | None:
    """The median, or None when a sender did not report the figure (an older generator)."""
    known = [v for v in values if v is not None]
    return median(known) if known else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU per request of geo-loadgen search (see the module docstring).")
    parser.add_argument("--rates", default="2000,5000,10000", help="requests per second, comma-separated")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--against", metavar="REV", help="also run geo-loadgen as of this git revision")
    args = parser.parse_args(argv)
    try:
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates must be numbers separated by commas, not {args.rates!r}")
    if not rates or min(rates) <= 0 or args.duration < 1 or args.rounds < 1:
        parser.error("rates must be positive, --duration and --rounds at least 1")

    OUT.mkdir(parents=True, exist_ok=True)
    points = list(scatter(api_bench.POINTS, seed=42, spread_m=2_000.0))
    points_file = OUT / "points.csv"
    points_file.write_text("".join(f"{lat!r},{lon!r}\n" for lat, lon in points))
    paths_file = OUT / "paths.txt"
    paths_file.write_text(
        "".join(
            f"/v1/search/nearby?latitude={lat!r}&longitude={lon!r}&radius={api_bench.RADIUS_M}&limit={api_bench.LIMIT}\n"
            for lat, lon in points
        )
    )
    say(
        f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )

    checkouts = {"geo-loadgen": REPO}
    worktree: Path | None = None
    if args.against:
        worktree = Path(tempfile.mkdtemp(prefix="loadgen-bench-"))
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.against],
            check=True,
            capture_output=True,
            text=True,
        )
        checkouts[f"geo-loadgen@{args.against}"] = worktree
    senders = [*checkouts, "driver"]
    server = api_bench.start_servers("hello", 1, dict(os.environ))
    results: dict[str, Any] = {}
    try:
        for rate in rates:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in senders}
            for n in range(1, args.rounds + 1):
                for name in senders:
                    if name == "driver":
                        runs[name].append(measured(partial(run_driver, server.port, paths_file, rate, args.duration)))
                    else:
                        checkout = checkouts[name]
                        runs[name].append(
                            measured(
                                partial(
                                    run_geo_loadgen,
                                    checkout,
                                    server.port,
                                    points_file,
                                    rate,
                                    args.duration,
                                    OUT / "report",
                                )
                            )
                        )
                say(
                    f"{rate:.0f} req/s, round {n}: "
                    + "; ".join(
                        f"{name} {runs[name][-1]['cpu_s']:.2f} s CPU, p99 {runs[name][-1]['p99_ms']:.2f} ms"
                        for name in senders
                    )
                )
            results[f"{rate:.0f}"] = {
                name: {
                    "cpu_s": median([r["cpu_s"] for r in rs]),
                    "cpu_us_per_request": median([r["cpu_s"] / max(1, r["completed"]) * 1e6 for r in rs]),
                    "run_cpu_s": optional_median([r["run_cpu_s"] for r in rs]),
                    "run_cpu_us_per_request": optional_median(
                        [None if r["run_cpu_s"] is None else r["run_cpu_s"] / max(1, r["completed"]) * 1e6 for r in rs]
                    ),
                    "completed_per_s": median([r["completed"] / args.duration for r in rs]),
                    "p50_ms": median([r["p50_ms"] for r in rs]),
                    "p99_ms": median([r["p99_ms"] for r in rs]),
                    "errors": sum(r["errors"] for r in rs),
                    "host_steal": api_bench.median_steal(rs),
                    "runs": rs,
                }
                for name, rs in runs.items()
            }
    finally:
        server.stop()
        if worktree is not None:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
                check=False,
                capture_output=True,
            )
            shutil.rmtree(worktree, ignore_errors=True)

    print()
    print(
        f"CPU of each sender for a {args.duration} s run (medians of {args.rounds} rounds): its whole process, "
        "start-up and report included, and while it sent (the cores it took from the server);\n"
        "ratio: its CPU while sending over the driver's"
    )
    header = (
        f"{'req/s':>7} {'sender':<24} {'CPU s':>7} {'us/req':>7} {'sending':>8} {'us/req':>7} {'/driver':>8} "
        f"{'done/s':>8} {'p50':>8} {'p99':>9} {'errors':>6} {'steal':>6}"
    )
    print(header)
    print("-" * len(header))
    for label, by_sender in results.items():
        floor = by_sender["driver"]["run_cpu_s"]
        for name, r in by_sender.items():
            sending = "-" if r["run_cpu_s"] is None else f"{r['run_cpu_s']:.2f}"
            per_request = "-" if r["run_cpu_us_per_request"] is None else f"{r['run_cpu_us_per_request']:.0f}"
            ratio = "-" if r["run_cpu_s"] is None else f"{r['run_cpu_s'] / floor:.2f}x"
            print(
                f"{label:>7} {name:<24} {r['cpu_s']:>7.2f} {r['cpu_us_per_request']:>7.0f} {sending:>8} "
                f"{per_request:>7} {ratio:>8} {r['completed_per_s']:>8.0f} {r['p50_ms']:>6.2f}ms "
                f"{r['p99_ms']:>7.2f}ms {r['errors']:>6} {api_bench.percent(r['host_steal']):>6}"
            )
    (OUT / "results.json").write_text(
        json.dumps(
            {
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "duration_s": args.duration,
                "rounds": args.rounds,
                "results": results,
            },
            indent=2,
        )
    )
    say(f"results in {OUT / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
