"""Run the geo services in the foreground against the local stack until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping

from geo_common.settings import load_settings

#: (name, module, settings attribute of the host, of the port, health path)
SERVICES = (
    ("HTTP API", "location_api", "api_host", "api_port", "/healthz"),
    ("WebSocket tier", "friends_ws", "ws_host", "ws_port", "/healthz"),
)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - our own loopback URL
            return bool(resp.status == 200)
    except OSError:
        return False


def run_services(stack_env: Mapping[str, str]) -> int:
    """Start every service as a child process, print their URLs, and stop them all on Ctrl-C.

    Args:
        stack_env: the stack's endpoint variables; the real environment wins over them.

    Returns:
        The exit code: 0 after Ctrl-C, 1 when a service died on its own.
    """
    env = {**stack_env, **os.environ}
    # A local run is a development run: the map page's dev sign-in works (GEO_DEV=0 turns it off).
    env.setdefault("GEO_DEV", "1")
    settings = load_settings(env)
    # The HTTP API needs businesses to find: the GeoNames demo set, loaded once (a no-op
    # when the table already holds businesses).
    demo = subprocess.run([sys.executable, "-m", "location_api", "load-demo", "--if-empty"], env=env)
    if demo.returncode != 0:
        print("geo: loading the demo businesses failed (see above)", file=sys.stderr)
        return 1
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, module, host_attr, port_attr, health in SERVICES:
        host, port = getattr(settings, host_attr), getattr(settings, port_attr)
        proc = subprocess.Popen([sys.executable, "-m", module, "--host", host, "--port", str(port)], env=env)
        children.append((name, proc))
        deadline = time.monotonic() + 30
        url = f"http://{host}:{port}"
        while not _healthy(url + health):
            if proc.poll() is not None or time.monotonic() > deadline:
                print(f"geo: the {name} did not start (see its output above)", file=sys.stderr)
                _stop_all(children)
                return 1
            time.sleep(0.1)
        scheme = "ws" if module == "friends_ws" else "http"
        print(f"geo: {name} ready at {scheme}://{host}:{port}", flush=True)
    print(f"geo: map page at http://{settings.api_host}:{settings.api_port}/ (docs/map.md)", flush=True)
    print("geo: all services up; Ctrl-C stops them", flush=True)
    code = 0
    while not stopping:
        for name, proc in children:
            if proc.poll() is not None:
                print(f"geo: the {name} exited with code {proc.returncode}", file=sys.stderr)
                stopping, code = True, 1
        time.sleep(0.2)
    _stop_all(children)
    print("geo: services stopped (the stack keeps running: geo-stack down stops it)", flush=True)
    return code


def _stop_all(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, proc in children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for _, proc in children:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
