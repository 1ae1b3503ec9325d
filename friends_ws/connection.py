"""One client of ``/v1/friends/ws``, from its handshake's first byte to its close (the I/O edge).

A connection is an :class:`asyncio.Protocol` of a dozen slots: while it waits for frames it
holds its :class:`~friends_ws.link.Link` and :class:`~friends_ws.session.Session`, a
:class:`~friends_ws.wire.FrameReader` and nothing else: no parsed request, no response
object, no task. Its life:

1. **Handshake** (a task): the request head is read (:mod:`friends_ws.handshake`), its id
   taken (:mod:`friends_ws.edge`), the client admitted (:func:`friends_ws.ws.admit`) or
   refused as plain HTTP, then ``101`` and the session opened (1013 if a backend is away).
   Reading pauses meanwhile; frames sent early wait in the kernel.
2. **Frames**: control frames are answered at once (a ping with a pong); text and binary
   messages go to the session one at a time, in order, through a task that lives while
   messages wait. Reading pauses while 8 wait. A broken frame closes with the code of
   :mod:`friends_ws.wire` (1002, 1007, 1009).
3. **Close**: either side's close frame is answered, and the connection closed once both were
   sent (or after :data:`CLOSE_TIMEOUT_S`); then the session ends (:meth:`Session.close`), the
   socket is released from the user's cap, and the sampled access line is written, in the
   request's context (its id) like every log line of the session.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from aiohttp import WSCloseCode, web

from friends_ws.auth import SUBPROTOCOL
from friends_ws.edge import Answering
from friends_ws.frames import close_frame
from friends_ws.handshake import (
    PATH,
    Head,
    HeadError,
    offered_protocols,
    read_head,
    refusal,
    switching,
    upgrade_problem,
)
from friends_ws.keys import drain_key, edge_key, hub_key, services_key, settings_key
from friends_ws.link import Link
from friends_ws.session import Session
from friends_ws.wire import BINARY, CLOSE, NO_STATUS, PING, TEXT, FrameReader, Message, WireError
from friends_ws.ws import MAX_FRAME, admit
from geo_common.database import DatabaseUnavailable
from geo_common.request_context import REQUEST_ID_HEADER, current_request_id
from pubsub import PubSubError

log = logging.getLogger(__name__)

#: How long a close waits for the client's close frame, seconds.
CLOSE_TIMEOUT_S = 5.0
#: Messages waiting for the session that pause reading (resumed below half).
PAUSE_AT = 8
#: How long a client may take to send its handshake's head, seconds (then 408, closed).
HEAD_TIMEOUT_S = 30.0


class Connection(asyncio.Protocol):
    """A WebSocket client: see the module's docstring.

    Args:
        app: the geo-friends app (its services, hub, edge, settings and drain).
    """

    __slots__ = (
        "_app",
        "_transport",
        "_buffer",
        "_reader",
        "_task",
        "_waiting",
        "_context",
        "_link",
        "_session",
        "_answering",
        "_user",
        "_close_sent",
        "_closed_by_peer",
        "_gone",
        "_lost",
        "_ended",
        "_timer",
    )

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._reader: FrameReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiting: deque[Message] | None = None
        self._context: contextvars.Context | None = None
        self._link: Link | None = None
        self._session: Session | None = None
        self._answering: Answering | None = None
        self._user = 0
        self._close_sent = False
        self._closed_by_peer: asyncio.Future[None] | None = None
        self._gone: asyncio.Future[None] | None = None
        self._lost = False
        self._ended: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    # --- the WebSocket end a Link closes ---------------------------------------------------------

    @property
    def closed(self) -> bool:
        """A close frame was sent or received, or the socket is gone."""
        transport = self._transport
        return self._close_sent or transport is None or transport.is_closing()

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        """Send a close frame (once), wait up to :data:`CLOSE_TIMEOUT_S` for the client's, close
        the socket, and return once the session has ended."""
        transport = self._transport
        if transport is None:
            return
        loop = asyncio.get_running_loop()
        if self._gone is None:
            self._gone = loop.create_future()
            if self._lost:
                self._gone.set_result(None)
        if not self._close_sent and not transport.is_closing():
            self._close_sent = True
            self._closed_by_peer = loop.create_future()
            transport.write(close_frame(code, message))
            try:
                await asyncio.wait_for(asyncio.shield(self._closed_by_peer), CLOSE_TIMEOUT_S)
            except TimeoutError:
                pass
        transport.close()
        try:  # the socket closes once what is buffered is written: not to a client that stopped reading
            await asyncio.wait_for(asyncio.shield(self._gone), CLOSE_TIMEOUT_S)
        except TimeoutError:
            transport.abort()
            await asyncio.shield(self._gone)
        if self._ended is not None:
            await asyncio.shield(self._ended)

    # --- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT_S, self._too_slow)

    def _too_slow(self) -> None:
        self._timer = None
        self._refuse(refusal(408, f"send the handshake's head within {HEAD_TIMEOUT_S:g} s\n"))

    def data_received(self, data: bytes) -> None:
        if self._reader is not None:
            self._frames(data)
            return
        self._buffer += data
        if self._task is not None:
            return  # the handshake runs; reading is paused
        try:
            read = read_head(self._buffer)
        except HeadError as exc:
            self._refuse(refusal(exc.status, f"{exc.text}\n"))
            return
        if read is None:
            return
        self._stop_timer()
        head, length = read
        self._buffer = self._buffer[length:]
        assert self._transport is not None
        self._transport.pause_reading()
        self._task = asyncio.get_running_loop().create_task(self._open(head))

    def eof_received(self) -> bool:
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._stop_timer()
        for future in (self._closed_by_peer, self._gone):
            if future is not None and not future.done():
                future.set_result(None)
        if self._session is not None and self._reader is not None:
            self._end()
        # A handshake still running sees the transport closing and ends the session itself.

    # --- the handshake --------------------------------------------------------------------------

    async def _open(self, head: Head) -> None:
        app, transport = self._app, self._transport
        assert transport is not None
        answering = app[edge_key].opening(head.method, PATH, head.headers.get(REQUEST_ID_HEADER))
        answering.__enter__()
        self._context = contextvars.copy_context()
        services = app[services_key]
        try:
            verified = await admit(head, services, app[settings_key], app[drain_key])
            problem = upgrade_problem(head)
            if problem is not None:
                services.limits.release(verified.user_id)
                raise web.HTTPBadRequest(text=f"{problem}\n")
        except web.HTTPException as exc:
            answering.__exit__(type(exc), exc, exc.__traceback__)
            self._refuse_with(exc)
            return
        except Exception as exc:  # a bug: logged under the route (never the query), answered 500
            answering.__exit__(type(exc), exc, exc.__traceback__)
            log.exception("the WebSocket handshake failed unexpectedly")
            self._refuse_with(web.HTTPInternalServerError(text="the server failed to open the connection\n"))
            return
        user_id = self._user = verified.user_id
        if transport.is_closing():  # the client went away: nothing is answered
            services.limits.release(user_id)
            answering.__exit__(asyncio.CancelledError, asyncio.CancelledError(), None)
            return
        protocol = SUBPROTOCOL if SUBPROTOCOL in offered_protocols(head.headers) else None
        transport.write(switching(head, protocol=protocol, request_id=current_request_id.get()))
        hub = app[hub_key]
        hub.stats.connections_total += 1
        # The link writes; the session decides what to write. The hub's loops flush and ping the link.
        link = self._link = Link(
            self,
            transport,
            schedule=hub.flush.schedule,
            stats=hub.stats,
            user_id=user_id,
            queue_size=services.config.queue_size,
        )
        session = self._session = Session(services, link, user_id)
        self._answering = answering
        services.lifetimes.watch(session, verified.expires_at)
        hub.keepalive.add(link)
        failed: tuple[int, bytes] | None = None
        try:
            await session.open()
        except (DatabaseUnavailable, PubSubError, OSError) as exc:
            log.warning("user %d: cannot open a session: %s", user_id, exc)
            failed = (WSCloseCode.TRY_AGAIN_LATER, b"service unavailable")
        except Exception:  # a bug: logged, the client told, the session ended as any other
            log.exception("user %d: opening the session failed unexpectedly", user_id)
            failed = (WSCloseCode.INTERNAL_ERROR, b"internal error")
        self._reader = FrameReader(MAX_FRAME)
        self._task = None
        if transport.is_closing():  # the client went away meanwhile
            self._end()
            return
        buffered, self._buffer = self._buffer, b""
        transport.resume_reading()
        if failed is not None:
            await self.close(code=failed[0], message=failed[1])
        elif buffered:
            self._frames(buffered)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _refuse(self, answer: bytes) -> None:
        self._stop_timer()
        transport = self._transport
        assert transport is not None
        transport.write(answer)
        transport.close()

    def _refuse_with(self, exc: web.HTTPException) -> None:
        headers = {name: value for name, value in exc.headers.items()}
        headers[REQUEST_ID_HEADER] = current_request_id.get()
        self._refuse(refusal(exc.status, exc.text or "", headers))

    # --- frames ---------------------------------------------------------------------------------

    def _frames(self, data: bytes) -> None:
        reader, link = self._reader, self._link
        assert reader is not None and link is not None
        if self._close_sent and self._closed_by_peer is None:
            return  # closed after a broken frame: what follows is not read
        try:
            messages = reader.feed(data)
        except WireError as exc:
            self._fail(exc)
            return
        if not messages:
            return
        link.seen(asyncio.get_running_loop().time())
        for message in messages:
            kind = message[0]
            if kind == PING:
                link.pong(message[1])  # type: ignore[arg-type]
            elif kind == CLOSE:
                self._peer_closed(message[1])  # type: ignore[arg-type]
                return
            elif kind == TEXT or kind == BINARY:
                self._queue(message)

    def _queue(self, message: Message) -> None:
        waiting = self._waiting
        if waiting is None:
            waiting = self._waiting = deque()
        waiting.append(message)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump(), context=self._context)
        if len(waiting) >= PAUSE_AT and self._transport is not None:
            self._transport.pause_reading()

    async def _pump(self) -> None:
        session, waiting, transport = self._session, self._waiting, self._transport
        assert session is not None and waiting is not None and transport is not None
        try:
            while waiting:
                kind, payload = waiting.popleft()
                if kind == TEXT:
                    await session.receive(payload)  # type: ignore[arg-type]
                else:
                    session.reject_binary()
                if len(waiting) == PAUSE_AT // 2 and not transport.is_closing():
                    transport.resume_reading()
        finally:
            self._task = None
            self._waiting = None

    def _peer_closed(self, close: tuple[int, str]) -> None:
        transport = self._transport
        assert transport is not None
        if self._close_sent:
            if self._closed_by_peer is not None and not self._closed_by_peer.done():
                self._closed_by_peer.set_result(None)
            return
        self._close_sent = True
        code = close[0]
        transport.write(close_frame(WSCloseCode.OK if code == NO_STATUS else code))
        transport.close()

    def _fail(self, exc: WireError) -> None:
        """A broken frame: say why in a close frame and stop reading; the socket closes once the
        client closes its end, or after :data:`CLOSE_TIMEOUT_S`."""
        transport = self._transport
        assert transport is not None
        log.info("user %d: closing with %d: %s", self._user, exc.code, exc.reason)
        self._close_sent = True
        self._waiting = None
        transport.write(close_frame(exc.code, exc.reason.encode()))
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, transport.close)

    # --- the end --------------------------------------------------------------------------------

    def _end(self) -> None:
        """The socket is gone: end the session (once), in the request's context."""
        if self._ended is None:
            self._ended = asyncio.get_running_loop().create_task(self._finish(), context=self._context)

    async def _finish(self) -> None:
        link, session, answering = self._link, self._session, self._answering
        assert link is not None and session is not None
        task = self._task
        if task is not None:
            # The messages read before the socket went are handled first, in order.
            await asyncio.wait([task])
        hub, services = self._app[hub_key], self._app[services_key]
        try:
            hub.keepalive.discard(link)
            await session.close(handed_over=link.handed_over)
        finally:
            services.limits.release(self._user)
            if answering is not None:
                answering.status = 101
                answering.__exit__(None, None, None)
