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

    [[events]]               # 40 s after the ramp, half the clients slow to one update a minute
    at = "40s"
    kind = "background"
    fraction = 0.5
    interval = "60s"

Either section may be left out. The search figures are reported under ``search.`` names.
"""

from __future__ import annotations

import asyncio
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loadgen.friends import EventKind, FriendsLive, FriendsOptions, ScenarioEvent, run_friends
from loadgen.graph import GraphKind
from loadgen.movement import Movement
from loadgen.search import LiveState, SearchOptions, run_search
from loadgen.stats import Recorder


class ScenarioError(ValueError):
    """The scenario file is unreadable or holds a bad value; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class MixedOptions:
    search: SearchOptions | None
    friends: FriendsOptions | None
    seed: int = 0

    def for_worker(self, index: int, count: int) -> MixedOptions:
        return replace(self, search=self.search.for_worker(index, count) if self.search else None,
                       friends=self.friends.for_worker(index, count) if self.friends else None)


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


def load_scenario(path: Path, *, jwt_secret: str, seed: int, parse_duration: Any) -> MixedOptions:
    """Read a scenario file into options.

    Raises:
        ScenarioError: the file cannot be read or a value is wrong; names the key.
    """
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ScenarioError(f"--scenario {path}: {exc}") from None

    def get(table: dict[str, Any], key: str, kind: Any, default: Any = ..., where: str = "") -> Any:
        if key not in table:
            if default is ...:
                raise ScenarioError(f"--scenario {path}: {where}{key} is required")
            return default
        value = table[key]
        try:
            return kind(value)
        except (TypeError, ValueError, Exception) as exc:  # argparse types raise their own errors
            raise ScenarioError(f"--scenario {path}: {where}{key} = {value!r}: {exc}") from None

    def duration(value: Any) -> float:
        return float(parse_duration(str(value)))

    total = get(raw, "duration", duration, 60.0)
    search = None
    if "search" in raw:
        s = raw["search"]
        search = SearchOptions(url=get(s, "url", str, where="search."), rate=get(s, "rate", float, where="search."),
                               duration_s=total, radius_m=get(s, "radius", float, 5_000.0, "search."),
                               limit=get(s, "limit", int, 20, "search."), points=get(s, "points", str, "geonames", "search."),
                               seed=seed)
        if search.rate <= 0:
            raise ScenarioError(f"--scenario {path}: search.rate must be > 0")
    friends = None
    if "friends" in raw:
        f = raw["friends"]
        events = tuple(
            ScenarioEvent(at_s=get(e, "at", duration, where="events."), kind=get(e, "kind", EventKind, where="events."),
                          fraction=get(e, "fraction", float, where="events."),
                          interval_s=get(e, "interval", duration, 30.0, "events."))
            for e in raw.get("events", [])
        )
        if any(not 0.0 < e.fraction <= 1.0 for e in events):
            raise ScenarioError(f"--scenario {path}: events.fraction must be in (0, 1]")
        friends = FriendsOptions(
            api=get(f, "api", str, where="friends."), ws=get(f, "ws", str, where="friends."), jwt_secret=jwt_secret,
            users=get(f, "users", int, where="friends."), friends_per_user=get(f, "friends_per_user", int, 10, "friends."),
            graph=get(f, "graph", GraphKind, GraphKind.COMMUNITIES, "friends."),
            online_fraction=get(f, "online_fraction", float, 1.0, "friends."),
            interval_s=get(f, "interval", duration, 5.0, "friends."),
            movement=get(f, "movement", Movement, Movement.RANDOM_WALK, "friends."),
            duration_s=total, ramp_s=get(f, "ramp", duration, 5.0, "friends."),
            first_user_id=get(f, "first_user_id", int, 1_000_000, "friends."), events=events, seed=seed,
        )
    elif "events" in raw:
        raise ScenarioError(f"--scenario {path}: events need a [friends] section")
    if search is None and friends is None:
        raise ScenarioError(f"--scenario {path}: give a [search] or a [friends] section, or both")
    return MixedOptions(search=search, friends=friends, seed=seed)
