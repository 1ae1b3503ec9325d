"""The catalog loader: binary COPY from a real PostgreSQL into arrays, and what it refuses."""

from __future__ import annotations

import logging
import math
import random
import re
import struct
from collections.abc import AsyncIterator

import asyncpg
import pytest

from geo_common.settings import Settings
from location_api import catalog_load
from location_api.catalog_load import MalformedCopy, Positions, PositionsReader, copy_positions, load_snapshot

from .conftest import drop_database, small_database

#: Values at the edges of what the columns hold: the ranges' ends, signed zeros, the smallest
#: subnormal, the doubles next to the limits, and ids at both ends of bigint.
EDGE_ROWS = [
    (1, 0.0, 0.0),
    (2, -0.0, -0.0),
    (3, 90.0, 180.0),
    (4, -90.0, -180.0),
    (5, math.nextafter(90.0, 0.0), math.nextafter(-180.0, 0.0)),
    (6, 5e-324, -5e-324),
    (7, 51.50073509913715, -0.12462031841278076),
    (2**63 - 1, 89.99999999999999, 179.99999999999997),
    (2**63 - 2, -16.8, 180.0),
    (-(2**63), 0.1, -0.1),
    (0, 1e-300, -1e-300),
]
POSITIONS_OF_T = "SELECT id, latitude, longitude FROM t ORDER BY id"


