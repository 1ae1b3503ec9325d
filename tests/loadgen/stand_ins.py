"""Stand-ins for a broken search API, as targets of ``geo-loadgen search``: one that answers
some searches with an error, and a server that is not the API at all."""

from __future__ import annotations

from aiohttp import web

from tests.loadgen.conftest import StallServer


class FailingApi(StallServer):
    """The API's document, and ``status`` for every ``fail_every``-th search (1: every one)."""

    def __init__(self, *, fail_every: int, status: int = 500) -> None:
        super().__init__(stall_after=0)  # never stalls: requests count from 1
        self.fail_every = fail_every
        self.status = status

    async def _search(self, _request: web.Request) -> web.Response:
        self.requests += 1
        if self.requests % self.fail_every == 0:
            problem = {"type": "about:blank", "title": "broken", "status": self.status, "detail": "", "errors": []}
            return web.json_response(problem, status=self.status, content_type="application/problem+json")
        return web.json_response({"total": 0, "radius_m": 5000, "businesses": [], "next_cursor": None})


class NotTheApi(StallServer):
    """Answers searches and /healthz, but has no OpenAPI document naming it the API."""

    def __init__(self) -> None:
        super().__init__(stall_after=0)

    async def _openapi(self, _request: web.Request) -> web.Response:
        raise web.HTTPNotFound()
