"""Server-paced updates (#33): ``geo-loadgen friends`` paced and unpaced, with drops, in the background.

    .venv/bin/python bench/friends_pace_bench.py                  # the defaults below, ~12 minutes
    .venv/bin/python bench/friends_pace_bench.py --duration 30 --users 100   # a quick look

One ``geo-api`` and one ``geo-friends`` process on a database of their own on the local stack
(``geo-stack up``), with ``GEO_PACE_FAST_S``/``GEO_PACE_SLOW_S`` short enough for a run of
minutes; ``geo-loadgen`` runs as users run it, once per case, each with users of its own:

* ``unpaced``: a location every ``--interval``, whatever the server says;
* ``paced``: the same population, the clients obeying ``pace`` frames (``--paced``);
* ``paced+background``: paced, and a share of the clients goes to the background for a while
  (closes its socket, uploads over HTTP, comes back and resumes): a scenario file;
* ``paced+drops``: paced, every socket dropped every ``--drop-every`` seconds, resumed.

In every case a fifth of the communities (``--near-share``) is placed near each other and the
rest scattered out of range. Each case's report is kept in ``bench/out/friends_pace/CASE``;
the table printed at the end is what docs/benchmarks.md records.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from geo_common.settings import load_settings  # noqa: E402

from bench_db import drop_database, new_database  # noqa: E402

OUT = REPO / "bench" / "out" / "friends_pace"


def say(text: str) -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def loadgen(args: list[str]) -> dict[str, Any]:
    """Run geo-loadgen to its end; its report.json (``--out`` is among ``args``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}
    out = Path(args[args.index("--out") + 1])
    done = subprocess.run(
        [sys.executable, "-m", "loadgen", *args, "--no-progress"], env=env, cwd=REPO, capture_output=True, text=True
    )
    tail = [line for line in done.stdout.splitlines() if not line.startswith("friends: set-up")]
    say("\n".join(tail[-30:]))
    if done.returncode not in (0, 1):
        raise RuntimeError(f"geo-loadgen exited {done.returncode}: {done.stderr}")
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    report["exit"] = done.returncode
    return report


