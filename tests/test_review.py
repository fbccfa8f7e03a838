"""`platformctl review` as a pull request uses it: every format, exit codes, `--base` against a
real git history, and the same cost from real Pulumi runs and from the stack outputs."""

from __future__ import annotations

import copy
import io
import json
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from platformctl import cli, report, review
from platformctl.pricing import cost_report
from tests.conftest import REPO, mutate, stack_config, write_stack
from tests.pulumi_json import preview_json, stack_output_json

SCHEMA = json.loads((REPO / "docs" / "review-schema.json").read_text())
TOTALS = {"dev": 104.53, "prod": 343.36}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([*argv, "--project-dir", str(REPO)] if argv[0] == "review" else list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_schema_is_generated_from_the_typed_model():
    from platformctl import document

    assert (REPO / document.SCHEMA_PATH).read_text(encoding="utf-8") == document.json_schema(), (
        "docs/review-schema.json is stale: run `platformctl generate --write`")
    assert SCHEMA["$id"] == "platformctl.review/v1"
    # v1 stays compatible: what older documents lack is not required.
    assert not {"rendered", "capacity", "fixed_monthly_usd"} & set(SCHEMA["required"])


def test_the_model_refuses_a_document_the_schema_refuses():
    import pydantic

    from platformctl import document

    bad = {"policy": "p", "enforcement": "sometimes", "severity": None, "resource_type": None,
           "resource_name": None, "message": "m", "remediation": None}
    with pytest.raises(pydantic.ValidationError, match="enforcement"):
        document.Verdict.model_validate(bad)
    verdict_schema = {"$defs": SCHEMA["$defs"], "$ref": "#/$defs/Verdict"}
    jsonschema.validate({**bad, "enforcement": "advisory"}, verdict_schema)
    with pytest.raises(jsonschema.ValidationError, match="sometimes"):
        jsonschema.validate(bad, verdict_schema)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_json_follows_the_documented_schema(capsys, stack, evaluations, one_review_per_stack):
    code, out, _ = run(capsys, "review", stack, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    assert doc["schema"] == "platformctl.review/v1"
    assert doc["total_monthly_usd"] == TOTALS[stack]
    assert Decimal(str(doc["total_monthly_usd"])) == cost_report(evaluations[stack]).total
    assert doc["exit_code"] == 0 and doc["policies"]["mandatory"] == []
    assert doc["outputs"]["kubeconfig"] == {"value": "[secret]", "secret": True}
    password = evaluations[stack].of_type("random:index/randomPassword:RandomPassword")[0]
    assert password.outputs["result"] not in out  # masked in inputs too (passwordWo)
    db = next(r for r in doc["resources"] if r["type"] == "aws:rds/instance:Instance")
    assert db["inputs"]["passwordWo"] == "[secret]"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_markdown_is_a_pr_comment(capsys, stack, one_review_per_stack):
    code, out, _ = run(capsys, "review", stack, "--format", "markdown")
    assert code == 0
    assert out.startswith(f"### `{stack}`: **Passes** platform-guard (1 advisory), "
                          f"${TOTALS[stack]:,.2f}/month")
    assert "\nAdvisory: budget-warning\n" in out
    assert "<details><summary>Cost, line by line</summary>" in out
    assert "| **total** | |" in out
    assert "| advisory | `budget-warning` | stack |" in out


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_comments_pie_shows_the_tables_numbers(capsys, stack, one_review_per_stack):
    """The Mermaid pie and the table beside it carry the same numbers, the cost model's per
    component, and add up to the total."""
    import re

    code, out, _ = run(capsys, "review", stack, "--format", "markdown")
    assert code == 0
    pie = out[out.index("```mermaid\npie showData"):]
    pie = pie[:pie.index("```\n", 4)]
    sliced = {name: float(amount) for name, amount in re.findall(r'"([\w ]+)" : ([\d.]+)', pie)}
    table = {m[0]: float(m[2].replace(",", "")) for m in re.findall(
        r"^\| (\w+) \| (\d+) \| ([\d,.]+) \|$", out, re.M)}
    doc = json.loads(run(capsys, "review", stack, "--format", "json")[1])
    priced = {c: a for c, a in doc["cost"]["by_component"].items() if a > 0}
    assert {c: a for c, a in table.items() if a > 0} == priced
    # Slices of at least 4% as they are; the rest merged into one "N others" slice, no sliver
    # Mermaid would draw without room for its label (tests/test_mermaid.py measures them).
    total = sum(priced.values())
    big = {c: a for c, a in priced.items() if a / total >= report.PIE_MIN_SHARE}
    small = {c: a for c, a in priced.items() if c not in big}
    assert len(small) > 1
    assert sliced == {**big, f"{len(small)} others": round(sum(small.values()), 2)}
    assert all(a / total >= report.PIE_DRAWN_SHARE for c, a in sliced.items())
    # Each subtotal is rounded to the cent on its own: they add up to the total within that.
    assert abs(sum(table.values()) - doc["total_monthly_usd"]) <= 0.005 * len(table)
    assert f"title {stack}: ${TOTALS[stack]:,.2f}/month by component" in pie


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_text_is_a_terminal_report(capsys, stack, one_review_per_stack):
    code, out, err = run(capsys, "review", stack, "--details")
    assert code == 0 and err == ""  # no progress where stderr is not a terminal
    assert f"Details of {stack}" in out and "Monthly cost estimate" in out
    assert f"{TOTALS[stack]:,.2f}" in out and "headroom" in out
    assert "[secret]" in out  # the kubeconfig output


@pytest.fixture(scope="module")
def violating(tmp_path_factory):
    """A stack over its budget, and its review document computed once for the three formats
    (the format changes only the rendering)."""
    path = write_stack(tmp_path_factory.mktemp("violating"),
                       mutate(stack_config("dev"), "platform:budgetMonthlyUsd", 100))
    return path, {}


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_a_violating_stack_exits_1_in_every_format(violating, capsys, monkeypatch, fmt):
    path, documents = violating
    compute = cli.review_document

    def once(stack, project_dir, progress=None):
        if (stack, project_dir) not in documents:
            documents[(stack, project_dir)] = compute(stack, project_dir)
        return documents[(stack, project_dir)]

    monkeypatch.setattr(cli, "review_document", once)
    code, out, _ = run(capsys, "review", str(path), "--format", fmt)
    assert code == 1
    assert "budget-limit" in out
    if fmt == "text":  # the summary names the policy that blocks
        assert "BLOCKED: 1 mandatory violation: budget-limit" in out
        assert "mandatory [budget-limit]" in out
    if fmt == "json":
        doc = json.loads(out)
        assert doc["exit_code"] == 1 and doc["headroom_monthly_usd"] == -4.53
    if fmt == "markdown":
        assert "**Blocked**: 1 mandatory violation," in out and "(headroom -$4.53)" in out
        assert "\nBlocked by: budget-limit\n" in out


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_a_bad_config_exits_2_in_every_format(tmp_path, capsys, fmt):
    path = write_stack(tmp_path, mutate(stack_config("dev"), "platform:network.azCount", 7))
    code, out, err = run(capsys, "review", str(path), "--format", fmt)
    assert code == 2 and out == ""
    assert "platform:network.azCount: 7" in err and "Traceback" not in err


PROJECT_FILES = ["Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "__main__.py", "stacks", "charts",
                 "certs", "components", "platformctl", "policy-packs", "pyproject.toml"]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com",
                           "-c", "user.name=t", *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A git repository of this project whose last commit adds a NAT gateway to dev, moves
    dev's VPC to another CIDR and drops the owner tag from the tagging mechanism."""
    repo = tmp_path_factory.mktemp("history")
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, repo / name,
                            ignore=shutil.ignore_patterns("__pycache__", "venv", "*.egg-info"))
        else:
            shutil.copy2(source, repo / name)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "base")
    dev = repo / "Pulumi.dev.yaml"
    dev.write_text(dev.read_text().replace(
        "    cidr: 10.10.0.0/16\n", "    cidr: 10.30.0.0/16\n    natStrategy: one-per-az\n"))
    config = repo / "stacks" / "config.py"
    text = config.read_text()
    assert '            "owner": self.tags.owner,\n' in text
    config.write_text(text.replace('            "owner": self.tags.owner,\n', "").replace(
        "        assert tuple(tags) == REQUIRED_TAG_KEYS\n", ""))
    _git(repo, "commit", "-qam", "a NAT gateway per AZ in dev, a new VPC CIDR; owner tag dropped")
    return repo


