"""Instructions per ``friend_location`` delivery in geo-friends, beside a bare aiohttp broadcast.

**geo** (the default): the real app (``friends_ws.app.create_app``, uvloop, a bench database
of its own on the stack's PostgreSQL, the stack's Redis) serves on a loopback port chosen by
the kernel. A peer process connects ``--friends`` F WebSocket clients, the friends of one
user who is not connected here; each sends a first location and waits for ``init``, so every
session follows that user. Then the peer publishes the user's location on their location
channel in Redis, one message at a time, and waits until each of the F sockets has read the
``friend_location`` it brings before publishing the next. Each message is therefore what a
delivery is in production, end to end in this process: the subscriber connection's read and
RESP parsing (``pubsub.node``), the broker's routing, the fan-out's decoding and frame
pattern, each follower's privacy, distance and view decision, the queueing on each link and
the flush, one ``transport.write`` per recipient on a real socket.

**bare** (``--bare``): a bare aiohttp WebSocket server holds F connections from the same
peer and sends a fixed ``friend_location`` frame to each with ``await ws.send_str``, one
round per loop iteration (``await asyncio.sleep(0)`` between rounds): aiohttp's per-frame
work, no pub/sub. (``bench/friends_ws_bench.py``'s ceiling is ``websockets.broadcast``;
this is aiohttp's own send, the tier's framework.)

The peer runs as a child process, which valgrind does not follow (``--trace-children=no``,
its default): its reading, parsing and publishing are not counted, and it reads far faster
than a server under valgrind writes, so no write ever waits for the socket to drain.

Run it under callgrind twice per mode, with no messages and with N, and take
(total(N) - total(0)) / (N x F) instructions per delivery: the set-up (database, handshakes,
sessions, first locations, ``--warm-up`` messages) and the shut-down are in both runs and
cancel out::

    unset PYTHONDONTWRITEBYTECODE
    .venv/bin/python bench/delivery_instructions.py --messages 200   # writes every .pyc first
    for n in 0 5000; do
      PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg-geo-$n.out \\
        .venv/bin/python bench/delivery_instructions.py --messages $n
    done
    grep '^totals:' /tmp/cg-geo-*.out

Both runs must find every module's bytecode cached: a module imported only once messages flow
(the history writer's first flush, say) would otherwise be compiled in the N run alone, and its
compilation counted as the messages' work. ``OPENBLAS_NUM_THREADS=1``: numpy, imported on the
way, would otherwise start OpenBLAS threads whose spinning grows with the run's wall time.

Keepalive pings are pushed out to an hour (``GEO_WS_PING_INTERVAL_S=3600``): the peer's
clients send nothing after their first location, so the default would ping them during the
run. Other loops that wake on a timer (the expiry wheel, token lifetimes, the history
writer, the subscriber's probe) still run: their cost grows with the run's wall time, not
with N; the figures' repeatability bounds it.

By stage: CPython 3.11 runs a Python function called from Python in the caller's C frame,
so callgrind shows C functions only (uvloop's read callback and ``Handle._run``, hiredis,
orjson, libm, ``round``, the ``write`` call). ``--split`` also routes each function that
bounds a stage through a C function of its own (see :func:`split_stages`), whose inclusive
count is then that stage's; the wrappers add instructions of their own, so take the plain
run for the total and the split run for the shares.

**updates** (``--updates``): the other half of the tier's work, one location update from a
client. The peer connects the publishing user itself (no followers), subscribes to their
location channel in Redis, and sends N ``location`` frames one at a time, each after the
publish of the one before it arrived: the frame's read and parse, the rate limits, history,
the location cache's ``SET`` and the ``PUBLISH`` (both replies read and parsed here), and the
user's own view. Take (total(N) - total(0)) / N instructions per update.

Without valgrind it prints wall time per delivery. ``PYTHONPATH=<another checkout>``
measures that checkout's code.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import os
import secrets
import selectors
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: The publishing user (not connected here); the F followers come after it.
PUBLISHER = 1_000_000
#: Where the clique stands, degrees (followers within ~300 m, well inside the default radius).
CENTRE = (37.774929, -122.419416)
#: The bare broadcast's frame: a ``friend_location`` as the tier sends it.
BARE_FRAME = (
    '{"type":"friend_location","user_id":1000123,"latitude":37.774929,"longitude":-122.419416,'
    '"distance_m":1234.5,"updated_at":1763890000000,"sent_at":1763890000000}'
)
#: The first frame bytes of a ``friend_location`` (what the peer counts).
FRIEND_LOCATION = b'{"type":"friend_location"'


# --------------------------------------------------------------------------- the peer (not measured)


class PeerSocket:
    """One blocking WebSocket client of the peer: handshake, masked frames out, frames in."""

    def __init__(self, port: int, path: str, token: str | None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buffer = b""
        self.received = 0
        self.inits = 0
        self.closed = False
        key = base64.b64encode(os.urandom(16)).decode()
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{auth}\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection during the handshake")
            self.buffer += chunk
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(head.decode(errors="replace"))
        self.sock.setblocking(False)
        # Frames that came with the handshake's answer (all of them, and the close, when this
        # process was slow to read): no later read would see them.
        self.buffer = b""
        self.parse(rest)

    def send(self, opcode: int, payload: bytes) -> None:
        """A masked frame (a zero mask: the payload goes as it is)."""
        n = len(payload)
        header = bytes((0x80 | opcode, 0x80 | n)) if n < 126 else bytes((0x80 | opcode, 0xFE)) + n.to_bytes(2, "big")
        self.sock.setblocking(True)
        self.sock.sendall(header + b"\0\0\0\0" + payload)
        self.sock.setblocking(False)

    def read(self) -> None:
        """Whatever the socket holds: count text frames, answer pings and closes."""
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except ConnectionResetError:  # the server closed first, with our close reply unread
            chunk = b""
        if not chunk:
            self.closed = True
            return
        self.parse(chunk)

    def parse(self, chunk: bytes) -> None:
        """Count the text frames of ``chunk`` after what was buffered; answer pings and closes."""
        buf, pos = self.buffer + chunk, 0
        while len(buf) - pos >= 2:
            opcode, length, head = buf[pos] & 0x0F, buf[pos + 1] & 0x7F, 2
            if length == 126:
                if len(buf) - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if len(buf) - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if len(buf) - pos < head + length:
                break
            payload = buf[pos + head : pos + head + length]
            pos += head + length
            if opcode == 1:
                if payload.startswith(FRIEND_LOCATION):
                    self.received += 1
                elif payload.startswith(b'{"type":"init"'):
                    self.inits += 1
            elif opcode == 9:
                self.send(0xA, payload)
            elif opcode == 8:
                if not self.closed:
                    self.send(0x8, payload[:2])
                self.closed = True
        self.buffer = buf[pos:]


def wait_all(conns: list[PeerSocket], done: Callable[[PeerSocket], bool], timeout_s: float = 600.0) -> None:
    """Read every socket until ``done(conn)`` holds for all of them."""
    with selectors.DefaultSelector() as sel:
        for conn in conns:
            sel.register(conn.sock, selectors.EVENT_READ, conn)
        deadline = time.monotonic() + timeout_s
        pending = [c for c in conns if not done(c)]
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(pending)} of {len(conns)} sockets still waiting after {timeout_s:.0f} s")
            for key, _ in sel.select(1.0):
                key.data.read()
            pending = [c for c in pending if not done(c)]


def received(count: int, conn: PeerSocket) -> bool:
    """Whether a socket has read ``count`` ``friend_location`` frames."""
    return conn.received >= count


def peer(argv: list[str]) -> int:
    """The other side: the clients (and, for geo, the publisher). Runs natively, unmeasured."""
    ap = argparse.ArgumentParser(prog="delivery_instructions.py --peer")
    ap.add_argument("mode", choices=("geo", "bare", "updates"))
    ap.add_argument("port", type=int)
    ap.add_argument("friends", type=int)
    ap.add_argument("total", type=int, help="messages (geo) or rounds (bare), warm-up included")
    ap.add_argument("--secret", default="")
    ap.add_argument("--redis", default="")
    ap.add_argument("--channel", default="")
    ap.add_argument("--idle", type=float, default=0.0)
    args = ap.parse_args(argv)
    if args.mode == "bare":
        conns = [PeerSocket(args.port, "/", None) for _ in range(args.friends)]
        wait_all(conns, lambda c: c.closed)
        got = sum(c.received for c in conns)
        if got != args.total * args.friends:
            print(f"peer: {got} frames, expected {args.total * args.friends}", file=sys.stderr)
            return 1
        return 0

    import orjson
    import redis

    from geo_common.presence import Location, encode_location
    from geo_common.tokens import mint_token

    if args.mode == "updates":
        return send_updates(args.port, args.total, args.secret, args.redis, args.channel, args.idle)
    followers = range(PUBLISHER + 1, PUBLISHER + 1 + args.friends)
    conns = []
    for i, user in enumerate(followers):
        conn = PeerSocket(args.port, "/v1/friends/ws", mint_token(args.secret, user))
        lat, lon = CENTRE[0] + 0.0001 * (i % 10), CENTRE[1] + 0.0001 * (i // 10)
        conn.send(0x1, orjson.dumps({"type": "location", "latitude": lat, "longitude": lon}))
        conns.append(conn)
    wait_all(conns, lambda c: c.inits > 0)
    publisher = redis.Redis.from_url(args.redis)
    at = 1_763_890_000_000
    for n in range(1, args.total + 1):
        # The publisher walks a little around the clique's point: every follower keeps it in view.
        # As a connected user publishes: live, with their radius (their friends' pace).
        point = (CENTRE[0] + 0.00001 * (n % 97), CENTRE[1] - 0.00001 * (n % 89))
        location = Location(PUBLISHER, *point, at + n, at + n, live=True, radius_m=8047.0)
        publisher.publish(args.channel, encode_location(location))
        wait_all(conns, functools.partial(received, n))
    publisher.close()
    time.sleep(args.idle)
    for conn in conns:
        conn.send(0x8, (1000).to_bytes(2, "big"))
    wait_all(conns, lambda c: c.closed)
    for conn in conns:
        conn.sock.close()
    return 0


def send_updates(port: int, total: int, secret: str, redis_url: str, channel: str, idle_s: float) -> int:
    """The publishing user's own client: ``total`` location frames, each sent once the
    publish of the one before it has come back on its location channel."""
    import orjson
    import redis

    from geo_common.tokens import mint_token

    conn = PeerSocket(port, "/v1/friends/ws", mint_token(secret, PUBLISHER))
    listener = redis.Redis.from_url(redis_url).pubsub()
    listener.subscribe(channel)
    messages = (m for m in listener.listen() if m["type"] == "message")  # type: ignore[no-untyped-call]
    conn.send(0x1, orjson.dumps({"type": "location", "latitude": CENTRE[0], "longitude": CENTRE[1]}))
    wait_all([conn], lambda c: c.inits > 0)
    heard = 0
    for n in range(1, total + 2):  # the first location's publish, then one per update
        while heard < n:
            next(messages)
            heard += 1
        if n <= total:
            lat, lon = CENTRE[0] + 0.00001 * (n % 97), CENTRE[1] - 0.00001 * (n % 89)
            conn.send(0x1, orjson.dumps({"type": "location", "latitude": lat, "longitude": lon}))
    listener.close()
    time.sleep(idle_s)
    conn.send(0x8, (1000).to_bytes(2, "big"))
    wait_all([conn], lambda c: c.closed)
    conn.sock.close()
    return 0


# --------------------------------------------------------------------------- the measured server


async def run_peer(mode: str, port: int, friends: int, total: int, *extra: str) -> None:
    """Start the peer and wait for it to finish (it fails loudly if a frame is missing)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--peer", mode, str(port), str(friends), str(total), *extra
    )
    if await proc.wait() != 0:
        raise SystemExit(f"the peer failed ({proc.returncode})")


