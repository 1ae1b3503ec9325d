"""``geo-loadgen``'s command line: parse and check arguments, then hand over to the runner.

Every argument mistake, a ``--fail-if`` rule on anything the scenario does not record, and a
target that cannot be reached, is the wrong service or would refuse every request, is one
line on stderr and exit 2, before anything is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from geo_common.version import add_version_argument
from loadgen.catalog import Catalog, catalog_for
from loadgen.durations import duration_or_zero, parse_duration
from loadgen.friends import FriendsLive, run_friends
from loadgen.friendships import create_friendships
from loadgen.friends_options import FriendsOptions
from loadgen.graph import GraphKind
from loadgen.phone_args import add_phone_arguments
from loadgen.arg_types import fraction, positive, report_file
from loadgen.mixed import MixedLive, ScenarioError, load_scenario, run_mixed
from loadgen.movement import Movement
from loadgen.points import PointsError, query_points, truth_points
from loadgen.stats import Recorder
from loadgen.strangers import StrangersLive, run_strangers
from loadgen.strangers_args import StrangersArgsError, add_strangers_arguments, prepare_strangers, strangers_options
from loadgen.runner import RunConfig, run
from loadgen.schedule import Arrivals
from loadgen.search import DEFAULT_TICK_S, LiveState, SearchOptions, run_search
from loadgen.stage_args import StagesError, add_stage_arguments, settle
from loadgen.targets import (
    TargetError,
    check_friends_ws,
    check_friendship_api,
    check_query,
    check_search_api,
)
from loadgen.thresholds import ThresholdError, error_rules, parse_limit, parse_thresholds
from loadgen.token_args import add_token_arguments, load_tokens, required, token_source
from loadgen.user_tokens import UserTokensError

PROG = "geo-loadgen"


class UsageError(Exception):
    """A bad argument; the message is the one line printed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Load generator for geo: open-loop, HDR percentiles, reports.")
    add_version_argument(parser)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    common = _Parser(add_help=False)
    common.add_argument("--duration", type=parse_duration, default=None, help="run length: 30s, 2m... (default 30s)")
    common.add_argument(
        "--out", type=Path, default=None, help="write report.json, timeseries.csv, plots and report.html here"
    )
    common.add_argument(
        "--fail-if", default=None, help='exit 1 when a rule fails, e.g. "p99<50ms,errors<0.1%%,lost==0"'
    )
    common.add_argument(
        "--max-errors",
        default=None,
        metavar="LIMIT",
        help="exit 1 when errors exceed this, a count or a percentage of operations "
        "(default 1%%, unless --fail-if has its own errors rule)",
    )
    common.add_argument(
        "--junit",
        type=report_file("--junit"),
        default=None,
        metavar="FILE",
        help="write the verdict as JUnit XML: a test case per --fail-if rule and one for the run's own checks",
    )
    common.add_argument(
        "--workers", type=positive(int, "--workers"), default=1, help="generator processes, merged exactly (default 1)"
    )
    common.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    common.add_argument("--no-progress", action="store_true", help="no live progress")
    common.add_argument(
        "--progress-interval",
        type=parse_duration,
        default=5.0,
        help="seconds between progress lines when not on a terminal",
    )

    search = sub.add_parser("search", parents=[common], help="open-loop nearby searches over HTTP")
    search.add_argument("--url", required=True, help="the API's base URL, e.g. http://127.0.0.1:8080")
    search.add_argument("--rate", type=positive(float, "--rate"), default=None, help="searches per second")
    search.add_argument(
        "--radius", type=positive(float, "--radius"), default=5_000.0, help="radius in metres (default 5000)"
    )
    search.add_argument("--limit", type=positive(int, "--limit"), default=20, help="results per search (default 20)")
    search.add_argument(
        "--points", default="geonames", help="geonames | uniform | FILE.csv of lat,lon (default geonames)"
    )
    search.add_argument(
        "--max-in-flight",
        type=positive(int, "--max-in-flight"),
        default=1_000,
        help="open requests at most (default 1000)",
    )
    search.add_argument(
        "--arrivals",
        choices=[a.value for a in Arrivals],
        default=Arrivals.CONSTANT.value,
        help="constant or poisson arrivals",
    )
    search.add_argument("--timeout", type=parse_duration, default=10.0, help="per-request timeout (default 10s)")
    search.add_argument(
        "--tick",
        type=duration_or_zero,
        default=DEFAULT_TICK_S,
        help="shortest time between the sender's wake-ups: searches due closer together leave together, "
        "up to this late, and their latencies count it; 0: each at its own time, for more CPU "
        f"(default {DEFAULT_TICK_S * 1000:g}ms)",
    )
    search.add_argument(
        "--verify",
        type=positive(int, "--verify"),
        nargs="?",
        const=200,
        default=0,
        metavar="N",
        help="after the run, check N sampled answers (default 200) against a brute-force scan",
    )
    search.add_argument(
        "--verify-against",
        default="geonames",
        help="the places the API holds, for --verify: geonames (the demo set) or FILE.csv of lat,lon",
    )

    friends = sub.add_parser("friends", parents=[common], help="simulated users sharing locations over WebSocket")
    friends.add_argument("--api", required=True, help="the API's base URL (friendships are created there)")
    friends.add_argument("--ws", required=True, help="the WebSocket tier's base URL, e.g. ws://127.0.0.1:8081")
    friends.add_argument("--users", type=positive(int, "--users"), required=True, help="simulated users")
    friends.add_argument(
        "--friends-per-user", type=positive(int, "--friends-per-user"), default=20, help="friends each (default 20)"
    )
    friends.add_argument(
        "--graph", choices=[g.value for g in GraphKind], default=GraphKind.COMMUNITIES.value, help="friend graph model"
    )
    friends.add_argument(
        "--online-fraction", type=fraction, default=None, help="share of users connected, (0, 1] (default 1)"
    )
    friends.add_argument(
        "--interval", type=parse_duration, default=5.0, help="seconds between a user's updates (default 5s)"
    )
    friends.add_argument(
        "--movement", choices=[m.value for m in Movement], default=Movement.RANDOM_WALK.value, help="movement model"
    )
    friends.add_argument(
        "--ramp", type=duration_or_zero, default=None, help="connect the users over this long (default 5s)"
    )
    friends.add_argument(
        "--first-user-id",
        type=positive(int, "--first-user-id"),
        default=1_000_000,
        help="ids are consecutive from this",
    )
    friends.add_argument(
        "--superseded-within",
        type=parse_duration,
        default=None,
        help="a missing delivery is superseded, not lost, when a newer position of its sender arrived "
        "within this long of it (fault tests: a failover's bound; default: off)",
    )
    friends.add_argument(
        "--skip-setup", action="store_true", help="the friendships exist already (a rerun with the same arguments)"
    )
    add_phone_arguments(friends)

    strangers = sub.add_parser(
        "strangers", parents=[common], help="opted-in users crowding a few spots, each seeing the others as strangers"
    )
    add_strangers_arguments(strangers)

    mixed = sub.add_parser("mixed", parents=[common], help="searches and friends at once, from a scenario file")
    mixed.add_argument("--scenario", type=Path, required=True, help="a TOML scenario (see docs/loadgen.md)")
    mixed.add_argument("--skip-setup", action="store_true", help="the friendships exist already")
    add_stage_arguments(search, friends)
    add_token_arguments(friends, strangers, mixed)
    return parser


