"""How simulated users move between updates: standing still, a random walk, or a commute."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import Enum

from geo_common.places import offset_point


class Movement(str, Enum):
    STATIC = "static"
    RANDOM_WALK = "random-walk"
    COMMUTE = "commute"


WALK_SPEED_MPS = 1.4
COMMUTE_SPEED_MPS = 10.0
COMMUTE_DISTANCE_M = 5_000.0


@dataclass
class Mover:
    """One user's position over time (degrees); ``step(dt)`` advances it by ``dt`` seconds."""

    kind: Movement
    home: tuple[float, float]
    rng: random.Random
    position: tuple[float, float] = field(init=False)
    _work: tuple[float, float] = field(init=False)
    _towards_work: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        self.position = self.home
        self._work = offset_point(*self.home, COMMUTE_DISTANCE_M, self.rng.uniform(0, 2 * math.pi))

    def max_step_m(self, dt: float) -> float:
        """The farthest one step of ``dt`` seconds can move, metres."""
        return {Movement.STATIC: 0.0, Movement.RANDOM_WALK: WALK_SPEED_MPS, Movement.COMMUTE: COMMUTE_SPEED_MPS}[
            self.kind
        ] * dt

    def step(self, dt: float) -> tuple[float, float]:
        if self.kind is Movement.RANDOM_WALK:
            self.position = offset_point(*self.position, WALK_SPEED_MPS * dt, self.rng.uniform(0, 2 * math.pi))
        elif self.kind is Movement.COMMUTE:
            target = self._work if self._towards_work else self.home
            lat, lon = self.position
            # Straight-line interpolation in degrees is fine over a 5 km commute.
            dlat, dlon = target[0] - lat, ((target[1] - lon + 180) % 360) - 180
            span_m = math.hypot(dlat * 111_195.0, dlon * 111_195.0 * math.cos(math.radians(lat)))
            step = COMMUTE_SPEED_MPS * dt
            if span_m <= step:
                self.position = target
                self._towards_work = not self._towards_work
            else:
                f = step / span_m
                self.position = (lat + dlat * f, ((lon + dlon * f + 180) % 360) - 180)
        return self.position
