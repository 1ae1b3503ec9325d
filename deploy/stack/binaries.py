"""Finding the PostgreSQL, PostGIS, Redis, nginx and etcd programs (and the browser of the map
page's tests, and the checker of the Prometheus rules), and installing them when missing.

When run as root on a Debian-like system with apt, missing pieces are installed from the
Debian packages; otherwise the error names exactly what to install.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path

from deploy.stack.procs import StackError, is_root

PG_PROGRAMS = ("initdb", "pg_ctl", "pg_basebackup", "postgres", "psql")
REDIS_PROGRAMS = ("redis-server", "redis-cli")
#: Debian's browser, driven by the map page's tests (Playwright launches it; never a download).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_DRIVER = Path("/usr/bin/chromedriver")
BROWSER_PACKAGES = ("chromium", "chromium-driver")
#: Prometheus's checker of rules, alert tests and exposition, from Debian's ``prometheus``.
PROMTOOL = Path("/usr/bin/promtool")
#: etcd, from Debian's ``etcd-server``: the ring pub/sub backend's nodes are kept in it.
ETCD = Path("/usr/bin/etcd")
#: Held while apt-get runs; in apt's own folder, where only root writes.
APT_LOCK = Path("/var/lib/apt/geo-stack-install.lock")


@dataclass(frozen=True, slots=True)
class Binaries:
    pg_bin: Path
    pg_major: int
    redis_server: Path
    redis_cli: Path

    def pg(self, program: str) -> Path:
        return self.pg_bin / program


def _pg_bin_dirs() -> list[tuple[int, Path]]:
    found = []
    for d in Path("/usr/lib/postgresql").glob("*/bin"):
        if d.parent.name.isdigit() and all((d / p).is_file() for p in PG_PROGRAMS):
            found.append((int(d.parent.name), d))
    if not found and shutil.which("pg_ctl") and shutil.which("initdb"):
        # A non-Debian layout: trust PATH. Ask pg_ctl for its major version.
        bindir = Path(shutil.which("pg_ctl")).resolve().parent  # type: ignore[arg-type]
        out = subprocess.run([bindir / "pg_ctl", "--version"], capture_output=True, text=True).stdout
        major = int(out.split()[-1].split(".")[0]) if out else 0
        if all((bindir / p).is_file() for p in PG_PROGRAMS):
            found.append((major, bindir))
    return sorted(found)


def postgis_available(pg_major: int) -> bool:
    """True when the PostGIS extension files exist for this PostgreSQL major version."""
    candidates = [Path(f"/usr/share/postgresql/{pg_major}/extension/postgis.control")]
    sharedir = (
        subprocess.run(["pg_config", "--sharedir"], capture_output=True, text=True).stdout.strip()
        if shutil.which("pg_config")
        else ""
    )
    if sharedir:
        candidates.append(Path(sharedir) / "extension" / "postgis.control")
    return any(c.is_file() for c in candidates)


def _missing_packages() -> list[str]:
    missing = []
    dirs = _pg_bin_dirs()
    if not dirs:
        missing.append("postgresql")
    if not all(shutil.which(p) for p in REDIS_PROGRAMS):
        missing.append("redis-server")
    if dirs and not postgis_available(dirs[-1][0]):
        missing.append(f"postgresql-{dirs[-1][0]}-postgis-3")
    elif not dirs:
        missing.append("postgis")
    return missing


def _apt_install(packages: list[str]) -> None:
    """apt-get the packages; one install at a time on the machine (apt refuses a second one
    while the first holds its lock, so two geo-stack commands or test processes queue here)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"geo-stack: installing Debian packages: {' '.join(packages)} (apt-get, once)", flush=True)
    with open(APT_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for cmd in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        ):
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
            if proc.returncode != 0:
                raise StackError(f"{' '.join(cmd)} failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")


