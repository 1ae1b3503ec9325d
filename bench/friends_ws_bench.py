"""Benchmark of the friends tier: one ``geo-friends`` process, clients in another.

    .venv/bin/python bench/friends_ws_bench.py                 # the defaults below, ~3 minutes
    .venv/bin/python bench/friends_ws_bench.py --users 2000 --duration 5   # a quick look

What it measures, in one run, against the local stack (``geo-stack up``):

1. **Idle memory**: RSS growth of the server per connection, with N users connected,
   authenticated, subscribed to their friends' channels and answered with ``init``; and the
   same for a bare aiohttp WebSocket server holding N idle connections.
2. **Load**: U location updates per second (spread over the users) for D seconds; each user
   belongs to a clique of F+1 mutual friends standing within the radius, so each update is
   due to F online friends in range. Every ``friend_location`` is matched to its update (the
   update's ``timestamp`` is a sequence number echoed as ``sent_at``): deliveries per second,
   lost deliveries, and end-to-end latency (client send to friend receipt) p50/p99.
3. **Maximum**: higher update rates in steps, until deliveries stop keeping up.
   ``--regions 2`` splits the map in two regions at 97.5 W (both on the stack's Redis, see
   docs/regions.md): users claim the home region of their first location, and the cliques
   east of the line subscribe and publish in the second region.
4. **Ceilings**: a bare ``websockets.broadcast`` of the same frames to N connections, and a
   bare redis-py + hiredis subscriber (next to this project's subscriber) reading a flood.
5. **Cluster subscribe**: subscribing a user's 500 friends' shard channels, batched per node
   here versus redis-py's cluster pub/sub (one SSUBSCRIBE per channel).

The server and the clients share this machine's cores; the figures are for this machine
under whatever else runs on it (printed at the start).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402
import orjson  # noqa: E402

from geo_common.open_files import raise_open_files  # noqa: E402
from geo_common.settings import Settings, load_settings  # noqa: E402
from geo_common.tokens import mint_token  # noqa: E402

from bench_db import drop_database, new_database  # noqa: E402

FRAME = orjson.dumps(
    {
        "type": "friend_location",
        "user_id": 1_000_123,
        "latitude": 37.774929,
        "longitude": -122.419416,
        "distance_m": 1234.5,
        "updated_at": 1_763_890_000_000,
        "sent_at": 1_763_890_000_000,
    }
).decode()


#: ``--regions 2``: the cliques (30-45 N, 120-75 W) split at 97.5 W; endpoints from GEO_REDIS_URL.
TWO_REGIONS = {
    "west": {"boxes": [[-90.0, -180.0, 90.0, -97.5]]},
    "east": {"boxes": [[-90.0, -97.5, 90.0, 180.0]]},
}


# --------------------------------------------------------------------------- small helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def say(text: str) -> None:
    print(text, flush=True)


async def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)


def stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return (proc.stdout.read() if proc.stdout else b"").decode(errors="replace")


# --------------------------------------------------------------------------- bare servers (subprocess modes)


def serve_bare_aiohttp(port: int) -> None:
    """A bare aiohttp WebSocket server: each connection waits for messages (the memory floor)."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4096, heartbeat=20.0, compress=False)
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    _uvloop()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_bare_broadcast(port: int, connections: int, rounds: int) -> None:
    """A bare websockets server that broadcasts ``rounds`` frames to all once N are connected."""
    import websockets
    from websockets.asyncio.server import ServerConnection, serve

    async def main() -> None:
        conns: list[ServerConnection] = []
        ready = asyncio.Event()

        async def handler(ws: ServerConnection) -> None:
            conns.append(ws)
            if len(conns) == connections:
                ready.set()
            await ws.wait_closed()

        async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, max_size=4096):
            await ready.wait()
            await asyncio.sleep(1.0)
            started, cpu0 = time.perf_counter(), time.process_time()
            for _ in range(rounds):
                websockets.broadcast(conns, FRAME)
                await asyncio.sleep(0)
            print(
                json.dumps({"send_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu0}), flush=True
            )
            await asyncio.Future()

    _uvloop()
    asyncio.run(main())


def _uvloop() -> None:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# --------------------------------------------------------------------------- the bench database


async def create_bench_db(settings: Settings) -> str:
    return (await new_database(settings, f"geo_bench_{os.getpid()}_{secrets.token_hex(3)}")).pg_primary


async def drop_bench_db(settings: Settings, dsn: str) -> None:
    await drop_database(settings, dsn.rsplit("/", 1)[1])


@dataclass
class Population:
    """Users in cliques of ``friends + 1`` mutual friends, each clique around its own point."""

    users: list[int]
    friends: int
    centre: dict[int, tuple[float, float]] = field(default_factory=dict)
    _sizes: dict[int, int] = field(default_factory=dict)

    @classmethod
    def build(cls, count: int, friends: int, first_id: int = 1_000_000) -> Population:
        users = list(range(first_id, first_id + count))
        pop = cls(users, friends)
        rng = random.Random(7)
        size = friends + 1
        for start in range(0, count, size):
            # Cliques spread over the US, members within ~300 m of their clique's point.
            lat, lon = rng.uniform(30, 45), rng.uniform(-120, -75)
            for user in users[start : start + size]:
                pop.centre[user] = (lat + rng.uniform(-0.002, 0.002), lon + rng.uniform(-0.002, 0.002))
        return pop

    @property
    def friends_of(self) -> dict[int, int]:
        """Each user's number of friends (the last clique may be smaller)."""
        if not self._sizes:
            for clique in self.cliques():
                for user in clique:
                    self._sizes[user] = len(clique) - 1
        return self._sizes

    def cliques(self) -> list[list[int]]:
        size = self.friends + 1
        return [self.users[i : i + size] for i in range(0, len(self.users), size)]


async def load_population(dsn: str, pop: Population) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table("users", records=[(u,) for u in pop.users], columns=("id",))
        rows = [(a, b) for clique in pop.cliques() for a in clique for b in clique if a != b]
        await conn.copy_records_to_table("friendships", records=rows, columns=("user_id", "friend_id"))
    finally:
        await conn.close()


# --------------------------------------------------------------------------- clients


class RawClient(asyncio.Protocol):
    """A minimal WebSocket client: handshake, masked text frames out, frames in, pongs.

    The load generator shares the machine's cores with the server, so it must be cheap: this
    parses frames in ``data_received`` with no task or coroutine per frame (the websockets
    client costs several times more CPU per frame). It masks with a zero key, which servers
    accept (RFC 6455 requires an unpredictable key only to protect proxies).
    """

    def __init__(self, owner: Clients, user: int, request: bytes, opened: asyncio.Future[None]) -> None:
        self.owner = owner
        self.user = user
        self.request = request
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buf
                return
            status = buf[: buf.find(b"\r\n")]
            if b" 101 " not in status and not self.opened.done():
                self.opened.set_exception(RuntimeError(status.decode(errors="replace")))
                return
            self.upgraded = True
            if not self.opened.done():
                self.opened.set_result(None)
            buf = buf[end + 4 :]
        pos, n = 0, len(buf)
        frames = []
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if n - pos < head + length:
                break
            payload = buf[pos + head : pos + head + length]
            pos += head + length
            opcode = b0 & 0x0F
            if opcode == 1:
                frames.append(payload)
            elif opcode == 9:
                self._send(0x8A, payload)  # pong
            elif opcode == 8 and self.transport is not None:
                self.transport.close()
        self.buffer = buf[pos:]
        if frames:
            self.owner.received(self.user, frames)

    def _send(self, first: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = bytes((first, 0x80 | n))
        else:
            header = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(header + b"\0\0\0\0" + payload)  # zero mask: payload unchanged

    def send_text(self, payload: bytes) -> None:
        self._send(0x81, payload)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Clients:
    """N WebSocket clients in this process, counting and timing what their friends send."""

    def __init__(self, port: int, path: str, secret: str, pop: Population | None) -> None:
        self.port = port
        self.path = path
        self.secret = secret
        self.pop = pop
        self.conns: dict[int, RawClient] = {}
        self.inits: set[int] = set()
        self.init_event = asyncio.Event()
        self.sent_at: dict[int, float] = {}  # sequence -> perf_counter at send
        self.latencies_ms: list[float] = []
        self.delivered: dict[int, int] = {}
        self.frames = 0
        self.first_frame = 0.0
        self.last_frame = 0.0
        self.errors: dict[str, int] = {}

    async def connect(self, users: list[int], *, concurrency: int = 200, headers: bool = True) -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)

        async def one(user: int) -> None:
            async with gate:
                auth = f"Authorization: Bearer {mint_token(self.secret, user)}\r\n" if headers else ""
                key = base64.b64encode(os.urandom(16)).decode()
                request = (
                    f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                    f"{auth}\r\n"
                ).encode()
                for attempt in range(5):
                    opened: asyncio.Future[None] = loop.create_future()
                    try:
                        _t, client = await loop.create_connection(
                            partial(RawClient, self, user, request, opened), "127.0.0.1", self.port
                        )
                        await asyncio.wait_for(opened, 60)
                        break
                    except OSError:
                        await asyncio.sleep(0.2 * (attempt + 1))
                else:
                    raise RuntimeError(f"user {user} could not connect")
                self.conns[user] = client

        await asyncio.gather(*(one(u) for u in users))

    def received(self, user: int, frames: list[bytes]) -> None:
        now = time.perf_counter()
        self.frames += len(frames)
        if not self.first_frame:
            self.first_frame = now
        self.last_frame = now
        loads = orjson.loads
        for raw in frames:
            if raw.startswith(b'{"type":"friend_location"'):
                seq = loads(raw)["sent_at"]
                started = self.sent_at.get(seq)
                if started is not None:
                    self.latencies_ms.append((now - started) * 1000)
                    self.delivered[seq] = self.delivered.get(seq, 0) + 1
                continue
            if not raw.startswith(b'{"type":"'):
                continue  # the broadcast ceiling's frames are friend_location too; others are rare
            frame = loads(raw)
            kind = frame.get("type")
            if kind == "init":
                self.inits.add(user)
                if self.pop is not None and len(self.inits) == len(self.pop.users):
                    self.init_event.set()
            elif kind == "error":
                self.errors[frame["code"]] = self.errors.get(frame["code"], 0) + 1

    def send_location(self, user: int, seq: int | None) -> None:
        assert self.pop is not None
        lat, lon = self.pop.centre[user]
        jitter = random.uniform(-0.0003, 0.0003)
        message: dict[str, Any] = {"type": "location", "latitude": lat + jitter, "longitude": lon + jitter}
        if seq is not None:
            message["timestamp"] = seq
            self.sent_at[seq] = time.perf_counter()
        self.conns[user].send_text(orjson.dumps(message))

    async def close(self) -> None:
        for client in self.conns.values():
            client.close()
        self.conns.clear()
        await asyncio.sleep(0.5)


async def server_counters(port: int) -> dict[str, float]:
    """The server's own counters (from /metrics): frames written, replaced, slow closes."""
    import aiohttp

    wanted = {
        "geo_friends_frames_total": "frames",
        "geo_friends_frames_replaced_total": "replaced",
        "geo_friends_slow_closes_total": "slow_closes",
        "geo_friends_deliveries_total": "deliveries",
    }
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            text = await resp.text()
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[wanted[name]] = float(value)
    return found


async def run_load(
    clients: Clients, pop: Population, *, rate: float, seconds: float, seq0: int, server_pid: int
) -> dict[str, Any]:
    """Send ``rate`` updates/s for ``seconds``; wait for the deliveries; report."""
    clients.latencies_ms.clear()
    clients.delivered.clear()
    clients.sent_at.clear()
    order = pop.users[:]
    random.Random(seq0).shuffle(order)
    tick = 0.01
    per_tick = rate * tick
    carry = 0.0
    seq = seq0
    index = 0
    counters0 = await server_counters(clients.port)
    cpu0, wall0 = cpu_s(server_pid), time.perf_counter()
    deadline = wall0 + seconds
    next_tick = wall0
    client_cpu0 = time.process_time()
    while time.perf_counter() < deadline:
        carry += per_tick
        count, carry = int(carry), carry - int(carry)
        for _ in range(count):
            user = order[index % len(order)]
            index += 1
            seq += 1
            clients.send_location(user, seq)
        next_tick += tick
        await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
    sent_wall = time.perf_counter() - wall0
    updates = seq - seq0
    expected = sum(pop.friends_of[order[i % len(order)]] for i in range(index - updates, index))
    # Drain: wait until every delivery arrived or nothing arrives for 2 s.
    last, quiet_since = -1, time.perf_counter()
    while True:
        got = sum(clients.delivered.values())
        if got >= expected:
            break
        if got != last:
            last, quiet_since = got, time.perf_counter()
        elif time.perf_counter() - quiet_since > 2.0:
            break
        await asyncio.sleep(0.05)
    cpu = cpu_s(server_pid) - cpu0
    client_cpu = time.process_time() - client_cpu0
    counters = await server_counters(clients.port)
    got = sum(clients.delivered.values())
    return {
        "rate": rate,
        "seconds": round(sent_wall, 2),
        "updates": updates,
        "updates_per_s": round(updates / sent_wall, 1),
        "deliveries": got,
        "expected": expected,
        "lost": expected - got,
        "deliveries_per_s": round(got / sent_wall, 1),
        "p50_ms": round(pct(clients.latencies_ms, 0.50), 2),
        "p99_ms": round(pct(clients.latencies_ms, 0.99), 2),
        "max_ms": round(max(clients.latencies_ms, default=float("nan")), 2),
        "server_cpu_s": round(cpu, 2),
        "client_cpu_s": round(client_cpu, 2),
        "deliveries_per_server_cpu_s": round(got / cpu, 0) if cpu else None,
        "errors": dict(clients.errors),
        "server": {k: int(v - counters0.get(k, 0)) for k, v in counters.items()},
    }


# --------------------------------------------------------------------------- phases


async def friends_phases(args: argparse.Namespace, settings: Settings, results: dict[str, Any]) -> None:
    dsn = await create_bench_db(settings)
    namespace = f"geo-bench-{secrets.token_hex(4)}"
    pop = Population.build(args.users, args.friends)
    await load_population(dsn, pop)
    port = free_port()
    env = dict(
        os.environ,
        GEO_PG_PRIMARY=dsn,
        GEO_PG_REPLICAS="",
        GEO_REDIS_NAMESPACE=namespace,
        GEO_LOG_LEVEL="warning",
        GEO_WS_MAX_UPDATES_PER_S="5",
    )
    if args.regions == 2:
        env["GEO_REGIONS"] = orjson.dumps(TWO_REGIONS).decode()
    # GEO_BENCH_SERVER: another server command taking the port last (a profiling wrapper, say).
    server = spawn(
        [sys.executable, *(os.environ.get("GEO_BENCH_SERVER", "-m friends_ws --port").split()), str(port)], env
    )
    clients = Clients(port, "/v1/friends/ws", settings.jwt_secret, pop)
    try:
        await wait_port(port)
        await asyncio.sleep(1.0)
        base = rss_kib(server.pid)
        started = time.perf_counter()
        await clients.connect(pop.users)
        connected_s = time.perf_counter() - started
        await asyncio.sleep(2.0)  # every session has loaded its friends and subscribed
        connected = rss_kib(server.pid) - base
        # A first location each (at the clique's point); init answers prove the session is live.
        for i in range(0, len(pop.users), 500):
            for user in pop.users[i : i + 500]:
                clients.send_location(user, None)
            await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(clients.init_event.wait(), 120)
        except TimeoutError:
            raise RuntimeError(
                f"only {len(clients.inits)} of {len(pop.users)} got init; errors {clients.errors}"
            ) from None
        await asyncio.sleep(2.0)  # let the first round of deliveries settle
        used = rss_kib(server.pid) - base
        results["idle"] = {
            "connections": len(pop.users),
            "friends_each": pop.friends,
            "connect_s": round(connected_s, 1),
            "server_rss_base_mib": round(base / 1024, 1),
            "server_rss_growth_mib": round(used / 1024, 1),
            "kib_per_connection": round(used / len(pop.users), 1),
            "kib_per_connection_before_first_location": round(connected / len(pop.users), 1),
        }
        say(f"idle: {results['idle']}")
        results["load"] = await run_load(
            clients, pop, rate=args.rate, seconds=args.duration, seq0=0, server_pid=server.pid
        )
        say(f"load: {results['load']}")
        results["steps"] = []
        seq0 = 10_000_000
        for rate in args.steps:
            step = await run_load(clients, pop, rate=rate, seconds=args.step_duration, seq0=seq0, server_pid=server.pid)
            seq0 += 10_000_000
            results["steps"].append(step)
            say(f"step: {step}")
            if step["lost"] > 0.01 * step["expected"] or step["p99_ms"] > 1000:
                break
        results["idle"]["server_rss_after_load_mib"] = round(rss_kib(server.pid) / 1024, 1)
    finally:
        await clients.close()
        out = stop(server)
        if server.returncode not in (0, -2, 130):
            say(f"server exited with {server.returncode}: {out[-6000:]}")
        await drop_bench_db(settings, dsn)


async def bare_memory(args: argparse.Namespace, settings: Settings, results: dict[str, Any]) -> None:
    port = free_port()
    server = spawn([sys.executable, __file__, "--bare-aiohttp", str(port)])
    clients = Clients(port, "/", settings.jwt_secret, None)
    try:
        await wait_port(port)
        await asyncio.sleep(1.0)
        base = rss_kib(server.pid)
        # The same handshakes (bearer token included) to a server that only holds the sockets.
        await clients.connect(list(range(1, args.users + 1)), headers=True)
        await asyncio.sleep(2.0)
        used = rss_kib(server.pid) - base
        # And after each connection received one location frame, as ours did.
        message = orjson.dumps({"type": "location", "latitude": 37.7749, "longitude": -122.4194})
        for client in clients.conns.values():
            client.send_text(message)
        await asyncio.sleep(2.0)
        after = rss_kib(server.pid) - base
        results["bare_aiohttp_idle"] = {
            "connections": args.users,
            "kib_per_connection": round(used / args.users, 1),
            "kib_per_connection_after_one_message": round(after / args.users, 1),
        }
        say(f"bare aiohttp idle: {results['bare_aiohttp_idle']}")
    finally:
        await clients.close()
        stop(server)


async def broadcast_ceiling(args: argparse.Namespace, settings: Settings, results: dict[str, Any]) -> None:
    port = free_port()
    rounds = args.broadcast_rounds
    server = spawn([sys.executable, __file__, "--bare-broadcast", str(port), str(args.users), str(rounds)])
    clients = Clients(port, "/", settings.jwt_secret, None)
    try:
        await wait_port(port)
        await clients.connect(list(range(args.users)), headers=False)
        total = args.users * rounds
        deadline = time.perf_counter() + 120
        while clients.frames < total and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        span = clients.last_frame - clients.first_frame
        server_report = json.loads((server.stdout.readline() if server.stdout else b"{}") or b"{}")
        results["broadcast_ceiling"] = {
            "connections": args.users,
            "frames": clients.frames,
            "expected": total,
            "frames_per_s": round(clients.frames / span, 0) if span else None,
            "server_cpu_s": round(server_report.get("cpu_s", 0.0), 2),
            "frames_per_server_cpu_s": round(total / server_report["cpu_s"], 0) if server_report.get("cpu_s") else None,
        }
        say(f"bare broadcast: {results['broadcast_ceiling']}")
    finally:
        await clients.close()
        stop(server)


async def subscriber_ceilings(args: argparse.Namespace, settings: Settings, results: dict[str, Any]) -> None:
    """Messages/s one subscriber connection reads under a flood: bare redis-py vs NodeSubscriber."""
    import redis.asyncio as aioredis

    from pubsub.address import NodeAddress
    from pubsub.node import NodeSubscriber

    namespace = f"geo-bench-{secrets.token_hex(4)}"
    channels = [f"{namespace}:flood:{{{i}}}" for i in range(1000)]
    payload = orjson.dumps(
        {
            "t": "loc",
            "u": 1_000_123,
            "lat": 37.774929,
            "lon": -122.419416,
            "at": 1_763_890_000_000,
            "sent": 1_763_890_000_000,
        }
    )
    total = args.flood

    async def flood() -> float:
        publisher = aioredis.Redis.from_url(settings.redis_url)
        started = time.perf_counter()
        try:
            for start in range(0, total, 1000):
                pipe = publisher.pipeline(transaction=False)
                for i in range(start, min(total, start + 1000)):
                    pipe.publish(channels[i % len(channels)], payload)
                await pipe.execute()
        finally:
            await publisher.aclose()
        return time.perf_counter() - started

    async def measure(kind: str) -> dict[str, Any]:
        received = 0
        first = last = 0.0
        done = asyncio.Event()

        def count(_channel: str, _data: bytes) -> None:
            nonlocal received, first, last
            received += 1
            last = time.perf_counter()
            if received == 1:
                first = last
            if received == total:
                done.set()

        cpu0 = time.process_time()
        if kind == "redis-py":
            client = aioredis.Redis.from_url(settings.redis_url)
            ps = client.pubsub()
            await ps.subscribe(*channels)
            for _ in channels:
                await ps.get_message(timeout=5)  # the confirmations

            async def read() -> None:
                while received < total:
                    message = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message["type"] == "message":
                        count(message["channel"], message["data"])
                done.set()

            reader = asyncio.create_task(read())
            publish_s = await flood()
            await asyncio.wait_for(done.wait(), 120)
            await reader
            await ps.aclose()
            await client.aclose()
        else:
            sub = NodeSubscriber(NodeAddress.parse(settings.redis_url), on_message=count)
            sub.start()
            await sub.subscribe(channels)
            publish_s = await flood()
            await asyncio.wait_for(done.wait(), 120)
            await sub.close()
        cpu = time.process_time() - cpu0
        span = last - first
        return {
            "messages": received,
            "messages_per_s": round(received / span, 0) if span else None,
            "publish_s": round(publish_s, 2),
            "process_cpu_s": round(cpu, 2),
        }

    results["subscriber_ceiling"] = {
        "redis_py_hiredis": await measure("redis-py"),
        "pubsub_node_subscriber": await measure("node"),
    }
    say(f"subscribers: {results['subscriber_ceiling']}")


async def cluster_subscribe(settings: Settings, results: dict[str, Any]) -> None:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    from pubsub import ClusterPubSub

    if not settings.redis_cluster:
        return
    namespace = f"geo-bench-{secrets.token_hex(4)}"
    channels = [f"{namespace}:default:ch:{{{2_000_000 + i}}}" for i in range(500)]
    bus = ClusterPubSub(settings.redis_cluster, on_message=lambda c, d: None)
    await bus.start()
    started = time.perf_counter()
    await bus.subscribe(channels)
    ours = time.perf_counter() - started
    await bus.close()
    nodes = [ClusterNode(h, int(p)) for h, p in (n.rsplit(":", 1) for n in settings.redis_cluster)]
    cluster = RedisCluster(startup_nodes=nodes)
    await cluster.initialize()
    ps = cluster.pubsub()
    started = time.perf_counter()
    await ps.ssubscribe(*channels)
    theirs = time.perf_counter() - started
    await ps.aclose()
    await cluster.aclose()
    results["cluster_subscribe_500"] = {
        "batched_per_node_ms": round(ours * 1000, 1),
        "redis_py_cluster_pubsub_ms": round(theirs * 1000, 1),
    }
    say(f"cluster subscribe: {results['cluster_subscribe_500']}")


# --------------------------------------------------------------------------- main


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-aiohttp":
        serve_bare_aiohttp(int(sys.argv[2]))
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-broadcast":
        serve_bare_broadcast(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description="Benchmark the friends WebSocket tier (see the module docstring).")
    parser.add_argument("--users", type=int, default=10_000, help="connections (default 10000)")
    parser.add_argument("--friends", type=int, default=20, help="online friends in range per user (default 20)")
    parser.add_argument("--rate", type=float, default=1000.0, help="location updates per second (default 1000)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds at --rate (default 20)")
    parser.add_argument(
        "--steps",
        type=lambda s: [float(x) for x in s.split(",") if x],
        default=[1500.0, 1750.0, 2000.0, 2500.0],
        help="higher update rates tried after the main run (default 1500,1750,2000,2500)",
    )
    parser.add_argument(
        "--regions", type=int, choices=(1, 2), default=1, help="regions the map is split in (default 1)"
    )
    parser.add_argument("--step-duration", type=float, default=8.0, help="seconds per step (default 8)")
    parser.add_argument(
        "--broadcast-rounds", type=int, default=10, help="frames per connection in the broadcast ceiling"
    )
    parser.add_argument(
        "--flood", type=int, default=200_000, help="messages in the subscriber ceiling (default 200000)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "friends_ws.json", help="JSON results")
    args = parser.parse_args()
    limit = raise_open_files()  # the clients' sockets, as geo-friends raises its own
    if args.users * 1 + 200 > limit:
        parser.error(f"--users {args.users} needs more than the open-file limit ({limit})")
    settings = load_settings()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(),
            "fd_limit": limit,
            "python": sys.version.split()[0],
        },
        "args": {k: v for k, v in vars(args).items() if k != "out"},
    }
    say(f"machine: {results['machine']}")
    _uvloop()

    async def run() -> None:
        await friends_phases(args, settings, results)
        await bare_memory(args, settings, results)
        await broadcast_ceiling(args, settings, results)
        await subscriber_ceilings(args, settings, results)
        await cluster_subscribe(settings, results)

    asyncio.run(run())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    say(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
