"""Interactive examples: a transcript typed into a program, and the friends protocol's frames.

A transcript (the ``doc-output`` of a ``doc-run interactive`` block) is read line by line:

``> TEXT``
    typed into the program (a line on its stdin);
``N> TEXT``
    sent meanwhile by user N's own WebSocket client (another terminal), connected on its
    first such line with a token of user N in the ``Authorization`` header; where the
    protocol answers (``init`` to a connection's first ``location``, the acknowledgement of
    ``settings`` and ``sharing``) the transcript goes on once the answer is in;
anything else
    the program's next line of output; a ``< {...}`` frame is compared as JSON (see
    :mod:`tests.docs.expect`), other lines as text.

When the transcript ends the program's stdin is closed (Ctrl-D); it must then exit with the
status its block expects and print no frame the transcript does not show.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from geo_common.tokens import mint_token
from tests.conftest import TIMEOUT_FACTOR
from tests.docs.expect import json_mismatch, text_matches
from tests.docs.shell import Target, kill_group, start

#: How long a line of a transcript may take to appear, seconds.
WAIT_S = 10.0 * TIMEOUT_FACTOR
_ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[A-Za-z]|[78])")
_FRIEND = re.compile(r"^(\d+)> (.*)$")
#: What the server answers to each frame a client sends.
REPLIES = {"location": "init", "settings": "settings", "sharing": "sharing", "discover": "discover"}


def screen_line(raw: str) -> str:
    """A line of a terminal program's output as it reads on screen: no escape sequences, only
    what follows the last carriage return, no leading input prompts (``> ``)."""
    line = _ANSI.sub("", raw).rsplit("\r", 1)[-1]
    while line.startswith("> "):
        line = line[2:]
    return line.strip()


def line_mismatch(expected: str, actual: str) -> str | None:
    """How one printed line differs from the transcript's, or None."""
    if expected.startswith("< {") and actual.startswith("< {"):
        try:
            shown, got = json.loads(expected[2:]), json.loads(actual[2:])
        except ValueError:
            pass
        else:
            problem = json_mismatch(shown, got)
            return None if problem is None else f"{problem}\n  printed: {actual}\n  the guide: {expected}"
    return None if text_matches(expected, actual) else f"printed: {actual}\n  the guide: {expected}"


@dataclass
class _Screen:
    """The program's output, a screen line at a time (blank lines skipped)."""

    stream: asyncio.StreamReader
    seen: list[str] = field(default_factory=list)

    async def next_line(self, timeout: float) -> str | None:
        while True:
            raw = await asyncio.wait_for(self.stream.readline(), timeout)
            if not raw:
                return None
            line = screen_line(raw.decode(errors="replace"))
            if line:
                self.seen.append(line)
                return line


@dataclass
class TranscriptRun:
    """What an interactive example printed: its problems and the frames it received."""

    problems: list[str]
    frames: list[dict[str, Any]]


async def run_transcript(
    script: str, transcript: str, *, exit_status: int, target: Target, cwd: Path, env: Mapping[str, str]
) -> TranscriptRun:
    """Run an interactive example through its transcript (see the module's docstring)."""
    proc = await start(script, cwd, env, stdin=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    screen = _Screen(proc.stdout)
    friends: dict[int, _Friend] = {}
    problems: list[str] = []
    try:
        for number, line in enumerate(transcript.splitlines(), start=1):
            if not line.strip():
                continue
            if line.startswith("> "):
                proc.stdin.write(line[2:].encode() + b"\n")
                await proc.stdin.drain()
            elif m := _FRIEND.match(line):
                user = int(m.group(1))
                if user not in friends:
                    friends[user] = await _Friend.connect(target, user)
                if (problem := await friends[user].send(m.group(2))) is not None:
                    problems.append(f"transcript line {number}: user {user}: {problem}")
                    break
            else:
                try:
                    actual = await screen.next_line(WAIT_S)
                except TimeoutError:
                    problems.append(f"transcript line {number}: nothing printed within {WAIT_S:.0f} s: {line}")
                    break
                if actual is None:
                    problems.append(f"transcript line {number}: the program ended before printing: {line}")
                    break
                if (problem := line_mismatch(line, actual)) is not None:
                    problems.append(f"transcript line {number}: {problem}")
                    break
        proc.stdin.close()
        try:
            status = await asyncio.wait_for(proc.wait(), WAIT_S)
        except TimeoutError:
            problems.append(f"still running {WAIT_S:.0f} s after its input ended")
        else:
            rest = (await proc.stdout.read()).decode(errors="replace")
            tail = [s for s in map(screen_line, rest.splitlines()) if s]
            screen.seen.extend(tail)
            extra = [s for s in tail if s.startswith("<")]
            if extra and not problems:
                problems.append("frames the transcript does not show:\n" + "\n".join(extra))
            if status != exit_status:
                problems.append(f"exit status {status}, the guide expects {exit_status}")
    finally:
        kill_group(proc)
        await proc.wait()
        for friend in friends.values():
            await friend.close()
    frames = [json.loads(s[2:]) for s in screen.seen if s.startswith("< {")]
    if problems:
        problems.append("the program printed:\n" + "\n".join(screen.seen))
    return TranscriptRun(problems, frames)


class _Friend:
    """The client of a friend in a transcript: sends its lines, waits for the server's answers."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.located = False
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, target: Target, user_id: int) -> _Friend:
        token = mint_token(target.settings.jwt_secret, user_id)
        return cls(await connect(target.ws_url, additional_headers={"Authorization": f"Bearer {token}"}))

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                self.frames.put_nowait(json.loads(raw))

    async def send(self, text: str) -> str | None:
        """Send a frame; when the protocol answers it, wait for the answer. Returns a problem or None."""
        kind = json.loads(text).get("type")
        if kind == "location":
            answer = None if self.located else "init"
            self.located = True
        else:
            answer = REPLIES.get(kind)
        await self.ws.send(text)
        if answer is None:
            return None
        try:
            async with asyncio.timeout(WAIT_S):
                while (frame := await self.frames.get()).get("type") not in (answer, "error"):
                    pass
        except TimeoutError:
            return f"no {answer} within {WAIT_S:.0f} s"
        return None if frame["type"] == answer else f"answered {frame}"

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


async def answer_to(target: Target, user_id: int, frame: str) -> dict[str, Any]:
    """What the server answers when a new connection of ``user_id`` sends ``frame``: the first
    frame of the expected reply's type, or an ``error``."""
    expected = REPLIES[json.loads(frame)["type"]]
    token = mint_token(target.settings.jwt_secret, user_id)
    async with connect(target.ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(frame)
        async with asyncio.timeout(WAIT_S):
            while True:
                reply: dict[str, Any] = json.loads(await ws.recv())
                if reply.get("type") in (expected, "error"):
                    return reply
