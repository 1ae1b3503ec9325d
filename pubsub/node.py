"""The asyncio adapter of one subscriber connection to one Redis node.

:class:`NodeSubscriber` holds one long-lived connection per Redis node and multiplexes every
channel of the process on it. It reads the socket continuously (in ``data_received``, never
waiting on the application), hands each message to a synchronous callback, reconnects with
backoff when the connection drops, and restores every subscription on the new connection,
so clients never notice. An idle connection is probed with ``PING``: a node that stops
answering (a silent failover, a paused VM, a dropped NAT entry) is detected and reconnected
rather than trusted forever.

A node that refuses the login (a wrong password, or none given where one is needed) fails
every pending subscribe with :class:`~pubsub.errors.AuthenticationFailed` at once; the
channels stay wanted, and the connection is retried with backoff, so subscriptions come
back by themselves once the credentials are right.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import cast

import hiredis

from pubsub.address import NodeAddress
from pubsub.errors import AuthenticationFailed, NodeUnavailable, SubscribeError
from pubsub.protocol import (
    DEFAULT_BATCH,
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_PROBE_INTERVAL_S,
    DEFAULT_PROBE_TIMEOUT_S,
    Acknowledged,
    Lost,
    Message,
    SubscriberProtocol,
)
from pubsub.sentinel import Locate
from pubsub.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
"""Called with ``(channel, data)`` for every message, on the event loop; must not block."""


class _Link(asyncio.Protocol):
    """One TCP connection; hands what it reads to its subscriber, which ignores a replaced link."""

    def __init__(self, on_data: Callable[[_Link, bytes], None]) -> None:
        self._on_data = on_data
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._on_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


class _Waiter:
    __slots__ = ("remaining", "future", "errors")

    def __init__(self, ids: Iterable[int], future: asyncio.Future[None]) -> None:
        self.remaining = set(ids)
        self.future = future
        self.errors: list[Acknowledged] = []


class NodeSubscriber:
    """One subscriber connection to one Redis node, carrying every channel of the process.

    Args:
        address: the node.
        on_message: called with ``(channel, data)`` for each message; must not block.
        on_lost: called with channels Redis dropped on its own (a cluster slot moved).
        on_down: called after each failed (re)connection attempt, so an owner can look for
            the node's replacement.
        on_restored: called when the subscriptions are back after a reconnection: messages
            published while the connection was down are lost (Redis pub/sub keeps nothing),
            so an owner may re-read the state they carried.
        sharded: ``SSUBSCRIBE`` (Redis Cluster sharded pub/sub) instead of ``SUBSCRIBE``.
        group: for sharded commands, a channel's hash slot (see
            :class:`~pubsub.protocol.SubscriberProtocol`).
        batch: the most channels in one command.
        probe_interval_s: after this many seconds without a byte from Redis, send ``PING``.
        probe_timeout_s: drop the connection when a ``PING`` stays unanswered this long.
        connect_timeout_s: give up one connection attempt after this long.
        reconnect_max_s: the longest pause between reconnection attempts.
        locate: where the node is now, asked before each connection (a Sentinel-managed
            primary, :mod:`pubsub.sentinel`): subscriptions lost to a failover are restored on
            the promoted replica. :attr:`address` follows what it answers.
    """

    def __init__(
        self,
        address: NodeAddress,
        *,
        on_message: MessageHandler,
        on_lost: Callable[[list[str]], None] | None = None,
        on_down: Callable[[NodeSubscriber], None] | None = None,
        on_restored: Callable[[NodeSubscriber], None] | None = None,
        # How commands are built.
        sharded: bool = False,
        group: Callable[[bytes], int] | None = None,
        batch: int = DEFAULT_BATCH,
        # Liveness.
        probe_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
        probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        reconnect_max_s: float = 2.0,
        locate: Locate | None = None,
    ) -> None:
        self.address = address
        self._locate = locate
        self._on_message = on_message
        self._on_lost = on_lost
        self._on_down = on_down
        self._on_restored = on_restored
        self._protocol = SubscriberProtocol(sharded=sharded, group=group, batch=batch)
        self._probe_interval_s = probe_interval_s
        self._probe_timeout_s = probe_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._reconnect_max_s = reconnect_max_s
        self._link: _Link | None = None
        self._waiters: dict[int, list[_Waiter]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._received = 0
        self._ping_id: int | None = None
        self._connected = asyncio.Event()
        #: Why the node refused the login on the current connection (None: it did not).
        self._refusal: AuthenticationFailed | None = None
        #: Times the connection was (re)established; tests and metrics read it.
        self.connections = 0
        #: Messages handed to ``on_message``.
        self.messages = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting (in the background); subscriptions made before are kept."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pubsub-{self.address.name}")

    async def close(self) -> None:
        """Drop the connection and stop reconnecting; pending subscribes fail."""
        self._closed = True
        await cancel_and_wait(self._task)
        self._task = None
        if self._link is not None and self._link.transport is not None:
            self._link.transport.abort()
        self._link = None
        self._connected.clear()
        self._fail_waiters(NodeUnavailable(f"subscriber for {self.address.name} closed"))

    @property
    def connected(self) -> bool:
        """True while a connection is up (its subscriptions may still be restoring)."""
        return self._connected.is_set()

    # --- subscriptions --------------------------------------------------------------------

    @property
    def channels(self) -> frozenset[str]:
        """The channels this node is (or is becoming) subscribed to."""
        return frozenset(self._protocol.channels)

    def has(self, channel: str) -> bool:
        """True when ``channel`` is (or is becoming) subscribed here."""
        return channel in self._protocol.channels

    async def subscribe(self, channels: Iterable[str]) -> None:
        """Subscribe to channels and wait until Redis confirmed every one.

        While disconnected, the channels are kept and subscribed when the connection is
        restored; the call returns then.

        Raises:
            SubscribeError: Redis refused a command (``MOVED`` in a cluster); the refused
                channels are no longer in :attr:`channels`.
            AuthenticationFailed: the node refused the login; the channels stay wanted.
            NodeUnavailable: the subscriber was closed first.
            InvalidChannel: a name is empty or not UTF-8.
        """
        if self._closed:
            raise NodeUnavailable(f"subscriber for {self.address.name} is closed")
        ids = self._protocol.subscribe(channels)
        if not ids:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(ids, future)
        for command_id in ids:
            self._waiters.setdefault(command_id, []).append(waiter)
        self._flush()
        await future

    def unsubscribe(self, channels: Iterable[str]) -> None:
        """Unsubscribe from channels (written at once; confirmation is not awaited)."""
        if self._protocol.unsubscribe(channels):
            self._flush()

    # --- I/O ------------------------------------------------------------------------------

    def _flush(self) -> None:
        link = self._link
        if link is None or link.transport is None or link.transport.is_closing() or not self._connected.is_set():
            return  # queued commands are rebuilt from the channel set on reconnection
        data = self._protocol.data_to_send()
        if data:
            link.transport.write(data)

    def _data_received(self, link: _Link, data: bytes) -> None:
        if link is not self._link:
            return  # a replaced connection's late bytes
        self._received += 1
        self._protocol.receive_data(data)
        try:
            events = self._protocol.events_received()
        except hiredis.ProtocolError:
            log.error("pubsub: unparseable data from %s; reconnecting", self.address.name)
            if self._link is not None and self._link.transport is not None:
                self._link.transport.abort()
            return
        lost: list[str] = []
        on_message = self._on_message
        for event in events:
            if type(event) is Message:
                self.messages += 1
                try:
                    on_message(event.channel, event.data)
                except Exception:  # one bad message must not stop the reader
                    log.exception("pubsub: message handler failed on %s", event.channel)
            elif type(event) is Acknowledged:
                self._acknowledged(event)
            elif type(event) is Lost:
                lost.append(event.channel)
        if lost and self._on_lost is not None:
            self._on_lost(lost)

    def _acknowledged(self, event: Acknowledged) -> None:
        if event.kind == "ping":
            self._ping_id = None
            return
        if event.error is not None and (event.kind == "auth" or event.error.startswith("NOAUTH")):
            self._refused(event.error)
            return
        if event.kind == "auth":
            return
        if event.error is not None and event.kind != "subscribe":
            log.warning("pubsub: %s refused %s: %s", self.address.name, event.kind, event.error)
        for waiter in self._waiters.pop(event.command_id, ()):
            waiter.remaining.discard(event.command_id)
            if event.error is not None:
                waiter.errors.append(event)
            if not waiter.remaining and not waiter.future.done():
                if waiter.errors:
                    refused = tuple(c for e in waiter.errors for c in e.channels)
                    waiter.future.set_exception(SubscribeError(waiter.errors[0].error or "refused", refused))
                else:
                    waiter.future.set_result(None)

    def _refused(self, reply: str) -> None:
        """The node refused the login: fail the waiters now, drop the connection (retried later)."""
        if self._refusal is not None:
            return  # the commands queued behind the login are refused too
        self._refusal = AuthenticationFailed(self.address.name, reply, username=self.address.username)
        self._fail_waiters(self._refusal)
        if self._link is not None and self._link.transport is not None:
            self._link.transport.abort()

    def _fail_waiters(self, exc: Exception) -> None:
        waiters = {id(w): w for ws in self._waiters.values() for w in ws}
        self._waiters.clear()
        for waiter in waiters.values():
            if not waiter.future.done():
                waiter.future.set_exception(exc)
                # Nobody may be awaiting any more; do not log "exception never retrieved".
                waiter.future.exception()

    async def _run(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                link = await self._connect()
            except (OSError, TimeoutError) as exc:
                log.warning("pubsub: cannot reach %s (%s); retrying in %.2f s", self.address.name, exc, delay)
                if self._on_down is not None:
                    self._on_down(self)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._reconnect_max_s)
                continue
            await self._watch(link)
            self._connected.clear()
            if self._refusal is not None:
                # Credentials do not fix themselves: back off as for an unreachable node.
                log.error("pubsub: %s; retrying in %.2f s", self._refusal, delay)
                self._refusal = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._reconnect_max_s)
                continue
            delay = 0.05
            if not self._closed:
                log.warning(
                    "pubsub: lost %s; reconnecting and restoring %d channel(s)",
                    self.address.name,
                    len(self._protocol.channels),
                )

    async def _connect(self) -> _Link:
        loop = asyncio.get_running_loop()
        if self._locate is not None:
            self.address = await self._locate()  # NodeUnavailable is an OSError: retried
        _transport, link = await asyncio.wait_for(
            loop.create_connection(
                lambda: _Link(self._data_received),
                self.address.host,
                self.address.port,
                ssl=self.address.ssl_context(),
            ),
            self._connect_timeout_s,
        )
        sock = link.transport.get_extra_info("socket") if link.transport is not None else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._link = link
        self._ping_id = None
        restore = self._protocol.reset(password=self.address.password, username=self.address.username)
        # Every waiter of the old connection now waits for the restoring commands.
        pending = {id(w): w for ws in self._waiters.values() for w in ws}
        self._waiters.clear()
        for waiter in pending.values():
            waiter.remaining = set(restore)
            if not restore and not waiter.future.done():
                waiter.future.set_result(None)
            for command_id in restore:
                self._waiters.setdefault(command_id, []).append(waiter)
        if self.connections > 0 and self._on_restored is not None and restore:
            restored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            restored.add_done_callback(self._restored)
            waiter = _Waiter(restore, restored)
            for command_id in restore:
                self._waiters.setdefault(command_id, []).append(waiter)
        assert link.transport is not None
        link.transport.write(self._protocol.data_to_send())
        self.connections += 1
        self._connected.set()
        return link

    def _restored(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is None and self._on_restored is not None:
            log.info("pubsub: %d channel(s) restored on %s", len(self._protocol.channels), self.address.name)
            self._on_restored(self)

    async def _watch(self, link: _Link) -> None:
        """Wait for the connection to drop, probing it whenever Redis has been silent."""
        seen = self._received
        ping_sent = 0.0
        while not link.lost.done():
            wait = self._probe_interval_s if self._ping_id is None else self._probe_timeout_s
            try:
                await asyncio.wait_for(asyncio.shield(link.lost), wait)
                return
            except TimeoutError:
                pass
            now = time.monotonic()
            if self._received != seen:
                seen = self._received
                continue
            if self._ping_id is None:
                self._ping_id = self._protocol.ping()
                ping_sent = now
                self._flush()
            elif now - ping_sent >= self._probe_timeout_s:
                log.warning(
                    "pubsub: %s did not answer PING within %.1f s; reconnecting",
                    self.address.name,
                    self._probe_timeout_s,
                )
                assert link.transport is not None
                link.transport.abort()
                await link.lost
                return
