"""Shared by the deployment-file tests: the rendered kustomizations."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.k8s_render import kustomizations, render


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every kustomization, rendered once: base, example, regions."""
    return {path.name: render(path) for path in kustomizations()}


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}
