"""The PostgreSQL primary and its streaming replica (pg_basebackup -R), on loopback only."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.binaries import Binaries
from deploy.stack.layout import StackState
from deploy.stack.procs import StackError, pid_alive, port_is_free, read_pid, run, wait_for

DATABASE = "geo"
REPLICATION_SLOT = "geo_replica_1"

_CONF = """
# geo-stack: a local primary. Loopback only, trust auth (see pg_hba.conf).
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 300
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
wal_keep_size = '256MB'
hot_standby = on
hot_standby_feedback = on
shared_buffers = '256MB'
log_min_messages = warning
log_line_prefix = '%m [%p] '
"""

_HBA = """# geo-stack: trust on loopback only; nothing else may connect.
host    all             all             127.0.0.1/32            trust
host    all             all             ::1/128                 trust
host    replication     all             127.0.0.1/32            trust
host    replication     all             ::1/128                 trust
"""


@dataclass(frozen=True)
class PgNode:
    """One PostgreSQL server of the stack."""

    name: str
    data_dir: Path
    port: int

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def pid(self) -> int | None:
        pid = read_pid(self.data_dir / "postmaster.pid")
        return pid if pid is not None and pid_alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None


def psql(bins: Binaries, port: int, sql: str, *, database: str = "postgres", check: bool = True) -> str:
    """Run one SQL statement through psql over TCP and return its unaligned output."""
    proc = run(
        [
            bins.pg("psql"),
            "-X",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-tAc",
            sql,
        ],
        check=check,
        timeout=30,
    )
    return proc.stdout.strip()


def start(bins: Binaries, node: PgNode) -> None:
    """Start an initialised node unless it runs; a clear error when its port is taken."""
    if node.running():
        return
    if not port_is_free(node.port):
        raise StackError(
            f"port {node.port} for the PostgreSQL {node.name} is taken by another process; "
            "stop it, or remove .stack (geo-stack down, then rm -rf .stack) to pick new ports"
        )
    run(
        [bins.pg("pg_ctl"), "-D", node.data_dir, "-l", node.log_file, "-w", "-t", "60", "start"],
        as_postgres=True,
        timeout=90,
        cwd=node.data_dir.parent,
    )


def stop(bins: Binaries, node: PgNode) -> bool:
    """Stop a node if it runs (fast shutdown). Returns True when it was running."""
    if not node.initialised() or not node.running():
        return False
    run(
        [bins.pg("pg_ctl"), "-D", node.data_dir, "-m", "fast", "-w", "-t", "60", "stop"],
        as_postgres=True,
        timeout=90,
        cwd=node.data_dir.parent,
    )
    return True


def up_primary(bins: Binaries, node: PgNode) -> None:
    """Create the primary on first use, start it, and make sure the ``geo`` database exists."""
    if not node.initialised():
        if node.data_dir.exists():
            shutil.rmtree(node.data_dir)  # a half-made folder from an interrupted init
        run(
            [
                bins.pg("initdb"),
                "-D",
                node.data_dir,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            ],
            as_postgres=True,
            timeout=180,
            cwd=node.data_dir.parent,
        )
        with (node.data_dir / "postgresql.conf").open("a") as fh:
            fh.write(_CONF.format(port=node.port))
        (node.data_dir / "pg_hba.conf").write_text(_HBA)
    start(bins, node)
    if psql(bins, node.port, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'") != "1":
        psql(bins, node.port, f"CREATE DATABASE {DATABASE}")


def enable_postgis(bins: Binaries, primary: PgNode, database: str = DATABASE) -> None:
    """Create the PostGIS extension in a database (replicas get it by replication)."""
    psql(bins, primary.port, "CREATE EXTENSION IF NOT EXISTS postgis", database=database)


def pg_nodes(state: StackState) -> tuple[PgNode, PgNode]:
    """The stack's current primary and replica (their folders and ports, by role)."""
    root = Path(state.pg_root)
    return (
        PgNode("primary", root / state.pg_dirs["primary"], state.ports["pg_primary"]),
        PgNode("replica", root / state.pg_dirs["replica"], state.ports["pg_replica"]),
    )


