"""Benchmark filtered searches over HTTP against PostGIS doing the same filter in one SQL query.

Three searches, over 1,000,000 businesses (the GeoNames places and synthetic ones scattered
around them, with their synthetic hours, categories, prices and ratings), each from 10,000
points scattered around GeoNames places:

* **open now + category**: ``GET /v1/search/nearby?...&radius=5000&open_now=true&category=restaurant``;
  PostGIS: ``ST_DWithin`` at 5 km, ``categories && ARRAY['restaurant']`` and a SQL function
  reading the same weekly hours in the business's zone at ``now()`` (``bench_is_open``), the
  nearest 20;
* **q + radius**: ``GET /v1/search/nearby?...&radius=5000&q=<word>``, the word the first of
  the nearest business's name (4 letters or more); PostGIS: ``ST_DWithin`` at 5 km and
  ``pg_trgm``'s word similarity (``word <% name``), the nearest 20;
* **bbox of a city**: ``GET /v1/search/area?bbox=...``, a box of about 6.7 km by 6.7 km
  around the point; PostGIS: ``geom && ST_MakeEnvelope(...)`` (GiST on a geometry column),
  the 20 nearest the centre.

PostGIS's filters approximate the API's (no dated exceptions or DST folds in the SQL hours;
trigram similarity, not the API's edit distance): the same kind of work, not byte-equal
answers. Each search is measured in interleaved rounds (API, then PostGIS) at maximum
throughput, closed loop, 8 clients each: the API by ``wrk`` (one API process per core, on a
shared port, each served as geo-api serves it: plain searches below aiohttp's request
layer, ``location_api.site``), PostGIS by ``pgbench`` (prepared statements), both with their 99th percentile
latency at that saturation (the same concurrency, so the two tails compare); everything on
this machine's cores at once. The API answers the number of matches beside the page;
PostGIS is measured twice, for the page alone and with ``count(*) OVER ()`` (the page and the
total, the API's answer), both on all cores; with one API process, the page alone once more
with its backends on one core (``PostmasterPin``).

Beside each API run, the control: ``location_api_bench``'s hello-world (aiohttp answering a
constant body, as many processes) at the same concurrency, the most any aiohttp server
answers on these cores at 8 clients; ``hello / PostGIS`` is the highest ratio an API served
through aiohttp's request layer could reach in that run.

Usage::

    .venv/bin/python bench/filtered_search_bench.py              # 1M, 3 rounds of 10 s
    .venv/bin/python bench/filtered_search_bench.py --quick      # 144k, 1 round of 5 s

It needs the local stack (``geo-stack up``), ``wrk`` and ``pgbench``, as
``bench/location_api_bench.py`` does, whose servers and drivers it uses. The data set gets a
database of its own (``geo_bench_filtered``), dropped at the end unless ``--keep``. Figures go
to stdout and ``bench/out/filtered_search/results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import asyncpg  # noqa: E402

from geo_common.places import scatter  # noqa: E402
from geo_common.settings import Settings, load_settings  # noqa: E402
from location_api.text_match import words  # noqa: E402
from location_api.time_zones import zone_at  # noqa: E402

import location_api_bench as api_bench  # noqa: E402
from bench_db import GEONAMES, create_database, drop_database, replicas_caught_up  # noqa: E402

OUT = REPO / "bench" / "out" / "filtered_search"
POINTS = api_bench.POINTS
#: Half the side of an area search's box, degrees of latitude (about 3.3 km).
HALF_BOX_DEG = 0.03

#: Whether weekly hours (location_api.hours' JSON) are open at an instant in a zone: today's
#: intervals, and yesterday's that run past midnight.
_IS_OPEN = """
CREATE FUNCTION bench_is_open(hours jsonb, zone text, at timestamptz) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH local AS (SELECT (at AT TIME ZONE zone) AS t),
       day AS (SELECT t::time AS now_t,
                      (ARRAY['mon','tue','wed','thu','fri','sat','sun'])[extract(isodow FROM t)::int] AS today,
                      (ARRAY['sun','mon','tue','wed','thu','fri','sat'])[extract(isodow FROM t)::int] AS yesterday
                 FROM local)
  SELECT EXISTS (SELECT 1 FROM day, jsonb_array_elements(hours -> 'weekly' -> day.today) i
                  WHERE (i ->> 0)::time <= day.now_t
                    AND (day.now_t < (i ->> 1)::time OR i ->> 1 = '24:00' OR (i ->> 1)::time < (i ->> 0)::time))
      OR EXISTS (SELECT 1 FROM day, jsonb_array_elements(hours -> 'weekly' -> day.yesterday) i
                  WHERE (i ->> 1)::time < (i ->> 0)::time AND day.now_t < (i ->> 1)::time)
