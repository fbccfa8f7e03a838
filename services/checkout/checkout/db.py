"""Database access: a connection pool whose every new connection reads the credentials again.

The Vault Secrets Operator keeps the service's short-lived PostgreSQL credentials in a Secret
and rotates them; mounted as files (`DB_CREDENTIALS_DIR`: `username`, `password`, and optionally
`host`, `port`, `dbname`), a rotation reaches the next connection without a restart. Without the
directory, libpq's own `PG*` environment applies.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout, TooManyRequests

FILES = ("host", "port", "dbname", "username", "password")
MAX_LIFETIME_SECONDS = 600.0
# A statement the server runs longer than this is cancelled by the server: a slow query fails
# fast instead of holding a pool connection and a request thread (the SLO's p99 is 300 ms).
STATEMENT_TIMEOUT_MS = 1000
# Requests waiting for a pool connection beyond this many fail at once instead of queueing
# behind a database that has stopped answering.
MAX_WAITING = 20


class DatabaseUnavailable(Exception):
    """The database cannot serve the request now (no connection in time, too many waiting, a
    statement cancelled, the connection lost): the service answers 503, not 500."""


def connection_settings(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for psycopg.connect: the credential files' values, read now."""
    environ = dict(os.environ if environ is None else environ)
    settings: dict[str, Any] = {"autocommit": True}
    directory = environ.get("DB_CREDENTIALS_DIR")
    if not directory:
        return settings
    for name in FILES:
        path = Path(directory) / name
        if path.is_file():
            settings["user" if name == "username" else name] = (
                path.read_text(encoding="utf-8").strip())
    return settings


class Database:
    def __init__(self, max_size: int = 5, timeout: float = 2.0):
        self.timeout = timeout
        # `kwargs` as a callable: each new connection logs in with the credentials of now.
        self.pool = ConnectionPool(
            kwargs=lambda: {**connection_settings(), "connect_timeout": max(1, int(timeout)),
                            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
            min_size=1, max_size=max_size, timeout=timeout, max_waiting=MAX_WAITING, open=False,
            # A connection lives ten minutes at most: one opened with a login the operator has
            # since replaced is gone well before Vault revokes that login.
            max_lifetime=MAX_LIFETIME_SECONDS,
            check=ConnectionPool.check_connection)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A pool connection; DatabaseUnavailable when the database cannot serve now."""
        try:
            with self.pool.connection() as conn:
                yield conn
        except (PoolTimeout, TooManyRequests, psycopg.OperationalError) as error:
            raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    def ready(self) -> bool:
        """Whether the pool hands out a working connection now (readiness)."""
        try:
            with self.pool.connection(timeout=self.timeout) as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - not ready is the answer, whatever failed
            return False
