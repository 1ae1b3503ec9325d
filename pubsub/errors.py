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
