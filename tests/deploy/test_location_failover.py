"""The location cache survives its primary: Sentinel promotes the replica, geo-friends follows.

Real processes throughout: a Redis primary, its replica and three sentinels
(:mod:`deploy.stack.sentinel`, the shape ``geo-redis-locations`` has in deploy/k8s), a
``geo-friends`` process given ``GEO_REDIS_URL=redis+sentinel://...``, and ``geo-loadgen
friends`` moving users through it. Mid-run the primary is killed (SIGKILL: no goodbye to
anyone). What must hold (docs/deploy.md, "The location cache's failover"):

* no WebSocket client was disconnected or reconnected: geo-friends found the promoted replica
  by itself, for the cache and for pub/sub;
* no delivery was lost beyond the failover bound: every update each friend should have seen
  was delivered, or a newer position of the same sender reached that friend within
  ``BOUND_S`` of the update's sending (``--superseded-within``). Updates sent during the
  failover may be refused (``unavailable``) or published before the subscriber is back; a
  friend is shown where the sender is now once it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from deploy.stack import redis_nodes, sentinel
from deploy.stack.binaries import ensure_binaries
from geo_common.settings import Settings
from location_api.app import create_app
from tests.conftest import TIMEOUT_FACTOR
from tests.loadgen.runs import client_environment, read_report, run_loadgen, write_key
from tests.location_api.conftest import throwaway_database
from tests.ports import free_port

#: The failover bound given to geo-loadgen (seconds): Sentinel's down-after (1 s) and election,
#: the subscriber's reconnection backoff (at most 2 s), an open breaker's 2 s, one update
#: interval, and room for a busy machine.
BOUND_S = 15.0
#: The run: a ramp, then the measured window; the primary dies this long into the window.
RAMP_S, DURATION_S, KILL_AT_S = 2.0, 24.0, 6.0


def _ports(count: int) -> tuple[int, ...]:
    return tuple(free_port() for _ in range(count))


@contextlib.asynccontextmanager
async def _sentinel_set(root: Path) -> AsyncIterator[sentinel.SentinelSet]:
    bins = ensure_binaries()
    a, b, s1, s2, s3 = _ports(5)
    nodes = sentinel.SentinelSet(root, (a, b, s1, s2, s3))
    try:
        await asyncio.to_thread(sentinel.up, bins, nodes)
        yield nodes
    finally:
        await asyncio.to_thread(sentinel.stop, nodes)


@contextlib.asynccontextmanager
async def _geo_friends(settings: Settings, redis_url: str, log: Path) -> AsyncIterator[str]:
    """geo-friends as its own process; its base URL."""
    port = _ports(1)[0]
    env = {
        **client_environment(),
        "GEO_ENV_FILE": str(log.parent / "no-env-file"),
        "GEO_PG_PRIMARY": settings.pg_primary,
        "GEO_REDIS_URL": redis_url,
        "GEO_REDIS_NAMESPACE": settings.redis_namespace,
        "GEO_JWT_SECRET": settings.jwt_secret,
        "GEO_WS_MAX_UPDATES_PER_S": "50",
        "GEO_HISTORY_FLUSH_MS": "100",
        "GEO_PROCESS_TUNING": "off",
    }
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "friends_ws", "--port", str(port), env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
            while True:
                assert proc.returncode is None, log.read_text()
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/readyz") as answer:
                        if answer.status == 200:
                            break
                assert time.monotonic() < deadline, f"geo-friends did not become ready: {log.read_text()}"
                await asyncio.sleep(0.2)
        yield base
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _metric(base: str, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as answer:
        text = await answer.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def _kill_primary_and_time_failover(nodes: sentinel.SentinelSet, at: float) -> float:
    """SIGKILL the primary at ``at`` (monotonic); seconds until a sentinel names the replica."""
    bins = ensure_binaries()
    await asyncio.sleep(max(0.0, at - time.monotonic()))
    pid = nodes.primary.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    while await asyncio.to_thread(sentinel.primary_port, bins, nodes.sentinels[0]) != nodes.replica.port:
        assert time.monotonic() - killed < 30 * TIMEOUT_FACTOR, "Sentinel did not promote the replica"
        await asyncio.sleep(0.1)
    return time.monotonic() - killed


async def test_killing_the_location_primary_loses_no_delivery_and_no_client(settings: Settings, tmp_path: Path) -> None:
    async with (
        _sentinel_set(tmp_path / "redis") as nodes,
        throwaway_database(settings, "failover", places=0) as small,
    ):
        # The API (friendships, and the news of them on pub/sub) on the same Sentinel-managed
        # Redis; its business cache on the stack's own Redis, as deploy/k8s separates them.
        api_settings = replace(small, api_role="all", redis_url=nodes.url, api_cache_url=small.redis_url)
        api = TestServer(create_app(api_settings), host="127.0.0.1")
        await api.start_server()
        try:
            async with _geo_friends(small, nodes.url, tmp_path / "geo-friends.log") as ws:
                key = write_key(tmp_path / "signing.key", small.jwt_secret)
                out = tmp_path / "run"
                started = time.monotonic()
                # Set-up (friendships through the API) comes before the ramp: start the clock
                # on the kill once the clients are connected, from geo-friends' own count.
                run = asyncio.create_task(
                    run_loadgen(
                        "friends",
                        "--api",
                        str(api.make_url("")).rstrip("/"),
                        "--ws",
                        ws.replace("http://", "ws://"),
                        "--signing-key-file",
                        str(key),
                        "--users",
                        "30",
                        "--friends-per-user",
                        "5",
                        "--interval",
                        "0.5s",
                        "--ramp",
                        f"{RAMP_S}s",
                        "--duration",
                        f"{DURATION_S}s",
                        "--first-user-id",
                        "7300000",
                        "--superseded-within",
                        f"{BOUND_S}s",
                        "--max-errors",
                        "100%",
                        "--out",
                        str(out),
                        env=client_environment(),
                        timeout_s=120.0,
                    )
                )
                while await _metric(ws, "geo_friends_sessions") < 30:
                    assert not run.done(), (await run)[1]
                    assert time.monotonic() - started < 60 * TIMEOUT_FACTOR, "the clients did not connect"
                    await asyncio.sleep(0.2)
                failover_s = await _kill_primary_and_time_failover(nodes, time.monotonic() + KILL_AT_S)
                code, text = await run
                reconnections = await _metric(ws, "geo_friends_pubsub_reconnections_total")
        finally:
            await api.close()
    assert code == 0, text
    counters = read_report(out)["counters"]
    print(  # the measure, for docs/deploy.md
        f"failover: the replica was promoted {failover_s:.1f} s after the kill; delivered "
        f"{counters.get('delivered')}, superseded {counters.get('superseded', 0)}, unavailable "
        f"{counters.get('error_unavailable', 0)}, delivery_since_sent {read_report(out)['metrics']['delivery_since_sent']}"
    )
    assert counters["delivered"] > 0, counters
    # Nothing lost beyond the bound, and no client noticed the failover but by error frames.
    assert counters.get("lost", 0) == 0, text
    assert counters.get("cut_off", 0) == 0, counters
    assert counters.get("disconnects", 0) == 0 and counters.get("reconnects", 0) == 0, counters
    assert counters.get("disconnected_at_end", 0) == 0, counters
    failures = {k: v for k, v in counters.items() if k.startswith(("error_", "connect_error_", "client_error_"))}
    assert set(failures) <= {"error_unavailable"}, failures
    # geo-friends restored its subscriptions on the promoted replica (and re-read the cache).
    assert reconnections >= 1
    assert failover_s < BOUND_S


async def test_up_after_a_failover_keeps_the_promoted_primary(tmp_path: Path) -> None:
    """``geo-stack up --full`` again after a failover: the old primary comes back as the
    replica of the promoted one, never the other way round (which would empty the cache)."""
    bins = ensure_binaries()
    async with _sentinel_set(tmp_path / "redis") as nodes:
        redis_nodes.cli(bins, nodes.primary, "set", "kept", "1")
        await _kill_primary_and_time_failover(nodes, time.monotonic())
        await asyncio.to_thread(sentinel.up, bins, nodes)
        assert sentinel.role(bins, nodes.primary) == "slave" and sentinel.role(bins, nodes.replica) == "master"
        assert sentinel.current_primary(bins, nodes) == nodes.replica.port
        assert redis_nodes.cli(bins, nodes.primary, "get", "kept") == "1"
