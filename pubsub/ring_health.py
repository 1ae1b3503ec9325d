"""The ring's health check: one elected process probes every member and keeps the live ring.

Election: the leader key (:attr:`pubsub.ring_doc.RingKeys.leader`) is created on an etcd lease
of ``ttl_s`` seconds, by whichever candidate finds it absent (a transaction: created only if
absent). The leader renews its lease every round; a leader that dies stops renewing, the key
expires with the lease, and the next candidate to look takes it: a dead leader is replaced
within ``ttl_s`` plus one round. A leader that stops cleanly revokes its lease at once.

Probing: every ``interval_s``, the leader sends ``PING`` to each member (the configured
nodes, not only the live ones), all at once, each given ``timeout_s`` to answer. A member
that misses :data:`~pubsub.ring_doc.MISSES_BEFORE_REMOVAL` probes in a row is taken out of the
live ring; one answer puts it back (:func:`~pubsub.ring_doc.live_nodes`). A round lasts at most
``timeout_s`` and rounds start ``interval_s`` apart after it, so a node that stops answering
is out of the live ring within ``MISSES_BEFORE_REMOVAL * (interval_s + timeout_s)`` seconds
(plus ``ttl_s`` if the leader died with it); every process then re-homes its channels
(:mod:`pubsub.ring_watch`). The live ring is written only while the leader key still holds
this process's identity and the live key is as it was read (one transaction), so a deposed
leader never overwrites its successor's decision.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Sequence
from typing import Any

from pubsub.address import without_credentials
from pubsub.client import RedisClient
from pubsub.etcd_ring import EtcdRing
from pubsub.ring_doc import RingKeys, live_nodes, same_nodes
from pubsub.ring_watch import Connect, RingStatus

log = logging.getLogger(__name__)


def new_identity() -> str:
    """This process's name in the leader key: host, pid and a random tag."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


class Election:
    """Holding (or waiting for) the leader key of one region.

    Args:
        ring: the region's ring in etcd.
        identity: this candidate's name, stored in the key while it leads.
        ttl_s: the lease's lifetime, whole seconds (etcd's unit).
    """

    def __init__(self, ring: EtcdRing, identity: str, *, ttl_s: int) -> None:
        self.ring = ring
        self.identity = identity.encode()
        self._ttl_s = ttl_s
        self._lease: Any = None

    @property
    def leading(self) -> bool:
        return self._lease is not None

    async def campaign(self) -> bool:
        """One round: renew the lease while leading, else take the key if it is free.

        Returns:
            True while this candidate leads.

        Raises:
            aetcd.ClientError: etcd did not answer (the caller counts itself deposed).
        """
        client, key = self.ring.client, self.ring.keys.leader
        if self._lease is not None:
            reply = await client.refresh_lease(self._lease.id)
            holder = await client.get(key)
            if reply is not None and reply.TTL > 0 and holder is not None and holder.value == self.identity:
                return True
            self._lease = None
        if await client.get(key) is not None:
            return False
        lease = await client.lease(self._ttl_s)
        tx = client.transactions
        won, _ = await client.transaction(
            compare=[tx.create(key) == 0], success=[tx.put(key, self.identity, lease=lease)], failure=[]
        )
        if won:
            self._lease = lease
            return True
        await client.revoke_lease(lease.id)
        return False

    async def resign(self) -> None:
        """Give the key up at once (its lease revoked), if held."""
        lease, self._lease = self._lease, None
        if lease is not None:
            await self.ring.client.revoke_lease(lease.id)


