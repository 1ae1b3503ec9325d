"""Reading a read instance's catalog from a replica: every position by binary COPY into arrays.

A catalog within the card budget (``Settings.api_cards_max``) is read as it always was: every
business's row, from which :meth:`location_api.catalog.Catalog.build` makes a card per
business. Above the budget only ``(id, latitude, longitude)`` is read, with PostgreSQL's
binary COPY, straight into three numpy arrays: each chunk the server sends is read as an
array of fixed-width rows (:data:`ROW`, big-endian as the format is) and copied into arrays
sized by a count taken first, so no Python object is made per business. The indexes are then
built from the arrays (:meth:`location_api.catalog.Catalog.of_positions`).

Both ways read in one repeatable-read snapshot, with the positions the refresher needs to
follow the change log from there (:func:`load_snapshot`).

The binary format (PostgreSQL's documentation, "COPY", "Binary Format"): an 11-byte
signature, a 32-bit flags word, a 32-bit header-extension length and that many bytes; then
per row a 16-bit field count and, per field, a 32-bit length (-1 for NULL) and the value;
then a 16-bit -1. The columns are ``NOT NULL`` and of fixed width, so every row is the same
38 bytes; anything else is refused with :class:`MalformedCopy`, naming what was found.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import asyncpg
import numpy as np
import numpy.typing as npt

from location_api import queries, catalog_queries
from location_api.catalog import Catalog
from location_api.catalog_queries import SnapshotInfo

log = logging.getLogger(__name__)

#: The positions read above the card budget.
POSITIONS_QUERY = "SELECT id, latitude, longitude FROM businesses"
#: One row of :data:`POSITIONS_QUERY` in binary COPY: field count, then length and value of
#: ``id`` (bigint), ``latitude`` and ``longitude`` (double precision); all big-endian.
ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("id_size", ">i4"),
        ("id", ">i8"),
        ("lat_size", ">i4"),
        ("lat", ">f8"),
        ("lon_size", ">i4"),
        ("lon", ">f8"),
    ]
)
SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_FIXED_HEADER = len(SIGNATURE) + 8  # then the flags and the extension's length, 32 bits each
_ROW_START = b"\x00\x03"
_TRAILER = b"\xff\xff"
#: Flag bits a reader must understand (0-15, critical) or that add a column (16: OIDs).
_REFUSED_FLAGS = 0x0001FFFF
#: Seconds between two progress lines of a long load.
PROGRESS_S = 5.0
#: How long each statement of a load may take, seconds. The pools' command timeout (15 s) is
#: a request's; reading tens of millions of businesses takes longer than that.
LOAD_TIMEOUT_S = 1_800.0
_FIRST_CAPACITY = 1024

Int64s = npt.NDArray[np.int64]
Float64s = npt.NDArray[np.float64]


class MalformedCopy(ValueError):
    """The COPY stream is not binary COPY of ``(bigint, float8, float8)`` rows without NULLs."""


class Positions(NamedTuple):
    """Every business's position, as three parallel arrays.

    Attributes:
        ids: business ids (``int64``).
        lats: latitudes, degrees (``float64``).
        lons: longitudes, degrees (``float64``).
    """

    ids: Int64s
    lats: Float64s
    lons: Float64s


class PositionsReader:
    """Reads a binary COPY stream of ``(id, latitude, longitude)`` rows, chunk by chunk.

    Chunks may split the header, a row or the trailer anywhere. Every full row of a chunk is
    checked and copied at once (numpy), into arrays that grow when more rows come than
    expected.

    Args:
        expected_rows: how many rows to make room for at first.
    """

    def __init__(self, expected_rows: int = 0) -> None:
        capacity = max(expected_rows, 0) or _FIRST_CAPACITY
        self._ids: Int64s = np.empty(capacity, np.int64)
        self._lats: Float64s = np.empty(capacity, np.float64)
        self._lons: Float64s = np.empty(capacity, np.float64)
        #: Rows read so far.
        self.rows = 0
        self._tail = b""  # bytes of an unfinished header, row or trailer
        self._in_header = True
        self._done = False

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Read the next piece of the stream.

        Raises:
            MalformedCopy: the stream so far is not what :data:`ROW` describes.
        """
        if self._done:
            if len(chunk):
                raise MalformedCopy(f"{len(chunk)} bytes after the trailer")
            return
        data = self._tail + chunk if self._tail else bytes(chunk)
        start = 0
        if self._in_header:
            start = self._header(data)
            if start < 0:
                self._tail = data
                return
            self._in_header = False
        self._tail = self._rows(data, start)

    def finish(self) -> Positions:
        """The positions read, once the whole stream has been fed.

        Raises:
            MalformedCopy: the stream ended before its trailer.
        """
        if not self._done:
            where = "in its header" if self._in_header else f"after {self.rows:,} rows"
            raise MalformedCopy(f"the stream ended {where}, without a trailer ({len(self._tail)} bytes pending)")
        n = self.rows
        if n == len(self._ids):
            return Positions(self._ids, self._lats, self._lons)
        return Positions(self._ids[:n].copy(), self._lats[:n].copy(), self._lons[:n].copy())

    def _header(self, data: bytes) -> int:
        """Where the rows start in ``data``, or -1 while the header is incomplete."""
        if data[: len(SIGNATURE)] != SIGNATURE[: len(data)]:
            raise MalformedCopy(f"not binary COPY: the stream starts {data[: len(SIGNATURE)]!r}")
        if len(data) < _FIXED_HEADER:
            return -1
        flags = int.from_bytes(data[len(SIGNATURE) : len(SIGNATURE) + 4], "big")
        if flags & _REFUSED_FLAGS:
            raise MalformedCopy(f"unexpected header flags {flags:#010x} (OIDs, or a format this reader predates)")
        extension = int.from_bytes(data[len(SIGNATURE) + 4 : _FIXED_HEADER], "big", signed=True)
        if extension < 0:
            raise MalformedCopy(f"negative header extension length {extension}")
        end = _FIXED_HEADER + extension
        return end if len(data) >= end else -1

    def _rows(self, data: bytes, start: int) -> bytes:
        """Read the full rows of ``data`` from ``start`` (and the trailer, if it is there);
        return the bytes of an unfinished row."""
        count = (len(data) - start) // ROW.itemsize
        rows = np.frombuffer(data, ROW, count=count, offset=start)
        good = (rows["fields"] == 3) & (rows["id_size"] == 8) & (rows["lat_size"] == 8) & (rows["lon_size"] == 8)
        taken = count if bool(good.all()) else int(np.argmin(good))
        if taken:
            self._append(rows[:taken])
        rest = data[start + taken * ROW.itemsize :]
        if rest[:2] == _TRAILER:
            if len(rest) > 2:
                raise MalformedCopy(f"{len(rest) - 2} bytes after the trailer")
            self._done = True
            return b""
        if taken < count or (len(rest) >= 2 and rest[:2] != _ROW_START):
            raise MalformedCopy(f"row {self.rows + 1:,}: {_describe(rest)}")
        return rest

    def _append(self, rows: npt.NDArray[Any]) -> None:
        n, k = self.rows, len(rows)
        if n + k > len(self._ids):
            capacity = max(n + k, 2 * len(self._ids))
            self._ids = _grown(self._ids, n, capacity)
            self._lats = _grown(self._lats, n, capacity)
            self._lons = _grown(self._lons, n, capacity)
        self._ids[n : n + k] = rows["id"]
        self._lats[n : n + k] = rows["lat"]
        self._lons[n : n + k] = rows["lon"]
        self.rows = n + k


