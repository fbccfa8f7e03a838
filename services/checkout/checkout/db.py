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
# The circuit breaker: this many database calls in a row failed by the database (not a pool
# wait this replica's own load ran out of) open it; open, every request
# fails at once (no thread waits on the database, which gets room to recover) and the replica
# is not ready; after BREAKER_RESET_SECONDS one trial call goes through, and closes it or opens
# it again.
BREAKER_FAILURES = 5
BREAKER_RESET_SECONDS = 2.0
# A connection idle longer than this is checked (an empty query) before a request gets it: one
# that worked a moment ago is not, which saves a round trip on nearly every request (under the
# slow-database benchmark's 500 ms, half of each request's time) and still catches the
# connections a failover or a restart broke while they sat in the pool.
IDLE_CHECK_SECONDS = 1.0


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


def _check_if_idle(conn: Any) -> None:
    """The pool's check: ConnectionPool.check_connection, for a connection idle too long."""
    if time.monotonic() - getattr(conn, "last_used", 0.0) > IDLE_CHECK_SECONDS:
        ConnectionPool.check_connection(conn)


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

    def admit(self) -> str | None:
        """Whether a call may go to the database now: "closed", "trial" (the one call of the
        half-open state; its outcome must reach succeeded, failed or abandoned) or None."""
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self.clock() - self._opened_at < self.reset_seconds or self._trial:
                return None
            self._trial = True
            return "trial"

    def abandoned(self, admission: str | None) -> None:
        """A call that ended telling nothing of the database (this replica's pool had no
        connection free for it): if it was the trial, the next call may be the trial instead."""
        if admission == "trial":
            with self._lock:
                self._trial = False

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
        self._served_at = float("-inf")  # a connection handed out or a call answered, last
        # `kwargs` as a callable: each new connection logs in with the credentials of now.
        self.pool = ConnectionPool(
            kwargs=lambda: {**connection_settings(), "connect_timeout": max(1, int(timeout)),
                            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
            # A fixed size: a pool that grows under a burst opens connections one at a time,
            # each a login's round trips (a second under the slow-database benchmark's latency).
            min_size=max_size, max_size=max_size, timeout=timeout, max_waiting=MAX_WAITING, open=False,
            # A connection lives ten minutes at most: one opened with a login the operator has
            # since replaced is gone well before Vault revokes that login.
            max_lifetime=MAX_LIFETIME_SECONDS, connection_class=_DeadlineConnection,
            check=_check_if_idle)

    @contextmanager
    def connection(self) -> Iterator[Any]:
        """A pool connection; DatabaseUnavailable when the database cannot serve now (the
        breaker open included: then nothing waits)."""
        admission = self.breaker.admit()
        if admission is None:
            raise DatabaseUnavailable("circuit breaker open: the database failed "
                                      f"{self.breaker.failures} calls in a row")
        try:
            with self.pool.connection() as conn:
                self._served_at = time.monotonic()
                yield conn
                conn.last_used = self._served_at = time.monotonic()
        except (PoolTimeout, TooManyRequests, psycopg.OperationalError) as error:
            if isinstance(error, (PoolTimeout, TooManyRequests)) and self._served_lately():
                # No connection free, while the pool's connections have been serving requests
                # within the pool's wait: this replica is saturated, the database is not
                # failing. The request is shed and the breaker counts nothing, so a slow
                # database keeps serving what the pool can carry (bench/slow_database.py).
                self.breaker.abandoned(admission)
                raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error
            # The database failed the call: the connection lost, no answer by the deadline, a
            # statement cancelled at statement_timeout, or no connection to be had while none
            # has served lately (the pool cannot log in, or every connection is stuck).
            if self.breaker.failed():
                # Open now: the pool's idle connections are suspect (a dead path leaves every
                # one waiting for the deadline in turn); the trial gets a new one.
                self.pool.drain()
            raise DatabaseUnavailable(f"{type(error).__name__}: {error}") from error
        except BaseException:
            self.breaker.succeeded()  # the database answered; the caller's own error is not its
            raise
        self.breaker.succeeded()

    def _served_lately(self) -> bool:
        """Whether a connection was handed to a request, or a call succeeded, within the
        pool's wait plus the longest a call may take (the deadline): a database that serves
        at all hands a connection on within that. (Counting connections in use would not do:
        one passing from a request to the next waiter is in neither's hands for a moment.)"""
        return time.monotonic() - self._served_at <= self.timeout + QUERY_DEADLINE_SECONDS

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
