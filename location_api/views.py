"""Request handlers: parse the request, call the layer below, render JSON. Errors are raised,
never rendered here (see :mod:`location_api.errors`)."""

from __future__ import annotations

from datetime import UTC, datetime

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from geo_common.database_node import format_lsn
from location_api import businesses
from location_api.auth import require_writer
from location_api.catalog import Catalog
from location_api.consistency import CONSISTENCY_HEADER, issue_token, read_token
from location_api.cursor import decode_cursor, encode_cursor
from location_api.keys import (
    cache_key,
    cursor_secret_key,
    db_key,
    metrics_key,
    refresher_key,
    role_key,
    settings_key,
)
from location_api.openapi import openapi_document
from location_api.render import search_body
from location_api.search import area_body, plain_body, search_catalog, search_sql
from location_api.models import SearchQuery
from location_api.search_params import parse_area, parse_search
from location_api.validate import parse_business, parse_id


def json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response encoded with orjson."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", headers=headers)


# --------------------------------------------------------------------------- search


async def search_nearby(request: web.Request) -> web.Response:
    """``GET /v1/search/nearby``: businesses within a radius (or the k nearest), filtered,
    nearest first or by a sort, one page at a time.

    A plain search (position, maybe radius and limit; no consistency token) is answered by
    the compiled path in one call when the default strategy's index is built
    (:func:`location_api.search.plain_body`); every other request by the general path: one
    validator, then memory or SQL, then the same body.
    """
    body = _compiled(request, "/v1/search/nearby")
    if body is not None:
        return web.Response(body=body, content_type="application/json")
    return await _search(request, parse_search(request.query, max_radius_m=request.app[settings_key].max_radius_m))


async def search_area(request: web.Request) -> web.Response:
    """``GET /v1/search/area``: the businesses in a box (the visible map), filtered, ranked
    from its centre or by a sort, one page at a time.

    A plain one (a box, maybe a limit) is answered by the compiled path as a plain nearby
    search is (:func:`location_api.search.area_body`); every other by the general path.
    """
    body = _compiled(request, "/v1/search/area")
    if body is not None:
        return web.Response(body=body, content_type="application/json")
    return await _search(request, parse_area(request.query, max_radius_m=request.app[settings_key].max_radius_m))


#: The compiled path's answer of each search it takes, by route (:mod:`location_api.site`
#: answers them below aiohttp's request layer too).
COMPILED: dict[str, Callable[[Catalog, str, str, float, bytes], bytes | None]] = {
    "/v1/search/nearby": plain_body,
    "/v1/search/area": area_body,
}


def compiled_body(app: web.Application, route: str, raw_query: str) -> bytes | None:
    """The compiled path's body of a search of ``route`` (a key of :data:`COMPILED`) with
    this query string, when it answers it: the default strategy's index built, the query one
    it takes; else ``None`` (the general path answers it)."""
    settings = app[settings_key]
    catalog = app[refresher_key].catalog
    if catalog is None or settings.api_index not in catalog.indexes:
        return None
    return COMPILED[route](catalog, settings.api_index, raw_query, settings.max_radius_m, app[cursor_secret_key])


def _compiled(request: web.Request, route: str) -> bytes | None:
    """:func:`compiled_body` of a request without a consistency token (which only the general
    path reads), else ``None``."""
    if CONSISTENCY_HEADER in request.headers:
        return None
    return compiled_body(request.app, route, request.rel_url.raw_query_string)


async def _search(request: web.Request, query: SearchQuery) -> web.Response:
    """The general path of both searches: memory or SQL, then the body."""
    app = request.app
    settings = app[settings_key]
    token = read_token(request.headers, settings.jwt_secret)
    after = None if query.cursor is None else decode_cursor(app[cursor_secret_key], query, query.cursor)
    # open_now means the first page's instant on every page.
    at = datetime.fromtimestamp(after.at, UTC) if after is not None and after.at else datetime.now(UTC)
    strategy = query.strategy or settings.api_index
    refresher = app[refresher_key]
    catalog = refresher.catalog
    # Memory answers unless asked for sql, not built (yet, or by configuration), behind the
    # client's own write, or asked for filters it does not hold (a catalog of positions
    # only); sql gives the identical answer.
    if (
        catalog is not None
        and strategy in catalog.indexes
        and (token is None or token <= refresher.applied_lsn)
        and (query.plain or catalog.cards is not None)
    ):
        page = await search_catalog(
            app[db_key], app[cache_key], catalog, strategy, query, after, settings.max_radius_m, at=at, min_lsn=token
        )
    else:
        page = await search_sql(app[db_key], app[cache_key], query, after, settings.max_radius_m, at=at, min_lsn=token)
    nxt = None if page.next_position is None else encode_cursor(app[cursor_secret_key], query, page.next_position)
    return web.Response(
        body=search_body(page.total, page.radius_m, page.hits, page.prefixes, nxt), content_type="application/json"
    )


