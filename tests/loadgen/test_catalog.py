"""The catalog declares every name the scenarios record, and judges a run that did nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import loadgen
from loadgen.catalog import FRIENDS, GENERATOR, SEARCH, STRANGERS, Part, catalog_for, no_success_reasons

SOURCE = Path(loadgen.__file__).parent
#: The modules that record into each part's recorder (sockets.py: both scenarios' clients).
PRODUCERS = {
    "search.py": (SEARCH,),
    "friends.py": (FRIENDS,),
    "ledger.py": (FRIENDS,),
    "background.py": (FRIENDS,),
    "inbox.py": (FRIENDS,),
    "uploads.py": (FRIENDS,),
    "sockets.py": (FRIENDS, STRANGERS),
    "strangers.py": (STRANGERS,),
    "monitor.py": (GENERATOR,),
    "runner.py": (GENERATOR,),
}


def recorded_names(module: str) -> list[tuple[str, str, bool]]:
    """(method, name, whole) of every ``…recorder.count/record("name")`` in a module: the name's
    literal text, or for an f-string the literal text before its first field (``whole`` False)."""
    found = []
    for node in ast.walk(ast.parse((SOURCE / module).read_text())):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("count", "record")
            and ast.unparse(node.func.value).endswith("recorder")
            and node.args
        ):
            continue
        pending = [node.args[0]]
        while pending:
            arg = pending.pop()
            if isinstance(arg, ast.IfExp):
                pending += [arg.body, arg.orelse]
            elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.func.attr, arg.value, True))
            elif isinstance(arg, ast.JoinedStr):
                head = arg.values[0]
                stem = head.value if isinstance(head, ast.Constant) and isinstance(head.value, str) else ""
                found.append((node.func.attr, stem, False))
            # A variable (search.py's ``kind`` and ``failed``): the runs in test_run_gates check those.
    return found


@pytest.mark.parametrize(("module", "part"), [(m, p) for m, parts in sorted(PRODUCERS.items()) for p in parts])
def test_every_name_a_scenario_records_is_declared(module: str, part: Part) -> None:
    names = recorded_names(module)
    assert names, f"nothing recorded in {module}? the scan no longer finds the calls"
    for method, name, whole in names:
        if method == "record":
            assert whole and name in part.metrics, f"{module}: histogram {name!r} is not in catalog.{part.name}"
        elif whole:
            assert part.knows_counter(name), f"{module}: counter {name!r} is not in catalog.{part.name}"
        else:
            declared = any(f.stem == name for f in part.families) or any(c.startswith(name) for c in part.counters)
            assert name and declared, f"{module}: counters {name}<...> are not a family of catalog.{part.name}"


def test_mixed_reports_the_search_part_under_its_prefix_and_friends_as_main() -> None:
    mixed = catalog_for("mixed")
    assert mixed.main is FRIENDS
    assert "search.latency" in mixed.metrics() and "latency" in mixed.metrics()
    assert mixed.counter_part("search.status_404") is not None and mixed.counter_part("status_404") is None
    assert catalog_for("mixed", friends=False).main is None
    with pytest.raises(ValueError, match="unknown scenario"):
        catalog_for("teleport")


@pytest.mark.parametrize(
    ("scenario", "counters", "counts", "reasons"),
    [
        (
            "search",
            {"operations": 300, "errors": 300, "status_404": 300, "status_4xx": 300, "generator_cpu_ms": 9},
            {"latency": 300},
            ["search: no search answered 2xx of 300 sent (status_404=300)"],
        ),
        (
            "search",
            {"operations": 5, "errors": 5, "timeout": 2, "connect_error": 3},
            {},
            ["search: no search answered 2xx of 5 sent (connect_error=3, timeout=2)"],
        ),
        ("search", {"operations": 0}, {}, ["search: no search answered 2xx of 0 sent"]),
        ("search", {"operations": 10, "errors": 9, "status_500": 9, "status_204": 1}, {}, []),
        (
            "friends",
            {"errors": 40, "connect_error_InvalidStatus": 40},
            {"loop_lag": 100},
            ["friends: no client connected (connect_error_InvalidStatus=40)"],
        ),
        (
            "friends",
            {"operations": 0, "updates_sent": 12},
            {"connect": 4},
            ["friends: no delivery of 0 expected"],
        ),
        ("friends", {"operations": 9, "delivered": 1}, {"connect": 4}, []),
        (
            "mixed",
            {"operations": 9, "delivered": 9, "search.operations": 10, "search.status_503": 10},
            {"connect": 2},
            ["search: no search answered 2xx of 10 sent (search.status_503=10)"],
        ),
    ],
)
def test_a_part_that_succeeded_at_nothing_is_named_with_its_failures(
    scenario: str, counters: dict[str, int], counts: dict[str, int], reasons: list[str]
) -> None:
    assert no_success_reasons(catalog_for(scenario), counters, counts) == reasons


def test_the_generator_part_is_never_judged() -> None:
    assert GENERATOR.successes is None
    assert [p.name for p in catalog_for("search").judged()] == ["search"]
    assert isinstance(SEARCH.under("x."), Part) and SEARCH.under("x.").own({"x.a": 1, "b": 2}) == {"a": 1}
