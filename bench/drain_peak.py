"""The reconnect peak on the geo-friends instance that stays when another one stops.

Run beside a load (``geo-loadgen friends`` through nginx on ``geo-stack up --full``): it
samples each instance's own ``/metrics`` every ``--interval`` seconds, waits until the two
hold ``--when-connected`` sessions between them, lets them settle, sends SIGTERM to the
victim (its pid from the full tier's pid file), and keeps sampling for ``--watch`` seconds.
A drain (``GEO_WS_DRAIN_S`` > 0, friends_ws/drain.py) spreads the victim's clients'
reconnections over its window; ``GEO_WS_DRAIN_S=0`` closes them all at once.

It reports, from the SIGTERM on, the survivor's accepted handshakes
(``geo_friends_connections_total``) per 100 ms and per second (fixed bins: each sample's
increment goes to the bin its reading came back in, so a sample that came late puts a
lump in one bin: the largest gap between readings is printed beside the peaks), when the
first of them came, the time until they cover the victim's sessions and until the survivor
holds every session again, when the victim held none, and the handshakes the victim
refused while draining. Every reading goes to ``--out`` (CSV).

    .venv/bin/python bench/drain_peak.py --survivor http://127.0.0.1:15410 \\
        --victim http://127.0.0.1:15409 --victim-pid-file .stack/full/ws-1.pid \\
        --when-connected 1500 --out bench/out/drain/drain10.csv
"""

from __future__ import annotations

import argparse
import csv
import http.client
import os
import signal
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from host_steal import StealMeter  # noqa: E402

ACCEPTED = "geo_friends_connections_total "
SESSIONS = "geo_friends_sessions "
REFUSED = 'geo_friends_handshakes_refused_total{reason="draining"} '


def read_metrics(conn: http.client.HTTPConnection) -> tuple[float, float, float]:
    """Accepted handshakes, open sessions and draining refusals from one ``/metrics`` answer."""
    conn.request("GET", "/metrics")
    values = {ACCEPTED: 0.0, SESSIONS: 0.0, REFUSED: 0.0}
    for line in conn.getresponse().read().decode().splitlines():
        for prefix in values:
            if line.startswith(prefix):
                values[prefix] = float(line[len(prefix) :])
    return values[ACCEPTED], values[SESSIONS], values[REFUSED]