def _config(args: argparse.Namespace, catalog: Catalog) -> RunConfig:
    """How to run and judge: the rules are read against what this scenario records, so a
    misspelt metric is refused here, before anything is sent."""
    rules = parse_thresholds(args.fail_if, catalog) if args.fail_if is not None else []
    max_errors = parse_limit(args.max_errors) if args.max_errors is not None else None
    return RunConfig(
        name=args.command,
        workers=args.workers,
        out=args.out,
        fail_if=(*rules, *error_rules(catalog, rules, max_errors)),
        catalog=catalog,
        progress=not args.no_progress,
        progress_interval_s=args.progress_interval,
        junit=args.junit,
    )


def _search(args: argparse.Namespace) -> int:
    config = _config(args, catalog_for("search"))
    query_points(args.points, 1)  # check the sources before starting
    if args.verify:
        truth_points(args.verify_against)
    limits = check_search_api(args.url, "--url")
    check_query(limits, radius_m=args.radius, limit=args.limit, radius_flag="--radius", limit_flag="--limit")
    options = SearchOptions(
        url=args.url,
        rate=args.rate,
        duration_s=args.duration,
        radius_m=args.radius,
        limit=args.limit,
        points=args.points,
        max_in_flight=args.max_in_flight,
        arrivals=Arrivals(args.arrivals),
        timeout_s=args.timeout,
        tick_s=args.tick,
        seed=args.seed,
        verify=args.verify,
        truth=args.verify_against,
        stages=args.stages or (),
        start_rate=args.start_rate or 0.0,
    )
    return run(run_search, options, LiveState, config)


