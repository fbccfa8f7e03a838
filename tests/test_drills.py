"""The disaster-recovery drills (platformctl/drills.py) end to end against moto (AWS mocked
in-process), the checksum query on a real PostgreSQL: a restore that passes, and every way one
fails (no recovery point, a refused restore, a wrong checksum, a timeout, an interrupt, a scratch
instance that will not go), each recorded and cleaned up; the failover drill likewise."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from platformctl import cli, drills
from tests.conftest import REPO
from tests.test_checkout_service import postgres  # noqa: F401 - the throwaway PostgreSQL

REGION = "us-east-1"
SOURCE = "platform-prod"


class Recorder:
    """The RDS client, with each call recorded and any one made to fail or to be replaced."""

    def __init__(self, client: Any, fail: dict[str, Exception] | None = None,
                 replace: dict[str, Any] | None = None):
        self.client, self.calls = client, []
        self.fail, self.replace = fail or {}, replace or {}

    def __getattr__(self, name: str):
        def call(**kwargs):
            self.calls.append((name, kwargs))
            if name in self.fail:
                raise self.fail[name]
            if name in self.replace:
                return self.replace[name](**kwargs)
            return getattr(self.client, name)(**kwargs)
        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class FakeClock(drills._Clock):
    """Time that moves only when the drill sleeps (a second per poll otherwise)."""

    def __init__(self):
        self.now = 0.0
        super().__init__(monotonic=lambda: self.now, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.now += seconds


def _refused(operation: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": "InvalidParameterCombination", "Message": message}},
                       operation)


@pytest.fixture(scope="module")
def _aws():
    """One mocked AWS for the module (its network costs half a second to make)."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24",
                                     AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
                   for i, zone in enumerate("ab")]
        group = ec2.create_security_group(GroupName="database", Description="5432 from nodes",
                                          VpcId=vpc)["GroupId"]
        rds = boto3.client("rds", region_name=REGION)
        rds.create_db_subnet_group(DBSubnetGroupName="prod-db", SubnetIds=subnets,
                                   DBSubnetGroupDescription="database subnets")
        yield rds, group


@pytest.fixture
def aws(_aws):
    """The module's mocked AWS, its database instances gone after each test."""
    yield _aws
    rds, _ = _aws
    for instance in rds.describe_db_instances()["DBInstances"]:
        rds.delete_db_instance(DBInstanceIdentifier=instance["DBInstanceIdentifier"],
                               SkipFinalSnapshot=True)


def _database(rds, *, multi_az: bool = True, backups: int = 14) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=SOURCE, Engine="postgres", DBInstanceClass="db.t4g.small",
        MasterUsername="platform_admin", MasterUserPassword="not-the-drills-" + "x" * 8,
        AllocatedStorage=20, MultiAZ=multi_az, BackupRetentionPeriod=backups,
        DBSubnetGroupName="prod-db", DBName="platform")


def _local(postgres_settings: dict[str, str]):
    """The restored instance's endpoint, answered by the throwaway PostgreSQL (the query runs
    for real; host, user and password are the drill's, the socket the test's)."""
    import psycopg

    seen = []

    def connect(host, port, user, password, dbname):
        seen.append((host, port, user, dbname, password))
        return psycopg.connect(**postgres_settings, autocommit=True)
    return connect, seen


def _restore(rds, connect, **kwargs) -> drills.Report:
    return drills.restore(rds, stack="prod", region=REGION, source=SOURCE,
                          username="platform_admin", dbname="platform",
                          checksum_query="SELECT count(*) FROM pg_database WHERE datallowconn",
                          connect=connect, clock=kwargs.pop("clock", FakeClock()),
                          poll_seconds=30, **kwargs)


