"""Every block of the guides says what the tests do with it, and the markers' tools work.

A shell example with no role, or a skipped one without a reason, fails here: new examples
cannot escape the run in test_examples.py. The rest holds the marker parser, the output
comparison and the transcript reader to fixed known inputs, including the ones they must
refuse.
"""

from __future__ import annotations

import pytest

from tests.docs.expect import json_mismatch, output_mismatch, shape_mismatch, text_matches
from tests.docs.guides import GUIDES, blocks_of
from tests.docs.markdown import check_roles, fenced_blocks, file_with_overrides, read_run, with_overrides
from tests.docs.transcript import line_mismatch, screen_line


@pytest.mark.parametrize("path", GUIDES)
def test_every_block_of_the_guide_has_a_role(path: str) -> None:
    blocks = blocks_of(path)
    assert blocks, f"{path} has no fenced blocks: is it still a guide of GUIDES?"
    assert check_roles(blocks) == []


@pytest.mark.parametrize("path", [g for g in GUIDES if g != "README.md"])  # README's one example is make
def test_the_guide_runs_examples(path: str) -> None:
    assert any(b.role == "doc-run" for b in blocks_of(path))


def roles_problems(markdown: str) -> list[str]:
    return check_roles(fenced_blocks(markdown, "guide.md"))


def test_a_shell_example_without_a_role_is_refused() -> None:
    problems = roles_problems("Run:\n\n```sh\ngeo-api --role read\n```\n")
    assert len(problems) == 1 and problems[0].startswith("guide.md:3: ")


def test_a_block_without_a_language_is_refused() -> None:
    assert roles_problems("```\ncurl -s http://127.0.0.1:8080/healthz\n```\n") != []


def test_a_skipped_example_needs_a_reason() -> None:
    assert roles_problems("```sh doc-skip: needs nginx on :8000\nmake run-full\n```\n") == []
    assert roles_problems("```sh doc-skip:\nmake run-full\n```\n") != []


def test_output_must_follow_a_run_and_overrides_must_name_options_of_the_block() -> None:
    assert roles_problems("```json doc-output\n{}\n```\n") != []
    assert roles_problems("```sh doc-run --duration=3s\ngeo-loadgen search --duration 30s\n```\n") == []
    assert roles_problems("```sh doc-run --rate=3\ngeo-loadgen search --duration 30s\n```\n") != []
    assert roles_problems("```sh doc-run twice\ntrue\n```\n") != []
    assert roles_problems("```toml doc-file=s.toml rate=1\n[search]\nrate = 100\n```\n") == []
    assert roles_problems("```toml doc-file=s.toml tick=1\n[search]\nrate = 100\n```\n") != []


def test_fences_longer_than_three_and_blocks_inside_them() -> None:
    blocks = fenced_blocks("````md doc-skip: shows a fence\n```sh\nls\n```\n````\n\n~~~sh doc-run\ntrue\n~~~\n", "g")
    assert [(b.line, b.role) for b in blocks] == [(1, "doc-skip"), (7, "doc-run")]
    assert blocks[0].text == "```sh\nls\n```\n" and blocks[0].reason == "shows a fence"


def test_a_run_reads_its_flags_and_its_output() -> None:
    blocks = fenced_blocks("```sh doc-run exit=2 --rate=5\nx --rate 1\n```\n```text doc-output\nok\n```\n", "g")
    run = read_run(blocks, 0)
    assert run.exit_status == 2 and run.overrides == {"--rate": "5"} and run.output is blocks[1]


def test_overrides_replace_every_value_of_the_option_quoted_or_not() -> None:
    command = 'geo-loadgen search --rate 500 --duration=30s --fail-if "p99<50ms,errors<0.1%" --rate-x 1'
    shortened = with_overrides(command, {"--duration": "3s", "--fail-if": "p99<2s", "--rate": "400"})
    assert shortened == "geo-loadgen search --rate 400 --duration=3s --fail-if 'p99<2s' --rate-x 1"
    toml = 'duration = "2m"\n[[events]]\nat = "20s"\n[[events]]\n  at = "40s"\n'
    assert (
        file_with_overrides(toml, {"at": '"1s"'}) == 'duration = "2m"\n[[events]]\nat = "1s"\n[[events]]\n  at = "1s"\n'
    )


