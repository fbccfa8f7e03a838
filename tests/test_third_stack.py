"""A third stack file must not break the others: one that pushes the shares over the cap is a
problem of the project, said with every review (which it does not pass) without refusing to
show the stack asked for; one with a mistake is its own row's error in `review --all`, shown
once, while the other rows are reviewed."""

from __future__ import annotations

import json
import shutil

import yaml

from platformctl import cli
from tests.conftest import REPO


def _project(tmp_path, staging: dict | str):
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml"):
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(REPO / "certs", project / "certs")
    text = staging if isinstance(staging, str) else yaml.safe_dump(staging, sort_keys=False)
    (project / "Pulumi.staging.yaml").write_text(text)
    return project


def _staging(budget: int) -> dict:
    raw = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    raw["config"]["platform:environment"] = "staging"
    raw["config"]["platform:budgetMonthlyUsd"] = budget
    raw["config"].pop("platform:budgetCeilingMonthlyUsd", None)
    return raw


def test_a_stack_over_the_shares_does_not_hide_dev(tmp_path, capsys, evaluated_once):
    project = _project(tmp_path, _staging(100))
    code = cli.main(["review", "dev", "--project-dir", str(project), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["exit_code"] == 1
    assert doc["stack"] == "dev" and doc["total_monthly_usd"] > 0  # dev, reviewed
    (problem,) = doc["project_problems"]
    assert problem.startswith("Pulumi.yaml: platform:organizationBudgetMonthlyUsd: 500: below "
                              "the sum of the stacks' shares")
    assert "staging 100" in problem
    cli.main(["review", "dev", "--project-dir", str(project)])
    assert "PROJECT: Pulumi.yaml: platform:organizationBudgetMonthlyUsd" in (
        capsys.readouterr().out)


def test_review_all_says_each_files_own_error_once(tmp_path, capsys):
    project = _project(tmp_path, "config:\n  platform:preset: dev\n  platform:network:\n"
                                 "    cidr: 10.0.0.0/33\n")
    code = cli.main(["review", "--all", "--project-dir", str(project), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2
    rows = {row["stack"]: row for row in doc["stacks"]}
    assert rows["staging"]["verdict"] == "error"
    assert "platform:network.cidr" in rows["staging"]["error"]
    assert rows["dev"]["verdict"] != "error" and rows["prod"]["verdict"] != "error"
    assert doc["total_monthly_usd"] == rows["dev"]["total_monthly_usd"] + \
        rows["prod"]["total_monthly_usd"]
    assert not any("organizationBudgetMonthlyUsd" in p for p in doc["problems"])
