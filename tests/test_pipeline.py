"""The one review pipeline: every command's verdicts come from `pipeline.review_stack`, a check
whose inputs were not computed is "not evaluated" (never a pass), and readiness and review agree
on every policy."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from platformctl import cli, pipeline, readiness
from platformctl.crossguard import NOT_RENDERED
from platformctl.runtime_checks import CHECKS
from tests.conftest import REPO, mutate, stack_config, write_stack

RENDERED_CHECKS = sorted(check.name for check in CHECKS)
CAPACITY = "The platform fits with one node lost"
REVIEW_STACK = pipeline.review_stack  # the real one, whatever a module fixture put in its place


def squeezed_prod(directory):
    """prod on one t4g.small: 11 pods at most, 2 GiB; the platform cannot fit."""
    return write_stack(directory, mutate(stack_config("prod"), "platform:cluster.nodeGroups", {
        "system": {"instanceTypes": ["t4g.small"], "capacityType": "ON_DEMAND", "minSize": 1,
                   "desiredSize": 1, "maxSize": 3, "diskSizeGib": 20}}), name="squeezed")


@pytest.fixture(scope="module")
def calls(tmp_path_factory, rendered):
    """Every call the commands make to the pipeline, each stack reviewed once (the commands
    then share that Review: what they print differs only by what they do with it). The real
    stacks start from this session's rendered recordings; the squeezed one is evaluated."""
    import dataclasses

    from platformctl import stackfile

    squeezed = squeezed_prod(tmp_path_factory.mktemp("squeezed"))
    seen: list[tuple[str, pipeline.Steps]] = []
    done: dict[tuple[str, pipeline.Steps], pipeline.Review] = {}

    def recorded(stack, project_dir=None, steps=pipeline.FULL, progress=None):
        seen.append((str(stack), steps))
        name = stackfile.stack_name_of(Path(stack)) if str(stack).endswith(".yaml") else stack
        if (str(stack), steps) not in done:
            done[(str(stack), steps)] = (
                pipeline.review_evaluation(dataclasses.replace(rendered[name]), steps)
                if name in rendered else REVIEW_STACK(stack, project_dir, steps))
        return done[(str(stack), steps)]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "review_stack", recorded)
        yield {"seen": seen, "squeezed": squeezed}


def _json(capsys, argv):
    code = cli.main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_a_prod_on_one_small_node_is_not_ready_and_says_capacity_fails(calls, capsys):
    argv = [str(calls["squeezed"]), "--project-dir", str(REPO)]
    code, doc = _json(capsys, ["readiness", *argv, "--format", "json"])
    assert code == 1 and doc["ready"] is False
    (capacity,) = [line for line in doc["lines"] if line["control"] == CAPACITY]
    assert capacity["status"] == readiness.FAIL
    assert "node-capacity" in capacity["evidence"][0] and "do not fit" in capacity["evidence"][0]
    assert cli.main(["review", *argv, "--format", "json"]) == 1
    assert "node-capacity" in {v["policy"] for v in
                               json.loads(capsys.readouterr().out)["policies"]["mandatory"]}


@pytest.mark.parametrize("stack", ["dev", "prod", "squeezed"])
def test_readiness_and_review_agree_on_every_policy(calls, capsys, stack):
    target = str(calls["squeezed"]) if stack == "squeezed" else stack
    argv = [target, "--project-dir", str(REPO)]
    before = len(calls["seen"])
    review_code, review = _json(capsys, ["review", *argv, "--format", "json"])
    _, ready = _json(capsys, ["readiness", *argv, "--format", "json"])
    # One call each, every step of the one pipeline.
    assert calls["seen"][before:] == [(target, pipeline.FULL)] * 2

    def keyed(verdicts):
        return sorted((v["policy"], v["resource_type"] or "", v["resource_name"] or "",
                       v["message"]) for v in verdicts)

    for kind in ("mandatory", "advisory"):
        assert keyed(ready["policies"][kind]) == keyed(review["policies"][kind]), kind
    assert ready["policies"]["not_evaluated"] == review["policies"]["not_evaluated"] == []
    assert (review_code == 1) == bool(review["policies"]["mandatory"]) == (stack == "squeezed")


