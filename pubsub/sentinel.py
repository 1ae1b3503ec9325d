"""A Redis whose primary Redis Sentinel chooses: where it is now, asked again after each loss.

A ``redis+sentinel://`` URL names the sentinels watching a primary and the primary's name
instead of one node::

    redis+sentinel://[user:password@]sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/geo-locations[/db]

``rediss+sentinel://`` speaks TLS to the sentinels and the nodes. The user and password log
in to the primary (whichever node it is); the sentinels are asked without a login, as
redis-py's ``Sentinel`` does by default: keep them reachable by geo's pods only (their network
policy), they hold no data.

Every connection :mod:`pubsub` opens to such a Redis (the command client, the subscriber)
first asks the sentinels for the current primary (``SENTINEL get-master-addr-by-name``), so a
connection lost to a failover is reopened on the promoted replica. A sentinel that cannot be
reached or does not know the name is skipped; the first that answers is asked first next
time. :func:`parse_sentinel_url` and :func:`primary_from_reply` are the pure part;
:class:`SentinelPrimary` is the asyncio adapter.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import hiredis

from pubsub.address import NodeAddress
from pubsub.errors import NodeUnavailable
from pubsub.protocol import encode_command

log = logging.getLogger(__name__)

#: The URL schemes of a Sentinel-managed Redis (plain and TLS).
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
#: A sentinel's port when an address leaves it out.
SENTINEL_PORT = 26379

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def is_sentinel_url(url: str) -> bool:
    """True when ``url`` names a Sentinel-managed Redis (``redis+sentinel://``, ``rediss+sentinel://``)."""
    return url.partition("://")[0] in SENTINEL_SCHEMES


@dataclass(frozen=True, slots=True)
class SentinelService:
    """A primary as Sentinel knows it: who to ask, its name, and how to log in to it.

    Attributes:
        sentinels: the sentinels' addresses (no credentials: they are asked without a login).
        primary: the name the sentinels monitor it under (``sentinel monitor <name> ...``).
        login: the user, password and TLS of the primary's connections; its host and port
            are the first sentinel's until the primary is found (:meth:`at`).
        db: the database number of the URL (pub/sub ignores it).
    """

    sentinels: tuple[NodeAddress, ...]
    primary: str
    login: NodeAddress = field(repr=False)
    db: int = 0

    @property
    def name(self) -> str:
        """``<primary> via <sentinel>,...``, for logs and errors (no credentials)."""
        return f"{self.primary} via {','.join(s.name for s in self.sentinels)}"

    def at(self, host: str, port: int) -> NodeAddress:
        """The primary's address, once a sentinel said where it is."""
        return self.login.at(host, port)


def parse_sentinel_url(url: str, *, tls_ca: str | None = None) -> SentinelService:
    """Read ``redis+sentinel://[user:password@]host[:port],...,host[:port]/name[/db]``.

    Args:
        url: the URL (``rediss+sentinel://`` for TLS to sentinels and nodes).
        tls_ca: the CA bundle for TLS (empty or None: the system's).

    Raises:
        ValueError: not such a URL, no sentinel, a malformed port, or no primary name; the
            message leaves the user and password out.
    """
    scheme, sep, rest = url.strip().partition("://")
    expected = (
        "expected redis+sentinel://[user:password@]host:port,host:port,.../primary-name[/db], got "
        f"{scheme}{sep}{rest.rpartition('@')[2]!r}"
    )
    if scheme not in SENTINEL_SCHEMES:
        raise ValueError(expected)
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    tls = scheme == "rediss+sentinel"
    sentinels = []
    for item in hosts.split(","):
        host, colon, digits = item.strip().rpartition(":")
        if not colon:
            host, digits = item.strip(), str(SENTINEL_PORT)
        host = host.strip("[]")
        if not host or not digits.isdigit() or not 0 < int(digits) < 65536:
            raise ValueError(expected)
        sentinels.append(NodeAddress(host, int(digits), tls=tls, tls_ca=tls_ca or None))
    name, _, db = path.partition("/")
    if not _NAME.match(name) or (db and not db.isdigit()):
        raise ValueError(expected)
    first = sentinels[0]
    login = NodeAddress(first.host, first.port, username, password, tls, tls_ca or None)
    return SentinelService(tuple(sentinels), name, login, int(db or 0))


def primary_request(name: str) -> bytes:
    """The command that asks a sentinel where the primary ``name`` is."""
    return encode_command([b"SENTINEL", b"get-master-addr-by-name", name.encode()])


def primary_from_reply(reply: Any) -> tuple[str, int] | None:
    """The ``(host, port)`` a sentinel answered; None when it does not know the name.

    Raises:
        ValueError: the sentinel refused the command, or answered something else.
    """
    if reply is None:
        return None
    if isinstance(reply, hiredis.ReplyError):
        raise ValueError(f"the sentinel refused: {reply}")
    if not isinstance(reply, list) or len(reply) != 2 or not all(isinstance(v, bytes) for v in reply):
        raise ValueError(f"unexpected sentinel reply {reply!r}")
    host, port = reply[0].decode(), reply[1].decode()
    if not port.isdigit():
        raise ValueError(f"unexpected sentinel reply {reply!r}")
    return host, int(port)


class SentinelPrimary:
    """Asks a primary's sentinels where it is now (each call asks again).

    Args:
        service: the sentinels and the primary's name and login.
        timeout_s: give up on one sentinel after this long (connecting and answering).
    """

    def __init__(self, service: SentinelService, *, timeout_s: float = 2.0) -> None:
        self.service = service
        self._order = list(service.sentinels)
        self._timeout_s = timeout_s
        self._last: tuple[str, int] | None = None

    async def locate(self) -> NodeAddress:
        """The primary's address, as the first sentinel that knows it says.

        Raises:
            NodeUnavailable: no sentinel could be reached, or none knows the name.
        """
        failures = []
        for sentinel in list(self._order):
            try:
                where = await asyncio.wait_for(self._ask(sentinel), self._timeout_s)
            except (OSError, TimeoutError, ValueError, hiredis.ProtocolError) as exc:
                failures.append(f"{sentinel.name}: {exc or type(exc).__name__}")
                continue
            if where is None:
                failures.append(f"{sentinel.name}: does not know {self.service.primary!r}")
                continue
            if sentinel is not self._order[0]:
                self._order.remove(sentinel)
                self._order.insert(0, sentinel)
            if where != self._last:
                if self._last is not None:
                    log.warning("redis %s: the primary moved to %s:%d", self.service.primary, *where)
                self._last = where
            return self.service.at(*where)
        raise NodeUnavailable(f"no sentinel gave the primary {self.service.primary!r}: {'; '.join(failures)}")

    async def _ask(self, sentinel: NodeAddress) -> tuple[str, int] | None:
        reader, writer = await asyncio.open_connection(sentinel.host, sentinel.port, ssl=sentinel.ssl_context())
        try:
            writer.write(primary_request(self.service.primary))
            parser = hiredis.Reader()
            while (reply := parser.gets()) is False:
                data = await reader.read(4096)
                if not data:
                    raise ConnectionResetError("the sentinel closed the connection")
                parser.feed(data)
            return primary_from_reply(reply)
        finally:
            writer.close()


Locate = Callable[[], Awaitable[NodeAddress]]
"""Where a node is now: asked before each (re)connection (:meth:`SentinelPrimary.locate`)."""


def node_for_url(url: str, *, tls_ca: str | None = None) -> tuple[NodeAddress, Locate | None]:
    """The node a URL names, and how to find it again when it can move.

    Args:
        url: ``redis://``, ``rediss://`` (one node: no locator) or ``redis+sentinel://``,
            ``rediss+sentinel://`` (the sentinels' primary).
        tls_ca: the CA bundle for TLS (empty or None: the system's).

    Returns:
        The address to show until a connection is made (for a Sentinel-managed primary, the
        first sentinel's, with the primary's login), and the locator (None for one node).

    Raises:
        ValueError: a malformed URL (the message leaves the password out).
    """
    if is_sentinel_url(url):
        service = parse_sentinel_url(url, tls_ca=tls_ca)
        return service.login, SentinelPrimary(service).locate
    return NodeAddress.parse(url, tls_ca=tls_ca), None
