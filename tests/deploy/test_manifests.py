"""The static deployment files: Kubernetes manifests and container files.

Kustomize output comes from kubectl's built-in kustomize and is validated with schemas
(kubernetes-validate for core kinds, deploy/k8s/schemas for the operators' resources); the
Dockerfile is linted with hadolint; compose.yaml is validated against the Compose
Specification's schema. Each validator is also shown a broken input, so a test that passes
says the validator looked. No network, no cluster, no Docker engine.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import fields
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.stack.binaries import ensure_nginx
from tests.deploy.conftest import by_kind
from deploy.k8s_render import (
    K8S_DIR,
    KUBERNETES_VERSIONS,
    InvalidManifest,
    RenderError,
    dangling_references,
    render,
    validate,
)
from geo_common.regions import RegionMap
from geo_common.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
OVERLAYS = ("example", "regions")
GEO_VARIABLES = {f.metadata["env"] for f in fields(Settings)}


def container_env(objects: list[dict[str, Any]], deployment: str) -> dict[str, str]:
    """The environment the main container of a Deployment starts with (operator secrets: "x")."""
    config_maps, secrets = by_kind(objects, "ConfigMap"), by_kind(objects, "Secret")
    container = by_kind(objects, "Deployment")[deployment]["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            env[item["name"]] = item["value"]
        elif ref["name"] in secrets:
            env[item["name"]] = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
        else:
            env[item["name"]] = "x"
    return env


# --- Kubernetes: rendering and schemas ----------------------------------------------------


def test_every_kustomization_renders(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert set(rendered) == {"base", *OVERLAYS}
    for name in OVERLAYS:
        kinds = Counter(o["kind"] for o in rendered[name])
        assert kinds["Deployment"] == 4 and kinds["HorizontalPodAutoscaler"] == 2
        assert kinds["Cluster"] == 1 and kinds["Namespace"] == 1
        assert {o["metadata"].get("namespace") for o in rendered[name] if o["kind"] != "Namespace"} == {f"geo-{name}"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", ["base", *OVERLAYS])
def test_every_object_matches_its_schema(rendered: dict[str, list[dict[str, Any]]], name: str, version: str) -> None:
    for obj in rendered[name]:
        validate(obj, kubernetes_version=version)


def _set(path: str, value: Any) -> Any:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = obj
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return mutate


BROKEN = [
    (
        "Deployment",
        "geo-api-read",
        _set("spec.template.spec.containers.0.livenessProbe.httpGet.paht", "/healthz"),
        "paht",
    ),
    ("Deployment", "geo-friends", _set("spec.replicas", "two"), "replicas"),
    ("HorizontalPodAutoscaler", "geo-api-read", _set("spec.targetCPUUtilizationPercentage", 70), "targetCPU"),
    ("Ingress", "geo-ws", _set("spec.rules.0.http.paths.0.backend.serviceName", "geo-friends"), "serviceName"),
    ("Cluster", "geo-pg", _set("spec.instances", 0), "instances"),
    ("Cluster", "geo-pg", _set("spec.primaryUpdateStrategy", "automatic"), "primaryUpdateStrategy"),
    ("Cluster", "geo-pg", _set("spec.storage.sise", "1Gi"), "sise"),
    ("Cluster", "geo-pg", _set("spec.resources.requests.cpu", ["1"]), "cpu"),
    (
        "RedisCluster",
        "geo-redis-cluster",
        _set("spec.kubernetesConfig.imagePullPolicy", "Sometimes"),
        "imagePullPolicy",
    ),
    ("Redis", "geo-redis", _set("spec.kubernetesConfig", {"imagePullPolicy": "Always"}), "image"),
]


@pytest.mark.parametrize(("kind", "name", "mutate", "mentions"), BROKEN, ids=[b[3] for b in BROKEN])
def test_a_broken_object_is_rejected(
    rendered: dict[str, list[dict[str, Any]]], kind: str, name: str, mutate: Any, mentions: str
) -> None:
    obj = copy.deepcopy(by_kind(rendered["example"], kind)[name])
    validate(obj)
    mutate(obj)
    with pytest.raises(InvalidManifest) as caught:
        validate(obj)
    assert mentions in str(caught.value)


def test_an_unknown_kind_is_rejected() -> None:
    with pytest.raises(InvalidManifest, match="no schema"):
        validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}})


def test_a_broken_kustomization_is_refused(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(RenderError, match="missing.yaml"):
        render(tmp_path)


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_references_resolve(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    objects = rendered[name]
    assert dangling_references(objects) == []
    without = [o for o in objects if (o["kind"], o["metadata"]["name"]) != ("Service", "geo-edge")]
    without += [{"kind": "Service", "metadata": {"name": "stray"}, "spec": {"selector": {"app": "none"}}}]
    problems = dangling_references(without)
    assert any("Ingress/geo-api refers to Service/geo-edge" in p for p in problems)
    assert any("Service/stray selects no pods" in p for p in problems)


# --- Kubernetes: what the manifests say ----------------------------------------------------


def test_tiers_run_the_right_commands_with_probes_and_limits(rendered: dict[str, list[dict[str, Any]]]) -> None:
    deployments = by_kind(rendered["example"], "Deployment")
    commands = {name: d["spec"]["template"]["spec"]["containers"][0].get("command") for name, d in deployments.items()}
    assert commands["geo-api-read"] == ["geo-api", "--role", "read"]
    assert commands["geo-api-write"] == ["geo-api", "--role", "write"]
    assert commands["geo-friends"] == ["geo-friends"]
    for name in ("geo-api-read", "geo-api-write", "geo-friends"):
        pod = deployments[name]["spec"]["template"]
        container = pod["spec"]["containers"][0]
        port = container["ports"][0]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port["containerPort"])
        env = container_env(rendered["example"], name)
        listen = "GEO_WS_PORT" if name == "geo-friends" else "GEO_API_PORT"
        assert env[listen] == str(port["containerPort"])
        assert [c["command"] for c in pod["spec"]["initContainers"]] == [["geo-api", "migrate"]]
    for name, deployment in deployments.items():
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            assert container["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name


def test_autoscalers_and_disruption_budgets_cover_the_tiers(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["example"]
    hpas = by_kind(objects, "HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == {"geo-api-read", "geo-friends"}
    assert all(h["apiVersion"] == "autoscaling/v2" and h["spec"]["minReplicas"] >= 2 for h in hpas.values())
    assert hpas["geo-api-read"]["spec"]["minReplicas"] == 3  # the example overlay's patch
    deployments = by_kind(objects, "Deployment")
    for hpa in hpas.values():  # an apply must not reset what the autoscaler decided
        assert "replicas" not in deployments[hpa["spec"]["scaleTargetRef"]["name"]]["spec"]
    budgets = by_kind(objects, "PodDisruptionBudget")
    for deployment in by_kind(objects, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets.values())


def test_ingress_routes_websocket_with_long_timeouts(rendered: dict[str, list[dict[str, Any]]]) -> None:
    ingresses = by_kind(rendered["example"], "Ingress")
    ws = ingresses["geo-ws"]
    assert int(ws["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(ws["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    routes = {
        path["path"]: path["backend"]["service"]["name"]
        for ingress in ingresses.values()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    # Searches go through geo-edge, which limits them per client address (a 429 problem
    # document) and logs them without their query string; the Ingress logs none of them.
    assert routes == {
        "/v1/friends/ws": "geo-friends",
        "/v1": "geo-edge",
        "/openapi.json": "geo-edge",
    }
    assert ingresses["geo-api"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/enable-access-log"] == "false"
    assert {rule["host"] for i in ingresses.values() for rule in i["spec"]["rules"]} == {"geo.example.org"}
    edge = by_kind(rendered["example"], "ConfigMap")
    conf = next(c["data"]["nginx.conf"] for n, c in edge.items() if n.startswith("geo-edge-nginx"))
    assert "server geo-api-read:8080" in conf and "server geo-api-write:8080" in conf


@pytest.mark.parametrize("name", OVERLAYS)
def test_containers_get_valid_settings_pointing_at_the_operators(
    rendered: dict[str, list[dict[str, Any]]], name: str
) -> None:
    objects = rendered[name]
    cluster = by_kind(objects, "Cluster")["geo-pg"]
    assert cluster["spec"]["instances"] == 3
    redis, clusters = by_kind(objects, "Redis"), by_kind(objects, "RedisCluster")
    for deployment in ("geo-api-read", "geo-api-write", "geo-friends"):
        env = container_env(objects, deployment)
        assert {k for k in env if k.startswith("GEO_")} <= GEO_VARIABLES  # a misspelt variable is ignored silently
        settings = Settings.from_env(env)
        assert settings.pg_primary == "postgresql://geo@geo-pg-rw:5432/geo"
        assert settings.pg_replicas == ("postgresql://geo@geo-pg-ro:5432/geo",)
        assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "geo", "owner": "geo"}
        for region in RegionMap.from_settings(settings).regions:
            assert region.redis_url.removeprefix("redis://").split(":")[0] in redis
            assert region.pubsub_backend == "cluster"
            assert {n.split(":")[0].removesuffix("-leader") for n in region.pubsub_nodes} <= set(clusters)
    regions = RegionMap.from_settings(Settings.from_env(container_env(objects, "geo-friends")))
    assert regions.names == (("us", "eu") if name == "regions" else ("default",))
    if name == "regions":
        assert regions.region_for(48.85, 2.35).name == "eu"  # Paris
        assert regions.region_for(40.71, -74.0).name == "us"  # New York
        assert regions.get("eu").redis_url == "redis://geo-redis-eu:6379/0"


# --- containers ----------------------------------------------------------------------------


def hadolint(dockerfile: Path) -> list[dict[str, Any]]:
    binary = Path(sys.executable).parent / "hadolint"
    result = subprocess.run(
        [str(binary) if binary.is_file() else "hadolint", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings: list[dict[str, Any]] = json.loads(result.stdout or "[]")
    assert (result.returncode == 0) == (not findings), result.stderr
    return findings


def test_dockerfile_lints_clean_and_runs_unprivileged() -> None:
    assert hadolint(DOCKER / "Dockerfile") == []
    text = (DOCKER / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(stages) == 2 and all(s == "${PYTHON_IMAGE}" for s in stages)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim", text, re.M)
    assert re.findall(r"^USER\s+(\S+)", text, re.M)[-1] == "10001:10001"
    assert re.search(r"^HEALTHCHECK .*CMD \[\"geo-healthcheck\"\]", text, re.M)
    # the locked dependencies in a layer of their own, before the source is copied
    steps = [line for line in text.splitlines() if line.startswith(("COPY", "RUN"))]
    lock_copy = steps.index("COPY pyproject.toml uv.lock ./")
    assert steps[lock_copy + 1] == "RUN uv sync --frozen --no-dev --no-install-project --no-editable"
    assert steps.index("COPY . .") > lock_copy + 1
    assert steps[steps.index("COPY . .") + 1] == "RUN uv sync --frozen --no-dev --no-editable"
    assert "pip install ." not in text  # nothing installed from open ranges


def test_hadolint_rejects_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN pip install requests\n")
    codes = {f["code"] for f in hadolint(bad)}
    assert {"DL3007", "DL3014", "DL3013"} <= codes


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # the stdlib's name
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_healthcheck_script_follows_the_status(health_server: HTTPServer) -> None:
    url = f"http://127.0.0.1:{health_server.server_address[1]}/healthz"
    script = [sys.executable, str(DOCKER / "healthcheck.py")]
    assert subprocess.run([*script, url], capture_output=True, timeout=10).returncode == 0
    _Health.status = 503
    try:
        assert subprocess.run([*script, url], capture_output=True, timeout=10).returncode == 1
    finally:
        _Health.status = 200
    health_server.shutdown()
    health_server.server_close()
    assert subprocess.run([*script, url], capture_output=True, timeout=10).returncode == 1


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((DOCKER / "schemas" / "compose-spec.json").read_text())
    validator: jsonschema.protocols.Validator = jsonschema.Draft201909Validator(schema)
    return validator


def test_compose_file_matches_the_compose_spec() -> None:
    doc = compose()
    compose_validator().validate(doc)
    broken = copy.deepcopy(doc)
    broken["services"]["geo-api-read"]["depends_on"]["migrate"]["condition"] = "service_finished"
    with pytest.raises(jsonschema.ValidationError):
        compose_validator().validate(broken)
    broken = copy.deepcopy(doc)
    broken["services"]["nginx"]["port"] = broken["services"]["nginx"].pop("ports")
    with pytest.raises(jsonschema.ValidationError):
        compose_validator().validate(broken)


def _defaults(value: str) -> str:
    """``${NAME:-default}`` as compose substitutes it when NAME is not set."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_compose_runs_the_full_stack_topology() -> None:
    services = compose()["services"]
    replicas = {name: s.get("deploy", {}).get("replicas", 1) for name, s in services.items() if "profiles" not in s}
    assert replicas == {
        "pg-primary": 1,
        "pg-replica": 1,
        "redis": 1,
        "migrate": 1,
        "geo-api-read": 2,
        "geo-api-write": 1,
        "geo-friends": 2,
        "nginx": 1,
    }
    assert services["geo-api-read"]["command"] == ["geo-api", "--role", "read"]
    assert services["geo-api-write"]["command"] == ["geo-api", "--role", "write"]
    assert services["geo-friends"]["healthcheck"]["test"][-1] == "http://127.0.0.1:8081/healthz"
    for name in ("migrate", "geo-api-read", "geo-api-write", "geo-friends"):
        env = {k: _defaults(str(v)) for k, v in services[name]["environment"].items()}
        settings = Settings.from_env(env)
        assert settings.pg_primary.split("@")[1].split(":")[0] in services
        assert settings.redis_url.split("//")[1].split(":")[0] in services
        assert services[name]["read_only"] is True and services[name]["cap_drop"] == ["ALL"]
    conf = (DOCKER / "nginx.conf").read_text()
    for host, port in re.findall(r"server ([\w-]+):(\d+)", conf):
        assert host in services and port in ("8080", "8081")
    for volume in [v for s in services.values() for v in s.get("volumes", [])]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (DOCKER / source).is_file(), source


@pytest.mark.parametrize("conf", [DOCKER / "nginx.conf", K8S_DIR / "base" / "edge-nginx.conf"], ids=["compose", "edge"])
def test_nginx_accepts_the_configs(tmp_path: Path, conf: Path) -> None:
    # Service names resolve only in their network: point them at loopback for the syntax check.
    (tmp_path / "site.conf").write_text(re.sub(r"server [\w-]+:(\d+)", r"server 127.0.0.1:\1", conf.read_text()))
    temp = " ".join(
        f"{kind}_temp_path {tmp_path}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (tmp_path / "main.conf").write_text(
        f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
        f"http {{ access_log off; {temp} include {tmp_path}/site.conf; }}\n"
    )
    nginx = ensure_nginx()  # the project's set-up installs it when missing, as for the full stack
    result = subprocess.run(
        [str(nginx), "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "main.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