def split_stages() -> None:
    """Route the functions of each stage through a C function of its own, for callgrind.

    On CPython 3.11 a Python function calling another runs in the same C frame of the
    interpreter, so callgrind sees no Python function, only C ones. Here each function that
    bounds a stage is replaced, in this process only, by a wrapper that calls it through a
    distinct C function of the standard library, which the delivery path uses nowhere else:
    that C function's inclusive count is then the stage's. The wrappers cost instructions of
    their own (the split run's total less the plain run's).
    """
    import operator
    from itertools import starmap

    from friends_ws import fanout, following, link

    def via_starmap(f: Any) -> Any:
        return lambda *a: next(starmap(f, (a,)))

    def via_map(f: Any) -> Any:
        return lambda a: next(map(f, (a,)))

    def via_call_tracing(f: Any) -> Any:
        return lambda *a: sys.call_tracing(f, a)

    def via_operator_call(f: Any) -> Any:
        return lambda *a: operator.call(f, *a)

    def via_reduce(f: Any) -> Any:
        return lambda *a: functools.reduce(lambda _, t: f(*t), (a,), None)

    def via_partial(f: Any) -> Any:
        p = functools.partial(f)
        return lambda *a: p(*a)

    def via_filter(f: Any) -> Any:
        def call(*a: Any) -> Any:
            box: list[Any] = []

            def keep(t: tuple[Any, ...]) -> bool:
                box.append(f(*t))
                return True

            next(filter(keep, (a,)))
            return box[0]

        return call

    def via_sorted(f: Any) -> Any:
        def call(*a: Any) -> Any:
            box: list[Any] = []

            def key(t: tuple[Any, ...]) -> int:
                box.append(f(*t))
                return 0

            sorted((a,), key=key)
            return box[0]

        return call

    # The C function that names each stage in callgrind_annotate's inclusive counts.
    for owner, name, via in (
        (fanout.Fanout, "on_message", via_starmap),  # starmap_next
        (fanout, "decode_channel_message", via_map),  # map_next
        (fanout, "friend_location_pattern", via_call_tracing),  # sys_call_tracing
        (following, "haversine_m", via_operator_call),  # _operator_call
        (following, "complete_friend_location", via_reduce),  # functools_reduce
        (link.Link, "send_friend", via_partial),  # partial_vectorcall
        (link.Link, "flush", via_filter),  # filter_next
        (link, "text_frames", via_sorted),  # list_sort_impl
    ):
        setattr(owner, name, via(getattr(owner, name)))


