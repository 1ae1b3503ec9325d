"""Consistency tokens: signed by the API, honoured only as issued and never beyond the primary,
and cheap to honour once a replica has the write.

The reads are served by a ``read`` instance of its own (no change-log pruning, no writes), so
its count of primary queries moves only when a read is sent to the primary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from geo_common.database_node import format_lsn, lsn_from_text
from geo_common.settings import Settings
from location_api.consistency import (
    CONSISTENCY_HEADER,
    consistency_key,
    issue_token,
    read_token,
    sign_lsn,
    verify_token,
)
from location_api.cursor import cursor_key
from location_api.errors import InvalidRequest
from location_api.keys import db_key

from .conftest import Api, caught_up, eventually, primary_lsn

SECRET = "s" * 32
KEY = consistency_key(SECRET)
#: Open sea off Namibia: nothing else near.
SPOT = {"latitude": -22.5, "longitude": 9.5}
NEAR_SPOT = {"latitude": "-22.5", "longitude": "9.5", "radius": "100"}


# ----------------------------------------------------------------------------- the token itself


def test_a_token_is_the_position_and_its_mac() -> None:
    for lsn in (0, 0x16B3748, 0x16_B374D848, 2**64 - 1):
        token = sign_lsn(KEY, lsn)
        position, mac = token.split(".")
        assert position == format_lsn(lsn) and len(mac) == 22
        assert verify_token(KEY, token) == lsn
        assert verify_token(KEY, f"  {token} ") == lsn  # surrounding blanks, as a header may carry
    assert issue_token(SECRET, 42) == sign_lsn(KEY, 42)
    assert read_token({}, SECRET) is None
    assert read_token({CONSISTENCY_HEADER: sign_lsn(KEY, 42)}, SECRET) == 42
    # Its own key: neither the JWT secret nor the cursor key.
    assert KEY != cursor_key(SECRET) and KEY != SECRET.encode()
    assert consistency_key("t" * 32) != KEY


def _refused(raw: str, key: bytes = KEY) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        verify_token(key, raw)
    assert [e.field for e in caught.value.errors] == [CONSISTENCY_HEADER]
    return caught.value


def test_only_tokens_issued_under_the_key_are_honoured() -> None:
    token = sign_lsn(KEY, 0x16B3748)
    position, mac = token.split(".")
    flipped = mac[:5] + ("A" if mac[5] != "A" else "B") + mac[6:]
    for raw in [
        "",
        "0/16B3748",  # unsigned: what tokens were before
        "FFFFFFFF/FFFFFFFF",
        f"{position}.{flipped}",  # altered MAC
        f"0/16B3749.{mac}",  # another position under this MAC
        f"0/16b3748.{mac}",  # another spelling of the position
        f"00/16B3748.{mac}",
        f"{position}.{mac}=",  # padded
        f"{position}.{mac[:-1]}",  # cut short
        f"{position}.{mac[:-1]}\u00e9",  # not ASCII
        f"{position}.{mac}.{mac}",
        f"{position}/1.{mac}",
        "G/1." + mac,
    ]:
        _refused(raw)
    _refused(token, consistency_key("t" * 32))  # signed by another deployment
    assert "not a token this API issued" in _refused("0/16B3748").detail


# ----------------------------------------------------------------------------- through the API


@pytest.fixture(scope="module")
async def reader(api: Api, serve: Callable[[Settings], Awaitable[Api]]) -> Api:
    """A read instance over the API tests' database, its indexes caught up."""
    started = await serve(replace(api.settings, api_role="read"))
    await caught_up(started)
    return started


async def _write(api: Api, admin_headers: dict[str, str], **fields: Any) -> tuple[int, str]:
    body = {"name": "Token Test", **SPOT, **fields}
    async with api.http.post("/v1/businesses", json=body, headers=admin_headers) as resp:
        assert resp.status == 201, await resp.text()
        return int((await resp.json())["id"]), resp.headers[CONSISTENCY_HEADER]


def _primary_reads(api: Api) -> int:
    return api.app[db_key].reads["primary"]


