"""The review as a reviewer reads it: the one-screen summary, the details behind it,
the comment's pie and size, `--all`, the README's samples. Its own file so the test workers can
share the review tests out."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import yaml

from platformctl import cli, report
from tests.conftest import REPO
from tests.test_review import TOTALS, run

# -- the summary: the verdict, the cost and the change on one screen ---------------------------

def _screen(doc, details_hint=True, width=80) -> list[str]:
    import io

    from rich.console import Console

    from platformctl import report

    stream = io.StringIO()
    report.render_summary(doc, Console(file=stream, width=width, color_system=None),
                          details_hint=details_hint)
    return stream.getvalue().splitlines()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_summary_of_each_shipped_stack_fits_an_80x24_terminal(stack, one_review_per_stack):
    doc = cli.review_document(stack, REPO)
    lines = _screen(doc)
    # 22: a two-line prompt that follows takes the 23rd and 24th, the title stays on screen.
    assert len(lines) <= 22 and all(len(line) <= 80 for line in lines), "\n".join(lines)
    # No figure cut at 80 columns: the money line is whole (two lines if need be).
    text = "\n".join(lines)
    assert f"usage ${doc['usage_monthly_usd']:,.2f}" in text and "…" not in lines[2]
    assert lines[1].startswith("PASSES with 1 advisory: budget-warning")
    assert lines[2].startswith(f"${TOTALS[stack]:,.2f}/month of ")
    assert "headroom" in lines[2]
    # The component bars: the costliest first, the same numbers as the cost table.
    table = {line.split()[0]: line.split()[2] for line in lines[4:]
             if line.split() and line.split()[0] in doc["cost"]["by_component"]}
    assert table and all(f"{doc['cost']['by_component'][c]:,.2f}" == amount
                         for c, amount in table.items())
    assert "--details" in lines[-1]


def test_a_taller_terminal_shows_more_rows(one_review_per_stack):
    """At 120x40 nothing is folded that 38 lines (40 less a two-line prompt) can hold."""
    import io

    from rich.console import Console

    from platformctl import report

    doc = cli.review_document("dev", REPO)
    stream = io.StringIO()
    console = Console(file=stream, width=120, height=40, color_system=None, force_terminal=True)
    report.render_summary(doc, console)
    lines = stream.getvalue().splitlines()
    assert len(lines) <= 38
    assert not any("others" in line for line in lines), "\n".join(lines)


def test_a_blocked_change_is_summarised_on_one_screen_too(one_review_per_stack):
    """Many violations and a --base change: still 24 lines, the blocking policies named with
    their counts, the cost change and the resource changes, the rest counted."""
    import copy

    doc = copy.deepcopy(cli.review_document("dev", REPO))
    violation = {"policy": "required-tags", "enforcement": "mandatory", "severity": "high",
                 "resource_type": "aws:ec2/subnet:Subnet", "resource_name": "x",
                 "message": "missing or empty tags: owner", "remediation": None}
    doc["policies"]["mandatory"] = [dict(violation, resource_name=f"r{i}") for i in range(73)]
    doc["policies"]["advisory"] = []
    doc["warnings"] = [f"warning {i}" for i in range(5)]
    doc["diff"] = {"base": "main~1 (abc)", "resources": {
        "added": [{}] * 3, "removed": [{}], "changed": [{}] * 4, "replaced": [], "moved": []},
        "cost": {"summary": "+$70.04/month in total", "base_total_monthly_usd": 116.74,
                 "total_monthly_usd": 186.78, "delta_monthly_usd": 70.04, "lines": []}}
    lines = _screen(doc)
    assert len(lines) <= 22, "\n".join(lines)
    assert lines[1] == "BLOCKED: 73 mandatory violations: required-tags x73"
    # At 80 columns the money line is two (no figure cut), then the ceiling, then the change.
    assert lines[3] == "fixed $96.15 + usage $8.38"
    assert lines[4].startswith("ceiling $")  # both figures, then the change
    assert lines[5] == "Against main~1 (abc): +$70.04/month in total ($116.74 -> $186.78)"
    assert lines[6] == ("Resources against main~1 (abc): 3 added, 1 removed, 4 changed, "
                        "0 replaced")
    # Listed as the screen allows, every one counted.
    import re

    shown = sum(1 for line in lines if line.startswith("mandatory [required-tags]"))
    assert shown >= 1 and any(f"... and {73 - shown} more" in line for line in lines)
    warned = sum(1 for line in lines if line.startswith("warning   "))
    assert any(re.search(rf"\.\.\. and {5 - warned} more warnings", line) for line in lines)


def test_details_print_the_vault_steps_once(capsys, one_review_per_stack):
    code, out, _ = run(capsys, "review", "dev", "--details")
    assert code == 0
    assert out.count("vault operator init -format=json") == 1  # the output, not the warning too
    assert "(the steps: the vaultBootstrap output above)" in out


# -- every stack at once -------------------------------------------------------------------------

def test_review_all_is_one_table_and_one_exit_code(tmp_path, capsys):
    """A project with a passing stack, one over its budget and one that does not validate:
    each reviewed in its own process, one row each, exit 2 (not everything could be reviewed),
    the broken one's error named; the cap checked on the sum of the estimates."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(REPO / "certs", project / "certs")
    shutil.copy2(REPO / "Pulumi.dev.yaml", project / "Pulumi.dev.yaml")
    dev = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    tight = copy.deepcopy(dev)
    tight["config"]["platform:budgetMonthlyUsd"] = 100
    (project / "Pulumi.tight.yaml").write_text(yaml.safe_dump(tight))
    broken = copy.deepcopy(dev)
    broken["config"]["platform:network"]["cidr"] = "10.0.0.0/33"
    (project / "Pulumi.broken.yaml").write_text(yaml.safe_dump(broken))
    code = cli.main(["review", "--all", "--format", "json", "--project-dir", str(project)])
    doc = json.loads(capsys.readouterr().out)
    assert code == doc["exit_code"] == 2
    assert "documents" not in doc  # the rows; `--json FILE` has every stack's document too
    rows = {row["stack"]: row for row in doc["stacks"]}
    assert rows["dev"]["verdict"] == "advisory" and rows["dev"]["total_monthly_usd"] == TOTALS["dev"]
    assert rows["tight"]["verdict"] == "blocked" and rows["tight"]["mandatory"] == 1
    assert rows["broken"]["verdict"] == "error" and "10.0.0.0/33" in rows["broken"]["error"]
    assert doc["total_monthly_usd"] == round(2 * TOTALS["dev"], 2)
    assert doc["headroom_monthly_usd"] == round(500 - 2 * TOTALS["dev"], 2)
    from platformctl import allstacks

    text = allstacks.render_markdown(doc)
    assert "### Every stack: **Not reviewed**" in text and "| `tight` | blocked (1 mandatory) |" in text


