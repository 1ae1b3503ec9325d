"""Fixtures of the map page's tests: the real geo-api and geo-friends on port 0, and Debian's
Chromium driven by Playwright.

The browser is the system's ``/usr/bin/chromium`` (installed from Debian's packages by
:func:`deploy.stack.binaries.ensure_browser` when missing and run as root); Playwright only
drives it and never downloads one. Screenshots go to ``test-output/map_page/`` (git-ignored).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, ConsoleMessage, Page, WebSocketRoute, async_playwright
from websockets.asyncio.client import ClientConnection, connect

from deploy.stack.binaries import ensure_browser
from deploy.stack.procs import StackError
from geo_common.settings import Settings
from geo_common.tokens import Role, mint_token
from location_api.app import create_app
from tests.friends_ws.ws_helpers import TIMEOUT_FACTOR, Server, start_server
from tests.location_api.conftest import Api, caught_up, drop_database, small_database
from tests.location_api.conftest import replicas_caught_up as replicas_caught_up  # the page tests wait on it

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "test-output" / "map_page"
#: How long a page may take to show something, milliseconds.
WAIT_MS = 10_000 * TIMEOUT_FACTOR
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

#: Where the tests search and put users, and a friend's position about 1 km away (in range).
OSLO = (59.9139, 10.7522)
NEAR = (59.9200, 10.7600)
#: Businesses the tests search for, created through the API: (name, latitude, longitude, category).
BUSINESSES = [
    ("Oslo Central Cafe", 59.9111, 10.7528, "cafe"),
    ("Karl Johan Bakery", 59.9133, 10.7389, "bakery"),
    ("Aker Brygge Cafe", 59.9106, 10.7263, "cafe"),
    ("Grünerløkka Books", 59.9225, 10.7594, "bookstore"),
    ("Grønland Grocery", 59.9122, 10.7606, "grocery"),
    ("Majorstuen Pharmacy", 59.9296, 10.7146, "pharmacy"),
    ("Bjørvika Hotel", 59.9075, 10.7530, "hotel"),
    ("Frogner Cafe", 59.9196, 10.7066, "cafe"),
    ("St. Hanshaugen Gym", 59.9271, 10.7406, "gym"),
    ("Tøyen Florist", 59.9155, 10.7747, "florist"),
    # Either side of the 180th meridian, in Fiji: one search circle must hold both.
    ("Dateline West Cafe", -16.80, 179.97, "cafe"),
    ("Dateline East Cafe", -16.82, -179.96, "cafe"),
]


@dataclass
class Services:
    """The API (dev mode) and the WebSocket tier, sharing one database and Redis namespace."""

    api: Api
    friends: Server
    settings: Settings

    @property
    def url(self) -> str:
        return self.api.url("/")

    def token(self, user_id: int, role: Role = Role.USER) -> str:
        return mint_token(self.settings.jwt_secret, user_id, role)


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    """geo-friends and geo-api (``GEO_DEV=1``) over a database of a few thousand places plus
    :data:`BUSINESSES`, which are created through ``POST /v1/businesses``."""
    own = await small_database(settings, "map", places=2000)
    friends = await start_server(own)
    api_settings = replace(own, dev=True, friends_public_url=friends.url)
    app = create_app(api_settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    api = Api(app, server, aiohttp.ClientSession(str(server.make_url(""))), api_settings)
    try:
        admin = {"Authorization": f"Bearer {mint_token(own.jwt_secret, 1, Role.ADMIN)}"}
        for name, lat, lon, category in BUSINESSES:
            body = {"name": name, "latitude": lat, "longitude": lon, "category": category, "address": "test"}
            async with api.http.post("/v1/businesses", json=body, headers=admin) as resp:
                assert resp.status == 201, await resp.text()
        await caught_up(api)
        yield Services(api, friends, api_settings)
    finally:
        await api.http.close()
        await server.close()
        await friends.stop()
        await drop_database(settings.pg_primary, own.pg_primary.rpartition("/")[2])


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, installed when missing (as root), or a clear failure naming the packages."""
    try:
        return str(ensure_browser())
    except StackError as exc:
        pytest.fail(f"the browser tests cannot run: {exc}", pytrace=False)


