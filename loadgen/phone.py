"""One simulated phone of the friends scenario: who it is, where it is, what it holds.

Plain state that :mod:`loadgen.friends` (its socket) and :mod:`loadgen.background` (its
uploads) drive; times are seconds on the generator's clock (:func:`loadgen.clock.now`).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection

from loadgen.clock import now
from loadgen.held import HeldView
from loadgen.movement import Mover
from loadgen.uploads import PointLog


@dataclass
class Client:
    user_id: int
    token: str
    mover: Mover
    friends: frozenset[int]
    #: ``--interval``: between locations unless paced, and between points recorded in the background.
    base_interval_s: float
    #: The interval in force: ``base_interval_s``, the latest pace, or the background's.
    interval_s: float = 0.0
    #: The number of the latest point recorded (sent or uploaded). It starts from the wall clock
    #: (microseconds), so that a rerun with the same users numbers its points above what the
    #: server kept of the last run's uploads, as a phone's own counter would.
    seq: int = field(default_factory=lambda: int(time.time() * 1_000_000))
    last_ts: int = 0
    ready: bool = False
    radius_m: float = 0.0
    ws: ClientConnection | None = None
    position: tuple[float, float] = field(default=(0.0, 0.0))
    connections: int = 0  # opened so far
    initialised: bool = False  # the latest connection got its init (or resumed)
    connected_at_end: bool = False  # had a connection when the measured window ended
    #: Away (its socket dropped or closed for the background) and will resume: updates are owed to it.
    away: bool = False
    #: In the background until then (generator clock), or None.
    background_until: float | None = None
    background_interval_s: float = 30.0
    #: When ``position`` was last moved, and the latest location or upload was sent.
    moved_at: float | None = None
    sent_at: float = 0.0
    #: The latest connection asked to resume.
    resuming: bool = False
    held: HeldView = field(default_factory=HeldView)
    points: PointLog = field(default_factory=PointLog)
    #: Set when something the sender waits for changed: a pace, the background.
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.interval_s = self.interval_s or self.base_interval_s

    def advance(self, at: float) -> tuple[float, float]:
        """Move to where the user is at ``at`` (generator clock): home at first."""
        if self.moved_at is not None:
            self.position = self.mover.step(max(0.0, at - self.moved_at))
        else:
            self.position = self.mover.position
        self.moved_at = at
        return self.position

    def timestamp(self, at: float) -> int:
        """The phone's clock at ``at`` (generator clock), Unix ms, unique per sender."""
        ts = max(int((time.time() - (now() - at)) * 1000), self.last_ts + 1)
        self.last_ts = ts
        return ts
