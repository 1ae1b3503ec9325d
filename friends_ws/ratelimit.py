"""A token bucket (pure): at most ``rate`` events per second on average, ``burst`` at once."""

from __future__ import annotations


class TokenBucket:
    """Allow ``rate`` events per second with bursts of up to ``burst``.

    Args:
        rate: tokens added per second.
        burst: the bucket's size (at least 1).
        now: the current time, seconds (monotonic).
    """

    __slots__ = ("rate", "burst", "_tokens", "_at")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = now

    def allow(self, now: float) -> bool:
        """Take a token if one is there; True when the event may go ahead."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def full(self, now: float) -> bool:
        """Whether the bucket has refilled to its burst by ``now`` (seconds, monotonic).

        A full bucket allows exactly what a new one would, so forgetting it then loses nothing:
        that is the only moment a limit may be dropped without a client gaining from it.
        """
        return self._tokens + (now - self._at) * self.rate >= self.burst
