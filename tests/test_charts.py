"""The vendored charts, rendered by the real helm: what the review checks is what `pulumi up`
installs, and what it would start is admitted, named and valid."""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import re
import shutil

import kubernetes_validate
import kubernetes_validate.utils
import pytest

from components import charts
from platformctl import cli, helmbin, rendering, review
from platformctl.recording import Evaluation, Secret
from tests.conftest import REPO

RELEASE = rendering.RELEASE_TYPE
BUILT_IN_GROUPS = {"", "apps", "batch", "policy", "autoscaling"}


# -- the archives ---------------------------------------------------------------------------

def test_every_archive_is_recorded_with_its_sha256_source_and_licence():
    catalog = charts.catalog()
    archives = sorted(p.name for p in (REPO / "charts").glob("*.tgz"))
    assert archives == sorted(c.archive for c in catalog.values())
    for chart in catalog.values():
        digest = hashlib.sha256(chart.archive_path.read_bytes()).hexdigest()
        assert digest == chart.sha256, chart.name
        assert chart.archive == f"{chart.name}-{chart.version}.tgz"
        assert re.fullmatch(r"[0-9a-f]{40}", chart.source["commit"]), chart.name
        assert (REPO / "charts" / chart.license["file"]).is_file(), chart.name


def test_every_release_installs_a_vendored_archive_at_its_version(evaluations):
    """Every release of every stack installs a vendored archive at its version, and every
    vendored chart is installed by some stack (Chaos Mesh by dev only)."""
    installed = set()
    for stack in evaluations.values():
        installed |= _installed(stack)
    assert installed == set(charts.catalog())  # nothing vendored that no release installs
    assert len(evaluations["prod"].of_type(RELEASE)) == 13
    assert len(evaluations["dev"].of_type(RELEASE)) == 14


def _installed(stack) -> set[str]:
    releases = stack.of_type(RELEASE)
    installed = set()
    for release in releases:
        chart = charts.by_chart_path(release.inputs["chart"])
        assert chart is not None, release.inputs["chart"]
        assert release.inputs["version"] == chart.version
        assert "repositoryOpts" not in release.inputs  # nothing fetched at `pulumi up`
        installed.add(chart.name)
    return installed


def test_an_archive_that_differs_from_its_record_is_refused(tmp_path):
    chart = charts.catalog()["metrics-server"]
    (tmp_path / "charts").mkdir()
    copied = dataclasses.replace(chart, root=tmp_path)
    with pytest.raises(charts.ChartError, match="is missing"):
        copied.verify()
    data = bytearray(chart.archive_path.read_bytes())
    data[-1] ^= 0xFF
    copied.archive_path.write_bytes(bytes(data))
    with pytest.raises(charts.ChartError, match=f"records {chart.sha256}"):
        copied.verify()


@pytest.fixture
def tampered_charts(tmp_path, monkeypatch):
    """The chart catalogue moved to a scratch copy whose archives a test may break."""
    shutil.copytree(REPO / "charts", tmp_path / "charts")
    moved = {name: dataclasses.replace(c, root=tmp_path) for name, c in charts.catalog().items()}
    monkeypatch.setattr(charts, "catalog", lambda root=None: moved)
    return moved


