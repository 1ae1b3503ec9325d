"""What one user may do on this process (pure): frames per second by kind, sockets at once.

Every client frame is rate-limited per user, across all of that user's connections here:

* ``location`` frames take from one bucket (``GEO_WS_MAX_UPDATES_PER_S``, bursts of as many);
* ``settings``, ``sharing`` and ``auth`` frames share a second one
  (``GEO_WS_MAX_MESSAGES_PER_S``, bursts of :data:`MESSAGE_BURST`): each of them costs a
  database write, a pub/sub message or a token verification.

A user's buckets outlive their sockets. A bucket is forgotten only once it has been idle
long enough to be full again, when a new one would allow exactly as much, so closing and
reopening sockets never buys a client a fresh burst. The sweep that forgets them runs from
the calls themselves (at most every :data:`SWEEP_S`), so memory is bounded by the users
active within the last refill time without a timer of its own.
"""

from __future__ import annotations

import math

from collections import Counter

from friends_ws.protocol import ClientEvent, LocationUpdate
from friends_ws.ratelimit import TokenBucket

#: The burst of settings, sharing and auth frames a user may send at once.
MESSAGE_BURST = 5.0
#: Background uploads a user may make at once (a phone flushing what it queued offline).
UPLOAD_BURST = 4.0
#: How often idle buckets are looked for, seconds.
SWEEP_S = 30.0


class Buckets:
    """One token bucket per user, made on first use and forgotten once full again.

    Args:
        rate: events per second per user.
        burst: events a user may send at once.
    """

    __slots__ = ("rate", "burst", "_by_user", "_next_sweep")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._by_user: dict[int, TokenBucket] = {}
        self._next_sweep: float | None = None

    def __len__(self) -> int:
        return len(self._by_user)

    def allow(self, user_id: int, now: float) -> bool:
        """Take a token of the user's bucket; True when the event may go ahead.

        Args:
            user_id: the user.
            now: the current time, seconds (monotonic).
        """
        if self._next_sweep is None:
            self._next_sweep = now + SWEEP_S
        elif now >= self._next_sweep:
            self.sweep(now)
        bucket = self._by_user.get(user_id)
        if bucket is None:
            bucket = self._by_user[user_id] = TokenBucket(self.rate, self.burst, now)
        return bucket.allow(now)

    def sweep(self, now: float) -> None:
        """Forget every bucket that is full again by ``now`` (seconds, monotonic)."""
        self._next_sweep = now + SWEEP_S
        for user_id in [u for u, b in self._by_user.items() if b.full(now)]:
            del self._by_user[user_id]


class UserLimits:
    """The per-user limits of one process: frame rates and the socket cap.

    Args:
        updates_per_s: ``location`` frames per second per user (bursts of as many, at least 1).
        messages_per_s: ``settings``, ``sharing`` and ``auth`` frames per second per user
            (bursts of :data:`MESSAGE_BURST`).
        max_sockets: connections one user may hold at once.
        uploads_per_min: ``POST /v1/me/locations`` requests a minute per user (bursts of
            :data:`UPLOAD_BURST`).
    """

    __slots__ = ("locations", "messages", "uploads", "max_sockets", "_sockets")

    def __init__(
        self, *, updates_per_s: float, messages_per_s: float, max_sockets: int, uploads_per_min: float = 12.0
    ) -> None:
        if max_sockets < 1:
            raise ValueError(f"max_sockets must be at least 1, got {max_sockets}")
        self.locations = Buckets(updates_per_s, max(1.0, updates_per_s))
        self.messages = Buckets(messages_per_s, MESSAGE_BURST)
        self.uploads = Buckets(uploads_per_min / 60.0, UPLOAD_BURST)
        self.max_sockets = max_sockets
        self._sockets: Counter[int] = Counter()

    # --- frames -------------------------------------------------------------------------------

    def refusal(self, user_id: int, event: ClientEvent, now: float) -> str | None:
        """Whether a user's frame may be applied: None when it may, else why not (the
        ``detail`` of its ``rate_limited`` error). A refused frame is not applied at all.

        Args:
            user_id: the sender.
            event: the frame, validated.
            now: the current time, seconds (monotonic).
        """
        if isinstance(event, LocationUpdate):
            if self.locations.allow(user_id, now):
                return None
            return f"at most {self.locations.rate:g} location update(s) per second; this one was dropped"
        if self.messages.allow(user_id, now):
            return None
        return (
            f"at most {self.messages.rate:g} settings, sharing and auth message(s) per second "
            f"(bursts of {MESSAGE_BURST:g}); this {event.kind} message was not applied"
        )

    def upload_refusal(self, user_id: int, now: float) -> int | None:
        """None when the user may upload now (``now``: seconds, monotonic), else the seconds
        to wait (``Retry-After``)."""
        if self.uploads.allow(user_id, now):
            return None
        return max(1, math.ceil(1.0 / self.uploads.rate))

    # --- sockets ------------------------------------------------------------------------------

    def admit(self, user_id: int) -> bool:
        """Count a new connection of the user, unless they hold :attr:`max_sockets` already.

        Returns:
            True when admitted (call :meth:`release` once it closes); False: refuse it.
        """
        if self._sockets[user_id] >= self.max_sockets:
            return False
        self._sockets[user_id] += 1
        return True

    def release(self, user_id: int) -> None:
        """A connection :meth:`admit` counted is over."""
        left = self._sockets[user_id] - 1
        if left > 0:
            self._sockets[user_id] = left
        else:
            self._sockets.pop(user_id, None)

    def sockets(self, user_id: int) -> int:
        """How many connections the user holds here."""
        return self._sockets.get(user_id, 0)