def upload_time(ws_port: int) -> tuple[float, float]:
    """geo-friends' own count and summed seconds of ``POST /v1/me/locations`` so far (/metrics)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{ws_port}/metrics", timeout=10).read().decode()
    count = total = 0.0
    for line in text.splitlines():
        if "/v1/me/locations" in line and 'method="POST"' in line:
            name, value = line.rsplit(" ", 1)
            if "_request_duration_seconds_count" in name:
                count += float(value)
            elif "_request_duration_seconds_sum" in name:
                total += float(value)
    return count, total


def row(case: str, report: dict[str, Any]) -> dict[str, Any]:
    c, m = report["counters"], report["metrics"]
    age = m.get("position_age", {})
    d = report.get("deliveries", {})
    return {
        "case": case,
        "updates_sent": c.get("updates_sent", 0),
        "uploads": c.get("uploads", 0),
        "expected": d.get("expected", 0),
        "delivered": d.get("delivered", 0),
        "lost": d.get("lost", 0),
        "cut_off": d.get("cut_off", 0),
        "superseded": d.get("superseded", 0),
        "duplicates": d.get("duplicates", 0),
        "unjudged": d.get("unjudged", 0),
        "age_p50_s": round(age.get("p50", float("nan")) / 1000, 3),
        "age_p99_s": round(age.get("p99", float("nan")) / 1000, 3),
        "age_max_s": round(age.get("max", float("nan")) / 1000, 3),
        "forced_drops": c.get("forced_disconnects", 0),
        "backgrounded": c.get("backgrounded", 0),
        "resumes": c.get("resumes", 0),
        "resume_refused": c.get("resume_refused", 0),
        "errors": c.get("errors", 0),
        "p99_ms": round(m.get("latency", {}).get("p99", float("nan")), 2),
        "upload_p50_ms": round(m.get("upload", {}).get("p50", float("nan")), 1),
        "upload_p99_ms": round(m.get("upload", {}).get("p99", float("nan")), 1),
        "exit": report["exit"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--friends", type=int, default=10, help="friends per user (default 10)")
    parser.add_argument("--duration", type=int, default=120, help="seconds of each run (default 120)")
    parser.add_argument("--interval", type=float, default=2.0, help="the unpaced interval, seconds (default 2)")
    parser.add_argument("--fast", type=int, default=2, help="GEO_PACE_FAST_S (default 2)")
    parser.add_argument("--slow", type=int, default=20, help="GEO_PACE_SLOW_S (default 20)")
    parser.add_argument("--near-share", type=float, default=0.2)
    parser.add_argument("--drop-every", type=float, default=20.0, help="paced+drops: seconds (default 20)")
    parser.add_argument("--cases", default="unpaced,paced,paced+background,paced+drops")
    args = parser.parse_args()

    base = load_settings()
    name = f"geo_pace_{os.getpid()}_{secrets.token_hex(3)}"
    settings = asyncio.run(new_database(base, name))
    api_port, ws_port = free_port(), free_port()
    env = dict(
        os.environ,
        GEO_PG_PRIMARY=settings.pg_primary,
        GEO_PG_REPLICAS="",
        GEO_REDIS_NAMESPACE=settings.redis_namespace,
        GEO_LOG_LEVEL="warning",
        GEO_API_ROLE="all",
        GEO_PACE_FAST_S=str(args.fast),
        GEO_PACE_SLOW_S=str(args.slow),
        GEO_UPLOAD_MAX_PER_MIN=str(max(12, 120 // args.fast)),
        GEO_JWT_SECRET=base.jwt_secret,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    key = OUT / "signing.key"
    key.unlink(missing_ok=True)
    key.touch(mode=0o600)
    key.write_text(base.jwt_secret + "\n")
    servers = [
        subprocess.Popen([str(REPO / ".venv/bin/geo-api"), "--port", str(api_port)], env=env, cwd=REPO),
        subprocess.Popen([str(REPO / ".venv/bin/geo-friends"), "--port", str(ws_port)], env=env, cwd=REPO),
    ]
    say(
        f"geo-api :{api_port}, geo-friends :{ws_port}, GEO_PACE_FAST_S={args.fast} GEO_PACE_SLOW_S={args.slow}, "
        f"GEO_UPLOAD_MAX_PER_MIN={env['GEO_UPLOAD_MAX_PER_MIN']}, database {name}"
    )
    rows = []
    server_uploads = (0.0, 0.0)
    try:
        wait_port(api_port)
        wait_port(ws_port)
        common = [
            "friends",
            "--api",
            f"http://127.0.0.1:{api_port}",
            "--ws",
            f"ws://127.0.0.1:{ws_port}",
            "--signing-key-file",
            str(key),
            "--users",
            str(args.users),
            "--friends-per-user",
            str(args.friends),
            "--interval",
            f"{args.interval:g}s",
            "--duration",
            f"{args.duration}s",
            "--ramp",
            "5s",
            "--near-share",
            str(args.near_share),
            "--fail-if",
            "lost==0,duplicates==0",
        ]
        for i, case in enumerate(args.cases.split(",")):
            first = str(10_000_000 + 100_000 * i)
            out = str(OUT / case.replace("+", "_"))
            say(f"--- {case}")
            if case == "unpaced":
                report = loadgen([*common, "--first-user-id", first, "--out", out])
            elif case == "paced":
                report = loadgen([*common, "--paced", "--first-user-id", first, "--out", out])
            elif case == "paced+drops":
                drops = ["--disconnect-every", f"{args.drop_every:g}s", "--first-user-id", first]
                report = loadgen([*common, "--paced", *drops, "--out", out])
            elif case == "paced+background":
                scenario = OUT / "background.toml"
                scenario.write_text(
                    f'duration = "{args.duration}s"\n[friends]\napi = "http://127.0.0.1:{api_port}"\n'
                    f'ws = "ws://127.0.0.1:{ws_port}"\nusers = {args.users}\nfriends_per_user = {args.friends}\n'
                    f'interval = "{args.interval:g}s"\nramp = "5s"\npaced = true\nnear_share = {args.near_share}\n'
                    f"first_user_id = {first}\n"
                    # A third of the phones in the background for a minute, uploading; then back.
                    f'[[events]]\nat = "20s"\nkind = "background"\nfraction = 0.33\ninterval = "{args.slow}s"\n'
                    f'for = "{max(10, args.duration // 2)}s"\n'
                )
                report = loadgen(
                    ["mixed", "--scenario", str(scenario), "--signing-key-file", str(key), "--out", out]
                    + ["--fail-if", "lost==0,duplicates==0"]
                )
            else:
                raise SystemExit(f"unknown case {case!r}")
            rows.append(row(case, report))
            count, total = upload_time(ws_port)
            uploads = count - server_uploads[0]
            rows[-1]["server_upload_ms"] = round(1000 * (total - server_uploads[1]) / uploads, 1) if uploads else None
            server_uploads = (count, total)
            say(json.dumps(rows[-1]))
    finally:
        for proc in servers:
            stop(proc)
        asyncio.run(drop_database(base, name))
    (OUT / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    cols = list(rows[0]) if rows else []
    say("| " + " | ".join(cols) + " |")
    for r in rows:
        say("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
