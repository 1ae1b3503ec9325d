"""The query parameters of the two searches in the OpenAPI document (:mod:`location_api.openapi`),
each schema describing exactly what :mod:`location_api.search_params` accepts, as far as a
pattern can: the rules across parameters are in the descriptions.
"""

from __future__ import annotations

from typing import Any

from location_api.contract import (
    DEFAULT_LIMIT,
    DEFAULT_RADIUS_M,
    MAX_CATEGORY_CHARS,
    MAX_LIMIT,
    MIN_RADIUS_M,
    STRATEGIES,
)
from location_api.filters import MAX_CATEGORIES, VOCABULARY
from location_api.search_params import K_FIRST_RADIUS_M, SORTS
from location_api.text_match import MAX_QUERY_CHARS, MAX_QUERY_WORDS


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


#: Blanks as validate.py counts them (ASCII white space), inside a character class.
_BLANKS = " \\t\\n\\r\\f\\v"
#: One category of a comma-separated list: no comma or NUL, not blank (the length is checked
#: by the lookahead of :data:`_CATEGORIES`).
_CATEGORY = f"[^\\u0000,]*[^\\u0000,{_BLANKS}][^\\u0000,]*"
_CATEGORIES = f"^(?![\\s\\S]*[^,]{{{MAX_CATEGORY_CHARS + 1}}}){_CATEGORY}(,{_CATEGORY}){{0,{MAX_CATEGORIES - 1}}}$"
#: 1 to MAX_QUERY_WORDS words (text_match.words: runs of letters and digits, the combining
#: marks in them dropped), no NUL.
_WORD = "[\\p{L}\\p{N}][\\p{L}\\p{N}\\p{M}]*"
_NOT_WORD = "[^\\p{L}\\p{N}\\u0000]*"
_TEXT_QUERY = (
    f"^{_NOT_WORD}{_WORD}([^\\p{{L}}\\p{{N}}\\p{{M}}\\u0000]{_NOT_WORD}{_WORD}){{0,{MAX_QUERY_WORDS - 1}}}{_NOT_WORD}$"
)
#: search_params._INSTANT, narrowed to the dates and times that exist (years 0001 to 9999, 29
#: February in leap years only, offsets below 24 hours).
#: Years 1900 to 2999 (what ``open_at`` accepts), and the leap ones among them.
_YEAR = "(19|2[0-9])[0-9]{2}"
_LEAP_YEAR = "((19|2[0-9])(0[48]|[2468][048]|[13579][26])|2[048]00)"
_DATE = (
    f"({_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"
    f"|{_YEAR}-(0[13-9]|1[0-2])-(29|30)"
    f"|{_YEAR}-(0[13578]|1[02])-31"
    f"|{_LEAP_YEAR}-02-29)"
)
_INSTANT = (
    f"^{_DATE}T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{{1,6}})?)?(Z|[+ -]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
#: Plain decimals (no exponent) of -180..180 and -90..90, for ``bbox``.
_LONGITUDE = "[+-]?(0*180([.]0*)?|0*(1[0-7][0-9]|[0-9]?[0-9])([.][0-9]*)?|[.][0-9]+)"
_LATITUDE = "[+-]?(0*90([.]0*)?|0*[0-8]?[0-9]([.][0-9]*)?|[.][0-9]+)"
_BBOX = f"^{_LONGITUDE},{_LATITUDE},{_LONGITUDE},{_LATITUDE}$"


def _refinement_parameters() -> list[dict[str, Any]]:
    """The filters, sort, cursor and index both searches take (search_params._refinements)."""
    return [
        _query(
            "category",
            {"type": "string", "maxLength": MAX_CATEGORIES * (MAX_CATEGORY_CHARS + 1) - 1, "pattern": _CATEGORIES},
            f"any of up to {MAX_CATEGORIES} categories, separated by commas, compared case-insensitively "
            f"(`Cafe` is `cafe`); each not blank, at most {MAX_CATEGORY_CHARS} characters. Categories are free "
            f"text; the recommended ones are {', '.join(VOCABULARY)}",
        ),
        _query(
            "price",
            {"type": "string", "pattern": "^[1-4](,[1-4])*$"},
            "any of these price levels (1 to 4, separated by commas); a business whose level is not known never passes",
        ),
        _query(
            "min_rating",
            {"type": "number", "minimum": 0, "maximum": 5},
            "a rating at least this; a business without reviews never passes",
        ),
        _query(
            "open_now",
            {"type": "boolean", "default": False},
            "open now in the business's own time zone (every page of a search asks about its first page's "
            "instant); a business whose hours are not known never passes. Not with open_at (400)",
        ),
        _query(
            "open_at",
            {"type": "string", "pattern": _INSTANT},
            "open at this instant in the business's own time zone: RFC 3339 with its offset, as "
            "`2026-03-29T01:30:00+01:00` or `...Z`, years 1900 to 2999 (seconds optional; a `+` left unencoded "
            "arrives as a blank and "
            "is read as `+`); a business whose hours are not known never passes. Not with open_now=true (400)",
        ),
        _query(
            "q",
            {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_CHARS, "pattern": _TEXT_QUERY},
            f"text query over the name and categories: 1 to {MAX_QUERY_WORDS} words (runs of letters and digits; "
            "accents and case ignored), each matching a word exactly or as its start, or, from 4 characters, with "
            "one typo (two from 8 characters)",
        ),
        _query(
            "sort",
            {"enum": list(SORTS), "default": "distance"},
            "distance: nearest first; rating: highest first, unrated last, then nearest; relevance: best q "
            "match first, then nearest (needs q: 400 without it). Ties by id",
        ),
        _query(
            "cursor",
            {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": "^[A-Za-z0-9_-]+$"},
            "next_cursor of the previous page of the same query: every parameter but limit and index unchanged "
            "(opaque, signed: any other value is a 400)",
        ),
        _query("index", {"enum": list(STRATEGIES)}, "debug: the strategy to answer with; all give identical bodies"),
        {"$ref": "#/components/parameters/ConsistencyToken"},
    ]


def _limit() -> dict[str, Any]:
    return _query(
        "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}, "page size"
    )


def search_parameters(max_radius_m: float) -> list[dict[str, Any]]:
    return [
        _query("latitude", {"type": "number", "minimum": -90, "maximum": 90}, "centre, degrees", True),
        _query("longitude", {"type": "number", "minimum": -180, "maximum": 180}, "centre, degrees", True),
        _query(
            "radius",
            {"type": "number", "minimum": MIN_RADIUS_M, "maximum": max_radius_m, "default": DEFAULT_RADIUS_M},
            "metres",
        ),
        _limit(),
        _query(
            "expand",
            {"type": "boolean", "default": False},
            f"when fewer than limit match, double the radius up to {max_radius_m:g} m; radius_m says which was used",
        ),
        _query(
            "k",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            f"the k nearest matches within {max_radius_m:g} m, in one page (next_cursor null): the radius starts at "
            f"{min(K_FIRST_RADIUS_M, max_radius_m):g} m and doubles until k match. Not with radius, limit, expand "
            "or cursor (400)",
        ),
        *_refinement_parameters(),
    ]


def area_parameters(max_radius_m: float) -> list[dict[str, Any]]:
    return [
        _query(
            "bbox",
            {"type": "string", "pattern": _BBOX},
            "west,south,east,north, degrees (plain decimals), south not north of north (400). west greater "
            "than east crosses the 180th meridian (`177,-19,-179,-16`); west -180 and east 180 span every "
            "longitude, and such a box reaching 90 or -90 is a polar cap centred on the pole. Results are "
            "ranked from the box's centre (its middle otherwise); the box must fit in a circle of "
            f"{max_radius_m:g} m around it, else a 400 naming bbox",
            True,
        ),
        _limit(),
        *_refinement_parameters(),
    ]
