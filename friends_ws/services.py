"""What every session of the process uses, one of each: built by the app factory.

The pub/sub side is reached through the narrow interfaces of :mod:`friends_ws.ports`, never
through the hub itself: a session subscribes its user's control channel, publishes its
user's news and follows friends, and that is all it may do there.
"""

from __future__ import annotations

from dataclasses import dataclass

from friends_ws.cache import LocationCache
from friends_ws.history import HistoryWriter
from friends_ws.lifetimes import TokenLifetimes
from friends_ws.limits import UserLimits
from friends_ws.metrics import Stats
from friends_ws.ports import CellListening, FriendLocations, Publishing, UserChannels
from friends_ws.session_config import SessionConfig
from friends_ws.verifier import Verifier
from geo_common.database import Database
from geo_common.regions import RegionMap


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """What every session uses (one of each per process).

    Attributes:
        regions: the region map (where a user's channels live).
        stats: the process's counters.
        subscriptions: the control channels of the users connected here.
        publisher: publishing on a user's location and control channels.
        friends: the friends followed here and their latest locations.
        cells: the cells of nearby-stranger discovery.
        cache: the location cache.
        db: the PostgreSQL primary.
        history: the location history writer.
        config: the per-connection rules.
        limits: the per-user frame rates and socket cap.
        lifetimes: when each connection's token expires.
        verifier: the verification of bearer tokens (handshake and ``auth`` frames).
    """

    regions: RegionMap
    stats: Stats
    subscriptions: UserChannels
    publisher: Publishing
    friends: FriendLocations
    cells: CellListening
    cache: LocationCache
    db: Database
    history: HistoryWriter
    config: SessionConfig
    limits: UserLimits
    lifetimes: TokenLifetimes
    verifier: Verifier
