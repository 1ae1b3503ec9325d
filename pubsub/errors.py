"""The error hierarchy of :mod:`pubsub`.

Every error derives from :class:`PubSubError` and from the built-in a caller would expect,
so ``except ConnectionError`` and ``except ValueError`` keep working.
"""

from __future__ import annotations


class PubSubError(Exception):
    """Base class of every error raised by :mod:`pubsub`."""


class InvalidChannel(PubSubError, ValueError):
    """A channel name is empty or not encodable as UTF-8."""


class SubscribeError(PubSubError, ConnectionError):
    """Redis refused a subscription (for example ``MOVED`` after a cluster slot moved).

    Attributes:
        channels: the channels the refused command carried.
        reply: Redis's error reply.
    """

    def __init__(self, reply: str, channels: tuple[str, ...]) -> None:
        super().__init__(f"{reply} ({len(channels)} channel(s))")
        self.reply = reply
        self.channels = channels


class NodeUnavailable(PubSubError, ConnectionError):
    """A Redis node could not be reached (or was closed) before an operation finished."""


class AuthenticationFailed(PubSubError, ConnectionError):
    """A Redis node refused the credentials, or wants some and none were given.

    The message names the node, the user and Redis's reply, never the password.

    Attributes:
        node: ``host:port``.
        reply: Redis's error reply (``WRONGPASS ...``, ``NOAUTH ...``).
    """

    def __init__(self, node: str, reply: str, *, username: str | None = None) -> None:
        if reply.startswith("NOAUTH"):
            message = (
                f"redis {node} requires authentication ({reply.rstrip('.')}): give the user and password "
                "in the URL, redis://user:password@host:port"
            )
        else:
            message = f"redis {node} refused the credentials of user {username or 'default'!r}: {reply}"
        super().__init__(message)
        self.node = node
        self.reply = reply
