"""Location history rows per second into the PostgreSQL primary, with geo-friends' own writer.

    .venv/bin/python bench/history_write_bench.py          # 10k, 30k, 60k rows/s, 3 rounds, ~2 minutes

Each location update a user shares becomes one ``location_history`` row, written by the
``friends_ws.history.HistoryWriter`` of the process that received it: one binary COPY per
``GEO_HISTORY_FLUSH_MS`` or per ``GEO_HISTORY_FLUSH_ROWS`` rows. Here ``--writers`` such
writers (each standing for one geo-friends process, sharing one pool of ``--connections``)
receive rows for random users among ``--users`` on an open-loop schedule at each rate of
``--rates`` for ``--duration`` seconds, into a database of the bench's own (migrated, so the
table has its real indexes; dropped afterwards).

Measured per run, from ``/proc`` and PostgreSQL:

* **primary CPU per row**: the user + system time of the primary's backends serving this
  database (the COPYs) and of its shared processes (WAL writer, checkpointer, background
  writer, WAL sender to the replica, autovacuum), per row written. Rows per second per
  primary core is its inverse: the figure docs/capacity.md scales.
* **replica replay CPU per row**: the replica's ``startup`` process, which applies the WAL
  alone (one process, one core, however many cores the replica has).
* **WAL bytes per row** (``pg_current_wal_lsn`` moves; the whole server's, so others'
  writes during the run count too) and, at the end, **bytes per row on disk** (the table and
  its two indexes).

The writers, PostgreSQL and the replica share this machine's cores; rows/s reached here are
this machine's, the CPU per row is what carries to other machines. Results go to stdout and
``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402

from friends_ws.history import HistoryWriter  # noqa: E402
from geo_common.database import Database, PoolOptions  # noqa: E402
from geo_common.history_db import HistoryRow  # noqa: E402
from geo_common.settings import load_settings  # noqa: E402

from bench_db import drop_database, new_database  # noqa: E402

DATABASE = "geo_bench_history"
TICK_S = 0.001
CLK = os.sysconf("SC_CLK_TCK")
#: A client backend's command line names its peer: ``127.0.0.1(40512)`` or ``[local]``.
_CLIENT = re.compile(r"\(\d+\)|\[local\]")


def say(text: str) -> None:
    print(text, flush=True)


def children(parent: int) -> dict[int, tuple[str, float]]:
    """``pid -> (command line, CPU seconds)`` of a process's children."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != parent:
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError, ValueError):
            continue
        out[int(entry.name)] = (cmd, (int(fields[11]) + int(fields[12])) / CLK)
    return out


async def postmaster(dsn: str) -> int:
    """The pid of the server's postmaster (the parent of a backend, read while it lives)."""
    conn = await asyncpg.connect(dsn)
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    finally:
        await conn.close()


class ServerCpu:
    """CPU of one PostgreSQL server's processes, split as the bench reports it."""

    def __init__(self, master: int, database: str) -> None:
        self.master, self.database = master, database

    def read(self) -> dict[int, tuple[str, float]]:
        return children(self.master)

    def split(self, before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
        """CPU used between two readings: this database's backends, the server's shared
        processes (WAL writer, checkpointer, WAL sender...), the replica's startup process.
        Other databases' backends are left out (the stack is shared)."""
        out = {"backends": 0.0, "shared": 0.0, "startup": 0.0}
        for pid, (cmd, cpu) in after.items():
            used = cpu - before.get(pid, (cmd, 0.0))[1]
            if f" {self.database} " in f"{cmd} ":
                out["backends"] += used
            elif "startup" in cmd:
                out["startup"] += used
            elif "walsender" in cmd or not _CLIENT.search(cmd):
                out["shared"] += used
        return out


async def lsn(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))