def test_json_is_compared_exactly_except_where_the_guide_elides() -> None:
    shown = {"total": 4, "businesses": [{"id": 98664, "distance_m": 364.59240347025514}], "next_cursor": "Ai8..."}
    real = {"total": 4, "businesses": [{"id": 98664, "distance_m": 364.59240347025514}], "next_cursor": "Ai8Obzj_B"}
    assert json_mismatch(shown, real) is None
    assert json_mismatch(shown, {**real, "total": 5}) == "$.total: 5, the guide shows 4"
    moved = {**real, "businesses": [{"id": 98664, "distance_m": 364.5924034702552}]}
    assert json_mismatch(shown, moved) is not None
    assert json_mismatch(shown, {**real, "next_cursor": "Bi8Obzj"}) is not None
    assert json_mismatch(shown, {**real, "extra": 1}) == "$: not shown: ['extra']"
    assert json_mismatch({"a": 1, "...": "..."}, {"a": 1, "b": 2}) is None
    assert json_mismatch({"t": "..."}, {"t": None}) is None
    assert json_mismatch([1, "..."], [1, 2, 3]) is None and json_mismatch([1], [1, 2]) is not None
    assert json_mismatch({"on": True}, {"on": 1}) is not None and json_mismatch({"r": 1000}, {"r": 1000.0}) is None
    assert json_mismatch({"d": "known: a, ...; b"}, {"d": "known: a, c; b"}) is None
    assert json_mismatch({"d": "known: a, ...; b"}, {"d": "known: a, c; x"}) is not None


def test_json_output_may_hold_several_values() -> None:
    assert output_mismatch("json", '{"a": 1}\n{"b": [2]}', '{"a":1}{"b":[2]}\n') is None
    assert output_mismatch("json", '{"a": 1}', '{"a":1}{"b":[2]}\n') is not None
    assert output_mismatch("json", '{"a": 1}', "Traceback (most recent call last):\n") is not None


def test_text_lines_with_placeholders() -> None:
    shown = "HTTP/1.1 201 Created\nX-Consistency-Token: .../...\n...\n\n{}\n"
    assert text_matches(shown, "HTTP/1.1 201 Created\r\nX-Consistency-Token: 0/43AA6DC8\r\nDate: x\r\n\r\n{}")
    assert text_matches(shown, "HTTP/1.1 201 Created\nX-Consistency-Token: 0/1\n\n{}\n\n")
    assert not text_matches(shown, "HTTP/1.1 200 OK\nX-Consistency-Token: 0/1\n\n{}")
    assert not text_matches(shown, "HTTP/1.1 201 Created\nX-Consistency-Token: 0/1\n\n{}\nmore")
    assert not text_matches("a...b", "a\nb")


def test_a_server_frame_is_compared_by_field_names_and_types() -> None:
    shown = {"type": "init", "friends": [{"user_id": 43, "distance_m": 1417.3}], "radius_m": 8047.0}
    assert shape_mismatch(shown, {"type": "init", "friends": [], "radius_m": 100.0}) is None
    assert shape_mismatch(shown, {"type": "init", "friends": [{"user_id": 1, "distance_m": 2}], "radius_m": 1}) is None
    assert shape_mismatch(shown, {"type": "init", "friends": [{"user_id": 1}], "radius_m": 1.0}) is not None
    assert shape_mismatch(shown, {"type": "init", "friends": [], "radius_m": "8047"}) is not None


def test_the_websockets_client_output_read_as_on_screen() -> None:
    # What `python -m websockets` wrote for a frame received while its prompt was shown, and
    # when the input ended.
    assert screen_line("> > \x1b7") == ""
    assert screen_line('\x1b[A\x1b[L< {"type":"init"}') == '< {"type":"init"}'
    assert screen_line("\x1b8\x1b[B\r\x1b[KConnection closed: 1000 (OK).") == "Connection closed: 1000 (OK)."
    assert line_mismatch('< {"type": "init", "at": "..."}', '< {"type":"init","at":5}') is None
    assert line_mismatch('< {"type": "init"}', '< {"type":"error"}') is not None
    assert line_mismatch("Connected to ws://h/?token=eyJ....", "Connected to ws://h/?token=eyJhb.c.") is None
