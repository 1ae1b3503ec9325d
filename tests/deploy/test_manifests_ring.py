"""The ring-etcd overlay: geo's pub/sub on the ring backend, its nodes kept in etcd.

What the overlay adds to the base (docs/deploy.md, "The ring pub/sub backend and etcd"): the
ring's Redis nodes, a three-member etcd, and geo-friends pointed at both; the rendering and
schema checks common to every overlay are in test_manifests.py.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from geo_common.regions import RegionMap
from geo_common.settings import Settings
from pubsub.address import NodeAddress
from tests.deploy.conftest import by_kind
from tests.deploy.test_manifests import REDIS_PASSWORD, _pods, allowed, container_env, ring_pods

OVERLAY = "ring-etcd"
#: Debian's etcd-server (what geo-stack runs locally), and the first etcd whose /health takes
#: ``serializable=true`` (the liveness probe's).
DEBIAN_ETCD = (3, 4, 23)
SERIALIZABLE_HEALTH = (3, 5, 3)


def _etcd(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    statefulset = by_kind(objects, "StatefulSet")["geo-etcd"]
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    return statefulset, container, container_env(objects, "geo-etcd", kind="StatefulSet")


def _port(container: dict[str, Any], name: str) -> int:
    port: int = next(p["containerPort"] for p in container["ports"] if p["name"] == name)
    return port


def test_etcd_runs_three_members_on_volumes_with_probes_and_a_budget(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered[OVERLAY]
    statefulset, container, env = _etcd(objects)
    spec = statefulset["spec"]
    assert spec["replicas"] == 3
    # The image is etcd's own, pinned to a release at least as new as Debian's.
    image, _, tag = container["image"].rpartition(":")
    assert image in ("quay.io/coreos/etcd", "registry.k8s.io/etcd")
    version = tuple(int(n) for n in re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:-\d+)?", tag).groups())  # type: ignore[union-attr]
    assert version >= DEBIAN_ETCD and version >= SERIALIZABLE_HEALTH
    # Each member is its pod, reached by its stable name; the first cluster lists all of them.
    peers = f"http://$(POD_NAME).{spec['serviceName']}:{_port(container, 'peer')}"
    assert env["ETCD_NAME"] == "$(POD_NAME)" and env["ETCD_INITIAL_ADVERTISE_PEER_URLS"] == peers
    members = [f"geo-etcd-{i}=http://geo-etcd-{i}.{spec['serviceName']}:2380" for i in range(spec["replicas"])]
    assert env["ETCD_INITIAL_CLUSTER"].split(",") == members
    assert env["ETCD_INITIAL_CLUSTER_STATE"] == "new"
    headless = by_kind(objects, "Service")[spec["serviceName"]]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    # Its data on a claim of its own, under the mount.
    [claim] = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"] and claim["spec"]["resources"]["requests"]["storage"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"])
    assert env["ETCD_DATA_DIR"].startswith(mount["mountPath"] + "/")
    # Probes on the health listener: live without a quorum, ready with one.
    health = _port(container, container["livenessProbe"]["httpGet"]["port"])
    assert urlsplit(env["ETCD_LISTEN_METRICS_URLS"]).port == health
    assert container["livenessProbe"]["httpGet"]["path"] == "/health?serializable=true"
    assert container["startupProbe"]["httpGet"]["path"] == "/health?serializable=true"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["port"] == container["livenessProbe"]["httpGet"]["port"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and "memory" in container["resources"]["limits"]
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # One member at a time may be drained: the other two keep the quorum.
    budget = by_kind(objects, "PodDisruptionBudget")["geo-etcd"]["spec"]
    assert budget["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    assert spec["replicas"] - budget["maxUnavailable"] > spec["replicas"] // 2


def test_the_ring_nodes_are_a_statefulset_requiring_the_password(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered[OVERLAY]
    ring = by_kind(objects, "StatefulSet")["geo-pubsub"]["spec"]
    assert ring["replicas"] == 3
    headless = by_kind(objects, "Service")[ring["serviceName"]]["spec"]
    assert headless["clusterIP"] == "None"
    [redis] = ring["template"]["spec"]["containers"]
    script = redis["command"][-1]
    assert "requirepass %s" in script and '"$REDIS_PASSWORD"' in script and "exec redis-server" in script
    assert "$REDIS_PASSWORD" not in " ".join(redis["command"][:-1])  # not on redis-server's command line
    assert redis["readinessProbe"]["exec"] and redis["livenessProbe"]["tcpSocket"]["port"] == "redis"
    assert redis["securityContext"]["readOnlyRootFilesystem"] is True
    budget = by_kind(objects, "PodDisruptionBudget")["geo-pubsub"]["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"].items() <= ring["template"]["metadata"]["labels"].items()
    # The Redis Cluster is gone, and nothing names it.
    assert by_kind(objects, "RedisCluster") == {}
    for deployment in ("geo-api-read", "geo-api-write", "geo-friends"):
        assert "GEO_REDIS_CLUSTER" not in container_env(objects, deployment)


def test_geo_friends_follows_the_ring_in_etcd(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered[OVERLAY]
    settings = Settings.from_env(container_env(objects, "geo-friends"))
    assert settings.pubsub_backend == "ring"
    # GEO_ETCD_URL is etcd's client Service, which sends to the members' client port.
    etcd_url = urlsplit(settings.etcd_url)
    assert etcd_url.scheme == "http" and etcd_url.username is None
    service = by_kind(objects, "Service")[etcd_url.hostname or ""]
    assert service["spec"].get("clusterIP") != "None"
    statefulset, container, env = _etcd(objects)
    assert service["spec"]["selector"].items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
    [port] = [p for p in service["spec"]["ports"] if p["port"] == etcd_url.port]
    assert _port(container, port["targetPort"]) == urlsplit(env["ETCD_LISTEN_CLIENT_URLS"]).port
    # The seed ring is exactly the ring StatefulSet's pods, logged in to with the password.
    nodes = [NodeAddress.parse(url) for url in settings.pubsub_ring]
    assert [(n.host, n.port) for n in nodes] == ring_pods(objects)
    assert all(n.password == REDIS_PASSWORD and n.username == "default" for n in nodes)
    assert RegionMap.from_settings(settings).default.pubsub_nodes == settings.pubsub_ring
    # The HTTP API publishes on the same ring, and follows it in etcd too.
    for deployment in ("geo-api-read", "geo-api-write"):
        api = Settings.from_env(container_env(objects, deployment))
        assert (api.pubsub_backend, api.pubsub_ring, api.etcd_url) == ("ring", settings.pubsub_ring, settings.etcd_url)


def test_only_geo_reaches_the_ring_and_etcd(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objects = rendered[OVERLAY]
    policies = list(by_kind(objects, "NetworkPolicy").values())
    pods = _pods(objects, f"geo-{OVERLAY}")
    assert {"geo-pubsub", "geo-etcd", "geo-friends", "stranger", "prometheus"} <= set(pods)
    publishers = {"geo-api-read", "geo-api-write", "geo-friends"}
    for source, pod in pods.items():
        assert allowed(policies, pod, pods["geo-pubsub"], 6379) == (source in publishers), source
        assert allowed(policies, pod, pods["geo-etcd"], 2379) == (source in publishers | {"geo-etcd"}), source
        assert allowed(policies, pod, pods["geo-etcd"], 2380) == (source == "geo-etcd"), source
        for target, port in (("geo-pubsub", 16379), ("geo-etcd", 2381), ("geo-etcd", 6379)):
            assert not allowed(policies, pod, pods[target], port), (source, target, port)
