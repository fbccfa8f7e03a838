"""`platformctl budget`: every stack of the project against the organisation's cap (Pulumi.yaml's
project-level `platform:organizationBudgetMonthlyUsd`), with the split of fixed cost and usage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from platformctl import cli
from platformctl.pricing import cost_report
from tests.conftest import REPO, recording_copy


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["budget", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def shipped():
    """The budget document of the shipped project, from this session's recordings of its stacks
    (the command's own evaluation is exercised by the CLI tests below)."""
    from platformctl import budget, pipeline, stackfile

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "evaluate", lambda path, project_dir: recording_copy(
            stackfile.stack_name_of(Path(path))))
        return budget.check(REPO)


def test_the_shipped_stacks_stay_within_the_organisations_cap(shipped, evaluations):
    assert shipped["cap_monthly_usd"] == 500.0
    assert [row["stack"] for row in shipped["stacks"]] == ["dev", "prod"]
    for row in shipped["stacks"]:
        report = cost_report(evaluations[row["stack"]])
        assert row["total_monthly_usd"] == float(report.total)  # the review's figure
        assert row["fixed_monthly_usd"] + row["usage_monthly_usd"] == pytest.approx(
            row["total_monthly_usd"])
        ceiling = cost_report(evaluations[row["stack"]], ceiling=True).total
        assert row["ceiling_monthly_usd"] == float(ceiling)
        assert row["ceiling_monthly_usd"] <= row["ceiling_budget_monthly_usd"]
    totals = shipped["totals"]
    assert totals["total_monthly_usd"] == 447.89 and totals["budget_monthly_usd"] == 451.0
    assert totals["ceiling_monthly_usd"] == 496.21
    assert totals["ceiling_budget_monthly_usd"] == 500.0
    assert shipped["ceiling_headroom_monthly_usd"] == 3.79
    assert shipped["left_for_usage_monthly_usd"] == round(500 - totals["fixed_monthly_usd"], 2)
    assert shipped["problems"] == [] and shipped["exit_code"] == 0


def test_formats(capsys, shipped, monkeypatch):
    from platformctl import budget

    monkeypatch.setattr(budget, "check", lambda project_dir: shipped)
    code, out, _ = run(capsys, "--project-dir", str(REPO), "--format", "json")
    assert code == 0 and json.loads(out)["schema"] == "platformctl.budget/v1"
    code, out, _ = run(capsys, "--project-dir", str(REPO), "--format", "markdown")
    assert out.startswith("### Organisation budget: **Within the cap** of $500.00/month")
    assert "| `prod` | prod | 343.36 |" in out and "Left for usage" in out
    assert "| 386.25 | 389.00 | 2.75 |" in out  # prod at its ceiling, its share, headroom
    code, out, _ = run(capsys, "--project-dir", str(REPO))
    assert code == 0 and "within the cap" in out and "left for usage" in out


@pytest.fixture
def recorded(monkeypatch):
    """The stacks' recordings of this session stand in for evaluating the copies again (same
    stack files but for the budget keys, which the cost model does not read)."""
    from platformctl import pipeline, stackfile

    monkeypatch.setattr(pipeline, "evaluate", lambda path, project_dir: recording_copy(
        stackfile.stack_name_of(Path(path))))


SHIPPED = {"dev": (106, 111), "prod": (345, 389)}  # (budget, ceiling share) of the stack files


def _project(tmp_path: Path, cap: int, budgets: dict[str, int] | None = None,
             ceilings: dict[str, int] | None = None) -> Path:
    text = (REPO / "Pulumi.yaml").read_text()
    shutil.copytree(REPO / "certs", tmp_path / "certs", dirs_exist_ok=True)  # the stack files name it
    (tmp_path / "Pulumi.yaml").write_text(text.replace(
        "platform:organizationBudgetMonthlyUsd: 500", f"platform:organizationBudgetMonthlyUsd: {cap}"))
    for stack in ("dev", "prod"):
        body = (REPO / f"Pulumi.{stack}.yaml").read_text()
        budget, ceiling = SHIPPED[stack]
        for key, old, new in (("budgetMonthlyUsd", budget, (budgets or {}).get(stack)),
                              ("budgetCeilingMonthlyUsd", ceiling, (ceilings or {}).get(stack))):
            if new is not None:
                assert f"platform:{key}: {old}\n" in body
                body = body.replace(f"platform:{key}: {old}\n", f"platform:{key}: {new}\n")
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(body)
    return tmp_path


