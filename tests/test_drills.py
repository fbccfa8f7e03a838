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


# -- the rollback drill: Git for real, Argo CD and Argo Rollouts as a cluster's kubectl answers -----

GIT_ENV = {"GIT_AUTHOR_NAME": "drill", "GIT_AUTHOR_EMAIL": "drill@example.com",
           "GIT_COMMITTER_NAME": "drill", "GIT_COMMITTER_EMAIL": "drill@example.com",
           "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "commit.gpgsign",
           "GIT_CONFIG_VALUE_0": "false"}
RECORDS = "gitops/releases/checkout/checkout"
OLDER, NEWER = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def _git(project: Path, *args: str) -> str:
    import subprocess

    done = subprocess.run(["git", "-C", str(project), *args], capture_output=True, text=True,
                          check=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A copy of this repository with its own history where prod ran the repository's release,
    then two builds of checkout, OLDER then NEWER, each went to dev (a recorded release) and
    then to prod (a recorded promotion): the drill's starting point. Each test clones it."""
    import os

    from tests.conftest import repository_copy

    os.environ.update(GIT_ENV)  # the module's git commits (restored below)
    project = repository_copy(tmp_path_factory.mktemp("released") / "project", leave_out=RECORDS)
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "the platform")
    # The repository's own release to prod first (its contract migration step asks for it).
    for step in (["promote", "checkout", "--to", "prod"],
                 ["promote", "checkout", "--to", "dev", "--digest", OLDER],
                 ["promote", "checkout", "--to", "prod"],
                 ["promote", "checkout", "--to", "dev", "--digest", NEWER],
                 ["promote", "checkout", "--to", "prod"]):
        assert cli.main([*step, "--project-dir", str(project)]) == 0
        _git(project, "add", "-A")
        _git(project, "commit", "-qm", " ".join(step))
    yield project
    for key in GIT_ENV:
        os.environ.pop(key, None)


