"""node-capacity: the pods the platform schedules against what its node groups hold
(platform_facts/capacity.py, facts in capacity.json)."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from platform_facts import capacity
from platformctl import review
from platformctl.crossguard import check_evaluation, rendered_releases
from platformctl.recording import Evaluation
from platformctl.runtime_checks import Application
from tests.conftest import with_resources

POLICY = "node-capacity"


@pytest.mark.parametrize(("instance_type", "pods", "cpu", "memory"), [
    # max pods = ENIs x (IPv4 per ENI - 1) + 2 (t4g.medium 17, m7g.medium 8, t4g.large 35, m7g.large 29)
    ("t4g.medium", 17, 1930, 4096 - (11 * 17 + 255) - 100),
    ("m7g.medium", 8, 940, 4096 - (11 * 8 + 255) - 100),
    ("t4g.large", 35, 1930, 8192 - (11 * 35 + 255) - 100),
    ("m7g.large", 29, 1930, 8192 - (11 * 29 + 255) - 100),
])
def test_allocatable_follows_the_cni_limit_and_ekss_kube_reserved(instance_type, pods, cpu, memory):
    shape = capacity.node_shape(instance_type, prefix_delegation=False)
    assert (shape.max_pods, shape.cpu_m, shape.memory_mib) == (pods, cpu, memory)


def test_prefix_delegation_lifts_the_pod_limit_and_reserves_more_memory():
    shape = capacity.node_shape("t4g.medium", prefix_delegation=True)
    assert capacity.address_limit("t4g.medium", True) == 3 * 5 * 16 + 2
    assert shape.max_pods == 110  # EKS's recommended cap below 30 vCPUs
    assert shape.memory_mib == 4096 - (11 * 110 + 255) - 100
    assert capacity.prefix_delegation([{"addonName": "vpc-cni", "configurationValues":
                                         '{"env": {"ENABLE_PREFIX_DELEGATION": "true"}}'}])
    assert not capacity.prefix_delegation([{"addonName": "vpc-cni", "configurationValues":
                                             '{"enableNetworkPolicy": "true"}'}])


def test_the_nodes_nodeconfig_sets_max_pods_and_what_kube_reserved_is_computed_for():
    from components.cluster import node_config_user_data

    settings = capacity.kubelet_settings(node_config_user_data(40))
    assert settings == capacity.KubeletSettings(max_pods=40, reserved_for=40)
    shape = capacity.node_shape("t4g.medium", True, settings)
    assert (shape.max_pods, shape.memory_mib) == (40, 4096 - (11 * 40 + 255) - 100)
    # kubelet.config.maxPods alone: nodeadm reserves for the ENI limit without prefixes (17).
    alone = capacity.node_shape("t4g.medium", True, capacity.KubeletSettings(max_pods=40))
    assert (alone.max_pods, alone.memory_mib) == (40, 4096 - (11 * 17 + 255) - 100)
    # Admitted beyond the addresses the CNI has: the extra pods never start.
    assert capacity.node_shape("m7g.medium", False, settings).max_pods == 8


def test_later_nodeconfig_documents_override_earlier_ones():
    import base64

    def part(body: str) -> str:
        return f"--B\nContent-Type: application/node.eks.aws\n\n{body}\n"

    document = ('MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n'
                + part("spec: {kubelet: {config: {maxPods: 20}, maxPodsExpression: '20'}}")
                + "--B\nContent-Type: text/x-shellscript\n\necho hi\n"
                + part("spec: {kubelet: {config: {maxPods: 50}, "
                       "maxPodsExpression: 'max_pods + 2'}}") + "--B--\n")
    settings = capacity.kubelet_settings(base64.b64encode(document.encode()).decode())
    # An expression other than a number is not evaluated here: reserved_for unknown.
    assert settings == capacity.KubeletSettings(max_pods=50, reserved_for=None)
    assert capacity.kubelet_settings("not base64!") == capacity.KubeletSettings()
    assert capacity.kubelet_settings(None) == capacity.KubeletSettings()


def _fits(replicas: int, lost: int = 0) -> capacity.Scenario:
    groups = [capacity.NodeGroup("system", 2, ("t4g.medium", "m7g.medium"))]
    scheduled = [capacity.Workload("app", "Deployment", "api", replicas, 100, 128),
                 capacity.Workload("app", "DaemonSet", "agent", None, 10, 32)]
    return capacity.scenario("test", groups, lost, scheduled, prefix_delegation=False)


def test_one_replica_too_many_does_not_fit():
    # m7g.medium (8 pods) is the smaller type: 2 nodes hold 16 pods, 2 of them DaemonSet pods.
    assert _fits(14).fits
    found = _fits(15)
    assert not found.fits and found.pods == (17, 16)
    lost = _fits(6, lost=1)  # one node left: 8 pods, one of them the DaemonSet's
    assert lost.nodes == 1 and lost.pods == (7, 8) and lost.fits


def test_the_review_shows_capacity_per_scenario(rendered):
    for name, evaluation in rendered.items():
        rows = review.capacity_section(evaluation)
        assert [r["scenario"] for r in rows] == (
            ["at minimum size", "one node lost"] if name == "prod" else ["at minimum size"])
        for row in rows:
            assert row["pods"]["requested"] > 0 and row["memory_mib"]["allocatable"] > 0
            assert row["fits"] == all(row[k]["requested"] <= row[k]["allocatable"]
                                      for k in ("pods", "cpu_millicores", "memory_mib"))


def test_the_shipped_stacks_fit_their_nodes(rendered):
    """prod: 3 on-demand t4g.medium (one per AZ) and 1 spot node (maxPods 40, prefix
    delegation), and with one lost, 3 still hold the platform; dev: 2 spot nodes of one shape.
    Both count the team service Argo CD syncs."""
    for name, evaluation in rendered.items():
        report = check_evaluation(evaluation)
        assert report.of(POLICY) == [], name
        assert report.evaluated(POLICY)
        assert [a.name for a in evaluation.synced] == ["checkout-checkout"]
    (minimum, lost) = review.capacity_section(rendered["prod"])
    assert minimum["nodes"] == 4 and lost["nodes"] == 3 and lost["fits"]
    # Zonal: 1, 1 and 1 on-demand nodes and the spot node in the first AZ (by name: not the
    # plan's order, which varies by run); the node lost comes out of a group with the largest
    # nodes.
    assert [(g["name"], g["nodes"]) for g in minimum["node_groups"]] == [
        ("prod-spot-us-east-1a", 1), ("prod-spot-us-east-1b", 0), ("prod-spot-us-east-1c", 0),
        ("prod-system-us-east-1a", 1), ("prod-system-us-east-1b", 1),
        ("prod-system-us-east-1c", 1)]
    for group in lost["node_groups"]:
        assert {k: v for k, v in group.items() if k not in ("name", "nodes")} == {
            "instance_types": group["instance_types"], "pods_per_node": 40, "cpu_millicores_per_node": 1930,
            "memory_mib_per_node": 4096 - (11 * 40 + 255) - 100}
    assert lost["memory_mib"]["allocatable"] == 3 * group["memory_mib_per_node"]
    (dev,) = review.capacity_section(rendered["dev"])
    assert dev["nodes"] == 2 and dev["fits"]


def _scheduled(evaluation: Evaluation) -> list[capacity.Workload]:
    releases = rendered_releases(evaluation).values()
    return [*capacity.workloads(releases), *capacity.workloads(evaluation.synced)]


def test_the_team_services_and_the_autoscaler_are_counted(rendered):
    scheduled = {(w.source, w.kind, w.name): w for w in _scheduled(rendered["prod"])}
    checkout = scheduled[("checkout-checkout", "Rollout", "checkout")]
    # replicas 2 in the Rollout, HPA minReplicas 2; 250m and 256Mi each.
    assert (checkout.replicas, checkout.cpu_m, checkout.memory_mib) == (2, 250, 256)
    autoscaler = scheduled[("cluster-autoscaler", "Deployment", "cluster-autoscaler")]
    assert (autoscaler.replicas, autoscaler.cpu_m, autoscaler.memory_mib) == (2, 100, 300)


def test_an_hpa_minimum_above_the_replicas_counts():
    class Source:
        name = "svc"
        objects = [
            {"kind": "Rollout", "metadata": {"name": "api"}, "spec": {"replicas": 1, "template": {
                "spec": {"containers": [{"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}}}},
            {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "api"}, "spec": {
                "minReplicas": 3, "scaleTargetRef": {"kind": "Rollout", "name": "api"}}}]

    (found,) = capacity.workloads([Source()])
    assert (found.replicas, found.cpu_m, found.memory_mib) == (3, 1000, 1024)


def _with_node_group(evaluation: Evaluation, **changes) -> Evaluation:
    resources = []
    for r in evaluation.resources:
        if r.type == capacity.NODE_GROUP:
            r = dataclasses.replace(r, inputs={**r.inputs, **changes})
        resources.append(r)
    return with_resources(evaluation, resources)




def test_three_prod_nodes_do_not_survive_losing_one(rendered):
    # Without the spot node prod has three: with one lost, two hold neither its memory nor
    # its CPU.
    prod = rendered["prod"]
    resources = []
    for r in prod.resources:
        if r.name == "prod-spot-us-east-1a":  # 1, 1, 1 + 1 -> 1, 1, 1 + 0
            r = dataclasses.replace(r, inputs={**r.inputs, "scalingConfig": {
                **r.inputs["scalingConfig"], "minSize": 0}})
        resources.append(r)
    (verdict,) = check_evaluation(with_resources(prod, resources)).of(POLICY)
    assert verdict.enforcement == "mandatory"
    assert "node groups one node lost" in verdict.message and "with 2 nodes" in verdict.message
    assert "short of CPU, memory" in verdict.message


def test_nodes_without_the_nodeconfig_reserve_memory_for_110_pods(rendered):
    prod = rendered["prod"]
    resources = [dataclasses.replace(r, inputs={k: v for k, v in r.inputs.items()
                                                if k != "userData"})
                 if r.type == "aws:ec2/launchTemplate:LaunchTemplate" else r
                 for r in prod.resources]
    (minimum, lost) = review.capacity_section(with_resources(prod, resources))
    assert lost["node_groups"][0]["pods_per_node"] == 110
    assert lost["node_groups"][0]["memory_mib_per_node"] == 4096 - (11 * 110 + 255) - 100
    assert not lost["fits"]


def test_instance_types_of_two_shapes_or_unknown_are_refused(rendered):
    mixed = _with_node_group(rendered["dev"], instanceTypes=["t4g.medium", "m7g.medium"])
    # Refused for the two shapes, and counted as the smaller: 2 x 940m do not hold dev's CPU.
    (*shapes, short) = check_evaluation(mixed).of(POLICY)
    assert [s.resource_name for s in shapes] == ["dev-system-us-east-1a", "dev-system-us-east-1b"]
    for verdict in shapes:
        assert "t4g.medium (2 vCPU, 4,096 MiB), m7g.medium (1 vCPU, 4,096 MiB)" in verdict.message
    assert "short of CPU" in short.message
    unknown = _with_node_group(rendered["dev"], instanceTypes=["t4g.medium", "m9g.large"])
    verdicts = check_evaluation(unknown).of(POLICY)
    assert len(verdicts) == 2
    assert all("m9g.large are not in platform_facts/capacity.json" in v.message for v in verdicts)


def test_the_base_diff_tells_the_two_prod_scenarios_apart():
    def doc(*messages):
        return {"resources": [], "cost": {"lines": []}, "total_monthly_usd": 0.0,
                "policies": {"mandatory": [
                    {"policy": "node-capacity", "enforcement": "mandatory", "severity": "high",
                     "resource_type": None, "resource_name": None, "message": m,
                     "remediation": "Resize the node groups."} for m in messages],
                    "advisory": []}}

    lost = "stack 'node groups one node lost': with 2 nodes the platform's pods do not fit"
    minimum = "stack 'node groups at minimum size': with 3 nodes the platform's pods do not fit"
    change = review.diff(doc(), doc(minimum, lost))
    assert [v["message"] for v in change["violations"]["new"]] == sorted([minimum, lost])
    # ...and a verdict whose numbers change is not reported as resolved and new.
    assert review.diff(doc(minimum + ": 58 of 51"), doc(minimum + ": 59 of 51"))[
        "violations"] == {"new": [], "resolved": []}


def test_one_replica_too_many_on_the_real_dev_stack_is_refused(rendered):
    """A team service whose replicas take every pod slot dev's two nodes have left fits; one
    replica more does not."""
    dev = rendered["dev"]
    (row,) = review.capacity_section(dev)
    free = int(row["pods"]["allocatable"] - row["pods"]["requested"])

    def with_service(replicas: int) -> Evaluation:
        body = {"kind": "Deployment", "metadata": {"name": "filler"}, "spec": {
            "replicas": replicas, "template": {"spec": {"containers": [
                {"name": "app", "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]}}}}
        extra = Application("team-filler", "gitops/teams/team/filler", [body])
        return dataclasses.replace(dev, synced=[*dev.synced, extra])

    assert check_evaluation(with_service(free)).of(POLICY) == []
    (verdict,) = check_evaluation(with_service(free + 1)).of(POLICY)
    held = int(row["pods"]["allocatable"])
    assert "short of pods" in verdict.message and f"pods {held + 1} of {held}" in verdict.message


def test_every_rendered_container_of_the_platform_requests_cpu_and_memory(rendered):
    # Before: 25 prod pods of 12 workloads requested nothing and counted as zero.
    for name, evaluation in rendered.items():
        assert [(w.source, w.name, w.missing) for w in _scheduled(evaluation) if w.missing] \
            == [], name
        report = check_evaluation(evaluation)
        assert report.of("disruption-budgets") == [], name
        assert report.evaluated("disruption-budgets")


def test_operator_pods_count_their_config_reloader(rendered):
    # The chart passes the operator "0" unless set: the sidecar would request nothing.
    prometheus = [w for w in _scheduled(rendered["prod"]) if w.kind == "Prometheus"]
    assert [(w.cpu_m, w.memory_mib, w.missing) for w in prometheus] == [(200 + 10, 1024 + 50, ())]
    release = next(r for r in rendered_releases(rendered["prod"]).values()
                   if r.name == "kube-prometheus-stack")
    without = [o for o in release.objects if o.get("kind") != "Deployment"
               or not str(o.get("metadata", {}).get("name", "")).endswith("operator")]
    (alone,) = [w for w in capacity.workloads([dataclasses.replace(release, objects=without)])
                if w.kind == "Prometheus"]
    assert alone.missing == ("config-reloader (no prometheus-operator in this release): cpu, "
                             "memory",)


def test_a_single_vault_server_has_no_budget_to_block_drains(rendered):
    dev = rendered_releases(rendered["dev"])
    vault = next(r for r in dev.values() if r.name == "vault")
    assert [o for o in vault.objects if o.get("kind") == "PodDisruptionBudget"] == []
    prod = next(r for r in rendered_releases(rendered["prod"]).values() if r.name == "vault")
    (budget,) = [o for o in prod.objects if o.get("kind") == "PodDisruptionBudget"]
    assert budget["spec"]["maxUnavailable"] == 1


def test_zonal_groups_of_one_shape_share_one_line(rendered):
    from platformctl.report import _capacity_node_shapes

    (spot, system) = _capacity_node_shapes(review.capacity_section(rendered["prod"]))
    assert system.startswith("prod-system-us-east-1a, prod-system-us-east-1b, "
                             "prod-system-us-east-1c (t4g.medium): one node holds 40 pods")
    assert spot.startswith("prod-spot-us-east-1a, prod-spot-us-east-1b, "
                           "prod-spot-us-east-1c (t4g.medium/c7g.large): one node holds 40 pods")


def test_an_add_on_whose_requests_are_not_known_is_refused(rendered, monkeypatch):
    # capacity.json's null means "could not be read": refused, not counted as zero.
    facts = copy.deepcopy(capacity.data())
    facts["addonPods"]["coredns"][0]["memoryMiB"] = None
    monkeypatch.setattr(capacity, "data", lambda: facts)
    messages = [v.message for v in check_evaluation(rendered["dev"]).of(POLICY)]
    assert any("add-on coredns/coredns" in m and "coredns: memory not known" in m
               for m in messages), messages
