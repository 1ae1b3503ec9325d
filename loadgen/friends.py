"""``geo-loadgen friends``: simulated users moving, sharing locations and watching friends.

Set-up makes the friendships through the API as users do, each by a request and its
acceptance (:mod:`loadgen.friendships`), then opens a WebSocket per online user, ramped or
in stages. Each client sends a location every ``interval`` seconds from its movement model,
on an open-loop schedule, and the ledger checks every ``friend_location`` against what the
generator knows (loadgen.ledger says what each count means). A client whose connection drops
reconnects with backoff while the measured window lasts; drops, reconnects and failed
attempts are counted, never raised.

A client models a phone: it resumes after a reconnection (its first ``location`` carries the
friends it shows, :mod:`loadgen.held`), obeys the server's ``pace`` frames in a ``paced`` run
(:mod:`loadgen.pacing`), and sent to the background it closes its socket and uploads over
HTTP until it comes back (:mod:`loadgen.background`). How stale the friends a client shows in
range get is recorded as ``position_age`` (:mod:`loadgen.freshness`).
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass

import orjson
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.frames import CloseCode

from geo_index import haversine_m
from loadgen.background import Background
from loadgen.clock import MIN_SLEEP_S, now, sleep_until
from loadgen.freshness import PositionAges
from loadgen.inbox import Inbox
from loadgen.friends_options import EventKind, FriendsOptions, ScenarioEvent
from loadgen.friendships import create_friendships
from loadgen.gauges import sample_gauges
from loadgen.ledger import Ledger
from loadgen.movement import Mover
from loadgen.phone import Client
from loadgen.pacing import drop_times, next_send_at
from loadgen.sockets import backoff_s, open_socket, until_or_closed, ws_url
from loadgen.stages import connected_target, online_windows
from loadgen.stats import Recorder


#: Deliveries within this many metres of the radius edge are not judged (see loadgen.ledger).
EDGE_GUARD_M = 50.0
#: A client leaving as its stages say looks this often whether anything is owed to it or by it.
LEAVE_POLL_S = 0.02
#: The largest frame the server takes (docs/friends-protocol.md: 1009 beyond it), bytes.
MAX_FRAME_BYTES = 4096
#: Sockets are dropped on purpose (``disconnect_every_s``) until this long before the window's
#: end, seconds: a client dropped later could not resume within the window.
DROP_MARGIN_S = 2.0
#: In runs that drop sockets on purpose, a drop excuses what was sent this long before it at
#: most, seconds (:attr:`loadgen.ledger.Ledger.drop_cuts_s`).
DROP_CUTS_S = 1.0


@dataclass
class FriendsLive:
    in_flight: int = 0  # open connections, shown as "in flight" by the progress display


async def run_friends(opts: FriendsOptions, recorder: Recorder, live: FriendsLive) -> None:
    """Run the friends scenario to its end, recording into ``recorder``.

    The run is a ramp (clients connect, one after another), the measured window (until
    ``ramp_s + duration_s`` after the start: every update is sent in it), then a drain of
    ``drain_s`` in which clients only listen, so that the window's last updates can arrive;
    then every client closes. Nothing raises for what the server or the network does:
    failures are counted.
    """
    population = opts.population()
    if opts.setup:
        await create_friendships(opts, population, recorder)
    rng = random.Random(opts.seed)
    online = [
        u
        for u in population.users
        if rng.random() < opts.online_fraction and u.community % opts.worker_count == opts.worker_index
    ]
    clients = [
        Client(
            u.user_id,
            opts.auth.token(u.user_id, int(opts.duration_s + opts.ramp_s + 3600)),
            Mover(opts.movement, u.home, random.Random(u.user_id)),
            population.friends[u.user_id],
            opts.interval_s,
        )
        for u in online
    ]
    await FriendsRun(opts, recorder, live, clients, rng).run()


class FriendsRun:
    """One run of the friends scenario: its clients, its ledger and its clock."""

    def __init__(
        self, opts: FriendsOptions, recorder: Recorder, live: FriendsLive, clients: list[Client], rng: random.Random
    ) -> None:
        self.opts = opts
        self.recorder = recorder
        self.live = live
        self.clients = {c.user_id: c for c in clients}
        self.rng = rng
        within = opts.supersede_within_s
        # An update is settled only once a newer position could still supersede it.
        self.ledger = Ledger(
            recorder,
            supersede_within_s=within,
            settle_after_s=max(Ledger.settle_after_s, (within or 0.0) + 1.0),
            drop_cuts_s=DROP_CUTS_S if opts.disconnect_every_s else None,
        )
        self.ages = PositionAges()
        self.inbox = Inbox(self, self.ledger, self.ages, paced=opts.paced)
        self.background = Background(recorder, self.ledger, self.receivers, ws=opts.ws, paced=opts.paced)
        self.url = ws_url(opts.ws)
        self.start = now()
        #: The ramp and the measured window, seconds (the stages' total when there are stages).
        self.window_s = opts.ramp_s + opts.duration_s
        #: The end of the measured window: no update is sent after it.
        self.end = self.start + self.window_s

    async def run(self) -> None:
        events = [asyncio.create_task(self._happen(e)) for e in self.opts.events]
        if self.opts.disconnect_every_s:
            events.append(asyncio.create_task(self._drop_sockets(self.opts.disconnect_every_s)))
        gauges = sample_gauges(self.recorder, self.start, lambda: {"connected": self.live.in_flight})
        users = [c.user_id - self.opts.first_user_id for c in self.clients.values()]
        plans = online_windows(users, self.opts.stages, ramp_s=self.opts.ramp_s, window_s=self.window_s)
        self.recorder.plan("connected_target", connected_target(plans, self.window_s, self.opts.drain_s))
        await asyncio.gather(*(self._run_client(c, w) for c, w in zip(self.clients.values(), plans, strict=True)))
        gauges.cancel()
        for task in events:
            task.cancel()
        await asyncio.gather(*events, return_exceptions=True)
        await self.background.close()
        # The drain is part of every run, clients or none left connected: a run lasts its phases.
        await sleep_until(self.end + self.opts.drain_s)
        self.ledger.settle(now(), everything=True)
        self.recorder.count("operations", int(self.recorder.counters.get("expected", 0)))

    def _guard_m(self, a: Client, b: Client) -> float:
        """How far inside the radius two clients must be for a delivery to be judged, metres."""
        return EDGE_GUARD_M + a.mover.max_step_m(a.interval_s) + b.mover.max_step_m(b.interval_s)

    def in_range(self, receiver: Client, sender: Client) -> bool:
        """Whether the server must show ``sender`` to ``receiver``: clearly within its radius."""
        d = haversine_m(sender.position[0], sender.position[1], receiver.position[0], receiver.position[1])
        return d <= receiver.radius_m - self._guard_m(sender, receiver)

    def receivers(self, sender: Client) -> tuple[list[int], list[int]]:
        """The friends that must receive ``sender``'s update now (connected and initialised), and
        those to whom it is owed after they resume (away), both clearly in range."""
        expected: list[int] = []
        owed: list[int] = []
        for fid in sender.friends:
            friend = self.clients.get(fid)
            if friend is None or not (friend.ready or friend.away):
                continue
            if self.in_range(friend, sender):
                (expected if friend.ready else owed).append(fid)
        return expected, owed

    async def _send_location(self, client: Client, ws: ClientConnection, intended: float, *, first: bool) -> None:
        client.seq += 1
        sent = now()
        client.advance(sent)
        ts = client.timestamp(sent)
        message: dict[str, object] = {
            "type": "location",
            "latitude": client.position[0],
            "longitude": client.position[1],
            "timestamp": ts,
        }
        client.resuming = False
        if first and client.connections > 1:
            resume = client.held.resume()
            if resume is not None:
                message["resume"] = resume
                client.resuming = True
        frame = orjson.dumps(message)
        if len(frame) > MAX_FRAME_BYTES:  # too many friends held to name: a fresh init instead
            del message["resume"]
            client.resuming = False
            frame = orjson.dumps(message)
            self.recorder.count("resume_skipped")
        self.recorder.record("send_lag", sent - intended)
        expected, owed = self.receivers(client) if client.ready else ([], [])
        self.ledger.on_send(client.user_id, ts, client.seq, intended, sent, expected, owed)
        client.sent_at = sent
        await ws.send(frame.decode())

    async def _receive(self, client: Client, ws: ClientConnection, init_sent: float) -> None:
        """Read the connection to its end; raises ConnectionClosed when it did not end cleanly."""
        async for raw in ws:
            try:
                self.inbox.on_frame(client, raw, now(), init_sent)
            except (ValueError, TypeError, KeyError, AttributeError):  # not the protocol's frames
                self.recorder.count("errors")
                self.recorder.count("bad_frames")

    async def _run_client(self, client: Client, windows: list[tuple[float, float]]) -> None:
        """Keep one user connected through each of its ``windows`` (seconds since the start),
        reconnecting with backoff when it drops; a window that ends before the run does is a
        planned departure (:meth:`_leave`)."""
        for on, off in windows:
            await sleep_until(self.start + on)
            until = self.end if off >= self.window_s else self.start + off
            failures = opened = 0
            while now() < until:
                if client.background_until is not None:
                    await self.background.run(client, until)
                    opened = 0  # coming back to the foreground is no reconnection after a drop
                    continue
                ws = await open_socket(self.url, client.token, until, self.recorder)
                if ws is not None:
                    if opened:
                        self.recorder.count("reconnects")
                    client.connections += 1
                    opened += 1
                    await self._session(client, ws, until)
                # A connection that never got its init failed too: a server that accepts and drops
                # at once is not met by a client reconnecting as fast as it can.
                failures = 0 if ws is not None and client.initialised else failures + 1
                if failures:
                    await sleep_until(min(now() + backoff_s(failures), until))
        if windows and windows[-1][1] >= self.window_s and not client.connected_at_end and not client.away:
            self.recorder.count("disconnected_at_end")

    async def _session(self, client: Client, ws: ClientConnection, until: float) -> None:
        """Use one connection until ``until`` and the drain after the run, or the client's
        departure or its going to the background, or until it drops; count a drop as a
        disconnect."""
        self.live.in_flight += 1
        client.ws = ws
        client.initialised = False
        init_sent = now()
        reader = asyncio.create_task(self._receive(client, ws, init_sent))
        backgrounded = False
        try:
            try:
                await self._send_location(client, ws, init_sent, first=True)
                await self._keep_sending(client, ws, reader, until, init_sent)
            except websockets.exceptions.ConnectionClosed:
                pass  # the reader ends too, and tells how
            if client.background_until is not None and not reader.done():
                backgrounded = True  # closes its socket (below): no drop
            elif until < self.end:
                await self._leave(client, reader)
            elif await until_or_closed(self.end, reader):
                client.connected_at_end = True
                await until_or_closed(self.end + self.opts.drain_s, reader)
            dropped = reader.done()
            if not dropped:
                await ws.close()
        finally:
            reader.cancel()  # done already, unless this task itself is being cancelled
            (outcome,) = await asyncio.gather(reader, return_exceptions=True)
            self.live.in_flight -= 1
            client.ready = False
            client.ws = None
            self.ages.forget(client.user_id)
        if isinstance(outcome, Exception) and not isinstance(outcome, websockets.exceptions.ConnectionClosed):
            self.recorder.count("errors")
            self.recorder.count(f"client_error_{type(outcome).__name__}")
        if dropped:
            self.recorder.count("disconnects")
            self.recorder.count(f"disconnect_{int(ws.close_code or CloseCode.ABNORMAL_CLOSURE)}")
            # A client that held an init with ``at`` resumes on its next connection, if it has one.
            client.away = client.held.at is not None and now() < self.end
            self.ledger.on_disconnect(client.user_id, now(), resumes=client.away)
        elif backgrounded:
            client.away = client.held.at is not None
            if client.away:
                self.ledger.on_away(client.user_id, now())

    async def _keep_sending(
        self, client: Client, ws: ClientConnection, reader: asyncio.Task[None], until: float, init_sent: float
    ) -> None:
        """Send locations until ``until``, the connection's end or the background: every
        ``interval_s`` on an open-loop schedule, or in a paced run every interval of the latest
        ``pace`` after the last send (at once when a shorter pace makes one due)."""
        next_at = init_sent + random.Random(client.user_id).uniform(0, client.base_interval_s)
        while client.background_until is None:
            due = next_send_at(client.sent_at, client.interval_s, now()) if self.opts.paced else next_at
            if not await _wait(min(due, until), reader, client.wake) or now() >= until:
                return
            if now() < due:
                continue  # woken: a new pace, or the background
            await self._send_location(client, ws, due, first=False)
            next_at += client.interval_s
            self.ledger.settle(now())

    async def _leave(self, client: Client, reader: asyncio.Task[None]) -> None:
        """A departure the stages planned: no update expects the client from now on, and it listens
        until nothing it sent or should receive is owed (at most the drain): leaving cuts nothing off."""
        client.ready = False
        deadline = now() + self.opts.drain_s
        while self.ledger.awaits(client.user_id) and now() < deadline:
            if not await until_or_closed(min(now() + LEAVE_POLL_S, deadline), reader):
                return  # it dropped meanwhile: the caller counts that

    async def _happen(self, event: ScenarioEvent) -> None:
        await sleep_until(self.start + self.opts.ramp_s + event.at_s)
        if now() >= self.end:
            return
        chosen = [c for c in self.clients.values() if self.rng.random() < event.fraction]
        for client in chosen:
            if event.kind is EventKind.BACKGROUND:
                lasts = event.lasts_s if event.lasts_s is not None else math.inf
                client.background_until = now() + lasts
                client.background_interval_s = event.interval_s
                client.wake.set()
            elif client.ws is not None:
                client.ws.transport.abort()  # an abrupt drop, as when a network goes away
        self.recorder.count(f"event_{event.kind.value}", len(chosen))
        print(f"friends: {event.kind.value} hit {len(chosen)} clients", flush=True)

    async def _drop_sockets(self, every_s: float) -> None:
        """Drop each client's socket every ``every_s`` seconds, from a phase of its own, after the
        ramp and until :data:`DROP_MARGIN_S` before the window's end."""
        rng = random.Random(self.opts.seed + 1)
        first, last = self.start + self.opts.ramp_s, self.end - DROP_MARGIN_S
        due = sorted((t, uid) for uid in self.clients for t in drop_times(every_s, first, last, rng))
        for at, uid in due:
            await sleep_until(at)
            client = self.clients[uid]
            if client.ws is not None and client.ready:
                client.ws.transport.abort()
                self.recorder.count("forced_disconnects")


async def _wait(deadline: float, reader: asyncio.Task[None], wake: asyncio.Event) -> bool:
    """Sleep until :func:`now` reaches ``deadline`` or ``wake`` is set (then cleared); False
    when ``reader`` ends first."""
    if not wake.is_set():
        woken = asyncio.ensure_future(wake.wait())
        try:
            while not reader.done() and not woken.done():
                left = deadline - now()
                if left <= 0:
                    break
                await asyncio.wait((reader, woken), timeout=max(left, MIN_SLEEP_S), return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
    wake.clear()
    return not reader.done()
