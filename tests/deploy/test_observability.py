"""Observability files: the Grafana dashboard asks only for what the services really export,
and the Prometheus config scrapes the local full stack and the Kubernetes pods."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from deploy.stack.binaries import ensure_promtool
from geo_common.settings import Settings
from geo_common.tokens import mint_token
from tests.deploy.conftest import by_kind

OBSERVABILITY = Path(__file__).resolve().parents[2] / "deploy" / "observability"


#: Labels Prometheus attaches to every sample of a target (scrape config and relabelling).
TARGET_LABELS = {"job", "instance", "env", "role", "namespace", "pod"}


def _samples(text: str) -> dict[str, set[str]]:
    """Sample name -> label names, from Prometheus text format. A family without samples (a
    counter by region before any region counted) is listed under its sample names, without labels."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        for suffix in suffixes:
            found.setdefault(family.name + suffix, set())
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


@pytest.fixture(scope="module")
async def scraped(settings: Settings) -> AsyncIterator[dict[str, str]]:
    """What the two services export: a real geo-api (role all) and a real geo-friends on port 0,
    each asked once for something (a search; a malformed frame; a health check), then for
    /metrics. Service name -> the /metrics text."""
    from location_api.app import create_app as create_api_app
    from tests.friends_ws.ws_helpers import start_server

    api = TestServer(create_api_app(replace(settings, api_role="all")), host="127.0.0.1")
    await api.start_server()
    ws = await start_server(settings)  # served as geo-friends serves it (friends_ws.site)
    texts: dict[str, str] = {}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                api.make_url("/v1/search/nearby"), params={"latitude": "48.85", "longitude": "2.35"}
            ) as r:
                assert r.status == 200
            # One bad frame on the WebSocket tier, so its error counter has a sample.
            token = mint_token(settings.jwt_secret, 4_242_424)
            async with http.ws_connect(ws.url, headers={"Authorization": f"Bearer {token}"}) as sock:
                await sock.send_str("not json")
                assert (await sock.receive_json(timeout=10))["type"] == "error"
            async with http.get(f"{ws.http}/healthz") as r:
                assert r.status == 200
            for name, base in (("geo-api", str(api.make_url("")).rstrip("/")), ("geo-friends", ws.http)):
                async with http.get(f"{base}/metrics") as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"] == CONTENT_TYPE_LATEST
                    texts[name] = await r.text()
        yield texts
    finally:
        await ws.stop()
        await api.close()


@pytest.fixture
def exported(scraped: dict[str, str]) -> dict[str, set[str]]:
    """Sample name -> label names, over both services."""
    found: dict[str, set[str]] = {}
    for text in scraped.values():
        for name, labels in _samples(text).items():
            found.setdefault(name, set()).update(labels)
    return found


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


# --- what both services export ---------------------------------------------------------------


def test_both_services_export_process_request_and_breaker_metrics(scraped: dict[str, str]) -> None:
    for service, text in scraped.items():
        samples = _samples(text)
        for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"):
            assert name in samples, f"{service} lacks {name}"
        assert "python_gc_collections_total" in samples and "python_info" in samples, service
        assert "geo_process_memory_limit_bytes" in samples, service  # a family, with a sample only under a limit
        # Every breaker is in exactly one state.
        states: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            if family.name == "geo_circuit_breaker_state":
                for sample in family.samples:
                    states[sample.labels["dependency"]] = states.get(sample.labels["dependency"], 0) + sample.value
        assert states and set(states.values()) == {1.0}, (service, states)
    friends = _samples(scraped["geo-friends"])
    assert {"route", "method", "le"} <= friends["geo_friends_http_request_duration_seconds_bucket"]
    assert 'geo_friends_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in scraped["geo-friends"]
    for name in (
        "geo_friends_delivery_lag_seconds_bucket",
        "geo_friends_queued_frames",
        "geo_friends_history_written_total",
    ):
        assert name in friends, name
    assert "geo_api_cache_hit_ratio" not in _samples(scraped["geo-api"])  # a ratio is PromQL's job


