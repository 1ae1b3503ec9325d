"""Fixtures for the HTTP API: a database with the GeoNames businesses, the real app on port 0.

The API tests compare every search strategy with a brute-force scan of the whole
``businesses`` table, so they use a database of their own on the session's stack (created,
migrated, awaited on the replica, dropped at the end) rather than the shared per-session one,
where other tests write rows directly with SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import asyncpg
import numpy as np
import pytest
from aiohttp import web
from yarl import URL

from deploy.stack.binaries import Binaries, ensure_binaries
from deploy.stack.postgres import PgNode, pg_nodes
from deploy.stack.redis_nodes import RedisNode
from deploy.stack.stack import Stack
from geo_common.database_node import replicas_replayed
from geo_common.migrate import apply_migrations
from geo_common.serve import RUNNER_OPTIONS
from geo_common.settings import Settings
from geo_common.tokens import Role, mint_token
from geo_index import haversine_m
from location_api.app import create_app
from geo_common.places import load_places
from location_api.demo import copy_businesses, load_demo, place_records
from location_api.keys import refresher_key
from location_api.site import ApiSite
from tests.conftest import discard_stack
from tests.ports import free_block

TIMEOUT_FACTOR = float(os.environ.get("GEO_TEST_TIMEOUT_FACTOR", "1"))


def with_database(dsn: str, database: str) -> str:
    """The same connection string pointed at another database."""
    head, _, _ = dsn.rpartition("/")
    return f"{head}/{database}"


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 5.0) -> float:
    """Poll ``check`` until it is true; return how long it took, seconds."""
    started = time.monotonic()
    deadline = started + timeout * TIMEOUT_FACTOR
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * TIMEOUT_FACTOR:.1f} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def create_database(primary_dsn: str, replica_dsns: tuple[str, ...], name: str) -> None:
    """Create a database on the primary, migrate it, and wait until every replica has it."""
    admin = await asyncpg.connect(with_database(primary_dsn, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    primary = with_database(primary_dsn, name)
    await apply_migrations(primary)
    conn = await asyncpg.connect(primary)
    try:
        expected = await conn.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await conn.close()

    for replica in replica_dsns:

        async def has_schema(dsn: str = with_database(replica, name)) -> bool:
            try:
                c = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError):
                return False
            try:
                return bool(await c.fetchval("SELECT count(*) FROM schema_migrations") == expected)
            except asyncpg.PostgresError:
                return False
            finally:
                await c.close()

        await eventually(has_schema, f"the replica to receive database {name}", timeout=15)


async def drop_database(primary_dsn: str, name: str) -> None:
    """Drop a database (closing its connections)."""
    admin = await asyncpg.connect(with_database(primary_dsn, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def small_database(settings: Settings, label: str, *, places: int) -> Settings:
    """Settings for a new database holding the first ``places`` GeoNames places (drop it after)."""
    name = f"geo_api_{label}_{os.getpid()}_{secrets.token_hex(3)}"
    await create_database(settings.pg_primary, settings.pg_replicas, name)
    small = replace(
        settings,
        pg_primary=with_database(settings.pg_primary, name),
        pg_replicas=tuple(with_database(r, name) for r in settings.pg_replicas),
        redis_namespace=f"{settings.redis_namespace}-{label}",
    )
    conn = await asyncpg.connect(small.pg_primary)
    try:
        await copy_businesses(conn, place_records(load_places()[:places]), places, say=lambda _: None)
    finally:
        await conn.close()
    return small


@contextlib.asynccontextmanager
async def throwaway_database(settings: Settings, label: str, *, places: int) -> AsyncIterator[Settings]:
    """:func:`small_database` for the duration of the block; dropped after it."""
    small = await small_database(settings, label, places=places)
    try:
        yield small
    finally:
        await drop_database(settings.pg_primary, small.pg_primary.rpartition("/")[2])


@pytest.fixture(scope="session")
async def api_settings(settings: Settings) -> AsyncIterator[Settings]:
    """Settings for a database of the API tests' own, with the session's Redis namespace."""
    name = f"geo_api_test_{os.getpid()}_{secrets.token_hex(3)}"
    await create_database(settings.pg_primary, settings.pg_replicas, name)
    try:
        yield replace(
            settings,
            pg_primary=with_database(settings.pg_primary, name),
            pg_replicas=tuple(with_database(r, name) for r in settings.pg_replicas),
            redis_namespace=f"{settings.redis_namespace}-api",
        )
    finally:
        await drop_database(settings.pg_primary, name)


@pytest.fixture(scope="session")
async def demo_loaded(api_settings: Settings) -> int:
    """The GeoNames businesses, loaded once per session (a few seconds with COPY)."""
    return await load_demo(api_settings.pg_primary, say=lambda _line: None)


class SiteServer:
    """An app served as geo-api serves it (:class:`location_api.site.ApiSite`, the runner's
    options of :data:`geo_common.serve.RUNNER_OPTIONS`) on 127.0.0.1, a free port."""

    def __init__(self, app: web.Application, **site: Any) -> None:
        self.app = app
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0, **RUNNER_OPTIONS)
        self.host = "127.0.0.1"
        self.port = 0
        self.site: ApiSite | None = None
        self._options = site

    async def start(self) -> None:
        await self.runner.setup()
        self.site = ApiSite(self.runner, self.host, 0, **self._options)
        await self.site.start()
        self.port = self.site.port

    def make_url(self, path: str) -> URL:
        return URL.build(scheme="http", host=self.host, port=self.port).join(URL(path))

    async def close(self) -> None:
        """Stop serving (idempotent)."""
        if self.site is not None:
            self.site = None
            await self.runner.cleanup()


@dataclass
class Api:
    """A running app and a client session pointed at it."""

    app: web.Application
    server: SiteServer
    http: aiohttp.ClientSession
    settings: Settings

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture(scope="session")
async def serve() -> AsyncIterator[Callable[[Settings], Awaitable[Api]]]:
    """Start apps on 127.0.0.1, port 0; every one started is stopped at the end of the session."""
    started: list[Api] = []

    async def start(settings: Settings) -> Api:
        app = create_app(settings)
        server = SiteServer(app)
        await server.start()
        http = aiohttp.ClientSession(str(server.make_url("")))
        api = Api(app, server, http, settings)
        started.append(api)
        return api

    yield start
    for api in started:
        await stop_api(api)


async def stop_api(api: Api) -> None:
    """Stop an app started by :func:`serve` (idempotent)."""
    if not api.http.closed:
        await api.http.close()
    await api.server.close()


@pytest.fixture(scope="session")
async def api(api_settings: Settings, demo_loaded: int, serve: Callable[[Settings], Awaitable[Api]]) -> Api:
    """The API (role all) over the GeoNames businesses, its indexes caught up with the load."""
    started = await serve(api_settings)
    await caught_up(started)
    return started


@pytest.fixture(scope="session")
def admin_headers(api_settings: Settings) -> dict[str, str]:
    """An Authorization header with an admin token."""
    return {"Authorization": f"Bearer {mint_token(api_settings.jwt_secret, 1, Role.ADMIN)}"}


async def primary_lsn(settings: Settings) -> int:
    """The primary's current WAL position."""
    conn = await asyncpg.connect(settings.pg_primary)
    try:
        text: str = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
    finally:
        await conn.close()
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


