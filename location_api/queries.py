"""The SQL the API runs, one function per statement group, each taking a connection.

Which server a function runs on is decided by the caller (:mod:`geo_common.database`): writes
on the primary, everything else on a replica when possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

import asyncpg

from geo_common.database_node import VISIBLE_LSN_SQL, lsn_from_text
import orjson

from location_api.filters import Facets, facets_of
from location_api.hours import OpeningHours, parse_hours
from location_api.models import Business, BusinessDetails, BusinessInput, BusinessRecord
from location_api.time_zones import zone_at

_COLUMNS = "id, name, latitude, longitude, category, address"

#: One search candidate: (id, latitude, longitude, name, category, time_zone, hours,
#: price_level, rating, more_categories); the last five ``None`` when not known.
Candidate = tuple[int, float, float, str, str, str | None, str | None, int | None, float | None, list[str] | None]


def candidate_facets(candidate: Candidate) -> Facets:
    """What the filters read of a search candidate."""
    _, lat, lon, name, category, time_zone, hours, price_level, rating, more = candidate
    return facets_of(name, lat, lon, category, time_zone, hours, price_level, rating, more)


def _business(row: asyncpg.Record) -> Business:
    return Business(row[0], row[1], row[2], row[3], row[4], row[5])


# --------------------------------------------------------------------------- writes


class Refusal(Enum):
    """Why a guarded change of a business changed nothing."""

    #: No business has this id.
    MISSING = "missing"
    #: It belongs to someone other than the owner the change was limited to.
    NOT_YOURS = "not-yours"


_RECORD_COLUMNS = "owner_id, created_by, created_at, updated_by, updated_at"
#: The columns of :class:`BusinessDetails`, in its order (table ``business_details``).
_DETAIL_COLUMNS = "time_zone, hours, phone, website, price_level, rating, review_count, more_categories"


def _record(row: asyncpg.Record) -> BusinessRecord:
    """The record of a row holding ``_COLUMNS``, ``_RECORD_COLUMNS`` then ``_DETAIL_COLUMNS``."""
    return BusinessRecord(
        _business(row), row[6], row[7], row[8], row[9], row[10], _details(row[2], row[3], *row[11:19])
    )


def _details(
    latitude: float,
    longitude: float,
    time_zone: str | None,
    hours: str | None,
    phone: str | None,
    website: str | None,
    price_level: int | None,
    rating: float | None,
    review_count: int,
    more_categories: Sequence[str] | None,
) -> BusinessDetails:
    """The details of a row: the time zone (NULL: the coordinates'), the hours (jsonb, as
    asyncpg gives it: text), then phone, website, price level, rating, review count and
    further categories (NULL: no details row)."""
    stored: OpeningHours | None = None if hours is None else parse_hours(orjson.loads(hours))
    return BusinessDetails(
        time_zone or zone_at(latitude, longitude),
        stored,
        phone,
        website,
        price_level,
        rating,
        review_count,
        tuple(more_categories or ()),
    )


def _values(data: BusinessInput) -> tuple[Any, ...]:
    """The fields a client writes, in the order of the write statements (their parameters
    $1 to $12): ``_COLUMNS`` after ``id`` (businesses), then ``_DETAIL_COLUMNS``
    (business_details) but ``more_categories``, which each statement takes last."""
    d = data.details
    hours = None if d.hours is None else orjson.dumps(d.hours.to_json()).decode()
    return (
        data.name,
        data.latitude,
        data.longitude,
        data.category,
        data.address,
        d.time_zone,
        hours,
        d.phone,
        d.website,
        d.price_level,
        d.rating,
        d.review_count,
    )


async def insert_business(
    conn: asyncpg.Connection, data: BusinessInput, geohash: str, *, owner_id: int | None, author: int
) -> BusinessRecord:
    """Insert a business (its change is logged by the table's triggers, same transaction).

    Args:
        conn: a connection to the primary.
        data: the fields.
        geohash: of the position.
        owner_id: the owning user, or ``None`` for the operator.
        author: the user writing it (``created_by`` and ``updated_by``).
    """
    # One statement: the business and its details row, both in the answer.
    row = await conn.fetchrow(
        f"""WITH b AS (
                INSERT INTO businesses (name, latitude, longitude, category, address, geohash,
                                        owner_id, created_by, updated_by)
                VALUES ($1, $2, $3, $4, $5, $13, $14, $15, $15)
                RETURNING {_COLUMNS}, {_RECORD_COLUMNS}),
            d AS (
                INSERT INTO business_details (business_id, {_DETAIL_COLUMNS})
                SELECT b.id, $6::text, $7::jsonb, $8::text, $9::text, $10::smallint, $11::float8, $12::integer,
                       $16::text[]
                  FROM b
                RETURNING {_DETAIL_COLUMNS})
            SELECT b.*, d.* FROM b, d""",
        *_values(data),
        geohash,
        owner_id,
        author,
        list(data.details.more_categories),
    )
    return _record(row)


async def update_business(
    conn: asyncpg.Connection,
    business_id: int,
    data: BusinessInput,
    geohash: str,
    *,
    author: int,
    owner_id: int | None,
) -> tuple[BusinessRecord, str] | Refusal:
    """Replace a business's fields, if it belongs to ``owner_id``.

    Args:
        conn: a connection to the primary.
        business_id: the business.
        data: its new fields.
        geohash: of the new position.
        author: the user writing it (``updated_by``).
        owner_id: change it only if this user owns it; ``None``: whoever owns it (an admin).

    Returns:
        The business as stored now and its geohash before the update, or why nothing changed.
    """
    # One statement: the row is locked while its owner is checked and it is changed, and the
    # old geohash (the cache entries of the old position) comes with it. ``old`` has a row
    # when the business exists; ``changed`` when the owner matched too.
    # ``details`` writes the details row (made, or replaced but for a rating the write does
    # not name: the row's own, under the row lock) only when ``changed`` changed the business.
    row = await conn.fetchrow(
        f"""WITH old AS (SELECT id, geohash, owner_id FROM businesses WHERE id = $1 FOR UPDATE),
            changed AS (
                UPDATE businesses b
                   SET name = $2, latitude = $3, longitude = $4, category = $5, address = $6,
                       geohash = $14, updated_at = now(), updated_by = $15
                  FROM old
                 WHERE b.id = old.id AND ($16::bigint IS NULL OR old.owner_id = $16)
             RETURNING {", ".join("b." + c for c in f"{_COLUMNS}, {_RECORD_COLUMNS}".split(", "))}),
            details AS (
                INSERT INTO business_details AS d (business_id, {_DETAIL_COLUMNS})
                SELECT changed.id, $7::text, $8::jsonb, $9::text, $10::text, $11::smallint,
                       CASE WHEN $17::boolean THEN $12::float8 END,
                       CASE WHEN $17::boolean THEN $13::integer ELSE 0 END,
                       $18::text[]
                  FROM changed
                ON CONFLICT (business_id) DO UPDATE
                   SET time_zone = EXCLUDED.time_zone, hours = EXCLUDED.hours, phone = EXCLUDED.phone,
                       website = EXCLUDED.website, price_level = EXCLUDED.price_level,
                       more_categories = EXCLUDED.more_categories,
                       rating = CASE WHEN $17 THEN EXCLUDED.rating ELSE d.rating END,
                       review_count = CASE WHEN $17 THEN EXCLUDED.review_count ELSE d.review_count END
             RETURNING {", ".join("d." + c for c in _DETAIL_COLUMNS.split(", "))})
            SELECT changed.*, details.*, old.geohash FROM old LEFT JOIN changed ON true LEFT JOIN details ON true""",
        business_id,
        *_values(data),
        geohash,
        author,
        owner_id,
        data.rates,
        list(data.details.more_categories),
    )
    if row is None:
        return Refusal.MISSING
    if row[0] is None:
        return Refusal.NOT_YOURS
    return _record(row), row[19]


async def delete_business(conn: asyncpg.Connection, business_id: int, *, owner_id: int | None) -> str | Refusal:
    """Delete a business, if it belongs to ``owner_id`` (``None``: whoever owns it).

    Returns:
        Its geohash, or why nothing was deleted.
    """
    row = await conn.fetchrow(
        """WITH old AS (SELECT id, geohash, owner_id FROM businesses WHERE id = $1 FOR UPDATE),
           gone AS (
               DELETE FROM businesses b USING old
                WHERE b.id = old.id AND ($2::bigint IS NULL OR old.owner_id = $2)
            RETURNING b.id)
           SELECT old.geohash, gone.id IS NOT NULL FROM old LEFT JOIN gone ON true""",
        business_id,
        owner_id,
    )
    if row is None:
        return Refusal.MISSING
    geohash: str = row[0]
    return geohash if row[1] else Refusal.NOT_YOURS


async def visible_lsn(conn: asyncpg.Connection) -> int:
    """The WAL position a server has made visible; after a commit on the primary, a
    position every reader that has it will see the commit at (the consistency token)."""
    return lsn_from_text(await conn.fetchval(VISIBLE_LSN_SQL))


async def prune_changes(conn: asyncpg.Connection, older_than_s: float) -> int:
    """Delete change-log rows older than ``older_than_s`` seconds; returns how many."""
    status: str = await conn.execute(
        "DELETE FROM business_changes WHERE changed_at < now() - make_interval(secs => $1)", older_than_s
    )
    return int(status.split()[-1])


# --------------------------------------------------------------------------- reads


async def get_business(conn: asyncpg.Connection, business_id: int) -> Business | None:
    """One business by id, or ``None``."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM businesses WHERE id = $1", business_id)
    return None if row is None else _business(row)


