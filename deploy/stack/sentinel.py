"""A Redis that survives its primary: a primary, a replica and three Redis Sentinels.

The shape the Kubernetes manifests give the location cache and pub/sub (``geo-redis-locations``),
on loopback ports: the replica follows the primary (``replicaof``), and the sentinels, two of
three agreeing, promote it when the primary has not answered for ``down_after_ms``. Clients
name the set as ``redis+sentinel://127.0.0.1:<s1>,127.0.0.1:<s2>,127.0.0.1:<s3>/<name>``
(:mod:`pubsub.sentinel`). Sentinels are ``redis-server --sentinel`` (Debian's
``redis-sentinel`` is the same program), each with a configuration file of its own, which it
rewrites as the set changes. Nothing is persisted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deploy.stack import redis_nodes
from deploy.stack.binaries import Binaries
from deploy.stack.procs import StackError, port_is_free, run, wait_for
from deploy.stack.redis_nodes import RedisNode

#: The primary's name the sentinels monitor it under.
PRIMARY_NAME = "geo-locations"


@dataclass(frozen=True)
class SentinelSet:
    """A primary, its replica and three sentinels.

    Attributes:
        directory: the folder of every node's files (one sub-folder each).
        ports: the primary's, the replica's, then the three sentinels' ports.
        down_after_ms: a primary silent this long is down for a sentinel (two must agree).
        failover_timeout_ms: Sentinel's ``failover-timeout`` (a stuck failover is retried after it).
    """

    directory: Path
    ports: tuple[int, int, int, int, int]
    down_after_ms: int = 1000
    failover_timeout_ms: int = 5000

    @property
    def primary(self) -> RedisNode:
        """The node that is primary when the set starts (a failover changes that)."""
        return RedisNode("locations-a", self.directory / "a", self.ports[0])

    @property
    def replica(self) -> RedisNode:
        return RedisNode("locations-b", self.directory / "b", self.ports[1])

    @property
    def sentinels(self) -> list[RedisNode]:
        return [RedisNode(f"sentinel-{i}", self.directory / f"s{i}", p) for i, p in enumerate(self.ports[2:], 1)]

    @property
    def url(self) -> str:
        """The URL clients are given (``GEO_REDIS_URL``)."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{PRIMARY_NAME}/0"


def up(bins: Binaries, nodes: SentinelSet) -> None:
    """Start what is not running: the primary, its replica (synchronised), the sentinels.

    After a failover the primary is the node the sentinels (or the node itself) say: a node
    started again, the old primary among them, becomes its replica, never the other way.
    """
    primary, replica = (nodes.primary, nodes.replica)
    if current_primary(bins, nodes) == nodes.replica.port:
        primary, replica = replica, primary
    redis_nodes.start(bins, primary)
    redis_nodes.start(bins, replica)
    if redis_nodes.cli(bins, replica, "role").splitlines()[0] != "slave":
        redis_nodes.cli(bins, replica, "replicaof", "127.0.0.1", str(primary.port))
    wait_for(
        lambda: "master_link_status:up" in redis_nodes.cli(bins, replica, "info", "replication", check=False),
        f"the replica on port {replica.port} to follow its primary",
        timeout=60,
    )
    for sentinel in nodes.sentinels:
        _start_sentinel(bins, nodes, sentinel, primary.port)
    wait_for(
        lambda: all(primary_port(bins, s) is not None and _knows_peers(bins, s) for s in nodes.sentinels),
        "the sentinels to find their primary and each other",
        timeout=30,
        interval=0.2,
    )


def primary_port(bins: Binaries, sentinel: RedisNode) -> int | None:
    """The primary's port as a sentinel says; None when it cannot say."""
    out = redis_nodes.cli(bins, sentinel, "sentinel", "get-master-addr-by-name", PRIMARY_NAME, check=False)
    lines = out.splitlines()
    return int(lines[1]) if len(lines) == 2 and lines[1].isdigit() else None


def current_primary(bins: Binaries, nodes: SentinelSet) -> int | None:
    """The primary's port: as a running sentinel says, else the running node that is a
    primary; None when nothing of the set runs."""
    for sentinel in nodes.sentinels:
        if sentinel.running() and (port := primary_port(bins, sentinel)) is not None:
            return port
    for node in (nodes.primary, nodes.replica):
        if node.running() and role(bins, node) == "master":
            return node.port
    return None


def role(bins: Binaries, node: RedisNode) -> str:
    """``master`` or ``slave`` (Redis's words), or empty when the node does not answer."""
    lines = redis_nodes.cli(bins, node, "role", check=False).splitlines()
    return lines[0] if lines else ""


def describe(
    bins: Binaries | None, nodes: SentinelSet, which: list[RedisNode]
) -> list[tuple[str, int, int | None, str]]:
    """``which`` of the set's processes for ``geo-stack status``: name, port, pid and what each
    is now, a Redis's role or the primary a sentinel names (without ``bins``: whether it runs)."""
    rows = []
    for node in which:
        pid = node.pid()
        if pid is None or bins is None:
            detail = "not running" if pid is None else "running"
        elif node in nodes.sentinels:
            port = primary_port(bins, node)
            detail = f"sentinel, {PRIMARY_NAME} primary on :{port}" if port else "sentinel, no primary"
        else:
            detail = {"master": "locations primary", "slave": "locations replica"}.get(role(bins, node), "no answer")
        rows.append((node.name, node.port, pid, detail))
    return rows


def stop(nodes: SentinelSet) -> list[str]:
    """Stop every node that runs (sentinels first: no failover while stopping); their names."""
    stopped = []
    for node in [*nodes.sentinels, nodes.replica, nodes.primary]:
        if redis_nodes.stop(node):
            stopped.append(f"redis-{node.name}")
    return stopped


def _knows_peers(bins: Binaries, sentinel: RedisNode) -> bool:
    out = redis_nodes.cli(bins, sentinel, "sentinel", "sentinels", PRIMARY_NAME, check=False)
    return out.count("name") >= 2  # the two other sentinels, found through the primary


def _start_sentinel(bins: Binaries, nodes: SentinelSet, sentinel: RedisNode, primary_at: int) -> None:
    if sentinel.running():
        return
    if not port_is_free(sentinel.port):
        raise StackError(f"port {sentinel.port} for Redis {sentinel.name} is taken by another process")
    sentinel.directory.mkdir(parents=True, exist_ok=True)
    config = sentinel.directory / "sentinel.conf"
    # Sentinel rewrites this file as it learns the set: it must be its own, and writable.
    config.write_text(
        "".join(
            f"{line}\n"
            for line in (
                f"port {sentinel.port}",
                "bind 127.0.0.1",
                f"sentinel monitor {PRIMARY_NAME} 127.0.0.1 {primary_at} 2",
                f"sentinel down-after-milliseconds {PRIMARY_NAME} {nodes.down_after_ms}",
                f"sentinel failover-timeout {PRIMARY_NAME} {nodes.failover_timeout_ms}",
                f"sentinel parallel-syncs {PRIMARY_NAME} 1",
            )
        )
    )
    run(
        [
            bins.redis_server,
            config.resolve(),
            "--sentinel",
            "--daemonize",
            "yes",
            "--pidfile",
            str(sentinel.pidfile.resolve()),
            "--logfile",
            str((sentinel.directory / "redis.log").resolve()),
            "--dir",
            str(sentinel.directory.resolve()),
        ],
        timeout=30,
    )
    wait_for(
        lambda: redis_nodes.cli(bins, sentinel, "ping", check=False) == "PONG",
        f"Redis Sentinel {sentinel.name} on port {sentinel.port}",
        timeout=15,
    )
