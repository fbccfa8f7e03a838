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


def test_an_api_still_served_beside_its_stable_version_is_noted_as_deprecated():
    report = _report("1.36", "1.36")
    upgrade.check_objects(report, [("gitops teams/a", {
        "apiVersion": "resource.k8s.io/v1beta2", "kind": "DeviceClass",
        "metadata": {"name": "gpu"}, "spec": {}})])
    assert not report.blockers
    (note,) = [f for f in report.findings if f.status == upgrade.NOTE]
    assert "superseded" in note.detail and note.fix == "use resource.k8s.io/v1"
    assert upgrade._stability("v1") > upgrade._stability("v1beta2") > upgrade._stability(
        "v1beta1") > upgrade._stability("v1alpha3")


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
    # The next one, allowed: the control plane is fine, the pins are 1.36's recorded builds.
    ready = _report("1.35", "1.36")
    upgrade.check_pins(ready, config)
    assert not ready.blockers
    # A pin that is not the build recorded as known good on the target blocks, naming it.
    pins = config.cluster.addon_versions.model_copy(update={"coredns": "v1.11.1-eksbuild.9"})
    other = SimpleNamespace(cluster=SimpleNamespace(addon_versions=pins))
    differs = _report("1.35", "1.36")
    upgrade.check_pins(differs, other)
    (blocker,) = differs.blockers
    assert blocker.subject == "coredns v1.11.1-eksbuild.9"
    assert "known-good build is v1.14.3-eksbuild.23" in blocker.detail


def test_one_record_of_the_minors_for_the_config_model_and_the_check():
    """platform_facts/kubernetes.json: the config model's allowed versions, its add-on defaults
    and the autoscaler's tags are read from it, each minor's facts with a source."""
    from components.cluster import CLUSTER_AUTOSCALER_IMAGE_TAGS, AddonVersions, ClusterArgs
    from platform_facts import kubernetes as facts

    allowed = ClusterArgs.model_fields["kubernetes_version"].annotation.__args__
    assert allowed == facts.minors()
    assert ClusterArgs.model_fields["kubernetes_version"].default == facts.default_minor()
    defaults = {k.replace("_", "-"): v for k, v in AddonVersions().model_dump().items()}
    assert defaults == facts.addons(facts.default_minor())
    assert CLUSTER_AUTOSCALER_IMAGE_TAGS == {m: facts.cluster_autoscaler_tag(m)
                                             for m in facts.minors()}
    for minor in facts.minors():
        assert facts.source(minor, "cluster_autoscaler") != "no record"
        assert facts.cluster_autoscaler_tag(minor).startswith(f"v{minor}.")
        if facts.addons(minor):
            assert facts.addons(minor)["kube-proxy"].startswith(f"v{minor}.")
            assert "looked up" in facts.source(minor, "addons") or "20" in facts.source(
                minor, "addons")


def test_a_disruption_budget_that_forbids_evictions_blocks_the_node_roll():
    budget = Verdict("disruption-budgets", "mandatory", "high",
                     "minAvailable 1 over 1 pod (Deployment x) never allows an eviction",
                     "allow one pod down", "PodDisruptionBudget", "release/x")
    evaluation = SimpleNamespace(is_rendered=False)
    report = _report()
    upgrade.check_node_roll(report, SimpleNamespace(guard=GuardReport(violations=[budget]),
                                                    evaluation=evaluation))
    pdb, unplaced = report.blockers
    assert pdb.step == "node groups" and "never allows an eviction" in pdb.detail
    # (and without rendered releases the drains were not simulated: that blocks too)
    assert unplaced.subject == "drain simulation" and "not evaluated" in unplaced.detail
    # A check that did not run is not a pass.
    unseen = _report()
    upgrade.check_node_roll(unseen, SimpleNamespace(guard=GuardReport(not_evaluated=[
        NotEvaluated("disruption-budgets", "not rendered")]), evaluation=evaluation))
    assert [f.subject for f in unseen.blockers] == ["PodDisruptionBudgets", "drain simulation"]


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


def test_a_chart_whose_kube_version_excludes_the_target_is_refused_by_helm(tmp_path):
    """A chart (packaged here by the real helm) whose kubeVersion stops below 1.37: helm
    itself refuses to render it at the target, and render_each records that per release while
    the others render."""
    import hashlib
    import subprocess

    import yaml

    from platformctl import helmbin, rendering
    from platformctl.recording import RecordedResource

    root = tmp_path / "project"
    (root / "charts").mkdir(parents=True)
    entries = {}
    for name, constraint in (("old", "<1.37.0-0"), ("fine", ">=1.30.0-0")):
        source = tmp_path / name
        (source / "templates").mkdir(parents=True)
        (source / "Chart.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v2", "name": name, "version": "1.0.0", "appVersion": "1",
            "kubeVersion": constraint}))
        (source / "templates" / "cm.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {a: b}\n")
        subprocess.run([str(helmbin.binary()), "package", str(source), "-d",
                        str(root / "charts")], check=True, capture_output=True)
        archive = root / "charts" / f"{name}-1.0.0.tgz"
        entries[name] = {"version": "1.0.0", "app_version": "1", "archive": archive.name,
                         "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
                         "published": "fixture", "source": {"repository": "x/y", "ref": "t",
                                                             "commit": "0" * 40, "path": name},
                         "license": {"spdx": "Apache-2.0", "file": "licenses/x.txt"}}
    (root / "charts" / "charts.yaml").write_text(yaml.safe_dump({"charts": entries}))

    def release(name: str) -> RecordedResource:
        return RecordedResource(
            rendering.RELEASE_TYPE, name, f"urn:{name}", True,
            {"name": name, "namespace": "x", "chart": f"charts/{name}-1.0.0.tgz",
             "version": "1.0.0", "values": {}}, None, [], {}, None, False, False, False, [], [])

    evaluation = SimpleNamespace(of_type=lambda t: [release("old"), release("fine")]
                                 if t == rendering.RELEASE_TYPE else [])
    rendered, refused = rendering.render_each(evaluation, "v1.37.0", root)
    assert [r.release for r in rendered] == ["fine"]
    assert set(refused) == {"old"} and "kubeVersion" in refused["old"] \
        and "<1.37.0-0" in refused["old"]
    # ...and upgrade-check makes it a blocker of the charts step, the other release's objects
    # checked against 1.37.
    report = _report()
    upgrade.check_rendered(report, evaluation, root)
    (blocker,) = report.blockers
    assert (blocker.step, blocker.subject) == ("charts", "old")
    assert any(f.step == "objects" and f.subject.startswith("1 objects") for f in report.findings)