@pytest.fixture(scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Tab:
    """One page, with everything it logged as an error."""

    page: Page
    errors: list[str] = field(default_factory=list)

    async def shot(self, name: str) -> Path:
        """Save a screenshot into the test output folder."""
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path

    def assert_no_errors(self, *, expected: str = "") -> None:
        """No errors logged, but for those that contain ``expected`` (when given)."""
        errors = [e for e in self.errors if not expected or expected not in e]
        assert errors == [], f"the page logged errors: {errors}"

    async def state(self, expression: str) -> Any:
        """Evaluate JavaScript on ``window.geoPage`` (named ``s`` in the expression)."""
        return await self.page.evaluate(f"() => {{ const s = window.geoPage; return {expression}; }}")

    async def until(self, expression: str, what: str) -> Any:
        """Wait until a JavaScript expression on ``s`` (``window.geoPage``) is truthy; return its value."""
        try:
            handle = await self.page.wait_for_function(
                f"() => {{ const s = window.geoPage; return s && ({expression}); }}", timeout=WAIT_MS
            )
        except Exception as exc:
            raise AssertionError(f"timed out waiting for {what}; page errors: {self.errors}") from exc
        return await handle.json_value()


OpenPage = Callable[..., Awaitable[Tab]]


@pytest.fixture
async def open_page(browser: Browser, services: Services) -> AsyncIterator[OpenPage]:
    """Open the map page in fresh browser contexts (``await open_page(width=360)``); closed after the test.

    ``before`` (a coroutine function of the page) runs before the page loads: to install a
    fake clock or route its WebSockets, which only affects what the page creates afterwards.
    """
    contexts = []

    async def open_one(
        *, width: int = 1280, height: int = 800, before: Callable[[Page], Awaitable[None]] | None = None
    ) -> Tab:
        context = await browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = await context.new_page()
        tab = Tab(page)
        page.on("console", lambda message: _record(tab, message))
        page.on("pageerror", lambda error: tab.errors.append(f"uncaught: {error}"))
        if before is not None:
            await before(page)
        await page.goto(services.url)
        await tab.until("s.ready && s.worldDrawn", "the page to start")
        return tab

    yield open_one
    for context in contexts:
        await context.close()


def _record(tab: Tab, message: ConsoleMessage) -> None:
    if message.type in ("error", "assert"):
        tab.errors.append(f"console {message.type}: {message.text}")


# --- steps the tests share ----------------------------------------------------------------------


async def sign_in_dev(tab: Tab, user_id: int, role: str = "user") -> None:
    """Sign in with the dev form; wait until the page has read the user's profile and lists."""
    await tab.page.fill("#dev-user", str(user_id))
    await tab.page.select_option("#dev-role", role)
    await tab.page.click("#dev-signin-button")
    await tab.until(
        f"s.userId === {user_id} && s.role === '{role}' && s.people.loaded", f"user {user_id} to be signed in"
    )


async def go_online(tab: Tab, at: tuple[float, float]) -> None:
    """Open the friends panel, connect and send a position."""
    await tab.page.click("#tab-friends")
    await tab.page.click("#connect")
    await tab.until("s.connected", "the WebSocket to open")
    await tab.page.fill("#me-lat", str(at[0]))
    await tab.page.fill("#me-lon", str(at[1]))
    await tab.page.click("#send-location")
    await tab.until("s.self && s.self.sentAt && s.friendRadiusM", "the location to be sent")


async def status_is(tab: Tab, text: str) -> None:
    """Wait until the friends panel's status line says exactly ``text``."""
    try:
        await tab.page.wait_for_function(
            "text => document.getElementById('friends-status').textContent === text", arg=text, timeout=WAIT_MS
        )
    except Exception as exc:
        shown = await tab.page.text_content("#friends-status")
        raise AssertionError(f"the status line says {shown!r}, not {text!r}; page errors: {tab.errors}") from exc


async def as_user(
    services: Services, user_id: int, method: str, path: str, *, json: Any = None, expect: int = 200
) -> Any:
    """Call geo-api as ``user_id`` (``path`` under ``/v1/users/{user_id}``); the JSON answer."""
    headers = {"Authorization": f"Bearer {services.token(user_id)}"}
    async with services.api.http.request(method, f"/v1/users/{user_id}{path}", json=json, headers=headers) as resp:
        assert resp.status == expect, await resp.text()
        return await resp.json()


async def befriend_over_http(services: Services, user_id: int, other: int, *, expect: int) -> None:
    """``user_id`` asks ``other`` (202), or accepts ``other``'s request (201)."""
    await as_user(services, user_id, "POST", f"/friends/{other}", expect=expect)


async def raw_client(services: Services, user_id: int) -> ClientConnection:
    """A WebSocket of the test's own to geo-friends, as ``user_id``."""
    headers = {"Authorization": f"Bearer {services.token(user_id)}"}
    return await connect(services.friends.url, additional_headers=headers, compression=None)


async def next_frame(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next frame of this type (others are skipped)."""
    while True:
        frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 10 * TIMEOUT_FACTOR))
        if frame["type"] == kind:
            return frame


@dataclass
class Relayed:
    """One WebSocket of the page to geo-friends, passed through the test: the JSON frames each
    side sent, in order."""

    page: WebSocketRoute
    server: WebSocketRoute
    from_page: list[dict[str, Any]] = field(default_factory=list)
    from_server: list[dict[str, Any]] = field(default_factory=list)

    def to_page(self, **frame: Any) -> None:
        """Send the page a frame of the test's own, as if the server had sent it."""
        self.page.send(orjson.dumps(frame).decode())

    def sent(self, kind: str) -> list[dict[str, Any]]:
        """The frames of this type the page sent on this connection."""
        return [f for f in self.from_page if f.get("type") == kind]


@dataclass
class Relay:
    """Every WebSocket a page opened to geo-friends, relayed through the test (see :func:`relay`)."""

    connections: list[Relayed] = field(default_factory=list)

    @property
    def last(self) -> Relayed:
        return self.connections[-1]

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait until ``condition()`` holds (it reads the frames relayed so far)."""
        deadline = time.monotonic() + WAIT_MS / 1000
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {self.connections}"
            await asyncio.sleep(0.02)


async def relay(page: Page, into: Relay) -> None:
    """Route the page's WebSockets to geo-friends through the test (Playwright's
    ``route_web_socket``): each goes on to the real server, and every frame both ways is kept
    in ``into``; a test can add frames of its own (:meth:`Relayed.to_page`). A close on one
    side closes the other with the same code."""

    def routed(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        link = Relayed(ws, server)
        into.connections.append(link)

        def from_page(message: str | bytes) -> None:
            link.from_page.append(orjson.loads(message))
            server.send(message)

        def from_server(message: str | bytes) -> None:
            link.from_server.append(orjson.loads(message))
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)

    await page.route_web_socket(re.compile(r"/v1/friends/ws$"), routed)
