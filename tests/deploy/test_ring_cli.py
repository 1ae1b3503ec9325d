"""``geo-stack ring add | remove | status`` against a real etcd of the test's own."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.stack.cli import main
from deploy.stack.etcd import EtcdMember
from tests.pubsub.conftest import throwaway_etcd  # noqa: F401 - the fixture

A, B = "redis://127.0.0.1:16001/0", "redis://geo:s3cret@127.0.0.1:16002/0"


def ring(
    monkeypatch: pytest.MonkeyPatch, member: EtcdMember | None, tmp_path: Path, *args: str
) -> tuple[int, str, str]:
    """``geo-stack ring ...`` in this process: (exit code, stdout, stderr)."""
    for name in [k for k in os.environ if k.startswith("GEO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GEO_ENV_FILE", str(tmp_path / "no-env"))
    monkeypatch.setenv("GEO_REDIS_NAMESPACE", "geo-cli-test")
    if member is not None:
        monkeypatch.setenv("GEO_ETCD_URL", member.url)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--dir", str(tmp_path / "stack"), "ring", *args])
        except SystemExit as exc:  # argparse's refusals
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_add_remove_and_status(
    throwaway_etcd: EtcdMember,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def run(*args: str) -> tuple[int, str, str]:
        return ring(monkeypatch, throwaway_etcd, tmp_path, *args)

    code, empty, _ = run("status")
    assert code == 0 and "members  none" in empty and "leader   none" in empty
    code, first, _ = run("add", A)
    assert code == 0 and "first node" in first
    code, second, _ = run("add", B)
    assert code == 0 and "s3cret" not in second  # the password is never printed
    code, status, _ = run("status")
    lines = status.splitlines()
    members = next(line for line in lines if line.startswith("members"))
    live = next(line for line in lines if line.startswith("live"))
    assert "version 2" in members and "127.0.0.1:16001" in members and "127.0.0.1:16002" in members
    assert "version 2" in live and "s3cret" not in status
    code, _, _ = run("remove", A)
    assert code == 0
    _, status, _ = run("status")
    live = next(line for line in status.splitlines() if line.startswith("live"))
    assert "version 3" in live and "16001" not in live and "16002" in live
    # The last node stays: a ring is never empty.
    code, _, err = run("remove", B)
    assert code == 1 and "last node" in err


@pytest.mark.parametrize("bad", ["10.0.0.1:6379", "http://h:1", "redis://h:port", "redis://"])
def test_a_malformed_url_is_refused_with_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    code, _, err = ring(monkeypatch, None, tmp_path, "add", bad)
    assert code == 2 and "argument URL" in err and "redis://" in err


def test_the_command_refuses_a_malformed_url_without_a_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}
    done = subprocess.run(
        [sys.executable, "-m", "deploy.stack.cli", "--dir", str(tmp_path), "ring", "add", "redis://geo:pw@h:port"],
        env=env | {"GEO_ENV_FILE": str(tmp_path / "no-env")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert done.stderr.startswith("usage: geo-stack ring add") and "argument URL" in done.stderr
    assert "Traceback" not in done.stderr and "pw" not in done.stderr.replace("usage", "")


def test_no_etcd_configured_or_reachable_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = ring(monkeypatch, None, tmp_path, "status")
    assert code == 1 and "GEO_ETCD_URL is not set" in err
    code, _, err = ring(monkeypatch, EtcdMember(tmp_path, 1, 2), tmp_path, "status")  # nothing on port 1
    assert code == 1 and "did not answer" in err