def test_every_metric_passes_promtool(scraped: dict[str, str]) -> None:
    promtool = ensure_promtool()  # the project's set-up installs Debian's prometheus package as root
    for service, text in scraped.items():
        checked = subprocess.run(
            [str(promtool), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
        )
        assert (checked.returncode, checked.stdout + checked.stderr) == (0, ""), service
    # promtool looked: a counter without _total is reported.
    bad = "# HELP geo_x_things things\n# TYPE geo_x_things counter\ngeo_x_things 1\n"
    checked = subprocess.run([str(promtool), "check", "metrics"], input=bad, capture_output=True, text=True, timeout=60)
    assert checked.returncode != 0 and "_total" in checked.stdout + checked.stderr


# --- rules -----------------------------------------------------------------------------------


def rules() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((OBSERVABILITY / "rules.yml").read_text())
    return loaded


def test_rules_pass_promtool_and_their_unit_tests() -> None:
    promtool = str(ensure_promtool())
    checked = subprocess.run(
        [promtool, "check", "rules", "rules.yml"], cwd=OBSERVABILITY, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", "rules_test.yml"], cwd=OBSERVABILITY, capture_output=True, text=True, timeout=120
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # Every alert has a test.
    alerts = {r["alert"] for g in rules()["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((OBSERVABILITY / "rules_test.yml").read_text())["tests"]
    assert alerts == {a["alertname"] for t in tests for a in t.get("alert_rule_test", [])}
    assert alerts >= {
        "GeoApiErrorRatioHigh",
        "GeoSearchLatencyHigh",
        "GeoCircuitBreakerOpen",
        "GeoReplicaLagHigh",
        "GeoPubSubReconnecting",
        "GeoMemoryNearLimit",
        "GeoHistoryBacklog",
    }


def test_rules_use_only_exported_metrics(exported: dict[str, set[str]]) -> None:
    every = [r for g in rules()["groups"] for r in g["rules"]]
    any_label = set().union(*exported.values())
    known = dict(exported) | {r["record"]: any_label for r in every if "record" in r}
    assert unknown_metrics([r["expr"] for r in every], known) == []
    assert prometheus()["rule_files"] == ["rules.yml"]


def test_kubernetes_carries_the_rules_and_scrapes_the_services(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["example"]
    assert by_kind(objects, "PrometheusRule")["geo"]["spec"] == rules(), "copy rules.yml's groups to monitoring.yaml"
    monitor = by_kind(objects, "PodMonitor")["geo"]["spec"]
    names = set(monitor["selector"]["matchExpressions"][0]["values"])
    assert monitor["selector"]["matchExpressions"][0]["key"] == "app.kubernetes.io/name"
    ports = {e["port"] for e in monitor["podMetricsEndpoints"]}
    scraped = {}
    for name, deployment in by_kind(objects, "Deployment").items():
        template = deployment["spec"]["template"]
        if template["metadata"]["labels"]["app.kubernetes.io/name"] in names:
            container_ports = {p["name"] for p in template["spec"]["containers"][0]["ports"]}
            assert container_ports & ports, name
            scraped[name] = template["metadata"]["labels"]
    assert set(scraped) == {"geo-api-read", "geo-api-write", "geo-friends"}  # not the nginx router
    # The labels the dashboard and the rules use, as prometheus.yml's geo-kubernetes job gives them.
    for endpoint in monitor["podMetricsEndpoints"]:
        assert endpoint["path"] == "/metrics"
        rules_ = [
            {"source_labels": r.get("sourceLabels", []), "target_label": r["targetLabel"], **_replacement(r)}
            for r in endpoint["relabelings"]
        ]
        labels = relabel({"__meta_kubernetes_pod_label_app_kubernetes_io_component": "read"}, rules_)
        assert labels is not None and labels["role"] == "read" and labels["env"] == "kubernetes"
    assert monitor["jobLabel"] == "app.kubernetes.io/name"


def _replacement(rule: dict[str, Any]) -> dict[str, str]:
    return {"replacement": rule["replacement"]} if "replacement" in rule else {}
