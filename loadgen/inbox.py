"""What a simulated phone makes of each frame the server sends it.

The friends run's reader (:mod:`loadgen.friends`) decodes nothing itself: it hands each frame
here, which keeps the client's view (:mod:`loadgen.held`), its pace, the ledger's receipts and
the ages of the positions it shows (:mod:`loadgen.freshness`) up to date.
"""

from __future__ import annotations

from typing import Protocol

import orjson

from loadgen.freshness import PositionAges
from loadgen.ledger import Ledger
from loadgen.phone import Client
from loadgen.stats import Recorder


class Run(Protocol):
    """What the inbox reads of the run: its clients, its clock and who is in whose range."""

    recorder: Recorder
    clients: dict[int, Client]
    start: float
    end: float

    def in_range(self, receiver: Client, sender: Client) -> bool: ...


class Inbox:
    """Applies server frames to the run's clients; ``paced``: clients obey ``pace`` frames."""

    def __init__(self, run: Run, ledger: Ledger, ages: PositionAges, *, paced: bool) -> None:
        self.run = run
        self.ledger = ledger
        self.ages = ages
        self.paced = paced

    def on_frame(self, client: Client, raw: str | bytes, received: float, init_sent: float) -> None:
        """Apply one frame that arrived at ``received``; ``init_sent`` is when the connection's
        first location left. Raises ValueError, TypeError or KeyError on what is not the protocol."""
        msg = orjson.loads(raw)
        kind = msg.get("type")
        uid = client.user_id
        if kind == "friend_location":
            sender, sent_at = int(msg["user_id"]), msg.get("sent_at")
            client.held.on_location(sender, int(msg["updated_at"]))
            gap = self.ages.refresh(uid, sender, received)
            friend = self.run.clients.get(sender)
            if gap is not None and friend is not None and received < self.run.end and self.run.in_range(client, friend):
                self.run.recorder.record("position_age", gap)
            self.ledger.on_receive(uid, sender, -1 if sent_at is None else int(sent_at), received, self.run.start)
        elif kind == "pace":
            self.run.recorder.count("pace_frames")
            if self.paced and client.background_until is None:
                client.interval_s = float(msg["interval_s"])
                client.wake.set()
        elif kind == "init":
            client.radius_m = float(msg["radius_m"])
            client.held.on_init(msg)
            if client.resuming:
                self.run.recorder.count("resume_refused")  # a fresh init: the window had passed
            shown = [(int(f["user_id"]), f.get("sent_at")) for f in msg["friends"]]
            self.ledger.on_init(uid, ((u, None if t is None else int(t)) for u, t in shown))
            self.ages.start(uid, (u for u, _ in shown), received)
            if not client.ready:
                self.run.recorder.record("init", received - init_sent)
            client.ready = client.initialised = True
            client.away = False
        elif kind == "resumed":
            client.radius_m = float(msg["radius_m"])
            client.held.on_resumed(msg)
            self.ledger.on_resumed(uid, received)
            self.ages.start(uid, client.held.friends, received)
            self.run.recorder.count("resumes")
            self.run.recorder.record("resume", received - init_sent)
            client.ready = client.initialised = True
            client.away = False
        elif kind == "friend_left":
            sender = int(msg["user_id"])
            client.held.on_left(sender)
            self.ages.left(uid, sender)
            self.ledger.on_left(uid, sender)
            if received < self.run.end:  # after it, friends leave because the run's own clients close
                self.run.recorder.count(f"friend_left_{msg.get('reason', 'unknown')}")
        elif kind == "error":
            self.run.recorder.count("errors")
            self.run.recorder.count(f"error_{msg.get('code', 'unknown')}")
