"""``geo-loadgen mixed --scenario FILE.toml``: searches and friends at once, with events.

A scenario file::

    duration = "60s"

    [search]
    url = "http://127.0.0.1:8080"
    rate = 200            # searches per second
    radius = 5000         # metres

    [friends]
    api = "http://127.0.0.1:8080"
    ws = "ws://127.0.0.1:8081"
    users = 2000
    friends_per_user = 10
    interval = "5s"
    movement = "random-walk"   # static | random-walk | commute
    ramp = "10s"

    [[events]]               # 20 s after the ramp, 30% of clients drop and reconnect at once
    at = "20s"
    kind = "reconnect_storm"
    fraction = 0.3

    [[events]]               # 40 s after the ramp, half the clients go to the background:
    at = "40s"               # sockets closed, a batch a minute uploaded over HTTP, and back
    kind = "background"      # (reconnected, resumed) 30 s later
    fraction = 0.5
    interval = "60s"
    for = "30s"

Either section may be left out. ``[search]`` also takes ``limit``, ``points``,
``max_in_flight``, ``arrivals``, ``timeout``, ``tick``, ``verify`` and ``verify_against``:
``geo-loadgen search``'s options, with its defaults and limits; ``[friends]`` also takes
``graph``, ``online_fraction``, ``first_user_id``, ``paced`` (true or false),
``near_share`` and ``disconnect_every``; an event ``for = "30s"`` (a ``background`` one's
time in the background: it comes back to the foreground then). ``stages = "30s:100,1m:1000,30s:0"``
in ``[search]`` (with ``start_rate``, default 0) replaces ``rate`` and ``duration``; in
``[friends]`` it replaces ``online_fraction``, ``ramp`` and ``duration`` (loadgen.stages).
A key not listed is an error, not ignored. The search figures are reported under
``search.`` names.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

from loadgen.durations import duration_or_zero, parse_duration
from loadgen.friends import FriendsLive, run_friends
from loadgen.friends_options import EventKind, FriendsOptions, ScenarioEvent
from loadgen.graph import GraphKind
from loadgen.movement import Movement
from loadgen.schedule import Arrivals
from loadgen.search import DEFAULT_TICK_S, LiveState, SearchOptions, run_search
from loadgen.stages import Stage, parse_stages, rate_profile, users_profile
from loadgen.stats import Recorder
from loadgen.user_tokens import NEEDED, TokenSource


def _boolean(value: Any) -> bool:
    """A TOML boolean, nothing else (``bool("false")`` is True)."""
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


class ScenarioError(ValueError):
    """The scenario file is unreadable or holds a bad value; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class MixedOptions:
    search: SearchOptions | None
    friends: FriendsOptions | None
    seed: int = 0

    def for_worker(self, index: int, count: int) -> MixedOptions:
        return replace(
            self,
            search=self.search.for_worker(index, count) if self.search else None,
            friends=self.friends.for_worker(index, count) if self.friends else None,
        )


@dataclass
class MixedLive:
    search: LiveState
    friends: FriendsLive

    def __init__(self) -> None:
        self.search, self.friends = LiveState(), FriendsLive()

    @property
    def in_flight(self) -> int:
        return self.search.in_flight + self.friends.in_flight


async def run_mixed(opts: MixedOptions, recorder: Recorder, live: MixedLive) -> None:
    """Run both parts on one loop; search figures land in ``recorder`` under ``search.``."""
    searches = Recorder()
    parts = []
    if opts.search is not None:
        parts.append(run_search(opts.search, searches, live.search))
    if opts.friends is not None:
        parts.append(run_friends(opts.friends, recorder, live.friends))
    await asyncio.gather(*parts)
    recorder.absorb(searches, prefix="search.")