async def _problem(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    assert resp.status == 400, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert [e["field"] for e in body["errors"]] == [CONSISTENCY_HEADER]
    return body


async def test_a_write_issues_a_signed_token_its_read_honours(
    api: Api, reader: Api, admin_headers: dict[str, str]
) -> None:
    bid, token = await _write(api, admin_headers)
    assert verify_token(consistency_key(api.settings.jwt_secret), token) <= await primary_lsn(api.settings)
    async with reader.http.get(f"/v1/businesses/{bid}", headers={CONSISTENCY_HEADER: token}) as resp:
        assert resp.status == 200, await resp.text()
    for index in ("geohash", "sql"):
        params = {**NEAR_SPOT, "index": index}
        async with reader.http.get("/v1/search/nearby", params=params, headers={CONSISTENCY_HEADER: token}) as resp:
            assert bid in [b["id"] for b in (await resp.json())["businesses"]], index
    async with api.http.delete(f"/v1/businesses/{bid}", headers=admin_headers) as resp:
        assert resp.status == 204
        gone = resp.headers[CONSISTENCY_HEADER]
    async with reader.http.get(f"/v1/businesses/{bid}", headers={CONSISTENCY_HEADER: gone}) as resp:
        assert resp.status == 404


async def test_a_forged_token_is_refused_before_any_database_is_asked(
    api: Api, reader: Api, admin_headers: dict[str, str]
) -> None:
    _, token = await _write(api, admin_headers)
    position, mac = token.split(".")
    other_key = consistency_key(api.settings.jwt_secret + "x")
    forged = [
        "FFFFFFFF/FFFFFFFF",  # the position of the report: skipped index and cache, went to the primary
        position,  # a real position, unsigned
        f"{position}.{mac[::-1]}",
        sign_lsn(other_key, lsn_from_text(position)),
    ]
    before = _primary_reads(reader)
    for raw in forged:
        for params in (NEAR_SPOT, {**NEAR_SPOT, "index": "sql"}):
            async with reader.http.get("/v1/search/nearby", params=params, headers={CONSISTENCY_HEADER: raw}) as resp:
                body = await _problem(resp)
                assert "not a token this API issued" in body["detail"]
        async with reader.http.get("/v1/businesses/1", headers={CONSISTENCY_HEADER: raw}) as resp:
            await _problem(resp)
    assert _primary_reads(reader) == before


async def test_a_signed_token_ahead_of_the_primary_is_refused(reader: Api) -> None:
    key = consistency_key(reader.settings.jwt_secret)
    # As if issued by a primary whose last writes a failover lost: validly signed, never reached.
    ahead = sign_lsn(key, await primary_lsn(reader.settings) + 2**32)
    for params in (NEAR_SPOT, {**NEAR_SPOT, "index": "sql"}):
        async with reader.http.get("/v1/search/nearby", params=params, headers={CONSISTENCY_HEADER: ahead}) as resp:
            body = await _problem(resp)
            assert "ahead of the primary" in body["detail"]
    async with reader.http.get("/v1/businesses/1", headers={CONSISTENCY_HEADER: ahead}) as resp:
        await _problem(resp)
    # The refusal is for that token only: a real one still reads.
    async with reader.http.get("/v1/businesses/1", headers={CONSISTENCY_HEADER: sign_lsn(key, 0)}) as resp:
        assert resp.status == 200


async def test_a_token_the_replica_has_replayed_costs_no_primary_query(
    api: Api, reader: Api, admin_headers: dict[str, str]
) -> None:
    bid, token = await _write(api, admin_headers, name="Cheap Token")
    lsn = verify_token(consistency_key(api.settings.jwt_secret), token)
    db = reader.app[db_key]
    assert db.replicas, "the test stack has a replica"

    async def replayed() -> bool:
        # What the health checks (every second) learnt: no query of the read's own is needed.
        return all(r.healthy and r.visible_lsn >= lsn for r in db.replicas)

    await eventually(replayed, "the replica to replay the write and a health check to see it")
    await caught_up(reader)
    before = _primary_reads(reader)
    for _ in range(10):
        async with reader.http.get(f"/v1/businesses/{bid}", headers={CONSISTENCY_HEADER: token}) as resp:
            assert (await resp.json())["name"] == "Cheap Token"
        for index in ("geohash", "sql"):
            params = {**NEAR_SPOT, "index": index}
            async with reader.http.get("/v1/search/nearby", params=params, headers={CONSISTENCY_HEADER: token}) as resp:
                assert bid in [b["id"] for b in (await resp.json())["businesses"]]
    assert _primary_reads(reader) == before
    async with api.http.delete(f"/v1/businesses/{bid}", headers=admin_headers) as resp:
        assert resp.status == 204
