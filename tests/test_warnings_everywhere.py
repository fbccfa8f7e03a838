"""Every warning everywhere: what the program warns about is in the text summary, the PR
comment and the JSON alike, and readiness reads the same facts (a receiver without a
destination does not reach a person, an IdP without its client secret signs nobody in)."""

from __future__ import annotations

import json

from platformctl import cli, pipeline, readiness, report
from tests.conftest import REPO, mutate, stack_config, write_stack


def test_the_comment_and_the_json_carry_every_warning(capsys):
    for stack in ("dev", "prod"):
        assert cli.main(["review", stack, "--format", "json"]) in (0, 1)
        doc = json.loads(capsys.readouterr().out)
        assert doc["warnings"], stack
        comment = report.render_markdown(doc)
        for warning in doc["warnings"]:
            first = report._first_line(report._without_outputs(warning, doc["outputs"]))
            assert report._md_escape(first) in comment, (stack, first)


def _controls(path):
    review = pipeline.review_stack(path, REPO, pipeline.FULL)
    return {line.control: line for line in readiness.environment(review, REPO)}


def test_readiness_agrees_with_the_warnings(tmp_path):
    shipped = _controls("prod")
    for control in ("Alerts reach a person (receivers configured)",
                    "Argo CD sign-in through the IdP, no local admin"):
        assert shipped[control].status == readiness.NO_EVIDENCE, control
    # Once the operator has set them (Pulumi secrets: ciphertext in the stack file), they pass.
    config = mutate(stack_config("prod"), "platform:gitops.sso.clientSecret",
                    {"secure": "v1:aGVsbG8=:c2VjcmV0"})
    receivers = config["platform:alerting"]["receivers"]
    config = mutate(config, "platform:alerting.receivers", [
        {**r, "slackWebhookUrl": {"secure": "v1:aGVsbG8=:dXJs"}} for r in receivers])
    configured = _controls(write_stack(tmp_path, config))
    for control in ("Alerts reach a person (receivers configured)",
                    "Argo CD sign-in through the IdP, no local admin"):
        assert configured[control].status == readiness.PASS, control
