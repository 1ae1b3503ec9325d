"""The WebSocket tier's app factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from friends_ws.broker import Broker
from friends_ws.cache import LocationCache
from friends_ws.cell_channels import CellChannels
from friends_ws.cells import precision_for
from friends_ws.clock import now_ms
from friends_ws.drain import Drain
from friends_ws.exporter import Exporter
from friends_ws.fanout import Fanout
from friends_ws.flushing import FlushQueue
from friends_ws.history import HistoryWriter
from friends_ws.hub import Hub
from friends_ws.keys import (
    authenticator_key,
    cache_key,
    db_key,
    drain_key,
    history_key,
    hub_key,
    metrics_key,
    purger_key,
    regions_key,
    rings_key,
    services_key,
    settings_key,
)
from friends_ws.keepalive import Keepalive
from friends_ws.lifetimes import TokenLifetimes
from friends_ws.limits import UserLimits
from friends_ws.metrics import RingCollector, Stats
from friends_ws.publisher import Publisher
from friends_ws.resync import Resync
from friends_ws.retention import Purger
from friends_ws.ring_discovery import RingDiscovery, uses_etcd
from friends_ws.routes import setup_routes
from friends_ws.pace import Pace
from friends_ws.services import Services
from friends_ws.session_config import SessionConfig
from friends_ws.subscriptions import Subscriptions
from friends_ws.tasks import Tasks
from friends_ws.verifier import Verifier
from geo_common.database import Database, PoolOptions
from geo_common.identity import Authenticator
from geo_common.regions import RegionMap
from geo_common.settings import Settings, SettingsError


def _check(settings: Settings) -> None:
    if not settings.friend_radius_min_m <= settings.friend_radius_m <= settings.friend_radius_max_m:
        raise SettingsError(
            f"GEO_FRIEND_RADIUS_M={settings.friend_radius_m:g}: must lie between GEO_FRIEND_RADIUS_MIN_M "
            f"({settings.friend_radius_min_m:g}) and GEO_FRIEND_RADIUS_MAX_M ({settings.friend_radius_max_m:g})"
        )
    if not settings.pace_fast_s <= settings.pace_slow_s < settings.location_ttl_s:
        raise SettingsError(
            f"GEO_PACE_SLOW_S={settings.pace_slow_s}: must be at least GEO_PACE_FAST_S ({settings.pace_fast_s}) "
            f"and below GEO_LOCATION_TTL_S ({settings.location_ttl_s}), or connected users would expire"
        )


def create_app(settings: Settings) -> web.Application:
    """Build the WebSocket tier from validated settings (reads no env, no argv).

    Raises:
        SettingsError: settings that are valid one by one but not together (radius bounds,
            a region whose pub/sub nodes are missing, an identity provider without its key);
            the message names the variable.
    """
    _check(settings)
    app = web.Application()
    app[settings_key] = settings
    app[regions_key] = RegionMap.from_settings(settings)
    app[authenticator_key] = Authenticator(settings)
    app[metrics_key] = Exporter()
    app[drain_key] = Drain(settings.ws_drain_s)  # begun on SIGTERM by geo-friends (friends_ws.__main__)
    app.cleanup_ctx.append(_backends)
    app.cleanup_ctx.append(_rings)
    app.on_shutdown.append(_close_sessions)
    setup_routes(app)
    return app


async def _backends(app: web.Application) -> AsyncIterator[None]:
    """Open the database, caches, pub/sub, history writer and retention; close them in reverse order."""
    settings = app[settings_key]
    # Primary only: everything geo-friends reads decides what a user may see (their sharing
    # switch, what each friend shares with them), and a replica that trails could show again
    # what the user or a friend just withdrew. Queries wait for a free connection rather than
    # fail: the pool is shared by every session and the history writer.
    pool = PoolOptions("geo-friends", connect_timeout_s=5.0, acquire_timeout_s=None)
    db = await Database.open(settings, pool=pool, replicas=False)
    history = HistoryWriter(db, flush_ms=settings.history_flush_ms, flush_rows=settings.history_flush_rows)
    cache = LocationCache(
        app[regions_key],
        namespace=settings.redis_namespace,
        ttl_s=settings.location_ttl_s,
        breaker_failures=settings.breaker_failures,
        breaker_reset_s=settings.breaker_reset_s,
        tls_ca=settings.redis_tls_ca,
    )
    hub = _hub(settings, app[regions_key], cache=cache, db=db, history=history)
    purger = Purger(db, retention_days=settings.history_retention_days, interval_s=settings.history_purge_interval_s)
    lifetimes = TokenLifetimes(leeway_ms=settings.jwt_leeway_s * 1000, clock=now_ms)
    try:
        await hub.start()
        history.start()
        purger.start()
        lifetimes.start()
        app[db_key], app[cache_key], app[hub_key], app[history_key] = db, cache, hub, history
        app[purger_key] = purger
        app[services_key] = Services(
            regions=app[regions_key],
            stats=hub.stats,
            subscriptions=hub.subscriptions,
            publisher=hub.publisher,
            friends=hub.fanout,
            cells=hub.cells,
            cache=cache,
            db=db,
            history=history,
            config=SessionConfig(
                radius_m=settings.friend_radius_m,
                min_radius_m=settings.friend_radius_min_m,
                max_radius_m=settings.friend_radius_max_m,
                margin_m=settings.friend_hysteresis_m,
                queue_size=settings.ws_queue_size,
                pace=Pace(settings.pace_fast_s, settings.pace_slow_s),
                resume_ms=settings.ws_resume_s * 1000,
                discover_radius_m=settings.discover_radius_m,
                discover_precision=precision_for(settings.discover_radius_m),
                discover_max_shown=settings.discover_max_shown,
                discover_ttl_ms=settings.location_ttl_s * 1000,
            ),
            limits=UserLimits(
                updates_per_s=settings.ws_max_updates_per_s,
                messages_per_s=settings.ws_max_messages_per_s,
                max_sockets=settings.ws_max_sockets_per_user,
                uploads_per_min=settings.upload_max_per_min,
            ),
            lifetimes=lifetimes,
            verifier=Verifier(app[authenticator_key], db),
        )
        app[metrics_key].attach(hub, app[services_key], purger)
        yield
    finally:
        # Sessions are closed by now (on_shutdown); write what they sent, then disconnect.
        await lifetimes.close()
        await purger.close()
        await history.close()
        await hub.close()
        await cache.close()
        await db.close()
        await app[authenticator_key].close()


def _hub(settings: Settings, regions: RegionMap, *, cache: LocationCache, db: Database, history: HistoryWriter) -> Hub:
    """The pub/sub side of the process, each part given the parts it uses."""
    namespace = settings.redis_namespace
    stats, tasks = Stats(), Tasks()
    broker = Broker(
        regions,
        bus_options={
            "probe_interval_s": settings.pubsub_probe_s,
            "probe_timeout_s": settings.pubsub_probe_s,
            "handoff_s": settings.pubsub_ring_handoff_s,
            "tls_ca": settings.redis_tls_ca,
        },
        breaker_failures=settings.breaker_failures,
        breaker_reset_s=settings.breaker_reset_s,
    )
    ttl_ms = int(settings.location_ttl_s * 1000)
    fanout = Fanout(regions, broker=broker, cache=cache, namespace=namespace, ttl_ms=ttl_ms, spawn=tasks.spawn)
    subscriptions = Subscriptions(
        regions,
        broker=broker,
        fanout=fanout,
        namespace=namespace,
        stats=stats,
        spawn=tasks.spawn,
        on_erasure=history.erase,
    )
    return Hub(
        stats=stats,
        broker=broker,
        subscriptions=subscriptions,
        fanout=fanout,
        publisher=Publisher(regions, broker=broker, namespace=namespace),
        cells=CellChannels(regions, broker=broker, cache=cache, namespace=namespace, ttl_ms=ttl_ms),
        resync=Resync(subscriptions, fanout, cache=cache, db=db, spawn=tasks.spawn),
        flush=FlushQueue(),
        keepalive=Keepalive(settings.ws_ping_interval_s),
        tasks=tasks,
    )


async def _rings(app: web.Application) -> AsyncIterator[None]:
    """With GEO_ETCD_URL, follow the rings kept in etcd while the app runs (after the backends)."""
    settings, regions = app[settings_key], app[regions_key]
    if not uses_etcd(settings, regions):
        yield
        return
    app[rings_key] = discovery = RingDiscovery(settings, regions, app[hub_key].broker)
    discovery.start()
    app[metrics_key].registry.register(RingCollector(discovery.statuses))
    try:
        yield
    finally:
        await discovery.close()


async def _close_sessions(app: web.Application) -> None:
    """On shutdown, close every connection still open with 1001 so handlers finish and flush
    (all of them when the process stops without a drain: GEO_WS_DRAIN_S=0, or SIGINT)."""
    if hub_key not in app:
        return
    await asyncio.gather(
        *(
            link.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
            for link in app[hub_key].keepalive
        ),
        return_exceptions=True,
    )
