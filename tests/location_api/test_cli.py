"""``geo-api``: load-demo, migrate, and serving with a role, as separate processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import asyncpg
import pytest

from geo_common.migrate import available_migrations
from geo_common.settings import Settings

from .conftest import TIMEOUT_FACTOR, drop_database, with_database
from tests.ports import free_port

GEONAMES_PLACES = 144_563


def environment(settings: Settings) -> dict[str, str]:
    """The process environment for ``geo-api`` pointed at these settings (and no env file)."""
    return {
        **os.environ,
        "GEO_ENV_FILE": os.devnull,
        "GEO_PG_PRIMARY": settings.pg_primary,
        "GEO_PG_REPLICAS": ",".join(settings.pg_replicas),
        "GEO_REDIS_URL": settings.redis_url,
        "GEO_REDIS_NAMESPACE": f"{settings.redis_namespace}-cli",
        # A service outside development mode refuses the built-in key: the stack's own.
        "GEO_JWT_SECRET": settings.jwt_secret,
    }


def geo_api(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "location_api", *args],
        env=environment(settings),
        capture_output=True,
        text=True,
        timeout=120 * TIMEOUT_FACTOR,
    )


@pytest.fixture(scope="module")
async def blank(settings: Settings) -> AsyncIterator[Settings]:
    """An empty database (no schema) on the stack's primary."""
    name = f"geo_api_cli_{os.getpid()}"
    admin = await asyncpg.connect(with_database(settings.pg_primary, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield replace(settings, pg_primary=with_database(settings.pg_primary, name), pg_replicas=())
    await drop_database(settings.pg_primary, name)


async def count(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.pg_primary)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM businesses"))
    finally:
        await conn.close()


async def test_migrate_then_load_demo_then_skip_when_not_empty(blank: Settings) -> None:
    first = await asyncio.to_thread(geo_api, blank, "migrate")
    assert first.returncode == 0, first.stderr
    assert f"{len(available_migrations())} migrations applied" in first.stdout
    again = await asyncio.to_thread(geo_api, blank, "migrate")
    assert again.returncode == 0 and "0 migrations applied" in again.stdout

    started = time.monotonic()
    loaded = await asyncio.to_thread(geo_api, blank, "load-demo", "--synthetic", "1000", "--if-empty")
    took = time.monotonic() - started
    assert loaded.returncode == 0, loaded.stderr
    assert took < 60, f"load-demo took {took:.1f} s"
    assert f"{GEONAMES_PLACES + 1000:,} businesses loaded" in loaded.stdout
    assert "50,000 /" in loaded.stdout  # progress lines
    assert await count(blank) == GEONAMES_PLACES + 1000

    skipped = await asyncio.to_thread(geo_api, blank, "load-demo", "--if-empty")
    assert skipped.returncode == 0 and "nothing loaded" in skipped.stdout
    assert await count(blank) == GEONAMES_PLACES + 1000

    bad = await asyncio.to_thread(geo_api, blank, "load-demo", "--synthetic", "-5")
    assert bad.returncode == 2 and "--synthetic" in bad.stderr


async def test_serve_with_a_role(blank: Settings) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "location_api", "--port", str(port), "--role", "read"],
        env=environment(blank),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60 * TIMEOUT_FACTOR
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            while True:
                try:
                    async with http.get("/readyz") as resp:
                        if resp.status == 200:
                            body = await resp.json()
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, "geo-api did not become ready"
                await asyncio.sleep(0.2)
            assert body["role"] == "read" and body["index"]["status"] == "ready"
            async with http.post("/v1/businesses", json={}) as resp:
                assert resp.status == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    assert proc.returncode == 0, output
    assert f"listening on 127.0.0.1:{port}" in output


def test_a_bad_role_is_refused() -> None:
    proc = subprocess.run([sys.executable, "-m", "location_api", "--role", "both"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--role" in proc.stderr


async def test_workers_share_the_port_and_stop_together(blank: Settings) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "location_api", "--port", str(port), "--role", "write", "--workers", "2"],
        env=environment(blank),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    pids: set[int] = set()
    try:
        deadline = time.monotonic() + 60 * TIMEOUT_FACTOR
        # A new connection each time, so the kernel picks a worker each time.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
            while len(pids) < 2:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        pids.add(int((await resp.json())["pid"]))
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.2)
                assert proc.poll() is None, proc.communicate()[0]
                assert time.monotonic() < deadline, f"only pids {pids} answered"
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    assert proc.returncode == 0, output
    assert proc.pid not in pids and len(pids) == 2
    assert "2 workers" in output and output.count(f"listening on 127.0.0.1:{port}") == 2
    for pid in pids:  # the supervisor waited for both
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} outlived the supervisor"


@pytest.mark.parametrize("value", ["0", "many", "65"])
def test_bad_worker_counts_are_refused(value: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "location_api", "--workers", value], capture_output=True, text=True)
    assert proc.returncode == 2 and "--workers" in proc.stderr