async def replicas_caught_up(settings: Settings) -> None:
    """Wait until every replica has replayed what the primary has now."""
    await replicas_replayed(settings.pg_primary, settings.pg_replicas, timeout_s=10 * TIMEOUT_FACTOR)


async def caught_up(api: Api) -> None:
    """Wait until the app's in-memory indexes hold everything committed so far."""
    target = await primary_lsn(api.settings)
    refresher = api.app[refresher_key]

    async def done() -> bool:
        return refresher.catalog is not None and refresher.applied_lsn >= target

    await eventually(done, "the in-memory indexes to catch up", timeout=10)


async def settled(api: Api) -> None:
    """:func:`caught_up`, and one more poll since: the refresher's invalidations of what it
    applied (sent after it records its position) are behind us too."""
    await caught_up(api)
    refresher = api.app[refresher_key]
    since = time.monotonic()

    async def polled() -> bool:
        return refresher.seconds_since_refresh < time.monotonic() - since

    await eventually(polled, "a poll after catching up")


class Oracle:
    """Brute-force ground truth over a snapshot of the ``businesses`` table.

    numpy computes approximate distances to every business to discard the far ones with a
    generous margin; each remaining one is then measured with :func:`geo_index.haversine_m`,
    the exact distance the API reports.
    """

    def __init__(self, rows: list[Any]) -> None:
        self.rows = {r["id"]: r for r in rows}
        self.ids = np.array([r["id"] for r in rows], dtype=np.int64)
        self.lat = np.radians(np.array([r["latitude"] for r in rows], dtype=np.float64))
        self.lon = np.radians(np.array([r["longitude"] for r in rows], dtype=np.float64))
        self.category = [r["category"] for r in rows]

    @classmethod
    async def load(cls, settings: Settings) -> Oracle:
        conn = await asyncpg.connect(settings.pg_primary)
        try:
            rows = await conn.fetch(
                """SELECT b.id, b.name, b.latitude, b.longitude, b.category, b.address,
                          coalesce(d.more_categories, '{}') AS more_categories
                     FROM businesses b LEFT JOIN business_details d ON d.business_id = b.id"""
            )
        finally:
            await conn.close()
        return cls(rows)

    def within(self, lat: float, lon: float, radius_m: float, category: str | None = None) -> list[tuple[int, float]]:
        """Every business within ``radius_m`` (of any of the comma-separated categories, case
        folded, among its main and further ones), as (id, distance) by (distance, id)."""
        wanted = None if category is None else {c.strip().casefold() for c in category.split(",")}
        phi, lam = np.radians(lat), np.radians(lon)
        a = np.sin((self.lat - phi) / 2) ** 2 + np.cos(phi) * np.cos(self.lat) * np.sin((self.lon - lam) / 2) ** 2
        approx = 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
        near = np.nonzero(approx <= radius_m * 1.001 + 10.0)[0]
        hits = []
        for i in near:
            bid = int(self.ids[i])
            row = self.rows[bid]
            if wanted is not None and wanted.isdisjoint(
                c.casefold() for c in (row["category"], *row["more_categories"])
            ):
                continue
            d = haversine_m(lat, lon, row["latitude"], row["longitude"])
            if d <= radius_m:
                hits.append((d, bid))
        hits.sort()
        return [(bid, d) for d, bid in hits]

    def body(self, bid: int, distance: float) -> dict[str, Any]:
        """The search-hit JSON object the API must return for a business."""
        r = self.rows[bid]
        return {
            "id": bid,
            "name": r["name"],
            "latitude": r["latitude"],
            "longitude": r["longitude"],
            "category": r["category"],
            "address": r["address"],
            "distance_m": distance,
        }


