"""``geo-loadgen friends`` accounts honestly: against the real services, whatever they do.

A normal run delivers everything it expects and counts nothing of its own teardown; a
geo-friends process killed mid-run (SIGKILL) and started again is counted as disconnects and
reconnects, never a traceback; positions re-sent after a forced reconnection are counted
apart from what was done (duplicates: the clients resume holding them); and the wall time is
the ramp, the duration and the drain.

geo-loadgen runs as its own process, as a user runs it; the API and (but for the killed one)
the WebSocket tier run in this test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from geo_common.settings import Settings
from location_api.app import create_app
from loadgen.friends_options import DRAIN_S
from tests.conftest import TIMEOUT_FACTOR
from tests.friends_ws.ws_helpers import Server, start_server
from tests.loadgen.runs import client_environment, write_key
from tests.loadgen.ws_proxies import ReplayingProxy
from tests.location_api.conftest import drop_database, small_database
from tests.ports import free_port

#: What must never reach a user's terminal, whatever the server does.
TRACEBACK_SIGNS = ("Traceback", "Task exception was never retrieved", "Task was destroyed", "Exception in callback")


@dataclass
class Services:
    api: str
    ws: Server
    settings: Settings
    stack_env: dict[str, str]
    key_file: Path


@pytest.fixture(scope="module")
async def services(
    settings: Settings, stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    small = await small_database(settings, "lgacct", places=10)
    small = replace(small, api_role="all", history_flush_ms=50, ws_max_updates_per_s=50.0)
    api = TestServer(create_app(small), host="127.0.0.1")
    await api.start_server()
    ws = await start_server(small)
    key_file = write_key(tmp_path_factory.mktemp("key") / "signing.key", small.jwt_secret)
    yield Services(str(api.make_url("")).rstrip("/"), ws, small, stack_env, key_file)
    await ws.stop()
    await api.close()
    await drop_database(settings.pg_primary, small.pg_primary.rpartition("/")[2])


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    report: dict[str, Any]

    @property
    def counters(self) -> dict[str, int]:
        counters: dict[str, int] = self.report["counters"]
        return counters


async def friends_run(services: Services, ws_base: str, out: Path, *args: str, timeout_s: float = 120.0) -> Run:
    """Run ``geo-loadgen friends`` to its end; its exit code, stdout, stderr and report.json."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loadgen",
        "friends",
        "--api",
        services.api,
        "--ws",
        ws_base,
        "--signing-key-file",
        str(services.key_file),
        "--no-progress",
        "--out",
        str(out),
        *args,
        env=client_environment(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_s * TIMEOUT_FACTOR)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    text, errors = stdout.decode(), stderr.decode()
    report_file = out / "report.json"
    assert report_file.is_file(), f"no report.json; exit {proc.returncode}\n{text}\n{errors}"
    return Run(proc.returncode, text, errors, json.loads(report_file.read_text()))


def assert_no_traceback(run: Run) -> None:
    for sign in TRACEBACK_SIGNS:
        assert sign not in run.stderr and sign not in run.stdout, run.stdout + run.stderr


def assert_accounts_add_up(run: Run) -> None:
    """Every expected delivery ended as delivered, lost, cut off or (owed to a client that
    resumed, and a newer one was) superseded; done is the delivered."""
    c = run.counters
    deliveries = run.report["deliveries"]
    ended = c["delivered"] + c.get("lost", 0) + c.get("cut_off", 0) + c.get("superseded", 0)
    assert c["expected"] == ended, c
    assert run.report["completed"] == c["delivered"] <= run.report["operations"] == c["expected"]
    assert deliveries["expected"] == c["expected"] and deliveries["delivered"] == c["delivered"]
    assert f"deliveries: expected {c['expected']} " in run.stdout


async def test_a_normal_run_delivers_what_it_expects_and_counts_nothing_of_its_teardown(
    services: Services, tmp_path: Path
) -> None:
    # An interval longer than the duration after the ramp: a client that waited for its next
    # update before closing would make the run last up to an interval longer.
    ramp, duration, interval = 1.0, 3.0, 4.0
    run = await friends_run(
        services,
        f"ws://127.0.0.1:{services.ws.port}",
        tmp_path,
        "--users",
        "30",
        "--friends-per-user",
        "5",
        "--interval",
        f"{interval}s",
        "--ramp",
        f"{ramp}s",
        "--duration",
        f"{duration}s",
        "--movement",
        "random-walk",
        "--first-user-id",
        "4100000",
        "--fail-if",
        "lost==0,duplicates==0",
    )
    assert run.code == 0, run.stdout + run.stderr
    assert_no_traceback(run)
    assert_accounts_add_up(run)
    c = run.counters
    assert c["expected"] > 0 and c["delivered"] == c["expected"] and c.get("lost", 0) == 0
    # Every client closes at the end; the friend_left (offline) events that causes are not findings.
    assert not [k for k in c if k.startswith("friend_left_")], c
    for quiet in ("disconnects", "reconnects", "disconnected_at_end", "cut_off", "resync", "errors"):
        assert c.get(quiet, 0) == 0, (quiet, c)
    wall = run.report["wall"]
    assert (wall["ramp_s"], wall["duration_s"], wall["drain_s"]) == (ramp, duration, DRAIN_S)
    assert wall["other_s"] == pytest.approx(run.report["wall_s"] - ramp - duration - DRAIN_S, abs=0.01)
    # Start-up and closing are the rest: well under the interval a late client would add.
    assert 0.0 < wall["other_s"] < 2.5 * TIMEOUT_FACTOR, wall
    assert f"wall {run.report['wall_s']:.2f} s = ramp 1.00 s + duration 3.00 s + drain 2.00 s + " in run.stdout


