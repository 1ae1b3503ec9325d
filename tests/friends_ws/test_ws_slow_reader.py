"""A slow reader's queue: newest location per friend, bounded, drained when the socket frees.

Filling a real loopback socket takes megabytes, so the seam here is the transport's write
buffer size (what the session checks before writing) and the socket writes themselves.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import WSCloseCode

from friends_ws.cache import LocationCache
from friends_ws.hub import Hub
from friends_ws.lifetimes import TokenLifetimes
from friends_ws.limits import UserLimits
from friends_ws.link import HIGH_WATER
from friends_ws.services import Services
from friends_ws.session import Session
from friends_ws.session_config import SessionConfig
from geo_common.presence import Location
from geo_common.regions import RegionMap
from geo_common.settings import Settings


class Transport:
    """The seam: how many bytes wait in the socket buffer, and what is written."""

    def __init__(self) -> None:
        self.buffered = 0
        self.frames: list[dict[str, Any]] = []

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        # Unmasked server text frames with short payloads: 0x81, length, payload.
        while data:
            assert data[0] == 0x81 and data[1] < 126
            self.frames.append(orjson.loads(data[2 : 2 + data[1]]))
            data = data[2 + data[1] :]


class Socket:
    """The WebSocket, for how the session closes it."""

    def __init__(self) -> None:
        self.closed = False
        self.closed_with: int | None = None

    async def close(self, *, code: int, message: bytes) -> None:
        self.closed, self.closed_with = True, code


def make_session(settings: Settings, queue_size: int) -> tuple[Session, Socket, Transport, Hub]:
    regions = RegionMap.from_settings(settings)
    cache = LocationCache(regions, namespace=settings.redis_namespace, ttl_s=60)
    hub = Hub(regions, cache=cache, namespace=settings.redis_namespace, ttl_s=60)
    config = SessionConfig(radius_m=10_000, min_radius_m=100, max_radius_m=50_000, margin_m=0, queue_size=queue_size)
    limits = UserLimits(updates_per_s=10, messages_per_s=1, max_sockets=5)
    lifetimes = TokenLifetimes(leeway_ms=0, clock=lambda: 0)
    services = Services(hub, cache, None, None, config, limits, lifetimes, None)  # type: ignore[arg-type]
    socket, transport = Socket(), Transport()
    session = Session(services, socket, transport, user_id=1)  # type: ignore[arg-type]
    session.following.position = (0.0, 0.0)
    for friend in range(2, 20):
        session.following.view.add(friend)
    return session, socket, transport, hub


async def test_a_backed_up_reader_gets_the_newest_location_per_friend(settings: Settings) -> None:
    session, socket, transport, hub = make_session(replace(settings), queue_size=10)
    transport.buffered = HIGH_WATER + 1  # the client stopped reading
    for step in range(100):
        for friend in (2, 3):
            session.following.friend_moved(Location(friend, 0.0, step / 1e4, 1_000 + step))
    session.flush()
    assert transport.frames == [] and len(session.outbox or ()) == 2  # two friends, two frames: bounded
    assert hub.stats.replaced == 2 * 99
    transport.buffered = 0  # the client reads again
    for _ in range(50):
        if not session.outbox:
            break
        await asyncio.sleep(0.01)
    assert [(f["user_id"], f["updated_at"]) for f in transport.frames] == [(2, 1_099), (3, 1_099)]
    await hub.cache.close()


async def test_a_reader_too_far_behind_is_closed(settings: Settings) -> None:
    session, socket, transport, hub = make_session(settings, queue_size=5)
    transport.buffered = HIGH_WATER + 1
    for friend in range(2, 9):  # seven friends moving, room for five frames
        session.following.friend_moved(Location(friend, 0.0, 0.001, 1_000))
    await asyncio.sleep(0)
    assert socket.closed_with == WSCloseCode.TRY_AGAIN_LATER
    assert hub.stats.slow_closes == 1 and len(session.outbox or ()) == 5
    await hub.cache.close()
