"""A server raises its open-file limit at start-up: to what it wants, or as far as it may."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

_PROBE = """
import json, resource, sys
from geo_common.open_files import raise_open_files
got = raise_open_files(int(sys.argv[1]))
print(json.dumps([got, *resource.getrlimit(resource.RLIMIT_NOFILE)]))
"""


def _raise_in_a_child(wanted: int, soft: int, hard: int) -> tuple[int, int, int]:
    """Run raise_open_files(wanted) in a process started with the limits (soft, hard)."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(wanted)],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    got, now_soft, now_hard = json.loads(out)
    return got, now_soft, now_hard


def _hard_now() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def test_the_soft_limit_rises_to_what_is_wanted_under_the_hard_one() -> None:
    hard = min(_hard_now(), 4096)
    got, soft, now_hard = _raise_in_a_child(hard - 1, 256, hard)
    assert (got, soft, now_hard) == (hard - 1, hard - 1, hard)


def test_a_limit_already_high_enough_is_left_alone() -> None:
    hard = min(_hard_now(), 4096)
    assert _raise_in_a_child(300, 1024, hard) == (1024, 1024, hard)


def test_past_the_hard_limit_it_goes_as_far_as_it_may() -> None:
    """With the privilege (root here, or CAP_SYS_RESOURCE) the hard limit rises too; without
    it the soft limit stops at the hard one. Either way the answer is the limit in force."""
    hard = min(_hard_now(), 4096)
    got, soft, now_hard = _raise_in_a_child(hard + 1000, 256, hard)
    assert got == soft
    assert (soft, now_hard) in {(hard + 1000, hard + 1000), (hard, hard)}
