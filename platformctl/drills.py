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

`platformctl drill rollback SERVICE --env ENV`
    Rolls the service in ENV back to its release before the one it runs, the way an operator
    would, and times each part: what `platformctl promote --record` writes (the environment's
    Application at the earlier digest and revision, and a rollback record), committed and pushed
    to the branch Argo CD's root Application follows; Argo CD syncing that commit (the drill
    requests the syncs where the environment does not sync by itself: prod); the service's
    Application synced and healthy; the Argo Rollouts Rollout healthy on the earlier digest.
    RTO: from the push to that. It does not roll forward: the report gives the command.

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
from collections.abc import Callable, Iterable, Iterator
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
    kind: str  # restore | failover | rollback
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
    rollback: dict[str, Any] | None = None
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


# -- the rollback drill -------------------------------------------------------------------------

ARGOCD_NAMESPACE = "argocd"
ROOT_APPLICATION = "root"


def rollback_record(project: Path, spec: Any, env: str, record_path: str | None = None,
                    follows_branch: bool = False) -> Any:
    """The release record the drill returns `env` to: `record_path`, or the newest record of
    `env` of another release than the one `env` runs now: another digest, or (an environment
    pinned to revisions, not `follows_branch`) the same image at another revision of the
    manifests; DrillError when there is none."""
    from platformctl import golden, releases

    if record_path is not None:
        return releases.read_record(project / record_path, record_path)
    current = golden.deployed_releases(project, spec, [env]).get(env)
    if current is None:
        raise DrillError(f"{spec.team}/{spec.name} does not run in {env} "
                         f"({golden.application_path(spec, env)} is missing)")
    earlier = [r for r in releases.records(project, spec)
               if r.target == env and (r.digest != current.digest or (
                   not follows_branch and r.commit != current.revision))]
    if not earlier:
        raise DrillError(f"no earlier release of {spec.team}/{spec.name} in {env} to roll back "
                         f"to: its records under {releases.records_dir(spec)} name only what "
                         f"it runs now ({current.digest} at {current.revision[:12]})")
    return earlier[-1]


def rollback_plan(spec: Any, env: str, record: Any, current: Any, branch: str,
                  auto_sync: bool) -> list[str]:
    name = f"{spec.team}-{spec.name}"
    return [
        f"1. write what `platformctl promote {spec.team}/{spec.name} --to {env} --record "
        f"{record.path}` writes: {env}'s Application at {record.digest} (revision "
        f"{record.commit[:12]}; it runs {current.digest} now) and a rollback record",
        f"2. commit it and push it to {branch}, the branch Argo CD's root Application follows",
        ("3. Argo CD syncs by itself in this environment (autoSync): wait for the root "
         "Application to sync the commit" if auto_sync else
         f"3. request a sync of the root Application at the commit ({env} does not sync by "
         "itself) and wait for it"),
        (f"4. wait for the Application {name} to be synced and healthy at {record.digest}"
         if auto_sync else
         f"4. request a sync of the Application {name} and wait for it to be synced and "
         f"healthy at {record.digest}"),
        f"5. wait for the Rollout {spec.name} to be healthy on {record.digest}: RTO from the push",
        f"6. record the steps in {REPORTS_DIR}/{env}-rollback-<time>.json; rolling forward is a "
        "promotion again (the report gives the command)",
    ]


