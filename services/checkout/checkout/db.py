"""Database access: a connection pool whose every new connection reads the credentials again.

The Vault Secrets Operator keeps the service's short-lived PostgreSQL credentials in a Secret
and rotates them; mounted as files (`DB_CREDENTIALS_DIR`: `username`, `password`, and optionally
`host`, `port`, `dbname`), a rotation reaches the next connection without a restart. Without the
directory, libpq's own `PG*` environment applies.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
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
# Every exchange with the server has a client-side deadline too: a connection whose peer has
# gone silent (its packets acknowledged, nothing answered: a dead network path, a failed-over
# address) never receives the server's statement_timeout. Past this it is closed.
QUERY_DEADLINE_SECONDS = STATEMENT_TIMEOUT_MS / 1000 + 0.5
# Requests waiting for a pool connection beyond this many fail at once: a bound on the threads a
# database that has stopped answering can hold. Above what one replica's bursts need (at 200
# requests/s and 0.25 CPU ~20 queue in a CFS period's pause: a line of 20 shed 1-5% of them).
MAX_WAITING = 100
# The circuit breaker: this many failed database calls in a row open it; open, every request
# fails at once (no thread waits on the database, which gets room to recover) and the replica
# is not ready; after BREAKER_RESET_SECONDS one trial call goes through, and closes it or opens
# it again.
BREAKER_FAILURES = 5
BREAKER_RESET_SECONDS = 2.0


class _DeadlineConnection(psycopg.Connection):
    """A connection whose every wait for the server ends at QUERY_DEADLINE_SECONDS: then the
    connection is closed (its state is unknown; the pool discards it) and the call fails with
    OperationalError. On psycopg's Connection.wait and errors._WaitTimeout, read at the pinned
    3.3.9 (requirements.txt; tests/test_checkout_service.py holds it to a dead connection)."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            return super().wait(gen, interval, QUERY_DEADLINE_SECONDS if timeout is None
                                else timeout)
        except psycopg.errors._WaitTimeout:  # noqa: SLF001 - see the docstring
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"no answer from the database in {QUERY_DEADLINE_SECONDS:g} s: "
                "connection closed") from None


class Breaker:
    """A circuit breaker for the database calls: `failures` failed calls in a row open it for
    `reset_seconds`; then one trial call at a time is let through (half-open) until one
    succeeds (closed) or fails (open again).

    Its own, not pybreaker's: pybreaker 1.4.1's CircuitBreaker.call holds one lock around the
    guarded call itself, which would let one request thread at a time use the database."""

    def __init__(self, failures: int = BREAKER_FAILURES,
                 reset_seconds: float = BREAKER_RESET_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.failures, self.reset_seconds, self.clock = failures, reset_seconds, clock
        self._lock = threading.Lock()
        self._failed = 0
        self._opened_at: float | None = None
        self._trial = False
        self.opened = 0  # times it has opened, for the metrics

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "open" if self.clock() - self._opened_at < self.reset_seconds else "half-open"

    def admit(self) -> bool:
        """Whether a call may go to the database now (a half-open admission is the trial)."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self.clock() - self._opened_at < self.reset_seconds or self._trial:
                return False
            self._trial = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._failed, self._opened_at, self._trial = 0, None, False

    def failed(self) -> bool:
        """Count a failed call; whether it opened the breaker."""
        with self._lock:
            self._failed += 1
            if self._trial or (self._opened_at is None and self._failed >= self.failures):
                self._opened_at, self._trial = self.clock(), False
                self.opened += 1
                return True
            return False


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
    def __init__(self, max_size: int = 5, timeout: float = 1.0, breaker: Breaker | None = None):
        self.timeout = timeout
        self.breaker = breaker or Breaker()
        # `kwargs` as a callable: each new connection logs in with the credentials of now.
        self.pool = ConnectionPool(
            kwargs=lambda: {**connection_settings(), "connect_timeout": max(1, int(timeout)),
                            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
            min_size=1, max_size=max_size, timeout=timeout, max_waiting=MAX_WAITING, open=False,
            # A connection lives ten minutes at most: one opened with a login the operator has
            # since replaced is gone well before Vault revokes that login.
            max_lifetime=MAX_LIFETIME_SECONDS, connection_class=_DeadlineConnection,
            check=ConnectionPool.check_connection)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A pool connection; DatabaseUnavailable when the database cannot serve now (the
        breaker open included: then nothing waits)."""
        if not self.breaker.admit():
            raise DatabaseUnavailable("circuit breaker open: the database failed "
                                      f"{self.breaker.failures} calls in a row")
        try:
            with self.pool.connection() as conn:
                yield conn
        except (PoolTimeout, TooManyRequests, psycopg.OperationalError) as error:
            if self.breaker.failed():
                # Open now: the pool's idle connections are suspect (a dead path leaves every
                # one waiting for the deadline in turn); the trial gets a new one.
                self.pool.drain()
            raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error
        except BaseException:
            self.breaker.succeeded()  # the database answered; the caller's own error is not its
            raise
        self.breaker.succeeded()

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    def ready(self) -> bool:
        """Whether the database serves this replica now (readiness): not while the breaker is
        open, and only if a query answers through the breaker (a probe is a call like any)."""
        try:
            with self.connection() as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 - not ready is the answer, whatever failed
            return False