async def geo(
    friends: int, messages: int, warm_up: int, *, updates: bool = False, idle_s: float = 0.0
) -> tuple[int, float]:
    """Serve the real app and let the peer deliver (or, ``updates``, send locations);
    returns (deliveries or updates counted, seconds)."""
    import asyncpg
    from aiohttp import web

    from bench_db import drop_database, new_database  # bench/, the script's folder
    from friends_ws.app import create_app
    from friends_ws.keys import hub_key, regions_key
    from friends_ws.site import FriendsSite
    from geo_common.presence import location_channel
    from geo_common.settings import load_settings
    from geo_common.tuning import ProcessTuning

    base = load_settings()
    name = f"geo_delivery_{secrets.token_hex(4)}"
    # No keepalive pings during the run, and no rate limit on one user's updates.
    settings = replace(await new_database(base, name), ws_ping_interval_s=3600.0, ws_max_updates_per_s=10_000.0)
    try:
        conn = await asyncpg.connect(settings.pg_primary)
        try:
            users = list(range(PUBLISHER, PUBLISHER + 1 + friends))
            await conn.copy_records_to_table("users", records=[(u,) for u in users], columns=("id",))
            pairs = [p for u in users[1:] for p in ((PUBLISHER, u), (u, PUBLISHER))]
            await conn.copy_records_to_table("friendships", records=pairs, columns=("user_id", "friend_id"))
        finally:
            await conn.close()
        app = create_app(settings)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = FriendsSite(runner, "127.0.0.1", 0)  # as geo-friends serves it
        await site.start()
        # As geo-friends does once the app has started (friends_ws.__main__).
        ProcessTuning(settings.process_tuning).at_server_start()
        port = site.port
        channel = location_channel(settings.redis_namespace, app[regions_key].default.name, PUBLISHER)
        stats = app[hub_key].stats
        before = stats.updates if updates else stats.deliveries
        started = time.perf_counter()
        try:
            await run_peer(
                "updates" if updates else "geo",
                port,
                0 if updates else friends,
                warm_up + messages,
                f"--secret={settings.jwt_secret}",
                f"--redis={settings.redis_url}",
                f"--channel={channel}",
                f"--idle={idle_s}",
            )
            seconds = time.perf_counter() - started
            deliveries = (stats.updates if updates else stats.deliveries) - before
        finally:
            await runner.cleanup()
    finally:
        await drop_database(base, name)
    return deliveries, seconds


