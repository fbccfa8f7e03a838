"""`platformctl readiness`: each line's status is computed from the review (the recording, the
verdicts, the cost, drill reports, rendered objects), so a seeded defect turns its line red."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from platformctl import cli, pipeline, readiness
from stacks import service as service_spec
from tests.conftest import REPO, mutate, stack_config, write_stack

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def reviews(rendered):
    return {name: pipeline.review_evaluation(e) for name, e in rendered.items()}


def _lines(review, project, now=NOW):
    return {line.control: line for line in readiness.environment(review, project, now=now)}


def _project(tmp_path):
    shutil.copytree(REPO / "docs" / "runbooks", tmp_path / "docs" / "runbooks")
    return tmp_path


def _drill(project, kind, status, started):
    directory = project / "drills"
    directory.mkdir(exist_ok=True)
    stamp = started.strftime("%Y-%m-%dT%H:%M:%SZ")
    (directory / f"prod-{kind}-{stamp.replace('-', '').replace(':', '')}.json").write_text(
        json.dumps({"schema": "platformctl.drill/v1", "kind": kind, "stack": "prod",
                    "status": status, "started_at": stamp, "rto_seconds": 840.0,
                    "rpo_seconds": 290.0}))


def test_prod_passes_every_control_it_can_prove_and_says_what_lacks_evidence(reviews, tmp_path):
    lines = _lines(reviews["prod"], _project(tmp_path))
    statuses = {line.status for line in lines.values()}
    assert statuses == {readiness.PASS, readiness.NO_EVIDENCE}
    lacking = [c for c, line in lines.items() if line.status == readiness.NO_EVIDENCE]
    # The operator's secrets (the IdP client secret, the receiver's URL) are not in the stack
    # file: the program warns, and readiness says there is no evidence, never a pass.
    assert sorted(lacking) == sorted(["Argo CD sign-in through the IdP, no local admin",
                                      "Restore drill passed in the last 90 days",
                                      "Failover drill passed in the last 90 days",
                                      "Alerts reach a person (receivers configured)"])
    assert not readiness.ready(lines.values())
    multi_az = lines["Database has a standby in another AZ"]
    assert "`prod-postgres` (multiAz: True)" in multi_az.evidence[0]


def test_drill_reports_are_the_evidence_while_they_are_recent(reviews, tmp_path):
    project = _project(tmp_path)
    _drill(project, "restore", "passed", NOW - timedelta(days=3))
    _drill(project, "failover", "failed", NOW - timedelta(days=3))
    lines = _lines(reviews["prod"], project)
    restore = lines["Restore drill passed in the last 90 days"]
    assert restore.status == readiness.PASS and restore.evidence[0].startswith("drills/prod-")
    assert "RTO 840 s, RPO 290 s" in restore.detail
    assert lines["Failover drill passed in the last 90 days"].status == readiness.FAIL
    # The same passed report, four months on, proves nothing any more.
    later = _lines(reviews["prod"], project, now=NOW + timedelta(days=120))
    assert later["Restore drill passed in the last 90 days"].status == readiness.NO_EVIDENCE
    assert "days old" in later["Restore drill passed in the last 90 days"].detail


def test_a_seeded_defect_in_the_recording_turns_its_line_red(reviews, tmp_path):
    evaluation = reviews["prod"].evaluation
    broken = copy.copy(evaluation)
    broken.resources = copy.deepcopy(evaluation.resources)
    for resource in broken.resources:
        if resource.type == "aws:rds/instance:Instance":
            resource.inputs["multiAz"] = False
    lines = _lines(dataclasses.replace(reviews["prod"], evaluation=broken), _project(tmp_path))
    assert lines["Database has a standby in another AZ"].status == readiness.FAIL
    # In dev the same control is not required.
    dev = _lines(reviews["dev"], _project(tmp_path / "dev"))
    assert dev["Database has a standby in another AZ"].status == readiness.NOT_REQUIRED
    assert readiness.ready(dev.values())


def test_a_prod_stack_without_chaos_experiments_is_not_ready(tmp_path, capsys, evaluated_once):
    path = write_stack(tmp_path, mutate(stack_config("prod"), "platform:chaos.fis", False))
    assert cli.main(["readiness", str(path), "--project-dir", str(REPO),
                     "--format", "markdown"]) == 1
    out = capsys.readouterr().out
    assert "| ❌ fail | recovery | Chaos experiments with stop conditions" in out
    assert out.startswith("# Readiness: environment mutant\n\n**Not ready**")
    # A terminal gets lines, not a table with <br/>.
    assert cli.main(["readiness", str(path), "--project-dir", str(REPO)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("Readiness: environment mutant\nNOT READY: ")
    assert "❌ fail          recovery: Chaos experiments with stop conditions" in out
    assert "<br/>" not in out and "|" not in out.splitlines()[3]


def test_a_service_checklist_follows_its_rendered_objects(tmp_path, capsys):
    spec = service_spec.load(REPO / "services" / "checkout.yaml")
    lines = {line.control: line for line in readiness.service(spec, REPO)}
    drill = "Rollback drill in prod passed in the last 90 days"
    # No rollback drill has run against a cluster: no evidence, the one line not passing.
    assert lines.pop(drill).status == readiness.NO_EVIDENCE
    assert all(line.status == readiness.PASS for line in lines.values()), lines
    shutil.copytree(REPO / "gitops", tmp_path / "gitops")
    rollout = tmp_path / "gitops/teams/checkout/checkout/rollout.yaml"
    rollout.write_text(rollout.read_text().replace("preStop:", "postStart:"))
    broken = {line.control: line for line in readiness.service(spec, tmp_path)}
    drains = "Drains before it stops (preStop, grace above the deregistration delay)"
    assert broken[drains].status == readiness.FAIL
    assert cli.main(["readiness", "--service", str(REPO / "services" / "checkout.yaml"),
                     "--format", "json", "--project-dir", str(REPO)]) == 1
    assert json.loads(capsys.readouterr().out)["ready"] is False


def test_a_rollback_drill_is_evidence_for_90_days_of_its_own_service_only(tmp_path):
    spec = service_spec.load(REPO / "services" / "checkout.yaml")
    shutil.copytree(REPO / "gitops", tmp_path / "gitops")
    drills = tmp_path / "drills"
    drills.mkdir()
    control = "Rollback drill in prod passed in the last 90 days"

    def report(name: str, source: str, status: str, started: str, rto: float | None) -> None:
        (drills / name).write_text(json.dumps({
            "schema": "platformctl.drill/v1", "kind": "rollback", "stack": "prod",
            "source": source, "status": status, "started_at": started, "rto_seconds": rto}))

    def line(now: datetime):
        return {x.control: x for x in readiness.service(spec, tmp_path, now=now)}[control]

    now = datetime(2026, 12, 7, tzinfo=UTC)
    report("prod-rollback-20261101T000000Z.json", "payments/api", "passed",
           "2026-11-01T00:00:00Z", 40.0)  # another service's drill proves nothing here
    assert line(now).status == readiness.NO_EVIDENCE
    report("prod-rollback-20261110T000000Z.json", "checkout/checkout", "failed",
           "2026-11-10T00:00:00Z", None)
    assert line(now).status == readiness.FAIL
    report("prod-rollback-20261120T000000Z.json", "checkout/checkout", "passed",
           "2026-11-20T00:00:00Z", 184.4)
    passed = line(now)
    assert passed.status == readiness.PASS and passed.detail == "passed; RTO 184 s"
    assert passed.evidence == ["drills/prod-rollback-20261120T000000Z.json"]
    assert line(datetime(2027, 2, 19, tzinfo=UTC)).status == readiness.NO_EVIDENCE  # 91 days
    assert line(datetime(2027, 2, 17, tzinfo=UTC)).status == readiness.PASS  # 89 days


def test_readiness_counts_logs_and_traces_and_misses_them_when_off(dev_without_logs_or_traces):
    lines = {line.control: line for line in readiness.environment(
        pipeline.review_evaluation(dev_without_logs_or_traces), REPO)}
    logs = lines["Container and node logs are shipped and kept (a retention set)"]
    traces = lines["Traces reach X-Ray from every service (the gateway runs)"]
    assert logs.status == traces.status == readiness.FAIL
    assert "platform:observability.logs.enabled" in logs.evidence[0]
