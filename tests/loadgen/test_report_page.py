"""report.html in a real browser (Debian's Chromium, as the map page's tests drive it), after
real ``geo-loadgen`` runs: one that fails a rule against an API answering some searches 503,
one that passes, and a friends run against the real services, whose ramp the plots shade.

Each test saves a full-page screenshot under its tmp dir (``report-*.png``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from geo_common.version import version
from loadgen.plots import PLOTS
from tests.loadgen.conftest import StallServer
from tests.loadgen.stand_ins import FailingApi
from tests.loadgen.runs import Services, friends, read_report, run_loadgen
from tests.map_page.conftest import browser, chromium_path  # noqa: F401 - the fixtures

#: The banner and the run table must say these; the values are checked where they are known.
FACTS = (
    "scenario",
    "target (url)",
    "offered rate",
    "achieved rate",
    "arrivals",
    "duration",
    "wall time",
    "started (UTC)",
    "geo-nearby version",
    "host",
)


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:  # noqa: F811 - the imported fixture
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield await context.new_page()
    finally:
        await context.close()


async def open_report(page: Page, out: Path, shot: Path) -> dict[str, Any]:
    """Open ``out/report.html``, check every plot loaded, save a screenshot; the page's parts."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed to load {r.url}"))
    await page.goto((out / "report.html").as_uri())
    await page.wait_for_load_state("load")
    images = await page.eval_on_selector_all(
        "img", "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth, e.naturalHeight])"
    )
    assert sorted(src for src, *_ in images) == sorted(PLOTS)
    for src, complete, width, height in images:
        assert complete and width > 0 and height > 0, f"{src} did not load"
    await page.screenshot(path=str(shot), full_page=True)
    assert problems == []
    facts = await page.eval_on_selector_all(
        "#run tr", "rows => rows.map(r => [r.querySelector('th').innerText, r.querySelector('td').innerText])"
    )
    return {
        "banner": await page.inner_text("#verdict"),
        "banner_class": await page.get_attribute("#verdict", "class"),
        "facts": dict(facts),
        "warnings": await page.query_selector("#warnings") is not None,
    }


async def test_a_failing_run_says_fail_first_with_the_failing_rule_and_shows_its_errors(
    page: Page, tmp_path: Path
) -> None:
    out, junit = tmp_path / "out", tmp_path / "ci" / "junit.xml"  # ci/ does not exist yet
    with FailingApi(fail_every=10, status=503) as api:
        code, text = await run_loadgen(
            "search",
            "--url",
            api.url,
            "--rate",
            "100",
            "--duration",
            "2s",
            "--points",
            "uniform",
            "--out",
            str(out),
            "--junit",
            str(junit),
            "--max-errors",
            "50%",  # the 10% of 503s fail the run through the rule below only
            "--fail-if",
            "p99<5s,status_503==0",
            timeout_s=120,
        )
        assert api.requests == 200
    assert code == 1, text
    shown = await open_report(page, out, tmp_path / "report-fail.png")

    assert "fail" in str(shown["banner_class"]).split()
    banner = shown["banner"]
    assert banner.startswith("FAIL"), banner
    assert "status_503==0 failed: status_503 was 20" in banner
    assert "p99<5000ms" not in banner  # it passed: not a reason

    facts = shown["facts"]
    assert set(FACTS) <= set(facts), facts
    assert facts["scenario"] == "search" and facts["target (url)"] == api.url
    assert facts["offered rate"] == "100 searches/s" and facts["arrivals"] == "constant"
    assert facts["duration"] == "2 s" and facts["geo-nearby version"] == version()
    assert facts["host"] == socket.gethostname()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", facts["started (UTC)"])
    assert re.fullmatch(r"[\d.]+ searches/s \([\d.]+% of offered\)", facts["achieved rate"])

    rules = await page.eval_on_selector_all(
        "#rules tr", "rows => rows.slice(1).map(r => [...r.cells].map(c => c.innerText))"
    )
    assert ["status_503==0", "--fail-if", "20", "FAIL"] in rules
    assert ["errors<=50%", "--max-errors", "10%", "pass"] in rules
    errors = await page.eval_on_selector_all(
        "#errors tr",
        "rows => rows.slice(1).map(r => [r.cells[0].innerText, r.cells[1].innerText, "
        "[...r.querySelectorAll('pre.sample')].map(p => p.innerText)])",
    )
    by_kind = {kind: (count, samples) for kind, count, samples in errors}
    assert by_kind["errors"] == ("20", []) and by_kind["status_5xx"] == ("20", [])
    count, samples = by_kind["status_503"]
    assert count == "20" and len(samples) == 3
    for sample in samples:  # the stand-in's problem document, as it was sent
        assert json.loads(sample)["title"] == "broken"

    report = read_report(out)
    assert report["error_samples"]["status_503"] == samples
    assert report["gauges"]["in_flight"]["peak"] >= 0
    assert "in_flight" in (out / "timeseries.csv").read_text().splitlines()[0].split(",")

    suites = ET.parse(junit).getroot()
    assert suites.tag == "testsuites"
    (suite,) = suites.findall("testsuite")
    assert suite.get("name") == "geo-loadgen search"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    # The last of 200 searches at 100/s is sent 1.99 s in, and the run ends with its answer.
    assert float(suite.get("time", "nan")) >= 1.99
    failed = {c.get("name"): c.find("failure") for c in suite.findall("testcase")}
    assert set(failed) == {"p99<5000ms", "status_503==0", "run's own checks"}
    failure = failed["status_503==0"]
    assert failure is not None and failure.get("message") == "status_503==0 failed: status_503 was 20"
    assert failed["p99<5000ms"] is None and failed["run's own checks"] is None


async def test_a_passing_run_says_pass_and_has_no_errors(page: Page, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with StallServer(stall_after=0) as api:  # never stalls
        code, text = await run_loadgen(
            "search",
            "--url",
            api.url,
            "--rate",
            "50",
            "--duration",
            "2s",
            "--points",
            "uniform",
            "--arrivals",
            "poisson",
            "--out",
            str(out),
            "--fail-if",
            "p99<5s",
            timeout_s=120,
        )
    assert code == 0, text
    shown = await open_report(page, out, tmp_path / "report-pass.png")
    assert "pass" in str(shown["banner_class"]).split()
    assert shown["banner"].startswith("PASS") and "p99<5000ms" in shown["banner"]
    assert shown["facts"]["arrivals"] == "poisson"
    assert await page.query_selector("#errors") is None
    assert await page.inner_text("#no-errors") == "No errors."


async def test_a_friends_report_shows_the_clients_connected_and_its_phases(
    services: Services,
    page: Page,
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    code, text = await friends(
        services,
        "--users",
        "20",
        "--friends-per-user",
        "4",
        "--interval",
        "1s",
        "--ramp",
        "2s",
        "--duration",
        "3s",
        "--first-user-id",
        "6100000",
        "--out",
        str(out),
        "--fail-if",
        "p99<10s",
    )
    assert code == 0, text
    shown = await open_report(page, out, tmp_path / "report-friends.png")
    assert shown["banner"].startswith("PASS")
    facts = shown["facts"]
    assert facts["scenario"] == "friends" and facts["ramp"] == "2 s"
    assert facts["target (api)"] == services.api and facts["target (ws)"] == services.ws_url
    assert facts["offered rate"] == "20 updates/s"
    report = read_report(out)
    connected = report["gauges"]["connected"]
    assert connected["peak"] == 20, connected  # every client held its connection through the window
    assert facts["clients connected"] == f"peak 20, mean {connected['mean']:,.1f}"
    assert os.path.getsize(out / "concurrency_over_time.png") > 0
