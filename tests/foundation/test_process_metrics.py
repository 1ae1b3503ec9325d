"""The process's memory limit, read from a cgroup tree like the kernel's (written to tmp_path)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from geo_common.process_metrics import memory_limit_bytes, register_process_metrics


def tree(tmp_path: Path, membership: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(membership)
    return root, proc


def test_cgroup_v2_limit_of_the_process_cgroup(tmp_path: Path) -> None:
    root, proc = tree(tmp_path, "0::/kubepods/pod1/abc\n", {"kubepods/pod1/abc/memory.max": "1610612736\n"})
    assert memory_limit_bytes(root=root, proc_cgroup=proc) == 1_610_612_736


def test_cgroup_v2_without_a_limit(tmp_path: Path) -> None:
    root, proc = tree(tmp_path, "0::/\n", {"memory.max": "max\n"})
    assert memory_limit_bytes(root=root, proc_cgroup=proc) is None


def test_cgroup_v1_in_its_own_namespace(tmp_path: Path) -> None:
    # The membership names a path of the host's hierarchy; the container sees its cgroup at the root.
    files = {"memory/memory.limit_in_bytes": "536870912\n"}
    root, proc = tree(tmp_path, "4:memory:/docker/0123\n0::/\n", files)
    assert memory_limit_bytes(root=root, proc_cgroup=proc) == 536_870_912


def test_cgroup_v1_unlimited_and_nothing_readable(tmp_path: Path) -> None:
    root, proc = tree(tmp_path, "4:memory:/\n", {"memory/memory.limit_in_bytes": "9223372036854771712\n"})
    assert memory_limit_bytes(root=root, proc_cgroup=proc) is None
    assert memory_limit_bytes(root=tmp_path / "none", proc_cgroup=tmp_path / "none") is None


def test_registered_in_an_app_registry_only() -> None:
    registry = CollectorRegistry()
    register_process_metrics(registry)
    text = generate_latest(registry).decode()
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "python_gc_collections_total"):
        assert f"\n{name}" in text, name
    assert "# TYPE geo_process_memory_limit_bytes gauge" in text