@pytest.fixture
def checkout_of(released, tmp_path, monkeypatch):
    """A clone of the released project, pushing to a bare remote of its own."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    remote = tmp_path / "remote.git"
    _git(tmp_path, "clone", "-q", "--bare", str(released), str(remote))
    project = tmp_path / "project"
    _git(tmp_path, "clone", "-q", str(remote), str(project))
    return project, remote


class Cluster:
    """What kubectl answers about Argo CD and the Rollout, moving on with each poll: the root
    Application syncs the pushed commit on its `root_after`-th look, the service's Application
    is healthy on its `app_after`-th, the Rollout on its `rollout_after`-th (None: never)."""

    def __init__(self, project: Path, digest: str, root_after: int = 2, app_after: int = 2,
                 rollout_after: int | None = 3, env: str = "prod"):
        self.project, self.digest, self.env, self.calls = project, digest, env, []
        self.after = {"root": root_after, "checkout-checkout": app_after, "rollout": rollout_after}
        self.looks = {"root": 0, "checkout-checkout": 0, "rollout": 0}

    def __call__(self, args: list[str]) -> Any:
        self.calls.append(args)
        if "patch" in args:
            return {}
        name = args[-1]
        key = "rollout" if "rollout" in args else name
        self.looks[key] += 1
        done = self.after[key] is not None and self.looks[key] >= self.after[key]
        image = f"111111111111.dkr.ecr.us-east-1.amazonaws.com/checkout@{self.digest}"
        # The Application as Git has it now (what the root's sync applies).
        import yaml

        source = yaml.safe_load((self.project / f"gitops/environments/{self.env}/"
                                 "checkout-checkout.yaml").read_text())["spec"]["source"]
        if key == "root":
            head = _git(self.project, "rev-parse", "HEAD")
            return {"status": {"sync": {"status": "Synced" if done else "OutOfSync",
                                        "revision": head if done else "an-older-commit"}}}
        if key == "rollout":
            return {"spec": {"template": {"spec": {"containers": [{"image": image}]}}},
                    "status": {"phase": "Healthy" if done else "Progressing"}}
        return {"spec": {"source": {**source, "kustomize": {"images": [image]}}},
                "status": {"sync": {"status": "Synced"},
                           "health": {"status": "Healthy" if done else "Progressing"}}}


def _rollback(project: Path, cluster: Cluster, env: str = "prod", **kwargs: Any):
    from platformctl import releases

    spec, _ = releases.find_spec(project, "checkout")
    environments = cli._environments(project)
    return drills.rollback(project, spec=spec, env=env, config=environments[env],
                           environments=environments, order=cli.ENVIRONMENTS, kubectl=cluster,
                           clock=FakeClock(), poll_seconds=10, timeout_seconds=300, **kwargs)


def test_the_rollback_drill_goes_through_git_and_argo_cd_and_times_each_step(checkout_of):
    import yaml

    project, remote = checkout_of
    earlier = OLDER
    cluster = Cluster(project, earlier)
    report = _rollback(project, cluster)
    assert report.status == "passed", report.error
    # Git: the change `promote --record` makes, committed and pushed to the branch Argo CD
    # follows (prod's root Application: main).
    assert _git(remote, "rev-parse", "main") == report.rollback["commit"]
    application = (project / "gitops/environments/prod/checkout-checkout.yaml").read_text()
    assert f"checkout@{earlier}" in application and NEWER not in application
    kinds = [yaml.safe_load(p.read_text())["kind"] for p in sorted((project / RECORDS).glob("*"))]
    assert kinds.count("rollback") == 1
    # Argo CD: prod does not sync by itself, so the drill asked for both syncs.
    patches = [c for c in cluster.calls if "patch" in c]
    assert [c[4] for c in patches] == ["root", "checkout-checkout"]
    assert json.loads(patches[0][-1])["operation"]["sync"]["revision"] == report.rollback["commit"]
    # Each step timed on the clock: the root synced on its 2nd look (10 s after the push), the
    # Application on its 2nd (20 s), the Rollout on its 3rd (40 s).
    steps = {s["step"]: s["seconds"] for s in report.steps}
    assert steps == {"rollback committed": 0.0, "pushed": 0.0, "root sync requested": 0.0,
                     "root synced": 10.0, "application sync requested": 10.0,
                     "application synced and healthy": 20.0, "rollout healthy": 40.0}
    assert report.rto_seconds == 40.0
    assert report.rollback["to_digest"] == earlier and report.rollback["from_digest"] == NEWER
    assert report.rollback["roll_forward"].startswith(
        "platformctl promote checkout/checkout --to prod --record gitops/releases/")
    written = drills.write_report(report, project / drills.REPORTS_DIR)
    assert written.name.startswith("prod-rollback-")
    assert json.loads(written.read_text())["source"] == "checkout/checkout"


def test_dev_syncs_by_itself_so_the_drill_only_watches(checkout_of):
    project, _ = checkout_of
    from platformctl import releases

    spec, _ = releases.find_spec(project, "checkout")
    assert drills.rollback_record(project, spec, "dev", follows_branch=True).digest == OLDER
    cluster = Cluster(project, OLDER, env="dev")
    report = _rollback(project, cluster, env="dev")
    assert report.status == "passed", report.error
    assert not [c for c in cluster.calls if "patch" in c]
    assert "root sync requested" not in [s["step"] for s in report.steps]


def test_a_rollout_that_never_gets_healthy_fails_the_drill_after_the_push(checkout_of):
    project, remote = checkout_of
    cluster = Cluster(project, OLDER, rollout_after=None)
    report = _rollback(project, cluster)
    assert report.status == "failed" and report.rto_seconds is None
    assert "Rollout checkout healthy" in report.error and "not in time" in report.error
    assert [s["step"] for s in report.steps][-1] == "application synced and healthy"
    # What was pushed stays pushed (a rollback is not undone by a failed drill), and the report
    # says how to roll forward.
    assert _git(remote, "rev-parse", "main") == report.rollback["commit"]
    assert "--record" in report.rollback["roll_forward"]


def test_the_rollback_drill_refuses_before_writing_anything(checkout_of):
    project, remote = checkout_of
    head = _git(remote, "rev-parse", "main")
    (project / "stray.txt").write_text("not committed")
    with pytest.raises(drills.DrillError, match="uncommitted changes"):
        _rollback(project, Cluster(project, NEWER))
    (project / "stray.txt").unlink()
    _git(project, "switch", "-q", "-c", "elsewhere")
    with pytest.raises(drills.DrillError, match="allowed: 'main'"):
        _rollback(project, Cluster(project, NEWER))
    assert _git(remote, "rev-parse", "main") == head
    assert not _git(project, "status", "--porcelain")


def test_drill_rollback_dry_run_and_bad_input(capsys):
    # The repository's prod has one release only: nothing earlier to return to.
    assert cli.main(["drill", "rollback", "checkout", "--env", "prod", "--dry-run",
                     "--project-dir", str(REPO)]) == 2
    assert "no earlier release of checkout/checkout in prod" in capsys.readouterr().err
    assert cli.main(["drill", "rollback", "checkout", "--env", "staging", "--dry-run",
                     "--project-dir", str(REPO)]) == 2
    assert "--env: 'staging'" in capsys.readouterr().err
    assert cli.main(["drill", "rollback", "nothere", "--env", "prod", "--dry-run",
                     "--project-dir", str(REPO)]) == 2
    assert "'nothere' is not a service" in capsys.readouterr().err
    assert cli.main(["drill", "rollback", "checkout", "--env", "prod", "--timeout-minutes", "0",
                     "--project-dir", str(REPO)]) == 2
    assert "--timeout-minutes 0: allowed: 1 or more" in capsys.readouterr().err


def test_drill_rollback_dry_run_names_what_it_would_do(checkout_of, capsys):
    project, remote = checkout_of
    head = _git(remote, "rev-parse", "main")
    assert cli.main(["drill", "rollback", "checkout", "--env", "prod", "--dry-run",
                     "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing is written, pushed or called" in out
    assert "--record gitops/releases/checkout/checkout/" in out and f"runs {NEWER} now" in out
    assert "request a sync of the root Application" in out
    assert _git(remote, "rev-parse", "main") == head and not _git(project, "status", "--porcelain")


def test_an_interrupted_rollback_drill_is_recorded_as_such(checkout_of):
    project, _ = checkout_of
    cluster = Cluster(project, OLDER)

    def interrupted(args: list[str]) -> Any:
        if "rollout" in args:
            raise KeyboardInterrupt
        return cluster(args)

    report = _rollback(project, interrupted)
    assert report.status == "interrupted" and report.finished_at is not None
    assert [s["step"] for s in report.steps][-1] == "application synced and healthy"


def _as_it_was(project: Path, head: str) -> None:
    assert _git(project, "rev-parse", "HEAD") == head
    assert not _git(project, "status", "--porcelain", "--untracked-files=all")


@pytest.mark.parametrize("case", ["push refused", "interrupted at the push"])
def test_a_rollback_drill_stopped_before_its_push_puts_the_checkout_back(checkout_of, case,
                                                                         monkeypatch):
    from platformctl import gitcmd

    project, remote = checkout_of
    head = _git(project, "rev-parse", "HEAD")
    real_git = gitcmd.git

    def interrupting(root: Path, *args: str, **kwargs: Any):
        if args[0] == "push":
            raise KeyboardInterrupt
        return real_git(root, *args, **kwargs)

    if case == "interrupted at the push":
        monkeypatch.setattr(gitcmd, "git", interrupting)
        report = _rollback(project, Cluster(project, OLDER))
    else:
        report = _rollback(project, Cluster(project, OLDER), remote="no-such-remote")
    assert report.status == ("failed" if case == "push refused" else "interrupted")
    assert [s["step"] for s in report.steps] == ["rollback committed"]
    # The commit and the written Application and record are gone; the remote never saw them.
    _as_it_was(project, head)
    assert _git(remote, "rev-parse", "main") == head
    assert report.rollback["undone"].startswith(f"nothing was pushed: the checkout is back at "
                                                f"{head[:12]}")


def test_a_push_that_reached_the_remote_is_not_undone(checkout_of, monkeypatch):
    """A push reported failed after the remote took it (a timeout, a hook after the update):
    the commit is the remote's now, so the checkout keeps it."""
    import subprocess

    from platformctl import gitcmd

    project, remote = checkout_of
    real_git = gitcmd.git

    def late_failure(root: Path, *args: str, **kwargs: Any):
        done = real_git(root, *args, **kwargs)
        if args[0] == "push":
            return subprocess.CompletedProcess(done.args, 1, "", "timed out")
        return done

    monkeypatch.setattr(gitcmd, "git", late_failure)
    report = _rollback(project, Cluster(project, OLDER))
    assert report.status == "failed" and "timed out" in report.error
    assert "undone" not in report.rollback
    assert _git(remote, "rev-parse", "main") == report.rollback["commit"]
    _as_it_was(project, report.rollback["commit"])


