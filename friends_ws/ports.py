"""What a session needs of the rest of the process (interfaces only, no behaviour).

A :class:`~friends_ws.session.Session` and its :class:`~friends_ws.following.Following`
decide what the user may see and what to send; the parts behind these interfaces carry it
out. Each interface is the handful of operations the session side calls, so a test can drive
a session with a link that records frames instead of a socket:

* :class:`SessionLink`, the connection's outgoing side (a :class:`~friends_ws.link.Link`);
* :class:`UserChannels`, the user's control channel
  (:class:`~friends_ws.subscriptions.Subscriptions`);
* :class:`Publishing`, the user's news to followers and to their other connections
  (:class:`~friends_ws.publisher.Publisher`);
* :class:`FriendLocations`, the friends followed here and their latest locations
  (:class:`~friends_ws.fanout.Fanout`);
* :class:`CellListening`, the cells of nearby-stranger discovery
  (:class:`~friends_ws.cell_channels.CellChannels`).

The other direction, what those parts need of a session, is :mod:`friends_ws.follower`.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Mapping
from typing import Any, Protocol

from friends_ws.cells import CellNews
from friends_ws.follower import Follower, Listener, Owner
from geo_common.presence import Location
from geo_common.control_messages import Control


class Sink(Protocol):
    """Where one connection's frames go, and its background work."""

    @property
    def closed(self) -> bool:
        """The connection is over (or closing): nothing more is sent or followed for it."""
        ...

    def send(self, frame: bytes) -> None:
        """Queue a frame that never coalesces (init, errors, acknowledgements)."""
        ...

    def send_friend(self, friend_id: int, frame: bytes) -> None:
        """Queue a frame about a friend: it replaces that friend's frame still waiting."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run work of this connection in the background (cancelled when it stops)."""
        ...


class SessionLink(Sink, Protocol):
    """A session's connection: its frames and background work, and its end."""

    def close(self, code: int, reason: bytes) -> None:
        """Send nothing more and close the connection with a WebSocket close code."""
        ...

    def stop(self) -> None:
        """The connection is over: write nothing more, cancel what runs for it."""
        ...


class UserChannels(Protocol):
    """The control channels of the users connected here."""

    async def attach(self, owner: Owner) -> None:
        """A connection opens: returns once its user's control channel is subscribed."""
        ...

    def detach(self, owner: Owner) -> None:
        """A connection closed: drop its channels unless another connection needs them."""
        ...

    async def move_home(self, user_id: int, region_name: str | None) -> None:
        """The user's channels moved to another region (None: the default)."""
        ...


class Publishing(Protocol):
    """Publishing on a user's channels."""

    async def publish_location(self, region: str | None, user_id: int, data: bytes) -> None:
        """On the user's location channel (every follower hears it)."""
        ...

    async def publish_control(self, region: str | None, user_id: int, event: Control) -> None:
        """On the user's control channel (their own connections hear it)."""
        ...


class FriendLocations(Protocol):
    """The friends followed in this process, and the latest location known of each."""

    @property
    def known(self) -> Mapping[int, Location]:
        """The latest location of each followed friend known here."""
        ...

    @property
    def ttl_ms(self) -> int:
        """How long a location lives after its ``updated_at``, milliseconds."""
        ...

    async def latest(self, friend_ids: Iterable[int]) -> dict[int, Location]:
        """The newest locations of followed friends: known here, else read from the cache."""
        ...

    async def follow(self, follower: Follower, friends: Mapping[int, str | None]) -> None:
        """Subscribe a follower to friends' location channels (friend id -> region); returns
        once every channel is confirmed."""
        ...

    def unfollow(self, follower: Follower, friend_ids: Iterable[int]) -> None:
        """Drop a follower's interest in friends."""
        ...


class CellListening(Protocol):
    """The discovery cells: listening to them, and speaking in one."""

    async def listen(self, listener: Listener, cells: Iterable[str], now_ms: int) -> list[CellNews]:
        """Start hearing cells; returns once each is confirmed, with who is in them now."""
        ...

    def stop(self, listener: Listener, cells: Iterable[str]) -> None:
        """Stop hearing cells."""
        ...

    async def publish(self, news: CellNews, *, if_still: bytes | None = None) -> bytes | None:
        """Tell a cell's listeners everywhere (and its member hash); a departure ``if_still``
        only while the user's member is that message. Returns the message (None: not said)."""
        ...
