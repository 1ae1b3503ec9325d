"""Simulated users: who is friends with whom, and where each one starts.

``communities``: groups of ``friends_per_user + 1`` users around one GeoNames place, all
friends with each other, so most updates have friends in range (the case that loads the
fan-out). With ``near_share`` below 1, only that share of the communities is placed so (spread
evenly over them); the members of each other one are scattered over as many places, each at least :data:`FAR_M`
from the others: friends who are never near each other, as most friends are most of the time. ``random``: each friendship joins two users picked at random among everyone; users
start around a few hundred places, so some friends are in range and many are not.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from geo_index import haversine_m
from geo_common.places import Place, load_places, offset_point

#: Members of a scattered community are at least this far apart, metres: beyond any radius a
#: user may set (80,467 m at most) plus its hysteresis and a long walk.
FAR_M = 200_000.0


class GraphKind(str, Enum):
    RANDOM = "random"
    COMMUNITIES = "communities"


@dataclass(frozen=True, slots=True)
class SimUser:
    """One simulated user: id, home position (degrees) and community index."""

    user_id: int
    home: tuple[float, float]
    community: int


@dataclass(frozen=True, slots=True)
class Population:
    users: tuple[SimUser, ...]
    friends: dict[int, frozenset[int]]

    def edges(self) -> list[tuple[int, int]]:
        """Each friendship once, as (smaller id, larger id)."""
        return sorted({(min(a, b), max(a, b)) for a, fs in self.friends.items() for b in fs})


def build_population(
    n: int,
    friends_per_user: int,
    kind: GraphKind,
    *,
    first_id: int,
    seed: int,
    spread_m: float = 2_000.0,
    near_share: float = 1.0,
) -> Population:
    """Make ``n`` users with about ``friends_per_user`` friends each.

    Args:
        n: number of users (>= 2).
        friends_per_user: the mean number of friends (< n).
        kind: the graph model.
        first_id: the first user id; ids are consecutive from it.
        seed: random seed: the same arguments give the same population.
        spread_m: how far from their community's place users start, metres (mean).
        near_share: the share of communities placed around one place, in [0, 1]; the others
            are scattered (``communities`` only).

    Raises:
        ValueError: n < 2, friends_per_user out of 1..n-1, or near_share out of [0, 1] or
            below 1 with a ``random`` graph.
    """
    if n < 2:
        raise ValueError(f"--users must be at least 2, got {n}")
    if not 1 <= friends_per_user < n:
        raise ValueError(f"--friends-per-user must be from 1 to users-1 ({n - 1}), got {friends_per_user}")
    if not 0.0 <= near_share <= 1.0:
        raise ValueError(f"--near-share must be in [0, 1], got {near_share}")
    if near_share < 1.0 and kind is not GraphKind.COMMUNITIES:
        raise ValueError("--near-share places communities: it needs --graph communities")
    rng = random.Random(seed)
    places = load_places()
    friends: dict[int, set[int]] = {first_id + i: set() for i in range(n)}
    users = []
    if kind is GraphKind.COMMUNITIES:
        size = friends_per_user + 1
        for start in range(0, n, size):
            place = places[rng.randrange(len(places))]
            members = list(range(first_id + start, first_id + min(n, start + size)))
            near = _is_near(start // size, near_share)
            spots = [place] * len(members) if near else _far_apart(places, len(members), rng)
            for uid, spot in zip(members, spots, strict=True):
                home = offset_point(
                    spot.latitude, spot.longitude, rng.expovariate(1 / spread_m), rng.uniform(0, 6.283185307179586)
                )
                users.append(SimUser(uid, home, start // size))
                friends[uid].update(m for m in members if m != uid)
    else:
        hubs = [places[rng.randrange(len(places))] for _ in range(max(1, n // 50))]
        for i in range(n):
            place = hubs[rng.randrange(len(hubs))]
            home = offset_point(
                place.latitude, place.longitude, rng.expovariate(1 / spread_m), rng.uniform(0, 6.283185307179586)
            )
            users.append(SimUser(first_id + i, home, i))
        target = n * friends_per_user // 2
        edges = 0
        while edges < target:
            a, b = first_id + rng.randrange(n), first_id + rng.randrange(n)
            if a != b and b not in friends[a]:
                friends[a].add(b)
                friends[b].add(a)
                edges += 1
    return Population(tuple(users), {k: frozenset(v) for k, v in friends.items()})


def _is_near(community: int, share: float) -> bool:
    """Whether community ``community`` is one of the near ones: spread evenly over the
    communities, as many as ``share`` of them (rounded), whatever their number."""
    return math.floor((community + 1) * share + 0.5) > math.floor(community * share + 0.5)


def _far_apart(places: Sequence[Place], count: int, rng: random.Random) -> list[Place]:
    """``count`` places, each at least :data:`FAR_M` from every other (GeoNames holds 144,000
    places over the world: a few draws find one)."""
    chosen: list[Place] = []
    while len(chosen) < count:
        p = places[rng.randrange(len(places))]
        if all(haversine_m(p.latitude, p.longitude, q.latitude, q.longitude) >= FAR_M for q in chosen):
            chosen.append(p)
    return chosen
