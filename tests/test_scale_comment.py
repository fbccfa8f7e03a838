"""The largest pull-request comment: a 200-team prod stack. The comment is rendered from the
review document alone, so the document is grown here from the real prod review (this session's
rendered recording): each generated team `team-NNN` gets the resources the checkout team's
baseline has, as the generated stacks of bench/scale.py do. What a real 200-team evaluation
says is kept by tests/test_scale.py (50 teams, against a snapshot) and bench/scale.py (1 to 200
teams, timed)."""

from __future__ import annotations

import copy

from platformctl import pipeline, report
from platformctl.document import ReviewDocument

TEAMS = 200


def with_teams(doc: dict, teams: int) -> dict:
    """The review document of the same stack with `teams` more teams, each with the resources
    (namespace, quota, limits, network policies, bindings, project, Vault auth) of the team
    already there."""
    grown = copy.deepcopy(doc)
    baseline = [r for r in doc["resources"] if "checkout" in r["name"]]
    assert len(baseline) > 15, "the checkout team's baseline"
    for number in range(teams):
        team = f"team-{number:03d}"
        for resource in baseline:
            clone = copy.deepcopy(resource)
            for key in ("key", "name", "urn", "parent"):
                if clone[key]:
                    clone[key] = clone[key].replace("checkout", team)
            grown["resources"].append(clone)
    grown["resource_count"] = len(grown["resources"])
    return ReviewDocument.model_validate(grown).to_dict()  # still a well-formed document


def test_the_pr_comment_of_a_200_team_stack_stays_under_githubs_limit(rendered):
    """The largest comment: a 200-team stack that is new at the base (all of its 3,600-odd
    resources added) with a violation on every resource. It stays under GitHub's limit, folds
    and counts what it cannot show, and keeps the verdict, the cost change and the pie."""
    from platformctl import review
    from platformctl.base_revision import empty_document

    doc = with_teams(pipeline.review_evaluation(rendered["prod"]).document(), TEAMS)
    assert doc["resource_count"] > 3000
    namespaces = {r["name"] for r in doc["resources"] if r["type"] == "kubernetes:core/v1:Namespace"}
    assert {f"prod-team-{n:03d}" for n in range(TEAMS)} <= namespaces
    violation = {"policy": "required-tags", "enforcement": "mandatory", "severity": "high",
                 "resource_type": "aws:ec2/subnet:Subnet", "remediation": None,
                 "message": "missing or empty tags: owner (every resource of the platform "
                            "carries owner, environment, service, cost-center and managed-by)"}
    doc["policies"]["mandatory"] = [dict(violation, resource_name=r["name"])
                                    for r in doc["resources"]]
    doc["diff"] = review.diff(empty_document(doc["stack"]), doc)
    assert len(doc["diff"]["resources"]["added"]) > 3000
    comment = report.render_markdown(doc)
    assert len(comment) < report.COMMENT_LIMIT
    count = len(doc["policies"]["mandatory"])
    assert comment.startswith(f"### `{doc['stack']}`: **Blocked**: {count} mandatory violation"
                              + ("s" if count != 1 else ""))
    assert "**Monthly cost: +$" in comment and "```mermaid\npie showData" in comment
    added = len(doc["diff"]["resources"]["added"])
    assert (f"*{added - report.MAX_ROWS} more resource changes: the run's `review` artefact "
            f"(`{doc['stack']}` in review.json's `documents`") in comment
    # The row limits suffice: nothing had to be left out, though the rows alone would not fit.
    assert "left out" not in comment
    assert sum(len(f"| added | `{r['type']}` | `{r['name']}` |  |")
               for r in doc["diff"]["resources"]["added"]) > report.COMMENT_LIMIT

