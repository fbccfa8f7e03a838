"""`platformctl charts diff` (platformctl/chartdiff.py) between two real versions of one vendored
chart: the Vault Secrets Operator, vendored at 1.4.1, and 0.10.0 (tests/fixtures/charts/), both
rendered by the real helm with dev's values."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from platformctl import chartdiff, cli, rendering, synced
from tests.conftest import REPO, recording_copy

OLDER = REPO / "tests" / "fixtures" / "charts" / "vault-secrets-operator-0.10.0.tgz"
CHART = "vault-secrets-operator"


@pytest.fixture(scope="module")
def dev_with_a_newer_value():
    """dev, its operator release also setting a value 1.4.1 reads and 0.10.0 does not."""
    dev = recording_copy("dev")
    (release,) = [r for r in dev.of_type(rendering.RELEASE_TYPE)
                  if str(r.inputs.get("chart")).startswith(f"charts/{CHART}-")]
    values = release.inputs["values"]
    values.setdefault("controller", {})["priorityClassName"] = "system-cluster-critical"
    return dev


def test_objects_values_and_crd_changes_between_two_real_versions(dev_with_a_newer_value):
    result = chartdiff.diff(REPO, CHART, OLDER, ["dev"], {"dev": dev_with_a_newer_value})
    assert (result.old_version, result.new_version) == ("1.4.1", "0.10.0")
    (release,) = result.releases
    # Objects: 0.10.0 has no CSISecrets (its CRD and its two roles go); the operator's image
    # and every object's chart labels change, with their field paths.
    assert release.removed == ["ClusterRole vault-secrets-operator-csisecrets-editor-role",
                               "ClusterRole vault-secrets-operator-csisecrets-viewer-role",
                               "CustomResourceDefinition csisecrets.secrets.hashicorp.com"]
    deployment = release.changed["Deployment vault/vault-secrets-operator-controller-manager"]
    assert "spec.template.spec.containers[1].image" in deployment
    assert "metadata.labels.helm.sh/chart" in deployment
    # Values: the one 0.10.0 does not read, found by the review's own ignored-values check.
    assert release.unread_values == ["controller.priorityClassName"]
    # CRDs: a version no longer served, fields removed.
    crds = {c["crd"]: c for c in release.crds}
    assert crds["csisecrets.secrets.hashicorp.com"]["versions_removed"] == ["v1beta1"]
    assert "spec.caCertPath" in crds["vaultconnections.secrets.hashicorp.com"][
        "fields_removed"]["v1beta1"]
    # Nothing of dev uses CSISecrets: no blocker.
    assert result.blockers == []


def test_a_crd_version_gone_while_the_stack_uses_it_is_a_blocker(dev_with_a_newer_value,
                                                                 monkeypatch):
    real = synced.applications

    def with_a_csi_secret(evaluation, root):
        return [*real(evaluation, root), SimpleNamespace(path="gitops/teams/x", objects=[{
            "apiVersion": "secrets.hashicorp.com/v1beta1", "kind": "CSISecrets",
            "metadata": {"name": "s", "namespace": "x"}}])]

    monkeypatch.setattr(synced, "applications", with_a_csi_secret)
    result = chartdiff.diff(REPO, CHART, OLDER, ["dev"], {"dev": dev_with_a_newer_value})
    assert result.blockers == [
        "dev: secrets.hashicorp.com/v1beta1 CSISecrets is no longer served by the new chart's "
        "CRD csisecrets.secrets.hashicorp.com, and objects of the stack use it"]


def test_charts_diff_command_and_its_refusals(tmp_path, capsys):
    assert cli.main(["charts", "diff", "nothere", str(OLDER), "--stack", "dev",
                     "--project-dir", str(REPO)]) == 2
    assert "chart 'nothere' is not vendored" in capsys.readouterr().err
    assert cli.main(["charts", "diff", CHART, str(tmp_path / "none.tgz"),
                     "--project-dir", str(REPO)]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "bad.tgz").write_text("not a chart")
    assert cli.main(["charts", "diff", CHART, str(tmp_path / "bad.tgz"), "--stack", "dev",
                     "--project-dir", str(REPO)]) == 2
    assert "not a packaged chart" in capsys.readouterr().err
    assert cli.main(["charts", "diff", "metrics-server", str(OLDER), "--stack", "dev",
                     "--project-dir", str(REPO)]) == 2
    assert "a chart named 'vault-secrets-operator', not 'metrics-server'" in \
        capsys.readouterr().err
    out = tmp_path / "diff.json"
    assert cli.main(["charts", "diff", CHART, str(OLDER), "--stack", "dev", "--format", "json",
                     "--output", str(out), "--project-dir", str(REPO)]) == 0
    document = json.loads(out.read_text())
    assert document["from"] == "1.4.1" and document["to"] == "0.10.0"


def test_review_base_shows_field_paths_and_crd_versions_a_chart_bump_removes():
    """review --base's rendered section (platformctl.review.diff), as documents carry objects:
    each changed object's field paths, and a CRD version the head no longer serves, flagged
    when the head's objects still use it."""
    from platformctl.review import _rendered_details

    def crd(*versions):
        return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "things.example.com"},
                "spec": {"group": "example.com", "names": {"kind": "Thing"},
                         "versions": [{"name": v, "served": True} for v in versions]}}

    thing = {"apiVersion": "example.com/v1beta1", "kind": "Thing", "metadata": {"name": "t"}}
    old = {"r: CustomResourceDefinition -/things.example.com": crd("v1beta1", "v1"),
           "r: Deployment x/d": {"kind": "Deployment", "spec": {"replicas": 1, "x": 1}},
           "r: Thing x/t": thing}
    new = {"r: CustomResourceDefinition -/things.example.com": crd("v1"),
           "r: Deployment x/d": {"kind": "Deployment", "spec": {"replicas": 2, "y": 1}},
           "r: Thing x/t": thing}
    details = _rendered_details(old, new)
    assert details["fields"]["r: Deployment x/d"] == ["spec.replicas", "spec.x (removed)",
                                                       "spec.y (added)"]
    assert details["crd_versions_removed"] == [{"crd": "things.example.com",
                                                "api": "example.com/v1beta1", "kind": "Thing",
                                                "in_use": True}]
    del new["r: Thing x/t"]
    assert _rendered_details(old, new)["crd_versions_removed"][0]["in_use"] is False