class Sampler(threading.Thread):
    """Reads one instance's ``/metrics`` every ``interval`` seconds until stopped or gone.

    ``samples`` holds ``(monotonic time the answer came, accepted, sessions, refused)``.
    """

    def __init__(self, url: str, interval: float) -> None:
        super().__init__(daemon=True)
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.interval = interval
        self.samples: list[tuple[float, float, float, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
        due = time.monotonic()
        while not self.stopped.is_set():
            try:
                self.samples.append((time.monotonic(), *read_metrics(conn)))
            except (OSError, http.client.HTTPException):
                conn.close()
                if self.samples:  # was answering: the instance has gone
                    return
            due = max(due + self.interval, time.monotonic())
            self.stopped.wait(due - time.monotonic())

    def latest(self) -> tuple[float, float, float, float] | None:
        return self.samples[-1] if self.samples else None


def bins(samples: list[tuple[float, float, float, float]], start: float, width: float) -> dict[int, float]:
    """Accepted handshakes per bin of ``width`` seconds from ``start``, by bin index."""
    counts: dict[int, float] = {}
    for (_, before, *_), (t, after, *_) in zip(samples, samples[1:], strict=False):
        if t >= start:
            k = int((t - start) // width)
            counts[k] = counts.get(k, 0.0) + after - before
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--survivor", required=True, help="the instance that stays: its own base URL")
    parser.add_argument("--victim", required=True, help="the instance to stop: its own base URL")
    parser.add_argument("--victim-pid-file", required=True, type=Path, help="e.g. .stack/full/ws-1.pid")
    parser.add_argument("--when-connected", type=int, required=True, help="sessions on both before SIGTERM")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds between that and SIGTERM")
    parser.add_argument("--watch", type=float, default=30.0, help="seconds to sample after SIGTERM")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between readings")
    parser.add_argument("--wait", type=float, default=120.0, help="give up when not connected by then, s")
    parser.add_argument("--out", type=Path, required=True, help="CSV of every reading")
    args = parser.parse_args()

    survivor, victim = Sampler(args.survivor, args.interval), Sampler(args.victim, args.interval)
    survivor.start()
    victim.start()
    deadline = time.monotonic() + args.wait
    while True:
        s, v = survivor.latest(), victim.latest()
        if s and v and s[2] + v[2] >= args.when_connected:
            break
        if time.monotonic() > deadline:
            print(f"drain_peak: not {args.when_connected} sessions after {args.wait:.0f} s", file=sys.stderr)
            return 1
        time.sleep(0.1)
    time.sleep(args.settle)
    s, v = survivor.latest(), victim.latest()
    assert s is not None and v is not None  # both answered above
    total, on_victim, accepted0 = s[2] + v[2], v[2], s[1]
    with StealMeter() as steal:
        sigterm = time.monotonic()
        os.kill(int(args.victim_pid_file.read_text()), signal.SIGTERM)
        time.sleep(args.watch)
        survivor.stopped.set()
        victim.stopped.set()
    survivor.join()
    victim.join()

    after = [x for x in survivor.samples if x[0] >= sigterm]
    first = next((t - sigterm for t, a, _, _ in after if a > accepted0), None)
    covered = next((t - sigterm for t, a, _, _ in after if a - accepted0 >= on_victim), None)
    emptied = next((t - sigterm for t, _, n, _ in victim.samples if t >= sigterm and n == 0), None)
    whole = next((t - sigterm for t, _, n, _ in after if n >= total), None)
    gaps = [b[0] - a[0] for a, b in zip(after, after[1:], strict=False)]
    per_100ms, per_s = bins(survivor.samples, sigterm, 0.1), bins(survivor.samples, sigterm, 1.0)
    refused = max((x[3] for x in victim.samples), default=0.0)
    victim_gone = victim.samples[-1][0] - sigterm if victim.samples else None

    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["instance", "t_s", "accepted", "sessions", "refused_draining"])
        for name, sampler in (("survivor", survivor), ("victim", victim)):
            for t, a, n, r in sampler.samples:
                out.writerow([name, f"{t - sigterm:.3f}", int(a), int(n), int(r)])

    def fmt(x: float | None) -> str:
        return "never" if x is None else f"{x:.2f} s"

    print(f"sessions at SIGTERM: {total:.0f} ({on_victim:.0f} on the victim)")
    accepted = (after[-1][1] if after else accepted0) - accepted0
    print(f"survivor accepted after SIGTERM: {accepted:.0f} handshakes in {args.watch:.0f} s")
    peak_100ms, peak_s = max(per_100ms.values(), default=0), max(per_s.values(), default=0)
    print(f"peak per 100 ms: {peak_100ms:.0f}; per second: {peak_s:.0f}")
    print("per second from SIGTERM: " + " ".join(f"{per_s.get(k, 0):.0f}" for k in range(int(args.watch))))
    print(f"first handshake accepted by the survivor after: {fmt(first)}")
    print(f"handshakes cover the victim's sessions after: {fmt(covered)}")
    print(f"survivor holds all {total:.0f} sessions after: {fmt(whole)}")
    print(
        f"victim: no session left after {fmt(emptied)}; last answered {fmt(victim_gone)} after SIGTERM; "
        f"refused {refused:.0f} handshakes draining"
    )
    print(f"largest gap between survivor readings after SIGTERM: {max(gaps, default=0) * 1000:.0f} ms")
    print(f"host steal meanwhile: {'n/a' if steal.share is None else f'{steal.share:.1%}'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
