"""node-capacity: the pods the platform schedules against what its node groups hold
(platform_guard/capacity.py, facts in capacity.json)."""

from __future__ import annotations

import pytest
from platform_guard import capacity

from platformctl import review


@pytest.mark.parametrize(("instance_type", "pods", "cpu", "memory"), [
    # max pods = ENIs x (IPv4 per ENI - 1) + 2 (PLATFORM.md: 17, 8, 35, 29)
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
    assert shape.max_pods == 110  # EKS's recommended cap below 30 vCPUs
    assert shape.memory_mib == 4096 - (11 * 110 + 255) - 100
    assert capacity.prefix_delegation([{"addonName": "vpc-cni", "configurationValues":
                                         '{"env": {"ENABLE_PREFIX_DELEGATION": "true"}}'}])
    assert not capacity.prefix_delegation([{"addonName": "vpc-cni", "configurationValues":
                                             '{"enableNetworkPolicy": "true"}'}])


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


def test_today_prod_schedules_more_pods_than_its_nodes_hold(rendered):
    """The starting point the issue measured by hand: about 58 pods on 3 x t4g.medium (51)."""
    (minimum, lost) = review.capacity_section(rendered["prod"])
    assert minimum["pods"] == {"requested": 58, "allocatable": 51}
    assert lost["pods"]["allocatable"] == 34 and not lost["fits"]


def test_the_base_diff_tells_the_two_prod_scenarios_apart():
    def doc(*messages):
        return {"resources": [], "cost": {"lines": []}, "total_monthly_usd": 0.0,
                "policies": {"mandatory": [], "advisory": [
                    {"policy": "node-capacity", "resource_type": None, "resource_name": None,
                     "message": m} for m in messages]}}

    lost = "stack 'node groups one node lost': with 2 node(s) the platform's pods do not fit"
    minimum = "stack 'node groups at minimum size': with 3 node(s) the platform's pods do not fit"
    change = review.diff(doc(), doc(minimum, lost))
    assert [v["message"] for v in change["violations"]["new"]] == sorted([minimum, lost])
    # ...and a verdict whose numbers change is not reported as resolved and new.
    assert review.diff(doc(minimum + ": 58 of 51"), doc(minimum + ": 59 of 51"))[
        "violations"] == {"new": [], "resolved": []}
