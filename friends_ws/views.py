"""HTTP handlers on the WebSocket tier's port: liveness, readiness, metrics."""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from friends_ws.keys import cache_key, db_key, drain_key, hub_key, metrics_key


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers (with its pid: ``--workers`` runs several)."""
    return web.json_response({"status": "ok", "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: PostgreSQL, the caches and every region's pub/sub answer (503 otherwise, and
    at once while the instance drains: load balancers stop sending it clients)."""
    app = request.app
    if app[drain_key].draining:
        return web.json_response({"status": "draining", "checks": {}}, status=503)
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
    return web.Response(body=request.app[metrics_key].render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
