"""Disaster-recovery drills against a stack's real database, with boto3: evidence, not belief.

`platformctl drill restore STACK --checksum-query SQL`
    Restores the latest recovery point of the stack's database (point-in-time recovery to the
    latest restorable time) into a scratch instance in the same database subnets and security
    groups, single-AZ, without deletion protection; waits until it is available; gives it a
    drill-only master password (random, never written anywhere); runs the operator's checksum
    query on it (from a host that reaches the database subnets); records RTO (from the restore
    request to the query's answer) and RPO (how far behind the moment of the drill the latest
    restorable time was) in a timestamped report under drills/; and deletes the scratch instance,
    whatever happened, interrupts included. `--expect` fails the drill on another answer.

`platformctl drill failover STACK`
    Reboots the stack's multi-AZ database with a forced failover and times it until RDS reports
    it available again and it takes writes (`--dsn-env`: a login, and the server says it is not
    in recovery) or, without a login, its endpoint accepts connections; records the primary's
    AZ before and after.

`--dry-run` prints what would be done, with the names it would use, and calls nothing.

The AWS side is a `boto3` RDS client the caller passes in (the CLI makes one for the stack's
region); the tests pass one backed by moto. Connecting to the database is a function too
(`connect(host, port, user, password, dbname)` -> a DB-API connection), psycopg by default.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPORTS_DIR = "drills"
SCHEMA = "platformctl.drill/v1"
DRILL_TAG = "platform.example.org/drill"


class DrillError(Exception):
    """The drill cannot go on (no recovery point, a refused call, a timeout): recorded."""


@dataclass
class Report:
    kind: str  # restore | failover
    stack: str
    region: str
    source: str  # the stack's database instance
    started_at: str
    status: str = "running"  # passed | failed | interrupted
    scratch: str | None = None
    finished_at: str | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    checksum: dict[str, Any] | None = None
    failover: dict[str, Any] | None = None
    cleanup: dict[str, Any] | None = None
    error: str | None = None

    def document(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Clock:
    """Monotonic seconds for durations, wall time for the report."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.monotonic, self.sleep = monotonic, sleep


@contextmanager
def _outcome(report: Report) -> Iterator[None]:
    """How a drill ended, recorded: passed when its body returns, failed on a DrillError,
    interrupted on Ctrl-C (both swallowed: the report says it, the caller cleans up)."""
    try:
        yield
        report.status = "passed"
    except DrillError as error:
        report.status, report.error = "failed", str(error)
    except KeyboardInterrupt:
        report.status, report.error = "interrupted", "interrupted by the operator"


def _step(report: Report, name: str, started: float, clock: _Clock, **details: Any) -> None:
    report.steps.append({"step": name, "at": _stamp(_now()),
                         "seconds": round(clock.monotonic() - started, 1), **details})