def _grown(array: npt.NDArray[Any], used: int, capacity: int) -> npt.NDArray[Any]:
    grown = np.empty(capacity, array.dtype)
    grown[:used] = array[:used]
    return grown


def _describe(row: bytes) -> str:
    """What a row that is not ``(bigint, float8, float8)`` without NULLs holds, for the error."""
    fields = int.from_bytes(row[:2], "big", signed=True)
    if fields != 3:
        return f"{fields} fields, expected 3 (id, latitude, longitude)"
    at = 2
    for name in ("id", "latitude", "longitude"):
        if len(row) < at + 4:
            break
        size = int.from_bytes(row[at : at + 4], "big", signed=True)
        if size != 8:
            return f"{name} is {'NULL' if size == -1 else f'{size} bytes'}, expected 8 (bigint or float8, not NULL)"
        at += 4 + size
    return f"unreadable row {row[: ROW.itemsize]!r}"


async def copy_positions(
    conn: asyncpg.Connection,
    expected_rows: int,
    *,
    query: str = POSITIONS_QUERY,
    progress: Callable[[int, float], None] | None = None,
    timeout: float = LOAD_TIMEOUT_S,
) -> Positions:
    """Every ``(id, latitude, longitude)`` of a query, by binary COPY into arrays.

    Args:
        conn: a connection (in the snapshot to read, if one is wanted).
        expected_rows: how many rows to expect (the arrays grow if more come).
        query: a query of three columns, ``bigint``, ``double precision``, ``double
            precision``, never NULL.
        progress: called every :data:`PROGRESS_S` with the rows read so far and the seconds
            since the start.
        timeout: seconds the whole COPY may take.

    Returns:
        The positions, in the order the server sent them.

    Raises:
        MalformedCopy: the server sent something else (other columns, a NULL). The rest of
            the stream is read (and dropped) first: a COPY that its reader gives up on
            leaves an asyncpg connection waiting for a cancellation, unusable.
    """
    reader = PositionsReader(expected_rows)
    started = last = time.monotonic()
    failure: MalformedCopy | None = None

    async def sink(chunk: bytes) -> None:
        nonlocal last, failure
        if failure is not None:
            return
        try:
            reader.feed(chunk)
        except MalformedCopy as exc:
            failure = exc
            return
        now = time.monotonic()
        if progress is not None and now - last >= PROGRESS_S:
            last = now
            progress(reader.rows, now - started)

    await conn.copy_from_query(query, output=sink, format="binary", timeout=timeout)
    if failure is not None:
        raise failure
    return reader.finish()


