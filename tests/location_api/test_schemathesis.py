"""schemathesis against /openapi.json: no 5xx, and every response as the document describes it.

It runs in-process, in a worker thread (schemathesis is synchronous), against the real app on
port 0 with a database of its own: the generated writes and deletes hit real rows.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from multidict import MultiDict
from schemathesis import CheckFunction, GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from geo_common.settings import Settings
from location_api.errors import InvalidRequest
from location_api.hours import InvalidHours, parse_hours
from location_api.search_params import parse_area, parse_search

from .conftest import Api, drop_database, small_database, stop_api

#: Examples per operation and generation mode (about 1,000 requests in all, ~10 s);
#: GEO_SCHEMATHESIS_EXAMPLES=300 digs deeper.
MAX_EXAMPLES = int(os.environ.get("GEO_SCHEMATHESIS_EXAMPLES", "60"))


@pytest.fixture(scope="module")
async def fuzzed(settings: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> AsyncIterator[Api]:
    """The API over a database of its own with 3,000 real places, so searches find something."""
    fuzz = await small_database(settings, "fuzz", places=3000)
    api = await serve(fuzz)
    yield api
    await stop_api(api)
    await drop_database(settings.pg_primary, fuzz.pg_primary.rpartition("/")[2])


def _run(api: Api, headers: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_url(api.url("/openapi.json"))
    base_url = api.url("")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid schema raises here
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def check(mode: GenerationMode, path: str, case: schemathesis.Case[Any]) -> None:
                # A cursor and a consistency token are opaque and signed: a well-formed string
                # that this API did not issue is rightly refused, however valid it looks to the
                # schema. Nor can a schema say "two different users": befriending or blocking
                # oneself is a 400, nor that a day's opening hours are in order and open and
                # close at different times, nor that a rating comes with reviews and only then,
                # nor a search's rules across parameters (k without radius, relevance with q, a
                # box that fits the largest radius), nor that category is the first of categories.
                params = case.path_parameters or {}
                refused = (
                    (case.query and "cursor" in case.query)
                    or (case.headers and "X-Consistency-Token" in case.headers)
                    or any(name in params and params.get("id") == params[name] for name in ("friend_id", "blocked_id"))
                    or _hours_out_of_order(case.body)
                    or _rating_without_reviews(case.body)
                    or _categories_disagree(case.body)
                    or _search_refused(path, case.query, api.settings.max_radius_m)
                )
                excluded: list[CheckFunction] = [positive_data_acceptance] if refused else []
                # A query value with no form on the wire (None, [] or {}) is dropped when the
                # request is sent, so a negative case whose fault was that value reaches the
                # API valid and is rightly answered; the other checks still apply to it.
                if mode is GenerationMode.NEGATIVE and _has_unsendable_values(case.query):
                    excluded.append(negative_data_rejection)
                case.call_and_validate(base_url=base_url, headers=headers, excluded_checks=excluded or None)

            try:
                check(mode, operation.path)
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing to get wrong: the operation takes no parameters and no body
            except Exception as exc:  # noqa: BLE001 - collect every operation's failures, then report them all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


async def test_no_server_errors_and_every_response_matches_the_schema(
    fuzzed: Api, admin_headers: dict[str, str]
) -> None:
    failures = await asyncio.to_thread(_run, fuzzed, admin_headers)
    assert not failures, "\n\n".join(failures)
    # It did exercise the API: search and writes were answered, with successes among them.
    async with fuzzed.http.get("/metrics") as resp:
        metrics = await resp.text()
    answered = {
        (route, status): float(value)
        for line in metrics.splitlines()
        if line.startswith("geo_api_requests_total{")
        for route, status, value in [_labels(line)]
    }
    assert sum(answered.values()) >= 5 * MAX_EXAMPLES
    for route, status in [
        ("/v1/search/nearby", "200"),
        ("/v1/search/nearby", "400"),
        ("/v1/businesses", "201"),
        ("/v1/businesses/{id}", "200"),
        ("/v1/businesses/{id}", "404"),
        ("/v1/users/{id}/friends/{friend_id}", "201"),
        ("/v1/users/{id}/friends", "200"),
    ]:
        assert answered.get((route, status), 0) > 0, (route, status, sorted(answered))


def _hours_out_of_order(body: object) -> bool:
    """Whether a body's opening hours break a rule the schema cannot state (order, overlap)."""
    hours = body.get("hours") if isinstance(body, dict) else None
    if not isinstance(hours, dict):
        return False
    try:
        parse_hours(hours)
    except InvalidHours:
        return True
    return False


def _rating_without_reviews(body: object) -> bool:
    """Whether a body gives a rating without reviews, or reviews without a rating."""
    if not isinstance(body, dict):
        return False
    return (body.get("rating") is None) != (body.get("review_count", 0) == 0)


def _categories_disagree(body: object) -> bool:
    """Whether a body names a category that is not the first of its categories."""
    if not isinstance(body, dict) or not isinstance(body.get("categories"), list) or "category" not in body:
        return False
    return body["categories"][:1] != [body["category"]]


def _search_refused(path: str, query: dict[str, Any] | None, max_radius_m: float) -> bool:
    """Whether a search's query, as sent, breaks a rule across its parameters (or one the
    schema's patterns cannot state exactly, as the words of ``q``)."""
    parse = {"/v1/search/nearby": parse_search, "/v1/search/area": parse_area}.get(path)
    if parse is None:
        return False
    sent = MultiDict(
        (name, str(value).lower() if isinstance(value, bool) else str(value))
        for name, value in (query or {}).items()
        if value is not None and value != [] and value != {}
    )
    try:
        parse(sent, max_radius_m=max_radius_m)
    except InvalidRequest:
        return True
    return False


def _has_unsendable_values(query: dict[str, Any] | None) -> bool:
    """Whether a generated query holds a value that the HTTP client drops instead of sending."""
    return any(value is None or value == [] or value == {} for value in (query or {}).values())


def _labels(line: str) -> tuple[str, str, str]:
    labels, _, value = line.partition("} ")
    fields = dict(part.split("=", 1) for part in labels.removeprefix("geo_api_requests_total{").split(","))
    return fields["route"].strip('"'), fields["status"].strip('"'), value