async def get_detail_row(conn: asyncpg.Connection, business_id: int) -> list[Any] | None:
    """A business's row for its detail, JSON values only (what the cache keeps; :func:`detail_of`
    reads it), or ``None``: no business has this id."""
    row = await conn.fetchrow(
        f"""SELECT {", ".join("b." + c for c in _COLUMNS.split(", "))}, d.time_zone, d.hours, d.phone, d.website,
                   d.price_level, d.rating, coalesce(d.review_count, 0), d.more_categories
              FROM businesses b LEFT JOIN business_details d ON d.business_id = b.id
             WHERE b.id = $1""",
        business_id,
    )
    return None if row is None else list(row)


def detail_of(row: Sequence[Any]) -> tuple[Business, BusinessDetails]:
    """The business and its details of a :func:`get_detail_row` row."""
    return _business(row), _details(row[2], row[3], *row[6:14])


async def get_businesses(conn: asyncpg.Connection, ids: Sequence[int]) -> dict[int, Business]:
    """The businesses with these ids that exist, by id."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM businesses WHERE id = ANY($1::bigint[])", list(ids))
    return {row[0]: _business(row) for row in rows}


async def candidates_in_ranges(conn: asyncpg.Connection, ranges: Sequence[tuple[str, str]]) -> list[list[Candidate]]:
    """Every business whose geohash lies in one of the ranges ``[lo, hi)``, per range.

    The ``~>=~``/``~<~`` operators compare bytewise, matching the ``text_pattern_ops``
    covering index, so each range is one index range scan. Each candidate's details are then
    read by its id: PostgreSQL estimates thousands of rows per range (it cannot see how few
    a cell holds) and would otherwise merge-join the whole details table in id order, tens of
    milliseconds a search; ``OFFSET 0`` keeps it a lookup per candidate.

    Args:
        conn: a connection (a replica's, normally).
        ranges: ``(lo, hi)`` geohash string bounds.

    Returns:
        One list of candidates per range, in the order of ``ranges``.
    """
    rows = await conn.fetch(
        """SELECT r.i, b.id, b.latitude, b.longitude, b.name, b.category,
                  d.time_zone, d.hours, d.price_level, d.rating, d.more_categories
             FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(lo, hi, i)
             JOIN businesses b ON b.geohash ~>=~ r.lo AND b.geohash ~<~ r.hi
             LEFT JOIN LATERAL (SELECT time_zone, hours, price_level, rating, more_categories
                                  FROM business_details WHERE business_id = b.id OFFSET 0) d ON true""",
        [lo for lo, _ in ranges],
        [hi for _, hi in ranges],
    )
    out: list[list[Candidate]] = [[] for _ in ranges]
    for i, *candidate in rows:
        out[i - 1].append(tuple(candidate))
    return out
