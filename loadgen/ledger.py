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
already, shown again after it reconnected without a resume or after the friend left its
view), ``duplicates`` (the same position twice while it was in view), ``reordered`` and
``unmatched``.

Beside resumes (below), ``superseded`` is counted only when a run is given a bound
(``--superseded-within``, for runs that break a backend on purpose): an expected delivery
that never came is not lost when the receiver was shown a newer position of the same sender
within the bound of the update's sending. While a failover lasts, updates are refused (``unavailable``) or published where
nobody listens yet; what matters to a friend is being shown where the sender is now, soon.

A receiver that *resumes* (its socket dropped or it went to the background, and it comes back
with the friends it holds, protocol's ``resume``) is owed, after its ``resumed``, the newest
position of each friend in range that it does not hold: not every update it missed. So while
it is away, each sender's newest update sent in range is *owed* to it (an expected delivery,
counted when sent or, for what was on its way when the socket dropped, already), and a newer
update of the same sender supersedes it: ``superseded``, whatever the bound. The owed update
that arrives after the resume is ``delivered`` (its latency, the time away, is not recorded),
one still missing ``settle_after_s`` after the resume is ``lost``; a position the receiver
holds sent again is a ``duplicate`` (its view is kept across the resume). A receiver that
does not come back by the end, or gets a fresh ``init`` instead of ``resumed``, had them
``cut_off``. An update that had not arrived when the receiver dropped, while a newer one of
the same sender had, is ``lost`` there and then: it can no longer arrive in order (``cut_off``
when its sender's drop soon after sending it may have kept it from the server).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from loadgen.stats import Recorder

#: Owed updates are looked over at most this often, seconds.
OWED_SETTLE_EVERY_S = 0.5


@dataclass(slots=True)
class SentUpdate:
    sender: int
    seq: int
    intended: float
    sent: float
    expected: set[int]
    timestamp_ms: int = 0


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
    #: A drop cuts off what its user sent or was owed up to this long before it (seconds; None:
    #: everything sent before it). Runs that drop sockets on purpose, again and again, bound it:
    #: what had time to arrive before a drop and did not is lost, not excused by the next drop.
    drop_cuts_s: float | None = None
    #: user -> when its connections dropped, in order.
    _drops: dict[int, list[float]] = field(default_factory=dict)
    #: (receiver, sender) -> the sender's newest update owed to the receiver after its resume.
    _owed: dict[tuple[int, int], SentUpdate] = field(default_factory=dict)
    #: sender -> the receivers it owes an update after their resume.
    _owing: dict[int, set[int]] = field(default_factory=dict)
    #: receiver -> when it went away, while it is away and will resume.
    _away: dict[int, float] = field(default_factory=dict)
    #: receiver -> when it last resumed.
    _back_at: dict[int, float] = field(default_factory=dict)
    #: When owed updates were last looked over (settling is asked for at every send).
    _owed_seen: float = -math.inf

    def on_send(
        self,
        sender: int,
        timestamp_ms: int,
        seq: int,
        intended: float,
        sent: float,
        expected: Iterable[int],
        owed_to: Iterable[int] = (),
    ) -> None:
        """Record an update that was just sent, the friends that must receive it, and the friends
        away (they will resume) to whom it is owed after their resume unless a newer one is."""
        update = SentUpdate(sender, seq, intended, sent, set(expected), timestamp_ms)
        self._sent[(sender, timestamp_ms)] = update
        self._order.append((sent, (sender, timestamp_ms)))
        if self.supersede_within_s is not None:
            self._by_sender.setdefault(sender, []).append(update)
        self.recorder.count("updates_sent")
        self.recorder.count("expected", len(update.expected))
        # A newer position supersedes what was owed to those still away: only the newest is owed.
        for receiver in [r for r in self._owing.get(sender, ()) if r in self._away]:
            self._release(receiver, sender)
            self.recorder.count("superseded")
        for receiver in owed_to:
            self.recorder.count("expected")
            self._owe(receiver, update)

    def _owe(self, receiver: int, update: SentUpdate) -> None:
        """``update`` is owed to ``receiver`` after its resume (already counted as expected)."""
        key = (receiver, update.sender)
        held = self._owed.get(key)
        if held is not None and held.seq > update.seq:
            self.recorder.count("superseded")  # a newer one is owed already
            return
        if held is not None:
            self.recorder.count("superseded")
        self._owed[key] = update
        self._owing.setdefault(update.sender, set()).add(receiver)

    def _release(self, receiver: int, sender: int) -> SentUpdate:
        """No longer owe ``receiver`` ``sender``'s update; the one that was owed."""
        update = self._owed.pop((receiver, sender))
        owing = self._owing[sender]
        owing.discard(receiver)
        if not owing:
            del self._owing[sender]
        return update

    def on_receive(self, receiver: int, sender: int, timestamp_ms: int, now: float, start: float) -> None:
        """Account for a ``friend_location`` that arrived at ``receiver``."""
        update = self._sent.get((sender, timestamp_ms))
        owed = self._owed.get((receiver, sender))
        if update is None and owed is not None and owed.timestamp_ms == timestamp_ms:
            update = owed  # settled as an update already, still owed to a receiver that was away
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
        if owed is not None and update.seq >= owed.seq:
            self._release(receiver, sender)
            if update is owed:
                self.recorder.count("delivered")
                self.recorder.complete(int(now - start), None)  # done; its latency is the time away
                return
            self.recorder.count("superseded")  # a newer one came first: only the newest was owed
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
        self._away.pop(receiver, None)
        # A fresh init instead of a resume: what was owed cannot be told from what init shows.
        for key in [k for k in self._owed if k[0] == receiver]:
            self._release(*key)
            self.recorder.count("cut_off")
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

    def on_disconnect(self, user: int, now: float, *, resumes: bool = False) -> None:
        """The user's connection dropped (the server or the network ended it).

        What it sent before may never have reached the server: at settling, those expected
        deliveries count as ``cut_off``, not ``lost``. What was on its way to it cannot arrive
        on this connection: ``cut_off`` too, unless the user ``resumes`` (it keeps its view and
        will send ``resume``): then the newest of each sender is owed after the resume.
        """
        self._dropped_at[user] = now
        self._drops.setdefault(user, []).append(now)
        if not resumes:
            self._in_view.pop(user, None)
            return
        self.on_away(user, now)

    def on_away(self, user: int, now: float) -> None:
        """The user left (its socket dropped, or it closed it for the background) and will
        resume: it keeps its view, and what is still expected of it is owed after the resume."""
        self._away[user] = now
        self._back_at.pop(user, None)
        for update in list(self._sent.values()):
            if user not in update.expected:
                continue
            update.expected.discard(user)
            newer = self._last_seq.get((user, update.sender), 0)
            if newer <= update.seq:
                self._owe(user, update)
            elif self._cut_by_drop(update.sender, update.sent):
                # Its sender's drop may have kept it from the server: a socket closed with
                # frames unread resets, and the server's kernel discards what it had not read.
                self.recorder.count("cut_off")
            else:  # a newer one arrived before it: it cannot come in order
                why = f"update {newer} arrived first; the receiver's socket dropped {now - update.sent:.3f} s after"
                self._lost(update, user, why)

    def on_resumed(self, user: int, now: float) -> None:
        """The user's ``resumed`` arrived: what is owed to it must arrive now."""
        self._away.pop(user, None)
        self._back_at[user] = now

    def awaits(self, user: int) -> bool:
        """Whether a delivery still expected has ``user`` as its sender or its receiver.

        A user leaving on purpose waits until none has before it closes, so that its departure
        cuts off nothing that was owed while it was online.
        """
        return any(u.expected and (u.sender == user or user in u.expected) for u in self._sent.values()) or any(
            user in key for key in self._owed
        )

    def _cut_by_drop(self, user: int, sent: float) -> bool:
        """Whether a drop of ``user``'s connection after ``sent`` excuses a delivery (``drop_cuts_s``)."""
        drops = self._drops.get(user)
        if not drops:
            return False
        if self.drop_cuts_s is None:
            return drops[-1] >= sent
        return any(sent <= d <= sent + self.drop_cuts_s for d in drops)

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
            if self._cut_by_drop(update.sender, update.sent):
                self.recorder.count("cut_off", len(update.expected))
                continue
            for receiver in update.expected:
                if self._cut_by_drop(receiver, update.sent):
                    self.recorder.count("cut_off")
                else:
                    self._lost(update, receiver, f"not arrived {now - update.sent:.3f} s after it was sent")
        self._settle_owed(now, everything=everything)

    def _settle_owed(self, now: float, *, everything: bool) -> None:
        """Owed updates still missing ``settle_after_s`` after their receiver resumed are lost
        (cut off when their sender's drop may have kept them from the server); at the end,
        those of receivers that never came back are cut off."""
        if not everything and now - self._owed_seen < OWED_SETTLE_EVERY_S:
            return
        self._owed_seen = now
        for receiver, sender in list(self._owed):
            back = self._back_at.get(receiver)
            update = self._owed[(receiver, sender)]
            if back is None or receiver in self._away:
                if everything:
                    self._release(receiver, sender)
                    self.recorder.count("cut_off")
                continue
            if everything or now - max(back, update.sent) > self.settle_after_s:
                self._release(receiver, sender)
                if self._cut_by_drop(sender, update.sent):
                    self.recorder.count("cut_off")
                else:
                    self._lost(update, receiver, f"owed after the resume, not arrived {now - back:.3f} s after it")

    def _lost(self, update: SentUpdate, receiver: int, why: str) -> None:
        """Count a delivery lost, and keep the first few for the report (``error_samples``)."""
        self.recorder.count("lost")
        self.recorder.sample("lost", f"update {update.seq} of user {update.sender} to user {receiver}: {why}")


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
        + (f" + superseded by a newer position {f['superseded']}" if f.get("superseded") else "")
        + f"; not counted as done: unjudged {f['unjudged']}, "
        f"resync {f['resync']}, duplicates {f['duplicates']}, reordered {f['reordered']}, unmatched {f['unmatched']}"
    )
