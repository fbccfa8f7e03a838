"""Schema migrations: the SQL files of migrations/ in order, each once, recorded in a table.

`migrate(conn, through)` applies what is pending up to and including the step `through` (a
file name without `.sql`): the golden path runs one Argo CD PreSync Job per step of the service
spec, in order, each with its step's name, so an expand ships with the release that needs it and
a contract only when the spec lets it. One migrator at a time (an advisory lock); each file in
its own transaction.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
LOCK = 0x636865636B6F7574  # pg_advisory_lock key: "checkout"


class UnknownStep(ValueError):
    pass


def steps() -> list[str]:
    """Every migration step, in order (file names without .sql)."""
    return [p.stem for p in sorted(MIGRATIONS.glob("*.sql"))]


def pending(conn: psycopg.Connection) -> list[Path]:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, "
                 "applied_at timestamptz NOT NULL DEFAULT now())")
    done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    return [p for p in sorted(MIGRATIONS.glob("*.sql")) if p.name not in done]


def migrate(conn: psycopg.Connection, through: str | None = None) -> list[str]:
    """Apply what is pending (up to and including `through`); the names applied."""
    if through is not None and through not in steps():
        raise UnknownStep(f"no migration {through!r}; known: {', '.join(steps())}")
    applied = []
    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
    try:
        for path in pending(conn):
            if through is not None and path.stem > through:
                break
            with conn.transaction():
                conn.execute(path.read_text(encoding="utf-8"))
                conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
            applied.append(path.name)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    return applied
