"""Deadlines of many users at a coarse granularity (pure): when a friend's location expires.

Each key (a user id) has at most one deadline, kept in the bucket of ``granularity_ms`` that
ends at or after it, so a deadline is never reported early and at most one bucket late.
Rescheduling moves the key to its new bucket, so memory is one entry per key however often
it is rescheduled (a friend updating every 30 s with a 600 s TTL would otherwise sit in 20).
"""

from __future__ import annotations

import heapq


class ExpiryWheel:
    """Keys with deadlines, Unix milliseconds.

    Args:
        granularity_ms: the bucket width, milliseconds (how late a deadline may be reported).
    """

    __slots__ = ("granularity_ms", "_buckets", "_heap", "_bucket_of")

    def __init__(self, granularity_ms: int) -> None:
        if granularity_ms < 1:
            raise ValueError(f"granularity_ms must be at least 1, got {granularity_ms}")
        self.granularity_ms = granularity_ms
        self._buckets: dict[int, set[int]] = {}
        self._heap: list[int] = []
        self._bucket_of: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._bucket_of)

    def schedule(self, key: int, deadline_ms: int) -> None:
        """Set (or move) a key's deadline."""
        bucket = -(-deadline_ms // self.granularity_ms)  # ceiling: the bucket ending at or after it
        old = self._bucket_of.get(key)
        if old == bucket:
            return
        if old is not None:
            self._buckets[old].discard(key)
        members = self._buckets.get(bucket)
        if members is None:
            members = self._buckets[bucket] = set()
            heapq.heappush(self._heap, bucket)
        members.add(key)
        self._bucket_of[key] = bucket

    def cancel(self, key: int) -> None:
        """Forget a key's deadline (if any)."""
        old = self._bucket_of.pop(key, None)
        if old is not None:
            self._buckets[old].discard(key)

    def due(self, now_ms: int) -> list[int]:
        """Remove and return every key whose bucket has ended by ``now_ms``."""
        out: list[int] = []
        current = now_ms // self.granularity_ms
        while self._heap and self._heap[0] <= current:
            bucket = heapq.heappop(self._heap)
            for key in self._buckets.pop(bucket, ()):
                del self._bucket_of[key]
                out.append(key)
        return out