# --------------------------------------------------------------------------- businesses


async def get_business(request: web.Request) -> web.Response:
    """``GET /v1/businesses/{id}``: public, so without owner or authors; with its details, and
    whether it is open now in its local time and when that next changes."""
    business_id = parse_id(request.match_info["id"])
    token = read_token(request.headers, request.app[settings_key].jwt_secret)
    business, details = await businesses.detail(request.app[db_key], request.app[cache_key], business_id, min_lsn=token)
    now = datetime.now(UTC)
    return json_response({**business.to_json(), **details.to_json(business.category), **details.state_json(now)})


async def create_business(request: web.Request) -> web.Response:
    """``POST /v1/businesses`` (owner or admin): 201 with ``Location`` and a consistency token.

    The business belongs to the owner that creates it; one an admin creates, to the operator.
    """
    secret = request.app[settings_key].jwt_secret
    author = require_writer(request)
    data = parse_business(await request.read())
    record, lsn = await businesses.create(request.app[db_key], request.app[cache_key], data, author)
    return json_response(
        record.to_json(),
        status=201,
        headers={"Location": f"/v1/businesses/{record.business.id}", CONSISTENCY_HEADER: issue_token(secret, lsn)},
    )


async def update_business(request: web.Request) -> web.Response:
    """``PUT /v1/businesses/{id}`` (its owner, or an admin): replace every field."""
    secret = request.app[settings_key].jwt_secret
    author = require_writer(request)
    business_id = parse_id(request.match_info["id"])
    data = parse_business(await request.read())
    record, lsn = await businesses.update(request.app[db_key], request.app[cache_key], business_id, data, author)
    return json_response(record.to_json(), headers={CONSISTENCY_HEADER: issue_token(secret, lsn)})


async def delete_business(request: web.Request) -> web.Response:
    """``DELETE /v1/businesses/{id}`` (its owner, or an admin): 204."""
    secret = request.app[settings_key].jwt_secret
    author = require_writer(request)
    business_id = parse_id(request.match_info["id"])
    lsn = await businesses.delete(request.app[db_key], request.app[cache_key], business_id, author)
    return web.Response(status=204, headers={CONSISTENCY_HEADER: issue_token(secret, lsn)})


# --------------------------------------------------------------------------- operations


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process answers (with its pid: ``--workers`` runs several)."""
    return json_response({"status": "ok", "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: each dependency checked now; 200 when this instance can do its job, else 503.

    Redis being down does not make the instance unready (reads fall back to the database),
    but it is reported.
    """
    app = request.app
    role = app[role_key]
    db, cache = app[db_key], app[cache_key]
    await db.check_health()
    await cache.check()
    replicas = {
        r.name: {
            "status": "up" if r.healthy else "down",
            "address": r.address,
            "replay_lag_seconds": r.lag_seconds if r.healthy and not math.isnan(r.lag_seconds) else None,
            "replay_lag_bytes": r.lag_bytes if r.healthy and not math.isnan(r.lag_bytes) else None,
        }
        for r in db.replicas
    }
    body: dict[str, Any] = {
        "role": role.value,
        "primary": {"status": "up" if db.primary.healthy else "down", "address": db.primary.address},
        "replicas": replicas,
        "redis": {"status": "up" if cache.up else "down"},
    }
    ready = True
    if role.writes:
        ready &= db.primary.healthy
    if role.reads:
        refresher = app[refresher_key]
        catalog = refresher.catalog
        body["index"] = {
            "status": "ready" if catalog is not None else "building",
            "businesses": 0 if catalog is None else len(catalog),
            "strategies": [] if catalog is None else sorted(catalog.indexes),
            "applied_lsn": format_lsn(refresher.applied_lsn),
            "seconds_since_refresh": refresher.seconds_since_refresh,
        }
        ready &= catalog is not None and (db.primary.healthy or any(r.healthy for r in db.replicas))
    body["status"] = "ready" if ready else "not_ready"
    return json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of this instance."""
    body = request.app[metrics_key].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of the routes this instance serves."""
    app = request.app
    return web.Response(
        body=openapi_document(app[role_key], app[settings_key].max_radius_m, app[settings_key].dev),
        content_type="application/json",
    )
