"""Parsing and checking client input: query parameters, the JSON body, path ids (consistency
tokens, a header, are checked by :mod:`location_api.consistency`).

Each parser collects every problem it finds before raising, so one 400 names all the fields
at fault. Numbers are accepted only in plain decimal notation: Python's ``float()`` would
also take ``nan``, ``inf``, ``1_000`` and surrounding blanks, none of which is a coordinate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import orjson
from multidict import MultiMapping

from location_api.errors import FOREIGN_CURSOR, InvalidBody, InvalidRequest
from geo_common.problems import FieldError
from location_api.hours import InvalidHours, parse_hours
from location_api.detail_checks import check_phone, check_price_level, check_rating, check_review_count, check_website
from location_api.models import BusinessDetails, BusinessInput, SearchQuery
from location_api.time_zones import check_zone, zone_at
from location_api.contract import (
    DEFAULT_LIMIT,
    DEFAULT_RADIUS_M,
    MAX_ADDRESS_CHARS,
    MAX_CATEGORY_CHARS,
    MAX_LIMIT,
    MAX_NAME_CHARS,
    MIN_RADIUS_M,
    STRATEGIES,
)

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_WHOLE = re.compile(r"[0-9]+")
_MAX_BIGINT = 2**63 - 1
_MAX_CURSOR_CHARS = 1024

SEARCH_PARAMETERS = ("latitude", "longitude", "radius", "limit", "cursor", "category", "expand", "index")
BODY_FIELDS = (
    "name",
    "latitude",
    "longitude",
    "category",
    "address",
    "time_zone",
    "hours",
    "phone",
    "website",
    "price_level",
    "rating",
    "review_count",
)
#: The fields of :class:`location_api.models.BusinessDetails` (all but ``time_zone`` may be left out).
_DETAIL_FIELDS = ("hours", "phone", "website", "price_level", "rating", "review_count")
REQUIRED_BODY_FIELDS = ("name", "latitude", "longitude")
#: What counts as blank: ASCII white space only, the same rule as the OpenAPI patterns.
_BLANK = " \t\n\r\f\v"


def _shown(raw: str) -> str:
    """A client's value quoted for an error message, cut short so a message stays short."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")


def _number(raw: str, lo: float, hi: float) -> float:
    """Parse a decimal number in [lo, hi]; ``ValueError`` says what is wrong with it."""
    if raw == "":
        raise ValueError("must not be empty")
    if not _DECIMAL.fullmatch(raw):
        raise ValueError(f"must be a decimal number, got {_shown(raw)}")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {_shown(raw)}")
    if not lo <= value <= hi:
        raise ValueError(f"must be from {lo:g} to {hi:g}, got {_shown(raw)}")
    return value


def _whole(raw: str, lo: int, hi: int) -> int:
    """Parse a whole number in [lo, hi]; ``ValueError`` says what is wrong with it."""
    if raw == "":
        raise ValueError("must not be empty")
    if not _WHOLE.fullmatch(raw) or len(raw) > 19:
        raise ValueError(f"must be a whole number from {lo} to {hi}, got {_shown(raw)}")
    value = int(raw)
    if not lo <= value <= hi:
        raise ValueError(f"must be a whole number from {lo} to {hi}, got {_shown(raw)}")
    return value


def _text(raw: str, max_chars: int) -> str:
    """Check a text value: not blank, no NUL (PostgreSQL text cannot hold one), not too long."""
    if not raw.strip(_BLANK):
        raise ValueError("must not be empty or blank")
    if "\x00" in raw:
        raise ValueError("must not contain NUL characters")
    if len(raw) > max_chars:
        raise ValueError(f"must be at most {max_chars} characters, got {len(raw)}")
    return raw


