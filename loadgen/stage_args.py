"""``--stages`` on the command line: its options, and the ones it replaces.

``search --stages`` stands for ``--rate`` and ``--duration``, ``friends --stages`` for
``--online-fraction``, ``--ramp`` and ``--duration``: given together, they are refused in one
line; given alone, the stages set them (the rate their mean, the duration their total).
"""

from __future__ import annotations

import argparse

from loadgen.stages import parse_level, parse_stages, rate_profile, users_profile

#: What ``--stages`` replaces, by command.
REPLACED = {"search": ("--rate", "--duration"), "friends": ("--online-fraction", "--ramp", "--duration")}
#: The defaults of what it replaces, when it is not given (``ramp`` is 0 with stages).
DEFAULTS = {"duration": 30.0, "ramp": 5.0, "online_fraction": 1.0}


class StagesError(ValueError):
    """``--stages`` beside what it replaces, or stages that cannot run; the message is one line."""


def add_stage_arguments(search: argparse.ArgumentParser, friends: argparse.ArgumentParser) -> None:
    """Add ``--stages`` (and ``--start-rate``) to the search and friends commands; what they
    replace must default to None, so that giving both is seen."""
    search.add_argument(
        "--stages",
        type=parse_stages,
        default=None,
        help='the rate in stages instead of --rate and --duration: "30s:100,1m:1000,30s:0" goes linearly '
        "to 100/s over 30 s, to 1000/s over 1 min, and down to 0 over 30 s",
    )
    search.add_argument(
        "--start-rate", type=_rate_or_zero, default=None, help="the rate --stages start from (default 0)"
    )
    friends.add_argument(
        "--stages",
        type=parse_stages,
        default=None,
        help="users online in stages, in id order, instead of --online-fraction, --ramp and --duration: "
        '"30s:500,2m:2000,30s:0" connects 500 over 30 s, 1500 more over 2 min, and all leave over 30 s',
    )


def settle(args: argparse.Namespace) -> None:
    """Check ``--stages`` against what it replaces and set what it stands for in ``args``
    (``rate``, ``duration``, ``ramp``, ``online_fraction``), or their defaults without it. A
    mixed run's length is its scenario's alone: ``--duration`` is refused there.

    Raises:
        StagesError: one line saying what to change.
    """
    if args.command == "mixed" and args.duration is not None:  # one length, in one place
        raise StagesError("--duration: a mixed run lasts the scenario's duration (or its stages); set it there")
    stages = getattr(args, "stages", None)
    if stages is None:
        if args.command == "search" and args.rate is None:
            raise StagesError("give --rate (with --duration) or --stages")
        if getattr(args, "start_rate", None) is not None:
            raise StagesError("--start-rate is where --stages start: give it with --stages")
        for name, default in DEFAULTS.items():
            if getattr(args, name, default) is None:
                setattr(args, name, default)
        return
    given = [flag for flag in REPLACED[args.command] if getattr(args, flag[2:].replace("-", "_")) is not None]
    if given:
        raise StagesError(f"--stages replaces {' and '.join(given)}: give one or the other")
    try:
        if args.command == "search":
            args.start_rate = args.start_rate or 0.0
            profile = rate_profile(args.start_rate, stages)
            args.rate = profile.mean()
        else:
            profile = users_profile(stages, args.users)
            args.ramp, args.online_fraction = 0.0, 1.0
    except ValueError as exc:
        raise StagesError(f"--stages: {exc}") from None
    args.duration = profile.duration_s


def _rate_or_zero(text: str) -> float:
    value = parse_level(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"--start-rate must be a number >= 0, got {text!r}")
    return value