@dataclass
class ThrowawayStack:
    """A stack of its own (primary, replica, Redis, cluster) that a test may break."""

    stack: Stack
    bins: Binaries
    primary: PgNode
    replica: PgNode
    redis: RedisNode
    settings: Settings


@pytest.fixture(scope="module")
def throwaway_stack(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> Iterator[ThrowawayStack]:
    """A second local stack on its own ports, for tests that stop its servers.

    The shared stack serves every other test session running at the same time, so nothing
    may stop it; this one is brought up for the module and taken down after it.
    """
    root = tmp_path_factory.mktemp("api-faults") / "stack"
    stack = Stack(root, port_base=free_block(20, cluster=True))
    try:
        env = stack.up()
        state = stack.layout.load_state()
        assert state is not None
        primary, replica = pg_nodes(state)
        endpoints = Settings.from_env(env)
        yield ThrowawayStack(
            stack=stack,
            bins=ensure_binaries(),
            primary=primary,
            replica=replica,
            redis=RedisNode("standalone", stack.layout.redis_dir, state.ports["redis"]),
            settings=replace(
                settings,
                pg_primary=endpoints.pg_primary,
                pg_replicas=endpoints.pg_replicas,
                redis_url=endpoints.redis_url,
                redis_cluster=endpoints.redis_cluster,
            ),
        )
    finally:
        discard_stack(stack, root)