def is_standby(node: PgNode) -> bool:
    """Whether a data folder is set up as a standby (``standby.signal``, written by -R)."""
    return (node.data_dir / "standby.signal").is_file()


def up_replica(bins: Binaries, primary: PgNode, replica: PgNode) -> None:
    """Clone the primary with pg_basebackup -R on first use, then start it streaming.

    Raises:
        StackError: the replica's folder holds a primary (promoted outside ``geo-stack``):
            starting it would give the stack two primaries.
    """
    if replica.initialised() and not is_standby(replica):
        raise StackError(
            f"the PostgreSQL replica's folder {replica.data_dir} holds a primary (promoted outside geo-stack?); "
            "`geo-stack failover` makes it the primary and rebuilds the other server as its replica"
        )
    if not replica.initialised():
        if replica.data_dir.exists():
            shutil.rmtree(replica.data_dir)
        slot = psql(bins, primary.port, f"SELECT 1 FROM pg_replication_slots WHERE slot_name = '{REPLICATION_SLOT}'")
        if slot == "1":
            psql(bins, primary.port, f"SELECT pg_drop_replication_slot('{REPLICATION_SLOT}')")
        run(
            [
                bins.pg("pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.port),
                "-U",
                "postgres",
                "-D",
                replica.data_dir,
                "-R",
                "-X",
                "stream",
                "-C",
                "-S",
                REPLICATION_SLOT,
                "--checkpoint=fast",
            ],
            as_postgres=True,
            timeout=300,
            cwd=replica.data_dir.parent,
        )
        with (replica.data_dir / "postgresql.conf").open("a") as fh:
            fh.write(f"\n# geo-stack: the replica's own port\nport = {replica.port}\n")
    start(bins, replica)
    wait_for(lambda: replica_streaming(bins, replica), f"the replica on port {replica.port} to stream", timeout=60)


def replica_streaming(bins: Binaries, replica: PgNode) -> bool:
    """True when the replica is in recovery and its WAL receiver is streaming."""
    if not replica.running():
        return False
    out = psql(
        bins,
        replica.port,
        "SELECT pg_is_in_recovery()::text || ',' || coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')",
        check=False,
    )
    return out == "true,streaming"


def set_synchronous(bins: Binaries, primary: PgNode, *, on: bool) -> None:
    """Make the primary's commits wait for a standby to flush them (or stop waiting).

    With it, a write acknowledged to a client is on the replica's disk too, so promoting the
    replica after the primary dies loses no acknowledged write. The price, with a single
    standby: while the replica is down, commits wait for it.
    """
    if on:
        psql(bins, primary.port, "ALTER SYSTEM SET synchronous_standby_names = '*'")
    else:
        psql(bins, primary.port, "ALTER SYSTEM RESET synchronous_standby_names")
    psql(bins, primary.port, "SELECT pg_reload_conf()")


def rebuild_replica(bins: Binaries, primary: PgNode, replica: PgNode) -> None:
    """Throw a server's data away and clone it afresh from ``primary`` as its streaming replica."""
    stop(bins, replica)
    if replica.data_dir.exists():
        shutil.rmtree(replica.data_dir)
    up_replica(bins, primary, replica)


def promote(bins: Binaries, replica: PgNode) -> None:
    """Promote the replica to a primary (``pg_ctl promote``), waiting until it accepts writes.

    Synchronous replication is switched off on it: it has no standby of its own, and a
    setting copied from the old primary would make every commit wait for ever.
    """
    run(
        [bins.pg("pg_ctl"), "-D", replica.data_dir, "-w", "-t", "60", "promote"],
        as_postgres=True,
        timeout=90,
        cwd=replica.data_dir.parent,
    )
    wait_for(
        lambda: psql(bins, replica.port, "SELECT pg_is_in_recovery()", check=False) == "f",
        f"the replica on port {replica.port} to accept writes",
        timeout=30,
    )
    set_synchronous(bins, replica, on=False)
