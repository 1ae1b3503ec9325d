"""The set-up of ``geo-loadgen friends``: the population's friendships, made as users make them.

geo-api makes friends by consent (docs/friends-protocol.md, "Friendships over HTTP"): user
``a`` asks (``POST /v1/users/{a}/friends/{b}`` with ``a``'s own token, answered ``202``
``requested``), then ``b`` accepts by asking back (``POST /v1/users/{b}/friends/{a}`` with
``b``'s token, answered ``201`` ``friends``). Both steps answer ``200`` when the two are
friends already, so a re-run over the same users counts no error. Any other answer, or a
request that fails, is a set-up error, counted by status or by exception as the run's errors
are; a failed request is not followed by its acceptance, which would only leave ``b``'s own
request waiting.

A request refused with ``429`` (``GEO_MAX_FRIEND_REQUESTS_PER_MIN``: a user with more friends
than that asks for more in one minute) is sent again after its ``Retry-After``, up to
:data:`RATE_RETRIES` times, before it counts as an error; acceptances are never limited.

A worker finishes one friendship, request and acceptance, before it takes the next: geo-api
refuses a user's requests beyond ``GEO_MAX_PENDING_REQUESTS`` (100 by default) waiting, and
asking everything first would pass that for any user with more friends. So no user ever has
more requests of the set-up waiting than there are workers (``setup_concurrency``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiohttp

from loadgen.friends_options import FriendsOptions
from loadgen.graph import Population
from loadgen.stats import Recorder
from loadgen.user_tokens import TokenSource

#: What each step may answer; anything else is a set-up error. 200: they were friends already.
REQUEST_ANSWERS = frozenset({202, 200})
ACCEPT_ANSWERS = frozenset({201, 200})
#: How many times a request refused for its rate is sent again (after the answer's Retry-After).
RATE_RETRIES = 3
#: The longest wait for a rate window, seconds (geo-api's windows last a minute).
MAX_RETRY_AFTER_S = 61.0
#: The lifetime of the users' set-up tokens when they are minted here, seconds (at a user's first step).
TOKEN_TTL_S = 3600
#: Progress is printed every this many friendships.
PROGRESS_EVERY = 5_000


class UserTokens:
    """Each user's own bearer token, taken once from the run's token source and kept for the set-up."""

    def __init__(self, auth: TokenSource) -> None:
        self._auth = auth
        self._tokens: dict[int, str] = {}

    def headers(self, user_id: int) -> dict[str, str]:
        """The ``Authorization`` header of ``user_id`` acting for themself."""
        token = self._tokens.get(user_id)
        if token is None:
            token = self._tokens[user_id] = self._auth.token(user_id, TOKEN_TTL_S)
        return {"Authorization": f"Bearer {token}"}


async def create_friendships(opts: FriendsOptions, population: Population, recorder: Recorder) -> None:
    """Make every friendship of ``population`` by a request and its acceptance, ``setup_concurrency``
    friendships at a time (two requests each); counts failures by status or exception.

    Args:
        opts: the run's options: ``api``, ``auth`` (the users' tokens, loaded), ``setup_concurrency``.
        population: the users and their friendships.
        recorder: counts ``errors`` and, for each, ``setup_status_<code>`` or ``setup_error_<exception>``.
    """
    base = opts.api.rstrip("/")
    tokens = UserTokens(opts.auth)
    edges = population.edges()
    pending: Iterator[tuple[int, int]] = iter(edges)  # shared by the workers: each takes the next
    done = 0
    started = time.monotonic()

    async def post(session: aiohttp.ClientSession, user_id: int, friend_id: int, expected: frozenset[int]) -> bool:
        """``user_id`` asks ``friend_id`` with their own token; False (counted) unless answered as ``expected``."""
        for attempt in range(RATE_RETRIES + 1):
            try:
                async with session.post(
                    f"{base}/v1/users/{user_id}/friends/{friend_id}", headers=tokens.headers(user_id)
                ) as resp:
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:  # counted: the caller reports set-up errors
                recorder.count(f"setup_error_{type(exc).__name__}")
                recorder.count("errors")
                return False
            if resp.status != 429 or attempt == RATE_RETRIES:
                break
            await asyncio.sleep(_retry_after_s(resp.headers.get("Retry-After")))
        if resp.status not in expected:
            recorder.count(f"setup_status_{resp.status}")
            recorder.count("errors")
            return False
        return True

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        for a, b in pending:
            if await post(session, a, b, REQUEST_ANSWERS):
                await post(session, b, a, ACCEPT_ANSWERS)
            done += 1
            if done % PROGRESS_EVERY == 0:
                print(
                    f"friends: set-up {done}/{len(edges)} friendships ({time.monotonic() - started:.1f} s)", flush=True
                )

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(opts.setup_concurrency)))
    print(f"friends: set-up {len(edges)} friendships in {time.monotonic() - started:.1f} s", flush=True)


def _retry_after_s(value: str | None) -> float:
    """The wait a 429's ``Retry-After`` asks for (whole seconds), bounded; 1 s when absent or odd."""
    if value is None or not value.isdigit():
        return 1.0
    return min(float(value), MAX_RETRY_AFTER_S)
