"""The ceiling: the same cost model priced with every node group and Auto Scaling group at its
maxSize and databases' storage at its autoscaling maximum (what the budget must hold when the
autoscalers do what they are allowed to)."""

from __future__ import annotations

from decimal import Decimal

from platformctl.pricing import cost_report


def _line(report, resource_type, key):
    return [line for line in report.lines
            if line.resource_type == resource_type and line.key == key]


def test_the_ceiling_prices_node_groups_at_their_max_size(evaluations):
    prod = evaluations["prod"]
    expected, ceiling = cost_report(prod), cost_report(prod, ceiling=True)
    groups = [r for r in prod.resources if r.type == "aws:eks/nodeGroup:NodeGroup"]
    assert groups
    # The spot groups can grow (the on-demand ones are at their maximum): else the test
    # proves nothing.
    assert any(g.inputs["scalingConfig"]["maxSize"] > g.inputs["scalingConfig"]["desiredSize"]
               for g in groups)
    for group in groups:
        scaling = group.inputs["scalingConfig"]
        if not scaling["desiredSize"]:
            continue
        (low,) = [line for line in _line(expected, group.type, "nodes")
                  if line.resource_name == group.name]
        (high,) = [line for line in _line(ceiling, group.type, "nodes")
                   if line.resource_name == group.name]
        assert low.item.startswith(f"{scaling['desiredSize']} x ")
        assert high.item.startswith(f"{scaling['maxSize']} x ")
        per_node = low.monthly_usd / scaling["desiredSize"]
        assert abs(high.monthly_usd - per_node * scaling["maxSize"]) < Decimal("0.02")
    assert ceiling.total > expected.total


def test_the_ceiling_prices_database_storage_at_its_autoscaling_maximum(evaluations):
    prod = evaluations["prod"]
    (db,) = prod.of_type("aws:rds/instance:Instance")
    maximum = db.inputs.get("maxAllocatedStorage")
    (storage,) = _line(cost_report(prod, ceiling=True), db.type, "storage")
    if maximum:
        assert f"RDS {maximum} GiB" in storage.item
    else:
        assert f"RDS {db.inputs['allocatedStorage']} GiB" in storage.item


def test_per_node_usage_scales_with_the_nodes_at_the_ceiling(evaluations):
    prod = evaluations["prod"]
    expected, ceiling = cost_report(prod), cost_report(prod, ceiling=True)
    grew = [(a.item, b.item) for a in expected.lines for b in ceiling.lines
            if a.key == b.key and a.resource_name == b.resource_name
            and a.resource_type == "aws:cloudwatch/logGroup:LogGroup"
            and a.monthly_usd is not None and b.monthly_usd is not None
            and b.monthly_usd > a.monthly_usd]
    assert grew  # the log groups whose ingest is per node


def test_the_shipped_design_holds_the_cap_at_the_ceiling(evaluations):
    """Expected dev + prod within $450, both at their ceiling within the $500 cap, each within
    its share (platform:budgetCeilingMonthlyUsd), the shares within the cap."""
    expected = ceiling = shares = Decimal(0)
    for evaluation in evaluations.values():
        cfg = evaluation.config
        high = cost_report(evaluation, ceiling=True).total
        assert high <= Decimal(str(cfg.budget_ceiling_monthly_usd)), evaluation.stack
        expected += cost_report(evaluation).total
        ceiling += high
        shares += Decimal(str(cfg.budget_ceiling_monthly_usd))
    cap = Decimal(str(evaluations["prod"].config.organization_budget_monthly_usd))
    assert expected <= Decimal(450)
    assert ceiling <= shares <= cap == Decimal(500)


def _prod_with_spot_max(tmp_path, maximum: int):
    from platformctl.harness import evaluate
    from tests.conftest import REPO, mutate, stack_config, write_stack

    config = mutate(stack_config("prod"), "platform:cluster.nodeGroups",
                    {"spot": {"maxSize": maximum}})
    return evaluate(write_stack(tmp_path, config), project_dir=REPO)


def test_a_max_one_node_larger_than_allowed_is_refused_with_the_largest_allowed(tmp_path):
    from platformctl.crossguard import check_evaluation

    prod = _prod_with_spot_max(tmp_path, 4)
    (verdict,) = check_evaluation(prod).of("budget-ceiling")
    assert verdict.enforcement == "mandatory"
    figure = cost_report(prod, ceiling=True).total
    assert f"the stack costs ${figure}/month" in verdict.message
    assert "budgetCeilingMonthlyUsd $389.00" in verdict.message
    assert "platform:cluster.nodeGroups.spot.maxSize 4 -> at most 3 (one node adds $" in (
        verdict.message)


def test_the_review_document_carries_the_ceiling(evaluations):
    from platformctl import review
    from platformctl.crossguard import check_evaluation

    prod = evaluations["prod"]
    doc = review.build_document(prod, check_evaluation(prod), cost_report(prod))
    ceiling = doc["ceiling"]
    assert ceiling["total_monthly_usd"] == float(cost_report(prod, ceiling=True).total)
    assert ceiling["budget_monthly_usd"] == 389.0
    (spot,) = ceiling["node_groups"]
    assert (spot["pool"], spot["max_size"], spot["desired_size"]) == ("spot", 3, 1)
    assert spot["largest_allowed_max_size"] == 3  # one more node would break the share
    assert spot["per_node_monthly_usd"] > ceiling["headroom_monthly_usd"] > 0
    changed = {(line["resource_name"], line["key"]) for line in ceiling["lines"]}
    assert ("prod-spot-us-east-1b", "nodes") in changed and ("prod-postgres", "storage") in changed
