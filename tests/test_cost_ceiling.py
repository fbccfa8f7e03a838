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


# -- quotas are capacity, and priced -----------------------------------------------------------

def test_prod_holds_the_platform_and_the_shipped_quotas_with_one_node_lost(rendered):
    from platformctl import review
    from platformctl.crossguard import check_evaluation

    for name, lost in (("prod", 1), ("dev", 0)):
        evaluation = rendered[name]
        fit = review._assessment(evaluation).quotas
        assert fit is not None and [t.team for t in fit.teams] == ["checkout"]
        groups = [r.inputs["scalingConfig"]["maxSize"]
                  for r in evaluation.of_type("aws:eks/nodeGroup:NodeGroup")]
        assert fit.nodes == sum(groups) - lost
        assert fit.fits and all(q <= f for q, f in zip(fit.quotas, fit.free, strict=True))
        assert check_evaluation(evaluation).of("quota-capacity") == []


def test_a_quota_that_cannot_fit_prod_is_refused_naming_the_teams(tmp_path):
    """Two more teams at the default quota: three teams' 6 CPU do not fit prod's five nodes
    (six at maxSize, one lost) beside the platform; every team is named with what it could
    have, the key to change, and the review exits 1."""
    from platformctl import rendering
    from platformctl.crossguard import check_evaluation
    from platformctl.harness import evaluate
    from tests.conftest import REPO, mutate, stack_config, write_stack

    config = stack_config("prod")
    config = mutate(config, "platform:teams",
                    [*config["platform:teams"], {"name": "payments"}, {"name": "search"}])
    prod = evaluate(write_stack(tmp_path, config), project_dir=REPO)
    rendering.render(prod)
    verdicts = check_evaluation(prod).of("quota-capacity")
    assert sorted(v.message.split(":", 1)[0] for v in verdicts) == [
        "team 'checkout'", "team 'payments'", "team 'search'"]
    for verdict in verdicts:
        assert verdict.enforcement == "mandatory"
        assert "at maximum size with one node lost, the node groups are 5 nodes" in verdict.message
        assert "their quotas promise 6,000m, 9.00 GiB and 60 pods: short of CPU by" in (
            verdict.message)
        assert "it can have at most 370m" in verdict.message
    assert "lower platform:teams[payments].quota" in verdicts[1].message


def test_showback_prices_each_quota_as_its_dominant_share_of_the_nodes(evaluations):
    """By hand: prod's six t4g.medium at maxSize (1,930m and 3,301 MiB allocatable each with
    prefix delegation's 40 pods) cost the node groups' non-usage lines at the ceiling; checkout's
    2 CPU of 11,580m is its dominant share (3 GiB of 19,806 MiB is less)."""
    from platformctl.pricing import team_showback

    prod = evaluations["prod"]
    ceiling = cost_report(prod, ceiling=True)
    nodes = sum((line.monthly_usd for line in ceiling.priced
                 if line.resource_type == "aws:eks/nodeGroup:NodeGroup" and not line.usage),
                Decimal(0))
    found = team_showback(prod, ceiling)
    assert (found.nodes, found.cpu_m, found.memory_mib) == (6, 6 * 1930, 6 * 3301)
    assert found.monthly_usd == nodes.quantize(Decimal("0.01"))
    (checkout,) = found.teams
    assert (checkout.cpu_m, checkout.memory_mib, checkout.dominant) == (2000, 3072, "CPU")
    by_hand = (nodes * Decimal(2000) / Decimal(11580)).quantize(Decimal("0.01"))
    assert checkout.monthly_usd == by_hand > 0
    # Memory dominates when the quota asks for more of it than of CPU.
    from platform_facts import capacity
    from platform_facts.capacity import Quota
    from platform_facts.showback import showback
    from platformctl.pricing import capacity_inputs

    planned = capacity_inputs(prod)
    groups = capacity.node_groups(planned)
    costs = {g.resource: Decimal(10) for g in groups}
    heavy = showback(groups, costs, [Quota("big", "big", 100, 19806 / 2, None)], True)
    assert heavy.teams[0].dominant == "memory" and heavy.teams[0].monthly_usd == Decimal(30)


def test_every_cost_view_shows_each_teams_quota(evaluations, tmp_path):
    from platformctl import budget, report, review
    from platformctl.crossguard import check_evaluation

    prod = evaluations["prod"]
    doc = review.build_document(prod, check_evaluation(prod), cost_report(prod))
    (team,) = doc["showback"]["teams"]
    assert team["team"] == "checkout" and team["monthly_usd"] > 0
    assert team["dominant"] == "CPU" and team["share_percent"] == 17.3
    markdown = "\n".join(line for _, lines in report._markdown_sections(
        {**doc, "diff": None, "warnings": [], "capacity": [], "placement": None})
        for line in lines)
    assert f"- `checkout`: ${team['monthly_usd']:,.2f}/month (2,000m CPU, 3.00 GiB: 17.3% of " \
        "the nodes' CPU)" in markdown
    document = {"stacks": [{"stack": "prod", "teams": [
        {"team": "checkout", "monthly_usd": team["monthly_usd"], "share_percent": 17.3,
         "dominant": "CPU"}]}]}
    assert f"| `prod` | checkout | 17.3% CPU | {team['monthly_usd']:,.2f} |" in "\n".join(
        budget.teams_markdown(document))


def test_the_review_says_what_a_commitment_would_need_to_save(evaluations):
    """No sourced commitment rates: the review states the bar instead. Prod: the on-demand
    nodes and the database instance at the ceiling; one more spot node costs more than the
    headroom, so a commitment matters once it saves the difference."""
    from platformctl import review
    from platformctl.crossguard import check_evaluation

    prod = evaluations["prod"]
    doc = review.build_document(prod, check_evaluation(prod), cost_report(prod))
    ceiling = doc["ceiling"]
    commitment = ceiling["commitment"]
    ceiling_report = cost_report(prod, ceiling=True)
    on_demand = sum((line.monthly_usd for line in ceiling_report.priced
                     if (line.resource_type, line.key) in (
                         ("aws:eks/nodeGroup:NodeGroup", "nodes"),
                         ("aws:rds/instance:Instance", "instance"))
                     and "spot" not in line.resource_name), Decimal(0))
    assert commitment["on_demand_monthly_usd"] == round(float(on_demand), 2)
    (spot,) = ceiling["node_groups"]
    needed = round(spot["per_node_monthly_usd"] - ceiling["headroom_monthly_usd"], 2)
    assert commitment["needed_monthly_usd"] == needed > 0
    assert abs(commitment["needed_percent"] - needed / float(on_demand) * 100) <= 0.06