$$
"""

_SELECT = (
    "SELECT b.id, b.name, b.latitude, b.longitude, b.category, b.address, ST_Distance(b.geog, q.geog) AS distance_m"
)
#: The API answers the number of matches with the page: PostGIS gives it too in the "with
#: total" runs, by a window count over every match (which reads them all, as the API does).
_TOTAL = ", count(*) OVER () AS total"

#: Each search: the API's URL for a point, and PostGIS's script (pgbench).
SEARCHES: dict[str, dict[str, Any]] = {
    "open_now+category": {
        "url": "/v1/search/nearby?latitude={lat!r}&longitude={lon!r}&radius=5000&limit=20"
        "&open_now=true&category=restaurant",
        "sql": f"""\\set i random(1, {POINTS})
{_SELECT}
  FROM bench_filtered b, (SELECT geog FROM bench_points WHERE id = :i) q
 WHERE ST_DWithin(b.geog, q.geog, 5000) AND b.categories && ARRAY['restaurant']
   AND bench_is_open(b.hours, b.time_zone, now())
 ORDER BY b.geog <-> q.geog LIMIT 20;
""",
    },
    "q+radius": {
        "url": "/v1/search/nearby?latitude={lat!r}&longitude={lon!r}&radius=5000&limit=20&q={word}",
        "sql": f"""\\set i random(1, {POINTS})
{_SELECT}
  FROM bench_filtered b, (SELECT geog, word FROM bench_points WHERE id = :i) q
 WHERE ST_DWithin(b.geog, q.geog, 5000) AND q.word <% b.name
 ORDER BY b.geog <-> q.geog LIMIT 20;
""",
    },
    "bbox": {
        "url": "/v1/search/area?bbox={west!r},{south!r},{east!r},{north!r}&limit=20",
        "sql": f"""\\set i random(1, {POINTS})
{_SELECT}
  FROM bench_filtered b,
       (SELECT geog, ST_MakeEnvelope(west, south, east, north, 4326) AS box FROM bench_points WHERE id = :i) q
 WHERE b.geom && q.box
 ORDER BY b.geog <-> q.geog LIMIT 20;
