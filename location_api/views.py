"""Request handlers."""

from __future__ import annotations

from aiohttp import web


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})
