"""Run the geo services in the foreground against the local stack until Ctrl-C.

The ports come from the settings (``GEO_API_PORT``, ``GEO_WS_PORT``, ...) and are checked
before anything starts (:func:`check_ports`); a service is called ready only once the server
answering its ``/healthz`` is the child this run started (:func:`deploy.stack.ports.serving`).
The services sign with the stack's own ``GEO_JWT_SECRET`` (see :mod:`deploy.stack.layout`)
unless the environment sets another, which is then held to what the services require.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from deploy.stack import ports
from deploy.stack.procs import StackError
from geo_common.secrets_check import check_dev_host, check_jwt_secret
from geo_common.settings import SettingsError, load_settings
from geo_common.supervisor import Supervisor


@dataclass(frozen=True, slots=True)
class Service:
    """One service ``geo-stack run`` starts."""

    name: str
    module: str
    host: str
    port: int
    #: The setting that moves it elsewhere.
    port_variable: str
    scheme: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def health_url(self) -> str:
        return f"http://{self.host}:{self.port}/healthz"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module, "--host", self.host, "--port", str(self.port)]


def plan(environ: Mapping[str, str]) -> list[Service]:
    """The services ``run`` starts, where the settings put them.

    Args:
        environ: the services' environment (the settings are read from it and the env file).

    Raises:
        StackError: a setting is malformed, development mode would listen beyond loopback,
            a key given in the environment would be refused by the services
            (:mod:`geo_common.secrets_check`), or a port is 0 (any free port: nobody could
            find it).
    """
    try:
        settings = load_settings(environ)
        for host_field in ("api_host", "ws_host"):
            check_dev_host(settings, host_field=host_field)
        if "GEO_JWT_SECRET" in environ:  # otherwise the services get the stack's own key
            check_jwt_secret(settings)
    except SettingsError as exc:
        raise StackError(str(exc)) from None
    services = [
        Service("HTTP API", "location_api", settings.api_host, settings.api_port, "GEO_API_PORT", "http"),
        Service("WebSocket tier", "friends_ws", settings.ws_host, settings.ws_port, "GEO_WS_PORT", "ws"),
    ]
    for service in services:
        if service.port == 0:
            raise StackError(f"{service.port_variable}=0 would serve the {service.name} on any free port; set one")
    return services


def check_ports(services: Sequence[Service]) -> None:
    """Refuse when a service's port is taken, naming the process that holds it.

    Raises:
        StackError: see :func:`deploy.stack.ports.check_free`.
    """
    ports.check_free(
        [ports.Wanted(f"the {s.name}", s.host, s.port, f"set {s.port_variable} to another port") for s in services]
    )


def run_services(stack_env: Mapping[str, str], services: Sequence[Service], environ: Mapping[str, str]) -> int:
    """Start every service as a child process, print their URLs, and stop them all on Ctrl-C.

    The children are supervised as every foreground command's are
    (:class:`geo_common.supervisor.Supervisor`). When a service does not start, the ones
    already started are stopped before returning.

    Args:
        stack_env: the stack's endpoint variables.
        services: what to start (:func:`plan`), its ports already checked.
        environ: the environment given to :func:`plan`; it wins over ``stack_env``.

    Returns:
        The exit code: 0 after Ctrl-C, 1 when a service did not start, and the status of a
        service that exited on its own (1 if that was 0).
    """
    env = {**stack_env, **environ}
    # The HTTP API needs businesses to find: the GeoNames demo set, loaded once (a no-op
    # when the table already holds businesses).
    demo = subprocess.run([sys.executable, "-m", "location_api", "load-demo", "--if-empty"], env=env)
    if demo.returncode != 0:
        print("geo: loading the demo businesses failed (see above)", file=sys.stderr)
        return 1
    with Supervisor("geo") as supervisor:
        for service in services:
            proc = supervisor.start(f"the {service.name}", service.argv(), env=env)
            failure = _wait_ready(service, proc, lambda: supervisor.stopping)
            if failure:
                supervisor.say(failure)
                supervisor.stop()
                names = ", ".join(child.name for child in supervisor.children)
                print(f"geo: stopped what this run started ({names}); the stack keeps running", flush=True)
                return 0 if supervisor.stopping else 1
            print(f"geo: {service.name} ready at {service.url}", flush=True)
        api = next(s for s in services if s.module == "location_api")
        print(f"geo: map page at {api.url}/ (docs/map.md)", flush=True)
        print("geo: all services up; Ctrl-C stops them", flush=True)
        code = supervisor.watch()
        supervisor.stop()
    print("geo: services stopped (the stack keeps running: geo-stack down stops it)", flush=True)
    return code


def _wait_ready(service: Service, proc: subprocess.Popen[bytes], interrupted: Callable[[], bool]) -> str:
    """Wait until ``proc`` serves ``service``; return why not ("" once it does)."""
    deadline = time.monotonic() + ports.START_TIMEOUT_S
    while True:
        try:
            if ports.serving(service.port, proc.pid, service.health_url):
                return ""
        except StackError as exc:
            return f"the {service.name} did not start: {exc}"
        if proc.poll() is not None:
            return f"the {service.name} did not start (exit {proc.returncode}; see its output above)"
        if interrupted():
            return f"interrupted while the {service.name} was starting"
        if time.monotonic() > deadline:
            return f"the {service.name} did not answer on {service.health_url} within {ports.START_TIMEOUT_S:.0f} s"
        time.sleep(0.1)
