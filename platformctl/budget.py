"""`platformctl budget`: every stack of the project against the organisation's monthly cap.

The cap is `platform:organizationBudgetMonthlyUsd`, Pulumi.yaml's project-level config (one value
for every stack). Each stack file (`Pulumi.<stack>.yaml`) is evaluated offline and priced by the
one cost model, as `review` does; the sum of the estimates and the sum of the budgets must each
stay at or under the cap. What the cap leaves once the plan's fixed cost is paid is what the
organisation has for usage (data, logs, load balancer capacity), and the table says how much of
it the model's own usage assumptions take.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from platformctl import stackfile
from platformctl.document import usd
from platformctl.harness import load_config
from platformctl.pricing import cost_report, team_showback
from stacks.config import ConfigError

SCHEMA = "platformctl.budget/v1"
CAP_KEY = "platform:organizationBudgetMonthlyUsd"  # Pulumi.yaml's project-level config


def stack_files(project_dir: Path) -> list[Path]:
    return sorted(p for p in project_dir.glob("Pulumi.*.yaml") if p.is_file())


def budget_problems(project_dir: Path) -> list[str]:
    """The organisation's cap against the shares the project's stack files take of it, read
    without evaluating anything: each stack's ceiling share (platform:budgetCeilingMonthlyUsd,
    by default its platform:budgetMonthlyUsd, never below it) must add up to at most the cap,
    else one problem naming Pulumi.yaml's key. That is what lets each stack's budget-ceiling
    policy, which sees one stack, hold the organisation's cap."""
    from platformctl.harness import project_config
    from stacks import userfile

    key = CAP_KEY
    cap = project_config(project_dir).get(key)
    if not isinstance(cap, (int, float)) or isinstance(cap, bool):
        return []  # the config model reports a missing or malformed cap, per stack

    def number(config: dict[str, Any], name: str) -> Decimal | None:
        value = config.get(f"platform:{name}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return Decimal(str(value))
        return None

    shares = {}
    for path in stack_files(project_dir):
        try:
            document = userfile.read_yaml(path) or {}
        except ConfigError:
            continue  # a broken stack file is reported when that stack is reviewed, not here
        config = document.get("config") if isinstance(document, dict) else None
        if not isinstance(config, dict):
            continue
        found = [v for v in (number(config, "budgetMonthlyUsd"),
                             number(config, "budgetCeilingMonthlyUsd")) if v is not None]
        if found:
            shares[stackfile.stack_name_of(path)] = max(found)
    total = sum(shares.values(), Decimal(0))
    if total <= Decimal(str(cap)):
        return []
    parts = " + ".join(f"{name} {value:g}" for name, value in shares.items())
    return [f"{key}: {cap:g}: below the sum of the stacks' shares at the ceiling "
            f"(platform:budgetCeilingMonthlyUsd, else platform:budgetMonthlyUsd: {parts} = "
            f"{total:g}); allowed: at least {total:g}, or lower a stack's share"]


def cap_problems(cap: Decimal, estimates: Decimal, budgets: Decimal | None = None,
                 ceilings: Decimal | None = None) -> list[str]:
    """The organisation's cap against the sum of the stacks' estimates, at their ceiling and
    their budgets: the one rule `platformctl budget` and `platformctl review --all` apply."""
    problems = []
    if estimates > cap:
        problems.append(f"the stacks' estimates add up to ${estimates:,.2f}/month, over the "
                        f"organisation's cap of ${cap:,.2f}")
    if ceilings is not None and ceilings > cap:
        problems.append(f"at their ceiling (every node group at maxSize) the stacks cost "
                        f"${ceilings:,.2f}/month, over the organisation's cap of ${cap:,.2f}: "
                        "lower a node group's maxSize (the review names the largest allowed)")
    if budgets is not None and budgets > cap:
        problems.append(f"the stacks' budgets add up to ${budgets:,.2f}/month, over the "
                        f"organisation's cap of ${cap:,.2f}: lower a platform:budgetMonthlyUsd "
                        "or raise platform:organizationBudgetMonthlyUsd in Pulumi.yaml")
    return problems


def check(project_dir: Path) -> dict[str, Any]:
    """The organisation's budget document: per stack and in total, against the cap. Raises
    ConfigError for a stack file or config that does not validate."""
    from platformctl import pipeline

    rows = []
    cap: Decimal | None = None
    for path in stack_files(project_dir):
        cfg = load_config(path, project_dir)
        cap = Decimal(str(cfg.organization_budget_monthly_usd))
        review = pipeline.review_stack(path, project_dir, pipeline.COST_ONLY)
        report = review.cost
        priced = cost_report(review.evaluation, ceiling=True)
        ceiling = priced.total
        showback = team_showback(review.evaluation, priced)
        budget = Decimal(str(cfg.budget_monthly_usd))
        share = Decimal(str(cfg.budget_ceiling_monthly_usd))
        rows.append({
            "stack": stackfile.stack_name_of(path), "source": path.name, "preset": cfg.preset,
            "budget_monthly_usd": usd(budget), "total_monthly_usd": usd(report.total),
            "fixed_monthly_usd": usd(report.fixed), "usage_monthly_usd": usd(report.usage),
            "headroom_monthly_usd": usd(budget - report.total),
            "ceiling_monthly_usd": usd(ceiling), "ceiling_budget_monthly_usd": usd(share),
            "ceiling_headroom_monthly_usd": usd(share - ceiling),
            # Each team's quota at list price: its dominant share of the nodes at maxSize.
            "teams": [{"team": t.team, "monthly_usd": usd(t.monthly_usd),
                       "share_percent": round(float(t.share * 100), 1), "dominant": t.dominant}
                      for t in (showback.teams if showback else ())],
        })
    if cap is None:
        return {"schema": SCHEMA, "cap_monthly_usd": None, "stacks": [], "exit_code": 0,
                "problems": [f"no stack files (Pulumi.<stack>.yaml) in {project_dir}"]}

    def total(key: str) -> Decimal:
        return sum((Decimal(str(row[key])) for row in rows), Decimal(0))

    budgets, estimates = total("budget_monthly_usd"), total("total_monthly_usd")
    fixed, usage = total("fixed_monthly_usd"), total("usage_monthly_usd")
    ceilings = total("ceiling_monthly_usd")
    problems = cap_problems(cap, estimates, budgets, ceilings)
    return {
        "schema": SCHEMA,
        "cap_monthly_usd": usd(cap),
        "stacks": rows,
        "totals": {"budget_monthly_usd": usd(budgets), "total_monthly_usd": usd(estimates),
                   "fixed_monthly_usd": usd(fixed), "usage_monthly_usd": usd(usage),
                   "ceiling_monthly_usd": usd(ceilings),
                   "ceiling_budget_monthly_usd": usd(total("ceiling_budget_monthly_usd"))},
        # The cap minus the stacks at their ceiling: what is left however far they scale.
        "ceiling_headroom_monthly_usd": usd(cap - ceilings),
        # The cap minus what the plans cost whatever they serve: all there is for usage; the
        # model's own usage assumptions take `usage_monthly_usd` of it.
        "left_for_usage_monthly_usd": usd(cap - fixed),
        "headroom_monthly_usd": usd(cap - estimates),
        "problems": problems,
        "exit_code": 1 if problems else 0,
    }


def render_markdown(doc: dict[str, Any]) -> str:
    if doc["cap_monthly_usd"] is None:
        return "\n".join(f"- {p}" for p in doc["problems"]) + "\n"
    verdict = "**Over the cap**" if doc["problems"] else "**Within the cap**"
    out = [f"### Organisation budget: {verdict} of ${doc['cap_monthly_usd']:,.2f}/month", "",
           "| stack | preset | expected | fixed | usage (assumed) | budget | headroom | "
           "ceiling | its share | headroom |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in doc["stacks"]:
        out.append(f"| `{row['stack']}` | {row['preset']} | {row['total_monthly_usd']:,.2f} | "
                   f"{row['fixed_monthly_usd']:,.2f} | {row['usage_monthly_usd']:,.2f} | "
                   f"{row['budget_monthly_usd']:,.2f} | {row['headroom_monthly_usd']:,.2f} | "
                   f"{row['ceiling_monthly_usd']:,.2f} | {row['ceiling_budget_monthly_usd']:,.2f} "
                   f"| {row['ceiling_headroom_monthly_usd']:,.2f} |")
    totals = doc["totals"]
    out += [f"| **all** | | **{totals['total_monthly_usd']:,.2f}** | "
            f"{totals['fixed_monthly_usd']:,.2f} | {totals['usage_monthly_usd']:,.2f} | "
            f"{totals['budget_monthly_usd']:,.2f} | {doc['headroom_monthly_usd']:,.2f} | "
            f"**{totals['ceiling_monthly_usd']:,.2f}** | "
            f"{totals['ceiling_budget_monthly_usd']:,.2f} | "
            f"{doc['ceiling_headroom_monthly_usd']:,.2f} |", "",
            f"Left for usage once the plans' fixed cost is paid: "
            f"**${doc['left_for_usage_monthly_usd']:,.2f}/month**, of which the cost model's "
            f"usage assumptions take ${totals['usage_monthly_usd']:,.2f}.", ""]
    out += teams_markdown(doc)
    out += [f"- :x: {p}" for p in doc["problems"]]
    return "\n".join(out).rstrip("\n") + "\n"


def teams_markdown(doc: dict[str, Any]) -> list[str]:
    """Showback: each team's quota at list price, per stack (docs/cost-and-policies.md)."""
    rows = [(row["stack"], team) for row in doc["stacks"] for team in row.get("teams", ())]
    if not rows:
        return []
    out = ["Team quotas at list price (each team's dominant share of the stack's nodes at "
           "maxSize):", "", "| stack | team | share of the nodes | USD/month |",
           "|---|---|---:|---:|"]
    out += [f"| `{stack}` | {team['team']} | {team['share_percent']:g}% {team['dominant']} | "
            f"{team['monthly_usd']:,.2f} |" for stack, team in rows]
    return out + [""]
