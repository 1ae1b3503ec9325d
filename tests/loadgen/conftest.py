"""A tiny HTTP server for load-generator tests: answers fast, except one 500 ms stall.

It runs its own event loop in a thread; the stall is a blocking sleep on that loop, so the
whole server freezes as a real one does in a GC pause or a lock convoy. It serves the API's
own OpenAPI document, as the API does, so that geo-loadgen takes it for the search API.
"""

from __future__ import annotations

import asyncio
import csv
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from geo_common.places import load_places
from geo_common.settings import Settings
from location_api.app import create_app
from location_api.openapi import openapi_document
from location_api.contract import Role
from tests.friends_ws.ws_helpers import start_server
from tests.loadgen.runs import Services, write_key
from tests.location_api.conftest import drop_database, small_database

#: Real places in the database of the ``services`` fixture.
PLACES = 3_000

#: What the real API serves at /openapi.json with the default settings.
API_DOCUMENT = openapi_document(Role.ALL, Settings().max_radius_m)


class StallServer:
    """Serve /healthz, /openapi.json and /v1/search/nearby on 127.0.0.1 (port 0); freeze once
    for ``stall_s``."""

    def __init__(self, *, stall_after: int, stall_s: float = 0.5) -> None:
        self.stall_after = stall_after
        self.stall_s = stall_s
        self.requests = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _search(self, _request: web.Request) -> web.Response:
        self.requests += 1
        if self.requests == self.stall_after:
            time.sleep(self.stall_s)  # block the loop: the whole server stalls
        return web.json_response({"total": 0, "radius_m": 5000, "businesses": [], "next_cursor": None})

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _openapi(self, _request: web.Request) -> web.Response:
        return web.Response(body=API_DOCUMENT, content_type="application/json")

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/openapi.json", self._openapi)
        app.router.add_get("/v1/search/nearby", self._search)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = int(self._runner.addresses[0][1])
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def __enter__(self) -> StallServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def stall_server_class() -> type[StallServer]:
    """The class, for tests that start more than one."""
    return StallServer


@pytest.fixture
def stall_server() -> Iterator[StallServer]:
    """A server that stalls the whole process for 500 ms at its 300th search."""
    with StallServer(stall_after=300) as server:
        yield server


@pytest.fixture(scope="module")
async def services(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Services]:
    """The API and the WebSocket tier in this test's event loop over a database of ``PLACES``
    real places, one per test module (tests that define their own ``services`` use theirs)."""
    small = await small_database(settings, "loadgen", places=PLACES)
    small = replace(small, api_role="all", history_flush_ms=50, ws_max_updates_per_s=50.0)
    api = TestServer(create_app(small), host="127.0.0.1")
    await api.start_server()
    ws = await start_server(small)
    folder = tmp_path_factory.mktemp("places")
    places_csv = folder / "places.csv"
    with places_csv.open("w", newline="") as fh:
        csv.writer(fh).writerows([("lat", "lon"), *((p.latitude, p.longitude) for p in load_places()[:PLACES])])
    key_file = write_key(folder / "signing.key", small.jwt_secret)
    yield Services(str(api.make_url("")).rstrip("/"), ws, small, places_csv, key_file)
    await ws.stop()
    await api.close()
    await drop_database(settings.pg_primary, small.pg_primary.rpartition("/")[2])