def test_budget_and_generate_ask_the_pipeline_for_what_they_need(calls, capsys):
    before = len(calls["seen"])
    assert cli.main(["budget", "--project-dir", str(REPO), "--format", "json"]) == 0
    capsys.readouterr()
    assert sorted(calls["seen"][before:], key=str) == [
        (str(REPO / "Pulumi.dev.yaml"), pipeline.COST_ONLY),
        (str(REPO / "Pulumi.prod.yaml"), pipeline.COST_ONLY)]


# -- a check that cannot see ------------------------------------------------------------------

def test_without_rendering_the_rendered_checks_are_not_evaluated(evaluations):
    plan_only = pipeline.review_evaluation(
        dataclasses.replace(evaluations["dev"], rendered=[]),
        pipeline.Steps(render=False, verdicts=True, cost=True))
    assert sorted(n.policy for n in plan_only.verdicts.not_evaluated) == RENDERED_CHECKS
    assert {n.reason for n in plan_only.verdicts.not_evaluated} == {NOT_RENDERED}
    doc = plan_only.document()
    assert doc["exit_code"] == 2 and doc["policies"]["not_evaluated"]
    from platformctl import review

    kind, said = review.verdict(doc)
    assert kind == "not evaluated" and said.startswith("NOT EVALUATED: 9 checks did not run")
    lines = {line.control: line for line in readiness.environment(plan_only, REPO)}
    assert lines["No mandatory policy violation"].status == readiness.NOT_EVALUATED
    assert not readiness.ready(lines.values())


def test_a_review_asked_for_what_it_did_not_compute_refuses(evaluations):
    plan = pipeline.review_evaluation(dataclasses.replace(evaluations["dev"], rendered=[]),
                                      pipeline.PLAN_ONLY)
    with pytest.raises(pipeline.NotComputed):
        plan.verdicts  # noqa: B018 - the property raises
    with pytest.raises(pipeline.NotComputed):
        plan.cost  # noqa: B018


@pytest.fixture
def no_helm(monkeypatch, evaluations):
    """No helm on this machine (PLATFORMCTL_HELM names nothing), and the evaluation shared."""
    from platformctl import helmbin

    monkeypatch.setenv("PLATFORMCTL_HELM", "/nonexistent/helm")
    monkeypatch.setattr(pipeline, "review_stack", REVIEW_STACK)
    monkeypatch.setattr(pipeline, "evaluate", lambda stack, project_dir=None: (
        dataclasses.replace(evaluations["prod"], rendered=[], is_rendered=False)))
    helmbin.binary.cache_clear()
    yield
    helmbin.binary.cache_clear()


def test_without_helm_readiness_shows_what_it_could_not_evaluate_and_exits_2(no_helm, capsys):
    code = cli.main(["readiness", "prod", "--project-dir", str(REPO), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 2
    doc = json.loads(captured.out)
    assert doc["ready"] is False
    (capacity,) = [line for line in doc["lines"] if line["control"] == CAPACITY]
    assert capacity["status"] == readiness.NOT_EVALUATED
    assert "PLATFORMCTL_HELM=/nonexistent/helm" in capacity["detail"]
    assert sorted(n["policy"] for n in doc["policies"]["not_evaluated"]) == RENDERED_CHECKS
    assert "error: not evaluated: PLATFORMCTL_HELM=/nonexistent/helm" in captured.err
    assert "Traceback" not in captured.err


def test_without_helm_the_review_exits_2_naming_why(no_helm, capsys):
    assert cli.main(["review", "prod", "--project-dir", str(REPO)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: PLATFORMCTL_HELM=/nonexistent/helm: not an executable file")


def test_cost_brings_a_real_plan_to_the_same_cost_step(monkeypatch, capsys):
    """`platformctl cost --preview-json` prices through the pipeline's cost step, once."""
    seen = []
    real = pipeline.price_preview

    def recorded(path, region=None):
        seen.append((Path(path).name, region))
        return real(path, region)

    monkeypatch.setattr(pipeline, "price_preview", recorded)
    fixture = REPO / "tests" / "fixtures" / "preview-update.json"
    assert cli.main(["cost", "--preview-json", str(fixture), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_monthly_usd"] == 173.80
    assert seen == [("preview-update.json", None)]
