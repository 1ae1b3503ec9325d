"""redis-py clients for the addresses :mod:`pubsub` reads, logged in and verified the same way.

The services also talk to Redis through redis-py (the HTTP API's cache and location store, the
cluster backend's publishing client). Those clients take the same URLs as the pub/sub
backends: user and password from the URL (``AUTH`` on every new connection, which redis-py
does itself), TLS for ``rediss://`` with the server's certificate checked against the CA
bundle of ``GEO_REDIS_TLS_CA`` (or the system's), and a refused login reported as
:class:`~pubsub.errors.AuthenticationFailed`, whose message never holds the password.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import AuthenticationError

from pubsub.address import NodeAddress
from pubsub.errors import AuthenticationFailed
from pubsub.sentinel import SentinelService, is_sentinel_url, parse_sentinel_url


def open_redis(url: str, *, tls_ca: str | None = None, **options: Any) -> aioredis.Redis:
    """A redis-py asyncio client (connections open on first use) for a Redis URL.

    Args:
        url: ``redis://[user:password@]host:port/db`` or ``rediss://...``; or a
            Sentinel-managed primary, ``redis+sentinel://[user:password@]host:port,.../name[/db]``
            (redis-py's ``Sentinel``: each new connection asks the sentinels where the primary
            is, so the client follows a failover).
        tls_ca: the CA bundle a ``rediss://`` server's certificate is checked against
            (empty or None: the system's).
        **options: more keyword options of :meth:`redis.asyncio.Redis.from_url`
            (``socket_connect_timeout``...).

    Raises:
        ValueError: a malformed URL.
    """
    if is_sentinel_url(url):
        return _sentinel_primary(parse_sentinel_url(url, tls_ca=tls_ca), options)
    address = NodeAddress.parse(url, tls_ca=tls_ca)
    # redis-py reads the user, the password and rediss:// from the URL itself, and verifies a
    # server's certificate and host name by default: only the CA bundle is added.
    ca: dict[str, Any] = {"ssl_ca_certs": address.tls_ca} if address.tls and address.tls_ca else {}
    client: aioredis.Redis = aioredis.Redis.from_url(url, **ca, **options)
    return client


def _sentinel_primary(service: SentinelService, options: dict[str, Any]) -> aioredis.Redis:
    # The sentinels get the timeouts and TLS but no login (pubsub.sentinel says why).
    tls = {k: v for k, v in login_options(service.login).items() if k.startswith("ssl")}
    timeouts = {k: v for k, v in options.items() if k in ("socket_connect_timeout", "socket_timeout")}
    sentinel = Sentinel([(s.host, s.port) for s in service.sentinels], sentinel_kwargs={**timeouts, **tls})
    client: aioredis.Redis = sentinel.master_for(
        service.primary, db=service.db, **login_options(service.login), **options
    )
    return client


def login_options(address: NodeAddress) -> dict[str, Any]:
    """redis-py's keyword options to log in to ``address`` as it says (user, password, TLS with
    its CA bundle), for a client built from host and port: redis-py's cluster client."""
    options: dict[str, Any] = {"username": address.username, "password": address.password}
    if address.tls:
        options["ssl"] = True
        if address.tls_ca:
            options["ssl_ca_certs"] = address.tls_ca
    return options


def refused_login(exc: BaseException, address: NodeAddress) -> AuthenticationFailed | None:
    """The :class:`~pubsub.errors.AuthenticationFailed` a redis-py error stands for when it is
    a refused login (redis-py's ``AuthenticationError``, which its cluster client wraps in the
    error that no seed could be reached); None for any other error.

    Args:
        exc: what redis-py raised.
        address: the node logged in to, as configured.
    """
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, AuthenticationError):
        seen = seen.__cause__
    if seen is None:
        return None
    # redis-py drops the reply's code: say which of the two it was.
    reply = "NOAUTH Authentication required." if address.password is None else f"WRONGPASS {seen}"
    return AuthenticationFailed(address.name, reply, username=address.username)