def _instance(rds: Any, identifier: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        (instance,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except ClientError as error:
        raise DrillError(f"database {identifier}: {error.response['Error']['Message']}") from None
    return instance


def _wait_available(rds: Any, identifier: str, clock: _Clock, deadline: float,
                    poll: float) -> dict[str, Any]:
    while True:
        instance = _instance(rds, identifier)
        if instance.get("DBInstanceStatus") == "available":
            return instance
        if clock.monotonic() > deadline:
            raise DrillError(f"{identifier} not available in time (status "
                             f"{instance.get('DBInstanceStatus')})")
        clock.sleep(poll)


def psycopg_connect(host: str, port: int, user: str, password: str, dbname: str,
                    ca_bundle: str | None = None) -> Any:
    """A login to the scratch instance: its certificate and name verified against the stack's
    RDS CA bundle (an absolute path) where it names one, else encrypted only."""
    import psycopg

    tls = ({"sslmode": "verify-full", "sslrootcert": ca_bundle} if ca_bundle
           else {"sslmode": "require"})
    return psycopg.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                           connect_timeout=10, autocommit=True, **tls)


def scratch_name(source: str, moment: datetime) -> str:
    return f"{source}-drill-{moment:%Y%m%d%H%M%S}"[:63]


def restore_plan(stack: str, region: str, source: str, checksum_query: str,
                 moment: datetime | None = None) -> list[str]:
    """What `drill restore` does, step by step, with the names it would use (--dry-run)."""
    scratch = scratch_name(source, moment or _now())
    return [
        f"1. describe {source} ({region}): its latest restorable time, subnet group, security "
        "groups, class",
        f"2. restore it to the latest restorable time as {scratch} (single-AZ, no deletion "
        "protection, same subnet group and security groups, tagged "
        f"{DRILL_TAG}=restore)",
        f"3. wait until {scratch} is available; set a drill-only master password (random, "
        "never written)",
        f"4. run the checksum query on it: {checksum_query}",
        f"5. record RTO and RPO in {REPORTS_DIR}/{stack}-restore-<time>.json",
        f"6. delete {scratch} (no final snapshot, its automated backups too), whatever happened",
    ]


def restore(rds: Any, *, stack: str, region: str, source: str, username: str, dbname: str,
            checksum_query: str, expect: str | None = None,
            connect: Callable[..., Any] = psycopg_connect, clock: _Clock | None = None,
            timeout_seconds: float = 3600, poll_seconds: float = 30) -> Report:
    """The restore drill (module docstring). Never raises for a failed drill: the report says
    how it ended; an interrupt (Ctrl-C) is recorded as such, after the scratch instance is
    deleted."""
    clock = clock or _Clock()
    began, started = _now(), clock.monotonic()
    deadline = started + timeout_seconds
    report = Report("restore", stack, region, source, _stamp(began))
    scratch = scratch_name(source, began)
    try:
        with _outcome(report):
            _restore_and_check(rds, report, scratch, source, username, dbname,
                                         checksum_query, expect, connect, clock, began,
                                         started, deadline, poll_seconds)
    finally:
        if report.scratch is not None:
            report.cleanup = _delete(rds, scratch)
            if not report.cleanup["deleted"] and report.status == "passed":
                report.status = "failed"
                report.error = f"the scratch instance {scratch} was not deleted"
        report.finished_at = _stamp(_now())
    return report


def _restore_and_check(rds: Any, report: Report, scratch: str, source: str, username: str,
                       dbname: str, checksum_query: str, expect: str | None,
                       connect: Callable[..., Any], clock: _Clock, began: datetime,
                       started: float, deadline: float, poll_seconds: float) -> None:
    instance = _instance(rds, source)
    latest = instance.get("LatestRestorableTime")
    backups = instance.get("BackupRetentionPeriod") or 0
    if not backups or latest is None:
        raise DrillError(f"{source} has no recovery point (automated backups "
                         f"{'off' if not backups else 'not yet taken'})")
    report.rpo_seconds = round(max(0.0, (began - latest).total_seconds()), 1)
    _step(report, "latest recovery point", started, clock, latest=_stamp(latest))
    subnet_group = (instance.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
    groups = [g["VpcSecurityGroupId"] for g in instance.get("VpcSecurityGroups") or []]
    request: dict[str, Any] = {
        "SourceDBInstanceIdentifier": source, "TargetDBInstanceIdentifier": scratch,
        "UseLatestRestorableTime": True, "MultiAZ": False, "PubliclyAccessible": False,
        "DeletionProtection": False, "DBInstanceClass": instance["DBInstanceClass"],
        "Tags": [{"Key": DRILL_TAG, "Value": "restore"}]}
    if subnet_group:
        request["DBSubnetGroupName"] = subnet_group
    if groups:
        request["VpcSecurityGroupIds"] = groups
    from botocore.exceptions import ClientError

    try:
        rds.restore_db_instance_to_point_in_time(**request)
    except ClientError as error:
        raise DrillError(f"restore refused: {error.response['Error']['Message']}") from None
    report.scratch = scratch  # from here on, the scratch instance exists: delete it
    _step(report, "restore requested", started, clock, scratch=scratch)
    _wait_available(rds, scratch, clock, deadline, poll_seconds)
    _step(report, "restored instance available", started, clock)
    password = secrets.token_urlsafe(24)
    rds.modify_db_instance(DBInstanceIdentifier=scratch, MasterUserPassword=password,
                           ApplyImmediately=True)
    restored = _wait_available(rds, scratch, clock, deadline, poll_seconds)
    endpoint = restored.get("Endpoint") or {}
    result = _query(connect, endpoint, username, password, dbname, checksum_query, clock,
                    deadline, poll_seconds)
    report.rto_seconds = round(clock.monotonic() - started, 1)
    report.checksum = {"query": checksum_query, "result": result, "expected": expect}
    _step(report, "checksum query answered", started, clock)
    if expect is not None and result != expect:
        raise DrillError(f"checksum {result!r}, expected {expect!r}")


def _query(connect: Callable[..., Any], endpoint: dict[str, Any], username: str, password: str,
           dbname: str, query: str, clock: _Clock, deadline: float, poll: float) -> str:
    """The checksum query's first column of its first row, as text; retried while the new
    password is being applied or the endpoint does not answer yet."""
    last: Exception | None = None
    while clock.monotonic() <= deadline:
        try:
            with connect(endpoint.get("Address"), int(endpoint.get("Port") or 5432), username,
                         password, dbname) as conn:
                row = conn.execute(query).fetchone()
            return "" if row is None else str(row[0])
        except Exception as error:  # noqa: BLE001 - retried until the deadline, then reported
            last = error
            clock.sleep(poll)
    raise DrillError(f"the checksum query did not run: {last}")


def _delete(rds: Any, identifier: str) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True,
                               DeleteAutomatedBackups=True)
        return {"deleted": True, "instance": identifier}
    except (ClientError, BotoCoreError) as error:
        return {"deleted": False, "instance": identifier, "error": str(error),
                "by_hand": f"aws rds delete-db-instance --db-instance-identifier {identifier} "
                           "--skip-final-snapshot --delete-automated-backups"}


def failover_plan(stack: str, region: str, source: str) -> list[str]:
    return [
        f"1. describe {source} ({region}): it must be multi-AZ; note the primary's AZ",
        f"2. reboot {source} with a forced failover (its standby becomes the primary)",
        "3. time it until RDS reports it available and it takes writes (--dsn-env) or its "
        "endpoint accepts connections",
        f"4. record the time and the AZs in {REPORTS_DIR}/{stack}-failover-<time>.json",
    ]


def tcp_probe(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=5):
            return True
    except OSError:
        return False


def writable_probe(dsn: str) -> Callable[[str, int], bool]:
    """A probe that answers True once the database at the endpoint takes writes: a login (the
    operator's DSN, e.g. from `vault read database/creds/...`) on the primary, not in recovery."""
    def probe(host: str, port: int) -> bool:
        import psycopg

        try:
            with psycopg.connect(dsn, host=host, port=port, connect_timeout=5,
                                 autocommit=True) as conn:
                row = conn.execute("SELECT NOT pg_is_in_recovery()").fetchone()
            return bool(row and row[0])
        except psycopg.Error:
            return False
    return probe


def failover(rds: Any, *, stack: str, region: str, source: str,
             probe: Callable[[str, int], bool] = tcp_probe, clock: _Clock | None = None,
             timeout_seconds: float = 1800, poll_seconds: float = 5) -> Report:
    clock = clock or _Clock()
    began, started = _now(), clock.monotonic()
    deadline = started + timeout_seconds
    report = Report("failover", stack, region, source, _stamp(began))
    try:
        with _outcome(report):
            _fail_over(rds, report, source, probe, clock, started, deadline, poll_seconds)
    finally:
        report.finished_at = _stamp(_now())
    return report


def _fail_over(rds: Any, report: Report, source: str, probe: Callable[[str, int], bool],
               clock: _Clock, started: float, deadline: float, poll_seconds: float) -> None:
    instance = _instance(rds, source)
    if not instance.get("MultiAZ"):
        raise DrillError(f"{source} is single-AZ: there is no standby to fail over to "
                         "(a reboot would only restart it)")
    before = instance.get("AvailabilityZone")
    from botocore.exceptions import ClientError

    try:
        rds.reboot_db_instance(DBInstanceIdentifier=source, ForceFailover=True)
    except ClientError as error:
        raise DrillError(f"failover refused: {error.response['Error']['Message']}") from None
    _step(report, "failover requested", started, clock, primary_az=before)
    after = _wait_available(rds, source, clock, deadline, poll_seconds)
    _step(report, "available", started, clock)
    endpoint = after.get("Endpoint") or {}
    while not probe(endpoint.get("Address"), int(endpoint.get("Port") or 5432)):
        if clock.monotonic() > deadline:
            raise DrillError("the endpoint did not accept connections in time")
        clock.sleep(poll_seconds)
    report.rto_seconds = round(clock.monotonic() - started, 1)
    _step(report, "writable", started, clock)
    report.failover = {"primary_az_before": before,
                       "primary_az_after": after.get("AvailabilityZone")}


def write_report(report: Report, directory: Path) -> Path:
    """drills/<stack>-<kind>-<time>.json: what a readiness review links as evidence."""
    directory.mkdir(parents=True, exist_ok=True)
    moment = report.started_at.replace("-", "").replace(":", "")
    path = directory / f"{report.stack}-{report.kind}-{moment}.json"
    path.write_text(json.dumps(report.document(), indent=2, default=str) + "\n",
                    encoding="utf-8")
    return path