class Snapshot(NamedTuple):
    """What one snapshot of the database says the catalog holds.

    Attributes:
        info: the snapshot's position (the refresher follows the change log from there).
        rows: every business row, when the catalog is within the card budget; else ``None``.
        positions: every business's position, when it is above the budget; else ``None``.
        seen: the transactions at or above its horizon whose changes it already reflects.
    """

    info: SnapshotInfo
    rows: list[asyncpg.Record] | None
    positions: Positions | None
    seen: list[int]

    @property
    def businesses(self) -> int:
        """How many businesses the snapshot holds."""
        if self.rows is not None:
            return len(self.rows)
        return 0 if self.positions is None else len(self.positions.ids)

    def build(self, *, max_radius_m: float, strategies: Sequence[str]) -> Catalog:
        """The catalog of this snapshot (CPU-heavy: run it in an executor)."""
        if self.rows is not None:
            return Catalog.build(self.rows, max_radius_m=max_radius_m, strategies=strategies)
        assert self.positions is not None  # one of the two, by construction
        return Catalog.of_positions(*self.positions, max_radius_m=max_radius_m, strategies=strategies)


def _log_progress(total: int) -> Callable[[int, float], None]:
    def say(rows: int, seconds: float) -> None:
        log.info(
            "catalog load: %s of %s businesses (%.0f%%), %s/s",
            f"{rows:,}",
            f"{total:,}",
            100.0 * rows / max(total, 1),
            f"{rows / max(seconds, 1e-9):,.0f}",
        )

    return say


async def load_snapshot(conn: asyncpg.Connection, *, cards_max: int | None = None) -> Snapshot:
    """Every business (rows within the budget, else positions) and where the snapshot stands.

    Args:
        conn: a connection to a read server.
        cards_max: the card budget (``Settings.api_cards_max``): up to this many businesses
            the rows are read, for cards; ``None``: always; 0: never, not even for an empty
            table (a catalog loaded empty grows by live changes, and would grow with cards).

    Returns:
        The snapshot.

    Raises:
        MalformedCopy: the positions' COPY was not what it should be (a changed schema).
    """
    before = await queries.visible_lsn(conn)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        info = await catalog_queries.snapshot_position(conn, before)
        count: int = await conn.fetchval("SELECT count(*) FROM businesses", timeout=LOAD_TIMEOUT_S)
        if cards_max is None or 0 < cards_max and count <= cards_max:
            rows: list[asyncpg.Record] | None = await catalog_queries.all_businesses(conn, timeout=LOAD_TIMEOUT_S)
            positions = None
        else:
            rows = None
            positions = await copy_positions(conn, count, progress=_log_progress(count))
            if len(positions.ids) != count:  # the same snapshot: a bug, or a changed schema
                raise MalformedCopy(f"COPY sent {len(positions.ids):,} rows where the count was {count:,}")
        seen = await catalog_queries.changes_seen(conn, info.horizon)
    return Snapshot(info, rows, positions, seen)