@pytest.fixture
async def conn(empty_database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new database with a table ``t`` of edge positions."""
    connection = await asyncpg.connect(empty_database)
    await connection.execute(
        "CREATE TABLE t (id bigint PRIMARY KEY, latitude double precision NOT NULL,"
        " longitude double precision NOT NULL)"
    )
    await connection.copy_records_to_table("t", records=EDGE_ROWS)
    try:
        yield connection
    finally:
        await connection.close()


def as_rows(positions: Positions) -> list[tuple[int, float, float]]:
    assert [a.dtype.str for a in positions] == ["<i8", "<f8", "<f8"]  # native order, whatever the stream's
    return list(zip(positions.ids.tolist(), positions.lats.tolist(), positions.lons.tolist(), strict=True))


def bits(rows: list[tuple[int, float, float]]) -> list[tuple[int, bytes, bytes]]:
    """Rows with their floats as bytes: -0.0 and 0.0 differ, as they must."""
    return [(i, struct.pack(">d", lat), struct.pack(">d", lon)) for i, lat, lon in rows]


async def raw_stream(conn: asyncpg.Connection, query: str) -> bytes:
    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        chunks.append(bytes(chunk))

    await conn.copy_from_query(query, output=sink, format="binary")
    return b"".join(chunks)


# --------------------------------------------------------------------------- the real server


@pytest.mark.parametrize("expected", [0, 1, len(EDGE_ROWS), 10 * len(EDGE_ROWS)])
async def test_edge_values_arrive_bit_for_bit(conn: asyncpg.Connection, expected: int) -> None:
    """Whatever the arrays were sized for (too small: they grow), every value is exact."""
    got = as_rows(await copy_positions(conn, expected, query=POSITIONS_OF_T))
    assert bits(got) == bits(sorted(EDGE_ROWS))
    assert got[0][0] == -(2**63) and got[-1][0] == 2**63 - 1


async def test_an_empty_table_gives_empty_arrays(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE t")
    for expected in (0, 5):
        positions = await copy_positions(conn, expected, query=POSITIONS_OF_T)
        assert as_rows(positions) == []


async def test_many_rows_in_many_chunks(conn: asyncpg.Connection) -> None:
    """More rows than one network read holds: rows split across chunks are put together."""
    await conn.execute(
        "INSERT INTO t SELECT 1000 + i, (i % 180) - 89.5 + i * 1e-9, (i % 360) - 179.5 - i * 1e-9"
        " FROM generate_series(1, 200000) AS i"
    )
    expected = await conn.fetch(POSITIONS_OF_T)
    got = as_rows(await copy_positions(conn, 1000, query=POSITIONS_OF_T))
    assert got == [tuple(r) for r in expected]


async def test_a_copy_longer_than_the_command_timeout_completes(empty_database: str) -> None:
    """The pools' command timeout bounds a request's query; a load takes its own (longer)."""
    conn = await asyncpg.connect(empty_database, command_timeout=0.2)
    try:
        slow = "SELECT i::bigint, 0.0::float8, 0.0::float8 FROM generate_series(1, 3) AS i, (SELECT pg_sleep(0.5)) AS s"
        with pytest.raises(TimeoutError):
            await copy_positions(conn, 3, query=slow, timeout=0.2)
        assert as_rows(await copy_positions(conn, 3, query=slow)) == [(1, 0.0, 0.0), (2, 0.0, 0.0), (3, 0.0, 0.0)]
    finally:
        await conn.close()


async def test_any_split_of_the_stream_reads_the_same(conn: asyncpg.Connection) -> None:
    stream = await raw_stream(conn, POSITIONS_OF_T)
    whole = PositionsReader(len(EDGE_ROWS))
    whole.feed(stream)
    reference = bits(as_rows(whole.finish()))
    assert reference == bits(sorted(EDGE_ROWS))

    bytewise = PositionsReader()
    for i in range(len(stream)):
        bytewise.feed(stream[i : i + 1])
    assert bits(as_rows(bytewise.finish())) == reference

    rng = random.Random(7)
    for _ in range(50):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(1, 12)))
        reader = PositionsReader(rng.randint(0, 20))
        for start, end in zip([0, *cuts], [*cuts, len(stream)]):
            reader.feed(memoryview(stream)[start:end])
        reader.feed(b"")
        assert bits(as_rows(reader.finish())) == reference


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT id, latitude FROM t", r"row 1: 2 fields, expected 3 \(id, latitude, longitude\)"),
        ("SELECT id, latitude, longitude, 0::bigint FROM t", r"row 1: 4 fields, expected 3"),
        ("SELECT id::int4, latitude, longitude FROM t WHERE id BETWEEN 0 AND 9", r"row 1: id is 4 bytes, expected 8"),
        (
            "SELECT id, latitude::real, longitude FROM t WHERE id BETWEEN 1 AND 5",
            r"row 1: latitude is 4 bytes, expected 8",
        ),
        (
            "SELECT id, latitude, CASE WHEN id = 4 THEN NULL ELSE longitude END FROM t ORDER BY id",
            r"row 6: longitude is NULL, expected 8 \(bigint or float8, not NULL\)",
        ),
        ("SELECT id, latitude, longitude::numeric FROM t ORDER BY id", r"row 1: longitude is 10 bytes, expected 8"),
    ],
)
async def test_a_stream_of_other_columns_is_refused_clearly(conn: asyncpg.Connection, query: str, message: str) -> None:
    with pytest.raises(MalformedCopy, match=message):
        await copy_positions(conn, 0, query=query)
    assert await conn.fetchval("SELECT count(*) FROM t") == len(EDGE_ROWS)  # the connection still works


# --------------------------------------------------------------------------- made-up streams

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
ONE_ROW = struct.pack(">hiqidid", 3, 8, 42, 8, 1.5, 8, -2.5)
TRAILER = b"\xff\xff"


def read(*chunks: bytes) -> list[tuple[int, float, float]]:
    reader = PositionsReader()
    for chunk in chunks:
        reader.feed(chunk)
    return as_rows(reader.finish())


def test_a_header_extension_is_skipped() -> None:
    header = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + struct.pack(">i", 5) + b"12345"
    assert read(header, ONE_ROW, TRAILER) == [(42, 1.5, -2.5)]
    assert read(header[:13], header[13:] + ONE_ROW[:3], ONE_ROW[3:] + TRAILER[:1], TRAILER[1:]) == [(42, 1.5, -2.5)]


def test_unknown_flags_beyond_bit_16_are_ignored() -> None:
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">I", 1 << 20) + b"\x00\x00\x00\x00"
    assert read(header + ONE_ROW + TRAILER) == [(42, 1.5, -2.5)]


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ((b"id,latitude,longitude\n1,2,3\n",), r"not binary COPY: the stream starts b'id,latitude'"),
        ((b"PGCOPY\n\xff\r\n\x01",), r"not binary COPY"),
        ((b"PGCOPY\n\xff\r\n\x00" + struct.pack(">I", 1 << 16) + b"\x00" * 4,), r"unexpected header flags 0x00010000"),
        ((b"PGCOPY\n\xff\r\n\x00" + struct.pack(">I", 1) + b"\x00" * 4,), r"unexpected header flags 0x00000001"),
        ((b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 4 + struct.pack(">i", -1),), r"negative header extension length -1"),
        ((HEADER, ONE_ROW, TRAILER, b"\x00"), r"1 bytes after the trailer"),
        ((HEADER + ONE_ROW + TRAILER + ONE_ROW,), r"38 bytes after the trailer"),
        ((HEADER + ONE_ROW + b"\x00\x02",), r"row 2: 2 fields, expected 3"),
        ((HEADER + ONE_ROW + b"\x7f",), None),  # not wrong yet: the stream ends early
    ],
)
def test_a_malformed_stream_is_refused_with_what_was_found(chunks: tuple[bytes, ...], message: str | None) -> None:
    reader = PositionsReader()
    if message is None:
        for chunk in chunks:
            reader.feed(chunk)
        with pytest.raises(
            MalformedCopy, match=r"the stream ended after 1 rows, without a trailer \(1 bytes pending\)"
        ):
            reader.finish()
        return
    with pytest.raises(MalformedCopy, match=message):
        for chunk in chunks:
            reader.feed(chunk)


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ((), r"ended in its header"),
        ((HEADER[:15],), r"ended in its header, without a trailer \(15 bytes pending\)"),
        ((HEADER, ONE_ROW[:20]), r"ended after 0 rows, without a trailer \(20 bytes pending\)"),
        ((HEADER, ONE_ROW, ONE_ROW, TRAILER[:1]), r"ended after 2 rows"),
    ],
)
def test_a_stream_cut_short_is_refused(chunks: tuple[bytes, ...], message: str) -> None:
    reader = PositionsReader()
    for chunk in chunks:
        reader.feed(chunk)
    with pytest.raises(MalformedCopy, match=message):
        reader.finish()


# --------------------------------------------------------------------------- one snapshot


@pytest.fixture(scope="module")
async def places(settings: Settings) -> AsyncIterator[Settings]:
    """A migrated database holding 300 GeoNames places."""
    loaded = await small_database(settings, "load", places=300)
    yield loaded
    await drop_database(settings.pg_primary, loaded.pg_primary.rpartition("/")[2])


async def test_the_card_budget_decides_rows_or_positions(places: Settings) -> None:
    conn = await asyncpg.connect(places.pg_primary)
    try:
        expected = sorted(tuple(r) for r in await conn.fetch("SELECT id, latitude, longitude FROM businesses"))
        assert len(expected) == 300
        for cards_max, with_rows in ((None, True), (300, True), (299, False), (0, False)):
            snapshot = await load_snapshot(conn, cards_max=cards_max)
            assert snapshot.businesses == 300
            assert (snapshot.rows is not None, snapshot.positions is None) == (with_rows, with_rows)
            if snapshot.rows is not None:
                got = sorted((r["id"], r["latitude"], r["longitude"]) for r in snapshot.rows)
            else:
                assert snapshot.positions is not None
                got = sorted(as_rows(snapshot.positions))
            assert got == expected
            assert snapshot.info.lsn_before <= snapshot.info.lsn_after and snapshot.info.horizon > 0
            catalog = snapshot.build(max_radius_m=50_000.0, strategies=("geohash", "s2"))
            assert len(catalog) == 300 and (catalog.cards is not None) == with_rows
    finally:
        await conn.close()


async def test_a_budget_of_none_holds_no_cards_even_for_an_empty_table(places: Settings) -> None:
    """An instance built while its replica has not replayed the load yet reads an empty table;
    with a budget of 0 it must still hold positions only, or the rows it is sent later arrive
    as cards."""
    conn = await asyncpg.connect(places.pg_primary)
    try:
        await conn.execute("CREATE TEMP TABLE saved AS SELECT * FROM businesses; DELETE FROM businesses")
        try:
            snapshot = await load_snapshot(conn, cards_max=0)
            assert (snapshot.businesses, snapshot.rows, snapshot.positions is not None) == (0, None, True)
            assert snapshot.build(max_radius_m=50_000.0, strategies=("geohash",)).cards is None
            assert (await load_snapshot(conn, cards_max=10)).rows == []  # a budget above 0: cards
        finally:
            await conn.execute("INSERT INTO businesses SELECT * FROM saved")
    finally:
        await conn.close()


async def test_a_long_load_says_how_far_it_is_and_nothing_else(
    places: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A progress line per interval (every chunk here): counts and a rate, no place."""
    monkeypatch.setattr(catalog_load, "PROGRESS_S", 0.0)
    conn = await asyncpg.connect(places.pg_primary)
    try:
        with caplog.at_level(logging.INFO, logger="location_api.catalog_load"):
            snapshot = await load_snapshot(conn, cards_max=0)
    finally:
        await conn.close()
    assert snapshot.positions is not None
    lines = [r.getMessage() for r in caplog.records if r.name == "location_api.catalog_load"]
    assert lines, "no progress line"
    for line in lines:
        assert re.fullmatch(r"catalog load: [\d,]+ of 300 businesses \(\d+%\), [\d,]+/s", line), line
