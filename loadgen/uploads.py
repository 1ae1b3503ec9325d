"""A backgrounded phone's uploads: ``POST /v1/me/locations`` on geo-friends, in batches.

A phone app sent to the background closes its socket and records its position as the OS
lets it; it uploads what it recorded in batches, each point with a ``seq`` that grows with
every point the user records (across connections and uploads), at the interval the last
upload's answer gives (docs/friends-protocol.md). :class:`PointLog` holds the points not yet
acknowledged (pure); :class:`Uploader` sends them. A point the server took stays taken: a
batch sent again after a failure carries them, and the server ignores what it has.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from loadgen.clock import now
from loadgen.stats import Recorder

#: At most this many points a batch (the server's ``GEO_UPLOAD_MAX_POINTS`` by default); a
#: phone that recorded more sends the newest.
MAX_POINTS = 100
#: An upload gives up after this long, seconds.
UPLOAD_TIMEOUT_S = 10.0
#: A refused upload is tried again after its ``Retry-After``, at most this long, seconds.
MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True, slots=True)
class Point:
    """One recorded position: degrees, and the phone's clock in Unix milliseconds."""

    seq: int
    latitude: float
    longitude: float
    timestamp: int

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "latitude": self.latitude, "longitude": self.longitude, "timestamp": self.timestamp}


class PointLog:
    """Points recorded and not yet acknowledged by an upload's ``last_seq``, oldest first."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self._points: deque[Point] = deque(maxlen=max_points)

    def record(self, point: Point) -> None:
        """Keep ``point`` for the next batch (beyond ``max_points`` the oldest is dropped)."""
        self._points.append(point)

    def batch(self) -> list[Point]:
        """What the next upload carries: every point kept, oldest first."""
        return list(self._points)

    def acknowledge(self, last_seq: int) -> None:
        """The server holds every point up to ``last_seq``: drop them."""
        while self._points and self._points[0].seq <= last_seq:
            self._points.popleft()

    def __len__(self) -> int:
        return len(self._points)


@dataclass(frozen=True, slots=True)
class UploadAnswer:
    """How an upload went: ``interval_s`` and ``last_seq`` of a 200, or the wait a refusal asks
    for (``retry_after_s``); ``status`` 0 when no answer came."""

    status: int
    interval_s: float | None = None
    last_seq: int | None = None
    retry_after_s: float | None = None


def uploads_url(ws_base: str) -> str:
    """The upload endpoint on the WebSocket tier's port: ``ws://h:8081`` -> ``http://h:8081/v1/me/locations``."""
    base = ws_base.rstrip("/")
    if base.startswith("ws"):
        base = "http" + base[2:]
    return f"{base}/v1/me/locations"


class Uploader:
    """Sends batches for every backgrounded client of a run, over one session."""

    def __init__(self, url: str, recorder: Recorder) -> None:
        self.url = url
        self.recorder = recorder
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def upload(self, token: str, points: list[Point]) -> UploadAnswer:
        """Send ``points`` as the user of ``token``; failures are counted, never raised."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=UPLOAD_TIMEOUT_S))
        body = orjson.dumps({"locations": [p.as_json() for p in points]})
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        started = now()
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                raw = await resp.read()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.recorder.count("errors")
            self.recorder.count(f"upload_error_{type(exc).__name__}")
            return UploadAnswer(0)
        self.recorder.record("upload", now() - started)
        self.recorder.count("uploads")
        if status != 200:
            self.recorder.count("errors")
            self.recorder.count(f"upload_status_{status}")
            self.recorder.sample(f"upload_status_{status}", raw)
            return UploadAnswer(status, retry_after_s=_retry_after_s(retry_after))
        try:
            answer = orjson.loads(raw)
            accepted, ignored = int(answer["accepted"]), int(answer["ignored"])
            result = UploadAnswer(status, float(answer["interval_s"]), int(answer["last_seq"]))
        except (ValueError, TypeError, KeyError):
            self.recorder.count("errors")
            self.recorder.count("bad_frames")
            return UploadAnswer(0)
        self.recorder.count("upload_points", accepted)
        if ignored:
            self.recorder.count("upload_ignored", ignored)
        return result


def _retry_after_s(value: str | None) -> float:
    """The wait a refusal's ``Retry-After`` asks for (whole seconds), bounded; 1 s when absent or odd."""
    if value is None or not value.isdigit():
        return 1.0
    return min(float(value), MAX_RETRY_AFTER_S)
