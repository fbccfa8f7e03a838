"""A throwaway PostgreSQL on a socket directory of its own (no TCP port), for the tests and the
service benchmarks: started with Debian's binaries, stopped and removed afterwards."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

INITDB = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


class NotInstalled(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _as_postgres(*command: str) -> list[str]:
    # initdb refuses to run as root: the cluster belongs to the postgres user then.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else list(command)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[dict[str, str]]:
    """A running cluster; yields libpq settings (host: its socket directory, user, dbname)."""
    if not INITDB:
        raise NotInstalled("PostgreSQL is not installed (.ci/run installs Debian's postgresql)")
    bin_dir = Path(INITDB[-1]).parent
    # Its own directory under /tmp (pytest's are private to root, which postgres cannot enter).
    root = Path(tempfile.mkdtemp(prefix="checkout-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    try:
        subprocess.run(_as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust",
                                    "-U", "postgres", "--no-sync"), check=True,
                       capture_output=True)
        subprocess.run(_as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l",
                                    str(root / "log"), "-o",
                                    f"-k {sockets} -c listen_addresses='' -c fsync=off",
                                    "start"), check=True, capture_output=True)
        yield {"host": str(sockets), "user": "postgres", "dbname": "postgres"}
    finally:
        subprocess.run(_as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                                    "stop"), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
