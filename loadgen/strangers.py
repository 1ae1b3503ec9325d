"""``geo-loadgen strangers``: users crowding a few spots, seen by each other as nearby strangers.

Each simulated user opens a WebSocket (ramped over ``ramp_s``), sends its first location and
turns discovery on (``discover`` with a handle), then sends a location every ``interval_s``
on an open-loop schedule, each a new point of its spot (:func:`loadgen.strangers_options.point_near`),
so its coarse position keeps changing and every stranger who shows it is sent a ``stranger``
frame (docs/friends-protocol.md, "Nearby strangers").

What a client records of each frame:

* ``stranger`` for an id it already shows: a stranger moved. Its ``updated_at`` is when the
  server received the location that moved them, so the frame's age on arrival is the delivery
  latency of that location to this viewer: the main ``latency``.
* ``stranger`` for an id it does not show: a stranger appeared. They may have been standing
  there (a viewer reads who is in a cell when it starts listening), so the age of that news
  (``appear_age``) is how stale a first sight is, not a delivery latency.
* ``stranger_left``: by reason (``stranger_left_<reason>``) while the window lasts.

Ages are the generator's wall clock minus the server's: on one machine they share a clock; a
server whose clock is ahead shows ages below 0, recorded as 0 and counted (``clock_behind``).
A client whose socket drops reconnects with backoff while the window lasts (``disconnects``,
``reconnects``); nothing the server does raises.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.frames import CloseCode

from loadgen.clock import now, sleep_until
from loadgen.gauges import sample_gauges
from loadgen.sockets import backoff_s, open_socket, until_or_closed, ws_url
from loadgen.stats import Recorder
from loadgen.strangers_options import StrangersOptions, point_near

#: Seconds the tokens outlive the run, so that none expires during it.
TOKEN_SPARE_S = 3600


@dataclass
class StrangersLive:
    in_flight: int = 0  # open connections, shown as "in flight" by the progress display


@dataclass
class Stranger:
    """One simulated user: where its spot is, and what its latest connection shows."""

    user_id: int
    token: str
    place: tuple[float, float]
    rng: random.Random
    #: The strangers the connection shows: their ids and coarse points (degrees).
    shown: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: The most strangers shown at once, over the run.
    peak: int = 0
    connections: int = 0
    #: When the latest connection's first location and its ``discover`` left (generator clock).
    init_sent: float = 0.0
    discover_sent: float = 0.0


async def run_strangers(opts: StrangersOptions, recorder: Recorder, live: StrangersLive) -> None:
    """Run the strangers scenario to its end, recording into ``recorder``.

    The ramp, the measured window (locations are sent until ``ramp_s + duration_s``), then a
    drain of ``drain_s`` in which clients only listen; then every client closes.
    """
    places = opts.places()
    ttl = int(opts.ramp_s + opts.duration_s + opts.drain_s + TOKEN_SPARE_S)
    users = [
        Stranger(u, opts.auth.token(u, ttl), places[opts.spot_of(u)], random.Random(opts.seed * 1_000_003 + u))
        for u in opts.mine()
    ]
    await StrangersRun(opts, recorder, live).run(users)


class StrangersRun:
    """One run of the strangers scenario: its clock, and what its clients are sent."""

    def __init__(self, opts: StrangersOptions, recorder: Recorder, live: StrangersLive) -> None:
        self.opts = opts
        self.recorder = recorder
        self.live = live
        self.url = ws_url(opts.ws)
        self.start = now()
        #: No location is sent after this; frames are counted until ``end + drain_s``.
        self.end = self.start + opts.ramp_s + opts.duration_s

    async def run(self, users: list[Stranger]) -> None:
        gauges = sample_gauges(self.recorder, self.start, lambda: {"connected": self.live.in_flight})
        spacing = self.opts.ramp_s / max(1, len(users))
        await asyncio.gather(*(self._run_client(u, self.start + i * spacing) for i, u in enumerate(users)))
        gauges.cancel()
        await sleep_until(self.end + self.opts.drain_s)  # a run lasts its phases, clients or none
        for user in users:
            self.recorder.count(f"visible_{user.peak}")

    async def _run_client(self, user: Stranger, at: float) -> None:
        """Keep one user connected from ``at`` to the window's end, reconnecting with backoff."""
        await sleep_until(at)
        failures = 0
        while now() < self.end:
            ws = await open_socket(self.url, user.token, self.end, self.recorder)
            if ws is not None:
                if user.connections:
                    self.recorder.count("reconnects")
                user.connections += 1
                await self._session(user, ws)
            failures = 0 if ws is not None else failures + 1
            if now() < self.end:
                await sleep_until(min(now() + backoff_s(max(failures, 1)), self.end))

    async def _session(self, user: Stranger, ws: ClientConnection) -> None:
        """Discover on one connection and send locations until the window's end (then listen
        through the drain and close), or until it drops (counted)."""
        self.live.in_flight += 1
        user.shown.clear()
        reader = asyncio.create_task(self._receive(user, ws))
        try:
            try:
                user.init_sent = now()
                await self._send_location(user, ws, user.init_sent)
                user.discover_sent = now()
                await ws.send(
                    orjson.dumps({"type": "discover", "enabled": True, "handle": f"u{user.user_id}"}).decode()
                )
                await self._keep_sending(user, ws, reader)
            except websockets.exceptions.ConnectionClosed:
                pass  # the reader ends too, and tells how
            if await until_or_closed(self.end + self.opts.drain_s, reader):
                await ws.close()
                dropped = False
            else:
                dropped = True
        finally:
            reader.cancel()  # done already, unless this task itself is being cancelled
            (outcome,) = await asyncio.gather(reader, return_exceptions=True)
            self.live.in_flight -= 1
        if isinstance(outcome, Exception) and not isinstance(outcome, websockets.exceptions.ConnectionClosed):
            self.recorder.count("errors")
            self.recorder.count(f"client_error_{type(outcome).__name__}")
        if dropped and now() < self.end + self.opts.drain_s:
            self.recorder.count("disconnects")
            self.recorder.count(f"disconnect_{int(ws.close_code or CloseCode.ABNORMAL_CLOSURE)}")

    async def _keep_sending(self, user: Stranger, ws: ClientConnection, reader: asyncio.Task[None]) -> None:
        """A location every ``interval_s`` from a phase of the user's own, until the window's end."""
        interval = self.opts.interval_s
        due = user.init_sent + user.rng.uniform(0.0, interval)
        while await until_or_closed(min(due, self.end), reader) and now() < self.end:
            await self._send_location(user, ws, due)
            due += interval

    async def _send_location(self, user: Stranger, ws: ClientConnection, intended: float) -> None:
        lat, lon = point_near(user.place, self.opts.area_m, user.rng)
        self.recorder.record("send_lag", max(0.0, now() - intended))
        self.recorder.count("operations")
        await ws.send(orjson.dumps({"type": "location", "latitude": lat, "longitude": lon}).decode())

    async def _receive(self, user: Stranger, ws: ClientConnection) -> None:
        """Read the connection to its end; raises ConnectionClosed when it did not end cleanly."""
        async for raw in ws:
            try:
                self._on_frame(user, orjson.loads(raw))
            except (ValueError, TypeError, KeyError, AttributeError):  # not the protocol's frames
                self.recorder.count("errors")
                self.recorder.count("bad_frames")

    def _on_frame(self, user: Stranger, msg: dict[str, Any]) -> None:
        """Record one frame: what it delivered, and how the client's view changed."""
        kind = msg["type"]
        at = now()
        if at >= self.end + self.opts.drain_s:
            return  # the run's own clients are closing: what they cause is not the server's doing
        if kind == "stranger":
            self._on_stranger(user, msg, at)
        elif kind == "stranger_left":
            if user.shown.pop(str(msg["id"]), None) is None:
                self.recorder.count("left_unshown")  # the protocol never takes away what it did not show
            elif at < self.end:
                self.recorder.count(f"stranger_left_{msg.get('reason', 'unknown')}")
        elif kind == "init":
            self.recorder.record("init", at - user.init_sent)
        elif kind == "discover" and msg.get("enabled") is True and user.discover_sent:
            self.recorder.record("discover", at - user.discover_sent)
            user.discover_sent = 0.0  # a later one (after a reconnection's init) is not an answer
        elif kind == "error":
            self.recorder.count("errors")
            self.recorder.count(f"error_{msg.get('code', 'unknown')}")

    def _on_stranger(self, user: Stranger, msg: dict[str, Any], at: float) -> None:
        sid, point = str(msg["id"]), (float(msg["latitude"]), float(msg["longitude"]))
        age_s = time.time() - int(msg["updated_at"]) / 1000.0
        if age_s < 0:
            self.recorder.count("clock_behind")
            age_s = 0.0
        held = user.shown.get(sid)
        user.shown[sid] = point
        second = int(at - self.start)
        if held is None:
            self.recorder.count("stranger_appeared")
            self.recorder.record("appear_age", age_s)
            self.recorder.complete(second, None)
            user.peak = max(user.peak, len(user.shown))
        elif held == point:
            self.recorder.count("stranger_repeated")  # only a change of cell (or handle) is sent
            self.recorder.complete(second, None)
        else:
            self.recorder.count("stranger_moved")
            self.recorder.complete(second, age_s)