#: The keys each part of a scenario may hold; any other is a mistake the loader names.
TOP_KEYS = ("duration", "search", "friends", "events")
SEARCH_KEYS = (
    "url",
    "rate",
    "radius",
    "limit",
    "points",
    "max_in_flight",
    "arrivals",
    "timeout",
    "tick",
    "verify",
    "verify_against",
    "stages",
    "start_rate",
)
FRIENDS_KEYS = (
    "api",
    "ws",
    "users",
    "friends_per_user",
    "graph",
    "online_fraction",
    "interval",
    "movement",
    "ramp",
    "first_user_id",
    "stages",
    "paced",
    "near_share",
    "disconnect_every",
)
EVENT_KEYS = ("at", "kind", "fraction", "interval", "for")


def load_scenario(path: Path, *, auth: TokenSource | None, seed: int) -> MixedOptions:
    """Read a scenario file into options.

    The ``[search]`` keys are ``geo-loadgen search``'s options (``max_in_flight`` for
    ``--max-in-flight``...) with the same defaults and limits; the ``[friends]`` keys are
    ``geo-loadgen friends``'s. The users' tokens are not the scenario's: ``auth`` is where
    the command line says they come from, needed when there is a ``[friends]`` part.

    Raises:
        ScenarioError: the file cannot be read, a key is unknown, or a value is wrong (names
            the key); or there is a ``[friends]`` part and no ``auth``.
    """
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"--scenario {path}: {exc}") from None

    def fail(message: str) -> NoReturn:
        raise ScenarioError(f"--scenario {path}: {message}")

    def known(table: Any, keys: tuple[str, ...], where: str) -> dict[str, Any]:
        if not isinstance(table, dict):
            fail(f"{where.rstrip('.') or 'the file'} must be a table")
        for key in table:
            if key not in keys:
                fail(f"{where}{key} is not a key here (known: {', '.join(keys)})")
        return table

    def get(
        table: dict[str, Any], key: str, kind: Any, default: Any = ..., where: str = "", *, positive: bool = False
    ) -> Any:
        if key not in table:
            if default is ...:
                fail(f"{where}{key} is required")
            return default
        value = table[key]
        # int and float raise ValueError or TypeError (OverflowError: int of an infinite float),
        # the enums ValueError, the durations argparse's ArgumentTypeError.
        try:
            read = kind(value)
        except (ValueError, TypeError, OverflowError, argparse.ArgumentTypeError) as exc:
            fail(f"{where}{key} = {value!r}: {exc}")
        if positive and not read > 0:
            fail(f"{where}{key} must be > 0, got {value!r}")
        return read

    def duration(value: Any) -> float:
        return parse_duration(str(value))

    def duration_or_none(value: Any) -> float:
        return duration_or_zero(str(value))

    def stages(table: dict[str, Any], where: str, replaced: tuple[str, ...]) -> tuple[Stage, ...]:
        """The section's stages, or none; refused beside a key they replace."""
        if "stages" not in table:
            return ()
        for key in replaced:
            if key in table:
                fail(f"{where}stages replaces {where}{key}: give one or the other")
        if not isinstance(table["stages"], str):
            fail(f'{where}stages = {table["stages"]!r}: write them as a string, e.g. "30s:100,1m:1000,30s:0"')
        read: tuple[Stage, ...] = get(table, "stages", parse_stages, where=where)
        return read

    known(raw, TOP_KEYS, "")
    total = get(raw, "duration", duration, 60.0)
    parts = [raw[part] for part in ("search", "friends") if isinstance(raw.get(part), dict)]
    if "duration" in raw and parts and all("stages" in part for part in parts):
        fail("duration: every part runs in stages, whose total is its length; drop duration")
    search = None
    if "search" in raw:
        s, at = known(raw["search"], SEARCH_KEYS, "search."), "search."
        search_stages, start_rate = stages(s, at, ("rate",)), 0.0
        if search_stages:
            start_rate = get(s, "start_rate", float, 0.0, at)
            if not (math.isfinite(start_rate) and start_rate >= 0):
                fail(f"{at}start_rate must be a number >= 0, got {s['start_rate']!r}")
            try:
                profile = rate_profile(start_rate, search_stages)
            except ValueError as exc:
                fail(f"{at}stages: {exc}")
            rate, search_s = profile.mean(), profile.duration_s
        elif "start_rate" in s:
            fail(f"{at}start_rate is where {at}stages start: give it with {at}stages")
        else:
            rate, search_s = get(s, "rate", float, where=at, positive=True), total
        search = SearchOptions(
            url=get(s, "url", str, where=at),
            rate=rate,
            duration_s=search_s,
            radius_m=get(s, "radius", float, 5_000.0, at, positive=True),
            limit=get(s, "limit", int, 20, at, positive=True),
            points=get(s, "points", str, "geonames", at),
            max_in_flight=get(s, "max_in_flight", int, 1_000, at, positive=True),
            arrivals=get(s, "arrivals", Arrivals, Arrivals.CONSTANT, at),
            timeout_s=get(s, "timeout", duration, 10.0, at),
            tick_s=get(s, "tick", duration_or_none, DEFAULT_TICK_S, at),
            verify=get(s, "verify", int, 0, at),
            truth=get(s, "verify_against", str, "geonames", at),
            seed=seed,
            stages=search_stages,
            start_rate=start_rate,
        )
        if search.verify < 0:
            fail(f"search.verify must be >= 0, got {search.verify}")
    friends = None
    events_raw = raw.get("events", [])
    if not isinstance(events_raw, list):
        fail("events must be an array of tables ([[events]])")
    if "friends" in raw:
        f, at = known(raw["friends"], FRIENDS_KEYS, "friends."), "friends."
        events = tuple(
            ScenarioEvent(
                at_s=get(e, "at", duration, where="events."),
                kind=get(e, "kind", EventKind, where="events."),
                fraction=get(e, "fraction", float, where="events."),
                interval_s=get(e, "interval", duration, 30.0, "events."),
                lasts_s=get(e, "for", duration, None, "events."),
            )
            for e in (known(e, EVENT_KEYS, "events.") for e in events_raw)
        )
        if any(not 0.0 < e.fraction <= 1.0 for e in events):
            fail("events.fraction must be in (0, 1]")
        users = get(f, "users", int, where=at, positive=True)
        friends_stages, friends_s = stages(f, at, ("online_fraction", "ramp")), total
        if friends_stages:
            try:
                friends_s = users_profile(friends_stages, users).duration_s
            except ValueError as exc:
                fail(f"{at}stages: {exc}")
        parsed: dict[str, Any] = dict(
            api=get(f, "api", str, where=at),
            ws=get(f, "ws", str, where=at),
            users=users,
            friends_per_user=get(f, "friends_per_user", int, 10, at, positive=True),
            graph=get(f, "graph", GraphKind, GraphKind.COMMUNITIES, at),
            online_fraction=get(f, "online_fraction", float, 1.0, at, positive=True),
            interval_s=get(f, "interval", duration, 5.0, at),
            movement=get(f, "movement", Movement, Movement.RANDOM_WALK, at),
            duration_s=friends_s,
            ramp_s=get(f, "ramp", duration_or_none, 0.0 if friends_stages else 5.0, at),
            first_user_id=get(f, "first_user_id", int, 1_000_000, at, positive=True),
            events=events,
            seed=seed,
            stages=friends_stages,
            paced=get(f, "paced", _boolean, False, at),
            near_share=get(f, "near_share", float, 1.0, at),
            disconnect_every_s=get(f, "disconnect_every", duration, None, at),
        )
        if not 0.0 <= parsed["near_share"] <= 1.0:
            fail(f"friends.near_share must be in [0, 1], got {parsed['near_share']}")
        if parsed["online_fraction"] > 1.0:
            fail(f"friends.online_fraction must be in (0, 1], got {parsed['online_fraction']}")
        if auth is None:
            fail(f"[friends] acts as its simulated users and needs their tokens: {NEEDED}")
        friends = FriendsOptions(auth=auth, **parsed)
    elif events_raw:
        fail("events need a [friends] section")
    if search is None and friends is None:
        fail("give a [search] or a [friends] section, or both")
    return MixedOptions(search=search, friends=friends, seed=seed)