async def bare(friends: int, rounds: int, warm_up: int) -> tuple[int, float]:
    """A bare aiohttp WebSocket server sending a fixed frame to F connections per round."""
    from aiohttp import web

    conns: list[web.WebSocketResponse] = []
    ready = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4096, compress=False)
        await ws.prepare(request)
        conns.append(ws)
        if len(conns) == friends:
            ready.set()
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    peer_done = asyncio.get_running_loop().create_task(run_peer("bare", port, friends, warm_up + rounds))
    sent = 0
    try:
        await ready.wait()
        for _ in range(warm_up):
            for ws in conns:
                await ws.send_str(BARE_FRAME)
            await asyncio.sleep(0)
        started = time.perf_counter()
        for _ in range(rounds):
            for ws in conns:
                await ws.send_str(BARE_FRAME)
                sent += 1
            await asyncio.sleep(0)
        seconds = time.perf_counter() - started
        for ws in conns:
            await ws.close()
        await peer_done
    finally:
        await runner.cleanup()
    return sent, seconds


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--peer"]:
        return peer(args_in[1:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2_000, help="pub/sub messages (bare: rounds) measured")
    ap.add_argument("--friends", type=int, default=20, help="recipients of each message (default 20)")
    ap.add_argument("--warm-up", type=int, default=50, help="messages before the measured ones (default 50)")
    ap.add_argument("--bare", action="store_true", help="a bare aiohttp broadcast instead of geo-friends")
    ap.add_argument("--split", action="store_true", help="geo: each stage through a C function of its own")
    ap.add_argument("--updates", action="store_true", help="one client's location updates instead of deliveries")
    ap.add_argument(
        "--idle", type=float, default=0.0, help="geo: seconds the clients stay connected, silent, after the messages"
    )
    args = ap.parse_args(args_in)
    if args.split:
        split_stages()
    import uvloop  # as geo-friends runs (geo_common.serve)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.bare:
        sent, seconds = uvloop.run(bare(args.friends, args.messages, args.warm_up))
        expected, what = args.messages * args.friends, "frames (bare aiohttp send_str)"
    elif args.updates:
        args.friends = 1  # the per-item figures below count one update each
        sent, seconds = uvloop.run(geo(0, args.messages, args.warm_up, updates=True, idle_s=args.idle))
        expected, what = 1 + args.warm_up + args.messages, "location updates (geo-friends)"
    else:
        sent, seconds = uvloop.run(geo(args.friends, args.messages, args.warm_up, idle_s=args.idle))
        expected, what = (args.warm_up + args.messages) * args.friends, "deliveries (geo-friends)"
    if sent != expected:
        print(f"{sent} {what}, expected {expected}", file=sys.stderr)
        return 1
    measured = args.messages * args.friends
    per = f", {seconds / measured * 1e6:.2f} µs each with the peer's waits" if measured and not args.bare else ""
    if measured and args.bare:
        per = f", {seconds / measured * 1e6:.2f} µs each"
    recipients = "" if args.updates else f", {args.friends} recipients per message"
    print(f"{measured} measured {what}{recipients}{per}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
