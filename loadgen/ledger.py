"""Ground truth for the friends scenario: what should have arrived, what did, and how late.

The generator runs every client on one monotonic clock, so it knows each sent position and
which friends were clearly in range when it was sent. A delivery is *expected* when the
receiver was online with its own position known to the server and the two were within the
radius less a guard band (movement between updates and edge hysteresis can make the server's
answer go either way inside the band; those are neither expected nor counted as wrong).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from loadgen.stats import Recorder


@dataclass(slots=True)
class SentUpdate:
    sender: int
    seq: int
    intended: float
    sent: float
    expected: set[int]


@dataclass
class Ledger:
    """Expected deliveries by update, receipts by (receiver, sender), and the counts they give."""

    recorder: Recorder
    #: Updates older than this (seconds) are settled: whatever is still expected is lost.
    settle_after_s: float = 10.0
    _sent: dict[tuple[int, int], SentUpdate] = field(default_factory=dict)
    _order: deque[tuple[float, tuple[int, int]]] = field(default_factory=deque)
    _last_seq: dict[tuple[int, int], int] = field(default_factory=dict)

    def on_send(
        self, sender: int, timestamp_ms: int, seq: int, intended: float, sent: float, expected: Iterable[int]
    ) -> None:
        """Record an update that was just sent and the friends that must receive it."""
        update = SentUpdate(sender, seq, intended, sent, set(expected))
        self._sent[(sender, timestamp_ms)] = update
        self._order.append((sent, (sender, timestamp_ms)))
        self.recorder.count("updates_sent")
        self.recorder.count("expected", len(update.expected))

    def on_receive(self, receiver: int, sender: int, timestamp_ms: int, now: float, start: float) -> None:
        """Account for a ``friend_location`` that arrived at ``receiver``."""
        update = self._sent.get((sender, timestamp_ms))
        if update is None:
            # Sent before this run's clock (an init replay) or settled already: not measurable.
            self.recorder.count("unmatched")
            return
        key = (receiver, sender)
        last = self._last_seq.get(key)
        if last is not None and update.seq <= last:
            self.recorder.count("duplicates" if update.seq == last else "reordered")
            return
        self._last_seq[key] = update.seq
        self.recorder.count("delivered")
        if receiver in update.expected:
            update.expected.discard(receiver)
        self.recorder.record("delivery_since_sent", now - update.sent)
        self.recorder.complete(int(now - start), now - update.intended)

    def latest_seq(self, receiver: int, sender: int) -> int | None:
        return self._last_seq.get((receiver, sender))

    def settle(self, now: float, *, everything: bool = False) -> None:
        """Count as lost what is still expected of updates older than ``settle_after_s``."""
        while self._order and (everything or now - self._order[0][0] > self.settle_after_s):
            _, key = self._order.popleft()
            update = self._sent.pop(key, None)
            if update is not None and update.expected:
                self.recorder.count("lost", len(update.expected))
