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
    for group in groups:
        scaling = group.inputs["scalingConfig"]
        assert scaling["maxSize"] > scaling["desiredSize"]  # else the test proves nothing
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
