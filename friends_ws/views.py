"""HTTP handlers on the WebSocket tier's port: liveness, readiness, metrics."""

from __future__ import annotations

import os

from aiohttp import web

from friends_ws.keys import cache_key, db_key, hub_key, purger_key, services_key
from friends_ws.metrics import registry, render


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers (with its pid: ``--workers`` runs several)."""
    return web.json_response({"status": "ok", "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: PostgreSQL, the caches and every region's pub/sub answer (503 otherwise)."""
    app = request.app
    checks: dict[str, bool] = {}
    try:
        await app[db_key].primary.pool.fetchval("SELECT 1")
        checks["postgres"] = True
    except Exception:  # noqa: BLE001 - readiness: any failure means not ready
        checks["postgres"] = False
    checks["cache"] = await app[cache_key].ping()
    for name, bus in app[hub_key].broker.buses.items():
        checks[f"pubsub:{name}"] = await bus.ping()
    ok = all(checks.values())
    return web.json_response({"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of this process."""
    services = request.app[services_key]
    hub = request.app[hub_key]
    purger = request.app[purger_key]
    reg = registry(
        hub.stats,
        counters={
            "geo_friends_history_purged": ("history rows deleted past retention", lambda: float(purger.purged)),
            "geo_friends_history_erased": (
                "history rows not written because their user's locations were erased",
                lambda: float(services.history.erased),
            ),
        },
        gauges={
            "geo_friends_sessions": ("open WebSocket sessions", lambda: float(len(hub.subscriptions.sessions))),
            "geo_friends_followed": (
                "friends followed (location channels subscribed)",
                lambda: float(len(hub.fanout.listeners)),
            ),
            "geo_friends_history_waiting": ("history rows not written yet", lambda: float(services.history.waiting)),
            "geo_friends_history_written": ("history rows written", lambda: float(services.history.written)),
            "geo_friends_history_purge_last_success_seconds": (
                "when this process last deleted history past retention, Unix seconds (0: not yet)",
                lambda: purger.last_success,
            ),
        },
        breakers=lambda: [*services.db.breakers, *services.cache.breakers, *hub.broker.breakers.values()],
    )
    return web.Response(body=render(reg), content_type="text/plain", charset="utf-8")