def kubectl_json(context: str | None = None) -> Callable[[list[str]], Any]:
    """`kubectl [--context C] ARGS` with its JSON answer parsed (the real kubectl of
    platformctl.helmbin where installed, else the one on PATH); DrillError when it fails."""
    import subprocess

    def run(args: list[str]) -> Any:
        from platformctl import helmbin

        try:
            binary = str(helmbin.binary("kubectl"))
        except Exception:  # noqa: BLE001 - not installed with the project: the PATH's
            binary = "kubectl"
        command = [binary, *(["--context", context] if context else []), *args, "-o", "json"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise DrillError(f"kubectl {' '.join(args)}: {error}") from None
        if done.returncode != 0:
            raise DrillError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return json.loads(done.stdout or "null")
    return run


def _sync(kubectl: Callable[[list[str]], Any], application: str, revision: str) -> None:
    operation = {"operation": {"initiatedBy": {"username": "platformctl drill rollback"},
                               "sync": {"revision": revision}}}
    kubectl(["-n", ARGOCD_NAMESPACE, "patch", "application", application, "--type", "merge",
             "-p", json.dumps(operation)])


def _until(what: str, check: Callable[[], bool], clock: _Clock, deadline: float,
           poll: float) -> None:
    while not check():
        if clock.monotonic() > deadline:
            raise DrillError(f"{what}: not in time")
        clock.sleep(poll)


def rollback(project: Path, *, spec: Any, env: str, config: Any,
             environments: Any, order: Any, record_path: str | None = None,
             kubectl: Callable[[list[str]], Any], remote: str = "origin",
             clock: _Clock | None = None, timeout_seconds: float = 1800,
             poll_seconds: float = 5) -> Report:
    """The rollback drill (module docstring). Preconditions (a clean checkout of the branch Argo
    CD follows, a record to return to) are checked before anything is written; a failure after
    the push is recorded, not raised: the report says how far it got."""
    from platformctl import golden, releases
    from platformctl.gitcmd import git

    clock = clock or _Clock()
    branch = config.gitops.revision
    record = rollback_record(project, spec, env, record_path, follows_branch=env == order[0])
    current = golden.deployed_releases(project, spec, [env]).get(env)
    on = git(project, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    if on != branch:
        raise DrillError(f"the checkout is on {on!r}; allowed: {branch!r}, the branch Argo "
                         f"CD's root Application follows in {env} (platform:gitops.revision)")
    if git(project, "status", "--porcelain").stdout.strip():
        raise DrillError("uncommitted changes in the checkout; allowed: a clean checkout (the "
                         "drill commits only its own change)")
    promotion = releases.promote(project, f"{spec.team}/{spec.name}", env, environments, order,
                                 record_path=record.path)
    if promotion.record is None:
        raise DrillError(f"{env} already runs {record.digest} at {record.commit[:12]}: nothing "
                         "to roll back")
    began, started = _now(), clock.monotonic()
    deadline = started + timeout_seconds
    report = Report("rollback", env, config.region, f"{spec.team}/{spec.name}", _stamp(began))
    before = [r for r in releases.records(project, spec)
              if r.target == env and current is not None and r.digest == current.digest]
    report.rollback = {
        "to_digest": record.digest, "to_revision": record.commit, "record": record.path,
        "from_digest": current.digest if current else None, "branch": branch,
        "roll_forward": (f"platformctl promote {spec.team}/{spec.name} --to {env} --record "
                         f"{before[-1].path}" if before else
                         f"platformctl promote {spec.team}/{spec.name} --to {env}")}
    application = f"{spec.team}-{spec.name}"
    head_before = git(project, "rev-parse", "HEAD").stdout.strip()
    try:
        with _outcome(report):
            for path, text in promotion.files.items():
                (project / path).parent.mkdir(parents=True, exist_ok=True)
                (project / path).write_text(text, encoding="utf-8")
            git(project, "add", "--", *promotion.files)
            committed = git(project, "commit", "-q", "-m",
                            f"drill: roll {spec.team}/{spec.name} in {env} back to "
                            f"{record.digest}", "--", *promotion.files)
            if committed.returncode != 0:
                raise DrillError(f"git commit: {committed.stderr.strip()}")
            commit = git(project, "rev-parse", "HEAD").stdout.strip()
            report.rollback["commit"] = commit
            _step(report, "rollback committed", started, clock, commit=commit,
                  record=promotion.record.path if promotion.record else None)
            pushed = git(project, "push", "-q", remote, f"HEAD:{branch}")
            if pushed.returncode != 0:
                raise DrillError(f"git push {remote} {branch}: {pushed.stderr.strip()}")
            pushed_at = clock.monotonic()
            _step(report, "pushed", started, clock, branch=branch)
            namespace = yaml_destination(project, spec, env)

            def root_synced() -> bool:
                status = (kubectl(["-n", ARGOCD_NAMESPACE, "get", "application",
                                   ROOT_APPLICATION]) or {}).get("status") or {}
                sync = status.get("sync") or {}
                return sync.get("revision") == commit and sync.get("status") == "Synced"

            if not config.gitops.auto_sync:
                _sync(kubectl, ROOT_APPLICATION, commit)
                _step(report, "root sync requested", started, clock)
            _until("the root Application synced the commit", root_synced, clock, deadline,
                   poll_seconds)
            _step(report, "root synced", started, clock)

            revision = golden.deployed_releases(project, spec, [env])[env].revision

            def application_healthy() -> bool:
                app = kubectl(["-n", ARGOCD_NAMESPACE, "get", "application", application]) or {}
                source = (app.get("spec") or {}).get("source") or {}
                status = app.get("status") or {}
                return (any(str(i).endswith(f"@{record.digest}")
                            for i in (source.get("kustomize") or {}).get("images") or [])
                        and source.get("targetRevision") == revision
                        and (status.get("sync") or {}).get("status") == "Synced"
                        and (status.get("health") or {}).get("status") == "Healthy")

            if not config.gitops.auto_sync:
                # The root's sync applied the Application's new spec; now its own sync.
                _sync(kubectl, application, revision)
                _step(report, "application sync requested", started, clock)
            _until(f"the Application {application} synced and healthy", application_healthy,
                   clock, deadline, poll_seconds)
            _step(report, "application synced and healthy", started, clock)

            def rollout_healthy() -> bool:
                rollout = kubectl(["-n", namespace, "get", "rollout", spec.name]) or {}
                containers = (((rollout.get("spec") or {}).get("template") or {})
                              .get("spec") or {}).get("containers") or [{}]
                return (str(containers[0].get("image", "")).endswith(f"@{record.digest}")
                        and (rollout.get("status") or {}).get("phase") == "Healthy")

            _until(f"the Rollout {spec.name} healthy on {record.digest}", rollout_healthy,
                   clock, deadline, poll_seconds)
            report.rto_seconds = round(clock.monotonic() - pushed_at, 1)
            _step(report, "rollout healthy", started, clock, digest=record.digest)
        if report.status != "passed" and not _left(project, report, remote, branch):
            # Stopped before anything left this checkout: it is put back as it was.
            report.rollback["undone"] = _undo_local(project, head_before, promotion.files)
    finally:
        report.finished_at = _stamp(_now())
    return report


def _left(project: Path, report: Report, remote: str, branch: str) -> bool:
    """Whether the drill's commit reached the remote (a push can fail after the remote took
    it: a timeout, a hook's refusal after the update)."""
    from platformctl.gitcmd import git

    if "pushed" in [s["step"] for s in report.steps]:
        return True
    commit = report.rollback.get("commit")
    if not commit:
        return False
    heads = git(project, "ls-remote", remote, f"refs/heads/{branch}").stdout.split()
    return commit in heads


def _undo_local(project: Path, head: str, paths: Iterable[str]) -> str:
    """Put back a checkout the drill wrote to (and may have committed in) but never pushed:
    the branch at `head` again, each written file as `head` has it (or gone if new)."""
    from platformctl.gitcmd import git

    paths = list(paths)
    if git(project, "rev-parse", "HEAD").stdout.strip() != head:
        git(project, "reset", "-q", "--soft", head)  # the drill's own commit, never pushed
    git(project, "reset", "-q", head, "--", *paths)
    for path in paths:
        if git(project, "cat-file", "-e", f"{head}:{path}").returncode == 0:
            git(project, "checkout", "-q", head, "--", path)
        else:
            (project / path).unlink(missing_ok=True)
    return (f"nothing was pushed: the checkout is back at {head[:12]} with the drill's "
            f"{len(paths)} written file(s) restored")


def yaml_destination(project: Path, spec: Any, env: str) -> str:
    """The namespace the environment's Application deploys the service to."""
    import yaml

    from platformctl import golden

    document = yaml.safe_load((project / golden.application_path(spec, env)).read_text()) or {}
    return str(((document.get("spec") or {}).get("destination") or {}).get("namespace")
               or spec.team)
