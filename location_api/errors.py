"""Errors of the HTTP API and how they are rendered as ``application/problem+json``.

Views and the modules under them raise :class:`ApiError` subclasses (which also subclass the
built-in a caller would expect, such as :class:`ValueError`); only the wrapper every
route's handler is registered with (:func:`location_api.handling.answering`, through
:func:`problem_for`) turns them into responses (RFC 9457 problem details, plus an ``errors`` list naming each bad
field). The errors of :class:`geo_common.database.Database` (:class:`DatabaseUnavailable`, a 503
with ``Retry-After``, and :class:`AheadOfPrimary`, a 400 naming the consistency token's
header), the 404 and 405 for requests no route serves, and aiohttp's 413 become problem
documents too, and anything unexpected is logged and answered with a 500 that leaks nothing.
Every problem document's ``instance`` names the request (``urn:request:<id>``, the id also
answered in ``X-Request-Id``, :mod:`geo_common.request_context`), so a client's report leads
to the log lines of its request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import ClassVar

from aiohttp import web

from geo_common.database import AheadOfPrimary, DatabaseUnavailable
from geo_common.database_node import format_lsn
from geo_common.problems import FieldError, problem_response
from location_api.contract import MAX_BODY_BYTES

log = logging.getLogger(__name__)

#: The header a write's consistency token travels in, both ways (:mod:`location_api.consistency`).
CONSISTENCY_HEADER = "X-Consistency-Token"


class ApiError(Exception):
    """Base of every error the API answers with; renders itself as a problem document.

    Attributes:
        status: the HTTP status.
        slug: the last part of the problem ``type`` URI (``/problems/<slug>``).
        title: a short summary that is the same for every occurrence.
    """

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str,
        errors: Sequence[FieldError] = (),
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = dict(headers or {})

    def to_response(self) -> web.Response:
        """The problem document for this error, with its status and headers."""
        return problem_response(self.status, self.slug, self.title, self.detail, self.errors, self.headers)


class InvalidRequest(ApiError, ValueError):
    """A query parameter, header, path parameter or body field is missing or malformed (400)."""

    status = 400
    slug = "invalid-request"
    title = "The request is invalid"

    @classmethod
    def field(cls, field: str, message: str) -> InvalidRequest:
        """An error about one field, whose detail repeats the field's message."""
        return cls(f"{field}: {message}", [FieldError(field, message)])


class InvalidBody(InvalidRequest):
    """The request body is not JSON, or not the JSON object the route expects (400)."""

    slug = "invalid-body"
    title = "The request body is invalid"


class InvalidCursor(InvalidRequest):
    """The paging cursor is malformed, forged, or belongs to another query (400)."""

    slug = "invalid-cursor"
    title = "The cursor is invalid"


#: What a cursor that is not one of ours is told: also one from before an upgrade that
#: changed the format, whose client can only start the search again.
FOREIGN_CURSOR = "is not a cursor this API issued, or was issued before an upgrade: search again without it"


class NotAuthenticated(ApiError, PermissionError):
    """No bearer token, or one that is malformed, badly signed or expired (401)."""

    status = 401
    slug = "not-authenticated"
    title = "Authentication required"

    def __init__(self, detail: str) -> None:
        # RFC 6750 section 3: a 401 names the scheme the client should use.
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="geo", error="invalid_token"'})


class Forbidden(ApiError, PermissionError):
    """The token is valid but its role may not do this (403)."""

    status = 403
    slug = "forbidden"
    title = "Not allowed"


class NotFound(ApiError, LookupError):
    """No business with this id, or no such route (404)."""

    status = 404
    slug = "not-found"
    title = "Not found"


class Conflict(ApiError):
    """The request is well formed but the state of the resource refuses it (409); subclasses
    name the state in their ``slug``."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class MethodNotAllowed(ApiError):
    """The route exists but not with this method (405); ``Allow`` lists the methods it has."""

    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class PayloadTooLarge(ApiError, ValueError):
    """The request body is larger than the API accepts (413)."""

    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    """Render aiohttp's own routing and body-size errors as the API's problem documents."""
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return MethodNotAllowed(
            f"{exc.method} is not allowed here; allowed: {allowed}", headers={"Allow": allowed}
        ).to_response()
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return PayloadTooLarge(f"the request body is larger than the {MAX_BODY_BYTES} bytes accepted").to_response()
    if isinstance(exc, web.HTTPNotFound):
        return NotFound("no such route").to_response()
    return problem_response(exc.status, "http-error", exc.reason, exc.text or exc.reason)


def _database_unavailable(exc: DatabaseUnavailable) -> web.Response:
    """The 503 for a database that cannot answer, with its ``Retry-After``."""
    headers = {"Retry-After": str(exc.retry_after_s)}
    return problem_response(503, "database-unavailable", "Database unavailable", str(exc), headers=headers)


def _ahead_of_primary(exc: AheadOfPrimary) -> web.Response:
    """The 400 for a signed consistency token the primary has not reached, naming the header
    as every other token the API refuses does (:mod:`location_api.consistency`)."""
    message = (
        f"is ahead of the primary database ({format_lsn(exc.lsn)} > {format_lsn(exc.primary_lsn)}): "
        "the write it stands for is not there; read without it"
    )
    return InvalidRequest.field(CONSISTENCY_HEADER, message).to_response()


def problem_for(request: web.Request, exc: Exception, route: str) -> web.Response:
    """The problem document answering a failed request; logs only what is unexpected.

    Args:
        request: the request.
        exc: what the handler raised.
        route: the route's template, what the log names (never the path or the query
            string: a search's holds a position, a path may hold a user id).

    Returns:
        The problem document.

    Raises:
        web.HTTPException: ``exc`` itself when it is not an error (a redirect passes through).
    """
    if isinstance(exc, ApiError):
        return exc.to_response()
    if isinstance(exc, DatabaseUnavailable):
        return _database_unavailable(exc)
    if isinstance(exc, AheadOfPrimary):
        return _ahead_of_primary(exc)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return _from_http_exception(exc)
    log.exception("unexpected error answering %s %s", request.method, route, exc_info=exc)
    return problem_response(500, ApiError.slug, ApiError.title, "the server failed to answer; it has been logged")
