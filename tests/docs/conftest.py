"""The demo stack the guides' examples run against: the GeoNames demo data loaded with
``geo-api load-demo`` into a database of these tests' own, the real geo-api and geo-friends
on free ports in this test's event loop.

The database is not the session's shared one: other tests write businesses there, and the
examples show exact ids, totals and a brute-force check of the whole demo set.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from geo_common.settings import Settings
from location_api.app import create_app
from tests.conftest import REPO, TIMEOUT_FACTOR
from tests.docs.guides import GuideRun
from tests.docs.shell import Target, environment
from tests.friends_ws.ws_helpers import start_server
from tests.location_api.conftest import Api, caught_up, create_database, drop_database, with_database


@pytest.fixture(scope="session")
async def demo(settings: Settings) -> AsyncIterator[Target]:
    """geo-api (role all) and geo-friends over the 144,563 demo businesses, indexes caught up."""
    name = f"geo_docs_{os.getpid()}_{secrets.token_hex(3)}"
    await create_database(settings.pg_primary, settings.pg_replicas, name)
    own = replace(
        settings,
        pg_primary=with_database(settings.pg_primary, name),
        pg_replicas=tuple(with_database(r, name) for r in settings.pg_replicas),
        redis_namespace=f"{settings.redis_namespace}-docs",
    )
    try:
        load = await asyncio.create_subprocess_exec(
            str(REPO / ".venv" / "bin" / "geo-api"),
            "load-demo",
            env=environment(Target(0, 0, own)),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        printed, _ = await asyncio.wait_for(load.communicate(), 120 * TIMEOUT_FACTOR)
        assert load.returncode == 0, printed.decode()
        server = TestServer(create_app(own), host="127.0.0.1")
        await server.start_server()
        friends = await start_server(own)
        http = aiohttp.ClientSession()
        try:
            assert server.port is not None
            await caught_up(Api(server.app, server, http, own))
            yield Target(api_port=server.port, ws_port=friends.port, settings=own)
        finally:
            await http.close()
            await friends.stop()
            await server.close()
    finally:
        await drop_database(settings.pg_primary, name)


@pytest.fixture(scope="session")
def guide_runs(demo: Target, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], GuideRun]:
    """One :class:`GuideRun` per guide, made on first use and kept for the session."""
    runs: dict[str, GuideRun] = {}

    def get(relative: str) -> GuideRun:
        if relative not in runs:
            runs[relative] = GuideRun(relative, demo, tmp_path_factory.mktemp(relative.replace("/", "-")))
        return runs[relative]

    return get
