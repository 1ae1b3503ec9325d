"""Ground truth for the friends scenario: what should have arrived, what did, and how late.

The generator runs every client on one monotonic clock, so it knows each sent position and
which friends were clearly in range when it was sent. A delivery is *expected* when the
receiver was online with its own position known to the server and the two were within the
radius less a guard band (movement between updates and edge hysteresis can make the server's
answer go either way inside the band; those are neither expected nor counted as wrong).

Every expected delivery ends as exactly one of ``delivered``, ``lost``, ``cut_off`` or
``superseded``, so ``expected = delivered + lost + cut_off + superseded`` once the ledger is
settled, and ``delivered`` (the
run's "done") never exceeds ``expected``. Whatever else arrives is counted apart and never as
done: ``unjudged`` (a first arrival nobody required), ``resync`` (a position the receiver had
already, shown again after it reconnected or after the friend left its view), ``duplicates``
(the same position twice while it was in view), ``reordered`` and ``unmatched``.

``superseded`` is counted only when a run is given a bound (``--superseded-within``, for runs
that break a backend on purpose): an expected delivery that never came is not lost when the
receiver was shown a newer position of the same sender within the bound of the update's
sending. While a failover lasts, updates are refused (``unavailable``) or published where
nobody listens yet; what matters to a friend is being shown where the sender is now, soon.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
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
    """Expected deliveries by update, receipts by (receiver, sender), and the counts they give.

    Times are seconds on the generator's clock (:func:`loadgen.clock.now`).
    """

    recorder: Recorder
    #: Updates older than this (seconds) are settled: whatever is still expected is lost.
    settle_after_s: float = 10.0
    _sent: dict[tuple[int, int], SentUpdate] = field(default_factory=dict)
    _order: deque[tuple[float, tuple[int, int]]] = field(default_factory=deque)
    #: (receiver, sender) -> the newest sequence number of the sender's the receiver was shown.
    _last_seq: dict[tuple[int, int], int] = field(default_factory=dict)
    #: receiver -> the friends its current connection shows (told of since it opened, not left).
    _in_view: dict[int, set[int]] = field(default_factory=dict)
    #: A newer position of the sender shown within this long (seconds) of an update's sending
    #: makes a missing delivery of it ``superseded``, not ``lost`` (None: never).
    supersede_within_s: float | None = None
    #: user -> when its connection last dropped (not closed by the generator).
    _dropped_at: dict[int, float] = field(default_factory=dict)
    #: sender -> its updates not settled yet (kept only with ``supersede_within_s``).
    _by_sender: dict[int, list[SentUpdate]] = field(default_factory=dict)

    def on_send(
        self, sender: int, timestamp_ms: int, seq: int, intended: float, sent: float, expected: Iterable[int]
    ) -> None:
        """Record an update that was just sent and the friends that must receive it."""
        update = SentUpdate(sender, seq, intended, sent, set(expected))
        self._sent[(sender, timestamp_ms)] = update
        self._order.append((sent, (sender, timestamp_ms)))
        if self.supersede_within_s is not None:
            self._by_sender.setdefault(sender, []).append(update)
        self.recorder.count("updates_sent")
        self.recorder.count("expected", len(update.expected))

    def on_receive(self, receiver: int, sender: int, timestamp_ms: int, now: float, start: float) -> None:
        """Account for a ``friend_location`` that arrived at ``receiver``."""
        update = self._sent.get((sender, timestamp_ms))
        if update is None:
            # Sent before this run's clock (an init replay), by another worker's user, or
            # settled already: not measurable.
            self.recorder.count("unmatched")
            return
        key = (receiver, sender)
        last = self._last_seq.get(key)
        shown = self._in_view.setdefault(receiver, set())
        if last is not None and update.seq < last:
            self.recorder.count("reordered")
            return
        if update.seq == last:
            # A position the receiver had: sent again while still in view is a duplicate; after
            # the friend left the view, or on a new connection, it is the server catching up.
            self.recorder.count("duplicates" if sender in shown else "resync")
            shown.add(sender)
            return
        self._last_seq[key] = update.seq
        shown.add(sender)
        if self.supersede_within_s is not None:
            self._supersede(receiver, update, now)
        if receiver in update.expected and self._dropped_at.get(receiver, -math.inf) < update.sent:
            update.expected.discard(receiver)
            self.recorder.count("delivered")
            self.recorder.record("delivery_since_sent", now - update.sent)
            self.recorder.complete(int(now - start), now - update.intended)
        else:
            # Inside the guard band, to a friend not yet initialised when it was sent, or
            # arriving on a newer connection than the one that was expected to get it.
            self.recorder.count("unjudged")

    def _supersede(self, receiver: int, newer: SentUpdate, now: float) -> None:
        """``receiver`` was shown ``newer``: older updates of its sender it still awaits, sent
        within the bound of now, are superseded."""
        assert self.supersede_within_s is not None
        for older in self._by_sender.get(newer.sender, ()):
            if older.seq < newer.seq and receiver in older.expected and now - older.sent <= self.supersede_within_s:
                older.expected.discard(receiver)
                self.recorder.count("superseded")

    def on_init(self, receiver: int, shown: Iterable[tuple[int, int | None]]) -> None:
        """A new connection's ``init`` showed these (friend, ``sent_at``) positions.

        They are not deliveries (the positions were sent before the receiver was online),
        but the receiver holds them from now on: the same position sent again is a duplicate.
        """
        view = self._in_view[receiver] = set()
        for sender, timestamp_ms in shown:
            view.add(sender)
            update = self._sent.get((sender, timestamp_ms)) if timestamp_ms is not None else None
            if update is not None and update.seq > self._last_seq.get((receiver, sender), 0):
                self._last_seq[(receiver, sender)] = update.seq

    def on_left(self, receiver: int, sender: int) -> None:
        """``friend_left``: the receiver no longer shows ``sender``."""
        view = self._in_view.get(receiver)
        if view is not None:
            view.discard(sender)

    def on_disconnect(self, user: int, now: float) -> None:
        """The user's connection dropped (the server or the network ended it).

        What it sent before may never have reached the server, and what was on its way to it
        cannot arrive: at settling, those expected deliveries count as ``cut_off``, not ``lost``.
        """
        self._dropped_at[user] = now
        self._in_view.pop(user, None)

    def awaits(self, user: int) -> bool:
        """Whether a delivery still expected has ``user`` as its sender or its receiver.

        A user leaving on purpose waits until none has before it closes, so that its departure
        cuts off nothing that was owed while it was online.
        """
        return any(u.expected and (u.sender == user or user in u.expected) for u in self._sent.values())

    def settle(self, now: float, *, everything: bool = False) -> None:
        """Count what is still expected of updates older than ``settle_after_s`` (or of all).

        A delivery is ``cut_off`` when its sender's or receiver's connection dropped after
        the update was sent, ``lost`` otherwise.
        """
        while self._order and (everything or now - self._order[0][0] > self.settle_after_s):
            _, key = self._order.popleft()
            update = self._sent.pop(key, None)
            if update is not None and self.supersede_within_s is not None:
                self._by_sender[update.sender].remove(update)
            if update is None or not update.expected:
                continue
            if self._dropped_at.get(update.sender, -math.inf) >= update.sent:
                self.recorder.count("cut_off", len(update.expected))
                continue
            cut = sum(1 for r in update.expected if self._dropped_at.get(r, -math.inf) >= update.sent)
            if cut:
                self.recorder.count("cut_off", cut)
            if len(update.expected) > cut:
                self.recorder.count("lost", len(update.expected) - cut)


def accounting(counters: Mapping[str, int]) -> dict[str, int] | None:
    """A friends run's delivery figures from its counters (None when it sent nothing).

    ``expected == delivered + lost + cut_off + superseded`` for a settled ledger; the rest never
    count as done.
    """
    if not counters.get("updates_sent"):
        return None
    names = ("updates_sent", "expected", "delivered", "lost", "cut_off", "superseded")
    apart = ("unjudged", "resync", "duplicates", "reordered", "unmatched")
    return {name: int(counters.get(name, 0)) for name in (*names, *apart)}


def describe(figures: Mapping[str, int]) -> str:
    """One line that says what ``done of expected`` counted, for the summary."""
    f = figures
    return (
        f"deliveries: expected {f['expected']} (each of {f['updates_sent']} updates sent x friends then online, "
        f"initialised and in range less the guard band) = delivered {f['delivered']} + lost {f['lost']} "
        f"+ cut off by a dropped connection {f['cut_off']}"
        + (f" + superseded within the bound {f['superseded']}" if f.get("superseded") else "")
        + f"; not counted as done: unjudged {f['unjudged']}, "
        f"resync {f['resync']}, duplicates {f['duplicates']}, reordered {f['reordered']}, unmatched {f['unmatched']}"
    )
