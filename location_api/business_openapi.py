"""The OpenAPI 3.1 schemas of a business (``location_api.openapi`` merges them): as search
hits show it, as its detail page shows it (time zone, opening hours, open now, contacts,
price level, rating), as its writer sees it, and as a client writes it."""

from __future__ import annotations

from typing import Any

from location_api.contract import MAX_ADDRESS_CHARS, MAX_CATEGORY_CHARS, MAX_NAME_CHARS
from location_api.filters import MAX_CATEGORIES
from location_api.detail_checks import MAX_PHONE_CHARS, MAX_REVIEW_COUNT, MAX_WEBSITE_CHARS
from location_api.hours import DAYS, MAX_EXCEPTIONS, MAX_INTERVALS_PER_DAY
from location_api.time_zones import ZONES

MAX_ID = 2**63 - 1
# Text the API stores: no NUL (PostgreSQL text cannot hold one); "non-blank" adds one
# character that is not ASCII white space somewhere (the rule of query_values.text).
NO_NUL = "^[^\\u0000]*$"
NON_BLANK = "^[^\\u0000]*[^\\u0000 \\t\\n\\r\\f\\v][^\\u0000]*$"
_OPENS = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"}
_CLOSES = {"type": "string", "pattern": "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"}
_INTERVALS = {
    "type": "array",
    "maxItems": MAX_INTERVALS_PER_DAY,
    "description": "[open, close] wall-clock times, in order, not overlapping, open and close different; a "
    'close before the open runs past midnight (["18:00", "02:00"]); ["00:00", "24:00"] is the whole day',
    "items": {"type": "array", "minItems": 2, "maxItems": 2, "prefixItems": [_OPENS, _CLOSES]},
}
_OPENING_HOURS = {
    "description": "opening hours in the business's local time (docs/api.md, Opening hours)",
    "type": "object",
    "required": ["weekly"],
    "additionalProperties": False,
    "properties": {
        "weekly": {
            "type": "object",
            "description": "the days with hours; a day left out is closed",
            "additionalProperties": False,
            "properties": {day: _INTERVALS for day in DAYS},
        },
        "exceptions": {
            "type": "array",
            "maxItems": MAX_EXCEPTIONS,
            "description": "local dates whose intervals replace the weekly ones ([]: closed that day)",
            "items": {
                "type": "object",
                "required": ["date", "intervals"],
                "additionalProperties": False,
                "properties": {"date": {"type": "string", "format": "date"}, "intervals": _INTERVALS},
            },
        },
    },
}
_TIME_ZONE = {
    "enum": sorted(ZONES),
    "description": "IANA time zone the hours are read in; when not written, the zone of the coordinates",
}


def business_schemas() -> dict[str, Any]:
    """``Business``, ``BusinessDetail``, ``BusinessRecord``, ``BusinessInput`` and
    ``OpeningHours``, for ``components.schemas``."""
    business_properties: dict[str, Any] = {
        "id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
        "latitude": {"type": "number", "minimum": -90, "maximum": 90, "description": "degrees (WGS84), as stored"},
        "longitude": {"type": "number", "minimum": -180, "maximum": 180, "description": "degrees (WGS84), as stored"},
        "category": {"type": "string", "maxLength": MAX_CATEGORY_CHARS},
        "address": {"type": "string", "maxLength": MAX_ADDRESS_CHARS},
    }
    local_properties: dict[str, Any] = {
        "time_zone": _TIME_ZONE,
        "hours": {"oneOf": [{"$ref": "#/components/schemas/OpeningHours"}, {"type": "null"}]},
        "phone": {
            "type": ["string", "null"],
            "pattern": "^[+]?[0-9 ().-]*[0-9][0-9 ().-]*[0-9][0-9 ().-]*[0-9][0-9 ().-]*$",
            "maxLength": MAX_PHONE_CHARS,
            "description": "digits, spaces and + - ( ) ., at least 3 digits; null: not known",
        },
        "website": {
            "type": ["string", "null"],
            "pattern": "^https?://[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?([.][A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
            "(:[1-9][0-9]{0,3})?(/[!-~]*)?$",
            "maxLength": MAX_WEBSITE_CHARS,
            "description": "an http or https address, without a user name or password; null: not known",
        },
        "price_level": {"type": ["integer", "null"], "minimum": 1, "maximum": 4, "description": "1 cheap to 4"},
        "rating": {
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": 5,
            "description": "mean review; null exactly when review_count is 0; only an admin writes it",
        },
        "review_count": {"type": "integer", "minimum": 0, "maximum": MAX_REVIEW_COUNT},
    }
    categories: dict[str, Any] = {
        "type": "array",
        "maxItems": MAX_CATEGORIES,
        "items": {"type": "string", "minLength": 1, "maxLength": MAX_CATEGORY_CHARS},
        "description": "every category, the main one (category) first; search filters match any of them",
    }
    local_properties = {"categories": categories, **local_properties}
    detail_properties: dict[str, Any] = {
        **business_properties,
        **local_properties,
        "open_now": {"type": ["boolean", "null"], "description": "at the time of the answer; null: hours not known"},
        "next_change": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "when it next opens or closes, local time with its offset; null: hours not known, or "
            "no change within 108 days (open around the clock, or no hours ahead)",
        },
    }
    user_id = {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_ID}
    record_properties: dict[str, Any] = {
        **business_properties,
        **local_properties,
        "owner_id": {**user_id, "description": "the owning user; null: the operator's (only admins change it)"},
        "created_by": {**user_id, "description": "the user who created it; null: loaded, not created through the API"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_by": {**user_id, "description": "the user who wrote it last; null: not written through the API"},
        "updated_at": {"type": "string", "format": "date-time"},
    }

    def closed(properties: dict[str, Any], description: str | None = None) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object", "required": list(properties), "additionalProperties": False}
        return {**({"description": description} if description else {}), **schema, "properties": properties}

    return {
        "Business": closed(business_properties),
        "BusinessDetail": closed(detail_properties, "a business with its time zone and hours (GET by id)"),
        "BusinessRecord": closed(
            record_properties,
            "a business with its owner and authors: only in the answer to its writer "
            "(user ids are private, so public reads and search hits leave them out)",
        ),
        "BusinessInput": {
            "type": "object",
            "required": ["name", "latitude", "longitude"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS, "pattern": NON_BLANK},
                "latitude": {"type": "number", "minimum": -90, "maximum": 90},
                "longitude": {"type": "number", "minimum": -180, "maximum": 180},
                "category": {"type": "string", "maxLength": MAX_CATEGORY_CHARS, "pattern": NO_NUL},
                "address": {"type": "string", "maxLength": MAX_ADDRESS_CHARS, "pattern": NO_NUL},
                **local_properties,
                "categories": {
                    **categories,
                    "minItems": 1,
                    "items": {**categories["items"], "pattern": NON_BLANK},
                    "description": "every category, the main one first: it sets category, which, when given "
                    "too, must be the first",
                },
            },
        },
        "OpeningHours": _OPENING_HOURS,
    }
