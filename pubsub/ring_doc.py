"""The ring as etcd keeps it: key names, the stored document, and which nodes are live (pure).

Three keys per region, under the deployment's namespace (``GEO_REDIS_NAMESPACE``)::

    /geo/<namespace>/ring/<region>/members   the configured nodes ({"nodes": [...], "version": N})
    /geo/<namespace>/ring/<region>/live      the nodes publishers and subscribers use (same form)
    /geo/<namespace>/ring/<region>/leader    the instance running the health check (on a lease)

``members`` changes only when an operator adds or removes a node (``geo-stack ring``);
``live`` is what every instance watches and applies: the members that answer, as the health
checker sees them (:func:`live_nodes`). Keeping both lets a node that answers again be put
back: the members say what belongs. Each write of a document raises its ``version`` by one.

A node is its URL, ``redis://[user:password@]host:port`` (or ``rediss://``); two URLs that
differ only in their credentials are the same node (:func:`~pubsub.address.without_credentials`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from pubsub.address import NodeAddress, without_credentials

#: Consecutive unanswered probes after which the health checker takes a node out of the ring.
MISSES_BEFORE_REMOVAL = 3


class RingDocError(ValueError):
    """A ring document or a node URL that cannot be used; the message never shows a password."""


@dataclass(frozen=True, slots=True)
class RingKeys:
    """The etcd keys of one region's ring.

    Args:
        namespace: the deployment's namespace (``GEO_REDIS_NAMESPACE``).
        region: the region's name.
    """

    namespace: str
    region: str

    @property
    def prefix(self) -> bytes:
        # Names are quoted so that a "/" in either cannot reach another deployment's keys.
        return f"/geo/{quote(self.namespace, safe='')}/ring/{quote(self.region, safe='')}/".encode()

    @property
    def members(self) -> bytes:
        return self.prefix + b"members"

    @property
    def live(self) -> bytes:
        return self.prefix + b"live"

    @property
    def leader(self) -> bytes:
        return self.prefix + b"leader"


def check_node(url: str) -> str:
    """A node URL as the ring takes it, stripped of blanks.

    Raises:
        RingDocError: not ``redis://[user:password@]host:port`` or ``rediss://...``.
    """
    value = url.strip()
    shown = value.rpartition("@")[2]
    if not value.startswith(("redis://", "rediss://")):
        raise RingDocError(f"a ring node is a URL redis://[user:password@]host:port (or rediss://), got {shown!r}")
    try:
        NodeAddress.parse(value)
    except ValueError as exc:
        raise RingDocError(str(exc)) from None
    return value


@dataclass(frozen=True, slots=True)
class RingDoc:
    """One stored ring: its nodes, in order, and how many times it was written.

    Raises:
        RingDocError: no node, a malformed URL, or a node given twice.
    """

    nodes: tuple[str, ...]
    version: int = 1

    def __post_init__(self) -> None:
        if not self.nodes:
            raise RingDocError("a ring needs at least one node")
        checked = tuple(check_node(n) for n in self.nodes)
        object.__setattr__(self, "nodes", checked)
        names = [without_credentials(n) for n in checked]
        if len(set(names)) != len(names):
            raise RingDocError(f"a node is given twice: {', '.join(names)}")

    @property
    def names(self) -> frozenset[str]:
        """The nodes without their credentials (their identity)."""
        return frozenset(without_credentials(n) for n in self.nodes)

    def encode(self) -> bytes:
        return json.dumps({"nodes": list(self.nodes), "version": self.version}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> RingDoc:
        """Read a stored document.

        Raises:
            RingDocError: not JSON, or not ``{"nodes": [url, ...], "version": int}``.
        """
        try:
            value = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise RingDocError('a ring document is JSON: {"nodes": [...], "version": N}') from None
        if not isinstance(value, dict):
            raise RingDocError("a ring document is a JSON object")
        nodes, version = value.get("nodes"), value.get("version", 1)
        if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
            raise RingDocError("a ring document's nodes are a list of URLs")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise RingDocError("a ring document's version is a whole number from 1")
        return cls(tuple(nodes), version)

    def following(self, nodes: Iterable[str]) -> RingDoc:
        """The next version of this document, holding ``nodes``."""
        return RingDoc(tuple(nodes), self.version + 1)

    def with_node(self, url: str) -> RingDoc:
        """The next version with ``url`` added at the end (replacing a same node's credentials).

        Raises:
            RingDocError: a malformed URL.
        """
        url = check_node(url)
        name = without_credentials(url)
        kept = [n for n in self.nodes if without_credentials(n) != name]
        return self.following([*kept, url])

    def without_node(self, url: str) -> RingDoc:
        """The next version without ``url`` (matched without credentials).

        Raises:
            RingDocError: ``url`` is not in the ring, or is its last node.
        """
        name = without_credentials(check_node(url))
        kept = [n for n in self.nodes if without_credentials(n) != name]
        if len(kept) == len(self.nodes):
            raise RingDocError(f"{name} is not a node of the ring")
        if not kept:
            raise RingDocError(f"{name} is the ring's last node: a ring needs at least one")
        return self.following(kept)


def live_nodes(members: Sequence[str], misses: Mapping[str, int], live: Sequence[str]) -> tuple[str, ...]:
    """The nodes the ring should hold: every member but those that missed
    :data:`MISSES_BEFORE_REMOVAL` probes in a row, in the members' order.

    A ring is never left empty: when every member is missing, the live nodes stay as they are
    (nothing is gained by moving channels between dead nodes).

    Args:
        members: the configured nodes (URLs).
        misses: consecutive unanswered probes of each member, by URL (absent: 0).
        live: the nodes the ring holds now.

    Returns:
        The URLs, members' order; ``tuple(live)`` when none would remain.
    """
    answering = tuple(m for m in members if misses.get(m, 0) < MISSES_BEFORE_REMOVAL)
    return answering if answering else tuple(live)


def same_nodes(a: Iterable[str], b: Iterable[str]) -> bool:
    """True when both name the same nodes, credentials and order aside."""
    return {without_credentials(n) for n in a} == {without_credentials(n) for n in b}
