"""A slow reader's queue: newest location per friend, bounded, drained when the socket frees.

Filling a real loopback socket takes megabytes, so the seam here is the transport's write
buffer size (what the link checks before writing) and the socket writes themselves.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import WSCloseCode

from friends_ws.flushing import FlushQueue
from friends_ws.link import HIGH_WATER, Link
from friends_ws.metrics import Stats
from friends_ws.protocol import FriendPosition, encode_friend_location


class Transport:
    """The seam: how many bytes wait in the socket buffer, and what is written."""

    def __init__(self) -> None:
        self.buffered = 0
        self.frames: list[dict[str, Any]] = []
        self.writes = 0

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.writes += 1
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


def make_link(queue_size: int) -> tuple[Link, Socket, Transport, Stats]:
    socket, transport, stats = Socket(), Transport(), Stats()
    link = Link(
        socket,  # type: ignore[arg-type]
        transport,
        schedule=FlushQueue().schedule,
        stats=stats,
        user_id=1,
        queue_size=queue_size,
    )
    return link, socket, transport, stats


def moved(friend: int, longitude: float, updated_at: int) -> bytes:
    """A ``friend_location`` frame of ``friend``."""
    return encode_friend_location(FriendPosition(friend, 0.0, longitude, 100.0, updated_at, None))


async def test_a_backed_up_reader_gets_the_newest_location_per_friend() -> None:
    link, socket, transport, stats = make_link(queue_size=10)
    transport.buffered = HIGH_WATER + 1  # the client stopped reading
    for step in range(100):
        for friend in (2, 3):
            link.send_friend(friend, moved(friend, step / 1e4, 1_000 + step))
    link.flush()
    assert transport.frames == [] and len(link.outbox or ()) == 2  # two friends, two frames: bounded
    assert stats.replaced == 2 * 99
    transport.buffered = 0  # the client reads again
    for _ in range(50):
        if not link.outbox:
            break
        await asyncio.sleep(0.01)
    assert [(f["user_id"], f["updated_at"]) for f in transport.frames] == [(2, 1_099), (3, 1_099)]


async def test_frames_queued_in_one_iteration_go_out_in_one_write_at_its_end() -> None:
    link, socket, transport, stats = make_link(queue_size=10)
    link.send(b'{"type":"settings","radius_m":500.0}')
    link.send_friend(2, moved(2, 0.001, 1_000))
    assert transport.frames == []  # nothing written while the iteration runs
    await asyncio.sleep(0)
    assert [f["type"] for f in transport.frames] == ["settings", "friend_location"]
    assert transport.writes == 1 and stats.frames == 2


async def test_a_reader_too_far_behind_is_closed() -> None:
    link, socket, transport, stats = make_link(queue_size=5)
    transport.buffered = HIGH_WATER + 1
    for friend in range(2, 9):  # seven friends moving, room for five frames
        link.send_friend(friend, moved(friend, 0.001, 1_000))
    await asyncio.sleep(0)
    assert socket.closed_with == WSCloseCode.TRY_AGAIN_LATER
    assert stats.slow_closes == 1 and len(link.outbox or ()) == 5
    assert link.closed


async def test_a_lone_frame_goes_out_alone_and_a_second_one_keeps_the_order() -> None:
    link, socket, transport, stats = make_link(queue_size=10)
    link.send_friend(2, moved(2, 0.001, 1_000))  # the usual case: one frame in the iteration
    await asyncio.sleep(0)
    assert [(f["user_id"], f["updated_at"]) for f in transport.frames] == [(2, 1_000)]
    assert transport.writes == 1 and stats.frames == 1 and link.outbox is None
    link.send_friend(2, moved(2, 0.002, 1_001))
    link.send_friend(3, moved(3, 0.002, 1_001))
    link.send_friend(2, moved(2, 0.003, 1_002))  # replaces the waiting (first, lone) frame of 2
    await asyncio.sleep(0)
    assert [(f["user_id"], f["updated_at"]) for f in transport.frames[1:]] == [(3, 1_001), (2, 1_002)]
    assert transport.writes == 2 and stats.frames == 3 and stats.replaced == 1


async def test_a_lone_frame_waits_for_a_backed_up_socket_and_is_replaced_by_a_newer_one() -> None:
    link, socket, transport, stats = make_link(queue_size=10)
    transport.buffered = HIGH_WATER + 1
    link.send_friend(2, moved(2, 0.001, 1_000))
    await asyncio.sleep(0)
    assert transport.frames == [] and len(link.outbox or ()) == 1  # drained later, from the queue
    link.send_friend(2, moved(2, 0.002, 1_001))
    assert len(link.outbox or ()) == 1 and stats.replaced == 1
    transport.buffered = 0
    for _ in range(50):
        if not link.outbox:
            break
        await asyncio.sleep(0.01)
    assert [(f["user_id"], f["updated_at"]) for f in transport.frames] == [(2, 1_001)]
