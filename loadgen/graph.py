"""Simulated users: who is friends with whom, and where each one starts.

``communities``: groups of ``friends_per_user + 1`` users around one GeoNames place, all
friends with each other, so most updates have friends in range (the case that loads the
fan-out). ``random``: each friendship joins two users picked at random among everyone; users
start around a few hundred places, so some friends are in range and many are not.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import Enum

from geo_common.places import load_places, offset_point


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
    n: int, friends_per_user: int, kind: GraphKind, *, first_id: int, seed: int, spread_m: float = 2_000.0
) -> Population:
    """Make ``n`` users with about ``friends_per_user`` friends each.

    Args:
        n: number of users (>= 2).
        friends_per_user: the mean number of friends (< n).
        kind: the graph model.
        first_id: the first user id; ids are consecutive from it.
        seed: random seed: the same arguments give the same population.
        spread_m: how far from their community's place users start, metres (mean).

    Raises:
        ValueError: n < 2, or friends_per_user out of 1..n-1.
    """
    if n < 2:
        raise ValueError(f"--users must be at least 2, got {n}")
    if not 1 <= friends_per_user < n:
        raise ValueError(f"--friends-per-user must be from 1 to users-1 ({n - 1}), got {friends_per_user}")
    rng = random.Random(seed)
    places = load_places()
    friends: dict[int, set[int]] = {first_id + i: set() for i in range(n)}
    users = []
    if kind is GraphKind.COMMUNITIES:
        size = friends_per_user + 1
        for start in range(0, n, size):
            place = places[rng.randrange(len(places))]
            members = list(range(first_id + start, first_id + min(n, start + size)))
            for uid in members:
                home = offset_point(
                    place.latitude, place.longitude, rng.expovariate(1 / spread_m), rng.uniform(0, 6.283185307179586)
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
