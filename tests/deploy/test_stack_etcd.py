"""``geo-stack up`` starts etcd when the ring backend is configured, and only then."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy.stack import etcd
from deploy.stack.layout import StackState, assign_ports
from deploy.stack.stack import Stack
from tests.ports import free_block


def test_etcd_comes_with_the_ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("GEO_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GEO_ENV_FILE", str(tmp_path / "no-env"))
    stack = Stack(tmp_path / "stack")
    state = StackState(port_base=free_block(8))
    assign_ports(state)  # the databases' ports (nothing of them starts here)
    stack.up_etcd(state)  # the redis backend: no etcd
    assert "etcd_0" not in state.ports and "GEO_ETCD_URL" not in Stack.env_vars(state)
    monkeypatch.setenv("GEO_PUBSUB_BACKEND", "ring")
    try:
        stack.up_etcd(state)
        url = Stack.env_vars(state)["GEO_ETCD_URL"]
        member = etcd.EtcdMember(tmp_path / "stack" / "etcd", state.ports["etcd_0"], state.ports["etcd_1"])
        assert url == member.url == f"http://127.0.0.1:{state.ports['etcd_0']}"
        assert etcd.healthy(member) and (member.directory / "data").is_dir()  # its data in the stack folder
        rows = {row.name: row for row in stack.status()}
        assert rows["etcd"].pid == member.pid() and rows["etcd"].address == f"127.0.0.1:{member.client_port}"
        stack.up_etcd(state)  # idempotent: the same member keeps running
        assert rows["etcd"].pid == member.pid()
    finally:
        stopped = stack.down()
    assert "etcd" in stopped and not member.running()