def _friends(args: argparse.Namespace) -> int:
    config = _config(args, catalog_for("friends"))
    options = FriendsOptions(
        api=args.api,
        ws=args.ws,
        auth=required(token_source(args), "friends"),
        users=args.users,
        friends_per_user=args.friends_per_user,
        graph=GraphKind(args.graph),
        online_fraction=args.online_fraction,
        interval_s=args.interval,
        movement=Movement(args.movement),
        duration_s=args.duration,
        ramp_s=args.ramp,
        first_user_id=args.first_user_id,
        setup=not args.skip_setup,
        seed=args.seed,
        stages=args.stages or (),
        supersede_within_s=args.superseded_within,
        paced=args.paced,
        near_share=args.near_share,
        disconnect_every_s=args.disconnect_every,
    )
    # The report shows the options asked for: ``setup`` says whether this run did the set-up.
    return run(run_friends, prepare_friends(options), FriendsLive, config, reported=options)


def _strangers(args: argparse.Namespace) -> int:
    config = _config(args, catalog_for("strangers"))
    options = strangers_options(args)
    return run(run_strangers, prepare_strangers(options), StrangersLive, config, reported=options)


def _mixed(args: argparse.Namespace) -> int:
    try:
        options = load_scenario(args.scenario, auth=token_source(args), seed=args.seed)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None
    config = _config(args, catalog_for("mixed", search=options.search is not None, friends=options.friends is not None))
    where = f"--scenario {args.scenario}: "
    if options.search is not None:
        s = options.search
        query_points(s.points, 1, flag=where + "search.points")  # check the sources before starting
        if s.verify:
            truth_points(s.truth, where + "search.verify_against")
        limits = check_search_api(s.url, where + "search.url")
        check_query(
            limits,
            radius_m=s.radius_m,
            limit=s.limit,
            radius_flag=where + "search.radius",
            limit_flag=where + "search.limit",
        )
    prepared = options
    if options.friends is not None:
        asked = replace(options.friends, setup=not args.skip_setup)
        flags = (where + "friends.api", where + "friends.ws")
        options, prepared = (
            replace(options, friends=asked),
            replace(options, friends=prepare_friends(asked, flags=flags)),
        )
    return run(run_mixed, prepared, MixedLive, config, reported=options)


def prepare_friends(options: FriendsOptions, *, flags: tuple[str, str] = ("--api", "--ws")) -> FriendsOptions:
    """Check the targets and the population, load the users' tokens and see the API take
    them, create the friendships once; options for the run (``setup`` off: it is done; the
    tokens loaded)."""
    check_friendship_api(options.api, flags[0], setup=options.setup)
    check_friends_ws(options.ws, flags[1])
    try:
        population = options.population()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    users = range(options.first_user_id, options.first_user_id + options.users)
    options = replace(
        options, auth=load_tokens(options.auth, users, api=options.api, api_flag=flags[0], label="friends")
    )
    online = max(s.target for s in options.stages) if options.stages else options.users * options.online_fraction
    shown = f"up to {online:g} online in stages" if options.stages else f"{options.online_fraction:.0%} online"
    print(
        f"friends: {options.users} users, {options.friends_per_user} friends each ({options.graph.value}), "
        f"{shown}, ~{online / options.interval_s:.0f} updates/s, {options.movement.value}{options.phones()}",
        flush=True,
    )
    if options.setup:
        setup = Recorder()
        asyncio.run(create_friendships(options, population, setup))
        if setup.counters.get("errors"):
            raise UsageError(f"set-up failed: {dict(setup.counters)}")
    return replace(options, setup=False)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        settle(args)
        if args.command == "search":
            return _search(args)
        if args.command == "friends":
            return _friends(args)
        if args.command == "strangers":
            return _strangers(args)
        if args.command == "mixed":
            return _mixed(args)
    except (
        UsageError,
        ThresholdError,
        PointsError,
        TargetError,
        StagesError,
        UserTokensError,
        StrangersArgsError,
    ) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 2
