"""The one interface every backend implements."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from types import TracebackType
from typing import ClassVar


class PubSub(abc.ABC):
    """Publish messages to channels and receive those of subscribed channels.

    A process holds one instance per set of Redis nodes. Subscriptions are multiplexed on one
    long-lived connection per node, whatever the number of channels; every message arrives
    through the ``on_message(channel, data)`` callback given to the backend, called on the
    event loop as soon as it is read. Subscribing is idempotent and not reference-counted:
    callers that share channels count their own listeners.
    """

    #: The ``GEO_PUBSUB_BACKEND`` value of the backend.
    backend: ClassVar[str]

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect (the subscriber connections reconnect on their own afterwards)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection; pending subscribes fail."""

    @abc.abstractmethod
    async def publish(self, channel: str, data: bytes) -> int:
        """Publish ``data`` on ``channel``.

        Returns:
            How many subscriber connections Redis delivered it to (one per process).
        """

    @abc.abstractmethod
    async def subscribe(self, channels: Iterable[str]) -> None:
        """Subscribe to channels, returning once Redis confirmed them (batched per node).

        Raises:
            pubsub.errors.PubSubError: Redis refused or the backend was closed.
        """

    @abc.abstractmethod
    def unsubscribe(self, channels: Iterable[str]) -> None:
        """Unsubscribe from channels (written at once; confirmation is not awaited)."""

    @property
    @abc.abstractmethod
    def channels(self) -> frozenset[str]:
        """The channels subscribed to (or being subscribed to)."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when publishing works and every subscriber connection is up (readiness)."""

    async def __aenter__(self) -> PubSub:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def unique(channels: Iterable[str]) -> list[str]:
    """Channels in first-seen order without repeats."""
    return list(dict.fromkeys(channels))