def review_in(repo: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """platformctl run in a checkout with that checkout's own code first on the path, as CI on
    a pull request's head runs it."""
    env = {"PYTHONPATH": f"{repo}:{repo / 'policy-packs' / 'platform-guard'}",
           "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "platformctl.cli", "review", *argv,
                           "--project-dir", str(repo)], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def base_review(history):
    """One `review --base` of the history's head, as JSON (each of these runs evaluates twice).
    The head's own code in its own process, as CI runs it: the tests that read it are e2e."""
    return review_in(history, "dev", "--base", "HEAD~1", "--format", "json")


@pytest.mark.e2e  # the head's own code in its own process, as CI runs it
def test_base_reports_the_cost_delta_and_the_new_violation(history, base_review):
    result = base_review
    doc = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr  # the dropped tag is a mandatory violation
    change = doc["diff"]
    assert change["base"].startswith("HEAD~1 (")
    added = {(r["type"], r["name"]) for r in change["resources"]["added"]}
    # From the NAT instance to a gateway per AZ: both gateways are new, and the instance goes.
    assert added == {("aws:ec2/natGateway:NatGateway", "dev-nat-us-east-1a"),
                     ("aws:ec2/natGateway:NatGateway", "dev-nat-us-east-1b"),
                     ("aws:ec2/eip:Eip", "dev-nat-us-east-1b")}
    removed = {(r["type"], r["name"]) for r in change["resources"]["removed"]}
    assert ("aws:autoscaling/group:Group", "dev-nat-instance") in removed
    summaries = [line["summary"] for line in change["cost"]["lines"]]
    assert "+$32.85/month: NAT gateway in us-east-1b added (dev-nat-us-east-1b)" in summaries
    assert "+$3.65/month: public IPv4 address added (dev-nat-us-east-1b)" in summaries
    # Two gateways and an address instead of the instance, and the VPC's NAT data is now charged.
    assert change["cost"]["delta_monthly_usd"] == 70.5
    assert change["cost"]["summary"] == "+$70.50/month in total"
    new = change["violations"]["new"]
    assert any(v["policy"] == "required-tags" and "missing or empty tags: owner" in v["message"]
               and v["resource_name"] == "dev-vpc" for v in new)
    vpc = next(c for c in change["resources"]["changed"] if c["name"] == "dev-vpc")
    assert vpc["changed_inputs"] == ["cidrBlock", "tags.owner"]
    # The provider replaces a VPC whose CIDR changes (ForceNew), every subnet with it (their
    # own CIDRs change, and their VPC id is unknown until the new VPC exists), and the cluster
    # on those subnets.
    assert (vpc["action"], vpc["replace_fields"]) == ("replace", ["cidrBlock"])
    by_name = {c["name"]: c for c in change["resources"]["changed"]}
    subnets = [c for c in change["resources"]["changed"] if c["type"] == "aws:ec2/subnet:Subnet"]
    assert len(subnets) == 6
    assert all(s["action"] == "replace" and "cidrBlock" in s["replace_fields"]
               and s["replaced_because"] == ["aws:ec2/vpc:Vpc::dev-vpc"] for s in subnets)
    assert by_name["dev-eks"]["action"] == "replace"
    assert by_name["dev-eks"]["replace_fields"] == ["vpcConfig"]
    # The database cannot follow: AWS keeps its subnet group and instance in their VPC, so
    # the updates the provider plans onto the new subnets and security groups are refused.
    assert by_name["dev-db"]["action"] == by_name["dev-postgres"]["action"] == "refused"
    assert {v["resource_name"] for v in doc["policies"]["mandatory"]
            if v["policy"] == "update-refused"} == {"dev-db", "dev-postgres", "dev-igw"}
    counts = change["resources"]["counts"]
    assert counts["replace"] >= 1 + 6 + 1 and counts["create"] == 3 and counts["delete"] >= 1
    assert counts["replace"] == sum(c["action"] == "replace"
                                    for c in change["resources"]["changed"])
    # Both revisions name URNs as the engine does, and none moved: nothing replaced by a URN.
    assert change["resources"]["replaced"] == change["resources"]["moved"] == []
    jsonschema.validate(doc, SCHEMA)
    # The worktree is gone afterwards.
    assert _git(history, "worktree", "list").count("\n") == 1


@pytest.mark.e2e  # the head's own code in its own process, as CI runs it
def test_base_markdown_leads_with_the_change(base_review):
    # The markdown of the same document (--format markdown renders exactly this).
    out = report.render_markdown(json.loads(base_review.stdout))
    assert "**Monthly cost: +$70.50/month in total** ($104.53 → $175.03" in out
    assert "- +$32.85/month: NAT gateway in us-east-1b added (dev-nat-us-east-1b)" in out
    assert "| create | `aws:ec2/natGateway:NatGateway` | `dev-nat-us-east-1b` | +$33.98 |  |" in out
    assert ("| **replace** | `aws:ec2/vpc:Vpc` | `dev-vpc` |  | `cidrBlock` (forces replacement)"
            in out)
    assert ":x: new **mandatory** `required-tags`" in out


def test_base_without_the_stack_counts_everything_as_added(history, tmp_path, capsys):
    sandbox = history / "Pulumi.sandbox.yaml"
    sandbox.write_text((history / "Pulumi.dev.yaml").read_text())
    # A third stack's budget needs room under the organisation's cap (dev + prod fill it).
    project = history / "Pulumi.yaml"
    original = project.read_text()
    project.write_text(original.replace("organizationBudgetMonthlyUsd: 500",
                                        "organizationBudgetMonthlyUsd: 700"))
    try:
        cli.main(["review", "sandbox", "--base", "HEAD", "--format", "json",
                  "--project-dir", str(history)])
        doc = json.loads(capsys.readouterr().out)
    finally:
        sandbox.unlink()
        project.write_text(original)
    assert doc["diff"]["resources"]["removed"] == []
    assert len(doc["diff"]["resources"]["added"]) == doc["resource_count"]
    assert doc["diff"]["cost"]["delta_monthly_usd"] == doc["total_monthly_usd"]


def test_an_unknown_base_is_a_usage_error(history, capsys):
    code = cli.main(["review", "dev", "--base", "no-such-ref", "--project-dir", str(history)])
    assert code == 2
    assert "'no-such-ref' is not a revision" in capsys.readouterr().err


def test_cost_from_a_real_preview_matches_the_offline_review(evaluations, tmp_path, capsys):
    for name, evaluation in evaluations.items():
        path = tmp_path / f"preview-{name}.json"
        path.write_text(json.dumps(preview_json(evaluation), indent=4))
        assert cli.main(["cost", "--preview-json", str(path), "--format", "json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["total_monthly_usd"] == TOTALS[name], name
        assert doc["region"] == "us-east-1"
        # Both figures, as every cost view shows them.
        assert doc["ceiling_monthly_usd"] == float(cost_report(evaluation, ceiling=True).total)


def test_cost_from_a_hand_written_preview_digest(capsys):
    fixture = REPO / "tests" / "fixtures" / "preview-update.json"
    assert cli.main(["cost", "--preview-json", str(fixture), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # 73.00 EKS + 32.85 + 2.25 NAT + 3.65 IPv4 + 25.75 (3 spot t4g.medium) + 4.80 (3 x 20 GiB)
    # + 17.52 CPU above baseline (no launch template: T4g launch unlimited; 6 vCPUs x 0.1 x
    # 730 h x $0.04) + 11.68 + 2.30 RDS (the replacement; deleted resources are not counted)
    assert doc["total_monthly_usd"] == 173.80
    items = {(line["resource_name"], line["item"]): line["monthly_usd"]
             for line in doc["cost"]["lines"]}
    assert items[("dev-system", "3 x t4g.medium spot nodes")] == 25.75
    assert items[("dev-system", "3 x 20 GiB gp3 root volumes")] == 4.80
    assert items[("dev-batch", "unknown until apply")] is None
    assert doc["cost"]["by_component"]["Cluster"] == 121.07
    assert not any(line["resource_name"] == "dev-sts" for line in doc["cost"]["lines"])


def test_cost_from_stack_outputs_matches(evaluations, tmp_path, capsys):
    for name, evaluation in evaluations.items():
        outputs = stack_output_json(evaluation)
        assert outputs["kubeconfig"] == "[secret]"
        path = tmp_path / f"outputs-{name}.json"
        path.write_text(json.dumps(outputs))
        assert cli.main(["cost", "--stack-output", str(path), "--format", "markdown"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"### Monthly cost: ${TOTALS[name]:,.2f}")
        ceiling = cost_report(evaluation, ceiling=True).total
        assert f"At the ceiling (every node group at maxSize): ${ceiling:,.2f}/month" in out


def test_the_program_exports_its_cost_with_line_items(evaluations):
    for name, evaluation in evaluations.items():
        assert evaluation.outputs["monthlyCostUsd"].value == TOTALS[name]
        assert not evaluation.outputs["costReport"].secret
        exported = evaluation.outputs["costReport"].value
        offline = cost_report(evaluation).to_dict()
        assert exported["totalMonthlyUsd"] == offline["totalMonthlyUsd"]
        key = lambda line: (line["resourceName"], line["key"], line["monthlyUsd"])  # noqa: E731
        assert sorted(map(key, exported["lines"])) == sorted(map(key, offline["lines"]))


def test_cost_input_errors_are_usage_errors(tmp_path, capsys):
    assert cli.main(["cost", "--preview-json", str(tmp_path / "missing.json")]) == 2
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert cli.main(["cost", "--preview-json", str(broken)]) == 2
    (tmp_path / "outputs.json").write_text("{}")
    assert cli.main(["cost", "--stack-output", str(tmp_path / "outputs.json")]) == 2
    assert "no costReport output" in capsys.readouterr().err


def test_base_tells_a_move_under_an_alias_from_a_replacement(evaluations):

    from platformctl import report
    from platformctl.crossguard import check_evaluation

    dev = evaluations["dev"]
    base = review.build_document(dev, check_evaluation(dev), cost_report(dev))
    head = copy.deepcopy(base)
    by_name = {r["name"]: r for r in head["resources"]}
    database, vpc = by_name["dev-postgres"], by_name["dev-vpc"]
    old_db, old_vpc = database["urn"], vpc["urn"]
    database["urn"] = old_db.replace("platform:index:Database$", "platform:index:Data$")
    vpc["urn"] = old_vpc.replace("platform:index:Network$", "platform:index:Net$")
    vpc["former_urns"] = [old_vpc]
    change = review.diff(base, head)["resources"]
    assert [(r["name"], r["base_urn"]) for r in change["replaced"]] == [("dev-postgres", old_db)]
    assert [r["name"] for r in change["moved"]] == ["dev-vpc"]
    assert change["added"] == change["removed"] == []
    markdown = report.render_markdown({**head, "diff": review.diff(base, head)})
    assert ("- :x: **replaced** `aws:rds/instance:Instance` `dev-postgres`: its URN changes "
            "without an alias") in markdown
    # A base from before URNs were recorded: nothing claimed either way.
    for r in base["resources"]:
        del r["urn"], r["former_urns"]
    assert review.diff(base, head)["resources"]["replaced"] == []


def test_the_same_stack_reviews_to_the_same_document(evaluations):
    """The SDK registers resources in an order that varies from run to run; the review does not
    (resources by URN, cost lines by component, type, name and key), so two PR comments of the
    same change are the same."""
    from platformctl.crossguard import check_evaluation
    from platformctl.harness import evaluate

    def document(evaluation):
        return review.build_document(evaluation, check_evaluation(evaluation),
                                     cost_report(evaluation))

    again = evaluate("dev", project_dir=REPO)
    first, second = document(evaluations["dev"]), document(again)
    assert [r["urn"] for r in first["resources"]] == [r["urn"] for r in second["resources"]]
    assert first["cost"]["lines"] == second["cost"]["lines"]


@pytest.mark.e2e  # reads the head's own review (base_review)
def test_diff_shows_each_changed_inputs_old_and_new_value(history, base_review, capsys):
    """Like `pulumi preview --diff`: the document carries old and new for every changed input;
    --diff prints them with the change, in text and in the comment."""
    doc = json.loads(base_review.stdout)
    (vpc,) = [r for r in doc["diff"]["resources"]["changed"] if r["name"] == "dev-vpc"]
    assert vpc["values"]["cidrBlock"] == {"old": "10.10.0.0/16", "new": "10.30.0.0/16"}
    assert vpc["values"]["tags.owner"]["new"] == "(not set)"
    markdown = report.render_markdown(doc, diff=True)
    assert "`cidrBlock`: `10.10.0.0/16` → `10.30.0.0/16` (forces replacement)" in markdown
    assert "10.10.0.0/16" not in report.render_markdown(doc)  # only with --diff
    console_out = io.StringIO()
    report.render_text(doc, Console(file=console_out, width=300), diff=True)
    assert "cidrBlock: 10.10.0.0/16 → 10.30.0.0/16 (forces replacement)" in console_out.getvalue()


def test_a_long_changed_value_is_shown_where_it_differs():
    """A policy document that changes near its end: both sides from a little before the first
    difference, not two identical beginnings cut off before it."""
    statement = {"Action": "eks:UpdateNodegroupConfig", "Effect": "Allow",
                 "Resource": [f"arn:aws:eks:us-east-1:123456789012:nodegroup/x/{n}"
                              for n in range(4)]}
    old = {"Statement": [statement]}
    new = {"Statement": [statement, {"Action": "rds:StopDBInstance", "Effect": "Allow"}]}
    was, now = review._shown_values(old, new)
    assert was.startswith("…") and now.startswith("…")
    assert "rds:StopDBInstance" in now and "rds:StopDBInstance" not in was
    assert len(was) <= review.DIFF_VALUE_CHARS and len(now) <= review.DIFF_VALUE_CHARS
    assert review._shown_values(None, "10.30.0.0/16") == ("(not set)", "10.30.0.0/16")
    long_new = "x" * 300
    assert review._shown_values(None, long_new)[1] == "x" * (review.DIFF_VALUE_CHARS - 1) + "…"


@pytest.mark.e2e  # reads the head's own review (base_review)
def test_the_summary_ends_the_change_with_previews_footer(history, base_review):
    doc = json.loads(base_review.stdout)
    console_out = io.StringIO()
    report.render_summary(doc, Console(file=console_out, width=300))
    footer = report.preview_counts(doc["diff"]["resources"]["counts"])
    assert "to create" in footer and "unchanged" in footer
    assert f"Resources against {doc['diff']['base']}: {footer}" in console_out.getvalue()


@pytest.mark.e2e  # reads the head's own review (base_review)
def test_each_violation_is_said_once_in_the_comment(history, base_review):
    doc = json.loads(base_review.stdout)
    assert doc["diff"]["violations"]["new"]
    comment = report.render_markdown(doc)
    listed = [*doc["policies"]["mandatory"], *doc["policies"]["advisory"]]
    # Never twice (the table stops at MAX_ROWS rows, the rest counted); the first ones once.
    for v in listed:
        assert comment.count(report._md_escape(v["message"])) <= 1, v["policy"]
    assert comment.count(report._md_escape(listed[0]["message"])) == 1


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_coverage_line_accounts_for_every_resource(capsys, stack, one_review_per_stack):
    code, out, _ = run(capsys, "review", stack, "--format", "json")
    doc = json.loads(out)
    c = doc["cost"]["coverage"]
    assert c["priced"] + c["free"] + c["unpriced"] + c["components"] == c["resources"] == \
        doc["resource_count"]
    assert c["priced"] == len({(line["resource_type"], line["resource_name"])
                               for line in doc["cost"]["lines"]
                               if line["monthly_usd"] is not None})
    assert report.coverage_text(c) in report.render_markdown(doc)


def test_the_cost_table_shows_each_lines_unit_price_and_resource(capsys, one_review_per_stack):
    code, out, _ = run(capsys, "review", "prod", "--format", "markdown")
    assert ("| Cluster | `prod-shared-alb` | shared ALB 'platform-public': responses to the "
            "internet") in out
    assert "<sub>131.40 GB x $0.09</sub> | 11.83 |" in out


def test_the_pie_of_a_change_shows_what_it_adds_and_what_it_removes(one_review_per_stack):
    """A change that moves money between components: one pie of what it adds, one of what it
    removes, each by component; unchanged components have no change in the table."""
    head = copy.deepcopy(cli.review_document("prod", REPO))
    base = copy.deepcopy(head)
    by = base["cost"]["by_component"]
    by["Network"] = round(by["Network"] + 12.5, 2)   # the change removes $12.50 of Network
    by["Cluster"] = round(by["Cluster"] - 30.25, 2)  # and adds $30.25 of Cluster
    base["total_monthly_usd"] = round(base["total_monthly_usd"] - 17.75, 2)
    review.attach_diff(base, head)
    text = "\n".join(report.cost_pie(head))
    assert text.count("```mermaid") == 3
    adds = text.split("title the change adds $30.25/month: by component")[1].split("```")[0]
    assert adds.strip() == '"Cluster" : 30.25'
    removes = text.split("title the change removes $12.50/month: by component")[1]
    assert removes.split("```")[0].strip() == '"Network" : 12.50'
    assert re.search(r"\| Cluster \| \d+ \| [\d,.]+ \| [\d,.]+ \| \+\$30\.25 \|", text)
    assert re.search(r"\| Network \| \d+ \| [\d,.]+ \| [\d,.]+ \| -\$12\.50 \|", text)
    assert re.search(r"\| Database \| \d+ \| [\d,.]+ \| [\d,.]+ \|  \|", text)
    assert "+$17.75 |" in text  # the total's change
    # Without a base: one pie, no change columns.
    plain = "\n".join(report.cost_pie(cli.review_document("prod", REPO)))
    assert plain.count("```mermaid") == 1 and "| before |" not in plain


def test_a_changed_cost_line_says_old_and_new_with_its_quantities(one_review_per_stack):
    head = copy.deepcopy(cli.review_document("prod", REPO))
    base = copy.deepcopy(head)
    (line,) = [x for x in base["cost"]["lines"]
               if x["resource_name"] == "prod-spot-us-east-1a" and x["key"] == "nodes"]
    now_item, now_usd = line["item"], line["monthly_usd"]
    line["item"] = now_item.replace("1 x ", "2 x ", 1)
    line["monthly_usd"] = round(now_usd * 2, 2)
    base["total_monthly_usd"] = round(base["total_monthly_usd"] + now_usd, 2)
    review.attach_diff(base, head)
    (change,) = [c for c in head["diff"]["cost"]["lines"]
                 if c["resource_name"] == "prod-spot-us-east-1a"]
    assert change["change"] == "changed"
    assert f"{line['item']} -> {now_item} (${line['monthly_usd']:,.2f} -> ${now_usd:,.2f})" in \
        change["summary"]
    # The resource's own cost, old -> new, in the change table (both its lines together).
    spot = [x for x in head["cost"]["lines"] if x["resource_name"] == "prod-spot-us-east-1a"]
    before = sum(x["monthly_usd"] for x in spot) + now_usd
    after = sum(x["monthly_usd"] for x in spot)
    assert report.resource_cost_changes(head["diff"])[
        ("aws:eks/nodeGroup:NodeGroup", "prod-spot-us-east-1a")] == \
        f"${before:,.2f} -> ${after:,.2f}"
