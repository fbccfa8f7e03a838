"""`python -m checkout serve` (the container's command) or `python -m checkout migrate [STEP]`
(every pending migration, or those up to and including STEP: the golden path's PreSync Jobs)."""

from __future__ import annotations

import os
import signal
import sys
import threading

import psycopg

from checkout.app import Service
from checkout.db import Database, connection_settings
from checkout.migrate import UnknownStep, migrate


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command == "migrate" and len(argv) <= 2:
        with psycopg.connect(**connection_settings()) as conn:
            try:
                applied = migrate(conn, argv[1] if len(argv) == 2 else None)
            except UnknownStep as error:
                print(f"checkout migrate: {error}", file=sys.stderr)
                return 2
            for name in applied:
                print(f"applied {name}")
            if not applied:
                print("up to date")
        return 0
    if command != "serve":
        print("usage: python -m checkout [serve | migrate [STEP]]", file=sys.stderr)
        return 2
    database = Database()
    database.open()
    service = Service(database, drain_seconds=float(os.environ.get("DRAIN_SECONDS", "5")))
    server = service.serve(port=int(os.environ.get("PORT", "8080")))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=service.stop).start())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