class FriendsProcess:
    """A real ``geo-friends`` process on ``port``, over the services' database and Redis."""

    def __init__(self, services: Services, port: int) -> None:
        self.port = port
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}
        s = services.settings
        self.env.update(
            services.stack_env,
            GEO_PG_PRIMARY=s.pg_primary,
            GEO_PG_REPLICAS=",".join(s.pg_replicas),
            GEO_REDIS_NAMESPACE=s.redis_namespace,
            GEO_JWT_SECRET=s.jwt_secret,
            GEO_WS_MAX_UPDATES_PER_S="50",
            GEO_LOG_LEVEL="warning",
        )
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "friends_ws",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await self.wait_for(lambda metrics: "geo_friends_sessions" in metrics, "to answer /metrics")

    async def wait_for(self, ready: Any, what: str, timeout_s: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s * TIMEOUT_FACTOR
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/metrics") as resp:
                        if ready(await resp.text()):
                            return
                except aiohttp.ClientError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, f"geo-friends did not come {what}"
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def test_a_server_killed_mid_run_is_counted_as_disconnects_and_reconnects_not_a_traceback(
    services: Services, tmp_path: Path
) -> None:
    users = 20
    server = FriendsProcess(services, free_port())
    await server.start()
    try:
        run_task = asyncio.create_task(
            friends_run(
                services,
                f"ws://127.0.0.1:{server.port}",
                tmp_path,
                "--users",
                str(users),
                "--friends-per-user",
                "4",
                "--interval",
                "1s",
                "--ramp",
                "1s",
                "--duration",
                "20s",
                "--first-user-id",
                "4200000",
                "--max-errors",
                "1000000",
            )
        )
        # Every client connected and updates flowing: then the process dies, and comes back.
        await server.wait_for(
            lambda m: metric(m, "geo_friends_sessions") == users and metric(m, "geo_friends_updates_total") > 2 * users,
            "to hold every client",
        )
        await server.kill()
        await server.start()
        run = await run_task
    finally:
        if server.proc is not None and server.proc.returncode is None:
            await server.kill()
    assert run.code == 0, run.stdout + run.stderr
    assert_no_traceback(run)
    assert_accounts_add_up(run)
    c = run.counters
    # Each client lost its connection once, abruptly (1006: no close frame), and came back.
    assert c["disconnects"] == c["disconnect_1006"] == users, c
    assert c["reconnects"] == users and c.get("disconnected_at_end", 0) == 0, c
    assert sum(v for k, v in c.items() if k.startswith("connect_error_")) > 0, c
    # What was on its way when the process died is cut off, not lost; after it, all arrives.
    assert c.get("lost", 0) == 0 and c["delivered"] > 0, c
    assert run.report["metrics"]["connect"]["count"] == 2 * users


async def test_positions_re_sent_after_a_forced_reconnection_are_counted_apart_from_done(
    services: Services, tmp_path: Path
) -> None:
    users = 12
    proxy = await ReplayingProxy(f"http://127.0.0.1:{services.ws.port}").start()
    try:
        run_task = asyncio.create_task(
            friends_run(
                services,
                proxy.ws_base,
                tmp_path,
                "--users",
                str(users),
                "--friends-per-user",
                "3",
                "--interval",
                "0.5s",
                "--ramp",
                "0.5s",
                "--duration",
                "8s",
                "--movement",
                "static",
                "--first-user-id",
                "4300000",
            )
        )
        deadline = asyncio.get_running_loop().time() + 60 * TIMEOUT_FACTOR
        while proxy.connections < users and not run_task.done():  # everyone connected
            assert asyncio.get_running_loop().time() < deadline, "the clients did not all connect"
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # positions exchanged
        proxy.drop_all()
        run = await run_task
    finally:
        await proxy.stop()
    assert run.code == 0, run.stdout + run.stderr
    assert_no_traceback(run)
    assert_accounts_add_up(run)
    c = run.counters
    assert proxy.dropped == users and proxy.replayed > 0
    assert c["disconnects"] == c["reconnects"] == users, c
    # The replayed positions are ones the clients hold, and they resume with them: a server
    # that sends them again sends duplicates, never done.
    assert c["resumes"] == users, c
    assert 0 < c["duplicates"] <= proxy.replayed and c.get("resync", 0) == 0, (c, proxy.replayed)
    assert c.get("lost", 0) == 0, c
    assert c["delivered"] <= c["expected"]