def parse_search(query: MultiMapping[str], *, max_radius_m: float) -> SearchQuery:
    """Validate the query string of ``GET /v1/search/nearby``.

    Unknown parameters are refused rather than ignored: a misspelt ``raduis`` would otherwise
    silently search the default 5 km.

    Args:
        query: the request's query parameters.
        max_radius_m: the largest radius accepted, metres.

    Returns:
        The search, with defaults filled in.

    Raises:
        InvalidRequest: naming every parameter that is missing, repeated, unknown or malformed.
    """
    errors: list[FieldError] = []
    values: dict[str, str] = {}
    reported: set[str] = set()
    for name, value in query.items():  # every pair: iterating the keys would hide repeats
        if name in reported:
            continue
        if name not in SEARCH_PARAMETERS:
            errors.append(FieldError(name, f"unknown query parameter; known: {', '.join(SEARCH_PARAMETERS)}"))
            reported.add(name)
        elif name in values:
            errors.append(FieldError(name, "given more than once"))
            reported.add(name)
        else:
            values[name] = value

    def get(name: str, parse: Any, default: Any) -> Any:
        if name in reported:
            return None  # already reported as repeated
        raw = values.get(name)
        if raw is None:
            if default is _REQUIRED:
                errors.append(FieldError(name, "is required"))
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            errors.append(FieldError(name, str(exc)))
            return None

    latitude = get("latitude", lambda r: _number(r, -90.0, 90.0), _REQUIRED)
    longitude = get("longitude", lambda r: _number(r, -180.0, 180.0), _REQUIRED)
    radius = get("radius", lambda r: _number(r, MIN_RADIUS_M, max_radius_m), DEFAULT_RADIUS_M)
    limit = get("limit", lambda r: _whole(r, 1, MAX_LIMIT), DEFAULT_LIMIT)
    category = get("category", lambda r: _text(r, MAX_CATEGORY_CHARS), None)
    expand = get("expand", _boolean, False)
    cursor = get("cursor", _cursor_text, None)
    strategy = get("index", _strategy, None)
    if errors:
        raise InvalidRequest("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return SearchQuery(latitude, longitude, radius, limit, category, expand, cursor, strategy)


class _Required:
    """Marks a parameter without a default."""


_REQUIRED: Any = _Required()


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(f"must be true or false, got {_shown(raw)}")


def _cursor_text(raw: str) -> str:
    if not raw:
        raise ValueError("must not be empty (omit it for the first page)")
    if len(raw) > _MAX_CURSOR_CHARS:
        raise ValueError(FOREIGN_CURSOR)
    return raw


def _strategy(raw: str) -> str:
    if raw not in STRATEGIES:
        raise ValueError(f"must be one of {', '.join(STRATEGIES)}, got {_shown(raw)}")
    return raw


def parse_business(body: bytes) -> BusinessInput:
    """Validate the JSON body of ``POST /v1/businesses`` or ``PUT /v1/businesses/{id}``.

    Args:
        body: the raw request body.

    Returns:
        The business to write; ``category`` and ``address`` default to empty strings,
        ``time_zone`` to the zone of the coordinates, the other details to not known (no
        reviews). A rating needs reviews, and reviews a rating.

    Raises:
        InvalidBody: the body is not a JSON object, or names each field that is missing,
            unknown, of the wrong type or out of range.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidBody(f"the body is not valid JSON: {exc}", [FieldError("body", "is not valid JSON")]) from None
    if not isinstance(document, dict):
        raise InvalidBody("the body must be a JSON object", [FieldError("body", "must be a JSON object")])
    errors: list[FieldError] = []
    for name in document:
        if name not in BODY_FIELDS:
            errors.append(FieldError(name, f"unknown field; known: {', '.join(BODY_FIELDS)}"))
    for name in REQUIRED_BODY_FIELDS:
        if name not in document:
            errors.append(FieldError(name, "is required"))
    fields: dict[str, Any] = {}
    checks: dict[str, Callable[[object], object]] = {
        "name": lambda v: _string_field(v, MAX_NAME_CHARS, blank_ok=False),
        "latitude": lambda v: _coordinate(v, 90.0),
        "longitude": lambda v: _coordinate(v, 180.0),
        "category": lambda v: _string_field(v, MAX_CATEGORY_CHARS, blank_ok=True),
        "address": lambda v: _string_field(v, MAX_ADDRESS_CHARS, blank_ok=True),
        "time_zone": check_zone,
        # null: not known (PUT replaces every field, hours included)
        "hours": lambda v: None if v is None else parse_hours(v),
        "phone": check_phone,
        "website": check_website,
        "price_level": check_price_level,
        "rating": check_rating,
        "review_count": check_review_count,
    }
    for name, check in checks.items():
        if name in document:
            try:
                fields[name] = check(document[name])
            except InvalidHours as exc:
                errors.extend(exc.errors)
            except ValueError as exc:
                errors.append(FieldError(name, str(exc)))
    if not errors and (fields.get("rating") is None) != (fields.get("review_count", 0) == 0):
        errors.append(FieldError("rating", "must be given with a review_count above 0, and only then"))
    if errors:
        raise InvalidBody("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    time_zone = fields.pop("time_zone", None) or zone_at(fields["latitude"], fields["longitude"])
    details = BusinessDetails(time_zone, **{name: fields.pop(name) for name in _DETAIL_FIELDS if name in fields})
    return BusinessInput(**fields, details=details, rates="rating" in document or "review_count" in document)


def _string_field(value: object, max_chars: int, *, blank_ok: bool) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_json_type(value)}")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not blank_ok and not value.strip(_BLANK):
        raise ValueError("must not be empty or blank")
    if len(value) > max_chars:
        raise ValueError(f"must be at most {max_chars} characters, got {len(value)}")
    return value


def _coordinate(value: object, bound: float) -> float:
    # bool is an int subclass in Python, but true is not a coordinate.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {_json_type(value)}")
    number = float(value)
    if not math.isfinite(number) or not -bound <= number <= bound:
        raise ValueError(f"must be a number of degrees from {-bound:g} to {bound:g}, got {value!r}")
    return number


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def parse_id(raw: str) -> int:
    """Validate the ``{id}`` of ``/v1/businesses/{id}``: a positive 64-bit integer.

    Raises:
        InvalidRequest: naming ``id``.
    """
    try:
        return _whole(raw, 1, _MAX_BIGINT)
    except ValueError as exc:
        raise InvalidRequest.field("id", str(exc)) from None
