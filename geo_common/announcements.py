"""What to publish when friendships, privacy or stored locations change (pure).

``geo-api`` writes a change to PostgreSQL, then publishes these messages so that every
``geo-friends`` instance holding an affected connection applies it within a second. Two
kinds of message go out:

* on the **location channel** of the user whose locations are concerned: an
  :class:`~geo_common.presence.Access` (``removed``, ``hidden``, ``coarse``, ``exact``) or a
  :class:`~geo_common.presence.Moved`. Pub/sub keeps the order of one channel, so no location
  the user publishes after the change reaches a viewer under the old rules;
* on the **control channel** of each user told: the instance holding them re-reads what is
  true from the primary (a friend added, un-hidden, a request received).

Restricting messages are applied at once; granting ones only after the primary confirms them.
Every function returns :class:`Publication` values; the caller publishes them in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from geo_common.presence import (
    Access,
    AccessLevel,
    Left,
    Moved,
    control_channel,
    encode_access,
    encode_left,
    encode_moved,
    erasures_channel,
    location_channel,
)
from geo_common.control_messages import (
    Erased,
    FriendAdded,
    FriendRemoved,
    FriendShares,
    RequestReceived,
    encode_control,
    encode_erasure,
)
from geo_common.regions import RegionMap


@dataclass(frozen=True, slots=True)
class Publication:
    """One message to publish: the region whose pub/sub carries it, the channel, the bytes."""

    region: str
    channel: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Announcer:
    """Builds the publications of each change.

    Args:
        regions: the region map (a user's channels live in their home region, or the default).
        namespace: ``GEO_REDIS_NAMESPACE``.
    """

    regions: RegionMap
    namespace: str

    def _region(self, home: str | None) -> str:
        return self.regions.get(home).name

    def _access(self, user_id: int, home: str | None, viewer: int, level: AccessLevel) -> Publication:
        region = self._region(home)
        return Publication(
            region, location_channel(self.namespace, region, user_id), encode_access(Access(user_id, viewer, level))
        )

    def _control(
        self,
        user_id: int,
        home: str | None,
        event: FriendAdded | FriendRemoved | FriendShares | RequestReceived | Erased,
    ) -> Publication:
        region = self._region(home)
        return Publication(region, control_channel(self.namespace, region, user_id), encode_control(event))

    def friendship_started(
        self, a: int, b: int, homes: dict[int, str | None], names: dict[int, str | None]
    ) -> list[Publication]:
        """``a`` and ``b`` became friends: both are told (and follow each other)."""
        return [
            self._control(a, homes.get(a), FriendAdded(b, homes.get(b), names.get(b))),
            self._control(b, homes.get(b), FriendAdded(a, homes.get(a), names.get(a))),
        ]

    def relation_ended(self, a: int, b: int, homes: dict[int, str | None]) -> list[Publication]:
        """Whatever ``a`` and ``b`` had ended (unfriended, declined, withdrawn, blocked).

        Announced even when nothing was stored any more: a retry after a failed announcement
        must still reach the live connections.
        """
        return [
            self._access(a, homes.get(a), b, "removed"),
            self._access(b, homes.get(b), a, "removed"),
            self._control(a, homes.get(a), FriendRemoved(b)),
            self._control(b, homes.get(b), FriendRemoved(a)),
        ]

    def request_sent(
        self, asker: int, other: int, homes: dict[int, str | None], asker_name: str | None
    ) -> list[Publication]:
        """``asker`` asked ``other``: ``other``'s connections are told (a ``friend_request`` frame)."""
        return [self._control(other, homes.get(other), RequestReceived(asker, asker_name))]

    def sharing_with(
        self, user_id: int, friend_id: int, level: AccessLevel, homes: dict[int, str | None]
    ) -> list[Publication]:
        """``user_id`` now shares ``level`` with ``friend_id``."""
        return [
            self._access(user_id, homes.get(user_id), friend_id, level),
            self._control(friend_id, homes.get(friend_id), FriendShares(user_id, level)),
        ]

    def locations_erased(self, user_id: int, old_home: str | None) -> list[Publication]:
        """A user's locations were erased, their home region forgotten.

        Followers see them leave (``offline``) and follow their channels in the default region
        from now on; the user's own connections forget the home region; every instance drops
        the user's history rows it still holds.
        """
        old = self._region(old_home)
        default = self.regions.default.name
        out = [Publication(old, location_channel(self.namespace, old, user_id), encode_left(Left(user_id, "offline")))]
        if old != default:
            out.append(
                Publication(old, location_channel(self.namespace, old, user_id), encode_moved(Moved(user_id, default)))
            )
        out.append(self._control(user_id, old_home, Erased()))
        out.append(Publication(default, erasures_channel(self.namespace, default), encode_erasure(user_id)))
        return out
