"""What every session of the process uses, one of each: built by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from friends_ws.cache import LocationCache
from friends_ws.db import Database
from friends_ws.history import HistoryWriter
from friends_ws.hub import Hub
from friends_ws.lifetimes import TokenLifetimes
from friends_ws.limits import UserLimits
from friends_ws.session_config import SessionConfig
from friends_ws.verifier import Verifier


@dataclass(frozen=True, slots=True)
class Services:
    """What every session uses (one of each per process).

    Attributes:
        hub: connections, pub/sub and the process-wide loops.
        cache: the location cache.
        db: the PostgreSQL primary.
        history: the location history writer.
        config: the per-connection rules.
        limits: the per-user frame rates and socket cap.
        lifetimes: when each connection's token expires.
        verifier: the verification of bearer tokens (handshake and ``auth`` frames).
    """

    hub: Hub
    cache: LocationCache
    db: Database
    history: HistoryWriter
    config: SessionConfig
    limits: UserLimits
    lifetimes: TokenLifetimes
    verifier: Verifier
