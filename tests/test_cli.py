"""`platformctl review`: the README's main job."""

from __future__ import annotations

import io
import subprocess
import sys

from rich.console import Console

from platformctl import cli, report
from platformctl.harness import evaluate
from tests.conftest import REPO
from tests.test_harness import _secret_program


def test_review_dev_prints_the_plan_grouped_by_component(capsys):
    assert cli.main(["review", "dev", "--details", "--project-dir", str(REPO)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "Details of dev" in out and "Pulumi.dev.yaml" in out
    assert "platform:index:Network  dev  (36 resources)" in out
    assert "aws:ec2/subnet:Subnet  dev-private-us-east-1a" in out
    assert "aws:ec2/routeTableAssociation:RouteTableAssociation" in out
    # counts by type and in total
    assert "aws:ec2/subnet:Subnet" in out and " 6 " in out
    assert "total" in out and "31" in out
    # outputs
    assert "vpcId" in out and "vpc-" in out
    assert "us-east-1a, us-east-1b" in out


def _document(evaluation):
    from platformctl import review
    from platformctl.crossguard import check_evaluation
    from platformctl.pricing import cost_report

    return review.build_document(evaluation, check_evaluation(evaluation),
                                 cost_report(evaluation))


def test_the_tree_nests_children_under_their_parents(evaluations):

    doc = _document(evaluations["dev"])
    console = Console(file=io.StringIO(), width=200)
    console.print(report._tree(doc))
    lines = console.file.getvalue().splitlines()
    depth = {line.split("aws:")[-1].split()[-1]: len(line) - len(line.lstrip("│├└─ "))
             for line in lines if "aws:" in line}
    assert depth["dev-vpc"] < depth["dev-public-rt"] < depth["dev-public-default"]


def test_review_masks_secret_outputs():

    evaluation = evaluate("dev", project_dir=REPO, program=_secret_program)
    doc = _document(evaluation)
    console = Console(file=io.StringIO(), width=200)
    report.render_text(doc, console)
    text = console.file.getvalue() + report.render_markdown(doc) + report.render_json(doc)
    assert "[secret]" in text
    assert evaluation.outputs["password"].value not in text
    assert "s3cr3t" not in text


def test_a_command_from_a_subdirectory_finds_the_project(tmp_path):
    """The console entry point, from below the project: the stack file is found upwards (the
    reader every command uses, review's included; policy-config needs no evaluation)."""
    result = subprocess.run([sys.executable, "-m", "platformctl.cli", "policy-config", "dev"],
                            cwd=REPO / "components", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"environment": "dev"' in result.stdout
    assert "Traceback" not in result.stderr


def test_missing_command_is_a_usage_error(capsys):
    import pytest

    with pytest.raises(SystemExit) as caught:
        cli.main([])
    assert caught.value.code == 2


def test_review_shows_cost_and_verdicts(capsys):
    """prod's review in the terminal: the cost against the budget and the verdicts (a stack that
    fails on a mandatory violation: tests/test_review.py, in every format)."""
    assert cli.main(["review", "prod", "--details", "--project-dir", str(REPO)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    # The summary first: the verdict, the cost against the budget (95%), the headroom.
    summary = out[:out.index("Details of prod")]
    assert "PASSES with 1 advisory: budget-warning" in summary
    assert "$343.36/month of $345.00 · headroom $1.64 · 100% of budget" in summary
    # Both figures: expected, and at the ceiling against the stack's share of the cap.
    assert "ceiling $386.25/month of $389.00 · headroom $2.75" in summary
    # Then the details.
    assert "Monthly cost estimate (us-east-1" in out and "343.36" in out
    assert "budget $345.00/month, headroom $1.64" in out
    # The spot group can grow by no node: one more would cost more than the ceiling's headroom.
    assert ("node group spot: 1 desired, maxSize 3 (largest within the ceiling budget: 3)"
            in out)
    assert "platform-guard mandatory" not in out
    assert "platform-guard advisory (1)" in out and "[budget-warning]" in out
    assert "[node-capacity]" not in out


def test_policy_config_command_derives_from_the_stack_config(capsys):
    import json

    assert cli.main(["policy-config", "prod", "--project-dir", str(REPO)]) == cli.EXIT_OK
    config = json.loads(capsys.readouterr().out)
    assert config["budget-limit"] == {"budgetMonthlyUsd": 345.0, "region": "us-east-1"}
    assert config["budget-ceiling"] == {"budgetCeilingMonthlyUsd": 389.0, "region": "us-east-1"}
    assert config["required-tags"] == {"environment": "prod"}
    assert config["prod-data-protection"]["production"] is True
    assert cli.main(["policy-config", "qa", "--project-dir", str(REPO)]) == cli.EXIT_USAGE


def test_the_command_runs_with_the_collector_tuned_for_one_batch():
    # The garbage collector's tuning (a third of a large review) lives in cli.entry;
    # a console script pointing at main would silently drop it.
    import tomllib


    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["platformctl"] == "platformctl.cli:entry"
    done = subprocess.run([sys.executable, "-c", "import gc, sys\nfrom platformctl import cli\n"
                           "cli._batch_process_gc()\nprint(gc.get_threshold())"],
                          capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == str(cli.GC_THRESHOLDS)
    assert cli.GC_THRESHOLDS[0] > 700  # young collections far rarer than Python's default


def test_progress_only_for_a_person_at_a_terminal():
    """The spinner's rule: a terminal on stderr, outside CI, without --quiet."""
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert cli.Progress.wanted(False, Terminal(), {}) is True
    assert cli.Progress.wanted(True, Terminal(), {}) is False  # --quiet
    assert cli.Progress.wanted(False, Terminal(), {"CI": "true"}) is False
    assert cli.Progress.wanted(False, Terminal(), {"CI": "false"}) is True
    assert cli.Progress.wanted(False, io.StringIO(), {}) is False  # a pipe or a file


def test_a_review_at_a_terminal_shows_its_steps_on_stderr(capsys, monkeypatch):
    """stderr on a real pseudo-terminal gets the steps; stdout (the JSON) is what it is with
    stderr captured. (With stderr piped or captured there is nothing on it: every other review
    test; the command's own process at a terminal: tests/test_cli_interrupt.py.)"""
    import os
    import pty
    import threading

    assert cli.main(["review", "dev", "--format", "json"]) == 0
    piped = capsys.readouterr()
    assert piped.err == ""
    controller, terminal = pty.openpty()
    seen = bytearray()

    def read() -> None:  # the terminal's other end: what a person would see
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the command's end closed
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    monkeypatch.delenv("CI", raising=False)  # CI turns the steps off
    with open(terminal, "w", encoding="utf-8") as tty:
        monkeypatch.setattr(sys, "stderr", tty)
        code = cli.main(["review", "dev", "--format", "json"])
        monkeypatch.undo()
    reader.join(10)
    os.close(controller)
    assert code == 0
    assert b"evaluating dev" in seen and b"rendering" in seen and b"running platform-guard" in seen
    assert capsys.readouterr().out == piped.out