class HealthCheck:
    """Runs for election and, while leading, probes the region's members and keeps its live ring.

    Args:
        connect: makes an etcd client (a new one after each failure).
        keys: the region's keys.
        interval_s: time between probe rounds, seconds.
        timeout_s: how long a member has to answer ``PING``, seconds.
        ttl_s: the leader's lease, whole seconds.
        identity: this process's name in the leader key (default: :func:`new_identity`).
        tls_ca: CA bundle for ``rediss://`` members (None: the system's).
        status: where ``leading`` is kept for metrics.
    """

    def __init__(
        self,
        connect: Connect,
        keys: RingKeys,
        *,
        interval_s: float = 1.0,
        timeout_s: float = 1.0,
        ttl_s: int = 5,
        identity: str | None = None,
        tls_ca: str | None = None,
        status: RingStatus | None = None,
    ) -> None:
        self._connect = connect
        self._keys = keys
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._ttl_s = ttl_s
        self.identity = identity or new_identity()
        self._tls_ca = tls_ca
        self.status = status if status is not None else RingStatus()
        #: Probe rounds run (only while leading).
        self.rounds = 0
        self._misses: dict[str, int] = {}
        self._clients: dict[str, RedisClient] = {}
        self._task: asyncio.Task[None] | None = None
        self._election: Election | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ring-health-{self._keys.region}")

    async def close(self, *, resign: bool = True) -> None:
        """Stop; with ``resign``, hand the leader key over at once (else it expires with the lease)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if resign and self._election is not None:
            try:
                await asyncio.wait_for(self._election.resign(), 2.0)
            except Exception:  # noqa: BLE001 - etcd gone: the lease expires by itself
                pass
        if self._election is not None:
            await _close_quietly(self._election)
        self.status.leading = False
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    async def _run(self) -> None:
        while True:
            self._election = Election(EtcdRing(self._connect(), self._keys), self.identity, ttl_s=self._ttl_s)
            try:
                while True:
                    leading = await self._election.campaign()
                    if leading and not self.status.leading:
                        log.info("pubsub ring %s: this process runs the health check", self._keys.region)
                        self._misses.clear()
                    self.status.leading = leading
                    if leading:
                        await self._round(self._election)
                    await asyncio.sleep(self._interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - etcd failed: no longer leading; try again
                if self.status.leading:
                    log.warning(
                        "pubsub ring %s: health check stopped, etcd failed (%s)", self._keys.region, type(exc).__name__
                    )
                self.status.leading = False
                await _close_quietly(self._election)
                await asyncio.sleep(self._interval_s)

    async def _round(self, election: Election) -> None:
        ring = election.ring
        members, live = await ring.read(self._keys.members), await ring.read(self._keys.live)
        if members.doc is None or live.doc is None:
            return
        self.rounds += 1
        answers = await asyncio.gather(*(self._ping(url) for url in members.doc.nodes))
        for url, answered in zip(members.doc.nodes, answers):
            self._misses[url] = 0 if answered else self._misses.get(url, 0) + 1
        for url in [u for u in self._misses if u not in members.doc.nodes]:
            del self._misses[url]
            client = self._clients.pop(url, None)
            if client is not None:
                await client.close()
        wanted = live_nodes(members.doc.nodes, self._misses, live.doc.nodes)
        if same_nodes(wanted, live.doc.nodes):
            return
        doc = live.doc.following(wanted)
        if await ring.replace_live(doc, revision=live.revision, leader=election.identity):
            _log_change(self._keys.region, live.doc.nodes, wanted, doc.version)

    async def _ping(self, url: str) -> bool:
        client = self._clients.get(url)
        if client is None:
            client = RedisClient.from_url(url, tls_ca=self._tls_ca, connect_timeout_s=self._timeout_s)
            self._clients[url] = client
        try:
            return bool(await asyncio.wait_for(client.execute("PING", retries=0), self._timeout_s))
        except Exception:  # noqa: BLE001 - any failure is a miss
            return False


def _log_change(region: str, before: Sequence[str], after: Sequence[str], version: int) -> None:
    was = {without_credentials(n) for n in before}
    now = {without_credentials(n) for n in after}
    for node in sorted(was - now):
        log.warning(
            "pubsub ring %s: %s stopped answering; taken out of the live ring (version %d)", region, node, version
        )
    for node in sorted(now - was):
        log.warning("pubsub ring %s: %s answers; put back into the live ring (version %d)", region, node, version)


async def _close_quietly(election: Election) -> None:
    try:
        await asyncio.wait_for(election.ring.client.close(), 2.0)
    except Exception:  # noqa: BLE001 - closing a client whose etcd is gone
        pass
