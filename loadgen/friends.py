"""``geo-loadgen friends``: simulated users moving, sharing locations and watching friends.

Set-up creates the friendships through the API (with an admin token minted from the
settings' key), then opens a WebSocket per online user, ramped. Each client sends a location
every ``interval`` seconds from its movement model, on an open-loop schedule, and the ledger
checks every ``friend_location`` against what the generator knows.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field, replace
from enum import Enum

import aiohttp
import orjson
import websockets
from websockets.asyncio.client import ClientConnection, connect

from geo_common.tokens import Role, mint_token
from geo_index import haversine_m
from loadgen.clock import now, sleep_until
from loadgen.graph import GraphKind, Population, build_population
from loadgen.ledger import Ledger
from loadgen.movement import Mover, Movement
from loadgen.stats import Recorder


class EventKind(str, Enum):
    RECONNECT_STORM = "reconnect_storm"
    BACKGROUND = "background"


@dataclass(frozen=True, slots=True)
class ScenarioEvent:
    """Something that happens to a share of the clients, ``at_s`` seconds after the ramp.

    ``reconnect_storm``: their connections drop at once and they reconnect. ``background``:
    they slow their updates to one every ``interval_s`` seconds, as a phone app sent to the
    background does.
    """

    at_s: float
    kind: EventKind
    fraction: float
    interval_s: float = 30.0


#: Deliveries within this many metres of the radius edge are not judged (see loadgen.ledger).
EDGE_GUARD_M = 50.0
DRAIN_S = 2.0


@dataclass(frozen=True, kw_only=True)
class FriendsOptions:
    """What ``geo-loadgen friends`` was asked to do."""

    api: str
    ws: str
    jwt_secret: str
    users: int
    friends_per_user: int
    graph: GraphKind = GraphKind.COMMUNITIES
    online_fraction: float = 1.0
    interval_s: float = 5.0
    movement: Movement = Movement.RANDOM_WALK
    duration_s: float = 30.0
    ramp_s: float = 5.0
    first_user_id: int = 1_000_000
    setup: bool = True
    setup_concurrency: int = 64
    events: tuple[ScenarioEvent, ...] = ()
    seed: int = 0
    worker_index: int = 0
    worker_count: int = 1

    def for_worker(self, index: int, count: int) -> FriendsOptions:
        """Worker ``index`` of ``count`` runs whole communities (set-up is done once, before)."""
        return replace(self, worker_index=index, worker_count=count, setup=False)


@dataclass
class FriendsLive:
    in_flight: int = 0  # open connections, shown as "in flight" by the progress display


@dataclass
class Client:
    user_id: int
    token: str
    mover: Mover
    friends: frozenset[int]
    interval_s: float
    seq: int = 0
    last_ts: int = 0
    ready: bool = False
    radius_m: float = 0.0
    ws: ClientConnection | None = None
    position: tuple[float, float] = field(default=(0.0, 0.0))


async def create_friendships(opts: FriendsOptions, population: Population, recorder: Recorder) -> None:
    """POST every friendship once, ``setup_concurrency`` at a time; counts failures by status."""
    admin = mint_token(opts.jwt_secret, 1, Role.ADMIN, ttl_s=3600)
    headers = {"Authorization": f"Bearer {admin}"}
    edges = population.edges()
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for edge in edges:
        queue.put_nowait(edge)
    done = 0
    started = time.monotonic()

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while not queue.empty():
            a, b = queue.get_nowait()
            async with session.post(f"{opts.api.rstrip('/')}/v1/users/{a}/friends/{b}", headers=headers) as resp:
                await resp.read()
                if resp.status >= 300:
                    recorder.count(f"setup_status_{resp.status}")
                    recorder.count("errors")
            done += 1
            if done % 5_000 == 0:
                print(
                    f"friends: set-up {done}/{len(edges)} friendships ({time.monotonic() - started:.1f} s)", flush=True
                )

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(opts.setup_concurrency)))
    print(f"friends: set-up {len(edges)} friendships in {time.monotonic() - started:.1f} s", flush=True)


async def run_friends(opts: FriendsOptions, recorder: Recorder, live: FriendsLive) -> None:
    """Run the friends scenario to its end, recording into ``recorder``."""
    population = build_population(
        opts.users, opts.friends_per_user, opts.graph, first_id=opts.first_user_id, seed=opts.seed
    )
    if opts.setup:
        await create_friendships(opts, population, recorder)
    rng = random.Random(opts.seed)
    online = [
        u
        for u in population.users
        if rng.random() < opts.online_fraction and u.community % opts.worker_count == opts.worker_index
    ]
    clients = {
        u.user_id: Client(
            u.user_id,
            mint_token(opts.jwt_secret, u.user_id, ttl_s=int(opts.duration_s + opts.ramp_s + 3600)),
            Mover(opts.movement, u.home, random.Random(u.user_id)),
            population.friends[u.user_id],
            opts.interval_s,
        )
        for u in online
    }
    ledger = Ledger(recorder)
    start = now()
    end = start + opts.ramp_s + opts.duration_s
    url = f"{opts.ws.rstrip('/')}/v1/friends/ws"

    def expected_receivers(sender: Client) -> list[int]:
        out = []
        for fid in sender.friends:
            friend = clients.get(fid)
            if friend is None or not friend.ready:
                continue
            d = haversine_m(sender.position[0], sender.position[1], friend.position[0], friend.position[1])
            guard = (
                EDGE_GUARD_M + sender.mover.max_step_m(sender.interval_s) + friend.mover.max_step_m(friend.interval_s)
            )
            if d <= friend.radius_m - guard:
                out.append(fid)
        return out

    async def send_location(client: Client, intended: float) -> None:
        assert client.ws is not None
        client.seq += 1
        client.position = client.mover.step(client.interval_s) if client.seq > 1 else client.mover.position
        ts = max(int(time.time() * 1000), client.last_ts + 1)  # unique per sender
        client.last_ts = ts
        frame = orjson.dumps(
            {"type": "location", "latitude": client.position[0], "longitude": client.position[1], "timestamp": ts}
        )
        sent = now()
        recorder.record("send_lag", sent - intended)
        expected = expected_receivers(client) if client.ready else []
        ledger.on_send(client.user_id, ts, client.seq, intended, sent, expected)
        await client.ws.send(frame.decode())

    async def receive(client: Client, ws: ClientConnection, init_sent: float) -> None:
        async for raw in ws:
            received = now()
            msg = orjson.loads(raw)
            kind = msg.get("type")
            if kind == "friend_location":
                ledger.on_receive(client.user_id, int(msg["user_id"]), int(msg.get("sent_at") or -1), received, start)
            elif kind == "init":
                client.radius_m = float(msg["radius_m"])
                if not client.ready:
                    recorder.record("init", received - init_sent)
                client.ready = True
            elif kind == "friend_left":
                recorder.count(f"friend_left_{msg.get('reason', 'unknown')}")
            elif kind == "error":
                recorder.count("errors")
                recorder.count(f"error_{msg.get('code', 'unknown')}")

    async def run_client(client: Client, begin_at: float) -> None:
        await sleep_until(begin_at)
        phase = random.Random(client.user_id).uniform(0, opts.interval_s)
        attempt = 0
        while now() < end:
            t0 = now()
            try:
                ws = await connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {client.token}"},
                    open_timeout=10,
                    max_size=2**16,
                    compression=None,
                )
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException) as exc:
                recorder.count("errors")
                recorder.count(f"connect_error_{type(exc).__name__}")
                attempt += 1
                await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
                continue
            recorder.record("connect", now() - t0)
            if attempt or client.seq:
                recorder.count("reconnects")
            attempt = 0
            client.ws = ws
            live.in_flight += 1
            try:
                init_sent = now()
                reader = asyncio.create_task(receive(client, ws, init_sent))
                await send_location(client, init_sent)
                next_at = init_sent + phase
                while now() < end and not reader.done():
                    await sleep_until(next_at)
                    if now() >= end or reader.done():
                        break
                    await send_location(client, next_at)
                    next_at += client.interval_s
                    ledger.settle(now())
                if not reader.done():
                    await asyncio.sleep(DRAIN_S)
                    await ws.close()
                await asyncio.gather(reader, return_exceptions=True)
            except websockets.exceptions.ConnectionClosed:
                pass
            finally:
                live.in_flight -= 1
                client.ready = False
                client.ws = None
            if now() < end:
                recorder.count("disconnects")

    async def happen(event: ScenarioEvent) -> None:
        await sleep_until(start + opts.ramp_s + event.at_s)
        chosen = [c for c in clients.values() if rng.random() < event.fraction]
        for client in chosen:
            if event.kind is EventKind.BACKGROUND:
                client.interval_s = event.interval_s
            elif client.ws is not None:
                client.ws.transport.abort()  # an abrupt drop, as when a network goes away
        recorder.count(f"event_{event.kind.value}", len(chosen))
        print(f"friends: {event.kind.value} hit {len(chosen)} clients", flush=True)

    events = [asyncio.create_task(happen(e)) for e in opts.events]
    begin = [start + opts.ramp_s * i / max(1, len(clients)) for i in range(len(clients))]
    await asyncio.gather(*(run_client(c, t) for c, t in zip(clients.values(), begin)))
    for task in events:
        task.cancel()
    ledger.settle(now(), everything=True)
    recorder.count("operations", int(recorder.counters.get("expected", 0)))


def updates_per_second(users: int, online_fraction: float, interval_s: float) -> float:
    """The steady update rate a run makes: online users / interval."""
    return users * online_fraction / interval_s
