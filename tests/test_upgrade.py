"""`platformctl upgrade-check` (platformctl/upgrade.py): each part on what it reads, seeded
with what must block an upgrade: an object on an API the target no longer serves, a field the
target's schema refuses, the stack's own pins for a minor they were not looked up for, a
PodDisruptionBudget that forbids the node roll; the whole command on prod is an e2e test."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from platformctl import cli, upgrade
from platformctl.crossguard import GuardReport, NotEvaluated, Verdict
from tests.conftest import REPO


def _report(current: str = "1.36", target: str = "1.37") -> upgrade.Report:
    return upgrade.Report("seeded", current, target)


def test_the_served_apis_come_from_each_minors_schemas():
    assert "1.37" in upgrade.known_minors() and "1.25" in upgrade.known_minors()
    # What 1.37 stops serving, read from the two schema sets (not a hand list).
    gone = upgrade.served("1.36") - upgrade.served("1.37")
    assert ("storage.k8s.io", "v1beta1", "VolumeAttributesClass") in gone
    assert ("networking.k8s.io", "v1beta1", "ServiceCIDR") in gone
    assert ("apps", "v1", "Deployment") in upgrade.served("1.37")


def test_an_object_on_an_api_the_target_removes_is_a_blocker_with_the_replacement():
    report = _report()
    upgrade.check_objects(report, [
        ("gitops teams/a", {"apiVersion": "storage.k8s.io/v1beta1", "kind": "VolumeAttributesClass",
                            "metadata": {"name": "fast"}, "driverName": "ebs.csi.aws.com"}),
        ("gitops teams/a", {"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "fine"}, "data": {"a": "b"}}),
        # A custom resource: its CRD decides, not the minor.
        ("release x", {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                       "metadata": {"name": "r"}}),
    ])
    (blocker,) = report.blockers
    assert blocker.step == "objects" and blocker.subject.startswith("VolumeAttributesClass fast")
    assert "storage.k8s.io/v1beta1 VolumeAttributesClass is not served by 1.37" in blocker.detail
    assert blocker.fix == "use storage.k8s.io/v1"


def test_a_field_the_targets_schema_refuses_is_a_blocker():
    report = _report()
    upgrade.check_objects(report, [("release x", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "odd"},
        "data": {"a": "b"}, "notAField": True})])
    (blocker,) = report.blockers
    assert "invalid for 1.37" in blocker.detail and "notAField" in blocker.detail


def test_the_stacks_pins_block_a_minor_they_were_not_looked_up_for(evaluations):
    config = evaluations["prod"].config
    report = _report()
    upgrade.check_pins(report, config)
    blocked = {(f.step, f.subject.split()[0]) for f in report.blockers}
    assert ("control plane", "EKS") in blocked  # 1.37 is not in the config model yet
    assert ("add-ons", "kube-proxy") in blocked  # a 1.36 build
    assert {("add-ons", a) for a in ("vpc-cni", "coredns", "aws-ebs-csi-driver",
                                     "eks-pod-identity-agent")} <= blocked
    assert ("cluster autoscaler", "image") in blocked
    fix = next(f.fix for f in report.blockers if f.subject.startswith("coredns"))
    assert "--addon-name coredns" in fix
    # Two minors at once: EKS takes one at a time.
    skipping = _report("1.34", "1.36")
    upgrade.check_pins(skipping, config)
    assert any("one minor at a time" in f.detail for f in skipping.blockers)
    # The next one, allowed: the control plane is fine, kube-proxy's 1.36 build too.
    ready = _report("1.35", "1.36")
    upgrade.check_pins(ready, config)
    assert not ready.blockers


def test_a_disruption_budget_that_forbids_evictions_blocks_the_node_roll():
    budget = Verdict("disruption-budgets", "mandatory", "high",
                     "minAvailable 1 over 1 pod (Deployment x) never allows an eviction",
                     "allow one pod down", "PodDisruptionBudget", "release/x")
    evaluation = SimpleNamespace(is_rendered=False)
    report = _report()
    upgrade.check_node_roll(report, SimpleNamespace(guard=GuardReport(violations=[budget]),
                                                    evaluation=evaluation))
    (blocker,) = report.blockers
    assert blocker.step == "node groups" and "never allows an eviction" in blocker.detail
    # A check that did not run is not a pass.
    unseen = _report()
    upgrade.check_node_roll(unseen, SimpleNamespace(guard=GuardReport(not_evaluated=[
        NotEvaluated("disruption-budgets", "not rendered")]), evaluation=evaluation))
    assert [f.subject for f in unseen.blockers] == ["PodDisruptionBudgets"]


def test_upgrade_check_refuses_a_minor_it_does_not_know(capsys):
    assert cli.main(["upgrade-check", "prod", "--to", "1.99",
                     "--project-dir", str(REPO)]) == 2
    assert "--to: '1.99'" in capsys.readouterr().err


@pytest.mark.e2e
def test_prods_check_for_1_37_renders_everything_and_says_what_blocks(tmp_path):
    out = tmp_path / "report.json"
    assert cli.main(["upgrade-check", "prod", "--to", "1.37", "--format", "json",
                     "--output", str(out), "--project-dir", str(REPO)]) == 1
    document = json.loads(out.read_text())
    steps = [s["step"] for s in document["plan"]]
    assert steps == list(upgrade.ORDER) and document["ready"] is False
    blocked = {b["step"] for b in document["blockers"]}
    assert blocked == {"control plane", "add-ons", "cluster autoscaler"}
    ok = {s["step"]: s["findings"][0] for s in document["plan"]
          if s["findings"] and s["findings"][0]["status"] == "ok"}
    assert "rendered by helm at 1.37" in ok["charts"]["detail"]
    releases = int(ok["charts"]["subject"].split()[0])
    objects = int(ok["objects"]["subject"].split()[0])
    nodes = int(ok["node groups"]["subject"].split()[0])
    # docs/operations.md's "1.37, today" says these figures.
    docs = " ".join((REPO / "docs" / "operations.md").read_text(encoding="utf-8").split())
    assert f"the {releases} releases render at 1.37" in docs
    assert f"all {objects} objects of built-in kinds are on APIs 1.37 serves" in docs
    assert f"the {nodes} nodes drain in turn" in docs
