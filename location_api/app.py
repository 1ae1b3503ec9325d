"""The HTTP API's app factory, and the resources it opens and closes (``cleanup_ctx``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

from geo_common.breaker import Breaker
from geo_common.database import Database, DatabaseUnavailable, PoolOptions
from geo_common.identity import Authenticator
from geo_common.settings import Settings
from location_api import queries
from location_api.cache import Cache
from location_api.cursor import cursor_key
from location_api.friends.presence import open_presence
from location_api.keys import (
    authenticator_key,
    cache_key,
    cursor_secret_key,
    db_key,
    metrics_key,
    presence_key,
    refresher_key,
    role_key,
    settings_key,
    watch_caches_key,
)
from location_api.metrics import Metrics
from location_api.page.watch import open_region_caches
from location_api.refresh import CHANGE_LOG_RETENTION_S, Refresher
from location_api.routes import setup_routes
from location_api.contract import MAX_BODY_BYTES, Role

log = logging.getLogger(__name__)

#: How often a write instance prunes the change log, seconds.
PRUNE_INTERVAL_S = 60.0


def create_app(settings: Settings) -> web.Application:
    """Build the API application from validated settings (reads no env, no argv).

    Args:
        settings: ``api_role`` decides which routes are served and which resources are
            opened: a ``write`` instance keeps no in-memory indexes.

    Returns:
        The application; its databases, cache and indexes open when it starts.

    Raises:
        SettingsError: the identity provider settings are inconsistent.
    """
    role = Role(settings.api_role)
    metrics = Metrics()
    # No middleware: each route's handler is wrapped instead (location_api.handling).
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[settings_key] = settings
    app[role_key] = role
    app[metrics_key] = metrics
    app[cursor_secret_key] = cursor_key(settings.jwt_secret)
    app[authenticator_key] = Authenticator(settings)
    app.cleanup_ctx.append(_authenticator)
    app.cleanup_ctx.append(_databases)
    app.cleanup_ctx.append(_cache)
    if role.reads:
        app.cleanup_ctx.append(_indexes)
    if role.writes:
        app.cleanup_ctx.append(_change_log_pruning)
        # The user routes' writes tell live connections through it (location_api.friends).
        app.cleanup_ctx.append(_presence)
    if role.reads:
        # The map page's watch mode samples them (location_api.page).
        app.cleanup_ctx.append(_watch_caches)
    setup_routes(app, role)
    return app


@contextlib.asynccontextmanager
async def _background(coro: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run a coroutine as a task for the duration of the block, then cancel it."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield
    finally:
        task.cancel()
        while not task.done():
            # A cancellation can be lost in a library's race (asyncio.wait_for in
            # Python 3.11 may swallow one); ask again rather than wait forever.
            await asyncio.wait({task}, timeout=1.0)
            if not task.done():
                log.warning("background task %r is still running after cancel(); cancelling again", name)
                task.cancel()
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %r had failed", name, exc_info=task.exception())


async def _authenticator(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[authenticator_key].close()


async def _databases(app: web.Application) -> AsyncIterator[None]:
    db = await Database.open(app[settings_key], pool=PoolOptions("geo-api"))
    app[db_key] = db
    app[metrics_key].db = db
    try:
        async with _background(db.health_loop(), "geo-api database health"):
            yield
    finally:
        await db.close()


async def _cache(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    breaker = Breaker("redis-cache", failures=settings.breaker_failures, reset_s=settings.breaker_reset_s)
    cache = Cache(
        settings.api_cache_url or settings.redis_url,
        settings.redis_namespace,
        settings.api_cache_ttl_s,
        breaker=breaker,
        tls_ca=settings.redis_tls_ca,
    )
    await cache.check()
    app[cache_key] = cache
    app[metrics_key].cache = cache
    try:
        async with _background(cache.health_loop(), "geo-api cache health"):
            yield
    finally:
        await cache.close()


async def _indexes(app: web.Application) -> AsyncIterator[None]:
    settings = app[settings_key]
    refresher = Refresher(
        app[db_key],
        app[cache_key],
        max_radius_m=settings.max_radius_m,
        interval_s=settings.api_refresh_s,
        strategies=settings.api_indexes,
        process_tuning=settings.process_tuning,
        cards_max=settings.api_cards_max,
    )
    app[refresher_key] = refresher
    app[metrics_key].refresher = refresher
    try:
        await refresher.rebuild()
    except DatabaseUnavailable as exc:
        # Serve anyway: searches use the sql strategy (or answer 503) until the
        # background refresher manages to build the indexes.
        log.warning("in-memory indexes not built at start-up, will retry: %s", exc)
    async with _background(refresher.run(), "geo-api index refresh"):
        yield


async def _presence(app: web.Application) -> AsyncIterator[None]:
    async with open_presence(app[settings_key]) as presence:
        app[metrics_key].breakers.extend(presence.breakers.values())
        app[presence_key] = presence
        yield


async def _watch_caches(app: web.Application) -> AsyncIterator[None]:
    async with open_region_caches(app[settings_key]) as caches:
        app[watch_caches_key] = caches
        yield


async def _prune_loop(db: Database) -> None:
    while True:
        try:
            deleted = await db.write(lambda conn: queries.prune_changes(conn, CHANGE_LOG_RETENTION_S))
            if deleted:
                log.info("pruned %d change-log rows older than %.0f s", deleted, CHANGE_LOG_RETENTION_S)
        except DatabaseUnavailable:
            pass  # the next round will do it
        await asyncio.sleep(PRUNE_INTERVAL_S)


async def _change_log_pruning(app: web.Application) -> AsyncIterator[None]:
    async with _background(_prune_loop(app[db_key]), "geo-api change-log pruning"):
        yield