async def one_run(
    args: argparse.Namespace,
    rate: float,
    writers: list[HistoryWriter],
    primary: ServerCpu,
    replica: ServerCpu | None,
    admin: asyncpg.Connection,
    replica_conn: asyncpg.Connection | None,
) -> dict[str, Any]:
    rng = random.Random(int(rate))
    written0, batches0 = sum(w.written for w in writers), sum(w.batches for w in writers)
    p0, r0 = primary.read(), replica.read() if replica else {}
    wal0 = await lsn(admin)
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    while (now := loop.time()) < start + args.duration:
        due = int((now - start) * rate) - sent
        if due > 0:
            received = dt.datetime.now(dt.UTC)
            for k in range(due):
                writers[(sent + k) % len(writers)].append(
                    HistoryRow(
                        rng.randint(1, args.users), rng.uniform(-60, 70), rng.uniform(-180, 180), received, received
                    )
                )
            sent += due
        await asyncio.sleep(TICK_S)
    sending_s = loop.time() - start
    for w in writers:  # what is still waiting, as a shutdown would
        await w.flush()
    wal1 = await lsn(admin)
    p1 = primary.read()
    lag_s = 0.0
    if replica_conn is not None and replica is not None:
        t0 = time.monotonic()
        while not await replica_conn.fetchval("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn >= $1", wal1):
            await asyncio.sleep(0.05)
        lag_s = time.monotonic() - t0
    r1 = replica.read() if replica else {}
    rows = sum(w.written for w in writers) - written0
    pcpu = primary.split(p0, p1)
    rcpu = replica.split(r0, r1) if replica else {"startup": 0.0}
    per_row = (pcpu["backends"] + pcpu["shared"]) / rows
    return {
        "rate": rate,
        "rows": rows,
        "rows_per_s": round(rows / sending_s),
        "primary_backends_us_per_row": round(pcpu["backends"] / rows * 1e6, 2),
        "primary_shared_us_per_row": round(pcpu["shared"] / rows * 1e6, 2),
        "primary_us_per_row": round(per_row * 1e6, 2),
        "rows_per_primary_cpu_s": round(1 / per_row) if per_row else None,
        "replica_startup_us_per_row": round(rcpu["startup"] / rows * 1e6, 2),
        "rows_per_replay_cpu_s": round(rows / rcpu["startup"]) if rcpu["startup"] else None,
        "replica_caught_up_after_s": round(lag_s, 2),
        "wal_bytes_per_row": round((wal1 - wal0) / rows, 1),
        "rows_per_copy": round(rows / max(1, sum(w.batches for w in writers) - batches0), 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = load_settings()
    settings = await new_database(base, DATABASE)
    results: dict[str, Any] = {
        "loadavg": os.getloadavg(),
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "flush_ms": base.history_flush_ms,
        "flush_rows": base.history_flush_rows,
    }
    pool = PoolOptions("geo-friends", max_size=args.connections, connect_timeout_s=5.0, acquire_timeout_s=None)
    db = await Database.open(settings, pool=pool, replicas=False)
    admin = await asyncpg.connect(settings.pg_primary)
    replica_conn = await asyncpg.connect(settings.pg_replicas[0]) if settings.pg_replicas else None
    primary = ServerCpu(await postmaster(settings.pg_primary), DATABASE)
    replica = ServerCpu(await postmaster(settings.pg_replicas[0]), DATABASE) if settings.pg_replicas else None
    writers = [
        HistoryWriter(db, flush_ms=base.history_flush_ms, flush_rows=base.history_flush_rows)
        for _ in range(args.writers)
    ]
    for w in writers:
        w.start()
    try:
        runs = []
        for round_no in range(args.rounds):
            for rate in args.rates:
                runs.append(await one_run(args, rate, writers, primary, replica, admin, replica_conn))
                runs[-1]["round"] = round_no + 1
                say(json.dumps(runs[-1]))
        results["runs"] = runs
        results["summary"] = [
            {
                key: (statistics.median(r[key] for r in runs if r["rate"] == rate) if key != "rate" else rate)
                for key in (
                    "rate",
                    "rows_per_s",
                    "primary_us_per_row",
                    "rows_per_primary_cpu_s",
                    "replica_startup_us_per_row",
                    "rows_per_replay_cpu_s",
                    "wal_bytes_per_row",
                    "rows_per_copy",
                )
            }
            for rate in args.rates
        ]
        total, heap, count = await admin.fetchrow(
            "SELECT pg_total_relation_size('location_history'), pg_relation_size('location_history'), "
            "(SELECT count(*) FROM location_history)"
        )
        results["disk"] = {
            "rows": count,
            "bytes_per_row_total": round(total / count, 1),
            "bytes_per_row_heap": round(heap / count, 1),
        }
    finally:
        for w in writers:
            await w.close()
        await db.close()
        await admin.close()
        if replica_conn is not None:
            await replica_conn.close()
        await drop_database(base, DATABASE)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description="History rows/s into the primary (see the module docstring).")
    parser.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",") if x],
        default=[10_000.0, 30_000.0, 60_000.0],
        help="rows per second (default 10000,30000,60000)",
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per rate (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the rates (default 3)")
    parser.add_argument("--writers", type=int, default=64, help="HistoryWriters, one per geo-friends process (64)")
    parser.add_argument("--connections", type=int, default=8, help="the writers' pool of connections (default 8)")
    parser.add_argument("--users", type=int, default=10_000_000, help="user ids rows are spread over (10M)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "history_write.json", help="JSON results")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = asyncio.run(run(args))
    for row in results["summary"]:
        say(json.dumps(row))
    say(json.dumps(results["disk"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    say(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