""",
    },
}


def box_of(lat: float, lon: float) -> tuple[float, float, float, float]:
    """The area searched around a point: west, south, east, north (a square of about 6.7 km)."""
    half_lon = min(HALF_BOX_DEG / max(math.cos(math.radians(lat)), 0.05), 1.0)
    west, east = lon - half_lon, lon + half_lon
    west = west + 360.0 if west < -180.0 else west
    east = east - 360.0 if east > 180.0 else east
    return west, max(lat - HALF_BOX_DEG, -90.0), east, min(lat + HALF_BOX_DEG, 90.0)


async def prepare(
    base: Settings, name: str, total: int, points: list[tuple[float, float]]
) -> tuple[Settings, list[str]]:
    """The data set, its PostGIS copy with what the filters read, and the query points;
    returns its settings and each point's word (the first long word of the nearest
    business's name)."""
    settings = await create_database(base, name, total, api_bench.say)
    conn = await asyncpg.connect(settings.pg_primary)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        await conn.execute(_IS_OPEN)
        api_bench.say("building the PostGIS copy (geography, geometry, categories, hours, zones)")
        await conn.execute(
            """CREATE TABLE bench_filtered AS
                 SELECT b.id, b.name, b.latitude, b.longitude, b.category, b.address,
                        array_prepend(lower(b.category), coalesce(d.more_categories, '{}')) AS categories,
                        d.hours, d.time_zone,
                        ST_SetSRID(ST_MakePoint(b.longitude, b.latitude), 4326)::geography AS geog,
                        ST_SetSRID(ST_MakePoint(b.longitude, b.latitude), 4326) AS geom
                   FROM businesses b LEFT JOIN business_details d ON d.business_id = b.id"""
        )
        rows = await conn.fetch("SELECT id, latitude, longitude FROM bench_filtered WHERE time_zone IS NULL")
        await conn.execute("CREATE TEMP TABLE zones (id bigint PRIMARY KEY, zone text)")
        await conn.copy_records_to_table("zones", records=[(r[0], zone_at(r[1], r[2])) for r in rows])
        await conn.execute("UPDATE bench_filtered b SET time_zone = z.zone FROM zones z WHERE z.id = b.id")
        await conn.execute("CREATE INDEX ON bench_filtered USING gist (geog)")
        await conn.execute("CREATE INDEX ON bench_filtered USING gist (geom)")
        await conn.execute(
            """CREATE TABLE bench_points (id int PRIMARY KEY, geog geography NOT NULL, word text,
                                          west float8, south float8, east float8, north float8)"""
        )
        await conn.executemany(
            "INSERT INTO bench_points VALUES ($1, ST_SetSRID(ST_MakePoint($3, $2), 4326)::geography, NULL, $4, $5, $6, $7)",
            [(i, lat, lon, *box_of(lat, lon)) for i, (lat, lon) in enumerate(points, start=1)],
        )
        nearest = await conn.fetch(
            """SELECT p.id, (SELECT b.name FROM bench_filtered b ORDER BY b.geog <-> p.geog LIMIT 1)
                 FROM bench_points p ORDER BY p.id"""
        )
        chosen = [next((w for w in words(name) if len(w) >= 4), "town") for _, name in nearest]
        await conn.executemany("UPDATE bench_points SET word = $2 WHERE id = $1", list(enumerate(chosen, start=1)))
        await conn.execute("VACUUM ANALYZE bench_filtered")
        await conn.execute("VACUUM ANALYZE bench_points")
    finally:
        await conn.close()
    await replicas_caught_up(settings)
    return settings, chosen


