"""The one cost model: hand-computed figures to the cent, stated assumptions, nothing unpriced
counted as zero, and both stacks' totals with their line items."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from platform_facts import costmodel
from platform_facts.costmodel import CostInput, estimate
from platformctl.pricing import cost_report

TEMPLATE_URN = "urn:pulumi:t::p::aws:ec2/launchTemplate:LaunchTemplate::lt"

SMALL_STACK = [
    CostInput("aws:eks/cluster:Cluster", "eks", {"upgradePolicy": {"supportType": "STANDARD"}},
              component="Cluster"),
    CostInput("aws:ec2/natGateway:NatGateway", "nat", {"connectivityType": "public"},
              component="Network"),
    CostInput("aws:ec2/launchTemplate:LaunchTemplate", "lt", {"blockDeviceMappings": [
        {"ebs": {"volumeSize": 30, "volumeType": "gp3"}}]}, urn=TEMPLATE_URN, component="Cluster"),
    CostInput("aws:ec2/defaultCreditSpecification:DefaultCreditSpecification", "t4g",
              {"instanceFamily": "t4g", "cpuCredits": "standard"}, component="Cluster"),
    CostInput("aws:eks/nodeGroup:NodeGroup", "nodes", {
        "instanceTypes": ["t4g.medium"], "capacityType": "ON_DEMAND",
        "scalingConfig": {"minSize": 2, "desiredSize": 2, "maxSize": 4}},
        property_dependencies={"launchTemplate": [TEMPLATE_URN]}, component="Cluster"),
    CostInput("aws:rds/instance:Instance", "db", {
        "instanceClass": "db.t4g.micro", "multiAz": False, "storageType": "gp3",
        "allocatedStorage": 20}, component="Database"),
]


def test_small_stack_matches_hand_computation_to_the_cent():
    report = estimate(SMALL_STACK, "us-east-1")
    items = {line.item: costmodel.money(line.monthly_usd) for line in report.priced}
    # 730 h x $0.10 ; 730 h x $0.045 ; 50 GB x $0.045 ; 2 x 730 h x $0.0336 ;
    # 2 x 30 GiB x $0.08 ; 730 h x $0.016 ; 20 GiB x $0.115
    assert items == {
        "EKS control plane (standard support)": Decimal("73.00"),
        "NAT gateway": Decimal("32.85"),
        "NAT data processing (50 GB)": Decimal("2.25"),
        "2 x t4g.medium on-demand nodes": Decimal("49.06"),
        "2 x 30 GiB gp3 root volumes": Decimal("4.80"),
        "RDS db.t4g.micro single-AZ": Decimal("11.68"),
        "RDS 20 GiB gp3 storage (single-AZ)": Decimal("2.30"),
    }
    assert report.total == Decimal("175.94")  # 73 + 32.85 + 2.25 + 49.056 + 4.80 + 11.68 + 2.30
    assert report.by_component() == {"Cluster": Decimal("126.86"), "Database": Decimal("13.98"),
                                     "Network": Decimal("35.10")}
    assert report.free == [  # in plan order: URN, then type and name (no URNs here)
        ("aws:ec2/defaultCreditSpecification:DefaultCreditSpecification", "t4g"),
        ("aws:ec2/launchTemplate:LaunchTemplate", "lt")]


def test_variants_follow_their_inputs():
    spot = estimate([CostInput("aws:eks/nodeGroup:NodeGroup", "n", {
        "instanceTypes": ["t4g.medium"], "capacityType": "SPOT",
        "scalingConfig": {"desiredSize": 2}})], "us-east-1")
    nodes = spot.priced[0]
    assert costmodel.money(nodes.monthly_usd) == Decimal("17.17")  # 49.056 x 0.35
    assert "Spot" in nodes.assumption
    multi_az = estimate([CostInput("aws:rds/instance:Instance", "db", {
        "instanceClass": "db.t4g.small", "multiAz": True, "storageType": "gp3",
        "allocatedStorage": 20})], "us-east-1")
    assert [costmodel.money(line.monthly_usd) for line in multi_az.priced] == [
        Decimal("46.72"), Decimal("4.60")]
    extended = estimate([CostInput("aws:eks/cluster:Cluster", "eks", {})], "us-east-1")
    assert extended.priced[0].item == "EKS control plane (extended support)"
    assert extended.total == Decimal("438.00")


def test_usage_based_charges_state_their_assumption():
    report = estimate(SMALL_STACK, "us-east-1")
    usage = [line for line in report.priced if line.usage_based]
    assert [line.item for line in usage] == ["NAT data processing (50 GB)"]
    assert "Data processed by the VPC's NAT" in usage[0].assumption
    # Fixed is everything but usage; a price assumed (spot) is still fixed.
    assert report.fixed == report.total - Decimal("2.25") and report.usage == Decimal("2.25")


def test_unpriced_is_reported_never_zero():
    report = estimate([
        CostInput("aws:ec2/instance:Instance", "big", {"instanceType": "x2iedn.32xlarge"}),
        CostInput("aws:sagemaker/domain:Domain", "sm", {}),
        CostInput("aws:eks/nodeGroup:NodeGroup", "n", {
            "instanceTypes": ["04da6b54-80e4-46f7-96ec-b56ff0331ba9"],
            "scalingConfig": {"desiredSize": 2}}),
    ], "us-east-1")
    assert report.priced == [] and report.total == Decimal("0.00")
    reasons = [line.unpriced_reason for line in report.unpriced]
    assert reasons == [  # in plan order: URN, then type and name (no URNs here)
        "prices.json has no price 'ec2.x2iedn.32xlarge' for us-east-1",
        "instanceTypes is unknown until apply",
        "the cost model has no rule for aws:sagemaker/domain:Domain",
    ]


def test_a_region_without_prices_is_unpriced_not_free():
    report = estimate(SMALL_STACK, "eu-west-3")
    assert report.priced == []
    assert all("no prices for region eu-west-3" in line.unpriced_reason for line in report.unpriced)
    assert len(report.unpriced) == 4  # every priced resource; the launch template stays free


def test_every_price_names_its_source_date_and_region():
    data = costmodel.price_data()
    assert data["hoursPerMonth"] == 730
    for region, prices in data["regions"].items():
        assert region == "us-east-1"
        for key, entry in prices.items():
            assert entry["source"].startswith("https://aws.amazon.com/"), key
            assert re.fullmatch(r"2026-1[12]-\d\d", entry["date"]), key
            assert Decimal(entry["usd"]) > 0, key
    for key, assumption in data["assumptions"].items():
        assert assumption["why"] and assumption["date"], key


def test_both_stacks_have_a_total_with_line_items(evaluations):
    for name, evaluation in evaluations.items():
        report = cost_report(evaluation)
        assert report.total == sum((costmodel.money(line.monthly_usd) for line in report.priced),
                                   Decimal(0)) or abs(report.total - sum(
            (line.monthly_usd for line in report.priced), Decimal(0))) < Decimal("0.01")
        assert report.total <= Decimal(str(evaluation.config.budget_monthly_usd))
        items = " | ".join(line.item for line in report.priced)
        nat = {"dev": "1 x t4g.nano instance", "prod": "NAT gateway"}[name]
        for expected in ("EKS control plane (standard support)", nat, "nodes",
                         "RDS db.t4g", "KMS key", "log ingestion", "public IPv4 address"):
            assert expected in items, (name, expected)
        # Nothing the platform creates is unpriced: not even what it starts at run time.
        assert report.unpriced == []
        json.dumps(report.to_dict())  # serialisable for outputs and --format json


def test_dev_and_prod_estimates(evaluations):
    dev, prod = (cost_report(evaluations[n]) for n in ("dev", "prod"))
    assert dev.total == Decimal("104.53")
    assert prod.total == Decimal("343.36")
    assert dev.total + prod.total <= Decimal(450)  # the shipped design's expected target
    assert (dev.fixed, prod.fixed) == (Decimal("96.15"), Decimal("284.03"))
    # Prod's shared ALB is internet-facing in two of its three public subnets, and its
    # responses leave for the internet; dev has none.
    prod_alb = {line.key: costmodel.money(line.monthly_usd) for line in prod.priced
                if line.resource_name == "prod-shared-alb"}
    assert prod_alb == {"alb": Decimal("16.43"), "alb-capacity": Decimal("5.84"),
                        "alb-addresses": Decimal("7.30"), "egress": Decimal("11.83")}
    assert not [line for line in dev.lines if line.key.startswith("alb")]


@pytest.mark.parametrize("type_token", ["aws:ec2/vpc:Vpc", "kubernetes:core/v1:Namespace",
                                        "pulumi:providers:aws"])
def test_free_types_are_listed_as_free(type_token):
    report = estimate([CostInput(type_token, "x", {})], "us-east-1")
    assert report.lines == [] and report.free == [(type_token, "x")]


def _params(scheme, group="platform-public"):
    return CostInput("kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams", "shared-alb", {
        "spec": {"group": {"name": group} if group else None, "scheme": scheme}},
        component="Cluster")


def _public_subnet(index):
    return CostInput("aws:ec2/subnet:Subnet", f"public-{index}", {
        "tags": {"kubernetes.io/role/elb": "1"}})


def test_the_shared_load_balancer_is_priced_from_its_ingress_class_params():
    subnets = [_public_subnet(i) for i in range(3)]
    public = estimate([*subnets, _params("internet-facing")], "us-east-1")
    # 730 h x $0.0225 ; 1 LCU x 730 h x $0.008 (usage) ; 3 x 730 h x $0.005
    assert {line.key: costmodel.money(line.monthly_usd) for line in public.priced} == {
        "alb": Decimal("16.43"), "alb-capacity": Decimal("5.84"), "alb-addresses": Decimal("10.95")}
    assert [line.key for line in public.priced if line.usage] == ["alb-capacity"]
    internal = estimate([*subnets, _params("internal")], "us-east-1")
    assert [line.key for line in internal.priced] == ["alb", "alb-capacity"]
    assert "(internal)" in internal.priced[0].item
    # A class whose Ingresses are not bounded to one group: unpriced, never zero.
    unbounded = estimate([*subnets, _params("internet-facing", group=None)], "us-east-1")
    (line,) = unbounded.unpriced
    assert line.item == "created at run time" and "does not bound" in line.unpriced_reason


def test_the_shipped_stacks_shared_load_balancer(evaluations):
    from components.cluster import SHARED_ALB_GROUP

    (params,) = evaluations["prod"].of_type("kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams")
    assert params.inputs["spec"]["group"] == {"name": SHARED_ALB_GROUP}
    assert params.inputs["spec"]["scheme"] == "internet-facing"
    # The chart's IngressClass `alb` stays (no Ingress ever loses its class) and points at them.
    values = {name: [r for r in e.of_type("kubernetes:helm.sh/v3:Release")
                     if r.inputs["name"] == "aws-load-balancer-controller"][0].inputs["values"]
              for name, e in evaluations.items()}
    assert values["prod"]["createIngressClassResource"] is True
    assert values["prod"]["ingressClassParams"] == {"create": False, "name": SHARED_ALB_GROUP}
    # Dev has none: no class, so the controller makes no load balancer for its Ingresses.
    assert values["dev"]["createIngressClassResource"] is False
    assert not evaluations["dev"].of_type(
        "kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams")


@pytest.mark.parametrize(("props", "created", "expected"), [
    ({"enableKeyRotation": False}, None, "1.00"),
    ({"enableKeyRotation": True}, None, "1.00"),  # no year stated: created this year
    ({"enableKeyRotation": True}, "2026", "1.00"),  # year 1: no rotation billed yet
    ({"enableKeyRotation": True}, "2025", "2.00"),  # year 2: the first rotation
    ({"enableKeyRotation": True}, "2024", "3.00"),  # year 3: two rotations billed ($1 each)
    ({"enableKeyRotation": True}, "2019", "3.00"),  # later ones are free
    ({"enableKeyRotation": True, "rotationPeriodInDays": 2560}, "2024", "1.00"),  # none yet
    ({"enableKeyRotation": True, "rotationPeriodInDays": 90}, "2025", "3.00"),  # capped at two
])
def test_kms_rotation_is_priced_for_the_keys_age(props, created, expected, monkeypatch):
    monkeypatch.setattr(costmodel, "this_year", lambda: 2026)
    tags = {costmodel.CREATED_YEAR_TAG: created} if created else {}
    report = estimate([CostInput("aws:kms/key:Key", "k", {**props, "tags": tags})], "us-east-1")
    assert report.total == Decimal(expected)
    if props["enableKeyRotation"]:  # the steady state is shown beside the year's figure
        assert "$3.00 once 2 are" in report.lines[0].item


def test_the_stacks_created_year_reaches_every_kms_key(evaluations, tmp_path):
    from platformctl.harness import evaluate
    from tests.conftest import REPO, mutate, stack_config, write_stack

    assert all(costmodel.CREATED_YEAR_TAG not in k.inputs["tags"]
               for k in evaluations["prod"].of_type("aws:kms/key:Key"))
    older = evaluate(write_stack(tmp_path, mutate(stack_config("prod"), "platform:createdYear",
                                                  2024)), project_dir=REPO)
    keys = older.of_type("aws:kms/key:Key")
    assert len(keys) == 5
    assert {k.inputs["tags"][costmodel.CREATED_YEAR_TAG] for k in keys} == {"2024"}


def _burstable_nodes(template_credits=None, family_default=None, template_type=None):
    template = {"blockDeviceMappings": [{"ebs": {"volumeSize": 20, "volumeType": "gp3"}}]}
    if template_credits:
        template["creditSpecification"] = {"cpuCredits": template_credits}
    if template_type:
        template["instanceType"] = template_type
    resources = [
        CostInput("aws:ec2/launchTemplate:LaunchTemplate", "lt", template, urn=TEMPLATE_URN),
        CostInput("aws:eks/nodeGroup:NodeGroup", "n", {
            "instanceTypes": ["t4g.medium"], "capacityType": "ON_DEMAND",
            "scalingConfig": {"desiredSize": 2}},
            property_dependencies={"launchTemplate": [TEMPLATE_URN]})]
    if family_default:
        resources.append(CostInput(
            "aws:ec2/defaultCreditSpecification:DefaultCreditSpecification", "t4g",
            {"instanceFamily": "t4g", "cpuCredits": family_default}))
    return [line.key for line in estimate(resources, "us-east-1").priced], estimate(
        resources, "us-east-1")


@pytest.mark.parametrize(("template_credits", "family_default", "template_type", "surplus"), [
    # The provider drops a template's credit specification when the template names no
    # instance type: the nodes launch unlimited (EC2's default for T4g).
    ("standard", None, None, True),
    (None, None, None, True),
    ("unlimited", None, None, True),
    # What the platform does: the family's default in the account and region.
    (None, "standard", None, False),
    ("standard", "unlimited", None, True),
    # A template with its own burstable instance type: its credit specification is sent.
    ("standard", None, "t4g.medium", False),
    ("standard", "unlimited", "t4g.medium", False),
    (None, "standard", "t4g.medium", False),  # not said in the template: the family's default
])
def test_burstable_nodes_are_priced_in_the_credit_mode_ec2_applies(
        template_credits, family_default, template_type, surplus):
    keys, report = _burstable_nodes(template_credits, family_default, template_type)
    assert ("cpu-surplus" in keys) is surplus
    if surplus:
        (line,) = [line for line in report.priced if line.key == "cpu-surplus"]
        # 4 vCPUs x 0.1 x 730 h x $0.04
        assert costmodel.money(line.monthly_usd) == Decimal("11.68") and line.usage


def test_nat_data_is_the_vpcs_shared_among_its_gateways():
    gateways = [CostInput("aws:ec2/natGateway:NatGateway", f"nat-{i}", {}) for i in range(3)]
    report = estimate(gateways, "us-east-1")
    data = [line for line in report.priced if line.key == "data"]
    assert len(data) == 3 and all("1/3 of the VPC's" in line.item for line in data)
    # 50 GB in all, $2.25, however many gateways carry it (to the cent per line).
    assert sum(costmodel.money(line.monthly_usd) for line in data) == Decimal("2.25")


def test_the_shipped_burstable_instances_run_standard_credits(evaluations):
    """Node groups: the family's default (their launch templates name no instance type, so a
    credit specification there would never be sent); the NAT instance: its own template, which
    names its type."""
    for name, evaluation in evaluations.items():
        defaults = evaluation.of_type(
            "aws:ec2/defaultCreditSpecification:DefaultCreditSpecification")
        assert [(d.inputs["instanceFamily"], d.inputs["cpuCredits"]) for d in defaults] == [
            ("t4g", "standard")], name
        for template in evaluation.of_type("aws:ec2/launchTemplate:LaunchTemplate"):
            if template.inputs.get("instanceType"):
                assert template.inputs["creditSpecification"] == {"cpuCredits": "standard"}
            else:
                assert "creditSpecification" not in template.inputs
        report = cost_report(evaluation)
        assert not [line for line in report.lines if line.key == "cpu-surplus"], name


def test_an_auto_scaling_group_is_priced_from_its_launch_template():
    template = CostInput("aws:ec2/launchTemplate:LaunchTemplate", "lt", {
        "instanceType": "t4g.nano", "creditSpecification": {"cpuCredits": "standard"},
        "blockDeviceMappings": [{"ebs": {"volumeSize": 8, "volumeType": "gp3"}}]},
        urn=TEMPLATE_URN)
    group = CostInput("aws:autoscaling/group:Group", "nat", {
        "minSize": 1, "maxSize": 1, "desiredCapacity": 1},
        property_dependencies={"launchTemplate": [TEMPLATE_URN]})
    report = estimate([template, group], "us-east-1")
    # 730 h x $0.0042 ; 8 GiB x $0.08
    assert {line.item: costmodel.money(line.monthly_usd) for line in report.priced} == {
        "1 x t4g.nano instance": Decimal("3.07"), "1 x 8 GiB gp3 root volume": Decimal("0.64")}
    alone = estimate([CostInput("aws:autoscaling/group:Group", "g", {"desiredCapacity": 1})],
                     "us-east-1")
    assert [line.unpriced_reason for line in alone.unpriced] == [
        "launchTemplate is unknown until apply"]


def test_root_volumes_deleted_with_their_instances_cost_only_while_they_run(evaluations):
    # Dev's nodes and NAT instance sleep 118 of 168 hours, and their root volumes
    # (deleteOnTermination) go with them; prod's run all month.
    def volumes(stack: str) -> dict[str, Decimal]:
        return {line.resource_name: line.monthly_usd
                for line in cost_report(evaluations[stack]).priced if line.key == "root-volumes"}

    dev, prod = volumes("dev"), volumes("prod")
    week = Decimal(50) / Decimal(168)
    nodes = [v for k, v in dev.items() if k.startswith("dev-system-")]
    assert len(nodes) == 2
    assert costmodel.money(sum(nodes)) == costmodel.money(2 * 20 * Decimal("0.08") * week)
    assert sum(v for k, v in prod.items() if k.startswith("prod-")) == 4 * 20 * Decimal("0.08")
    assert all("runs 50 of 168 h a week" in line.detail for line in cost_report(
        evaluations["dev"]).priced if line.key == "root-volumes")


def test_components_add_up_to_the_total_to_the_cent():
    """Rounded one by one, three components of $0.335 each would show $1.02 (0.34 x 3) beside a
    total of $1.01: a PR comment whose rows and total disagree. The cents go to the largest
    remainders instead, ties by name."""
    third = Decimal("0.335")
    assert costmodel.apportion({"a": third, "b": third, "c": third}, Decimal("1.01")) == {
        "a": Decimal("0.34"), "b": Decimal("0.34"), "c": Decimal("0.33")}
    assert costmodel.apportion({"x": Decimal("1.004"), "y": Decimal("2.006")},
                               Decimal("3.01")) == {"x": Decimal("1.00"), "y": Decimal("2.01")}
    report = estimate(SMALL_STACK, "us-east-1")
    assert sum(report.by_component().values()) == report.total


def test_the_shipped_stacks_components_add_up_to_their_totals(evaluations):
    from platformctl.pricing import cost_report

    for name, evaluation in evaluations.items():
        for ceiling in (False, True):
            report = cost_report(evaluation, ceiling=ceiling)
            assert sum(report.by_component().values()) == report.total, (name, ceiling)