def test_drill_rollback_for_real_writes_its_report_when_the_cluster_cannot_be_reached(
        checkout_of, monkeypatch, capsys):
    """The command end to end with the real kubectl and no cluster: the rollback is committed
    and pushed, the first call to the cluster fails, and the report says so (exit 1)."""
    project, remote = checkout_of
    monkeypatch.setenv("KUBECONFIG", str(project / "no-such-kubeconfig"))
    assert cli.main(["drill", "rollback", "checkout", "--env", "prod", "--timeout-minutes", "1",
                     "--project-dir", str(project)]) == 1
    out = capsys.readouterr().out
    assert "drill rollback checkout/checkout in prod: failed (kubectl -n argocd patch" in out
    assert "roll forward: platformctl promote checkout/checkout --to prod --record" in out
    (report,) = (project / "drills").glob("prod-rollback-*.json")
    document = json.loads(report.read_text())
    assert document["status"] == "failed" and document["kind"] == "rollback"
    assert _git(remote, "rev-parse", "main") == document["rollback"]["commit"]


def test_a_drill_gets_ctrl_c_as_a_keyboard_interrupt_and_the_command_handler_after(monkeypatch,
                                                                                   tmp_path):
    """platformctl's own SIGINT handler leaves at once (the SDK's threads); a drill must see
    Ctrl-C as a KeyboardInterrupt instead, to delete its scratch instance and write its report:
    the handler is the default one while the drill runs, and the command's again after it."""
    import signal

    from platformctl import interrupts

    seen = []

    def restore(rds, **kwargs):
        seen.append(signal.getsignal(signal.SIGINT))
        return drills.Report("restore", "dev", REGION, "platform-dev", "2026-12-07T00:00:00Z",
                             status="passed")

    monkeypatch.setattr(drills, "restore", restore)
    monkeypatch.setattr(drills, "write_report", lambda report, directory: REPO / "r.json")
    previous = signal.signal(signal.SIGINT, interrupts.handler)
    try:
        assert cli.main(["drill", "restore", "dev", "--checksum-query", "SELECT 1",
                         "--project-dir", str(REPO)]) == 0
        assert seen == [signal.default_int_handler]
        assert signal.getsignal(signal.SIGINT) is interrupts.handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_prod_can_return_to_the_release_dev_ran_before_records_existed(checkout_of):
    """Prod's first promotion took the digest new-service wrote into dev's Application (no
    release record of dev names it); a rollback to it is trusted because dev's Application's
    Git history shows it ran there."""
    from platformctl import releases

    project, _ = checkout_of
    spec, _ = releases.find_spec(project, "checkout")
    first = next(r for r in releases.records(project, spec)
                 if r.target == "prod" and r.digest not in (OLDER, NEWER))
    assert all(r.digest != first.digest for r in releases.records(project, spec)
               if r.target == "dev")
    environments = cli._environments(project)
    promotion = releases.promote(project, "checkout", "prod", environments, cli.ENVIRONMENTS,
                                 record_path=first.path)
    assert promotion.record.kind == "rollback" and promotion.record.digest == first.digest