def bench(
    settings: Settings, tools: dict[str, str], duration_s: int, rounds: int, files: dict[str, Path]
) -> dict[str, Any]:
    """Per API process count and search: ``rounds`` rounds of wrk on the API and pgbench on
    PostGIS (and PostGIS on one core, with one API process); medians."""
    env = api_bench.env_for(settings)
    pin = api_bench.PostmasterPin(settings.pg_primary)
    cores = len(os.sched_getaffinity(0))
    results: dict[str, Any] = {}
    for procs in sorted({1, min(2, cores)}):
        servers = api_bench.start_servers("api", procs, env)
        hello = api_bench.start_servers("hello", procs, env)
        try:
            for search, spec in SEARCHES.items():
                runs: list[dict[str, float]] = []
                for n in range(1, rounds + 1):
                    api = api_bench.run_wrk(
                        tools["wrk"], servers.port, files[search], duration_s, api_bench.PGBENCH_CLIENTS
                    )
                    row = {"api_rps": api["rps"], "api_p99_ms": api.get("p99_ms", math.nan)}
                    # The framework's floor at the same concurrency: a constant answer (the
                    # hello-world of location_api_bench, which serves the nearby route only).
                    floor = api_bench.run_wrk(
                        tools["wrk"], hello.port, files["open_now+category"], duration_s, api_bench.PGBENCH_CLIENTS
                    )
                    row |= {"hello_rps": floor["rps"]}
                    pg = api_bench.run_pgbench(tools["pgbench"], settings.pg_primary, duration_s, spec["sql"])
                    row |= {"postgis_tps": pg["tps"], "postgis_p99_ms": pg["p99_ms"]}
                    counted = spec["sql"].replace(_SELECT, _SELECT + _TOTAL)
                    pg = api_bench.run_pgbench(tools["pgbench"], settings.pg_primary, duration_s, counted)
                    row |= {"postgis_total_tps": pg["tps"], "postgis_total_p99_ms": pg["p99_ms"]}
                    if procs < cores and pin.pid is not None:
                        one = pin.run(
                            procs,
                            partial(
                                api_bench.run_pgbench, tools["pgbench"], settings.pg_primary, duration_s, spec["sql"]
                            ),
                        )
                        row |= {"postgis_same_cores_tps": one["tps"], "postgis_same_cores_p99_ms": one["p99_ms"]}
                    runs.append(row)
                    api_bench.say(
                        f"[{procs} proc] {search} round {n}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items())
                    )
                summary = {key: api_bench.median([r[key] for r in runs]) for key in runs[0]}
                bottom = "postgis_same_cores_tps" if "postgis_same_cores_tps" in runs[0] else "postgis_tps"
                summary["api_over_postgis"] = api_bench.median([r["api_rps"] / r[bottom] for r in runs])
                summary["api_over_hello"] = api_bench.median([r["api_rps"] / r["hello_rps"] for r in runs])
                summary["hello_over_postgis"] = api_bench.median([r["hello_rps"] / r[bottom] for r in runs])
                summary["api_over_postgis_total"] = api_bench.median(
                    [r["api_rps"] / r["postgis_total_tps"] for r in runs]
                )
                results[f"{procs}/{search}"] = summary
        finally:
            servers.stop()
            hello.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark filtered searches (see the module docstring).")
    parser.add_argument("--quick", action="store_true", help="144k businesses, 1 round of 5 s")
    parser.add_argument("--duration", type=int, default=None, help="seconds per run (default 10, --quick 5)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per search (default 3, --quick 1)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args(argv)
    duration = args.duration or (5 if args.quick else 10)
    rounds = args.rounds or (1 if args.quick else 3)
    total = GEONAMES if args.quick else 1_000_000
    tools = {"wrk": api_bench.ensure_wrk(), "pgbench": api_bench.find_pgbench()}
    base = load_settings()
    OUT.mkdir(parents=True, exist_ok=True)
    api_bench.OUT.mkdir(parents=True, exist_ok=True)
    points = list(scatter(POINTS, seed=43, spread_m=2_000.0))
    name = "geo_bench_filtered"
    api_bench.say(f"loading {total:,} businesses into {name}")
    settings, chosen = asyncio.run(prepare(base, name, total, points))
    files: dict[str, Path] = {}
    for search, spec in SEARCHES.items():
        files[search] = OUT / f"{search}.txt"
        files[search].write_text(
            "".join(
                spec["url"].format(
                    lat=lat, lon=lon, word=word, **dict(zip(("west", "south", "east", "north"), box_of(lat, lon)))
                )
                + "\n"
                for (lat, lon), word in zip(points, chosen)
            )
        )
    try:
        results = bench(settings, tools, duration, rounds, files)
    finally:
        if not args.keep:
            asyncio.run(drop_database(base, name))
    print(
        f"{'search':<24} {'API req/s':>9} {'p99 ms':>7} {'PostGIS':>8} {'p99 ms':>7} {'ratio':>6}"
        f" {'+total':>7} {'p99 ms':>7} {'ratio':>6} {'hello':>7} {'API/hello':>9} {'hello/PostGIS':>13}"
    )
    for key, row in results.items():
        pg = row.get("postgis_same_cores_tps", row["postgis_tps"])
        pg99 = row.get("postgis_same_cores_p99_ms", row["postgis_p99_ms"])
        print(
            f"{key:<24} {row['api_rps']:>9.0f} {row['api_p99_ms']:>7.1f} {pg:>8.0f} {pg99:>7.1f}"
            f" {row['api_over_postgis']:>5.2f}x {row['postgis_total_tps']:>7.0f} {row['postgis_total_p99_ms']:>7.1f}"
            f" {row['api_over_postgis_total']:>5.2f}x {row['hello_rps']:>7.0f} {row['api_over_hello']:>8.0%}"
            f" {row['hello_over_postgis']:>12.2f}x"
        )
    (OUT / "results.json").write_text(
        json.dumps(
            {
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "cores": os.cpu_count(),
                "duration_s": duration,
                "rounds": rounds,
                "businesses": total,
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
