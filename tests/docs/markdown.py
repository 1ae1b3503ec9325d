"""The fenced blocks of a Markdown guide and what their info strings say the tests do with them.

A block's info string is its language, then one role (GitHub shows only the language, so the
roles are invisible on the rendered page):

``doc-run [serve|interactive] [exit=N] [--option=VALUE ...]``
    a shell example the tests run against the demo stack. ``serve``: each line starts a server
    the test waits for and stops. ``interactive``: the ``doc-output`` after it is a transcript
    typed into the program. ``exit=N``: the exit status it must end with (default 0).
    ``--option=VALUE``: the test runs the command with that option's value replaced (a
    one-minute load run shortened to seconds); the option must occur in the block.
``doc-output``
    what the ``doc-run`` block before it prints (stdout and stderr, as a terminal shows them).
``doc-file=NAME [key=VALUE ...]``
    a file the examples use, written into their working directory first; each ``key=VALUE``
    replaces every ``key = ...`` line in the test's copy.
``doc-frame``
    a WebSocket frame of the friends protocol, checked against a real connection.
``doc-skip: REASON``
    an example the tests do not run, and why.

Nothing else may follow the language: every block of a checked guide has exactly one role.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SHELLS = frozenset({"sh", "bash", "shell", "console"})
ROLES = ("doc-run", "doc-output", "doc-file", "doc-frame", "doc-skip")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


class MarkerError(ValueError):
    """A block's info string does not say one valid role; the message names the block."""


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its role, and its text."""

    path: str
    line: int
    lang: str
    role: str
    words: tuple[str, ...]
    text: str
    reason: str = ""

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Run:
    """A ``doc-run`` block read: its flags, option overrides and the output it must print."""

    block: Block
    serve: bool = False
    interactive: bool = False
    exit_status: int = 0
    overrides: dict[str, str] = field(default_factory=dict)
    output: Block | None = None


def fenced_blocks(text: str, path: str) -> list[Block]:
    """Every fenced code block of a Markdown text, in order (CommonMark fences at the margin).

    Args:
        text: the Markdown.
        path: how to name the file in messages.

    Returns:
        The blocks; a block without a role has ``role`` empty.
    """
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, info = opening.group(1), opening.group(2).strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence):
                if not closing.group(2).strip():
                    break
            body.append(lines[j])
            j += 1
        blocks.append(_block(path, i + 1, info, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def _block(path: str, line: int, info: str, text: str) -> Block:
    lang, _, rest = info.partition(" ")
    rest = rest.strip()
    if rest.startswith("doc-skip:"):
        return Block(path, line, lang, "doc-skip", (), text, reason=rest.removeprefix("doc-skip:").strip())
    words = tuple(rest.split())
    role = words[0].partition("=")[0] if words else ""
    return Block(path, line, lang, role, words, text)


def check_roles(blocks: list[Block]) -> list[str]:
    """Every problem with the roles of a guide's blocks (empty when each block has a valid one)."""
    problems: list[str] = []
    for i, block in enumerate(blocks):
        if block.role not in ROLES:
            shown = " ".join(block.words) or "nothing"
            problems.append(
                f"{block.where}: after the language {block.lang!r} comes {shown!r}, not one of the roles "
                f"{', '.join(ROLES)} (tests/docs/markdown.py says what each does)"
            )
            continue
        if not block.lang:
            problems.append(f"{block.where}: a {block.role} block needs a language before its role")
        if block.role == "doc-run" and block.lang not in SHELLS:
            problems.append(f"{block.where}: doc-run is for shell examples ({', '.join(sorted(SHELLS))})")
        if block.role == "doc-skip" and not block.reason:
            problems.append(f"{block.where}: doc-skip needs a reason: 'doc-skip: why it is not run'")
        if block.role == "doc-output" and (i == 0 or blocks[i - 1].role != "doc-run"):
            problems.append(f"{block.where}: doc-output must follow a doc-run block")
        try:
            if block.role == "doc-run":
                read_run(blocks, i)
            elif block.role == "doc-file":
                file_overrides(block)
            elif block.role in ("doc-output", "doc-frame") and len(block.words) > 1:
                raise MarkerError(f"{block.where}: {block.role} takes nothing after it")
        except MarkerError as exc:
            problems.append(str(exc))
    return problems


def read_run(blocks: list[Block], index: int) -> Run:
    """The ``doc-run`` block at ``index`` with its flags and the ``doc-output`` right after it.

    Raises:
        MarkerError: an unknown word, a malformed ``exit=``, or an override of an option the
            block does not use.
    """
    block = blocks[index]
    serve = interactive = False
    exit_status = 0
    overrides: dict[str, str] = {}
    for word in block.words[1:]:
        if word == "serve":
            serve = True
        elif word == "interactive":
            interactive = True
        elif word.startswith("exit=") and word[5:].isdigit():
            exit_status = int(word[5:])
        elif word.startswith("--") and "=" in word:
            option, _, value = word.partition("=")
            if not re.search(rf"(?<!\S){re.escape(option)}(?=[\s=])", block.text):
                raise MarkerError(f"{block.where}: the override {option} is not an option of the block")
            overrides[option] = value
        else:
            raise MarkerError(f"{block.where}: doc-run does not take {word!r}")
    after = blocks[index + 1] if index + 1 < len(blocks) else None
    output = after if after is not None and after.role == "doc-output" else None
    if interactive and output is None:
        raise MarkerError(f"{block.where}: an interactive doc-run needs a doc-output transcript after it")
    if serve and (interactive or output is not None):
        raise MarkerError(f"{block.where}: a serve block prints nothing to compare")
    return Run(block, serve, interactive, exit_status, overrides, output)


def file_overrides(block: Block) -> tuple[str, dict[str, str]]:
    """A ``doc-file`` block's file name and its ``key=VALUE`` replacements.

    Raises:
        MarkerError: no name, or a key no line of the block sets.
    """
    name = block.words[0].partition("=")[2]
    if not name or "/" in name:
        raise MarkerError(f"{block.where}: doc-file needs a plain file name: doc-file=NAME")
    overrides: dict[str, str] = {}
    for word in block.words[1:]:
        key, sep, value = word.partition("=")
        if not sep or not re.search(rf"(?m)^\s*{re.escape(key)}\s*=", block.text):
            raise MarkerError(f"{block.where}: {word!r} does not replace a key the file sets")
        overrides[key] = value
    return name, overrides


def with_overrides(text: str, overrides: dict[str, str]) -> str:
    """A command with each ``--option VALUE`` (or ``--option=VALUE``) given another value."""
    for option, value in overrides.items():
        pattern = rf"(?<!\S)({re.escape(option)})(\s+|=)(\"[^\"]*\"|'[^']*'|\S+)"
        text = re.sub(pattern, _keeping_head(shlex.quote(value)), text)
    return text


def file_with_overrides(text: str, overrides: dict[str, str]) -> str:
    """A TOML-like file with every ``key = ...`` line of each key set to another value."""
    for key, value in overrides.items():
        text = re.sub(rf"(?m)^(\s*{re.escape(key)}\s*=)(\s*).*$", _keeping_head(value), text)
    return text


def _keeping_head(value: str) -> Callable[[re.Match[str]], str]:
    """A replacement keeping a match's first two groups (the name and what follows it) and
    putting ``value`` after them."""

    def replace(match: re.Match[str]) -> str:
        return f"{match.group(1)}{match.group(2)}{value}"

    return replace


def guide_blocks(root: Path, relative: str) -> list[Block]:
    """The fenced blocks of one guide under the repository root."""
    return fenced_blocks((root / relative).read_text(encoding="utf-8"), relative)
