"""Reading, writing and watching a region's ring in etcd (keys and documents: :mod:`pubsub.ring_doc`).

Every write is a transaction that compares what it read (a key's modification revision), so
two writers never lose each other's change: the loser re-reads and tries again, or, for the
health checker, gives up its round. The etcd client is aetcd (etcd's v3 API over gRPC).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aetcd

from pubsub.address import without_credentials
from pubsub.ring_doc import RingDoc, RingDocError, RingKeys

#: gRPC reconnects a lost channel with backoff; kept short, so a returning etcd is found soon.
_CHANNEL_OPTIONS = {
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 2000,
}
#: Attempts of an operator's edit against concurrent writers before giving up.
_EDIT_ATTEMPTS = 10


class EtcdUnavailable(ConnectionError):
    """etcd did not answer (or ended a watch); the message names its address, never a password."""


def etcd_client(url: str, *, timeout_s: float = 5.0) -> aetcd.Client:
    """A client of the etcd at ``url`` (``http://[user:password@]host:port``); connects on first use.

    Args:
        url: the etcd endpoint (``GEO_ETCD_URL``).
        timeout_s: every request's deadline, seconds (watches have none).

    Raises:
        ValueError: not an ``http://`` URL with a host.
    """
    parts = urlsplit(url.strip())
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"an etcd endpoint is http://host:port, got {parts.netloc.rpartition('@')[2]!r}")
    return aetcd.Client(
        host=parts.hostname,
        port=parts.port or 2379,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout_s,  # a gRPC deadline: seconds, fractions allowed
        options=_CHANNEL_OPTIONS,
    )


@dataclass(frozen=True, slots=True)
class Stored:
    """A key's document as read, and the revision it was last written at (0: absent)."""

    doc: RingDoc | None
    revision: int


class EtcdRing:
    """One region's ring in etcd.

    Args:
        client: an etcd client (:func:`etcd_client`).
        keys: the region's keys.
    """

    def __init__(self, client: aetcd.Client, keys: RingKeys) -> None:
        self.client = client
        self.keys = keys

    async def read(self, key: bytes) -> Stored:
        """A key's document.

        Raises:
            RingDocError: the stored value is not a ring document.
            aetcd.ClientError: etcd did not answer.
        """
        got = await self.client.get(key)
        if got is None:
            return Stored(None, 0)
        return Stored(RingDoc.decode(got.value), got.mod_revision)

    async def seed(self, nodes: Sequence[str]) -> bool:
        """Store ``nodes`` as members and live ring unless a ring is stored already.

        A stored members key whose live key is missing gets the members as its live ring.

        Returns:
            True when this call created the ring.

        Raises:
            RingDocError: ``nodes`` is not a valid ring.
            aetcd.ClientError: etcd did not answer.
        """
        doc = RingDoc(tuple(nodes))
        tx = self.client.transactions
        created, _ = await self.client.transaction(
            compare=[tx.create(self.keys.members) == 0],
            success=[tx.put(self.keys.members, doc.encode()), tx.put(self.keys.live, doc.encode())],
            failure=[],
        )
        if not created:
            members = await self.read(self.keys.members)
            if members.doc is not None:
                await self.client.transaction(
                    compare=[tx.create(self.keys.live) == 0],
                    success=[tx.put(self.keys.live, members.doc.encode())],
                    failure=[],
                )
        return bool(created)

    async def edit(self, *, add: str | None = None, remove: str | None = None) -> tuple[RingDoc, RingDoc]:
        """Add or remove one node, in the members and the live ring at once.

        Returns:
            The members and the live ring written.

        Raises:
            RingDocError: no ring stored yet, a malformed URL, a node that is not there to
                remove, or the last node.
            EtcdUnavailable: other writers kept winning.
            aetcd.ClientError: etcd did not answer.
        """
        tx = self.client.transactions
        for _ in range(_EDIT_ATTEMPTS):
            members, live = await self.read(self.keys.members), await self.read(self.keys.live)
            if members.doc is None:
                raise RingDocError(f"no ring in etcd for region {self.keys.region!r} yet")
            current = live.doc or members.doc
            if add is not None:
                new_members, new_live = members.doc.with_node(add), current.with_node(add)
            elif remove is not None:
                new_members = members.doc.without_node(remove)
                gone = without_credentials(remove.strip())
                kept = [n for n in current.nodes if without_credentials(n) != gone]
                new_live = current.following(kept or new_members.nodes)
            else:
                raise ValueError("edit() takes add or remove")
            done, _ = await self.client.transaction(
                compare=[tx.mod(self.keys.members) == members.revision, tx.mod(self.keys.live) == live.revision],
                success=[tx.put(self.keys.members, new_members.encode()), tx.put(self.keys.live, new_live.encode())],
                failure=[],
            )
            if done:
                return new_members, new_live
        raise EtcdUnavailable(f"the ring of region {self.keys.region!r} kept changing; try again")

    async def replace_live(self, doc: RingDoc, *, revision: int, leader: bytes) -> bool:
        """Write the live ring if it is still at ``revision`` and ``leader`` still leads.

        Returns:
            True when written.

        Raises:
            aetcd.ClientError: etcd did not answer.
        """
        tx = self.client.transactions
        done, _ = await self.client.transaction(
            compare=[tx.mod(self.keys.live) == revision, tx.value(self.keys.leader) == leader],
            success=[tx.put(self.keys.live, doc.encode())],
            failure=[],
        )
        return bool(done)

    async def leader(self) -> str | None:
        """Who runs the health check now (None: nobody)."""
        got = await self.client.get(self.keys.leader)
        return None if got is None else bytes(got.value).decode(errors="replace")

    async def changes(self, key: bytes, *, after: int, check_s: float) -> AsyncIterator[RingDoc | None]:
        """The documents ``key`` holds from revision ``after + 1`` on, as they are written.

        When nothing comes for ``check_s``, the key is read again and yielded (the same
        document, usually): a read that fails proves etcd gone even when the watch's
        connection hangs silently.

        Yields:
            Each document written (None: the key was deleted).

        Raises:
            EtcdUnavailable: etcd ended the watch.
            RingDocError: a stored value is not a ring document.
            aetcd.ClientError: etcd did not answer.
        """
        watch = await self.client.watch(key, start_revision=after + 1)
        events: asyncio.Queue[Any] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for event in watch:
                    events.put_nowait(event)
                events.put_nowait(EtcdUnavailable("etcd ended the watch"))
            except Exception as exc:  # noqa: BLE001 - handed to the reader, which raises it
                events.put_nowait(exc)

        task = asyncio.create_task(pump())
        try:
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), check_s)
                except TimeoutError:
                    yield (await self.read(key)).doc
                    continue
                if isinstance(event, BaseException):
                    raise event
                yield RingDoc.decode(event.kv.value) if event.kind == "PUT" else None
        finally:
            task.cancel()
            try:
                await asyncio.wait_for(watch.cancel(), 1.0)
            except Exception:  # noqa: BLE001 - the watch may be gone with its connection
                pass
