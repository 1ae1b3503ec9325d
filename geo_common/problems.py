"""Problem details (RFC 9457) as both services answer HTTP errors: ``application/problem+json``
with an ``errors`` list naming each field at fault, and the request's id in ``instance``
(``urn:request:<id>``, :mod:`geo_common.request_context`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
from aiohttp import web

from geo_common.request_context import current_request_id, problem_instance

PROBLEM_JSON = "application/problem+json"
#: The JSON Schema of a problem document, for both services' OpenAPI documents.
PROBLEM_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "errors"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {
            "type": "string",
            "description": "the request, urn:request:<id>; the id is also answered in X-Request-Id",
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


@dataclass(frozen=True, slots=True)
class FieldError:
    """One thing wrong with one input: a query parameter, a header, a body field or ``id``."""

    field: str
    message: str


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """Render a problem document (RFC 9457) with an ``errors`` list.

    Args:
        status: the HTTP status.
        slug: names the problem type, ``/problems/<slug>``.
        title: the summary.
        detail: what went wrong this time.
        errors: the fields at fault (may be empty).
        headers: extra response headers.

    Returns:
        The response, ``Content-Type: application/problem+json``; its ``instance`` is the
        current request's (none outside a request).
    """
    body: dict[str, object] = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [{"field": e.field, "message": e.message} for e in errors],
    }
    request_id = current_request_id.get()
    if request_id:
        body["instance"] = problem_instance(request_id)
    return web.Response(status=status, body=orjson.dumps(body), content_type=PROBLEM_JSON, headers=dict(headers or {}))
