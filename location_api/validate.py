"""Parsing and checking a business as written (the JSON body of POST and PUT) and the ids of
paths; the searches' query strings are :mod:`location_api.search_params`'s, consistency
tokens (a header) :mod:`location_api.consistency`'s.

Each parser collects every problem it finds before raising, so one 400 names all the fields
at fault.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


from geo_common.problems import FieldError
from location_api.bodies import json_object
from location_api.contract import MAX_ADDRESS_CHARS, MAX_CATEGORY_CHARS, MAX_NAME_CHARS
from location_api.detail_checks import check_phone, check_price_level, check_rating, check_review_count, check_website
from location_api.errors import InvalidBody, InvalidRequest
from location_api.filters import MAX_CATEGORIES
from location_api.hours import InvalidHours, parse_hours
from location_api.models import BusinessDetails, BusinessInput
from location_api.query_values import BLANK, whole
from location_api.time_zones import check_zone, zone_at

_MAX_BIGINT = 2**63 - 1
BODY_FIELDS = (
    "name",
    "latitude",
    "longitude",
    "category",
    "categories",
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


def parse_business(body: bytes) -> BusinessInput:
    """Validate the JSON body of ``POST /v1/businesses`` or ``PUT /v1/businesses/{id}``.

    Args:
        body: the raw request body.

    Returns:
        The business to write; ``categories`` gives ``category`` (its first) and the
        details' ``more_categories`` (the rest); ``category`` and ``address`` default to empty strings,
        ``time_zone`` to the zone of the coordinates, the other details to not known (no
        reviews). A rating needs reviews, and reviews a rating.

    Raises:
        InvalidBody: the body is not a JSON object, or names each field that is missing,
            unknown, of the wrong type or out of range.
    """
    document, errors = json_object(body, BODY_FIELDS, required=REQUIRED_BODY_FIELDS)
    fields: dict[str, Any] = {}
    checks: dict[str, Callable[[object], object]] = {
        "name": lambda v: _string_field(v, MAX_NAME_CHARS, blank_ok=False),
        "latitude": lambda v: _coordinate(v, 90.0),
        "longitude": lambda v: _coordinate(v, 180.0),
        "category": lambda v: _string_field(v, MAX_CATEGORY_CHARS, blank_ok=True),
        "categories": _category_list,
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
    listed: tuple[str, ...] = fields.pop("categories", ())
    if listed and "category" in fields and fields["category"] != listed[0]:
        errors.append(FieldError("category", "must be the first of categories, or left out"))
    if errors:
        raise InvalidBody("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    time_zone = fields.pop("time_zone", None) or zone_at(fields["latitude"], fields["longitude"])
    if listed:
        fields["category"] = listed[0]
    details = BusinessDetails(
        time_zone,
        **{name: fields.pop(name) for name in _DETAIL_FIELDS if name in fields},
        more_categories=_distinct(listed)[1:],
    )
    return BusinessInput(**fields, details=details, rates="rating" in document or "review_count" in document)


def _distinct(categories: tuple[str, ...]) -> tuple[str, ...]:
    """The categories without repeats, case folded to compare, each as first written."""
    seen: dict[str, str] = {}
    for category in categories:
        seen.setdefault(category.casefold(), category)
    return tuple(seen.values())


def _category_list(value: object) -> tuple[str, ...]:
    """``categories``: 1 to :data:`MAX_CATEGORIES` categories, the main one first."""
    if not isinstance(value, list):
        raise ValueError(f"must be an array of strings, got {_json_type(value)}")
    if not 1 <= len(value) <= MAX_CATEGORIES:
        raise ValueError(f"must hold 1 to {MAX_CATEGORIES} categories, got {len(value)}")
    return tuple(_string_field(item, MAX_CATEGORY_CHARS, blank_ok=False) for item in value)


def _string_field(value: object, max_chars: int, *, blank_ok: bool) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_json_type(value)}")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not blank_ok and not value.strip(BLANK):
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
        return whole(raw, 1, _MAX_BIGINT)
    except ValueError as exc:
        raise InvalidRequest.field("id", str(exc)) from None
