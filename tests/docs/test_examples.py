"""Every example of the guides runs against the demo stack and prints what the guide shows.

The examples are the ``doc-run`` blocks of :data:`tests.docs.guides.GUIDES` (markers in
:mod:`tests.docs.markdown`), run in each guide's order; the WebSocket frames shown in the
friends protocol (``doc-frame``) are checked against the real server.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.docs.guides import GUIDES, GuideRun, blocks_of

RUNS = [
    pytest.param(path, i, id=f"{path}:{block.line}")
    for path in GUIDES
    for i, block in enumerate(blocks_of(path))
    if block.role == "doc-run"
]
FRAMES = [
    pytest.param(path, i, id=f"{path}:{block.line}")
    for path in GUIDES
    for i, block in enumerate(blocks_of(path))
    if block.role == "doc-frame"
]


@pytest.mark.parametrize(("path", "index"), RUNS)
async def test_example_prints_what_the_guide_shows(
    path: str, index: int, guide_runs: Callable[[str], GuideRun]
) -> None:
    guide = guide_runs(path)
    problems = await guide.problems(index)
    assert not problems, f"{guide.blocks[index].where}:\n" + "\n".join(problems)


@pytest.mark.parametrize(("path", "index"), FRAMES)
async def test_frame_is_what_the_server_speaks(path: str, index: int, guide_runs: Callable[[str], GuideRun]) -> None:
    guide = guide_runs(path)
    problems = await guide.frame_problems(index)
    assert not problems, f"{guide.blocks[index].where}:\n" + "\n".join(problems)