def _review_error(capsys) -> str:
    assert cli.main(["review", "dev", "--project-dir", str(REPO)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing printed as a plan
    assert "Traceback" not in captured.err
    (line,) = captured.err.strip().splitlines()
    return line


def test_review_refuses_an_altered_archive(tampered_charts, capsys):
    path = tampered_charts["gatekeeper"].archive_path
    path.write_bytes(path.read_bytes() + b"\0")
    line = _review_error(capsys)
    assert "chart gatekeeper 3.23.0: charts/gatekeeper-3.23.0.tgz has sha256" in line


def test_review_names_the_release_chart_and_helm_error_for_a_corrupt_archive(tampered_charts,
                                                                               capsys):
    chart = tampered_charts["vault"]
    chart.archive_path.write_bytes(b"not a gzip archive")
    # ...recorded as if reviewed, so only helm can tell.
    tampered_charts["vault"] = dataclasses.replace(
        chart, sha256=hashlib.sha256(b"not a gzip archive").hexdigest())
    line = _review_error(capsys)
    assert line.startswith("error: release dev-vault: chart vault 0.34.1: Error:"), line


def test_review_without_helm_says_how_to_install_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PLATFORMCTL_HELM", str(tmp_path / "no-helm"))
    helmbin.binary.cache_clear()
    helmbin.identity.cache_clear()
    try:
        line = _review_error(capsys)
    finally:
        helmbin.binary.cache_clear()
        helmbin.identity.cache_clear()
    assert "PLATFORMCTL_HELM" in line and "not an executable file" in line


def _one_release(evaluation: Evaluation, chart: str, values) -> Evaluation:
    (release,) = [r for r in evaluation.of_type(RELEASE)
                  if charts.by_chart_path(r.inputs["chart"]).name == chart]
    changed = dataclasses.replace(release, inputs={**release.inputs, "values": values})
    return dataclasses.replace(evaluation, resources=[changed], rendered=[])


def test_values_the_chart_schema_rejects_name_the_release_and_helms_line(evaluations):
    dev = evaluations["dev"]
    (vault,) = [r for r in dev.of_type(RELEASE) if r.inputs["name"] == "vault"]
    values = copy.deepcopy(vault.inputs["values"])
    values["server"]["ha"]["replicas"] = "three"  # values.schema.json: an integer
    with pytest.raises(rendering.RenderError) as raised:
        rendering.render(_one_release(dev, "vault", values), use_cache=False)
    message = str(raised.value)
    assert message.startswith("release dev-vault: chart vault 0.34.1: Error:")
    assert "replicas" in message and "\n" not in message


def test_secret_and_unknown_values_render_as_marked_placeholders(evaluations):
    from pulumi.runtime import rpc

    marked: list[str] = []
    values = rendering.helm_values({"a": Secret("s3cret"), "b": [rpc.UNKNOWN], "c": 1}, "", marked)
    assert values == {"a": rendering.SECRET_PLACEHOLDER, "b": [rendering.UNKNOWN_PLACEHOLDER],
                      "c": 1}
    assert marked == ["a (secret)", "b[0] (unknown offline)"]
    dev = evaluations["dev"]
    (metrics,) = [r for r in dev.of_type(RELEASE) if r.inputs["name"] == "metrics-server"]
    rendered = rendering.render(_one_release(
        dev, "metrics-server", {**metrics.inputs["values"], "priorityClassName": Secret("x")}),
        use_cache=False)
    assert rendered[0].placeholders == ["priorityClassName (secret)"]
    (deployment,) = rendered[0].find("Deployment")
    assert deployment.object["spec"]["template"]["spec"]["priorityClassName"] == \
        rendering.SECRET_PLACEHOLDER


# -- what the review shows --------------------------------------------------------------------

def test_review_lists_hundreds_of_rendered_objects_per_release(rendered):
    section = review.rendered_section(rendered["prod"])
    assert section["object_count"] >= 300
    by_chart = {r["chart"]: r for r in section["releases"]}
    assert set(by_chart) == set(charts.catalog()) - {"chaos-mesh"}  # dev only
    for release in section["releases"]:
        assert release["object_count"] == len(release["objects"]) > 0
        assert sum(release["object_counts"].values()) == release["object_count"]
    assert by_chart["kube-prometheus-stack"]["object_counts"]["Prometheus"] == 1
    for release in section["releases"]:  # generated keys and certificates never shown
        for o in release["objects"]:
            if o["kind"] == "Secret":
                assert set((o["object"].get("data") or {}).values()) <= {"[secret]"}


def test_a_warm_render_is_served_from_the_cache_and_identical(rendered):
    prod = rendered["prod"]
    again = rendering.render(dataclasses.replace(prod, rendered=[]))
    assert all(r.cached for r in again)
    assert [o.key for o in rendering.objects(prod)] == [o.key for r in again for o in r.objects]


# -- will it run ----------------------------------------------------------------------------

def test_every_port_forward_output_names_a_rendered_service_and_port(rendered):
    """Caught the Grafana Service, named from the release rather than fullnameOverride."""
    for evaluation in rendered.values():
        services = {(o.namespace, o.name): o.object for o in rendering.objects(evaluation)
                    if o.kind == "Service"}
        forwards = {k: v.value for k, v in evaluation.outputs.items() if k.endswith("PortForward")}
        assert len(forwards) == 5
        for key, command in forwards.items():
            match = re.fullmatch(r"kubectl -n (\S+) port-forward svc/(\S+) (\d+)(?::(\d+))?",
                                 command)
            assert match, command
            namespace, name, local, remote = match.groups()
            assert (namespace, name) in services, (key, command)
            ports = {p["port"] for p in services[(namespace, name)]["spec"]["ports"]}
            assert int(remote or local) in ports, (key, command, ports)


@pytest.fixture
def fast_kubernetes_validate(monkeypatch):
    # kubernetes-validate re-reads its ~1 MB definitions file for every object: read it once.
    monkeypatch.setattr(kubernetes_validate.utils, "schema_contents",
                        functools.cache(kubernetes_validate.utils.schema_contents))


def test_rendered_objects_validate_strictly_or_against_their_charts_crd(
        rendered, crds, fast_kubernetes_validate):
    seen = set()
    core = custom = 0
    for evaluation in rendered.values():
        version = evaluation.config.cluster.kubernetes_version + ".0"
        for o in rendering.objects(evaluation):
            identity = repr(o.object)
            if identity in seen:
                continue
            seen.add(identity)
            if crds.serves(o.api_version, o.kind):
                assert crds.errors(o.object) == [], (o.release, o.kind, o.name)
                custom += 1
            else:
                kubernetes_validate.validate(o.object, version, strict=True)
                core += 1
    assert core >= 250 and custom >= 40


def test_every_custom_resource_the_program_writes_has_its_crd_from_a_vendored_chart(
        rendered, crds):
    from tests.k8s_objects import manifest

    checked = 0
    for evaluation in rendered.values():
        for resource in evaluation.resources:
            if not resource.type.startswith("kubernetes:") or resource.type.startswith(
                    ("kubernetes:helm.sh/", "pulumi:providers:")):
                continue
            body = manifest(resource)
            group = body["apiVersion"].rpartition("/")[0]
            if group in BUILT_IN_GROUPS or group.endswith(".k8s.io"):
                continue
            if group == "constraints.gatekeeper.sh":
                # Made by Gatekeeper from the program's own ConstraintTemplates, not a chart.
                continue
            assert crds.serves(body["apiVersion"], body["kind"]), (resource.type, resource.name)
            assert crds.errors(body) == [], (resource.type, resource.name)
            checked += 1
    assert checked >= 10


def _doc(rendered_objects=None):
    doc = {"resources": [], "policies": {"mandatory": [], "advisory": []}, "cost": {"lines": []},
           "total_monthly_usd": 0.0}
    if rendered_objects is not None:
        doc["rendered"] = {"releases": [{"release": "vault", "objects": [
            {"kind": kind, "namespace": "vault", "name": name, "object": body}
            for kind, name, body in rendered_objects]}]}
    return doc


def test_base_diff_lists_rendered_objects_added_removed_and_changed():
    base = _doc([("StatefulSet", "vault", {"replicas": 1}), ("Service", "vault-ui", {})])
    head = _doc([("StatefulSet", "vault", {"replicas": 3}), ("ConfigMap", "vault-config", {})])
    objects = review.diff(base, head)["rendered"]
    assert objects == {"added": ["vault: ConfigMap vault/vault-config"],
                       "removed": ["vault: Service vault/vault-ui"],
                       "changed": ["vault: StatefulSet vault/vault"],
                       "fields": {"vault: StatefulSet vault/vault": ["replicas"]},
                       "crd_versions_removed": []}
    # A base revision from before rendering: nothing to compare, said so (not 'all added').
    older = review.diff(_doc(), head)["rendered"]
    assert older["added"] == older["removed"] == older["changed"] == []
    assert "does not render" in older["note"]


def test_every_value_a_release_sets_is_read_by_its_chart(rendered):
    """helm ignores a misspelt or renamed key without a word: each value the chart's defaults
    do not declare must change the rendering when changed (a path dev shows read is not tried
    again in prod: the same chart reads the same key)."""
    known_read: set[tuple[str, str]] = set()
    for evaluation in rendered.values():
        for release in evaluation.of_type(RELEASE):
            assert rendering.ignored_values(evaluation, release, known_read=known_read) == [], \
                release.name
    assert ("argo-cd", "configs.params.controller.diff.server.side") in known_read


def test_a_misspelt_value_is_found(evaluations):
    dev = evaluations["dev"]
    (metrics,) = [r for r in dev.of_type(RELEASE) if r.inputs["name"] == "metrics-server"]
    values = {**metrics.inputs["values"], "replicaz": 2,
              "podDisruptionBudget": {**metrics.inputs["values"]["podDisruptionBudget"],
                                      "minAvailible": 1}}
    changed = dataclasses.replace(metrics, inputs={**metrics.inputs, "values": values})
    assert sorted(rendering.ignored_values(dev, changed)) == [
        "podDisruptionBudget.minAvailible", "replicaz"]


def test_a_required_value_missing_names_the_release_and_helms_line(evaluations):
    dev = evaluations["dev"]
    (signatures,) = [r for r in dev.of_type(RELEASE) if r.inputs["name"] == "policy-controller"]
    values = {**signatures.inputs["values"], "cosign": {"webhookName": ""}}
    with pytest.raises(rendering.RenderError) as raised:
        rendering.render(_one_release(dev, "policy-controller", values), use_cache=False)
    message = str(raised.value)
    assert message.startswith("release dev-policy-controller: chart policy-controller 0.10.6: "
                              "Error:"), message
    assert "A valid cosign.webhookName is required" in message
