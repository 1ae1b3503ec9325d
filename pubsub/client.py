"""A pipelined Redis command connection: every command of a loop iteration in one write.

The hot path of the friends tier sends two commands per location update (``SET`` the cache,
``PUBLISH`` the update) from thousands of sessions. A general-purpose client spends tens of
microseconds of Python per command on pooling, retries and parsing; here commands share one
connection per node and are pipelined automatically: each call queues its command and a
future, the queue is written once per event-loop iteration, and hiredis parses the replies,
which Redis sends in order. Only simple request/reply commands belong here (no blocking
commands, no ``MULTI``, no pub/sub).

:class:`CommandProtocol` is the sans-I/O core (commands out, replies matched to futures in);
:class:`RedisClient` is the asyncio adapter that connects lazily and reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis

from pubsub.address import NodeAddress
from pubsub.errors import AuthenticationFailed, NodeUnavailable, PubSubError
from pubsub.protocol import DEFAULT_CONNECT_TIMEOUT_S, encode_command
from pubsub.sentinel import Locate, node_for_url

log = logging.getLogger(__name__)

Arg = bytes | str | int | float


class ReplyError(PubSubError, ValueError):
    """Redis answered a command with an error (``-ERR ...``, ``-WRONGTYPE ...``)."""


class ConnectionLost(PubSubError, ConnectionError):
    """The connection dropped (or timed out) before the reply came."""


def _arg(value: Arg) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return str(value).encode()


class CommandProtocol:
    """Commands and their replies, in order, with no I/O.

    Args:
        refused: builds the error of a refused login from Redis's reply (``WRONGPASS ...``
            to ``AUTH``, or ``NOAUTH ...`` to a command sent without one); default
            :class:`~pubsub.errors.AuthenticationFailed` naming no node.
    """

    def __init__(self, refused: Callable[[str], PubSubError] | None = None) -> None:
        self._reader = hiredis.Reader()
        self._out: list[bytes] = []
        # None stands for the login (AUTH), whose reply nobody awaits.
        self._waiting: deque[asyncio.Future[Any] | None] = deque()
        self._refused = refused or (lambda reply: AuthenticationFailed("(unnamed)", reply))
        #: Replies read so far (a connection whose count stands still while commands wait is stuck).
        self.replies = 0

    def send(self, args: tuple[Arg, ...], future: asyncio.Future[Any]) -> None:
        """Queue a command whose reply will complete ``future``."""
        self._out.append(encode_command([_arg(a) for a in args]))
        self._waiting.append(future)

    def login(self, password: str, username: str | None = None) -> None:
        """Queue ``AUTH [username] password`` ahead of everything queued (a new connection)."""
        args = ("AUTH", username, password) if username else ("AUTH", password)
        self._out.insert(0, encode_command([_arg(a) for a in args]))
        self._waiting.appendleft(None)

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data

    @property
    def waiting(self) -> int:
        """Commands sent or queued whose replies have not come."""
        return sum(1 for future in self._waiting if future is not None)

    @property
    def busy(self) -> bool:
        """Whether any reply is still to come (the login's included)."""
        return bool(self._waiting)

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the socket; completes the futures of every whole reply.

        A command refused for want of a login (``NOAUTH``) fails with the ``refused`` error.

        Raises:
            hiredis.ProtocolError: not RESP; the connection must be dropped.
            PubSubError: the ``refused`` error: Redis refused the login, and every command
                in flight has failed with it; the connection must be dropped.
        """
        self._reader.feed(data)
        waiting = self._waiting
        while (reply := self._reader.gets()) is not False:
            if not waiting:
                raise hiredis.ProtocolError("a reply nobody asked for")
            future = waiting.popleft()
            self.replies += 1
            if future is None:  # the login's reply
                if isinstance(reply, hiredis.ReplyError):
                    error = self._refused(str(reply))
                    self.fail(error)
                    raise error
                continue
            if future.done():
                continue  # the caller gave up (timeout, cancellation)
            if isinstance(reply, hiredis.ReplyError):
                text = str(reply)
                future.set_exception(self._refused(text) if text.startswith("NOAUTH") else ReplyError(text))
            else:
                future.set_result(reply)

    def fail(self, exc: Exception) -> None:
        """The connection is gone: fail every command in flight, forget queued bytes."""
        self._reader = hiredis.Reader()
        self._out.clear()
        while self._waiting:
            future = self._waiting.popleft()
            if future is not None and not future.done():
                future.set_exception(exc)
                future.exception()  # a caller that gave up must not log it as unretrieved


class _Link(asyncio.Protocol):
    """One TCP connection; hands what it reads, and its loss, to the client that opened it.

    The client ignores a link it has replaced: a dropped connection's late bytes or close.
    """

    def __init__(
        self, on_data: Callable[[_Link, bytes], None], on_lost: Callable[[_Link, Exception | None], None]
    ) -> None:
        self.transport: asyncio.Transport | None = None
        self._on_data = on_data
        self._on_lost = on_lost

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._on_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(self, exc)


class RedisClient:
    """One auto-pipelined connection to one Redis node.

    Args:
        address: the node.
        connect_timeout_s: give up one connection attempt after this long.
        command_timeout_s: a connection that reads no reply for this long while commands
            wait for one is dropped (every command in flight fails with
            :class:`ConnectionLost`). One timer per client checks it, not one per command:
            Redis answers in order, so no reply in a whole period means the oldest command has
            waited at least that long, and a stuck command fails within one to two periods.
        locate: where the node is now, asked before each connection (a Sentinel-managed
            primary, :mod:`pubsub.sentinel`); :attr:`address` follows what it answers. A
            command refused with ``READONLY`` (the node was demoted to a replica) then drops
            the connection and counts as lost, so the next one asks again.
    """

    def __init__(
        self,
        address: NodeAddress,
        *,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        command_timeout_s: float = 5.0,
        locate: Locate | None = None,
    ) -> None:
        #: The node (for a Sentinel-managed primary: where it was last found).
        self.address = address
        self._locate = locate
        self._connect_timeout_s = connect_timeout_s
        self._command_timeout_s = command_timeout_s
        self._protocol = CommandProtocol(self._refused)
        self._link: _Link | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._flush_soon = False
        self._closed = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._replies_seen = 0
        #: Connections opened so far (tests and metrics read it).
        self.connections = 0

    @classmethod
    def from_url(cls, url: str, *, tls_ca: str | None = None, **options: float) -> RedisClient:
        """A client of the node a ``redis://`` or ``rediss://`` URL names (see :meth:`NodeAddress.parse`),
        or of the primary a ``redis+sentinel://`` URL names (see :mod:`pubsub.sentinel`)."""
        address, locate = node_for_url(url, tls_ca=tls_ca)
        return cls(address, locate=locate, **options)

    def call(self, *args: Arg) -> asyncio.Future[Any]:
        """Queue a command; the future completes with its reply (written this iteration).

        Raises:
            ConnectionLost: the client was closed.
        """
        if self._closed:
            raise ConnectionLost(f"client for {self.address.name} is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._protocol.send(args, future)
        if self._link is None:
            if self._connecting is None or self._connecting.done():
                self._connecting = loop.create_task(self._connect())
        elif not self._flush_soon:
            self._flush_soon = True
            loop.call_soon(self._flush)
        if self._watchdog is None:
            self._watch(loop)
        return future

    async def execute(self, *args: Arg, retries: int = 1) -> Any:
        """Run a command and return its reply, retrying on a dropped connection.

        Raises:
            ReplyError: Redis refused the command.
            AuthenticationFailed: Redis refused the login (not retried).
            ConnectionLost: the node stayed unreachable.
        """
        for attempt in range(retries + 1):
            try:
                return await self.call(*args)
            except ConnectionLost as exc:
                error = exc
            except ReplyError as exc:
                if self._locate is None or not str(exc).startswith("READONLY"):
                    raise
                # A failover demoted the node this connection reached: find the primary again.
                self._drop("the node is a replica now")
                error = ConnectionLost(f"{self.address.name}: {exc}")
            if attempt < retries:
                await asyncio.sleep(0.05 * (attempt + 1))
        raise error

    async def close(self) -> None:
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        self._drop("closed")

    # --- the reply timeout ------------------------------------------------------------------------

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        self._replies_seen = self._protocol.replies
        self._watchdog = loop.call_later(self._command_timeout_s, self._check, loop)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        """A period has passed: drop the connection if commands waited all of it for nothing."""
        self._watchdog = None
        if not self._protocol.busy:
            return  # idle: the next command arms the timer again
        if self._protocol.replies == self._replies_seen:
            self._drop(f"no reply within {self._command_timeout_s} s")
            return
        self._watch(loop)

    # --- I/O --------------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_soon = False
        link = self._link
        if link is not None and link.transport is not None:
            data = self._protocol.data_to_send()
            if data:
                link.transport.write(data)

    def _received(self, link: _Link, data: bytes) -> None:
        if link is not self._link:
            return
        try:
            self._protocol.receive_data(data)
        except hiredis.ProtocolError as exc:
            self._drop(f"unparseable reply: {exc}")
        except AuthenticationFailed as exc:
            log.error("%s", exc)
            self._drop("authentication refused")

    def _lost(self, link: _Link, exc: Exception | None) -> None:
        if link is not self._link:
            return
        self._link = None
        self._protocol.fail(ConnectionLost(f"lost the connection to {self.address.name}: {exc or 'closed'}"))

    def _drop(self, why: str) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        link, self._link = self._link, None
        if link is not None and link.transport is not None:
            link.transport.abort()
        self._protocol.fail(ConnectionLost(f"{self.address.name}: {why}"))

    def _refused(self, reply: str) -> AuthenticationFailed:
        return AuthenticationFailed(self.address.name, reply, username=self.address.username)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        if self._locate is not None:
            try:
                self.address = await self._locate()
            except NodeUnavailable as exc:
                self._protocol.fail(ConnectionLost(str(exc)))
                return
        try:
            _transport, link = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Link(self._received, self._lost),
                    self.address.host,
                    self.address.port,
                    ssl=self.address.ssl_context(),
                ),
                self._connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            self._protocol.fail(ConnectionLost(f"cannot reach {self.address.name}: {exc}"))
            return
        assert link.transport is not None
        if self.address.password is not None:
            # Pipelined ahead of the queued commands: a refusal fails them all at once.
            self._protocol.login(self.address.password, self.address.username)
        self._link = link
        self.connections += 1
        link.transport.write(self._protocol.data_to_send())
