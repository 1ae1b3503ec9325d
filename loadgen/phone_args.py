"""How ``geo-loadgen friends``'s phones behave, on the command line: ``--paced``,
``--near-share``, ``--disconnect-every``.

The same choices are ``paced``, ``near_share`` and ``disconnect_every`` in a scenario file's
``[friends]`` (:mod:`loadgen.mixed`); :class:`loadgen.friends_options.FriendsOptions` says
what each does.
"""

from __future__ import annotations

import argparse

from loadgen.durations import parse_duration


def add_phone_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that model phones rather than a fixed schedule."""
    group = parser.add_argument_group("phones")
    group.add_argument(
        "--paced",
        action="store_true",
        help="obey the server's pace frames: a location every interval_s of the latest pace instead of --interval",
    )
    group.add_argument(
        "--near-share",
        type=share,
        default=1.0,
        help="share of communities placed near each other, [0, 1]; the others' members are scattered "
        "far apart, out of each other's range (default 1)",
    )
    group.add_argument(
        "--disconnect-every",
        type=parse_duration,
        default=None,
        help="drop each client's socket this often (each at a phase of its own); it reconnects and resumes",
    )


def share(text: str) -> float:
    """``--near-share``: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--near-share must be a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--near-share must be in [0, 1], got {text!r}")
    return value