def _install_missing(missing: Callable[[], list[str]], purpose: str) -> None:
    """Install the Debian packages ``missing()`` names, as root; raise naming those still missing.

    Args:
        missing: the packages not installed yet (asked again after installing).
        purpose: what needs them, for the error message.

    Raises:
        StackError: some are missing and cannot be installed here.
    """
    absent = missing()
    if absent and is_root() and shutil.which("apt-get"):
        _apt_install(absent)
        absent = missing()
    if absent:
        raise StackError(f"{purpose} needs Debian packages; install them (as root: apt-get install {' '.join(absent)})")


def _nginx_program() -> Path | None:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").is_file() else None)
    return Path(found) if found else None


def ensure_nginx() -> Path:
    """Locate nginx (the full stack's entry point), installing the Debian package as root.

    Only the program is used: the stack runs its own nginx with its own configuration, never
    the system's nginx service.

    Returns:
        The nginx program.

    Raises:
        StackError: nginx is missing and cannot be installed here.
    """
    # The package's post-install may start the system service on port 80; it is left as the
    # system configures it: the stack does not use it.
    _install_missing(lambda: [] if _nginx_program() else ["nginx"], "the full stack's load balancer")
    program = _nginx_program()
    assert program is not None
    return program


def ensure_binaries() -> Binaries:
    """Locate every program the stack runs, installing missing Debian packages as root.

    Returns:
        Where the programs are.

    Raises:
        StackError: something is missing and cannot be installed here; names the packages.
    """
    missing = _missing_packages()
    if missing:
        if is_root() and shutil.which("apt-get"):
            # "postgis" is a placeholder until PostgreSQL's major version is known.
            _apt_install([p for p in missing if p != "postgis"])
            missing = _missing_packages()
            if missing:
                _apt_install(missing)
                missing = _missing_packages()
        if missing:
            raise StackError(
                "missing programs; install these Debian packages (as root: apt-get install " + " ".join(missing) + ")"
            )
    major, pg_bin = _pg_bin_dirs()[-1]
    if is_root():
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            raise StackError(
                "no 'postgres' user: PostgreSQL refuses to run as root; install the postgresql package"
            ) from None
    return Binaries(
        pg_bin=pg_bin,
        pg_major=major,
        redis_server=Path(shutil.which("redis-server")),  # type: ignore[arg-type]
        redis_cli=Path(shutil.which("redis-cli")),  # type: ignore[arg-type]
    )


def ensure_browser() -> Path:
    """Locate Debian's Chromium, installing ``chromium`` and ``chromium-driver`` as root.

    Returns:
        The browser's executable, ``/usr/bin/chromium``.

    Raises:
        StackError: the browser is missing and cannot be installed here; names the packages.
    """

    def missing() -> list[str]:
        return [pkg for pkg, path in zip(BROWSER_PACKAGES, (CHROMIUM, CHROMIUM_DRIVER)) if not path.is_file()]

    _install_missing(missing, "the browser tests")
    return CHROMIUM


def ensure_promtool() -> Path:
    """Locate ``promtool`` (the observability tests check rules and metrics with it), installing
    Debian's ``prometheus`` package as root.

    Only the program is used: the package's Prometheus service is left as the system sets it up.

    Returns:
        The promtool program.

    Raises:
        StackError: promtool is missing and cannot be installed here.
    """

    def program() -> Path | None:
        found = shutil.which("promtool") or (str(PROMTOOL) if PROMTOOL.is_file() else None)
        return Path(found) if found else None

    _install_missing(lambda: [] if program() else ["prometheus"], "checking the Prometheus rules")
    found = program()
    assert found is not None
    return found


def ensure_etcd() -> Path:
    """Locate ``etcd`` (the ring pub/sub backend's nodes are kept in it), installing Debian's
    ``etcd-server`` package as root.

    Only the program is used: the stack runs its own etcd on loopback with its data under the
    stack folder, never the package's service.

    Returns:
        The etcd program.

    Raises:
        StackError: etcd is missing and cannot be installed here.
    """

    def program() -> Path | None:
        found = shutil.which("etcd") or (str(ETCD) if ETCD.is_file() else None)
        return Path(found) if found else None

    _install_missing(lambda: [] if program() else ["etcd-server"], "the ring pub/sub backend's etcd")
    found = program()
    assert found is not None
    return found
