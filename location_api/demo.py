"""Demo data: the 144,563 GeoNames places of :mod:`geo_common.places` as businesses, by COPY.

Each place becomes one business: its name and exact coordinates are kept; the address is
"admin2, admin1, country" without the blank parts; the category is derived from the name
alone (CRC-32 of its UTF-8 bytes, modulo the twelve :data:`CATEGORIES`), so the same place
always gets the same category on every machine, and synthetic opening hours, price level and
rating of that category (:mod:`location_api.demo_details`, not real). ``--synthetic N`` adds N more businesses,
each named after a random place (``"<place> #<n>"``) and scattered around it the way
:func:`geo_common.places.scatter` scatters points: at a uniform bearing and an exponentially
distributed distance (mean 5 km, at most 50 km).
"""

from __future__ import annotations

import itertools
import math
import random
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence

import asyncpg

from geo_common.places import Place, load_places, offset_point
from location_api.cells import geohash12
from location_api.demo_details import demo_details
from location_api.filters import VOCABULARY

#: The demo categories, the documented vocabulary in its order: a place's category is
#: ``CATEGORIES[crc32(name) % 12]``.
CATEGORIES = VOCABULARY
#: The columns of :data:`Record` after the business's id, in the two tables they go to.
BUSINESS_COLUMNS = ("name", "latitude", "longitude", "category", "address", "geohash")
DETAIL_COLUMNS = ("hours", "price_level", "rating", "review_count", "more_categories")
#: Synthetic businesses: mean and largest distance from their place, metres.
SPREAD_M = 5_000.0
MAX_SPREAD_M = 50_000.0
#: Businesses per pair of COPYs (and per progress line).
CHUNK = 50_000

Record = tuple[str, float, float, str, str, str, str | None, int | None, float, int, list[str]]


def category_for(name: str) -> str:
    """The demo category of a business name (stable across runs, processes and machines)."""
    return CATEGORIES[zlib.crc32(name.encode("utf-8")) % len(CATEGORIES)]


def address_for(place: Place) -> str:
    """``"admin2, admin1, country"``, skipping the parts GeoNames leaves blank."""
    return ", ".join(part.strip() for part in (place.admin2, place.admin1, place.country) if part.strip())


def place_records(places: Sequence[Place]) -> Iterator[Record]:
    """One business row per place: name, exact coordinates, category, address, geohash, and
    the synthetic hours, price level, rating and review count."""
    for p in places:
        name = p.name.strip()[:200] or "(unnamed place)"
        category = category_for(name)
        yield (
            name,
            p.latitude,
            p.longitude,
            category,
            address_for(p),
            geohash12(p.latitude, p.longitude),
            *demo_details(name, category),
        )


def synthetic_records(places: Sequence[Place], n: int, *, seed: int = 0) -> Iterator[Record]:
    """``n`` business rows scattered around random places (deterministic for a seed)."""
    rng = random.Random(seed)
    for i in range(1, n + 1):
        place = places[rng.randrange(len(places))]
        distance = min(rng.expovariate(1.0 / SPREAD_M), MAX_SPREAD_M)
        lat, lon = offset_point(place.latitude, place.longitude, distance, rng.uniform(0.0, 2.0 * math.pi))
        name = f"{place.name.strip()[:180] or 'place'} #{i}"
        category = category_for(name)
        yield name, lat, lon, category, address_for(place), geohash12(lat, lon), *demo_details(name, category)


async def copy_businesses(
    conn: asyncpg.Connection, records: Iterable[Record], total: int, say: Callable[[str], None] = print
) -> int:
    """Write records into ``businesses`` and ``business_details``, :data:`CHUNK` at a time.

    Each chunk takes its ids from the table's own sequence first (``nextval``, which no
    transaction undoes, so concurrent inserts through the API never collide with them), then
    is one COPY into each table: a record's details go with its id.

    Returns:
        How many businesses were written.
    """
    sequence = await conn.fetchval("SELECT pg_get_serial_sequence('businesses', 'id')")
    started = time.monotonic()
    done = 0
    iterator = iter(records)
    while chunk := list(itertools.islice(iterator, CHUNK)):
        ids = [
            row[0]
            for row in await conn.fetch(
                "SELECT nextval($1::regclass) FROM generate_series(1, $2)", sequence, len(chunk)
            )
        ]
        await conn.copy_records_to_table(
            "businesses", records=[(i, *r[:6]) for i, r in zip(ids, chunk)], columns=["id", *BUSINESS_COLUMNS]
        )
        await conn.copy_records_to_table(
            "business_details",
            records=[(i, *r[6:]) for i, r in zip(ids, chunk)],
            columns=["business_id", *DETAIL_COLUMNS],
        )
        done += len(chunk)
        say(f"  {done:>9,} / {total:,} rows ({time.monotonic() - started:.1f} s)")
    return done


async def load_demo(
    dsn: str,
    *,
    synthetic: int = 0,
    if_empty: bool = False,
    seed: int = 0,
    say: Callable[[str], None] = print,
) -> int:
    """Load the GeoNames places (and ``synthetic`` more) into ``businesses`` and their
    details into ``business_details`` (:func:`copy_businesses`).

    The COPYs run in one transaction: the change log gets one row per business from the
    table's statement trigger, and every running API instance rebuilds its indexes when it
    sees that many changes.

    Args:
        dsn: the primary.
        synthetic: how many synthetic businesses to add.
        if_empty: do nothing when the table already holds a business.
        seed: the seed of the synthetic points.
        say: where progress lines go.

    Returns:
        How many businesses were inserted.
    """
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        if if_empty and await conn.fetchval("SELECT EXISTS (SELECT 1 FROM businesses)"):
            say("load-demo: businesses already present; nothing loaded (--if-empty)")
            return 0
        places = load_places()
        total = len(places) + synthetic

        def records() -> Iterator[Record]:
            yield from place_records(places)
            yield from synthetic_records(places, synthetic, seed=seed)

        say(f"load-demo: {len(places):,} GeoNames places + {synthetic:,} synthetic businesses")
        async with conn.transaction():
            await copy_businesses(conn, records(), total, say)
        # Index-only scans (the sql strategy) need the visibility map; fresh statistics
        # keep the planner on the geohash index.
        await conn.execute("VACUUM (ANALYZE) businesses")
    finally:
        await conn.close()
    say(f"load-demo: {total:,} businesses loaded in {time.monotonic() - started:.1f} s")
    return total
