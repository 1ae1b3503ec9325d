"""Following a region's live ring in etcd: every change is handed to the ring's no-loss handoff.

:class:`RingWatch` seeds the ring when etcd has none (the configured nodes, created only if
absent, so the first instance to start wins and the others follow it), reads the live ring,
applies it if it differs from the ring in use, then watches the key and applies each new
version. Applying is :meth:`pubsub.RingPubSub.set_nodes` (through the caller's ``apply``),
which takes two handoff steps; versions written meanwhile are not queued: when it returns,
the newest one is applied next.

When etcd cannot be reached, nothing changes: the ring in use keeps working, the watch is
retried with backoff (0.1 s doubling to ``retry_max_s``), and the outage is logged once, when
it starts, and once more when etcd answers again. A change made during the outage is applied
then, since the key is read before the watch resumes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import aetcd

from pubsub.address import without_credentials
from pubsub.etcd_ring import EtcdRing
from pubsub.ring_doc import RingDoc, RingDocError, RingKeys, same_nodes

log = logging.getLogger(__name__)

#: Makes an etcd client; a new one per attempt, so that a reconnection starts afresh.
Connect = Callable[[], aetcd.Client]


@dataclass(slots=True)
class RingStatus:
    """What this process knows of one region's ring in etcd (``/metrics`` reads it).

    Attributes:
        version: the live ring's version applied last (0: none yet).
        changes: live ring versions applied since the process started.
        nodes: nodes in the ring in use.
        connected: the watch is established and etcd answers.
        leading: this process runs the region's health check.
    """

    version: int = 0
    changes: int = 0
    nodes: int = 0
    connected: bool = False
    leading: bool = False


class RingWatch:
    """Keeps one region's ring in use equal to the live ring in etcd.

    Args:
        connect: makes an etcd client (:func:`pubsub.etcd_ring.etcd_client`).
        keys: the region's keys.
        seed: the configured nodes, stored when etcd holds no ring yet.
        current: the nodes of the ring in use.
        apply: re-homes the ring onto the given nodes (``Broker.set_ring``).
        check_s: with no change for this long, the key is read again (a silent etcd is noticed).
        retry_max_s: the longest wait between attempts while etcd is unavailable, seconds.
        status: where the state is kept for metrics (a new one by default).
        where: etcd's address for logs (its password, if any, is left out).
    """

    def __init__(
        self,
        connect: Connect,
        keys: RingKeys,
        *,
        seed: Sequence[str],
        current: Callable[[], Sequence[str]],
        apply: Callable[[tuple[str, ...]], Awaitable[object]],
        check_s: float = 5.0,
        retry_max_s: float = 5.0,
        status: RingStatus | None = None,
        where: str = "etcd",
    ) -> None:
        self._connect = connect
        self._keys = keys
        self._seed = tuple(seed)
        self._current = current
        self._apply = apply
        self._check_s = check_s
        self._retry_max_s = retry_max_s
        self.status = status if status is not None else RingStatus()
        self._where = without_credentials(where)
        self._wanted: RingDoc | None = None
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.status.nodes = len(self._current())

    def start(self) -> None:
        """Start watching and applying (idempotent)."""
        if not self._tasks:
            name = self._keys.region
            self._tasks = [
                asyncio.create_task(self._watch(), name=f"ring-watch-{name}"),
                asyncio.create_task(self._applier(), name=f"ring-apply-{name}"),
            ]

    async def close(self) -> None:
        """Stop; a re-homing in progress is cancelled with the rest."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.status.connected = False

    def _offer(self, doc: RingDoc | None) -> None:
        if doc is not None and (self._wanted is None or doc != self._wanted):
            self._wanted = doc
            self._changed.set()

    async def _watch(self) -> None:
        delay, down = 0.1, False
        region = self._keys.region
        while True:
            client = self._connect()
            try:
                ring = EtcdRing(client, self._keys)
                if self._seed and await ring.seed(self._seed):
                    log.info("pubsub ring %s: stored the configured nodes in %s (version 1)", region, self._where)
                stored = await ring.read(self._keys.live)
                self._offer(stored.doc)
                self.status.connected, delay = True, 0.1
                if down:
                    log.warning("pubsub ring %s: %s answers again; watching the ring", region, self._where)
                    down = False
                async for doc in ring.changes(self._keys.live, after=stored.revision, check_s=self._check_s):
                    self._offer(doc)
            except asyncio.CancelledError:
                raise
            except RingDocError as exc:
                # A value nobody can use: keep the ring in use, and say so once.
                self.status.connected = False
                if not down:
                    log.error(
                        "pubsub ring %s: the ring in %s is unusable (%s); keeping the ring in use",
                        region,
                        self._where,
                        exc,
                    )
                    down = True
            except Exception as exc:  # noqa: BLE001 - etcd or its connection failed, in any of many ways
                self.status.connected = False
                if not down:
                    log.warning(
                        "pubsub ring %s: %s unavailable (%s); the ring in use stays, retrying",
                        region,
                        self._where,
                        type(exc).__name__,
                    )
                    down = True
            finally:
                await _quietly_close(client)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)

    async def _applier(self) -> None:
        region = self._keys.region
        while True:
            await self._changed.wait()
            self._changed.clear()
            doc = self._wanted
            if doc is None:
                continue
            if not same_nodes(doc.nodes, self._current()):
                before = len(self._current())
                try:
                    await self._apply(doc.nodes)
                except Exception as exc:  # noqa: BLE001 - tried again; the ring in use stays meanwhile
                    log.error("pubsub ring %s: version %d not applied (%s); trying again", region, doc.version, exc)
                    await asyncio.sleep(1.0)
                    self._changed.set()
                    continue
                log.info(
                    "pubsub ring %s: version %d applied, %d -> %d node(s): %s",
                    region,
                    doc.version,
                    before,
                    len(doc.nodes),
                    ", ".join(without_credentials(n) for n in doc.nodes),
                )
                self.status.changes += 1
            self.status.version = doc.version
            self.status.nodes = len(self._current())


async def _quietly_close(client: aetcd.Client) -> None:
    try:
        await asyncio.wait_for(client.close(), 2.0)
    except Exception:  # noqa: BLE001 - closing a client whose etcd is gone
        pass
