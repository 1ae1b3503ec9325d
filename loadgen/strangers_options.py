"""What ``geo-loadgen strangers`` is asked to do, and where its users stand.

Plain data kept apart from the run (:mod:`loadgen.strangers`), as
:mod:`loadgen.friends_options` is for ``friends``. The users crowd a few spots, each around a
real GeoNames place: a spot holds about :data:`USERS_PER_SPOT` users, so that each sees many
strangers and a crowded one more than the server shows (``GEO_DISCOVER_MAX_SHOWN``, 20).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from geo_common.places import load_places, offset_point
from loadgen.friends_options import DRAIN_S
from loadgen.user_tokens import TokenSource

#: Users a spot holds when ``--spots`` is not given: more than the server shows at once.
USERS_PER_SPOT = 25
#: Where the ids of simulated strangers start: away from ``friends``' (from 1,000,000), whose
#: friendships would hide them from each other (a friend is never a stranger).
FIRST_USER_ID = 3_000_000


@dataclass(frozen=True, kw_only=True)
class StrangersOptions:
    """What ``geo-loadgen strangers`` was asked to do."""

    ws: str
    #: The API that checks the users' tokens before the run (``GET /v1/me``), if given.
    api: str | None = None
    #: Where the users' tokens come from (:mod:`loadgen.user_tokens`); loaded before a run.
    auth: TokenSource
    users: int
    #: Seconds between a user's locations.
    interval_s: float = 2.0
    #: How many spots the users crowd (0: one per :data:`USERS_PER_SPOT` users).
    spots: int = 0
    #: How far from its place a spot reaches, metres: each location is a point within it.
    area_m: float = 600.0
    duration_s: float = 30.0
    ramp_s: float = 2.0
    drain_s: float = DRAIN_S
    first_user_id: int = FIRST_USER_ID
    seed: int = 0
    worker_index: int = 0
    worker_count: int = 1

    def spot_count(self) -> int:
        """The spots in use: ``spots``, or enough for :data:`USERS_PER_SPOT` users each."""
        return self.spots or math.ceil(self.users / USERS_PER_SPOT)

    def places(self) -> list[tuple[float, float]]:
        """Each spot's place (latitude, longitude in degrees): GeoNames places drawn by ``seed``."""
        rng = random.Random(self.seed)
        places = load_places()
        return [
            (p.latitude, p.longitude) for p in (places[rng.randrange(len(places))] for _ in range(self.spot_count()))
        ]

    def spot_of(self, user_id: int) -> int:
        """The spot user ``user_id`` stands in: users are dealt to spots in turn."""
        return (user_id - self.first_user_id) % self.spot_count()

    def mine(self) -> list[int]:
        """The users this worker runs: whole spots, so that a spot's crowd is one process's."""
        ids = range(self.first_user_id, self.first_user_id + self.users)
        return [u for u in ids if self.spot_of(u) % self.worker_count == self.worker_index]

    def shape(self) -> str:
        """The run in one line, for the line it starts with."""
        spots = self.spot_count()
        return (
            f"{self.users} users in {spots} spot{'s' if spots > 1 else ''} of {self.area_m:g} m, "
            f"~{self.users / spots:.0f} each, a location every {self.interval_s:g} s "
            f"(~{self.users / self.interval_s:.0f}/s)"
        )

    def for_worker(self, index: int, count: int) -> StrangersOptions:
        """Worker ``index`` of ``count`` runs whole spots."""
        return replace(self, worker_index=index, worker_count=count)


def point_near(place: tuple[float, float], area_m: float, rng: random.Random) -> tuple[float, float]:
    """A point drawn evenly over the disc of ``area_m`` metres around ``place`` (degrees).

    A user's every location is such a point: from one to the next it usually lands in another
    geohash-6 cell (about 1.2 km x 0.6 km), so its coarse position, all that strangers see of
    it, changes; that is what sends ``stranger`` frames.
    """
    return offset_point(place[0], place[1], area_m * math.sqrt(rng.random()), rng.uniform(0.0, 2.0 * math.pi))
