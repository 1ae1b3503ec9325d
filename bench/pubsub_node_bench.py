"""What one Redis node costs per pub/sub message and per user, driven by the project's backends.

    .venv/bin/python bench/pubsub_node_bench.py                    # the stack's Redis, ~1 minute
    .venv/bin/python bench/pubsub_node_bench.py --backend cluster  # its 3-node cluster (sharded)

The inputs of docs/capacity.md that no other benchmark gives:

1. **Memory per subscription**: ``--subscribers`` subscriber connections (``create_pubsub``
   backends, one ``NodeSubscriber`` per node each) subscribe ``--channels`` location channels,
   each channel on ``--fanout`` of them; Redis's ``used_memory`` growth per (channel,
   connection) pair, and this process's RSS growth per subscribed channel.
2. **Memory per cached location** (``redis`` backend): ``--cache-keys`` keys written as
   ``geo-friends`` writes them (``location_key``, ``encode_cached``, ``SET .. EX``).
3. **Messages per node**: for each rate of ``--rates``, open-loop ``PUBLISH`` (``SPUBLISH``
   for the cluster) of real location messages (``encode_location``) from ``--publishers``
   backends for ``--duration`` seconds; every message is counted on arrival. Per node: the
   Redis main thread's CPU (``used_cpu_*_main_thread`` from ``INFO cpu``), so **deliveries
   per Redis CPU-second** is the node's capacity at one busy core, the figure that scales
   with nodes. ``others`` counts commands the node ran that were not the bench's (the stack
   is shared).

Publishers and subscribers are one Python process on the same cores as Redis, so the
messages per second reached here are this process's; the node's capacity is read from its
CPU per message, not from the rate. Results go to stdout and ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from geo_common.presence import Location, encode_cached, encode_location, location_channel, location_key  # noqa: E402
from geo_common.settings import load_settings  # noqa: E402
from pubsub import PubSub, create_pubsub, open_redis  # noqa: E402
from pubsub.client import RedisClient  # noqa: E402

#: How often the open-loop sender wakes, seconds (what is due is sent at once).
TICK_S = 0.001


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def say(text: str) -> None:
    print(text, flush=True)


def node_urls(backend: str, settings: Any) -> list[str]:
    """The Redis nodes whose CPU and memory are read (the cluster's seeds are its primaries)."""
    if backend == "redis":
        return [settings.redis_url]
    return [n if "://" in n else f"redis://{n}" for n in settings.redis_cluster]


class Nodes:
    """``INFO`` readings of every node, for deltas over a phase."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.clients = [open_redis(u) for u in urls]

    async def read(self) -> list[dict[str, float]]:
        out = []
        for client in self.clients:
            info = await client.info("all")
            pub = info.get("cmdstat_publish", {})
            spub = info.get("cmdstat_spublish", {})
            out.append(
                {
                    "cpu_s": float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"]),
                    "commands": float(info["total_commands_processed"]),
                    "publish_calls": float(pub.get("calls", 0)) + float(spub.get("calls", 0)),
                    "publish_usec": float(pub.get("usec", 0)) + float(spub.get("usec", 0)),
                    "used_memory": float(info["used_memory"]),
                }
            )
        return out

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


def delta(after: list[dict[str, float]], before: list[dict[str, float]], key: str) -> list[float]:
    return [a[key] - b[key] for a, b in zip(after, before)]


async def cache_memory(settings: Any, namespace: str, keys: int) -> dict[str, Any]:
    """Redis memory per cached location, written as ``friends_ws.cache.LocationCache.store``."""
    nodes = Nodes([settings.redis_url])
    client = RedisClient.from_url(settings.redis_url)
    try:
        before = (await nodes.read())[0]["used_memory"]
        first = 10_000_000
        for start in range(0, keys, 2000):
            await asyncio.gather(
                *(
                    client.execute(
                        "SET",
                        location_key(namespace, "default", first + i),
                        encode_cached(
                            Location(
                                first + i,
                                37.774929,
                                -122.419416,
                                1_763_890_000_456,
                                1_763_890_000_120,
                                secrets.token_hex(8),
                            )
                        ),
                        "EX",
                        300,
                    )
                    for i in range(start, min(keys, start + 2000))
                )
            )
        after = (await nodes.read())[0]["used_memory"]
        one = await client.execute("MEMORY", "USAGE", location_key(namespace, "default", first))
        for start in range(0, keys, 2000):
            await client.execute(
                "UNLINK",
                *[location_key(namespace, "default", first + i) for i in range(start, min(keys, start + 2000))],
            )
    finally:
        await client.close()
        await nodes.close()
    return {"keys": keys, "bytes_per_key_used_memory": round((after - before) / keys, 1), "memory_usage_one_key": one}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings()
    namespace = f"g{secrets.token_hex(2)}"  # as long as a short GEO_REDIS_NAMESPACE
    urls = node_urls(args.backend, settings)
    seeds = [settings.redis_url] if args.backend == "redis" else list(settings.redis_cluster)
    nodes = Nodes(urls)
    results: dict[str, Any] = {
        "backend": args.backend,
        "nodes": urls,
        "loadavg": os.getloadavg(),
        "args": {k: v for k, v in vars(args).items() if k != "out"},
    }
    received = 0

    def count(_channel: str, _data: bytes) -> None:
        nonlocal received
        received += 1

    subscribers: list[PubSub] = [create_pubsub(args.backend, seeds, on_message=count) for _ in range(args.subscribers)]
    publishers: list[PubSub] = [create_pubsub(args.backend, seeds, on_message=count) for _ in range(args.publishers)]
    try:
        for bus in subscribers + publishers:
            await bus.start()
        # 1. Memory per subscription.
        # The channel names count: a process holds each one it subscribed.
        rss0, info0 = rss_bytes(), await nodes.read()
        channels = [location_channel(namespace, "default", 10_000_000 + i) for i in range(args.channels)]
        for i, bus in enumerate(subscribers):
            mine = [c for n, c in enumerate(channels) if (n - i) % args.subscribers < args.fanout]
            await bus.subscribe(mine)
        await asyncio.sleep(0.5)
        rss1, info1 = rss_bytes(), await nodes.read()
        pairs = args.channels * args.fanout
        results["subscriptions"] = {
            "pairs": pairs,
            "redis_bytes_per_pair": round(sum(delta(info1, info0, "used_memory")) / pairs, 1),
            "process_bytes_per_subscribed_channel": round((rss1 - rss0) / pairs, 1),
        }
        say(f"subscriptions: {results['subscriptions']}")
        if args.backend == "redis" and args.cache_keys:
            results["cache"] = await cache_memory(settings, namespace, args.cache_keys)
            say(f"location cache: {results['cache']}")
        # 2. Messages per node, each rate in --rounds rounds.
        payload = encode_location(Location(10_000_123, 37.774929, -122.419416, 1_763_890_000_456, 1_763_890_000_120))
        runs = []
        for round_no in range(args.rounds):
            for rate in args.rates:
                runs.append(await load(args, rate, channels, publishers, payload, nodes, lambda: received))
                runs[-1]["round"] = round_no + 1
                say(json.dumps(runs[-1]))
        results["runs"] = runs
        results["summary"] = summarise(runs, args.rates)
    finally:
        for bus in subscribers + publishers:
            await bus.close()
        await nodes.close()
    return results


async def load(
    args: argparse.Namespace,
    rate: float,
    channels: list[str],
    publishers: list[PubSub],
    payload: bytes,
    nodes: Nodes,
    received: Any,
) -> dict[str, Any]:
    """Publish at ``rate`` for ``args.duration`` seconds; Redis CPU and deliveries over the run."""
    sent = failed = 0
    pending: set[asyncio.Task[Any]] = set()

    async def send(batch: list[tuple[PubSub, str]]) -> None:
        nonlocal failed
        outcomes = await asyncio.gather(*(bus.publish(ch, payload) for bus, ch in batch), return_exceptions=True)
        failed += sum(1 for o in outcomes if isinstance(o, BaseException))

    await asyncio.sleep(0.3)
    got0, info0, cpu0 = received(), await nodes.read(), time.process_time()
    loop = asyncio.get_running_loop()
    start = loop.time()
    while (now := loop.time()) < start + args.duration:
        due = int((now - start) * rate) - sent
        if due > 0:
            batch = [
                (publishers[(sent + k) % len(publishers)], channels[(sent + k) * 7919 % len(channels)])
                for k in range(due)
            ]
            task = loop.create_task(send(batch))
            pending.add(task)
            task.add_done_callback(pending.discard)
            sent += due
        await asyncio.sleep(TICK_S)
    if pending:
        await asyncio.wait(pending)
    expected = sent * args.fanout
    deadline = loop.time() + 3.0
    while received() - got0 < expected and loop.time() < deadline:
        await asyncio.sleep(0.05)
    elapsed = loop.time() - start
    info1, cpu1 = await nodes.read(), time.process_time()
    got = received() - got0
    redis_cpu = delta(info1, info0, "cpu_s")
    ours = sum(delta(info1, info0, "publish_calls"))
    others = sum(delta(info1, info0, "commands")) - ours - 2 * len(nodes.urls)
    usec = sum(delta(info1, info0, "publish_usec"))
    total_cpu = sum(redis_cpu)
    return {
        "rate": rate,
        "published_per_s": round(sent / args.duration),
        "deliveries_per_s": round(got / args.duration),
        "lost": expected - got,
        "failed_publishes": failed,
        "redis_cpu_share_per_node": [round(c / elapsed, 3) for c in redis_cpu],
        "redis_cpu_us_per_delivery": round(total_cpu / max(got, 1) * 1e6, 2),
        "deliveries_per_redis_cpu_s": round(got / total_cpu) if total_cpu else None,
        "publish_usec_per_call": round(usec / ours, 2) if ours else None,
        "others_commands": int(others),
        "bench_process_cpu_share": round((cpu1 - cpu0) / elapsed, 3),
    }


def summarise(runs: list[dict[str, Any]], rates: list[float]) -> list[dict[str, Any]]:
    out = []
    for rate in rates:
        mine = [r for r in runs if r["rate"] == rate]
        out.append(
            {
                "rate": rate,
                "deliveries_per_s": statistics.median(r["deliveries_per_s"] for r in mine),
                "lost": sum(r["lost"] for r in mine),
                "redis_cpu_us_per_delivery": statistics.median(r["redis_cpu_us_per_delivery"] for r in mine),
                "deliveries_per_redis_cpu_s": statistics.median(r["deliveries_per_redis_cpu_s"] or 0 for r in mine),
                "publish_usec_per_call": statistics.median(r["publish_usec_per_call"] or 0 for r in mine),
                "others_commands": max(r["others_commands"] for r in mine),
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="Redis pub/sub cost per node (see the module docstring).")
    parser.add_argument("--backend", choices=("redis", "cluster"), default="redis", help="default redis")
    parser.add_argument(
        "--rates",
        type=lambda s: [float(x) for x in s.split(",") if x],
        default=[10000.0, 30000.0],
        help="publishes per second, comma-separated (default 10000,30000)",
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per rate (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the rates (default 3)")
    parser.add_argument("--fanout", type=int, default=1, help="subscriber connections per channel (default 1)")
    parser.add_argument("--subscribers", type=int, default=16, help="subscriber backends (default 16)")
    parser.add_argument("--publishers", type=int, default=16, help="publishing backends (default 16)")
    parser.add_argument("--channels", type=int, default=100_000, help="location channels (default 100000)")
    parser.add_argument("--cache-keys", type=int, default=100_000, help="cached locations written (default 100000)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "pubsub_node.json", help="JSON results")
    args = parser.parse_args()
    if not 1 <= args.fanout <= args.subscribers:
        parser.error("--fanout must be between 1 and --subscribers")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    results = asyncio.run(run(args))
    for row in results["summary"]:
        say(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    say(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
