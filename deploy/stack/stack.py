"""The whole local stack: bring it up, take it down, say what runs where."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.stack import etcd, postgres, redis_nodes
from deploy.stack.binaries import Binaries, ensure_binaries, ensure_etcd
from deploy.stack.etcd import EtcdMember
from deploy.stack.full import FullTier, has_full
from deploy.stack.layout import DEFAULT_PORT_BASE, Layout, StackState, assign_ports, choose_pg_root, new_jwt_secret
from deploy.stack.redis_nodes import RedisNode
from deploy.stack.procs import StackError
from geo_common.migrate import apply_migrations
from geo_common.settings import SettingsError, load_settings


@dataclass(frozen=True)
class Component:
    """One line of ``geo-stack status``."""

    name: str
    address: str
    pid: int | None
    detail: str = ""


def _say(message: str) -> None:
    print(f"geo-stack: {message}", flush=True)


class Stack:
    """The local services kept under one folder (default ``.stack/``)."""

    def __init__(self, root: Path, *, port_base: int | None = None) -> None:
        self.layout = Layout(root)
        self._port_base = port_base

    # --- parts -------------------------------------------------------------------------

    def _state(self, *, create: bool) -> StackState | None:
        state = self.layout.load_state()
        if state is None and create:
            state = StackState(port_base=self._port_base or DEFAULT_PORT_BASE)
        if state is not None and create:
            assign_ports(state)
        if state is not None and not state.jwt_secret:
            # Kept once the state is saved (a key saved meanwhile by another run wins).
            state.jwt_secret = new_jwt_secret()
        return state

    def _redis(self, state: StackState) -> RedisNode:
        return RedisNode("standalone", self.layout.redis_dir, state.ports["redis"])

    def _cluster(self, state: StackState) -> list[RedisNode]:
        ports = [state.ports[f"cluster_{i}"] for i in range(3)]
        return [RedisNode(f"cluster-{i}", self.layout.cluster_dir(p), p, cluster=True) for i, p in enumerate(ports)]

    def _etcd(self, state: StackState) -> EtcdMember | None:
        """The stack's etcd, once a ring configuration made ``up`` choose its ports."""
        if "etcd_0" not in state.ports:
            return None
        return EtcdMember(self.layout.root / "etcd", state.ports["etcd_0"], state.ports["etcd_1"])

    def up_etcd(self, state: StackState) -> None:
        """Start etcd when the ring backend is configured (``GEO_PUBSUB_BACKEND=ring``, or a region
        of ``GEO_REGIONS`` on the ring), or when the stack has one already; the first time, choose
        its two ports and save them in the state. Its URL goes to ``.stack/env`` as
        ``GEO_ETCD_URL`` (:meth:`env_vars`)."""
        if "etcd_0" not in state.ports:
            if not ring_configured(os.environ):
                return
            assign_ports(state, {"etcd": 2})
            self.layout.save_state(state)
        member = self._etcd(state)
        assert member is not None  # its ports were just chosen
        _say(f"etcd on {member.url} (the ring pub/sub backend's nodes; data in {member.directory})")
        etcd.start(ensure_etcd(), member)

    @staticmethod
    def env_vars(state: StackState) -> dict[str, str]:
        """The ``GEO_*`` variables for a stack's state: its endpoints and its signing key."""
        primary, replica = postgres.pg_nodes(state)
        cluster = ",".join(f"127.0.0.1:{state.ports[f'cluster_{i}']}" for i in range(3))
        env = {
            "GEO_PG_PRIMARY": primary.dsn,
            "GEO_PG_REPLICAS": replica.dsn,
            "GEO_REDIS_URL": f"redis://127.0.0.1:{state.ports['redis']}/0",
            "GEO_REDIS_CLUSTER": cluster,
        }
        if "etcd_0" in state.ports:
            env["GEO_ETCD_URL"] = f"http://127.0.0.1:{state.ports['etcd_0']}"
        if state.jwt_secret:
            env["GEO_JWT_SECRET"] = state.jwt_secret
        return env

    def signing_key(self, environ: Mapping[str, str]) -> str:
        """The key the services ``geo-stack run`` starts sign tokens with: ``GEO_JWT_SECRET``
        when ``environ`` sets it (it wins there too), else the stack's own.

        Raises:
            StackError: neither (no stack in this folder yet).
        """
        given = environ.get("GEO_JWT_SECRET")
        if given:
            return given
        state = self.layout.load_state()
        if state is None or not state.jwt_secret:
            raise StackError(
                f"no signing key: GEO_JWT_SECRET is not set and there is no stack in {self.layout.root} (run geo-stack up)"
            )
        return state.jwt_secret

    # --- commands ----------------------------------------------------------------------

    def up(self) -> dict[str, str]:
        """Start everything that is not running yet (idempotent) and write ``.stack/env``.

        Returns:
            The endpoint variables written to the env file.
        """
        bins = ensure_binaries()
        state = self._state(create=True)
        assert state is not None  # create=True always yields a state
        if not state.pg_root:
            state.pg_root = str(choose_pg_root(self.layout))
        self.layout.save_state(state)
        primary, replica = postgres.pg_nodes(state)

        _say(f"PostgreSQL {bins.pg_major} primary on 127.0.0.1:{primary.port} ({primary.data_dir})")
        postgres.up_primary(bins, primary)
        postgres.enable_postgis(bins, primary)
        applied = asyncio.run(apply_migrations(primary.dsn))
        _say(
            f"migrations: {len(applied)} applied"
            + (f" ({', '.join(f'{m.version:04d}_{m.name}' for m in applied)})" if applied else ", schema current")
        )
        _say(f"PostgreSQL streaming replica on 127.0.0.1:{replica.port}")
        postgres.up_replica(bins, primary, replica)

        redis = self._redis(state)
        _say(f"Redis standalone on 127.0.0.1:{redis.port}")
        redis_nodes.start(bins, redis)
        cluster = self._cluster(state)
        _say(f"Redis Cluster on 127.0.0.1:{','.join(str(n.port) for n in cluster)}")
        redis_nodes.up_cluster(bins, cluster)
        self.up_etcd(state)

        env = self.env_vars(state)
        self.layout.write_env(env)
        _say(f"up; endpoints and the signing key (GEO_JWT_SECRET) in {self.layout.env_file}")
        return env

    def failover(self) -> dict[str, str]:
        """Make the replica the primary and rebuild the old primary as its streaming replica.

        A planned switchover when the primary runs (it is shut down cleanly first, which
        sends every committed transaction to the replica before it exits), a recovery when
        it has died; a stopped replica is started first, and a replica promoted by hand
        (``pg_ctl promote``) is taken as the new primary as it is: writes the old primary
        accepted after that promotion are discarded with its data. The old primary's data
        is then replaced by a copy of the new primary's, so the stack never starts two
        primaries. The roles, ports and
        ``<dir>/env`` follow: ``GEO_PG_PRIMARY`` names the new primary. While the full tier
        runs, the new primary's commits wait for the rebuilt replica, as after ``up --full``.

        Returns:
            The endpoint variables written to the env file.

        Raises:
            StackError: no stack here, or it has no replica to take over.
        """
        state = self._state(create=False)
        if state is None or not state.pg_root:
            raise StackError(f"no stack in {self.layout.root} (run geo-stack up)")
        bins = ensure_binaries()
        primary, replica = postgres.pg_nodes(state)
        if not replica.initialised():
            raise StackError(f"the stack has no PostgreSQL replica in {replica.data_dir}: nothing can take over")
        if not replica.running():
            _say(f"starting the replica on 127.0.0.1:{replica.port}")
            postgres.start(bins, replica)
        if postgres.stop(bins, primary):
            _say(f"stopped the PostgreSQL primary on 127.0.0.1:{primary.port} (clean shutdown)")
        if postgres.is_standby(replica):
            _say(f"promoting the replica on 127.0.0.1:{replica.port}")
            postgres.promote(bins, replica)
        state.swap_pg_roles()
        self.layout.save_state(state)
        new_primary, new_replica = postgres.pg_nodes(state)
        _say(f"rebuilding 127.0.0.1:{new_replica.port} as the replica of 127.0.0.1:{new_primary.port}")
        postgres.rebuild_replica(bins, new_primary, new_replica)
        # As `up --full` and `down` leave it: commits wait for the standby while the full tier
        # runs (no acknowledged write lost to the next crash), and not otherwise.
        tier = FullTier(self.layout, state) if has_full(state) else None
        serving = tier is not None and any(row.pid for row in tier.status())
        postgres.set_synchronous(bins, new_primary, on=serving)
        if serving:
            _say("synchronous replication on for the new primary (the full tier runs)")
        env = self.env_vars(state)
        self.layout.write_env(env)
        _say(
            f"failover done: primary 127.0.0.1:{new_primary.port}, replica 127.0.0.1:{new_replica.port} "
            f"(streaming); endpoints in {self.layout.env_file}; restart services started with the old ones"
        )
        return env

    def up_full(
        self,
        *,
        entry_port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
        exclusive: bool = False,
    ) -> FullTier:
        """:meth:`up`, then the full tier: API and WebSocket instances behind nginx.

        The tier's ports are checked before anything starts (:meth:`FullTier.check_ports`).

        Args:
            entry_port: nginx's port (default: the one chosen before, else 8000).
            extra_env: variables for the instances, over everything else (tests use it).
            exclusive: refuse when part of the tier already runs (``run --full`` starts it all
                and stops it all on Ctrl-C) instead of keeping it.

        Returns:
            The running tier.

        Raises:
            StackError: a port is taken (nothing was started), or a part did not start (what
                this call had started of the tier is stopped again).
        """
        planned = self._state(create=True)
        assert planned is not None  # create=True always yields a state
        tier = FullTier(self.layout, planned)
        tier.assign(entry_port)
        tier.check_ports(exclusive=exclusive)
        self.layout.save_state(planned)  # the tier's ports, which up() keeps
        env = self.up()
        state = self._state(create=False)
        assert state is not None  # up() saved it
        tier = FullTier(self.layout, state)
        tier.up(ensure_binaries(), env, extra_env=extra_env)
        return tier

    def down(self) -> list[str]:
        """Stop exactly the processes this stack started (found through their pid files).

        Returns:
            The names of the components that were stopped.
        """
        state = self._state(create=False)
        if state is None:
            return []
        stopped = []
        if has_full(state):
            bins = ensure_binaries() if state.pg_root else None
            stopped += FullTier(self.layout, state).down(bins)
        if state.pg_root:
            bins = ensure_binaries()
            primary, replica = postgres.pg_nodes(state)
            for node in (replica, primary):
                if postgres.stop(bins, node):
                    stopped.append(f"postgres-{node.name}")
        for redis in [self._redis(state), *self._cluster(state)]:
            if redis_nodes.stop(redis):
                stopped.append(f"redis-{redis.name}")
        member = self._etcd(state)
        if member is not None and etcd.stop(member):
            stopped.append("etcd")
        return stopped

    def status(self) -> list[Component]:
        """What runs where, whether the replica streams and whether the cluster is whole."""
        state = self._state(create=False)
        if state is None:
            return []
        bins: Binaries | None = None
        try:
            bins = ensure_binaries()
        except Exception as exc:  # noqa: BLE001 - status reports rather than fails
            print(f"geo-stack: {exc}", file=sys.stderr)
        rows = []
        if state.pg_root:
            primary, replica = postgres.pg_nodes(state)
            rows.append(Component("postgres-primary", f"127.0.0.1:{primary.port}", primary.pid()))
            streaming = bins is not None and postgres.replica_streaming(bins, replica)
            rows.append(
                Component(
                    "postgres-replica",
                    f"127.0.0.1:{replica.port}",
                    replica.pid(),
                    "streaming" if streaming else "not streaming",
                )
            )
        redis = self._redis(state)
        rows.append(Component("redis", f"127.0.0.1:{redis.port}", redis.pid()))
        cluster = self._cluster(state)
        whole = bins is not None and all(n.running() for n in cluster) and redis_nodes.cluster_ok(bins, cluster)
        for node in cluster:
            rows.append(
                Component(
                    f"redis-{node.name}",
                    f"127.0.0.1:{node.port}",
                    node.pid(),
                    "cluster ok" if whole else "cluster not ok",
                )
            )
        member = self._etcd(state)
        if member is not None:
            healthy = "ring pub/sub nodes" if etcd.healthy(member) else "not answering"
            rows.append(Component("etcd", f"127.0.0.1:{member.client_port}", member.pid(), healthy))
        if has_full(state):
            rows += [Component(r.name, r.address, r.pid, r.detail) for r in FullTier(self.layout, state).status(bins)]
        return rows


def ring_configured(environ: Mapping[str, str]) -> bool:
    """True when the settings (``environ`` over the env file) put a region on the ring backend."""
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        _say(f"not starting etcd: {exc}")
        return False
    return settings.pubsub_backend == "ring" or any(r.pubsub_backend == "ring" for r in settings.regions)
