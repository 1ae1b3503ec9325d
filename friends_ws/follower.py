"""What the process's pub/sub side needs of a connection (interfaces only, no behaviour).

:mod:`friends_ws.fanout`, :mod:`friends_ws.subscriptions` and :mod:`friends_ws.resync`
route pub/sub messages to connections without knowing what a connection is: a
:class:`Follower` follows friends' location channels and decides what to show of them, an
:class:`Owner` is a connected user's connection, told about their control channel's
messages. :class:`friends_ws.following.Following` and :class:`friends_ws.session.Session`
implement them; none of those modules imports either. The other direction, what a session
needs of the process, is :mod:`friends_ws.ports`.
"""

from __future__ import annotations

from typing import Protocol

from friends_ws.cells import CellNews
from friends_ws.protocol import FramePattern, LeftReason
from geo_common.friends_db import Grant
from geo_common.presence import AccessLevel, Location
from geo_common.control_messages import Control


class Follower(Protocol):
    """The friends one connection follows."""

    @property
    def user_id(self) -> int:
        """The viewer."""
        ...

    @property
    def friends(self) -> list[int]:
        """The friends followed (location channels this connection needs)."""
        ...

    @property
    def restrictions(self) -> int:
        """How many restricting changes were applied so far: a re-read of the grants started
        before the last one may be stale and must be repeated."""
        ...

    def friend_moved(self, location: Location, pattern: FramePattern | None = None) -> None:
        """A followed friend published a location (``pattern``: its exact frame, less the distance)."""
        ...

    def friend_left(self, friend_id: int, reason: LeftReason) -> None:
        """A followed friend went away (offline, sharing off, expired)."""
        ...

    def friend_watching(self, location: Location) -> None:
        """A friend connected, closed their socket or changed radius (``location``: their latest)."""
        ...

    def access_changed(self, friend_id: int, level: AccessLevel) -> None:
        """What a followed friend lets this viewer see changed (from the friend's own channel)."""
        ...

    async def regrant(self, grants: list[Grant], *, initial: bool = False) -> None:
        """Every grant of the viewer, just read from the primary: follow, drop or change each friend."""
        ...


class Owner(Protocol):
    """One connection of a connected user."""

    @property
    def user_id(self) -> int: ...

    @property
    def home_region(self) -> str | None:
        """Where the user's channels live (None: the default region)."""
        ...

    @property
    def following(self) -> Follower: ...

    @property
    def loading(self) -> bool:
        """Still opening: it reads its grants itself once subscribed."""
        ...

    def control(self, event: Control) -> None:
        """A message on the user's control channel."""
        ...

    async def reload(self) -> None:
        """Re-read the user's own row from the primary (their own messages may have been lost)."""
        ...


class Listener(Protocol):
    """A connection that listens to discovery cells (:mod:`friends_ws.cell_channels`)."""

    def heard(self, news: CellNews) -> None:
        """News from one of the cells it listens to."""
        ...

    def expire(self, now_ms: int) -> None:
        """Take away the strangers not heard for too long."""
        ...
