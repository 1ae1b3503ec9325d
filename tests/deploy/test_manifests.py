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
import secrets
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.stack.binaries import ensure_nginx
from tests.deploy.conftest import by_kind
from deploy.k8s_render import (
    INSTALLER_MADE,
    K8S_DIR,
    KUBERNETES_VERSIONS,
    InvalidManifest,
    RenderError,
    dangling_references,
    render,
    validate,
)
from deploy.stack.layout import new_jwt_secret
from geo_common.regions import RegionMap
from geo_common.secrets_check import check_jwt_secret, check_serving
from geo_common.settings import Settings
from pubsub.address import NodeAddress
from pubsub.sentinel import is_sentinel_url, parse_sentinel_url

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "deploy" / "docker"
OVERLAYS = ("example", "regions", "ring-etcd")
#: Each overlay's pub/sub backend: the base's Redis Cluster, or the ring kept in etcd.
PUBSUB_BACKENDS = {"example": "cluster", "regions": "cluster", "ring-etcd": "ring"}
GEO_VARIABLES = {f.metadata["env"] for f in fields(Settings)}
#: What the tests stand in for the Secrets an installer creates (INSTALLER_MADE): a random key
#: and a random password, as docs/deploy.md has them made.
INSTALLED = {("geo-jwt", "GEO_JWT_SECRET"): new_jwt_secret(), ("geo-redis", "password"): secrets.token_hex(32)}
REDIS_PASSWORD = INSTALLED[("geo-redis", "password")]
#: The location cache's sets in each overlay, by the suffix of their names (geo-redis-locations,
#: geo-redis-sentinel and the primary's geo-locations): the base's, and the regions' eu set.
LOCATION_SETS = {"example": ("",), "regions": ("", "-eu"), "ring-etcd": ("",)}
#: The set whose sentinels each region's redis_url names.
REGION_SETS = {"default": "", "us": "", "eu": "-eu"}
EVERY_LOCATION_SET = [(overlay, suffix) for overlay, suffixes in LOCATION_SETS.items() for suffix in suffixes]
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def _expand(value: str, env: dict[str, str]) -> str:
    """``$(NAME)`` replaced as the kubelet does: by a variable defined before; ``$$`` is ``$``."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return env.get(name, match.group(0))

    return _REFERENCE.sub(one, value)


def container_env(
    objects: list[dict[str, Any]],
    deployment: str,
    *,
    init: bool = False,
    kind: str = "Deployment",
    container_name: str | None = None,
) -> dict[str, str]:
    """The environment a Deployment's (or StatefulSet's) main container (or init container, or
    the container named ``container_name``) starts with, built as the kubelet does:
    ``envFrom``, then ``env`` in order with ``$(NAME)`` expanded. Installer Secrets are
    :data:`INSTALLED`; operator ones ``"x"``; the pod's own fields (``fieldRef``) stay
    ``$(NAME)`` references."""
    config_maps, secrets_ = by_kind(objects, "ConfigMap"), by_kind(objects, "Secret")
    spec = by_kind(objects, kind)[deployment]["spec"]["template"]["spec"]
    if container_name is not None:
        container = next(c for c in spec["containers"] if c["name"] == container_name)
    else:
        container = spec["initContainers"][0] if init else spec["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if "fieldRef" in item.get("valueFrom", {}):
            continue
        if ref is None:
            env[item["name"]] = _expand(item["value"], env)
        elif ref["name"] in secrets_:
            env[item["name"]] = base64.b64decode(secrets_[ref["name"]]["data"][ref["key"]]).decode()
        elif (ref["name"], ref["key"]) in INSTALLED:
            env[item["name"]] = INSTALLED[(ref["name"], ref["key"])]
        else:
            env[item["name"]] = "x"
    return env


# --- Kubernetes: rendering and schemas ----------------------------------------------------


def test_every_kustomization_renders(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert set(rendered) == {"base", *OVERLAYS}
    for name in OVERLAYS:
        kinds = Counter(o["kind"] for o in rendered[name])
        assert kinds["Deployment"] == 4 and kinds["HorizontalPodAutoscaler"] == 2
        # The ring adds its Redis nodes and etcd, and drops the Redis Cluster.
        ring = PUBSUB_BACKENDS[name] == "ring"
        assert kinds["StatefulSet"] == 2 * len(LOCATION_SETS[name]) + (2 if ring else 0)
        assert kinds["RedisCluster"] == (0 if ring else len(LOCATION_SETS[name])) and kinds["PodMonitor"] == 2
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
    ("Redis", "geo-redis", _set("spec.redisConfig.additionalRedisConfg", "geo-redis-cache"), "additionalRedisConfg"),
    ("StatefulSet", "geo-redis-sentinel", _set("spec.template.spec.containers.0.readinessProbe.exec.cmd", []), "cmd"),
    ("NetworkPolicy", "geo-redis", _set("spec.policyType", ["Ingress"]), "policyType"),
    ("PodMonitor", "geo", _set("spec.podMetricsEndpoints.0.interval", "15 seconds"), "15 seconds"),
    ("PodMonitor", "geo", _set("spec.podMetricsEndpoints.0.targetPort", 8080), "targetPort"),
    ("PrometheusRule", "geo", _set("spec.groups.0.rules.0.exprs", "up"), "exprs"),
    ("PrometheusRule", "geo", _set("spec.groups.1.rules.0.for", "five minutes"), "five minutes"),
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


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_friends_grace_period_covers_the_pre_stop_sleep_and_the_drain(
    rendered: dict[str, list[dict[str, Any]]], name: str
) -> None:
    """A pod is killed terminationGracePeriodSeconds after its preStop hook starts: the sleep,
    the drain window and the last closes (the shutdown's 10 s) must fit in it."""
    spec = by_kind(rendered[name], "Deployment")["geo-friends"]["spec"]["template"]["spec"]
    command = spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    drain_s = Settings.from_env(container_env(rendered[name], "geo-friends")).ws_drain_s
    assert drain_s >= 10  # clients come back over seconds, not in one
    assert spec["terminationGracePeriodSeconds"] >= float(command[1]) + drain_s + 10


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
        "/asyncapi.json": "geo-friends",
        "/v1/me/locations": "geo-friends",
        "/v1": "geo-edge",
        "/openapi.json": "geo-edge",
        "/docs": "geo-edge",
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
    clusters = by_kind(objects, "RedisCluster")
    for deployment in ("geo-api-read", "geo-api-write", "geo-friends"):
        env = container_env(objects, deployment)
        assert {k for k in env if k.startswith("GEO_")} <= GEO_VARIABLES  # a misspelt variable is ignored silently
        settings = Settings.from_env(env)
        assert settings.pg_primary == "postgresql://geo@geo-pg-rw:5432/geo"
        assert settings.pg_replicas == ("postgresql://geo@geo-pg-ro:5432/geo",)
        assert cluster["spec"]["bootstrap"]["initdb"] == {"database": "geo", "owner": "geo"}
        assert settings.jwt_secret == INSTALLED[("geo-jwt", "GEO_JWT_SECRET")]
        check_serving(settings, host_field="ws_host" if deployment == "geo-friends" else "api_host")
        if deployment != "geo-friends":  # the business cache: the Redis that may evict
            cache = NodeAddress.parse(settings.api_cache_url)
            assert cache.host == "geo-redis" and cache.password == REDIS_PASSWORD
        for region in RegionMap.from_settings(settings).regions:
            # Every Redis is logged in to with the password of the Secret geo-redis; each
            # region's location cache (the base's for us, the eu set for eu) through its sentinels.
            assert is_sentinel_url(region.redis_url), region.name
            sentinels = _location_cache(objects, REGION_SETS[region.name])
            service = parse_sentinel_url(region.redis_url)
            assert (service.primary, service.login.password) == (sentinels["primary"], REDIS_PASSWORD)
            assert [(s.host, s.port) for s in service.sentinels] == sentinels["hosts"], region.name
            assert region.pubsub_backend == PUBSUB_BACKENDS[name]
            seeds = [NodeAddress.parse(n) for n in region.pubsub_nodes]
            if region.pubsub_backend == "ring":  # every node of the ring's StatefulSet, in order
                assert [(s.host, s.port) for s in seeds] == ring_pods(objects), region.name
            else:
                assert {s.host.removesuffix("-leader") for s in seeds} <= set(clusters)
            assert all(s.password == REDIS_PASSWORD and s.username == "default" for s in seeds), region.name
    regions = RegionMap.from_settings(Settings.from_env(container_env(objects, "geo-friends")))
    assert regions.names == (("us", "eu") if name == "regions" else ("default",))
    if name == "regions":
        assert regions.region_for(48.85, 2.35).name == "eu"  # Paris
        assert regions.region_for(40.71, -74.0).name == "us"  # New York
        hosts = ",".join(f"geo-redis-sentinel-eu-{i}.geo-redis-sentinel-eu:26379" for i in range(3))
        assert regions.get("eu").redis_url == f"redis+sentinel://default:{REDIS_PASSWORD}@{hosts}/geo-locations-eu/0"


@pytest.mark.parametrize("name", OVERLAYS)
def test_no_key_or_password_is_shipped(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    objects = rendered[name]
    # The Secrets are the installer's to make: none is rendered, and none is left dangling.
    assert by_kind(objects, "Secret") == {}
    assert {("Secret", "geo-jwt"), ("Secret", "geo-redis")} <= INSTALLER_MADE
    for config_map in by_kind(objects, "ConfigMap").values():
        for key, value in config_map.get("data", {}).items():
            assert "GEO_JWT_SECRET" not in key and "PASSWORD" not in key.upper(), key
            assert "redis://" not in value and "rediss://" not in value, f"a Redis URL without its password: {key}"
    for deployment in ("geo-api-read", "geo-api-write", "geo-friends"):
        # Migrations sign nothing and use no Redis: they get neither secret.
        migrate = container_env(objects, deployment, init=True)
        assert "GEO_JWT_SECRET" not in migrate and "REDIS_PASSWORD" not in migrate
        env = by_kind(objects, "Deployment")[deployment]["spec"]["template"]["spec"]["containers"][0]["env"]
        names = [item["name"] for item in env]
        refs = {item["name"]: item.get("valueFrom", {}).get("secretKeyRef") for item in env}
        assert refs["GEO_JWT_SECRET"] == {"name": "geo-jwt", "key": "GEO_JWT_SECRET"}
        assert refs["REDIS_PASSWORD"] == {"name": "geo-redis", "key": "password"}
        # $(REDIS_PASSWORD) is expanded only when defined earlier in the list.
        for uses in [
            n for n in names if n.startswith(("GEO_REDIS", "GEO_REGIONS", "GEO_API_CACHE", "GEO_PUBSUB_RING"))
        ]:
            assert names.index("REDIS_PASSWORD") < names.index(uses), uses
            assert "$(REDIS_PASSWORD)" in next(item["value"] for item in env if item["name"] == uses)


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_redis_requires_the_password_of_the_secret(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    objects = rendered[name]
    servers = [*by_kind(objects, "Redis").values(), *by_kind(objects, "RedisCluster").values()]
    assert len(servers) == {"example": 2, "regions": 3, "ring-etcd": 1}[name]
    for server in servers:
        assert server["spec"]["kubernetesConfig"]["redisSecret"] == {"name": "geo-redis", "key": "password"}
    # The location cache's pods take it from there too (their exporters as well), and its
    # script makes it their login; so do the ring's Redis nodes. etcd gets no Redis password.
    for statefulset, obj in by_kind(objects, "StatefulSet").items():
        for container in obj["spec"]["template"]["spec"]["containers"]:
            env = container_env(objects, statefulset, kind="StatefulSet", container_name=container["name"])
            if "redis" in container["image"]:
                assert env["REDIS_PASSWORD"] == REDIS_PASSWORD, (statefulset, container["name"])
            else:
                assert "REDIS_PASSWORD" not in env, (statefulset, container["name"])
    script = _location_cache(objects)["script"]
    assert "requirepass $REDIS_PASSWORD" in script and "masterauth $REDIS_PASSWORD" in script
    assert "sentinel auth-pass $PRIMARY_NAME $REDIS_PASSWORD" in script


@pytest.mark.parametrize(("name", "suffix"), EVERY_LOCATION_SET)
def test_the_business_cache_evicts_and_the_location_cache_does_not(
    rendered: dict[str, list[dict[str, Any]]], name: str, suffix: str
) -> None:
    objects = rendered[name]
    config = by_kind(objects, "Redis")["geo-redis"]["spec"]["redisConfig"]["additionalRedisConfig"]
    cache = by_kind(objects, "ConfigMap")[config]["data"]["redis-additional.conf"].splitlines()
    assert "maxmemory-policy allkeys-lru" in cache and "maxmemory 768mb" in cache
    locations = _location_cache(objects, suffix)
    assert 'echo "maxmemory-policy noeviction"' in locations["script"]
    # maxmemory below the memory limit: a full Redis refuses writes before it is OOM-killed.
    env = container_env(objects, f"geo-redis-locations{suffix}", kind="StatefulSet")
    pod = by_kind(objects, "StatefulSet")[f"geo-redis-locations{suffix}"]["spec"]["template"]["spec"]
    assert env["MAXMEMORY"] == "768mb" and pod["containers"][0]["resources"]["limits"]["memory"] == "1Gi"


@pytest.mark.parametrize(("name", "suffix"), EVERY_LOCATION_SET)
def test_the_location_cache_is_replicated_and_watched_by_three_sentinels(
    rendered: dict[str, list[dict[str, Any]]], name: str, suffix: str
) -> None:
    objects = rendered[name]
    sets, services = by_kind(objects, "StatefulSet"), by_kind(objects, "Service")
    redis, sentinel = sets[f"geo-redis-locations{suffix}"], sets[f"geo-redis-sentinel{suffix}"]
    assert redis["spec"]["replicas"] == 3 and sentinel["spec"]["replicas"] == 3
    for statefulset in (redis, sentinel):
        name = statefulset["metadata"]["name"]
        service = services[statefulset["spec"]["serviceName"]]["spec"]
        # Per-pod DNS names, published before readiness: a starting pod looks for its peers.
        assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True, name
        env = container_env(objects, name, kind="StatefulSet")
        pods = [f"{name}-{i}.{statefulset['spec']['serviceName']}" for i in range(statefulset["spec"]["replicas"])]
        assert env["REDIS_HOSTS" if statefulset is redis else "SENTINEL_HOSTS"].split() == pods, name
        assert env["ANNOUNCE_HOST"] == f"$(POD_NAME).{statefulset['spec']['serviceName']}", name
        spec = statefulset["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, (name, container["name"])
    assert 'echo "sentinel monitor $PRIMARY_NAME $1 $2 2"' in _location_cache(objects, suffix)["script"]  # quorum 2
    assert _location_cache(objects, suffix)["primary"] == f"geo-locations{suffix}"
    budgets = by_kind(objects, "PodDisruptionBudget")
    assert budgets[f"geo-redis-locations{suffix}"]["spec"]["maxUnavailable"] == 1
    assert budgets[f"geo-redis-sentinel{suffix}"]["spec"]["maxUnavailable"] == 1
    # Each budget and Service counts its own set's pods only: two budgets over one pod would
    # refuse every eviction of it.
    templates = {n: s["spec"]["template"]["metadata"]["labels"] for n, s in sets.items()}
    for selected in [*budgets.values(), *services.values()]:
        selector = selected["spec"]["selector"]
        match = selector.get("matchLabels", selector).items()
        matched = [n for n, labels in templates.items() if match <= labels.items()]
        assert len(matched) <= 1, (selected["metadata"]["name"], matched)


@pytest.mark.parametrize(("name", "suffix"), EVERY_LOCATION_SET)
def test_the_location_cache_exports_metrics_to_prometheus(
    rendered: dict[str, list[dict[str, Any]]], name: str, suffix: str
) -> None:
    objects = rendered[name]
    sets = by_kind(objects, "StatefulSet")
    pod = sets[f"geo-redis-locations{suffix}"]["spec"]["template"]
    redis, exporter = pod["spec"]["containers"]
    assert pod["metadata"]["annotations"]["kubectl.kubernetes.io/default-container"] == redis["name"]
    # The operator's exporter, at the same pinned version as the other Redis' sidecars.
    operator_exporters = {
        r["spec"]["redisExporter"]["image"]
        for kind in ("Redis", "RedisCluster")
        for r in by_kind(objects, kind).values()
    }
    assert [exporter["image"]] == sorted(operator_exporters) and not exporter["image"].endswith(":latest")
    assert exporter["ports"] == [{"name": "redis-exporter", "containerPort": 9121, "protocol": "TCP"}]
    # It asks its own pod's Redis, whatever that pod's role.
    env = container_env(objects, f"geo-redis-locations{suffix}", kind="StatefulSet", container_name=exporter["name"])
    assert env["REDIS_ADDR"] == f"redis://localhost:{redis['ports'][0]['containerPort']}"
    assert exporter["securityContext"] == redis["securityContext"]
    assert {"cpu", "memory"} <= set(exporter["resources"]["requests"]) and "memory" in exporter["resources"]["limits"]
    # The PodMonitor finds the exporter's port on these pods, and on no sentinel (it has none).
    monitor = by_kind(objects, "PodMonitor")["geo-redis-locations"]["spec"]
    assert _selects(monitor["selector"], pod["metadata"]["labels"])
    assert [e["port"] for e in monitor["podMetricsEndpoints"]] == ["redis-exporter"]
    assert monitor["podMetricsEndpoints"][0]["path"] == "/metrics"
    assert monitor["jobLabel"] == "app.kubernetes.io/name"
    sentinel = sets[f"geo-redis-sentinel{suffix}"]["spec"]["template"]["spec"]["containers"]
    assert "redis-exporter" not in {p["name"] for c in sentinel for p in c["ports"]}


def test_the_eu_location_cache_is_the_bases_under_eu_names(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["regions"]
    names = ("geo-redis-locations", "geo-redis-sentinel")
    kinds = ("StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy")
    for kind in kinds:
        found = by_kind(objects, kind)
        for name in names:
            eu = json.dumps(found[f"{name}-eu"])
            for base in (*names, "geo-locations"):
                eu = eu.replace(f"{base}-eu", base)
            # Anything but the names (the script's ConfigMap is the base's, shared) is the base's.
            assert json.loads(eu) == found[name], (kind, name)


def ring_pods(objects: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """The ring's Redis nodes as their StatefulSet names them: ``(<pod>.<headless Service>,
    port)`` for each replica, in order."""
    sets = by_kind(objects, "StatefulSet")
    ring = sets["geo-pubsub"]["spec"]
    port = ring["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    return [(f"geo-pubsub-{i}.{ring['serviceName']}", port) for i in range(ring["replicas"])]


def _location_cache(objects: list[dict[str, Any]], suffix: str = "") -> dict[str, Any]:
    """The sentinels' ``(host, port)`` list and primary name as the StatefulSets define them,
    and the start script the pods run, of the set named with ``suffix`` (``""``, ``"-eu"``)."""
    sets = by_kind(objects, "StatefulSet")
    sentinel, redis = sets[f"geo-redis-sentinel{suffix}"], sets[f"geo-redis-locations{suffix}"]
    env = container_env(objects, f"geo-redis-sentinel{suffix}", kind="StatefulSet")
    port = sentinel["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    volume = next(v for v in redis["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
    script = by_kind(objects, "ConfigMap")[volume["configMap"]["name"]]["data"]["redis-locations.sh"]
    hosts = [(host, port) for host in env["SENTINEL_HOSTS"].split()]
    return {"hosts": hosts, "primary": env["PRIMARY_NAME"], "script": script}


# --- Kubernetes: who may connect to whom ----------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """A pod as network policies see it: its namespace and labels."""

    namespace: str
    labels: dict[str, str]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and present and labels[key] in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def _peer_matches(peer: dict[str, Any], source: Pod, target: Pod) -> bool:
    namespaces, pods = peer.get("namespaceSelector"), peer.get("podSelector")
    if namespaces is None:  # a pod selector alone means the policy's own namespace
        return source.namespace == target.namespace and _selects(pods or {}, source.labels)
    in_namespace = _selects(namespaces, {"kubernetes.io/metadata.name": source.namespace})
    return in_namespace and (pods is None or _selects(pods, source.labels))


def allowed(policies: list[dict[str, Any]], source: Pod, target: Pod, port: int) -> bool:
    """Whether NetworkPolicies let ``source`` open a TCP connection to ``target`` on ``port``."""
    isolating = [
        p
        for p in policies
        if p["metadata"].get("namespace") == target.namespace
        and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        and _selects(p["spec"]["podSelector"], target.labels)
    ]
    if not isolating:
        return True
    for policy in isolating:
        for rule in policy["spec"].get("ingress", []):
            if "ports" in rule and not any(
                p["port"] == port and p.get("protocol", "TCP") == "TCP" for p in rule["ports"]
            ):
                continue
            if "from" not in rule or any(_peer_matches(peer, source, target) for peer in rule["from"]):
                return True
    return False


def _pods(objects: list[dict[str, Any]], namespace: str) -> dict[str, Pod]:
    """geo's pods (from the Deployments), the operators' (with the labels they give them), and
    pods geo does not know: in its namespace, in the controllers' and in no one's."""
    pods = {
        name: Pod(namespace, d["spec"]["template"]["metadata"]["labels"])
        for kind in ("Deployment", "StatefulSet")
        for name, d in by_kind(objects, kind).items()
    }
    for name in by_kind(objects, "Redis"):
        pods[name] = Pod(namespace, {"app": name, "redis_setup_type": "standalone", "role": "standalone"})
    for name in by_kind(objects, "RedisCluster"):
        for role in ("leader", "follower"):
            labels = {"app": f"{name}-{role}", "redis_setup_type": "cluster", "role": role}
            pods[f"{name}-{role}"] = Pod(namespace, labels)
    pods["geo-pg"] = Pod(namespace, {"cnpg.io/cluster": "geo-pg", "cnpg.io/instanceRole": "primary"})
    pods["stranger"] = Pod(namespace, {"app": "debug-shell"})
    pods["ingress-nginx"] = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    pods["prometheus"] = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
    pods["elsewhere"] = Pod("default", {"app.kubernetes.io/name": "geo-api"})  # geo's labels, not geo's namespace
    pods["cnpg-operator"] = Pod("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"})
    pods["redis-operator"] = Pod("ot-operators", {"name": "redis-operator"})
    return pods


@pytest.mark.parametrize("name", OVERLAYS)
def test_only_geo_pods_reach_redis_and_postgresql(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    objects = rendered[name]
    policies = list(by_kind(objects, "NetworkPolicy").values())
    pods = _pods(objects, f"geo-{name}")
    clients = {"geo-api-read", "geo-api-write", "geo-friends"}
    location_sets = [{f"geo-redis-locations{s}", f"geo-redis-sentinel{s}"} for s in LOCATION_SETS[name]]
    data = [n for n in pods if n.startswith("geo-redis") and not any(n in s for s in location_sets)]
    assert len(data) == {"example": 3, "regions": 5, "ring-etcd": 1}[name]
    cluster_nodes = [n for n in data if n.endswith(("-leader", "-follower"))]
    for target in data:
        for source, pod in pods.items():
            peers = source in cluster_nodes and target in cluster_nodes
            expected = source in clients or source == "redis-operator" or peers
            assert allowed(policies, pod, pods[target], 6379) == expected, (source, target)
        # Metrics of the exporters for Prometheus only; the cluster bus for the cluster's nodes.
        assert allowed(policies, pods["prometheus"], pods[target], 9121)
        assert not allowed(policies, pods["geo-edge"], pods[target], 9121)
        for source in ("geo-friends", "stranger", "prometheus"):
            assert not allowed(policies, pods[source], pods[target], 16379), (source, target)
    # A cluster's leaders and followers replicate (6379) and gossip (16379) with each other.
    for a in cluster_nodes:
        for b in cluster_nodes:
            assert allowed(policies, pods[a], pods[b], 16379) and allowed(policies, pods[a], pods[b], 6379), (a, b)
    if cluster_nodes:
        assert not allowed(policies, pods["geo-redis"], pods["geo-redis-cluster-leader"], 16379)
    for source, pod in pods.items():
        expected = source in clients or source in ("geo-pg", "cnpg-operator")
        assert allowed(policies, pod, pods["geo-pg"], 5432) == expected, source
    assert allowed(policies, pods["cnpg-operator"], pods["geo-pg"], 8000)
    assert not allowed(policies, pods["geo-friends"], pods["geo-pg"], 8000)
    # Each location cache: geo's clients and the set itself (replication, monitoring, votes,
    # a starting pod asking where the primary is), not another region's set; Redis on 6379,
    # the sentinels on 26379, the Redis pods' exporters on 9121 for Prometheus only.
    for suffix, location_set in zip(LOCATION_SETS[name], location_sets, strict=True):
        redis, sentinel = f"geo-redis-locations{suffix}", f"geo-redis-sentinel{suffix}"
        for target, port in ((redis, 6379), (sentinel, 26379)):
            for source, pod in pods.items():
                expected = source in clients or source in location_set
                assert allowed(policies, pod, pods[target], port) == expected, (source, target)
            for other in (6379, 26379, 16379):
                if other != port:
                    assert not allowed(policies, pods["geo-friends"], pods[target], other), (target, other)
        for source, pod in pods.items():
            assert allowed(policies, pod, pods[redis], 9121) == (source == "prometheus"), (source, redis)
            assert not allowed(policies, pod, pods[sentinel], 9121), (source, sentinel)
        for target in data:  # the operator's Redis: not the sentinels' to watch
            assert not allowed(policies, pods[sentinel], pods[target], 6379), target


@pytest.mark.parametrize("name", OVERLAYS)
def test_only_the_ingress_and_the_edge_reach_the_services(rendered: dict[str, list[dict[str, Any]]], name: str) -> None:
    objects = rendered[name]
    policies = list(by_kind(objects, "NetworkPolicy").values())
    pods = _pods(objects, f"geo-{name}")
    services = by_kind(objects, "Service")
    # The pods behind the Services the Ingresses send to: what the controller may reach.
    backends = {
        path["backend"]["service"]["name"]
        for ingress in by_kind(objects, "Ingress").values()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    routed = {
        pod
        for service in backends
        for pod, p in pods.items()
        if p.namespace == f"geo-{name}" and _selects({"matchLabels": services[service]["spec"]["selector"]}, p.labels)
    }
    assert routed >= {"geo-edge", "geo-friends"}
    ports = {"geo-api-read": 8080, "geo-api-write": 8080, "geo-friends": 8081, "geo-edge": 8080}
    for target, port in ports.items():
        assert allowed(policies, pods["ingress-nginx"], pods[target], port) == (target in routed), target
        assert allowed(policies, pods["geo-edge"], pods[target], port) == target.startswith("geo-api"), target
        for source in ("stranger", "elsewhere", "geo-friends", "geo-api-read"):
            assert not allowed(policies, pods[source], pods[target], port), (source, target)
        # Prometheus scrapes the pods (the prometheus.io annotations); the edge is not scraped.
        assert allowed(policies, pods["prometheus"], pods[target], port) == (target != "geo-edge"), target
    # Nothing else of the namespace is open: the default is to refuse.
    default = by_kind(objects, "NetworkPolicy")["geo-default-deny-ingress"]["spec"]
    assert default == {"podSelector": {}, "policyTypes": ["Ingress"]}


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


#: What the tests set for the variables compose requires (``${NAME:?message}``).
COMPOSE_SECRETS = {
    "GEO_JWT_SECRET": new_jwt_secret(),
    "GEO_REDIS_PASSWORD": secrets.token_hex(32),
    "GEO_PG_PASSWORD": secrets.token_hex(24),
    "GEO_REPLICATION_PASSWORD": secrets.token_hex(24),
}


def _interpolate(value: str, env: dict[str, str]) -> str:
    """``${NAME:-default}`` and ``${NAME:?message}`` as compose substitutes them with ``env`` set."""
    value = re.sub(r"\$\{([A-Z_]+):-([^}]*)\}", lambda m: env.get(m[1], m[2]), value)
    return re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", lambda m: env[m[1]], value)


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
        env = {k: _interpolate(str(v), COMPOSE_SECRETS) for k, v in services[name]["environment"].items()}
        settings = Settings.from_env(env)
        assert settings.pg_primary.split("@")[1].split(":")[0] in services
        redis = NodeAddress.parse(settings.redis_url)
        assert redis.host in services and redis.password == COMPOSE_SECRETS["GEO_REDIS_PASSWORD"]
        check_jwt_secret(settings)
        assert services[name]["read_only"] is True and services[name]["cap_drop"] == ["ALL"]
    conf = (DOCKER / "nginx.conf").read_text()
    for host, port in re.findall(r"server ([\w-]+):(\d+)", conf):
        assert host in services and port in ("8080", "8081")
    for volume in [v for s in services.values() for v in s.get("volumes", [])]:
        source = volume.split(":")[0]
        if source.startswith("./"):
            assert (DOCKER / source).is_file(), source


def test_compose_ships_no_key_or_password() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    # Every secret is required, none has a default; compose refuses to start without them.
    for variable in COMPOSE_SECRETS:
        assert re.search(rf"\$\{{{variable}:\?[^}}]+\}}", text), variable
        assert not re.search(rf"\$\{{{variable}:?-", text), variable
    redis = compose()["services"]["redis"]
    assert "requirepass" in " ".join(redis["command"]) and "REDISCLI_AUTH" in redis["environment"]
    assert not re.search(r"local-only|change-me|placeholder", text, re.IGNORECASE)


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
