"""The writing side of one WebSocket connection: a bounded queue, one write per batch, pings.

aiohttp sends a frame per coroutine call; the fan-out writes tens of thousands of frames a
second, so a :class:`Link` queues its frames and the process's flush queue
(:mod:`friends_ws.flushing`) writes every waiting frame of a connection in one
``transport.write`` at the end of the event-loop iteration (see :mod:`friends_ws.frames`). A
client whose socket backs up drains in a task of its own while its queue keeps the newest
frame per friend (:class:`~friends_ws.outbox.Outbox`); a client whose queue overflows is
closed. Keepalive is one loop for every connection (:mod:`friends_ws.keepalive`) instead of a
timer and a task per connection.

A link knows nothing of friends or sharing: a :class:`~friends_ws.session.Session` holds one
(as a :class:`~friends_ws.ports.SessionLink`) and decides what to send through it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from aiohttp import WSCloseCode

from friends_ws.frames import control_frame, text_frame, text_frames
from friends_ws.metrics import Stats
from friends_ws.outbox import Outbox

log = logging.getLogger(__name__)

#: Above this many bytes waiting in the socket's buffer, a connection drains in its own task
#: instead of being written by the shared flush (which must never wait on one client).
HIGH_WATER = 32 * 1024
_PING = b"\x89\x00"


class WebSocketEnd(Protocol):
    """What a link needs of its WebSocket: whether it is closing, and closing it
    (:class:`friends_ws.connection.Connection`)."""

    @property
    def closed(self) -> bool: ...

    async def close(self, *, code: int = ..., message: bytes = ...) -> None: ...


class WriteBuffer(Protocol):
    """What a link needs of its transport (asyncio's or uvloop's)."""

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...

    def write(self, data: bytes) -> None: ...

    def abort(self) -> None: ...


class Link:
    """Frames queued for one client, and whether the client is alive.

    Args:
        ws: the WebSocket (for closing it).
        transport: its transport (frames are written to it directly).
        schedule: has the link flushed at the end of the loop iteration
            (:meth:`friends_ws.flushing.FlushQueue.schedule`).
        stats: the process's counters.
        user_id: the user (for logs).
        queue_size: the most frames that may wait.
    """

    __slots__ = (
        "ws",
        "transport",
        "stats",
        "user_id",
        "queue_size",
        "outbox",
        "_lone",
        "_lone_friend",
        "closed",
        "handed_over",
        "last_seen",
        "_pinged",
        "_tasks",
        "_drainer",
        "_scheduled",
        "_schedule",
    )

    def __init__(
        self,
        ws: WebSocketEnd,
        transport: WriteBuffer,
        *,
        schedule: Callable[[Link], None],
        stats: Stats,
        user_id: int,
        queue_size: int,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self._schedule = schedule
        self.stats = stats
        self.user_id = user_id
        self.queue_size = queue_size
        #: Frames waiting to be written, when more than one waits or the socket is backed up
        #: (None otherwise, which is nearly always).
        self.outbox: Outbox | None = None
        # The one frame waiting, when only one does (and the friend it is about): most
        # connections get one frame in a loop iteration, which then needs no queue.
        self._lone: bytes | None = None
        self._lone_friend: int | None = None
        self.closed = False
        #: Told to reconnect elsewhere by a drain (:mod:`friends_ws.drain`): the user is coming back.
        self.handed_over = False
        #: When the client last sent anything (event-loop time), and whether it was pinged since.
        self.last_seen = asyncio.get_running_loop().time()
        self._pinged = False
        self._tasks: set[asyncio.Task[Any]] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._scheduled = False

    def stop(self) -> None:
        """The connection is over: write nothing more, cancel what runs for it."""
        self.closed = True
        for task in list(self._tasks or ()):
            task.cancel()
        if self._drainer is not None:
            self._drainer.cancel()

    def close(self, code: int, reason: bytes) -> None:
        """Write nothing more and close the WebSocket with ``code`` (in the background)."""
        self.closed = True
        self.spawn(self.ws.close(code=code, message=reason))

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run work of this connection in the background (cancelled when it stops)."""
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def send(self, frame: bytes) -> None:
        """Queue a frame that never coalesces (init, errors, acknowledgements)."""
        self._queue(frame, None)

    def send_friend(self, friend_id: int, frame: bytes) -> None:
        """Queue a frame about a friend: it replaces that friend's frame still waiting."""
        self._queue(frame, friend_id)

    def _queue(self, frame: bytes, friend_id: int | None) -> None:
        if self.closed:
            return
        if self.outbox is None and self._lone is None and self._drainer is None:
            self._lone, self._lone_friend = frame, friend_id
            if not self._scheduled:
                self._scheduled = True
                self._schedule(self)
            return
        outbox = self._outbox()
        replaced = outbox.replaced
        if not outbox.put(frame, friend_id=friend_id):
            self._overflow()
            return
        self.stats.replaced += outbox.replaced - replaced
        if not self._scheduled and self._drainer is None:
            self._scheduled = True
            self._schedule(self)

    def _outbox(self) -> Outbox:
        """The queue, made when a second frame waits or the socket backs up: the lone frame
        goes in first, so the order holds."""
        outbox = self.outbox
        if outbox is None:
            outbox = self.outbox = Outbox(self.queue_size)
            if self._lone is not None:
                outbox.put(self._lone, friend_id=self._lone_friend)
                self._lone = None
        return outbox

    def _overflow(self) -> None:
        """The client reads too slowly for its queue: close it (it reconnects to a fresh init)."""
        self.stats.slow_closes += 1
        log.info(
            "user %d: closing a connection whose reader fell %d frames behind", self.user_id, len(self.outbox or ())
        )
        self.close(WSCloseCode.TRY_AGAIN_LATER, b"reader too slow")

    def flush(self) -> None:
        """Write every waiting frame in one write, unless the socket is backed up.

        Called by the flush queue once per loop iteration for each link with frames waiting. A
        socket whose buffer holds more than :data:`HIGH_WATER` bytes is left to a drain task,
        and meanwhile its queue keeps only the newest frame per friend.
        """
        self._scheduled = False
        outbox, lone = self.outbox, self._lone
        if self.closed or (lone is None and not outbox):
            return
        transport = self.transport
        if self.ws.closed or transport.is_closing():
            self.outbox = self._lone = None
            return
        if transport.get_write_buffer_size() > HIGH_WATER:
            self._outbox()
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
            return
        if lone is not None:  # the outbox is None: the lone frame would be in it
            self._lone = None
            transport.write(text_frame(lone))
            self.stats.frames += 1
            return
        assert outbox is not None
        frames = outbox.take()
        self.outbox = None
        transport.write(text_frames(frames))
        self.stats.frames += len(frames)

    async def _drain(self) -> None:
        """A slow reader: wait for its socket to drain, then write what is newest per friend."""
        try:
            while self.outbox and not self.closed and not self.ws.closed and not self.transport.is_closing():
                if self.transport.get_write_buffer_size() > HIGH_WATER // 2:
                    await asyncio.sleep(0.02)
                    continue
                frames = self.outbox.take()
                self.transport.write(text_frames(frames))
                self.stats.frames += len(frames)
        finally:
            self._drainer = None
            self.outbox = None

    # --- keepalive ---------------------------------------------------------------------------------

    def seen(self, now: float) -> None:
        """The client sent something (a frame, a pong): it is alive."""
        self.last_seen = now
        self._pinged = False

    def keepalive(self, now: float, interval_s: float) -> None:
        """Ping a connection silent for ``interval_s``; drop it when silent for 1.5 times that."""
        silent = now - self.last_seen
        if silent < interval_s or self.closed or self.transport.is_closing():
            return
        if silent >= 1.5 * interval_s and self._pinged:
            log.info("user %d: no pong within %.1f s; dropping the connection", self.user_id, interval_s / 2)
            self.closed = True
            self.transport.abort()
        elif not self._pinged:
            self._pinged = True
            self.transport.write(_PING)

    def pong(self, payload: bytes) -> None:
        """Answer a client's ping (aiohttp's automatic answer is off: pongs are counted here)."""
        if not self.ws.closed and not self.transport.is_closing():
            self.transport.write(control_frame(0x8A, payload))
