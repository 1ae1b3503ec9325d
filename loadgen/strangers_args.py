"""``geo-loadgen strangers`` on the command line: its options, checked, and the run's options.

The users' tokens come from the same sources as ``friends``' (:mod:`loadgen.token_args`);
``--api``, when given, checks two of them before the run, as ``friends`` does.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from loadgen.arg_types import positive
from loadgen.durations import duration_or_zero, parse_duration
from loadgen.strangers_options import FIRST_USER_ID, USERS_PER_SPOT, StrangersOptions
from loadgen.targets import check_friends_ws
from loadgen.token_args import load_tokens, required, token_source

#: ``--interval`` when neither it nor ``--rate`` is given, seconds.
DEFAULT_INTERVAL_S = 2.0


class StrangersArgsError(ValueError):
    """Options that cannot make a run; the message is the one line printed."""


def add_strangers_arguments(p: argparse.ArgumentParser) -> None:
    """Add the options of the ``strangers`` command (but its tokens', :mod:`loadgen.token_args`) to ``p``."""
    p.add_argument("--ws", required=True, help="the WebSocket tier's base URL, e.g. ws://127.0.0.1:8081")
    p.add_argument("--api", default=None, help="the API's base URL: checks the users' tokens before the run")
    p.add_argument("--users", type=positive(int, "--users"), required=True, help="simulated users (at least 2)")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--interval",
        type=parse_duration,
        default=None,
        help=f"seconds between a user's locations (default {DEFAULT_INTERVAL_S:g}s)",
    )
    pace.add_argument(
        "--rate", type=positive(float, "--rate"), default=None, help="locations per second, all users together"
    )
    p.add_argument(
        "--spots",
        type=positive(int, "--spots"),
        default=None,
        help=f"places the users crowd around (default: one per {USERS_PER_SPOT} users)",
    )
    p.add_argument(
        "--area",
        type=positive(float, "--area"),
        default=600.0,
        help="metres around its place that a spot reaches; every location is a new point in it (default 600)",
    )
    p.add_argument("--ramp", type=duration_or_zero, default=2.0, help="connect the users over this long (default 2s)")
    p.add_argument(
        "--first-user-id",
        type=positive(int, "--first-user-id"),
        default=FIRST_USER_ID,
        help=f"ids are consecutive from this (default {FIRST_USER_ID:,}: not friends' users)",
    )


def strangers_options(args: argparse.Namespace) -> StrangersOptions:
    """The run ``args`` ask for, its WebSocket tier checked; its tokens not loaded yet
    (:func:`prepare_strangers`).

    Raises:
        StrangersArgsError: options that cannot make a run.
        TargetError: ``--ws`` is not the WebSocket tier.
        UserTokensError: no token source, or a malformed one.
    """
    if args.users < 2:
        raise StrangersArgsError(f"--users must be at least 2 (a user alone sees no stranger), got {args.users}")
    if args.spots is not None and args.spots > args.users:
        raise StrangersArgsError(f"--spots {args.spots} is more than --users {args.users}: a spot needs its users")
    if args.interval is not None and args.interval <= 0:
        raise StrangersArgsError(f"--interval must be > 0, got {args.interval:g}")
    interval = args.users / args.rate if args.rate is not None else args.interval or DEFAULT_INTERVAL_S
    auth = required(token_source(args), "strangers")
    check_friends_ws(args.ws, "--ws")
    return StrangersOptions(
        ws=args.ws,
        api=args.api,
        auth=auth,
        users=args.users,
        interval_s=interval,
        spots=args.spots or 0,
        area_m=args.area,
        duration_s=args.duration,
        ramp_s=args.ramp,
        first_user_id=args.first_user_id,
        seed=args.seed,
    )


def prepare_strangers(options: StrangersOptions) -> StrangersOptions:
    """``options`` with every user's token loaded (and two checked by ``--api``, if given).

    Raises:
        TargetError: the API refuses a token, or takes it as another user's.
        UserTokensError: the source cannot give every user a token.
    """
    print(f"strangers: {options.shape()}", flush=True)
    users = range(options.first_user_id, options.first_user_id + options.users)
    return replace(options, auth=load_tokens(options.auth, users, api=options.api, api_flag="--api", label="strangers"))
