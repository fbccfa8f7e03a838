"""The largest pull-request comment: a generated 200-team stack. Its own file so the
test workers can run it beside the 50-team snapshot (tests/test_scale.py)."""

from __future__ import annotations

from tests.test_scale import review_of


def test_the_pr_comment_of_a_200_team_stack_stays_under_githubs_limit():
    """The largest comment: a 200-team stack that is new at the base (all of its 3,600-odd
    resources added) with a violation on every resource. It stays under GitHub's limit, folds
    and counts what it cannot show, and keeps the verdict, the cost change and the pie."""
    from platformctl import review
    from platformctl.base_revision import empty_document

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