def test_estimates_and_ceilings_over_the_cap_exit_1_with_the_table(tmp_path, capsys):
    project = _project(tmp_path, 430, budgets={"dev": 100, "prod": 300},
                       ceilings={"dev": 130, "prod": 300})
    code, out, _ = run(capsys, "--project-dir", str(project), "--format", "markdown")
    assert code == 1
    assert "**Over the cap** of $430.00/month" in out
    assert ("the stacks' estimates add up to $447.89/month, over the organisation's cap of "
            "$430.00") in out
    assert ("at their ceiling (every node group at maxSize) the stacks cost $496.21/month, over "
            "the organisation's cap of $430.00") in out
    assert "budgets add up" not in out  # 100 + 300 = 400: the budgets fit
    assert "| `dev` | dev | 104.53 |" in out


def test_shares_over_the_cap_are_a_problem_of_the_project_the_review_says(tmp_path, capsys,
                                                                         recorded):
    # Each stack's share within the cap, together over it: the per-stack policy alone could
    # not hold the cap, so the review does not pass; it still shows the stack asked for.
    project = _project(tmp_path, 497)
    code = cli.main(["review", "dev", "--project-dir", str(project)])
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[1] == ("BLOCKED: 1 problem of the project (Pulumi.yaml and the "
                                   "stack files together)")
    assert out.splitlines()[0].startswith("Review of dev")
    cli.main(["review", "dev", "--project-dir", str(project), "--format", "json"])
    (problem,) = json.loads(capsys.readouterr().out)["project_problems"]
    assert problem == (
        "Pulumi.yaml: platform:organizationBudgetMonthlyUsd: 497: below the sum of the stacks' "
        "shares at the ceiling (platform:budgetCeilingMonthlyUsd, else platform:budgetMonthlyUsd"
        ": dev 111 + prod 389 = 500); allowed: at least 500, or lower a stack's share")


def test_a_share_below_the_budget_or_over_the_cap_is_a_config_error(tmp_path, capsys, recorded):
    project = _project(tmp_path, 500, ceilings={"prod": 340})
    code, _, err = run(capsys, "--project-dir", str(project))
    assert code == 2
    assert ("platform:budgetCeilingMonthlyUsd: 340.0: is below budgetMonthlyUsd (345), and the "
            "ceiling is never below the expected cost; allowed: at least 345") in err
    project = _project(tmp_path, 500, ceilings={"prod": 501})
    code, _, err = run(capsys, "--project-dir", str(project))
    assert code == 2
    assert ("platform:budgetCeilingMonthlyUsd: 501.0: exceeds the organisation's cap of 500 "
            "(organizationBudgetMonthlyUsd, Pulumi.yaml); allowed: at most the cap") in err


def test_a_stack_budget_over_the_cap_is_a_config_error(tmp_path, capsys, recorded):
    project = _project(tmp_path, 300)  # prod's 345 alone is over it
    code, _, err = run(capsys, "--project-dir", str(project))
    assert code == 2
    assert ("platform:budgetMonthlyUsd: 345.0: exceeds the organisation's cap of 300 "
            "(organizationBudgetMonthlyUsd, Pulumi.yaml)") in err


def test_a_project_without_stacks_is_a_usage_error(tmp_path, capsys):
    shutil.copy2(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    code, out, _ = run(capsys, "--project-dir", str(tmp_path))
    assert code == 2 and "no stack files" in out


def test_the_readme_shows_the_budget_as_it_is(shipped):
    readme = (REPO / "README.md").read_text()
    for row in shipped["stacks"]:
        assert (f"| {row['stack']} | {row['total_monthly_usd']:.2f} | {row['fixed_monthly_usd']:.2f} "
                f"| {row['usage_monthly_usd']:.2f} | {row['budget_monthly_usd']:.2f} | "
                f"{row['ceiling_monthly_usd']:.2f} | {row['ceiling_budget_monthly_usd']:.2f} |"
                ) in readme
    totals = shipped["totals"]
    assert (f"| all | {totals['total_monthly_usd']:.2f} | {totals['fixed_monthly_usd']:.2f} | "
            f"{totals['usage_monthly_usd']:.2f} | {totals['budget_monthly_usd']:.2f} | "
            f"{totals['ceiling_monthly_usd']:.2f} | {totals['ceiling_budget_monthly_usd']:.2f} |"
            ) in readme
    assert f"**${shipped['left_for_usage_monthly_usd']:.2f}/month is left for usage**" in readme
    assert f"leaving ${shipped['headroom_monthly_usd']:.2f} beyond them" in readme


def test_another_stacks_broken_file_does_not_stop_a_review(tmp_path, capsys, recorded):
    project = _project(tmp_path, 500)
    (project / "Pulumi.sandbox.yaml").write_bytes(b"config:\n  platform:preset: dev\n"
                                                  b"  platform:preset: prod\n")
    from platformctl import budget

    assert budget.budget_problems(project) == []  # dev 111 + prod 389; the sandbox is skipped
    code, _, err = run(capsys, "--project-dir", str(project))
    assert code == 2 and "Pulumi.sandbox.yaml" in err  # the budget command names it
