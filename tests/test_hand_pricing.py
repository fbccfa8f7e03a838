"""An independent hand pricing of the cost model's usage and age lines on the shipped stacks:
each figure recomputed here from AWS's list prices (written out, not read from prices.json), the
assumptions as docs/cost-and-policies.md states them and the facts of the plan, and held to the
model's line within $1 (the issue's tolerance; most agree to the cent)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from platformctl.pricing import cost_report

HOURS = 730  # AWS's month
SECONDS = HOURS * 3600
AWAKE = Decimal(50) / 168  # dev's off-hours: weekdays 08-18
# us-east-1 list prices (aws.amazon.com pricing pages), per unit:
INTERNET_GB, INTER_AZ_GB_EACH_WAY = Decimal("0.09"), Decimal("0.01")
LOGS_INGEST_GB, GP3_GB_MONTH = Decimal("0.50"), Decimal("0.08")
FIS_ACTION_MINUTE, KMS_KEY_MONTH, KMS_ROTATION_MONTH = Decimal("0.10"), Decimal(1), Decimal(1)
# Leader-elected controllers, by chart or add-on, as the stack installs them (a lease each,
# renewed every 2 s): cert-manager's controller and cainjector, the policy-controller's two
# webhooks, the EBS CSI driver's provisioner and attacher sidecars...
LEASES = {"cert-manager": 2, "cluster-autoscaler": 1, "aws-load-balancer-controller": 1,
          "vault-secrets-operator": 1, "argo-rollouts": 1, "argocd": 1, "policy-controller": 2,
          "chaos-mesh": 1, "aws-ebs-csi-driver": 2}


def _model(report, resource_type, key):
    return {line.resource_name: line.monthly_usd for line in report.priced
            if line.resource_type == resource_type and line.key == key}


def _node_groups(evaluation):
    return {r.name: r.inputs for r in evaluation.of_type("aws:eks/nodeGroup:NodeGroup")}


def _awake(evaluation) -> Decimal:
    return AWAKE if evaluation.config.off_hours is not None else Decimal(1)


def _hand(evaluation) -> dict[tuple[str, str, str], Decimal]:
    """(type, resource, key) -> USD a month, by hand."""
    cfg = evaluation.config
    awake = _awake(evaluation)
    zones = len({s.inputs["availabilityZone"] for s in evaluation.of_type("aws:ec2/subnet:Subnet")
                 if s.inputs.get("tags", {}).get("kubernetes.io/role/internal-elb")})
    hand: dict[tuple[str, str, str], Decimal] = {}
    running = Decimal(0)
    for name, props in _node_groups(evaluation).items():
        nodes = props["scalingConfig"]["desiredSize"] * awake
        running += nodes
        # Root volumes go with their nodes (scale-to-zero deletes them).
        hand[("aws:eks/nodeGroup:NodeGroup", name, "root-volumes")] = (
            props["scalingConfig"]["desiredSize"] * 20 * GP3_GB_MONTH * awake)
        if nodes:  # 10 GB a node a month, (AZs-1)/AZs of it to another AZ, billed both ways
            hand[("aws:eks/nodeGroup:NodeGroup", name, "cross-az")] = (
                nodes * 10 * Decimal(zones - 1) / zones * 2 * INTER_AZ_GB_EACH_WAY)
    for params in evaluation.of_type("kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams"):
        if params.inputs["spec"]["scheme"] == "internet-facing":  # 10 KB a request
            gb = Decimal(cfg.observability.traces.assumed_requests_per_second) * 10_000 \
                * SECONDS / 10 ** 9
            hand[(params.type, params.name, "egress")] = gb * INTERNET_GB
    for template in evaluation.of_type("aws:fis/experimentTemplate:ExperimentTemplate"):
        actions = len(template.inputs["actions"])  # once a month, 10 minutes an action
        hand[(template.type, template.name, "runs")] = actions * 10 * FIS_ACTION_MINUTE
    for key in evaluation.of_type("aws:kms/key:Key"):  # created this year: no rotation billed
        hand[(key.type, key.name, "key")] = KMS_KEY_MONTH + 0 * KMS_ROTATION_MONTH
    # The control-plane log: an audit event (1 KB) per API request.
    charts = [r.inputs["chart"].rsplit("/", 1)[-1].removesuffix(".tgz").rsplit("-", 1)[0]
              for r in evaluation.of_type("kubernetes:helm.sh/v3:Release")]
    addons = [a.inputs["addonName"] for a in evaluation.of_type("aws:eks/addon:Addon")]
    leases = sum(LEASES.get(name, 0) for name in [*charts, *addons])
    kinds = {(group, kind) for c in evaluation.resources
             if c.type.startswith("kubernetes:constraints.gatekeeper.sh/")
             for match in c.inputs.get("spec", {}).get("match", {}).get("kinds", [])
             for group in match.get("apiGroups", [""]) for kind in match.get("kinds", [])}
    in_cluster = (Decimal(len(kinds)) / 60 + leases * Decimal("0.5") + 1) * awake
    per_second = in_cluster + running * Decimal("0.12") + 1
    (log,) = [g for g in evaluation.of_type("aws:cloudwatch/logGroup:LogGroup")
              if str(g.inputs.get("name", "")).endswith("/cluster")]
    hand[(log.type, log.name, "ingestion")] = per_second * SECONDS * 1000 / 10 ** 9 \
        * LOGS_INGEST_GB
    return hand


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_usage_and_age_lines_agree_with_a_hand_pricing(evaluations, stack):
    evaluation = evaluations[stack]
    report = cost_report(evaluation)
    model = {(line.resource_type, line.resource_name, line.key): line.monthly_usd
             for line in report.priced}
    hand = _hand(evaluation)
    keys = {key for _, _, key in hand}
    expected_keys = {"root-volumes", "cross-az", "key", "ingestion"} | (
        {"egress", "runs"} if stack == "prod" else set())
    assert keys == expected_keys  # each kind of line is priced by hand here
    for where, amount in hand.items():
        assert where in model, where
        assert abs(model[where] - amount) <= 1, (where, model[where], amount)
    # Dev's nodes sleep, their root volumes with them; its EBS claims stay all month.
    if stack == "dev":
        claims = _model(report, "kubernetes:helm.sh/v3:Release", "prometheus-volumes")
        assert list(claims.values()) == [10 * GP3_GB_MONTH]
