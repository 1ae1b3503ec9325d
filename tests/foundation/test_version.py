"""``--version`` on every installed program: the distribution's version, and nothing started."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from geo_common.version import UNKNOWN, add_version_argument, version

#: The console scripts of pyproject.toml's [project.scripts].
PROGRAMS = ("geo-stack", "geo-api", "geo-friends", "geo-loadgen", "geo-token")


@pytest.mark.parametrize("program", PROGRAMS)
def test_installed_program_prints_its_version(program: str, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / program  # the environment's bin folder, e.g. .venv/bin
    assert script.is_file(), f"{program} is not installed next to {sys.executable}"
    # A malformed setting and an absent stack folder: a program that read its settings or
    # touched the stack would exit 2 or leave something behind in tmp_path.
    env = {
        "PATH": "",
        "GEO_ENV_FILE": "/nonexistent",
        "GEO_JWT_TTL_S": "soon",
        "GEO_STACK_DIR": str(tmp_path / "stack"),
        "GEO_PG_PRIMARY": "postgresql://postgres@127.0.0.1:9/geo",
    }
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"{program} {metadata.version('geo-nearby')}\n"
    assert list(tmp_path.iterdir()) == []


def test_missing_metadata_reads_as_unknown(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert version("geo-nearby-not-installed") == UNKNOWN

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    parser = argparse.ArgumentParser(prog="geo-example")
    add_version_argument(parser)
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"geo-example {UNKNOWN}\n"