def test_review_all_runs_the_same_command_forked_or_in_a_new_interpreter(tmp_path):
    """Where the OS cannot fork, each stack's review is a new interpreter: the same command,
    the same exit code and the same error."""
    from platformctl import allstacks

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(REPO / "certs", project / "certs")
    broken = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    broken["config"]["platform:network"]["cidr"] = "10.0.0.0/33"
    path = project / "Pulumi.broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    (forked,) = allstacks._forked(cli.main, [path], project, workers=1)
    fresh = allstacks._in_new_interpreter(path, project)
    assert forked.returncode == fresh.returncode == 2
    assert forked.stderr == fresh.stderr and "10.0.0.0/33" in forked.stderr
    assert forked.stdout == fresh.stdout == ""


def test_an_interrupted_review_all_leaves_no_review_running(tmp_path, monkeypatch):
    import os

    import pytest

    from platformctl import allstacks

    shutil.copy2(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy2(REPO / "Pulumi.dev.yaml", tmp_path / "Pulumi.dev.yaml")
    forked = []
    real_fork = os.fork

    def fork():
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(allstacks.os, "fork", fork)
    monkeypatch.setattr(allstacks.time, "sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        allstacks._forked(cli.main, [tmp_path / "Pulumi.dev.yaml"], tmp_path, workers=1)
    (pid,) = forked
    with pytest.raises(ChildProcessError):  # stopped and reaped: no such child any more
        os.waitpid(pid, os.WNOHANG)


def test_review_takes_one_stack_or_all(capsys):
    assert cli.main(["review", "--project-dir", str(REPO)]) == cli.EXIT_USAGE
    assert cli.main(["review", "dev", "--all", "--project-dir", str(REPO)]) == cli.EXIT_USAGE
    assert "name one stack" in capsys.readouterr().err


def test_the_readmes_samples_are_what_the_commands_print(one_review_per_stack):
    """The README shows the top of dev's summary, its comment's pie and `--all`'s table: each
    as the commands print them today."""
    import io
    import re

    from rich.console import Console

    from platformctl import allstacks

    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## What the first command shows"):]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", section, re.S | re.M)
    (summary_sample, all_sample) = [body for lang, body in blocks if not lang][:2]
    docs = {stack: cli.review_document(stack, REPO) for stack in ("dev", "prod")}
    lines = [line.rstrip() for line in _screen(docs["dev"], width=100)]
    for line in summary_sample.splitlines():
        assert line == "..." or line.rstrip() in lines, line
    (pie,) = [body for lang, body in blocks if lang == "mermaid"][:1]
    assert pie in report.render_markdown(docs["dev"])
    doc = {"stacks": [{"stack": s, "source": f"Pulumi.{s}.yaml", **allstacks.row_of(d)}
                      for s, d in docs.items()],
           "cap_monthly_usd": 500, "total_monthly_usd": round(sum(TOTALS.values()), 2),
           "headroom_monthly_usd": round(500 - sum(TOTALS.values()), 2), "problems": [],
           "ceiling_monthly_usd": round(sum(d["ceiling"]["total_monthly_usd"]
                                            for d in docs.values()), 2),
           "ceiling_headroom_monthly_usd": round(500 - sum(
               d["ceiling"]["total_monthly_usd"] for d in docs.values()), 2),
           "exit_code": 0}
    doc["teams"] = allstacks.team_rows(doc["stacks"])
    stream = io.StringIO()
    allstacks.render_text(doc, Console(file=stream, width=100, color_system=None))
    printed = [line.rstrip() for line in stream.getvalue().splitlines()]
    for line in all_sample.splitlines():
        assert line.rstrip() in printed, line


def test_json_beside_another_format_is_the_same_document(tmp_path, capsys, one_review_per_stack):
    """`--json FILE` (CI's artefact) is the document the comment was rendered from."""
    path = tmp_path / "review.json"
    code, out, _ = run(capsys, "review", "dev", "--format", "markdown", "--json", str(path))
    assert code == 0 and out.startswith("### `dev`")
    doc = json.loads(path.read_text())
    assert doc["total_monthly_usd"] == TOTALS["dev"] and doc["stack"] == "dev"
