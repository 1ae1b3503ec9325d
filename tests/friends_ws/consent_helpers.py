"""Helpers of the consent and privacy tests: geo-api's part, a cuttable TCP proxy, a lagging replica.

geo-api itself is not started: a test writes the change on the primary with
``geo_common.consent_db`` / ``friends_db`` and publishes what
:class:`~geo_common.announcements.Announcer` says, in order, like geo-api does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg

from geo_common import friends_db
from geo_common.announcements import Announcer, Publication
from geo_common.regions import RegionMap
from geo_common.settings import Settings
from pubsub import PubSub, create_pubsub


class Publisher:
    """Publishes an announcer's publications on each region's pub/sub, one after the other.

    Args:
        settings: the settings whose regions and namespace geo-friends uses.
    """

    def __init__(self, settings: Settings) -> None:
        self.regions = RegionMap.from_settings(settings)
        self.announcer = Announcer(self.regions, settings.redis_namespace)
        self._buses: dict[str, PubSub] = {}

    async def publish(self, publications: Iterable[Publication]) -> list[int]:
        """Publish in order; returns how many processes heard each."""
        heard = []
        for publication in publications:
            bus = self._buses.get(publication.region)
            if bus is None:
                region = self.regions.get(publication.region)
                bus = create_pubsub(region.pubsub_backend, region.pubsub_nodes, on_message=lambda *_: None)
                await bus.start()
                self._buses[publication.region] = bus
            heard.append(await bus.publish(publication.channel, publication.data))
        return heard

    async def close(self) -> None:
        for bus in self._buses.values():
            await bus.close()


async def homes(conn: asyncpg.Connection, *user_ids: int) -> dict[int, str | None]:
    """The home regions of users, as geo-api reads them on the primary."""
    found = {}
    for user_id in user_ids:
        user = await friends_db.get_user(conn, user_id)
        found[user_id] = None if user is None else user.home_region
    return found


class TcpProxy:
    """A TCP proxy in front of one server that can be cut (every connection dropped, new ones
    refused) and restored, to cut one process off Redis while others still reach it."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self._first_accept: asyncio.Future[float] | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, template: str) -> str:
        """``template`` (a ``redis://host:port/db`` URL) pointed at the proxy."""
        scheme, rest = template.split("://", 1)
        path = rest.split("/", 1)[1] if "/" in rest else ""
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    async def cut(self) -> None:
        """Stop listening and drop every proxied connection."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def restore(self) -> asyncio.Future[float]:
        """Listen again on the same port.

        Returns:
            When (``time.monotonic()``) the first connection is accepted, once it is.
        """
        self._first_accept = asyncio.get_running_loop().create_future()
        await self.start()
        return self._first_accept

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._first_accept is not None and not self._first_accept.done():
            self._first_accept.set_result(time.monotonic())
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(sink)
            sink.transport.abort()

    async def close(self) -> None:
        if self._server is not None:
            await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def replay_paused(settings: Settings) -> AsyncIterator[list[asyncpg.Connection]]:
    """Pause WAL replay on every replica (they trail the primary from now on); always resumed.

    Yields:
        A connection to each replica (to see what it still says).
    """
    conns: list[asyncpg.Connection] = []
    try:
        for dsn in settings.pg_replicas:
            conn = await asyncpg.connect(dsn)
            conns.append(conn)
            await conn.execute("SELECT pg_wal_replay_pause()")
        yield conns
    finally:
        for conn in conns:
            try:
                await conn.execute("SELECT pg_wal_replay_resume()")
            finally:
                await conn.close()


def frames_of(frames: list[dict[str, Any]], user_id: int) -> list[dict[str, Any]]:
    """The frames about one user (locations, departures, announcements), init friends included."""
    about = [f for f in frames if f.get("user_id") == user_id]
    for frame in frames:
        if frame.get("type") == "init":
            about += [f for f in frame["friends"] if f["user_id"] == user_id]
    return about
