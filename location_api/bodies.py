"""JSON request bodies: parsed once, and their field names checked against what a route knows.

The values are the route's to check; every mistake is an :class:`~location_api.errors.InvalidBody`
naming the field (``body`` for a body that is not a JSON object).
"""

from __future__ import annotations

from typing import Any

import orjson

from location_api.errors import InvalidBody
from geo_common.problems import FieldError


def json_object(
    body: bytes, known: tuple[str, ...], *, required: tuple[str, ...]
) -> tuple[dict[str, Any], list[FieldError]]:
    """A body that must be a JSON object, and what is wrong with its field names.

    Args:
        body: the raw request body.
        known: the fields the route accepts.
        required: those of them that must be there.

    Returns:
        The object, and an error for each field that is unknown, then for each required one
        that is missing (for the caller to add its own to, and raise).

    Raises:
        InvalidBody: not JSON, or not an object.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidBody("the body is not valid JSON", [FieldError("body", "is not valid JSON")]) from None
    if not isinstance(document, dict):
        raise InvalidBody("the body must be a JSON object", [FieldError("body", "must be a JSON object")])
    errors = [FieldError(n, f"unknown field; known: {', '.join(known)}") for n in document if n not in known]
    errors += [FieldError(n, "is required") for n in required if n not in document]
    return document, errors


def json_fields(body: bytes, known: tuple[str, ...]) -> dict[str, Any]:
    """A body that must be a JSON object with exactly the fields ``known`` (all required).

    Returns:
        The object; its values are the caller's to check.

    Raises:
        InvalidBody: not JSON, not an object, or naming each field that is unknown or missing.
    """
    document, errors = json_object(body, known, required=known)
    if errors:
        raise InvalidBody("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return document
