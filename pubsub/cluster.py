"""The ``cluster`` backend: Redis Cluster sharded pub/sub (``SSUBSCRIBE``/``SPUBLISH``).

A shard channel lives on the primary that owns its hash slot, so traffic is spread over
the cluster instead of being broadcast to every node as classic pub/sub is. Publishing goes
through redis-py's asyncio cluster client, which follows ``MOVED``. Subscribing uses one
:class:`~pubsub.node.NodeSubscriber` per primary: the channels of a batch are grouped by
node and by slot (one ``SSUBSCRIBE`` may only name channels of one slot), and each node's
commands are pipelined in a single write. redis-py's own cluster pub/sub awaits one
``SSUBSCRIBE`` per channel, which makes subscribing hundreds of channels slow.

When a slot moves, Redis drops its subscribers (a ``sunsubscribe`` push, or ``MOVED`` on a
new ``SSUBSCRIBE``) and this backend refreshes the slot map and subscribes the channels on
their new owner. A node that cannot be reached also triggers a refresh, so a failover to a
replica at another address is followed. Use a hash tag (``{...}``) in channel names to
choose what decides the slot.

Every node is logged in to as the seeds are (``[user:password@]host:port``, or a
``redis://``/``rediss://`` URL): the cluster's nodes share their users, and with TLS their
certificates must name the addresses the cluster announces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError

from pubsub.address import NodeAddress
from pubsub.errors import NodeUnavailable, SubscribeError
from pubsub.multinode import MultiNodePubSub
from pubsub.node import MessageHandler, NodeSubscriber
from pubsub.redis_py import login_options, refused_login
from pubsub.tasks import cancel_and_wait
from pubsub.protocol import DEFAULT_BATCH, DEFAULT_CONNECT_TIMEOUT_S, DEFAULT_PROBE_INTERVAL_S, DEFAULT_PROBE_TIMEOUT_S

log = logging.getLogger(__name__)

#: Connections per node for publishing.
_MAX_CONNECTIONS = 64

#: Attempts to place a batch when the slot map keeps changing under it.
_PLACEMENT_ATTEMPTS = 5


class ClusterPubSub(MultiNodePubSub):
    """Sharded pub/sub on a Redis Cluster.

    Args:
        nodes: seed nodes, ``[user:password@]host:port`` or ``redis(s)://...`` each, all with
            the same user, password and scheme; the rest of the cluster is discovered.
        on_message: called with ``(channel, data)`` for each message; must not block.
        on_restored: called when a node's subscriptions are back after a reconnection
            (messages published meanwhile were lost).
        refresh_min_s: the least time between two slot-map refreshes caused by failures.
        probe_interval_s: probe an idle subscriber connection after this many seconds.
        probe_timeout_s: reconnect when a probe stays unanswered this long.
        connect_timeout_s: give up one connection attempt after this long.
        batch: the most channels in one ``SSUBSCRIBE``.
        tls_ca: the CA bundle the nodes' certificates are checked against with ``rediss://``
            (empty or None: the system's).

    Raises:
        ValueError: no seed nodes, a malformed one, or seeds that log in differently.
    """

    backend = "cluster"

    def __init__(
        self,
        nodes: Sequence[str],
        *,
        on_message: MessageHandler,
        on_restored: Callable[[], None] | None = None,
        refresh_min_s: float = 0.5,
        # Liveness.
        probe_interval_s: float = DEFAULT_PROBE_INTERVAL_S,
        probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        batch: int = DEFAULT_BATCH,
        tls_ca: str | None = None,
    ) -> None:
        if not nodes:
            raise ValueError("the cluster backend needs at least one seed node (GEO_REDIS_CLUSTER)")
        seeds = [NodeAddress.parse(n, tls_ca=tls_ca) for n in nodes]
        if len({(s.username, s.password, s.tls) for s in seeds}) > 1:
            raise ValueError("every seed node of a cluster must have the same user, password and scheme")
        #: How every node is logged in to (the first seed's user, password and TLS).
        self._login = seeds[0]
        super().__init__(
            on_message=on_message,
            on_restored=on_restored,
            probe_interval_s=probe_interval_s,
            probe_timeout_s=probe_timeout_s,
            connect_timeout_s=connect_timeout_s,
            batch=batch,
        )
        self._refresh_min_s = refresh_min_s
        self._cluster = RedisCluster(
            startup_nodes=[ClusterNode(s.host, s.port) for s in seeds],
            socket_connect_timeout=connect_timeout_s,
            max_connections=_MAX_CONNECTIONS,
            **login_options(self._login),
        )
        # redis-py's cluster pools fail rather than wait when every connection is busy:
        # bound the publishes in flight instead (fewer than any one node's pool holds).
        self._publishing = asyncio.Semaphore(_MAX_CONNECTIONS - 4)
        self._refresh_task: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        #: Slot-map refreshes done (tests and metrics read it).
        self.refreshes = 0

    # --- placement ------------------------------------------------------------------------

    def node_for(self, channel: str) -> str:
        """``host:port`` of the primary owning a channel's slot, by the cached slot map."""
        node = self._cluster.nodes_manager.get_node_from_slot(key_slot(channel.encode()))
        return f"{node.host}:{node.port}"

    def subscriber(self, name: str) -> NodeSubscriber:
        """The subscriber connection to one primary, ``host:port`` (created on first use)."""
        subscriber = self._subscribers.get(name)
        if subscriber is None:
            host, _, port = name.rpartition(":")
            subscriber = NodeSubscriber(
                self._login.at(host, int(port)),
                on_message=self._on_message,
                on_lost=self._lost,
                on_down=self._down,
                on_restored=self._restored,
                sharded=True,
                group=key_slot,
                **self._node_options,
            )
            self._subscribers[name] = subscriber
            subscriber.start()
        return subscriber

    async def _place(self, channels: Iterable[str]) -> None:
        """Subscribe channels on their owners, following slot moves until they stick."""
        todo = [c for c in channels if c in self._wanted]
        for attempt in range(_PLACEMENT_ATTEMPTS):
            self._check_open()  # a refresh may have ended after a close
            groups: dict[str, list[str]] = defaultdict(list)
            for channel in todo:
                groups[self.node_for(channel)].append(channel)
            results = await asyncio.gather(
                *(self.subscriber(name).subscribe(chs) for name, chs in groups.items()),
                return_exceptions=True,
            )
            retry: list[str] = []
            for result in results:
                if isinstance(result, SubscribeError):
                    retry.extend(c for c in result.channels if c in self._wanted)
                elif isinstance(result, BaseException):
                    raise result
            if not retry:
                return
            log.info(
                "pubsub cluster: %d channel(s) refused (%s); refreshing the slot map",
                len(retry),
                "MOVED" if attempt == 0 else "again",
            )
            await self._refresh()
            todo = retry
        raise SubscribeError("the slot map did not settle", tuple(todo))

    async def _refresh(self) -> None:
        self._last_refresh = time.monotonic()
        self.refreshes += 1
        async with self._client() as cluster:
            await cluster.nodes_manager.initialize()

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[RedisCluster]:
        """redis-py's cluster client, for one call.

        The client connects again when used after ``aclose``, and retries a command whose
        connection ``aclose`` cut, connecting again: a call still running when the bus closes
        closes the client again as it ends, so nothing stays open.

        Raises:
            NodeUnavailable: the bus is closed.
        """
        self._check_open()
        try:
            yield self._cluster
        finally:
            if self._closed:
                await self._cluster.aclose()

    def _lost(self, channels: list[str]) -> None:
        log.info("pubsub cluster: Redis dropped %d shard channel(s) (slot moved)", len(channels))
        self._schedule_rehome()

    def _down(self, _subscriber: NodeSubscriber) -> None:
        self._schedule_rehome()

    def _schedule_rehome(self) -> None:
        if self._closed or (self._refresh_task is not None and not self._refresh_task.done()):
            return
        self._refresh_task = asyncio.get_running_loop().create_task(self._rehome())

    async def _rehome(self) -> None:
        """Refresh the slot map and move every wanted channel to its current owner."""
        wait = self._refresh_min_s - (time.monotonic() - self._last_refresh)
        if wait > 0:
            await asyncio.sleep(wait)
        # Any error (the cluster may be mid-failover) is logged, not raised: this runs as a
        # background task, and the next failure retries.
        try:
            await self._refresh()
        except Exception as exc:  # noqa: BLE001
            log.warning("pubsub cluster: slot map refresh failed: %s", exc)
            return
        misplaced: list[str] = []
        for name, subscriber in list(self._subscribers.items()):
            stale = [c for c in subscriber.channels if self.node_for(c) != name]
            if stale:
                subscriber.unsubscribe(stale)
        owners = {name: s for name, s in self._subscribers.items()}
        for channel in self._wanted:
            owner = owners.get(self.node_for(channel))
            if owner is None or not owner.has(channel):
                misplaced.append(channel)
        primaries = {f"{n.host}:{n.port}" for n in self._cluster.get_primaries()}
        for name in [n for n, s in self._subscribers.items() if n not in primaries and not s.channels]:
            await self._subscribers.pop(name).close()
        if misplaced:
            log.info("pubsub cluster: re-homing %d channel(s) after a topology change", len(misplaced))
            try:
                await self._place(misplaced)
            except (SubscribeError, NodeUnavailable) as exc:
                log.warning("pubsub cluster: re-homing failed (%s); will retry on the next change", exc)

    # --- the interface --------------------------------------------------------------------

    async def start(self) -> None:
        """Read the slot map from the seeds.

        Raises:
            AuthenticationFailed: the seeds refused the login.
            redis.exceptions.RedisError: no seed could be reached.
        """
        try:
            await self._cluster.initialize()
        except (RedisError, RedisClusterException) as exc:
            refused = refused_login(exc, self._login)
            if refused is not None:
                raise refused from None
            raise
        self._last_refresh = time.monotonic()

    async def close(self) -> None:
        self._closed = True
        await cancel_and_wait(self._refresh_task)
        for subscriber in self._subscribers.values():
            await subscriber.close()
        self._subscribers.clear()
        await self._cluster.aclose()

    async def publish(self, channel: str, data: bytes) -> int:
        async with self._publishing, self._client() as cluster:
            receivers: Any = await cluster.execute_command("SPUBLISH", channel, data)
        return int(receivers)

    async def ping(self) -> bool:
        try:
            async with self._client() as cluster:
                await cluster.ping()
        except Exception:  # noqa: BLE001 - a health check: any failure is an unhealthy answer
            return False
        return self._subscribers_up()
