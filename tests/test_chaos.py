"""Chaos experiments on AWS (components/chaos.py): prod's FIS templates fail over the database
and terminate a quarter of the nodes, each stopping on the platform's CloudWatch alarms, each
carrying its hypothesis and SLO; the role FIS uses may touch only this database and cluster."""

from __future__ import annotations

import json

import yaml

from components.chaos import EXPERIMENTS
from tests.conftest import REPO

TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _alarm_urns(evaluation, prefix: str) -> set[str]:
    return {a.urn for a in evaluation.of_type(ALARM) if a.name.split("-", 1)[1].startswith(prefix)}


def test_prod_has_both_experiments_each_stopped_by_the_platforms_alarms(evaluations):
    prod = evaluations["prod"]
    templates = {t.name.split("-", 1)[1]: t for t in prod.of_type(TEMPLATE)}
    assert set(templates) == set(EXPERIMENTS)
    database, cluster = _alarm_urns(prod, "database"), _alarm_urns(prod, "cluster")
    assert len(database) == 3 and len(cluster) == 1
    failover = templates["database-failover"]
    (action,) = failover.inputs["actions"]
    assert action["actionId"] == "aws:rds:reboot-db-instances"
    assert action["parameters"] == [{"key": "forceFailover", "value": "true"}]
    (target,) = failover.inputs["targets"]
    db = prod.one("aws:rds/instance:Instance", "prod-postgres")
    assert target["resourceType"] == "aws:rds:db"
    assert db.urn in failover.property_dependencies["targets"]
    assert set(failover.property_dependencies["stopConditions"]) == database
    nodes = templates["node-termination"]
    (action,) = nodes.inputs["actions"]
    assert action["actionId"] == "aws:eks:terminate-nodegroup-instances"
    assert action["parameters"] == [{"key": "instanceTerminationPercentage", "value": "25"}]
    groups = {g.urn for g in prod.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert groups <= set(nodes.property_dependencies["targets"])
    assert set(nodes.property_dependencies["stopConditions"]) == database | cluster
    for key, template in templates.items():
        stops = template.inputs["stopConditions"]
        assert stops and all(s["source"] == "aws:cloudwatch:alarm" for s in stops)
        assert template.inputs["tags"]["hypothesis"] == EXPERIMENTS[key]["hypothesis"]
        assert template.inputs["tags"]["slo"] == EXPERIMENTS[key]["slo"]
        assert template.inputs["tags"]["run"].startswith("aws fis start-experiment")
        assert template.inputs["tags"]["abort"].startswith("aws fis stop-experiment")
    assert evaluations["dev"].of_type(TEMPLATE) == []


def test_the_fis_role_may_touch_only_this_database_and_this_clusters_nodes(evaluations):
    prod = evaluations["prod"]
    (policy,) = [p for p in prod.of_type("aws:iam/rolePolicy:RolePolicy") if p.name == "prod-fis"]
    document = json.loads(policy.inputs["policy"])
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["FailOverTheDatabase"]["Resource"] == [
        "arn:aws:rds:us-east-1:123456789012:db:platform-prod"]
    terminate = by_sid["TerminateTheClustersNodes"]
    assert terminate["Condition"] == {"StringEquals": {
        "aws:ResourceTag/eks:cluster-name": prod.outputs["clusterName"].value}}
    writes = {a for s in document["Statement"] for a in s["Action"]
              if not a.split(":")[1].startswith("Describe")}
    assert writes == {"rds:RebootDBInstance", "ec2:TerminateInstances"}


CHAOS = REPO / "gitops" / "chaos"


def test_the_chaos_mesh_experiments_validate_against_the_vendored_crds(rendered):
    """Each experiment in gitops/chaos/ is a Chaos Mesh object its CRD (from the chart dev
    renders) accepts, aims at the reference service, and says its hypothesis, SLO, run and
    abort."""
    from platformctl.crds import CrdIndex

    crds = CrdIndex.of(rendered["dev"].rendered)
    kinds = set()
    for path in sorted(CHAOS.glob("*.yaml")):
        (body,) = yaml.safe_load_all(path.read_text())
        assert crds.serves(body["apiVersion"], body["kind"]), path.name
        assert crds.errors(body) == [], path.name
        kinds.add(body["kind"])
        annotations = body["metadata"]["annotations"]
        for key in ("hypothesis", "slo", "run", "abort"):
            assert annotations[f"platform.example.org/{key}"].strip(), (path.name, key)
        assert annotations["platform.example.org/run"].endswith(path.relative_to(REPO).as_posix())
        assert body["spec"]["selector"]["labelSelectors"] == {"app.kubernetes.io/name": "checkout"}
    assert kinds == {"PodChaos", "NetworkChaos", "StressChaos"}
    # ...and a malformed one is refused.
    bad = {"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos",
           "metadata": {"name": "x", "namespace": "checkout"},
           "spec": {"action": "pod-kill", "mode": "one", "selector": "everything"}}
    assert crds.errors(bad)


def test_chaos_mesh_runs_in_dev_only_privileged_in_its_own_namespace(evaluations):
    dev, prod = evaluations["dev"], evaluations["prod"]
    (release,) = [r for r in dev.of_type("kubernetes:helm.sh/v3:Release")
                  if r.inputs["name"] == "chaos-mesh"]
    values = release.inputs["values"]
    assert values["dashboard"]["create"] is False and values["dnsServer"]["create"] is False
    assert values["chaosDaemon"]["runtime"] == "containerd"
    (namespace,) = [n for n in dev.of_type("kubernetes:core/v1:Namespace")
                    if n.inputs["metadata"]["name"] == "chaos-mesh"]
    assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == (
        "privileged")
    assert not [r for r in prod.of_type("kubernetes:helm.sh/v3:Release")
                if r.inputs["name"] == "chaos-mesh"]


def test_the_latency_experiment_is_the_measured_one_on_devs_database_path(evaluations):
    """checkout-latency delays only what the pods send to dev's database subnets, by the latency
    bench/slow_database.py measured, and its hypothesis states that run's figures."""
    body = yaml.safe_load((CHAOS / "checkout-latency.yaml").read_text())
    dev = evaluations["dev"]
    database = sorted(s.inputs["cidrBlock"] for s in dev.of_type("aws:ec2/subnet:Subnet")
                      if s.inputs["tags"]["tier"] == "database")
    assert body["spec"]["direction"] == "to"
    assert sorted(body["spec"]["externalTargets"]) == database
    report = json.loads((REPO / "bench" / "evidence" / "checkout-slow-database.json").read_text())
    assert body["spec"]["delay"]["latency"] == f"{report['method']['latency_ms']:g}ms"
    latency = next(p for p in report["phases"] if p["phase"] == "latency")
    dead = next(p for p in report["phases"] if p["phase"] == "dead")
    hypothesis = " ".join(body["metadata"]["annotations"]["platform.example.org/hypothesis"]
                          .split())
    served = (latency["answered"] - latency["failed"]) / (latency["to_s"] - latency["from_s"])
    assert (f"{latency['failed_share']:.0%} of requests refused during the fault ({served:.1f} "
            "served per second)") in hypothesis
    assert f"the slowest answer {latency['slowest_ms'] / 1000:.1f} s" in hypothesis
    assert f"serving again {latency['recovery_s']:g} s after it ended" in hypothesis
    assert f"after a dead connection (the breaker open, answers at once) {dead['recovery_s']:g} s" \
        in hypothesis
    assert all(report["checks"].values())
