"""The address of a Redis node: where it listens, how to log in, and how to check who answers.

Every connection :mod:`pubsub` opens starts from a :class:`NodeAddress`: the subscriber's
(:class:`~pubsub.node.NodeSubscriber`), the command client's
(:class:`~pubsub.client.RedisClient`) and redis-py's (:mod:`pubsub.redis_py`), so the URL
forms a deployment may write are read in one place, and a command client does not depend on
the subscriber to know them.

A password is never part of what an address shows: not of :attr:`NodeAddress.name` (the
node's identity in logs, errors and metrics), not of its ``repr``, and not of the errors
:meth:`NodeAddress.parse` raises.
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass, field, replace
from urllib.parse import unquote, urlsplit, urlunsplit


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """Where a Redis node listens, and how to log in.

    Attributes:
        host: host name or address.
        port: TCP port.
        username: ACL user name for ``AUTH`` (None: the default user).
        password: password for ``AUTH`` (None: no ``AUTH``); never shown.
        tls: connect with TLS (``rediss://``), verifying the server's certificate and name.
        tls_ca: the CA bundle (PEM file) the server's certificate is checked against (None:
            the system's).
    """

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca: str | None = None

    @classmethod
    def parse(cls, spec: str, *, tls_ca: str | None = None) -> NodeAddress:
        """Read ``redis://[user:password@]host:port[/db]``, ``rediss://...`` or
        ``[user:password@]host:port`` (a cluster seed).

        User and password are percent-decoded, as in any URL.

        Args:
            spec: the address.
            tls_ca: the CA bundle for ``rediss://`` (empty or None: the system's).

        Raises:
            ValueError: the address has no host or a malformed port (the message leaves the
                user and password out).
        """
        shown = spec.rpartition("@")[2]
        if "://" not in spec and "@" not in spec:
            host, _, digits = spec.rpartition(":")
            if not host or not digits.isdigit():
                raise ValueError(f"expected host:port, got {shown!r}")
            return cls(host, int(digits), tls_ca=tls_ca or None)
        bare = "://" not in spec
        parts = urlsplit(f"redis://{spec}" if bare else spec)
        expected = f"expected redis://[user:password@]host:port or [user:password@]host:port, got {shown!r}"
        try:
            port = parts.port
        except ValueError:
            raise ValueError(expected) from None
        if parts.scheme not in ("redis", "rediss") or not parts.hostname or (bare and port is None):
            raise ValueError(expected)
        return cls(
            parts.hostname,
            port or 6379,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
            parts.scheme == "rediss",
            tls_ca or None,
        )

    @property
    def name(self) -> str:
        """``host:port``, for logs and as a node's identity."""
        return f"{self.host}:{self.port}"

    def at(self, host: str, port: int) -> NodeAddress:
        """Another node of the same deployment: the same user, password and TLS (a node of a
        Redis Cluster found through a seed)."""
        return replace(self, host=host, port=port)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of a connection to this node; None without TLS.

        The server's certificate must chain to :attr:`tls_ca` (or the system's CAs) and name
        :attr:`host`: a cluster node reached by its IP address needs that address in its
        certificate.
        """
        return _tls_context(self.tls_ca) if self.tls else None


def without_credentials(spec: str) -> str:
    """An address with its user and password left out: the node's identity whatever the
    credentials (``redis://u:p@h:1/0`` -> ``redis://h:1/0``; ``h:1`` stays ``h:1``)."""
    if "@" not in spec:
        return spec
    if "://" not in spec:
        return spec.rpartition("@")[2]
    parts = urlsplit(spec)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@functools.lru_cache(maxsize=8)
def _tls_context(cafile: str | None) -> ssl.SSLContext:
    # One context per CA bundle: loading it is the costly part, and a context can be shared.
    return ssl.create_default_context(cafile=cafile)
