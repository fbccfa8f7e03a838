"""Team scale must not change what the review says: a generated 50-team prod stack (bench/scale.py)
reviews to the verdicts, cost, capacity and resource count recorded in tests/fixtures/scale50.json
when that snapshot was taken, so an optimisation of the review (issue 19) that changes an answer
fails here. `python -m tests.test_scale --write` takes a new snapshot after a deliberate change."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

from tests.conftest import REPO

SNAPSHOT = REPO / "tests" / "fixtures" / "scale50.json"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_scale", REPO / "bench" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "bench"))
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _collector_as_the_command_tunes_it():
    """The garbage collector as `platformctl` runs (cli.entry): a third faster at this size."""
    from platformctl import cli

    before = gc.get_threshold()
    gc.set_threshold(*cli.GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def review_of(teams: int) -> dict:
    from platformctl.cli import review_document

    path = _bench().stack_with_teams(teams, Path(tempfile.mkdtemp(prefix=f"scale{teams}-")))
    with _collector_as_the_command_tunes_it():
        return review_document(str(path), REPO)


def answers() -> dict:
    """What the review of the 50-team stack says, without what varies by machine or path."""
    doc = review_of(50)
    return {
        "resource_count": doc["resource_count"],
        "resource_counts": doc["resource_counts"],
        "exit_code": doc["exit_code"],
        "policies": doc["policies"],
        "total_monthly_usd": doc["total_monthly_usd"],
        "fixed_monthly_usd": doc["fixed_monthly_usd"],
        "usage_monthly_usd": doc["usage_monthly_usd"],
        "cost_lines": sorted([line["resource_name"], line["key"], line["monthly_usd"]]
                             for line in doc["cost"]["lines"]),
        "capacity": doc["capacity"],
    }


def test_a_50_team_stack_reviews_as_it_did():
    found = json.loads(json.dumps(answers()))
    recorded = json.loads(SNAPSHOT.read_text())
    assert found["resource_count"] == recorded["resource_count"] > 900
    for key in recorded:
        assert found[key] == recorded[key], key


def test_the_pr_comment_of_a_200_team_stack_stays_under_githubs_limit():
    """The largest comment: a 200-team stack that is new at the base (all of its 3,600-odd
    resources added) with a violation on every resource. It stays under GitHub's limit, folds
    and counts what it cannot show, and keeps the verdict, the cost change and the pie."""
    from platformctl import review
    from platformctl.base import empty_document

    doc = review_of(200)
    assert doc["resource_count"] > 3000
    violation = {"policy": "required-tags", "enforcement": "mandatory", "severity": "high",
                 "resource_type": "aws:ec2/subnet:Subnet", "remediation": None,
                 "message": "missing or empty tags: owner (every resource of the platform "
                            "carries owner, environment, service, cost-center and managed-by)"}
    doc["policies"]["mandatory"] = [dict(violation, resource_name=r["name"])
                                    for r in doc["resources"]]
    doc["diff"] = review.diff(empty_document(doc["stack"]), doc)
    assert len(doc["diff"]["resources"]["added"]) > 3000
    comment = review.render_markdown(doc)
    assert len(comment) < review.COMMENT_LIMIT
    assert comment.startswith(f"### `{doc['stack']}`: **Blocked**: "
                              f"{len(doc['policies']['mandatory'])} mandatory violation(s)")
    assert "**Monthly cost: +$" in comment and "```mermaid\npie showData" in comment
    added = len(doc["diff"]["resources"]["added"])
    assert f"*{added - review.MAX_ROWS} more resource changes: the run's `review-{doc['stack']}`" in comment
    # The row limits suffice: nothing had to be left out, though the rows alone would not fit.
    assert "left out" not in comment
    assert sum(len(f"| added | `{r['type']}` | `{r['name']}` |  |")
               for r in doc["diff"]["resources"]["added"]) > review.COMMENT_LIMIT


if __name__ == "__main__" and "--write" in sys.argv:
    SNAPSHOT.write_text(json.dumps(answers(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT.relative_to(REPO)}")
