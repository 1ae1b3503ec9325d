"""geo-stack from nothing, in a throwaway folder: up, idempotent up, status, env, down, up again."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import pytest

from deploy.stack.procs import cmdline, pid_alive
from geo_common.secrets_check import secret_problem
from geo_common.settings import DEV_JWT_SECRET, read_env_file
from tests.ports import free_block


def geo_stack(stack_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.stack.cli", "--dir", str(stack_dir), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def status_pids(stack_dir: Path) -> dict[str, int | None]:
    proc = geo_stack(stack_dir, "status")
    pids: dict[str, int | None] = {}
    for line in proc.stdout.splitlines():
        name, _address, *rest = line.split()
        pids[name] = int(rest[1]) if rest[0] == "pid" else None
    return pids


@pytest.fixture
def stack_dir(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "stack"
    yield root
    geo_stack(root, "down")
    state = root / "state.json"
    if state.is_file():
        pg_root = json.loads(state.read_text()).get("pg_root", "")
        if pg_root and not pg_root.startswith(str(root)):
            shutil.rmtree(pg_root, ignore_errors=True)


def test_up_status_down_up_again(stack_dir: Path) -> None:
    # Nothing yet: status says so and fails; down has nothing to stop.
    assert geo_stack(stack_dir, "status").returncode == 1
    assert "nothing was running" in geo_stack(stack_dir, "down").stdout

    first = geo_stack(stack_dir, "up", "--port-base", str(free_block(20, cluster=True)))
    assert first.returncode == 0, first.stderr
    env = read_env_file(stack_dir / "env")
    assert set(env) == {"GEO_PG_PRIMARY", "GEO_PG_REPLICAS", "GEO_REDIS_URL", "GEO_REDIS_CLUSTER", "GEO_JWT_SECRET"}
    assert len(env["GEO_REDIS_CLUSTER"].split(",")) == 3
    # The stack's own signing key: random, not the built-in one, readable by its owner only.
    assert secret_problem(env["GEO_JWT_SECRET"]) is None and env["GEO_JWT_SECRET"] != DEV_JWT_SECRET
    for private in ("env", "state.json"):
        assert stat.S_IMODE((stack_dir / private).stat().st_mode) == 0o600, private
    assert env["GEO_JWT_SECRET"] not in first.stdout + first.stderr

    status = geo_stack(stack_dir, "status")
    assert status.returncode == 0, status.stdout
    assert "streaming" in status.stdout and "not streaming" not in status.stdout
    assert status.stdout.count("cluster ok") == 3
    pids = status_pids(stack_dir)
    assert len(pids) == 6 and all(pids.values())

    # `env` prints what `up` wrote.
    printed = geo_stack(stack_dir, "env")
    assert printed.returncode == 0
    assert printed.stdout == (stack_dir / "env").read_text()

    # Idempotent: a second `up` keeps the same processes and endpoints.
    again = geo_stack(stack_dir, "up")
    assert again.returncode == 0, again.stderr
    assert status_pids(stack_dir) == pids
    assert read_env_file(stack_dir / "env") == env

    down = geo_stack(stack_dir, "down")
    assert down.returncode == 0
    for pid in pids.values():
        assert pid is not None
        assert not pid_alive(pid), f"pid {pid} ({cmdline(pid)}) still runs after down"
    assert geo_stack(stack_dir, "status").returncode == 1

    # Up after down: same ports, everything back, replica streaming again.
    third = geo_stack(stack_dir, "up")
    assert third.returncode == 0, third.stderr
    assert read_env_file(stack_dir / "env") == env
    status = geo_stack(stack_dir, "status")
    assert status.returncode == 0 and "not streaming" not in status.stdout


def test_down_stops_only_its_own_processes(stack_dir: Path, stack_env: dict[str, str]) -> None:
    # The session's main stack keeps running while a throwaway stack goes up and down.
    main_root = Path(os.environ.get("GEO_STACK_DIR", Path(__file__).resolve().parents[2] / ".stack"))
    main_before = status_pids(main_root)
    # What ran of it (a full tier that `make run-full` once started and stopped is listed, stopped).
    running = {name: pid for name, pid in main_before.items() if pid}
    assert len(running) >= 6  # the databases and Redis the session's tests use
    assert geo_stack(stack_dir, "up", "--port-base", str(free_block(20, cluster=True))).returncode == 0
    assert geo_stack(stack_dir, "down").returncode == 0
    assert status_pids(main_root) == main_before
    assert all(pid_alive(pid) for pid in running.values())


def _sql(dsn: str, query: str) -> object:
    async def go() -> object:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    return asyncio.run(go())


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _port(dsn: str) -> int:
    return int(dsn.split("@127.0.0.1:")[1].split("/")[0])


def test_failover_swaps_roles_rebuilds_the_old_primary_and_loses_no_row(stack_dir: Path) -> None:
    assert geo_stack(stack_dir, "up", "--port-base", str(free_block(20, cluster=True))).returncode == 0
    env = read_env_file(stack_dir / "env")
    first_primary, first_replica = env["GEO_PG_PRIMARY"], env["GEO_PG_REPLICAS"]
    _sql(first_primary, "CREATE TABLE failover_rows (id int PRIMARY KEY)")
    _sql(first_primary, "INSERT INTO failover_rows SELECT generate_series(1, 100)")

    # 1. Planned: the primary runs; it is shut down cleanly, the replica promoted, the old
    #    primary rebuilt as the new replica.
    done = geo_stack(stack_dir, "failover")
    assert done.returncode == 0, done.stderr
    env = read_env_file(stack_dir / "env")
    assert (_port(env["GEO_PG_PRIMARY"]), _port(env["GEO_PG_REPLICAS"])) == (_port(first_replica), _port(first_primary))
    primary, replica = env["GEO_PG_PRIMARY"], env["GEO_PG_REPLICAS"]
    assert _sql(primary, "SELECT count(*) FROM failover_rows") == 100  # nothing committed was lost
    assert _sql(primary, "SELECT pg_is_in_recovery()") is False
    assert _sql(replica, "SELECT pg_is_in_recovery()") is True
    assert _sql(primary, "SHOW synchronous_standby_names") == ""  # no full tier: commits do not wait
    _sql(primary, "INSERT INTO failover_rows VALUES (101)")
    _eventually(lambda: _sql(replica, "SELECT count(*) FROM failover_rows") == 101, "the rebuilt replica to replay")
    status = geo_stack(stack_dir, "status")
    assert status.returncode == 0 and "not streaming" not in status.stdout
    assert f"postgres-primary         127.0.0.1:{_port(primary)}" in status.stdout

    # The roles survive down and up: one primary, its replica streaming.
    assert geo_stack(stack_dir, "down").returncode == 0
    assert geo_stack(stack_dir, "up").returncode == 0
    assert read_env_file(stack_dir / "env") == env
    assert _sql(replica, "SELECT pg_is_in_recovery()") is True
    _eventually(lambda: "not streaming" not in geo_stack(stack_dir, "status").stdout, "the replica to stream")

    # 2. Promoted by hand: `up` refuses to start two primaries and names the way out; the
    #    failover takes the promoted server as the primary and rebuilds the other.
    _sql(replica, "SELECT pg_promote()")
    _eventually(lambda: _sql(replica, "SELECT pg_is_in_recovery()") is False, "the manual promotion")
    _sql(replica, "INSERT INTO failover_rows VALUES (102)")
    assert geo_stack(stack_dir, "down").returncode == 0
    refused = geo_stack(stack_dir, "up")
    assert refused.returncode == 1
    assert "holds a primary" in refused.stderr and "geo-stack failover" in refused.stderr
    # The refused `up` started the old primary and left the promoted server stopped; the
    # failover stops the one, starts the other and keeps its rows.
    done = geo_stack(stack_dir, "failover")
    assert done.returncode == 0, done.stderr
    env = read_env_file(stack_dir / "env")
    assert (_port(env["GEO_PG_PRIMARY"]), _port(env["GEO_PG_REPLICAS"])) == (_port(first_primary), _port(first_replica))
    assert _sql(env["GEO_PG_PRIMARY"], "SELECT count(*) FROM failover_rows") == 102
    _eventually(
        lambda: _sql(env["GEO_PG_REPLICAS"], "SELECT count(*) FROM failover_rows") == 102,
        "the rebuilt replica to replay",
    )
    assert geo_stack(stack_dir, "up").returncode == 0  # and `up` is happy again


def test_failover_without_a_stack_is_a_clear_error(stack_dir: Path) -> None:
    none = geo_stack(stack_dir, "failover")
    assert none.returncode == 1 and "no stack" in none.stderr