def test_review_base_blocks_a_crd_version_the_head_drops_while_objects_use_it():
    from platformctl.review import CRD_VERSION_POLICY, _crd_version_verdicts

    def doc(*versions, with_thing=True):
        crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "things.example.com"},
               "spec": {"group": "example.com", "names": {"kind": "Thing"},
                        "versions": [{"name": v, "served": True} for v in versions]}}
        objects = [{"kind": "CustomResourceDefinition", "namespace": None,
                    "name": "things.example.com", "object": crd}]
        if with_thing:
            objects.append({"kind": "Thing", "namespace": "x", "name": "t", "object": {
                "apiVersion": "example.com/v1beta1", "kind": "Thing"}})
        return {"rendered": {"releases": [{"release": "r", "objects": objects}]}}

    (verdict,) = _crd_version_verdicts(doc("v1beta1", "v1"), doc("v1"))
    assert verdict["policy"] == CRD_VERSION_POLICY and verdict["enforcement"] == "mandatory"
    assert "no longer serves example.com/v1beta1" in verdict["message"]
    assert _crd_version_verdicts(doc("v1beta1", "v1"), doc("v1", with_thing=False)) == []
    assert _crd_version_verdicts({}, doc("v1")) == []  # a base without rendered objects


def _repacked(source, into, edits: dict[str, tuple[str, str]]):
    """`source` (a vendored chart archive) with text replaced in some of its files."""
    import io
    import tarfile

    out = into / source.name
    with tarfile.open(source) as old, tarfile.open(out, "w:gz") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read() if member.isfile() else None
            if member.name in edits:
                before, after = edits[member.name]
                text = data.decode()
                assert before in text, member.name
                data = text.replace(before, after, 1).encode()
                member.size = len(data)
            new.addfile(member, io.BytesIO(data) if data is not None else None)
    return out


def test_a_change_behind_a_crd_api_the_stack_installs_is_shown(tmp_path):
    """Argo CD's ServiceMonitors exist only where `.Capabilities.APIVersions` has
    monitoring.coreos.com/v1, which the stack's Prometheus Operator CRDs add: the diff renders
    both sides with them, as the review does, or a change to them would go unseen."""
    controller = "argo-cd/templates/argocd-application-controller/servicemonitor.yaml"
    archive = _repacked(REPO / "charts" / "argo-cd-10.1.1.tgz", tmp_path, {
        "argo-cd/Chart.yaml": ("version: 10.1.1", "version: 10.1.2"),
        controller: ("    - port: {{ .Values.controller.metrics.service.portName }}\n",
                     "    - port: {{ .Values.controller.metrics.service.portName }}\n"
                     "      followRedirects: true\n")})
    result = chartdiff.diff(REPO, "argo-cd", archive, ["dev"], {"dev": recording_copy("dev")})
    (release,) = result.releases
    (monitor,) = [key for key in release.changed
                  if key.startswith("ServiceMonitor ") and "application-controller" in key]
    assert release.changed[monitor] == ["metadata.labels.helm.sh/chart",
                                        "spec.endpoints[0].followRedirects (added)"]
    assert release.added == release.removed == [] and len(release.changed) > 1  # chart labels
