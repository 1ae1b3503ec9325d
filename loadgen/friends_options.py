"""What ``geo-loadgen friends`` is asked to do: its options and the events of a scenario.

The command line (:mod:`loadgen.cli`) and a scenario file (:mod:`loadgen.mixed`) each build a
:class:`FriendsOptions`; :mod:`loadgen.friends` runs it. The options are plain data kept apart
from the run, so that code that only names them (:mod:`loadgen.catalog` names the events a
report counts) does not load the run and its WebSocket client.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from loadgen.graph import GraphKind, Population, build_population
from loadgen.movement import Movement
from loadgen.stages import Stage
from loadgen.user_tokens import TokenSource


class EventKind(str, Enum):
    RECONNECT_STORM = "reconnect_storm"
    BACKGROUND = "background"


@dataclass(frozen=True, slots=True)
class ScenarioEvent:
    """Something that happens to a share of the clients, ``at_s`` seconds after the ramp.

    ``reconnect_storm``: their connections drop at once and they reconnect (and resume).
    ``background``: as a phone app sent to the background, each closes its socket and uploads
    its positions over HTTP instead (``POST /v1/me/locations``, :mod:`loadgen.uploads`): a
    batch every ``interval_s`` seconds, or at the pace each upload's answer gives in a
    ``paced`` run; after ``lasts_s`` seconds (None: never in the run) it comes back to the
    foreground, opens a socket again and resumes.
    """

    at_s: float
    kind: EventKind
    fraction: float
    interval_s: float = 30.0
    lasts_s: float | None = None


#: After the measured window, how long clients keep listening before they close (seconds):
#: updates sent at its very end need this long to arrive before the ledger settles them.
DRAIN_S = 2.0


@dataclass(frozen=True, kw_only=True)
class FriendsOptions:
    """What ``geo-loadgen friends`` was asked to do."""

    api: str
    ws: str
    #: Where the users' tokens come from (:mod:`loadgen.user_tokens`); loaded before a run.
    auth: TokenSource
    users: int
    friends_per_user: int
    graph: GraphKind = GraphKind.COMMUNITIES
    online_fraction: float = 1.0
    interval_s: float = 5.0
    movement: Movement = Movement.RANDOM_WALK
    duration_s: float = 30.0
    ramp_s: float = 5.0
    drain_s: float = DRAIN_S
    first_user_id: int = 1_000_000
    setup: bool = True
    #: Friendships set up at a time (:mod:`loadgen.friendships`). Each has at most one request
    #: waiting, so it bounds any user's waiting requests: keep it within the API's
    #: ``GEO_MAX_PENDING_REQUESTS`` (100 by default), or requests beyond it are refused (409).
    setup_concurrency: int = 64
    events: tuple[ScenarioEvent, ...] = ()
    seed: int = 0
    worker_index: int = 0
    worker_count: int = 1
    #: Users online in stages, in id order, instead of the ramp (:func:`loadgen.stages.online_windows`);
    #: ``duration_s`` is then their total, ``ramp_s`` 0 and ``online_fraction`` 1.
    stages: tuple[Stage, ...] = ()
    #: A missing delivery is ``superseded``, not ``lost``, when a newer position of its sender
    #: reached the receiver within this long of its sending, seconds (None: always lost); for
    #: runs that fail a backend over on purpose (:mod:`loadgen.ledger`).
    supersede_within_s: float | None = None
    #: Clients obey the server's ``pace`` frames: a location every ``interval_s`` of the latest
    #: one instead of every ``interval_s`` here (which still paces recording in the background).
    paced: bool = False
    #: The share of communities placed around one place; the rest are scattered far apart, out
    #: of each other's range (:func:`loadgen.graph.build_population`).
    near_share: float = 1.0
    #: Each client's socket is dropped this often (seconds, at a phase of its own), and it
    #: reconnects and resumes (None: never).
    disconnect_every_s: float | None = None

    def population(self) -> Population:
        """The run's users, where they start, and their friendships.

        Raises:
            ValueError: sizes or ``near_share`` that :func:`~loadgen.graph.build_population` refuses.
        """
        return build_population(
            self.users,
            self.friends_per_user,
            self.graph,
            first_id=self.first_user_id,
            seed=self.seed,
            near_share=self.near_share,
        )

    def phones(self) -> str:
        """How the phones differ from a fixed schedule, for the line a run starts with: ``""``
        or ``", paced by the server, 20% of communities near, ..."``."""
        told = [
            "paced by the server (the rate above at most)" if self.paced else "",
            f"{self.near_share:.0%} of communities near" if self.near_share < 1 else "",
            f"sockets dropped every {self.disconnect_every_s:g} s" if self.disconnect_every_s else "",
        ]
        return "".join(f", {t}" for t in told if t)

    def for_worker(self, index: int, count: int) -> FriendsOptions:
        """Worker ``index`` of ``count`` runs whole communities (set-up is done once, before)."""
        return replace(self, worker_index=index, worker_count=count, setup=False)