def _instances(rds) -> list[str]:
    return sorted(i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"])


def test_a_restore_drill_restores_checks_times_and_cleans_up(aws, postgres, tmp_path):  # noqa: F811
    rds, group = aws
    _database(rds)
    rds.modify_db_instance(DBInstanceIdentifier=SOURCE, VpcSecurityGroupIds=[group],
                           ApplyImmediately=True)
    recorder = Recorder(rds)
    connect, seen = _local(postgres)
    report = _restore(recorder, connect, expect="2")
    assert report.status == "passed", report.error
    assert report.checksum["result"] == "2"
    (restore,) = [kw for name, kw in recorder.calls
                  if name == "restore_db_instance_to_point_in_time"]
    # Into the database subnets and security groups, single-AZ, latest restorable time.
    assert restore["DBSubnetGroupName"] == "prod-db"
    assert restore["VpcSecurityGroupIds"] == [group]
    assert restore["UseLatestRestorableTime"] is True and restore["MultiAZ"] is False
    assert restore["DeletionProtection"] is False and restore["PubliclyAccessible"] is False
    scratch = restore["TargetDBInstanceIdentifier"]
    assert scratch.startswith(f"{SOURCE}-drill-") and report.scratch == scratch
    # The checksum ran on the scratch instance's endpoint, as the master user, with the
    # drill's own password (set on the scratch instance only).
    ((host, port, user, dbname, password),) = seen
    assert host.startswith(scratch) and (port, user, dbname) == (5432, "platform_admin",
                                                                  "platform")
    (modify,) = [kw for name, kw in recorder.calls if name == "modify_db_instance"]
    assert modify["DBInstanceIdentifier"] == scratch and modify["MasterUserPassword"] == password
    # Gone afterwards; the source untouched.
    assert _instances(rds) == [SOURCE] and report.cleanup["deleted"] is True
    assert report.rto_seconds is not None and report.rpo_seconds is not None
    assert [s["step"] for s in report.steps] == [
        "latest recovery point", "restore requested", "restored instance available",
        "checksum query answered"]
    path = drills.write_report(report, tmp_path / "drills")
    text = path.read_text()
    assert path.name.startswith("prod-restore-") and password not in text
    assert json.loads(text)["schema"] == "platformctl.drill/v1"


def test_the_restore_figures_are_measured_where_none_is_zero(aws, postgres, monkeypatch):  # noqa: F811
    """RPO and RTO in a drill where neither is zero (moto sets the latest restorable time to
    "now" and makes instances available at once, so figures computed wrongly would still read
    0 there): the last recovery point 312 s before the drill began, the scratch instance still
    creating at the first two polls, the checksum refused once."""
    from datetime import UTC, datetime, timedelta

    rds, _ = aws
    _database(rds)
    began = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(drills, "_now", lambda: began)
    creating = iter([True, True])

    def describe(**kwargs):
        answer = rds.describe_db_instances(**kwargs)
        for instance in answer["DBInstances"]:
            if instance["DBInstanceIdentifier"] == SOURCE:
                instance["LatestRestorableTime"] = began - timedelta(seconds=312)
            elif next(creating, False):
                instance["DBInstanceStatus"] = "creating"
        return answer

    reach, _ = _local(postgres)
    attempts = []

    def connect(*args):
        attempts.append(args)
        if len(attempts) == 1:
            raise OSError("the new password is not applied yet")
        return reach(*args)

    report = _restore(Recorder(rds, replace={"describe_db_instances": describe}), connect)
    assert report.status == "passed", report.error
    assert report.rpo_seconds == 312.0  # the drill's start minus the latest recovery point
    # Two polls of 30 s while the scratch instance is created, one retry of the query.
    assert {s["step"]: s["seconds"] for s in report.steps} == {
        "latest recovery point": 0.0, "restore requested": 0.0,
        "restored instance available": 60.0, "checksum query answered": 90.0}
    assert report.rto_seconds == 90.0
    assert report.document()["steps"][0]["latest"] == "2026-12-07T11:54:48Z"


@pytest.mark.parametrize("case", ["no recovery point", "restore refused", "wrong checksum",
                                  "never available", "interrupted", "not deleted"])
def test_a_failed_restore_drill_says_why_and_leaves_nothing_behind(aws, postgres, case):  # noqa: F811
    rds, _ = aws
    _database(rds, backups=0 if case == "no recovery point" else 14)
    connect, _ = _local(postgres)
    fail, replace, expect = {}, {}, None
    if case == "restore refused":
        fail["restore_db_instance_to_point_in_time"] = _refused(
            "RestoreDBInstanceToPointInTime", "quota exceeded")
    if case == "wrong checksum":
        expect = "999"
    if case == "never available":
        def creating(**kwargs):
            found = rds.describe_db_instances(**kwargs)
            for instance in found["DBInstances"]:
                if instance["DBInstanceIdentifier"] != SOURCE:
                    instance["DBInstanceStatus"] = "creating"
            return found
        replace["describe_db_instances"] = creating
    if case == "interrupted":
        def connect(*args):  # noqa: F811 - Ctrl-C while the checksum runs
            raise KeyboardInterrupt
    if case == "not deleted":
        fail["delete_db_instance"] = _refused("DeleteDBInstance", "throttled")
    recorder = Recorder(rds, fail, replace)
    report = _restore(recorder, connect, expect=expect, timeout_seconds=600)
    expected = {
        "no recovery point": ("failed", "has no recovery point (automated backups off)"),
        "restore refused": ("failed", "restore refused: quota exceeded"),
        "wrong checksum": ("failed", "checksum '2', expected '999'"),
        "never available": ("failed", "not available in time (status creating)"),
        "interrupted": ("interrupted", "interrupted by the operator"),
        "not deleted": ("failed", "was not deleted"),
    }[case]
    assert report.status == expected[0] and expected[1] in report.error, report.error
    if case in ("no recovery point", "restore refused"):
        assert "delete_db_instance" not in recorder.names() and report.cleanup is None
        assert _instances(rds) == [SOURCE]
    elif case == "not deleted":
        assert report.cleanup["deleted"] is False
        assert report.cleanup["by_hand"].startswith(
            f"aws rds delete-db-instance --db-instance-identifier {report.scratch}")
    else:
        assert report.cleanup["deleted"] is True and _instances(rds) == [SOURCE]


def test_the_failover_drill_times_a_forced_failover(aws):
    rds, _ = aws
    _database(rds)
    rebooting = iter([False, True])  # the describe before the reboot, then one poll rebooting

    def describe(**kwargs):
        answer = rds.describe_db_instances(**kwargs)
        if next(rebooting, False):
            answer["DBInstances"][0]["DBInstanceStatus"] = "rebooting"
        return answer

    recorder = Recorder(rds, replace={"describe_db_instances": describe})
    answers = iter([False, False, True])
    report = drills.failover(recorder, stack="prod", region=REGION, source=SOURCE,
                             probe=lambda host, port: next(answers), clock=FakeClock(),
                             poll_seconds=5)
    assert report.status == "passed", report.error
    (reboot,) = [kw for name, kw in recorder.calls if name == "reboot_db_instance"]
    assert reboot == {"DBInstanceIdentifier": SOURCE, "ForceFailover": True}
    # Not zero where moto would make it so: one poll rebooting, then two refused probes.
    assert {s["step"]: s["seconds"] for s in report.steps} == {
        "failover requested": 0.0, "available": 5.0, "writable": 15.0}
    assert report.rto_seconds == 15.0
    assert report.failover["primary_az_before"]


@pytest.mark.parametrize("case", ["single-AZ", "refused", "never writable"])
def test_a_failed_failover_drill_says_why(aws, case):
    rds, _ = aws
    _database(rds, multi_az=case != "single-AZ")
    fail = {"reboot_db_instance": _refused("RebootDBInstance", "instance is not available")} \
        if case == "refused" else {}
    recorder = Recorder(rds, fail)
    report = drills.failover(recorder, stack="prod", region=REGION, source=SOURCE,
                             probe=lambda host, port: False, clock=FakeClock(),
                             timeout_seconds=60)
    message = {"single-AZ": "is single-AZ: there is no standby",
               "refused": "failover refused: instance is not available",
               "never writable": "did not accept connections in time"}[case]
    assert report.status == "failed" and message in report.error
    if case == "single-AZ":
        assert "reboot_db_instance" not in recorder.names()


def test_the_cli_writes_the_report_and_exits_1_on_a_failed_drill(aws, tmp_path, capsys,
                                                               monkeypatch):
    rds, _ = aws
    _database(rds, backups=0)
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        (project / name).write_text((REPO / name).read_text())
    shutil.copytree(REPO / "certs", project / "certs")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    code = cli.main(["drill", "restore", "prod", "--checksum-query", "SELECT 1",
                     "--project-dir", str(project)])
    out = capsys.readouterr().out
    assert code == 1 and "drill restore prod: failed (platform-prod has no recovery point" in out
    (report,) = (project / "drills").glob("prod-restore-*.json")
    assert json.loads(report.read_text())["status"] == "failed"


def test_dry_runs_call_nothing_and_bad_input_is_a_usage_error(tmp_path, capsys):
    project = Path(REPO)
    code = cli.main(["drill", "restore", "prod", "--checksum-query", "SELECT count(*) FROM t",
                     "--dry-run", "--project-dir", str(project)])
    out = capsys.readouterr().out
    assert code == 0 and "platform-prod-drill-" in out and "SELECT count(*) FROM t" in out
    assert cli.main(["drill", "restore", "prod", "--checksum-query", " ",
                     "--project-dir", str(project)]) == 2
    assert "--checksum-query: empty" in capsys.readouterr().err
    assert cli.main(["drill", "failover", "qa", "--project-dir", str(project)]) == 2
    assert "stack file not found" in capsys.readouterr().err


def test_the_writable_probe_asks_the_database_itself(postgres):  # noqa: F811
    """A primary takes writes; an endpoint that does not answer does not."""
    import psycopg.conninfo

    dsn = psycopg.conninfo.make_conninfo(user=postgres["user"], dbname=postgres["dbname"])
    probe = drills.writable_probe(dsn)
    assert probe(postgres["host"], 5432) is True
    assert probe("/nonexistent-socket-dir", 5432) is False
