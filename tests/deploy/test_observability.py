"""Observability files: the Grafana dashboard asks only for what the services really export,
and the Prometheus config scrapes the local full stack and the Kubernetes pods."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from geo_common.settings import Settings
from geo_common.tokens import mint_token
from tests.deploy.conftest import by_kind

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"


#: Labels Prometheus attaches to every sample of a target (scrape config and relabelling).
TARGET_LABELS = {"job", "instance", "env", "role", "namespace", "pod"}


def _samples(text: str) -> dict[str, set[str]]:
    """Sample name -> label names, from Prometheus text format."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


@pytest.fixture
async def exported(settings: Settings) -> AsyncIterator[dict[str, set[str]]]:
    """What the two services export: a real geo-api (role all) and a real geo-friends on port 0,
    each asked once for something (a search; a malformed frame), then for /metrics."""
    from friends_ws.app import create_app as create_ws_app
    from location_api.app import create_app as create_api_app

    api = TestServer(create_api_app(replace(settings, api_role="all")), host="127.0.0.1")
    ws = TestServer(create_ws_app(settings), host="127.0.0.1")
    await api.start_server()
    await ws.start_server()
    found: dict[str, set[str]] = {}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                api.make_url("/v1/search/nearby"), params={"latitude": "48.85", "longitude": "2.35"}
            ) as r:
                assert r.status == 200
            # One bad frame on the WebSocket tier, so its error counter has a sample.
            token = mint_token(settings.jwt_secret, 4_242_424)
            async with http.ws_connect(
                ws.make_url("/v1/friends/ws"), headers={"Authorization": f"Bearer {token}"}
            ) as sock:
                await sock.send_str("not json")
                assert (await sock.receive_json(timeout=10))["type"] == "error"
            for server in (api, ws):
                async with http.get(server.make_url("/metrics")) as r:
                    assert r.status == 200
                    for name, labels in _samples(await r.text()).items():
                        found.setdefault(name, set()).update(labels)
        yield found
    finally:
        await ws.close()
        await api.close()


_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_BARE_METRIC = re.compile(r"(?<![\w:{\"'])(geo_[\w:]+)(?![\w:]*\s*[({])")


def unknown_metrics(exprs: list[str], exported: dict[str, set[str]]) -> list[str]:
    """Metric names and label names in PromQL expressions that the services do not export."""
    problems = []
    for expr in exprs:
        names = set(_BARE_METRIC.findall(expr))
        for name, matchers in _SELECTOR.findall(expr):
            names.add(name)
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
                if name in exported and label not in exported[name] | TARGET_LABELS:
                    problems.append(f"{name} has no label {label}: {expr}")
        problems += [f"{name} is not exported: {expr}" for name in sorted(names) if name not in exported]
    return problems


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    return loaded


def dashboard_exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


async def test_dashboard_uses_only_exported_metrics(exported: dict[str, set[str]]) -> None:
    exprs = dashboard_exprs(dashboard())
    assert unknown_metrics(exprs, exported) == []
    used = {m for e in exprs for m in re.findall(r"geo_\w+", e)}
    # The panels the dashboard promises, by the metric behind each.
    assert {
        "geo_api_request_duration_seconds_bucket",
        "geo_api_requests_total",
        "geo_friends_deliveries_total",
        "geo_friends_sessions",
        "geo_api_replica_replay_lag_seconds",
        "geo_api_cache_lookups_total",
        "geo_circuit_breaker_state",
    } <= used
    broken = [e.replace("geo_api_requests_total", "geo_api_requests") for e in exprs] + [
        'geo_friends_sessions{route="x"}'
    ]
    problems = unknown_metrics(broken, exported)
    assert any("geo_api_requests is not exported" in p for p in problems)
    assert any("geo_friends_sessions has no label route" in p for p in problems)


def test_dashboard_structure() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
            assert set(re.findall(r"\$(\w+)", expr)) <= {"__rate_interval", *variables}, expr


def prometheus() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    return loaded


def relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Prometheus target relabelling for the actions the config uses; None when dropped."""
    labels = dict(labels)
    for rule in rules:
        action = rule.get("action", "replace")
        regex = re.compile(f"^(?:{rule.get('regex', '(.*)')})$")
        value = rule.get("separator", ";").join(labels.get(s, "") for s in rule.get("source_labels", []))
        if action == "keep" and not regex.match(value):
            return None
        if action == "replace":
            match = regex.match(value)
            if match:
                replacement = re.sub(r"\$(\d+)", r"\\\1", rule.get("replacement", "$1"))
                result = match.expand(replacement)
                if result:
                    labels[rule["target_label"]] = result
                else:
                    labels.pop(rule["target_label"], None)
        if action == "labeldrop":
            labels = {k: v for k, v in labels.items() if not regex.match(k)}
    return labels


def _pod_target(deployment: dict[str, Any], namespace: str) -> dict[str, str]:
    """The discovery labels kubernetes_sd (role pod) gives one port of a Deployment's pod."""

    def safe(name: str) -> str:
        return re.sub(r"[^a-zA-Z0-9_]", "_", name)

    template = deployment["spec"]["template"]
    port = template["spec"]["containers"][0]["ports"][0]["containerPort"]
    target = {
        "__address__": f"10.0.0.7:{port}",
        "__metrics_path__": "/metrics",
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": f"{deployment['metadata']['name']}-abc12",
        "__meta_kubernetes_pod_phase": "Running",
    }
    target.update({f"__meta_kubernetes_pod_label_{safe(k)}": v for k, v in template["metadata"]["labels"].items()})
    target.update(
        {
            f"__meta_kubernetes_pod_annotation_{safe(k)}": v
            for k, v in template["metadata"].get("annotations", {}).items()
        }
    )
    return target


def test_prometheus_config_scrapes_local_and_kubernetes(rendered: dict[str, list[dict[str, Any]]]) -> None:
    jobs = {job["job_name"]: job for job in prometheus()["scrape_configs"]}
    assert len(jobs) == len(prometheus()["scrape_configs"])
    for job in jobs.values():
        for group in job.get("static_configs", []):
            assert all(re.fullmatch(r"127\.0\.0\.1:\d{4,5}", t) for t in group["targets"]), group
        for rule in job.get("relabel_configs", []):
            assert rule.get("action", "replace") in {"keep", "drop", "replace", "labeldrop", "labelkeep", "labelmap"}
    assert jobs["geo-kubernetes"]["kubernetes_sd_configs"] == [{"role": "pod"}]
    rules = jobs["geo-kubernetes"]["relabel_configs"]
    scraped = {}
    for name, deployment in by_kind(rendered["example"], "Deployment").items():
        labels = relabel(_pod_target(deployment, "geo-example"), rules)
        if labels is not None:
            scraped[name] = labels
    assert set(scraped) == {"geo-api-read", "geo-api-write", "geo-friends"}  # not the nginx router
    assert scraped["geo-friends"]["__address__"] == "10.0.0.7:8081" and scraped["geo-friends"]["job"] == "geo-friends"
    assert {scraped[n]["job"] for n in ("geo-api-read", "geo-api-write")} == {"geo-api"}
    assert scraped["geo-api-read"]["role"] == "read" and scraped["geo-api-read"]["namespace"] == "geo-example"
    local = relabel({"job": "geo-local", "service": "geo-api"}, jobs["geo-local"]["relabel_configs"])
    assert local == {"job": "geo-api"}
