"""``GET /openapi.json``: the OpenAPI 3.1 description of every route, parameter and error.

Written out by hand next to the code it describes (validation in :mod:`location_api.validate`
and :mod:`location_api.search_params`, the searches' parameters in
:mod:`location_api.search_openapi`,
limits in :mod:`location_api.contract`); the tests run schemathesis against it, so a response
that strays from it fails the build.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from location_api.business_openapi import MAX_ID as _MAX_ID
from location_api.business_openapi import business_schemas
from location_api.friends.openapi import friendship_openapi_paths
from location_api.me_openapi import me_openapi_paths
from location_api.page.openapi import page_openapi_paths
from location_api.reference_page import reference_openapi_paths
from location_api.contract import (
    MAX_BODY_BYTES,
    MAX_LIMIT,
    MIN_RADIUS_M,
    Role,
)
from location_api.consistency import CONSISTENCY_HEADER
from location_api.search_openapi import area_parameters, search_parameters
from geo_common.problems import PROBLEM_SCHEMA

_JSON = "application/json"
_PROBLEM = "application/problem+json"
#: A consistency token: a WAL position as PostgreSQL prints it, a dot, a 22-character MAC.
_TOKEN_PATTERN = "^[0-9A-F]{1,8}/[0-9A-F]{1,8}[.][A-Za-z0-9_-]{22}$"


def _ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {_PROBLEM: {"schema": _ref("schemas", "Problem")}},
    }
    if headers:
        response["headers"] = headers
    return response


def _components(max_radius_m: float) -> dict[str, Any]:
    schemas = business_schemas()
    business_properties: dict[str, Any] = schemas["Business"]["properties"]
    token_header = {
        "description": "the primary's WAL position after the write, signed; send it back unchanged on reads "
        "to read this write",
        "schema": {"type": "string", "pattern": _TOKEN_PATTERN},
    }
    return {
        "schemas": {
            **schemas,
            "SearchHit": {
                "type": "object",
                "required": [*business_properties, "distance_m"],
                "additionalProperties": False,
                "properties": {
                    **business_properties,
                    "distance_m": {"type": "number", "minimum": 0, "description": "great-circle distance, metres"},
                },
            },
            "SearchResult": {
                "type": "object",
                "required": ["total", "radius_m", "businesses", "next_cursor"],
                "additionalProperties": False,
                "properties": {
                    "total": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "matches within radius_m (an area search: in the box)",
                    },
                    "radius_m": {
                        "type": "number",
                        "minimum": MIN_RADIUS_M,
                        "maximum": max_radius_m,
                        "description": "the radius searched (widened by expand or k); an area search: its box's "
                        "farthest point from the centre, plus 1 m",
                    },
                    "businesses": {"type": "array", "maxItems": MAX_LIMIT, "items": _ref("schemas", "SearchHit")},
                    "next_cursor": {"type": ["string", "null"], "description": "opaque; null on the last page"},
                },
            },
            "Problem": PROBLEM_SCHEMA,
            "Readiness": {
                "type": "object",
                "required": ["status", "role", "primary", "replicas", "redis"],
                "properties": {
                    "status": {"enum": ["ready", "not_ready"]},
                    "role": {"enum": [r.value for r in Role]},
                    "primary": {"type": "object"},
                    "replicas": {"type": "object"},
                    "redis": {"type": "object"},
                    "index": {"type": "object"},
                },
            },
        },
        "parameters": {
            "BusinessId": {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": _MAX_ID},
            },
            "ConsistencyToken": {
                "name": CONSISTENCY_HEADER,
                "in": "header",
                "required": False,
                "description": "the token of a write response, unchanged: the read is answered only from data that "
                "includes that write. A value this API did not issue (unsigned, altered, malformed), or one ahead of "
                "the primary database (issued before a failover that lost the write), is a 400 naming this header",
                "schema": {"type": "string", "pattern": _TOKEN_PATTERN},
            },
        },
        "headers": {"ConsistencyToken": token_header},
        "responses": {
            "BadRequest": _problem("a parameter, header or body field is missing or malformed; `errors` names each"),
            "Unauthorized": _problem(
                "no bearer token, or a malformed, badly signed or expired one",
                {"WWW-Authenticate": {"schema": {"type": "string"}}},
            ),
            "Forbidden": _problem(
                "the token's role may not write businesses (owner or admin is needed), or an owner's token "
                "for a business it does not own (only admins change the operator's businesses)"
            ),
            "NotFound": _problem("no business with this id"),
            "TooLarge": _problem(f"the body is larger than {MAX_BODY_BYTES} bytes"),
            "Unavailable": _problem(
                "no database that could answer is reachable", {"Retry-After": {"schema": {"type": "string"}}}
            ),
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
    }


def _search_operation(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """A search route: its parameters, one page of :data:`SearchResult`, the errors of both."""
    return {
        "get": {
            "summary": summary,
            "description": "Unknown query parameters are refused (400), and so is one given twice.",
            "parameters": parameters,
            "responses": {
                "200": {"description": "a page", "content": {_JSON: {"schema": _ref("schemas", "SearchResult")}}},
                "400": _ref("responses", "BadRequest"),
                "503": _ref("responses", "Unavailable"),
            },
        }
    }


def _write_responses(success: dict[str, Any], *, with_body: bool, with_id: bool) -> dict[str, Any]:
    responses = {
        **success,
        "400": _ref("responses", "BadRequest"),
        "401": _ref("responses", "Unauthorized"),
        "403": _ref("responses", "Forbidden"),
        "503": _ref("responses", "Unavailable"),
    }
    if with_body:
        responses["413"] = _ref("responses", "TooLarge")
    if with_id:
        responses["404"] = _ref("responses", "NotFound")
    return responses


def _paths(role: Role, max_radius_m: float, dev: bool) -> dict[str, Any]:
    detail_json = {_JSON: {"schema": _ref("schemas", "BusinessDetail")}}
    record_json = {_JSON: {"schema": _ref("schemas", "BusinessRecord")}}
    body = {"required": True, "content": {_JSON: {"schema": _ref("schemas", "BusinessInput")}}}
    token = {CONSISTENCY_HEADER: _ref("headers", "ConsistencyToken")}
    paths: dict[str, Any] = {
        "/healthz": {
            "get": {
                "summary": "liveness",
                "responses": {
                    "200": {
                        "description": "the process answers",
                        "content": {_JSON: {"schema": {"type": "object", "required": ["status"]}}},
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "readiness: primary, replicas, Redis and indexes, each checked now",
                "responses": {
                    "200": {"description": "ready", "content": {_JSON: {"schema": _ref("schemas", "Readiness")}}},
                    "503": {"description": "not ready", "content": {_JSON: {"schema": _ref("schemas", "Readiness")}}},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "text format 0.0.4",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "this document",
                "responses": {
                    "200": {"description": "OpenAPI 3.1", "content": {_JSON: {"schema": {"type": "object"}}}}
                },
            }
        },
    }
    if role.reads:
        paths["/v1/search/nearby"] = _search_operation(
            "businesses within a radius, or the k nearest, filtered, nearest first or by sort (ties by id), "
            "one page at a time",
            search_parameters(max_radius_m),
        )
        paths["/v1/search/area"] = _search_operation(
            "businesses in a box, filtered, nearest its centre first or by sort (ties by id), one page at a time",
            area_parameters(max_radius_m),
        )
        paths["/v1/businesses/{id}"] = {
            "get": {
                "summary": "one business",
                "parameters": [_ref("parameters", "BusinessId"), _ref("parameters", "ConsistencyToken")],
                "responses": {
                    "200": {"description": "the business", "content": detail_json},
                    "400": _ref("responses", "BadRequest"),
                    "404": _ref("responses", "NotFound"),
                    "503": _ref("responses", "Unavailable"),
                },
            }
        }
    if role.writes:
        secured: list[dict[str, list[str]]] = [{"bearer": []}]
        paths["/v1/businesses"] = {
            "post": {
                "summary": "create a business (role owner: owned by the caller; admin: the operator's)",
                "security": secured,
                "requestBody": body,
                "responses": _write_responses(
                    {
                        "201": {
                            "description": "created",
                            "headers": {"Location": {"schema": {"type": "string"}}, **token},
                            "content": record_json,
                        }
                    },
                    with_body=True,
                    with_id=False,
                ),
            }
        }
        item = paths.setdefault("/v1/businesses/{id}", {})
        item["put"] = {
            "summary": "replace a business's fields (its owner, or an admin)",
            "security": secured,
            "parameters": [_ref("parameters", "BusinessId")],
            "requestBody": body,
            "responses": _write_responses(
                {"200": {"description": "updated", "headers": token, "content": record_json}},
                with_body=True,
                with_id=True,
            ),
        }
        item["delete"] = {
            "summary": "delete a business (its owner, or an admin)",
            "security": secured,
            "parameters": [_ref("parameters", "BusinessId")],
            "responses": _write_responses(
                {"204": {"description": "deleted", "headers": token}}, with_body=False, with_id=True
            ),
        }
    paths.update(friendship_openapi_paths(role))
    paths.update(page_openapi_paths(role, dev=dev))
    paths.update(me_openapi_paths())
    paths.update(reference_openapi_paths())
    return paths


@lru_cache(maxsize=8)
def openapi_document(role: Role, max_radius_m: float, dev: bool = False) -> bytes:
    """The OpenAPI document for an instance, as JSON bytes.

    Args:
        role: which routes the instance serves (only those are described).
        max_radius_m: the largest radius it accepts, metres.
        dev: whether it serves the development-only routes (``GEO_DEV``).

    Returns:
        The document.
    """
    return orjson.dumps(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "geo location API",
                "version": "1.0.0",
                "description": "Nearby business search and business CRUD. Errors are application/problem+json "
                "with an `errors` list naming each field at fault. Every answer carries its request's id in "
                "`X-Request-Id` (the caller's, when it sends a safe one: 1 to 64 letters, digits, `-`, `_`, `.`, "
                "`:`), and every problem document names it in `instance`. See docs/api.md; this reference is "
                "rendered at /docs.",
            },
            "paths": _paths(role, max_radius_m, dev),
            "components": _components(max_radius_m),
        }
    )
