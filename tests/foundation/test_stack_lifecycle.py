"""geo-stack from nothing, in a throwaway folder: up, idempotent up, status, env, down, up again."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.stack.procs import cmdline, pid_alive
from geo_common.settings import read_env_file


def geo_stack(stack_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.stack.cli", "--dir", str(stack_dir), *args],
        capture_output=True, text=True, timeout=300,
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

    first = geo_stack(stack_dir, "up", "--port-base", str(24_000 + os.getpid() % 500 * 10))
    assert first.returncode == 0, first.stderr
    env = read_env_file(stack_dir / "env")
    assert set(env) == {"GEO_PG_PRIMARY", "GEO_PG_REPLICAS", "GEO_REDIS_URL", "GEO_REDIS_CLUSTER"}
    assert len(env["GEO_REDIS_CLUSTER"].split(",")) == 3

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
    assert geo_stack(stack_dir, "up", "--port-base", str(26_000 + os.getpid() % 500 * 10)).returncode == 0
    assert geo_stack(stack_dir, "down").returncode == 0
    assert status_pids(main_root) == main_before
    assert all(pid and pid_alive(pid) for pid in main_before.values())
