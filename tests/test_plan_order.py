"""Verdicts and cost do not depend on the order of the plan's resources.

The engine hands a stack policy the resources in the order the program registered them, and a
program that registers resources in parallel (Outputs resolving in whatever order) registers
them in another order from run to run. A verdict that names "the first" of several resources,
a fix list in input order or a sum of Decimals in input order then changes between two runs of
the same stack: the PR comment changes with nothing changed, and a reviewer stops trusting it.
Each stack below is checked in its own order and in three others, with every message and every
unrounded figure compared.
"""

from __future__ import annotations

import dataclasses
import random

import pytest

from platformctl import crossguard
from platformctl.harness import evaluate
from platformctl.pricing import cost_report
from platformctl.recording import Evaluation
from tests.conftest import REPO, mutate, stack_config, write_stack


def _outcome(evaluation: Evaluation, resources) -> tuple:
    reordered = dataclasses.replace(evaluation, resources=list(resources))
    guard = crossguard.check_evaluation(reordered)
    cost = cost_report(reordered)
    return (
        sorted((v.policy, v.message, v.urn or "") for v in guard.violations),
        sorted((v.policy, v.message, v.urn or "") for v in guard.cannot_run),
        sorted(map(repr, guard.not_applicable)),
        sorted(map(repr, guard.not_evaluated)),
        sorted(map(repr, cost.priced)),  # unrounded Decimals
        sorted(map(repr, cost.unpriced)),
        sorted(cost.free),
        cost.total,
    )


def _orders(resources: list) -> list[list]:
    shuffled = []
    for seed in (1, 2):
        order = list(resources)
        random.Random(seed).shuffle(order)
        shuffled.append(order)
    return [list(reversed(resources)), *shuffled]


def _assert_order_free(evaluation: Evaluation) -> tuple:
    expected = _outcome(evaluation, evaluation.resources)
    for order in _orders(list(evaluation.resources)):
        assert _outcome(evaluation, order) == expected
    return expected


@pytest.fixture(scope="module")
def many_findings(tmp_path_factory) -> Evaluation:
    """dev with what makes policies name one of several resources or list several: a NAT
    gateway per AZ, three on-demand node groups that can grow, budgets far below the cost."""
    config = stack_config("dev")
    config = mutate(config, "platform:budgetMonthlyUsd", 20)
    config = mutate(config, "platform:budgetCeilingMonthlyUsd", 25)
    config = mutate(config, "platform:network.natStrategy", "one-per-az")
    group = {"instanceTypes": ["m7g.large"], "capacityType": "ON_DEMAND", "minSize": 2,
             "desiredSize": 2, "maxSize": 6, "diskSizeGib": 20}
    config = mutate(config, "platform:cluster.nodeGroups",
                    {"system": dict(group), "batch": dict(group), "more": dict(group)})
    path = write_stack(tmp_path_factory.mktemp("order"), config, name="many")
    return evaluate(path, project_dir=REPO)


def test_many_findings_are_the_same_in_any_order(many_findings):
    violations, *_ = _assert_order_free(many_findings)
    # The stack does exercise what used to depend on the order: two NAT gateways, one named;
    # a budget-ceiling fix per node group, in one order.
    policies = {policy for policy, _, _ in violations}
    assert {"nat-per-az-outside-prod", "budget-ceiling", "budget-limit"} <= policies
    (ceiling,) = [message for policy, message, _ in violations if policy == "budget-ceiling"]
    fixes = [ceiling.index(f"nodeGroups.{name}.maxSize") for name in ("batch", "more", "system")]
    assert fixes == sorted(fixes)


def test_a_rendered_stack_is_the_same_in_any_order(rendered):
    # The rendered checks too (capacity, install order, identities, scrape coverage).
    _, _, _, not_evaluated, *_ = _assert_order_free(rendered["dev"])
    assert not_evaluated == []


def test_the_review_document_and_comment_are_the_same_in_any_order(rendered):
    """What a pull request shows: the whole review document and its markdown."""
    import json

    from platformctl import report, review

    dev = rendered["dev"]

    def document(resources) -> dict:
        reordered = dataclasses.replace(dev, resources=list(resources))
        found = review.build_document(reordered, crossguard.check_evaluation(reordered),
                                      cost_report(reordered))
        found.pop("seconds", None)
        return found

    expected = document(dev.resources)
    (order, *_) = _orders(list(dev.resources))
    shuffled = document(order)
    assert json.dumps(shuffled, sort_keys=True, default=str) == json.dumps(
        expected, sort_keys=True, default=str)
    assert report.render_markdown(shuffled) == report.render_markdown(expected)
