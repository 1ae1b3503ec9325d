"""One guide's examples run in order against the demo stack, each once, results kept.

The examples of a guide build on each other as a reader's would (the business created by one
is read by the next), so asking for one example's result first runs every ``doc-run`` block
before it that has not run yet. Each block's result is kept for its own test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import REPO
from tests.docs.expect import json_mismatch, output_mismatch, shape_mismatch
from tests.docs.markdown import Block, file_overrides, file_with_overrides, guide_blocks, read_run, with_overrides
from tests.docs.shell import ExampleError, Target, environment, run_script, serve_each, substitute, workdir
from tests.docs.transcript import REPLIES, answer_to, run_transcript

#: The guides whose every block is marked, in the order their examples run.
GUIDES = ("README.md", "docs/api.md", "docs/friends-protocol.md", "docs/loadgen.md")
#: Users of the frame checks: ``FRAME_USERS + line`` is far from the guides' users (42, 43)
#: and from geo-loadgen's (from 1,000,000).
FRAME_USERS = 900_000
_LOADGEN_OUT = re.compile(r"geo-loadgen\b[^\n]*?--out\s+(\S+)")


def blocks_of(relative: str) -> list[Block]:
    """The fenced blocks of one of :data:`GUIDES`."""
    return guide_blocks(REPO, relative)


class GuideRun:
    """The examples of one guide, run in its own working directory."""

    def __init__(self, relative: str, target: Target, base: Path) -> None:
        self.relative = relative
        self.blocks = blocks_of(relative)
        self.target = target
        self.cwd = workdir(base)
        self.env = environment(target)
        self.results: dict[int, list[str]] = {}
        #: Every ``<`` frame the guide's interactive examples received.
        self.frames: list[dict[str, Any]] = []
        for block in self.blocks:
            if block.role == "doc-file":
                name, overrides = file_overrides(block)
                text = file_with_overrides(block.text, overrides)
                (self.cwd / name).write_text(substitute(text, target), encoding="utf-8")

    async def problems(self, index: int) -> list[str]:
        """What is wrong with the ``doc-run`` block at ``index`` (empty: it ran as shown)."""
        for i, block in enumerate(self.blocks[: index + 1]):
            if block.role == "doc-run" and i not in self.results:
                try:
                    self.results[i] = await self._run(i)
                except ExampleError as exc:
                    self.results[i] = [str(exc)]
        return self.results[index]

    async def run_all(self) -> None:
        """Run every ``doc-run`` block of the guide not run yet."""
        runs = [i for i, b in enumerate(self.blocks) if b.role == "doc-run"]
        if runs:
            await self.problems(runs[-1])

    async def _run(self, index: int) -> list[str]:
        run = read_run(self.blocks, index)
        script = substitute(with_overrides(run.block.text, run.overrides), self.target)
        if run.serve:
            return await serve_each(script, self.cwd, self.env)
        if run.interactive:
            assert run.output is not None
            transcript = substitute(run.output.text, self.target)
            done = await run_transcript(
                script, transcript, exit_status=run.exit_status, target=self.target, cwd=self.cwd, env=self.env
            )
            self.frames.extend(done.frames)
            return done.problems
        status, printed = await run_script(script, self.cwd, self.env)
        problems: list[str] = []
        if status != run.exit_status:
            problems.append(f"exit status {status}, the guide expects {run.exit_status}; printed:\n{printed[-4000:]}")
        if run.output is not None:
            shown = substitute(run.output.text, self.target)
            if (mismatch := output_mismatch(run.output.lang, shown, printed)) is not None:
                problems.append(mismatch)
        for out in _LOADGEN_OUT.findall(script):
            if not (self.cwd / out / "report.json").is_file():
                problems.append(f"geo-loadgen wrote no {out}/report.json")
        return problems

    async def frame_problems(self, index: int) -> list[str]:
        """What is wrong with the ``doc-frame`` block at ``index``.

        A frame a client sends is sent on a new connection: the server must answer it with
        its reply (``location``: ``init``), and acknowledge ``settings``, ``sharing`` and ``discover`` with
        the same values. A frame the server sends must have the field names and JSON types of
        every frame of its type that the guide's interactive examples received.
        """
        block = self.blocks[index]
        frame = json.loads(block.text)
        kind = frame.get("type")
        if kind in REPLIES:
            compact = json.dumps(frame, separators=(",", ":"))
            reply = await answer_to(self.target, FRAME_USERS + block.line, compact)
            if reply["type"] == "error":
                return [f"the server refused {compact}: {reply}"]
            if kind == "discover":
                reply.pop("radius_m", None)  # the acknowledgement adds the instance's discovery radius
            if kind != "location" and (problem := json_mismatch(frame, reply)) is not None:
                return [f"acknowledged as {reply}: {problem}"]
            return []
        await self.run_all()
        real = [f for f in self.frames if f.get("type") == kind]
        if not real:
            return [f"no example of {self.relative} received a {kind!r} frame to compare it with (did one fail?)"]
        return [f"{p} (real frame: {r})" for r in real if (p := shape_mismatch(frame, r)) is not None][:1]
