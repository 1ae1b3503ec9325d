"""``GET /openapi.json``: the OpenAPI 3.1 description of geo-friends' plain HTTP routes.

The WebSocket protocol is described by AsyncAPI (``/asyncapi.json``, :mod:`friends_ws.asyncapi`);
this document holds the rest: the background uploads (``POST /v1/me/locations``,
:mod:`friends_ws.uploads_view`, whose limits it states as this instance applies them) and the
probes. The tests check every answer of the upload tests against it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from aiohttp import web

from friends_ws.keys import settings_key
from friends_ws.protocol import MAX_TIMESTAMP_MS
from friends_ws.uploads import MAX_SEQ, MAX_UPLOAD_BYTES
from geo_common.problems import PROBLEM_JSON, PROBLEM_SCHEMA

_JSON = "application/json"
_RETRY_AFTER = {"description": "seconds to wait before sending it again", "schema": {"type": "integer"}}


def _problem(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if headers:
        response["headers"] = {name.replace("_", "-"): header for name, header in headers.items()}
    return response


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _schemas(max_points: int) -> dict[str, Any]:
    degrees = {"type": "number"}
    return {
        "Problem": PROBLEM_SCHEMA,
        "Point": {
            "type": "object",
            "required": ["seq", "latitude", "longitude", "timestamp"],
            "properties": {
                "seq": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_SEQ,
                    "description": "the phone's sequence number of the point: it grows with every point "
                    "recorded; a point at or below the newest accepted one is ignored",
                },
                "latitude": {**degrees, "minimum": -90, "maximum": 90},
                "longitude": {**degrees, "minimum": -180, "maximum": 180},
                "timestamp": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_TIMESTAMP_MS,
                    "description": "when the phone recorded it, Unix milliseconds",
                },
            },
        },
        "Upload": {
            "type": "object",
            "required": ["locations"],
            "properties": {
                "locations": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": max_points,
                    "items": {"$ref": "#/components/schemas/Point"},
                }
            },
        },
        "UploadAnswer": {
            "type": "object",
            "required": ["accepted", "ignored", "last_seq", "interval_s"],
            "additionalProperties": False,
            "properties": {
                "accepted": {"type": "integer", "minimum": 0, "description": "points applied"},
                "ignored": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "points at or below the newest accepted sequence number (sent before)",
                },
                "last_seq": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                "interval_s": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": "upload again after this long: short while a friend in range looks",
                },
            },
        },
    }


def _upload_operation(max_points: int, max_per_min: float) -> dict[str, Any]:
    return {
        "summary": "Upload locations recorded while no socket was open",
        "description": f"One point or a batch of up to {max_points}, at most {MAX_UPLOAD_BYTES} bytes, at most "
        f"{max_per_min:g} uploads a minute per user. The points take the socket's path: history by the user's "
        "sharing rules, the newest cached and published to friends in range. Idempotent by `seq`: sending the "
        "same upload again changes nothing. See docs/friends-protocol.md.",
        "security": [{"bearer": []}],
        "requestBody": {"required": True, "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Upload"}}}},
        "responses": {
            "200": _json("what was applied, and when to upload next", {"$ref": "#/components/schemas/UploadAnswer"}),
            "400": _problem("not JSON, no list of 1 to the most points, or a point with a bad field (named)"),
            "401": _problem(
                "no bearer token, or a malformed, badly signed or expired one",
                WWW_Authenticate={"schema": {"type": "string", "const": 'Bearer realm="geo"'}},
            ),
            "413": _problem(f"a body over {MAX_UPLOAD_BYTES} bytes"),
            "429": _problem("over the user's uploads a minute", Retry_After=_RETRY_AFTER),
            "503": _problem(
                "PostgreSQL, Redis or the token keys cannot be reached; nothing was applied",
                Retry_After=_RETRY_AFTER,
            ),
        },
    }


def _probe(summary: str, schema: dict[str, Any], *, unready: bool = False) -> dict[str, Any]:
    responses = {"200": _json(summary, schema)}
    if unready:
        responses["503"] = _json("not ready: a dependency does not answer, or the instance drains", schema)
    return {"get": {"summary": summary, "responses": responses}}


@lru_cache(maxsize=8)
def openapi_document(max_points: int, max_per_min: float) -> bytes:
    """The document, with this instance's upload limits.

    Args:
        max_points: ``GEO_UPLOAD_MAX_POINTS``.
        max_per_min: ``GEO_UPLOAD_MAX_PER_MIN``.
    """
    readiness = {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["ok", "unavailable", "draining"]},
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
    }
    liveness = {
        "type": "object",
        "required": ["status", "pid"],
        "properties": {"status": {"const": "ok"}, "pid": {"type": "integer"}},
    }
    document = {
        "openapi": "3.1.0",
        "info": {
            "title": "geo friends tier: HTTP routes",
            "version": "1.0.0",
            "description": "The WebSocket protocol (/v1/friends/ws) is described at /asyncapi.json. Errors are "
            "application/problem+json with an `errors` list naming each field at fault, and the request's id "
            "in `instance` and `X-Request-Id`.",
        },
        "paths": {
            "/v1/me/locations": {"post": _upload_operation(max_points, max_per_min)},
            "/healthz": _probe("the process answers", liveness),
            "/readyz": _probe(
                "PostgreSQL, the location cache and every region's pub/sub answer", readiness, unready=True
            ),
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics of this process",
                    "responses": {"200": {"description": "the text exposition format"}},
                }
            },
            "/asyncapi.json": {
                "get": {"summary": "the WebSocket protocol", "responses": {"200": _json("AsyncAPI 3.0", {})}}
            },
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": _json("OpenAPI 3.1", {})}}},
        },
        "components": {
            "schemas": _schemas(max_points),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
    return orjson.dumps(document)


async def serve_openapi(request: web.Request) -> web.Response:
    """``GET /openapi.json``."""
    settings = request.app[settings_key]
    body = openapi_document(settings.upload_max_points, settings.upload_max_per_min)
    return web.Response(body=body, content_type=_JSON)
