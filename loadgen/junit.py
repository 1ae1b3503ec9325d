"""``--junit FILE``: the run's verdict as JUnit XML, the test report every CI system shows.

One ``<testsuite>`` (in a ``<testsuites>`` root, the shape Jenkins, GitLab, GitHub and Azure
readers all take) with a ``<testcase>`` for each ``--fail-if`` rule and one for the run's own
checks (a part that succeeded at nothing, errors above ``--max-errors``, a worker that
crashed): a failed one holds a ``<failure>`` whose message says why
(:func:`loadgen.outcome.checks`, the same words as the HTML report's banner). The warnings
that the generator may have been the bottleneck go to ``<system-out>``, where a CI page shows
them beside the cases without failing any.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loadgen.outcome import RUN_CHECK, checks
from loadgen.thresholds import Verdict

SUITE = "geo-loadgen"


def junit_xml(summary: Mapping[str, Any], verdicts: list[Verdict]) -> bytes:
    """The JUnit XML document of a finished run (UTF-8, with its declaration).

    Args:
        summary: the run's summary (:func:`loadgen.report.build_summary`, with the runner's
            ``failures`` and ``worker_failures``).
        verdicts: every rule the run was held to.
    """
    cases = checks(summary, verdicts)
    failures = sum(1 for c in cases if not c.passed)
    name = f"{SUITE} {summary['scenario']}"
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0", "skipped": "0"}
    elapsed = f"{float(summary.get('wall_s', 0.0)):.3f}"
    root = ET.Element("testsuites", {"name": SUITE, **counts, "time": elapsed})
    run: Mapping[str, Any] = summary.get("run", {})
    suite = ET.SubElement(root, "testsuite", {"name": name, **counts, "time": elapsed})
    if run.get("started_utc"):
        suite.set("timestamp", str(run["started_utc"]).removesuffix("Z"))
    if run.get("host"):
        suite.set("hostname", str(run["host"]))
    properties = ET.SubElement(suite, "properties")
    for key, value in _properties(summary):
        ET.SubElement(properties, "property", {"name": key, "value": value})
    for case in cases:
        element = ET.SubElement(suite, "testcase", {"classname": name, "name": case.name, "time": "0"})
        if not case.passed:  # before system-out: the order JUnit's schema gives
            first = case.message.splitlines()[0] if case.message else "failed"
            kind = "run" if case.name == RUN_CHECK else "threshold"
            ET.SubElement(element, "failure", {"message": first, "type": kind}).text = case.message
        if case.actual:
            ET.SubElement(element, "system-out").text = f"measured: {case.actual}"
    warnings = summary.get("warnings", ())
    if warnings:
        ET.SubElement(suite, "system-out").text = "".join(f"warning: {w}\n" for w in warnings)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


def _properties(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What was run, for the suite's ``<properties>``: the targets, the rates and the version."""
    options: Mapping[str, Any] = summary.get("options", {})
    nested = [(f"{k}.", options[k]) for k in ("search", "friends") if isinstance(options.get(k), Mapping)]
    out = [("scenario", str(summary["scenario"]))]
    for prefix, opts in [("", options), *nested]:
        out += [(f"{prefix}{k}", str(opts[k])) for k in ("url", "api", "ws", "rate", "users") if k in opts]
    for key in ("offered_rate", "achieved_rate"):
        if isinstance(summary.get(key), int | float):
            out.append((key, f"{summary[key]:.6g}"))
    run: Mapping[str, Any] = summary.get("run", {})
    out += [(k, str(run[k])) for k in ("version", "started_utc") if k in run]
    return out


def write_junit(path: Path, summary: Mapping[str, Any], verdicts: list[Verdict]) -> Path:
    """Write :func:`junit_xml` to ``path`` (its folder made when missing); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_xml(summary, verdicts))
    return path


def file_problem(path: Path) -> str | None:
    """Why a report could not be written to ``path`` after the run, or None when it can.

    Checked before a run starts, so that a mistyped path costs one line, not the run's figures.
    """
    if path.is_dir():
        return "is a folder; give a file name"
    if path.exists():
        return None if os.access(path, os.W_OK) else "is not writable"
    folder = path.parent.absolute()
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    return None if os.access(folder, os.W_OK | os.X_OK) else f"{folder} is not writable"
