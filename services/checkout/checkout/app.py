"""The HTTP API: orders in PostgreSQL, probes, Prometheus metrics and a graceful stop.

    GET  /live, /healthz   the process serves (liveness)
    GET  /ready            ready for traffic: not stopping, and the database answers
    GET  /metrics          Prometheus: http_requests_total{service,method,route,code} and
                           http_request_duration_seconds{service,method,route} (what the golden
                           path's SLO rules and canary analysis read)
    POST /orders           {"item": str, "quantity": int} -> 201 {"id": int}
    GET  /orders/<id>      200 {"id", "item", "quantity"} or 404

Every request (probes and /metrics aside) is a trace span, and each query a span inside it
(checkout/tracing.py). On SIGTERM it turns not-ready at once (the load balancer stops sending),
keeps serving for the drain period (requests already routed to it), then stops accepting,
flushes its spans and closes the pool.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from checkout.db import Database, DatabaseUnavailable
from checkout.tracing import Tracing

SERVICE = "checkout"
LISTEN_BACKLOG = 128  # connections the kernel completes and queues before the server accepts them
ORDER = re.compile(r"/orders/(\d{1,18})")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "HTTP requests served.",
                                ["service", "method", "route", "code"], registry=self.registry)
        self.duration = Histogram(
            "http_request_duration_seconds", "Time to serve an HTTP request.",
            ["service", "method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0))


class Orders:
    """The orders table as this release reads and writes it: the `sku` column (migrations
    0002-0004 renamed `item` to `sku`; the API keeps calling it `item`, so clients see no
    change)."""

    insert = "INSERT INTO orders (sku, quantity) VALUES (%s, %s) RETURNING id"
    select = "SELECT id, sku, quantity FROM orders WHERE id = %s"


MAX_BODY_BYTES = 10_000
CLIENT_TIMEOUT_SECONDS = 10.0


class _Server(ThreadingHTTPServer):
    """A thread per connection. The listen backlog is LISTEN_BACKLOG, not the stdlib's 5: a
    burst of new connections beyond the backlog has its SYNs dropped, and each of those requests
    waits for TCP's one-second retransmission (the first load run here put a second on the 95th
    percentile at 20 requests/s from 10 clients)."""

    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


class Service:
    """The service's state: its database, its metrics, whether it is stopping."""

    def __init__(self, database: Database, drain_seconds: float = 5.0,
                 orders: type[Orders] = Orders, tracing: Tracing | None = None,
                 client_timeout: float = CLIENT_TIMEOUT_SECONDS):
        # A client that sends its request slower than this (headers or body) is cut off: a
        # handful of slow ones would otherwise hold every thread.
        self.client_timeout = client_timeout
        self.database = database
        self.tracing = tracing or Tracing()
        self.orders = orders
        self.metrics = Metrics()
        self.drain_seconds = drain_seconds
        self.stopping = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    def ready(self) -> bool:
        return not self.stopping.is_set() and self.database.ready()

    def serve(self, host: str = "0.0.0.0", port: int = 8080) -> ThreadingHTTPServer:  # noqa: S104
        service = self

        class Handler(_Handler):
            owner = service
            timeout = service.client_timeout  # the connection's socket timeout

        self.server = _Server((host, port), Handler)
        return self.server

    def stop(self) -> None:
        """Graceful stop (SIGTERM): not ready now, serve through the drain period, then stop."""
        self.stopping.set()
        time.sleep(self.drain_seconds)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.tracing.shutdown()
        self.database.close()


@contextmanager
def _untraced() -> Iterator[None]:
    yield None


class _Handler(BaseHTTPRequestHandler):
    owner: Service
    server_version = "checkout"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # one line per request is the metrics' job, not stderr's

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode())

    def _observe(self, route: str, handler, traced: bool = True) -> None:
        started = time.perf_counter()
        status = HTTPStatus.INTERNAL_SERVER_ERROR
        tracing = self.owner.tracing
        with (tracing.request(self.command, route, self.path.split("?", 1)[0], self.headers)
              if traced else _untraced()) as span:
            try:
                status = handler()
            except DatabaseUnavailable:
                # Fast and retryable: the client (or the load balancer) tries again; the SLO
                # counts it as an error all the same.
                status = HTTPStatus.SERVICE_UNAVAILABLE
                self._send(status, json.dumps({"error": "database unavailable"}).encode(),
                           headers={"Retry-After": "1"})
            except Exception:  # noqa: BLE001 - a 500, counted, and the process serves on
                self._json(status, {"error": "internal error"})
            finally:
                if span is not None:
                    tracing.respond(span, int(status))
                metrics = self.owner.metrics
                metrics.requests.labels(SERVICE, self.command, route, str(int(status))).inc()
                metrics.duration.labels(SERVICE, self.command, route).observe(
                    time.perf_counter() - started)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0]
        # Probes are counted, not traced: a span every few seconds per pod says nothing.
        if path in ("/live", "/healthz"):
            self._observe(path, lambda: self._status(HTTPStatus.OK, {"status": "alive"}),
                          traced=False)
        elif path == "/ready":
            self._observe(path, self._ready, traced=False)
        elif path == "/metrics":
            self._send(HTTPStatus.OK, generate_latest(self.owner.metrics.registry),
                       CONTENT_TYPE_LATEST)
        elif (match := ORDER.fullmatch(path)) is not None:
            self._observe("/orders/{id}", lambda: self._get_order(int(match.group(1))))
        else:
            self._observe("other", lambda: self._status(HTTPStatus.NOT_FOUND,
                                                        {"error": "not found"}))

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        if self.path.split("?", 1)[0] == "/orders":
            self._observe("/orders", self._create_order)
        else:
            self._observe("other", lambda: self._status(HTTPStatus.NOT_FOUND,
                                                        {"error": "not found"}))

    def _status(self, status: int, payload: Any) -> int:
        self._json(status, payload)
        return status

    def _ready(self) -> int:
        if self.owner.ready():
            return self._status(HTTPStatus.OK, {"status": "ready"})
        reason = "stopping" if self.owner.stopping.is_set() else "database unavailable"
        return self._status(HTTPStatus.SERVICE_UNAVAILABLE, {"status": reason})

    def _create_order(self) -> int:
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isdigit():  # "-1" would read until the client closes; "x" is no size
            self.close_connection = True
            return self._status(HTTPStatus.BAD_REQUEST, {"error": "bad Content-Length"})
        length = int(declared)
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body is not read
            return self._status(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "too large"})
        try:
            body = json.loads(self.rfile.read(length) or b"null")
            item, quantity = body["item"], body["quantity"]
            if not (isinstance(item, str) and 1 <= len(item) <= 200
                    and isinstance(quantity, int) and 1 <= quantity <= 1000):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self._status(HTTPStatus.BAD_REQUEST, {
                "error": "expected {\"item\": 1-200 characters, \"quantity\": 1-1000}"})
        with self.owner.database.connection() as conn, \
                self.owner.tracing.query("INSERT", "orders"):
            (order_id,) = conn.execute(self.owner.orders.insert, (item, quantity)).fetchone()
        return self._status(HTTPStatus.CREATED, {"id": order_id})

    def _get_order(self, order_id: int) -> int:
        with self.owner.database.connection() as conn, \
                self.owner.tracing.query("SELECT", "orders"):
            row = conn.execute(self.owner.orders.select, (order_id,)).fetchone()
        if row is None:
            return self._status(HTTPStatus.NOT_FOUND, {"error": "no such order"})
        return self._status(HTTPStatus.OK, {"id": row[0], "item": row[1], "quantity": row[2]})
