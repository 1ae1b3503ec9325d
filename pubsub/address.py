"""The address of a Redis node: where it listens, and how to log in.

Every connection :mod:`pubsub` opens starts from a :class:`NodeAddress`: the subscriber's
(:class:`~pubsub.node.NodeSubscriber`) and the command client's
(:class:`~pubsub.client.RedisClient`), so the URL forms a deployment may write are read in
one place, and a command client does not depend on the subscriber to know them.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """Where a Redis node listens, and how to log in.

    Attributes:
        host: host name or address.
        port: TCP port.
        username: ACL user name for ``AUTH`` (None: the default user).
        password: password for ``AUTH`` (None: no ``AUTH``).
        tls: connect with TLS (``rediss://``).
    """

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, spec: str) -> NodeAddress:
        """Read ``redis://[user:password@]host:port[/db]``, ``rediss://...`` or ``host:port``.

        Raises:
            ValueError: the address has no host or a malformed port.
        """
        if "://" not in spec:
            host, _, port = spec.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {spec!r}")
            return cls(host, int(port))
        parts = urlsplit(spec)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError(f"expected redis://host:port, got {spec!r}")
        return cls(
            parts.hostname,
            parts.port or 6379,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
            parts.scheme == "rediss",
        )

    @property
    def name(self) -> str:
        """``host:port``, for logs and as a node's identity."""
        return f"{self.host}:{self.port}"
