"""Finding the PostgreSQL, PostGIS and Redis programs, and installing them when missing.

When run as root on a Debian-like system with apt, missing pieces are installed from the
Debian packages; otherwise the error names exactly what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from deploy.stack.procs import StackError, is_root

PG_PROGRAMS = ("initdb", "pg_ctl", "pg_basebackup", "postgres", "psql")
REDIS_PROGRAMS = ("redis-server", "redis-cli")


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
    sharedir = subprocess.run(
        ["pg_config", "--sharedir"], capture_output=True, text=True
    ).stdout.strip() if shutil.which("pg_config") else ""
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
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"geo-stack: installing Debian packages: {' '.join(packages)} (apt-get, once)", flush=True)
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            raise StackError(f"{' '.join(cmd)} failed: {(proc.stderr or proc.stdout).strip()[-2000:]}")


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
                "missing programs; install these Debian packages (as root: apt-get install "
                + " ".join(missing) + ")"
            )
    major, pg_bin = _pg_bin_dirs()[-1]
    if is_root():
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            raise StackError("no 'postgres' user: PostgreSQL refuses to run as root; install the postgresql package") from None
    return Binaries(
        pg_bin=pg_bin,
        pg_major=major,
        redis_server=Path(shutil.which("redis-server")),  # type: ignore[arg-type]
        redis_cli=Path(shutil.which("redis-cli")),  # type: ignore[arg-type]
    )
