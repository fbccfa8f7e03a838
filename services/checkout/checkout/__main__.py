"""`python -m checkout serve` (the container's command) or `python -m checkout migrate`."""

from __future__ import annotations

import os
import signal
import sys
import threading

import psycopg

from checkout.app import Service
from checkout.db import Database, connection_settings
from checkout.migrate import migrate


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command == "migrate":
        with psycopg.connect(**connection_settings()) as conn:
            for name in migrate(conn):
                print(f"applied {name}")
        return 0
    if command != "serve":
        print("usage: python -m checkout [serve|migrate]", file=sys.stderr)
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
