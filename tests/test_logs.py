"""The log pipeline (components/logs.py): Fluent Bit on every node into the two CloudWatch log
groups the program owns, retention from config, a role that can only write there, the rendered
DaemonSet as the chart renders it, and the cost following the nodes."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from components.logs import log_group_names
from platformctl.pricing import cost_report
from tests.conftest import config_error, mutate, stack_config, write_stack
from tests.k8s_objects import rendered_object

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
NAMESPACE = "kubernetes:core/v1:Namespace"


@pytest.mark.parametrize(("stack", "days"), [("dev", 7), ("prod", 30)])
def test_two_log_groups_per_stack_with_the_configured_retention(evaluations, stack, days):
    groups = {g.inputs.get("name", ""): g for g in evaluations[stack].of_type(LOG_GROUP)
              if g.inputs.get("name", "").startswith("/platform/")}
    assert set(groups) == {f"/platform/{stack}/containers", f"/platform/{stack}/nodes"}
    assert {g.inputs["retentionInDays"] for g in groups.values()} == {days}


def test_the_agent_may_only_write_into_its_two_groups(evaluations):
    prod = evaluations["prod"]
    (policy,) = [p for p in prod.of_type("aws:iam/rolePolicy:RolePolicy")
                 if p.name == "prod-log-agent"]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert sorted(statement["Action"]) == [
        "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    arns = {g.outputs["arn"] for g in prod.of_type(LOG_GROUP)
            if g.inputs.get("name", "") in log_group_names("prod").values()}
    assert set(statement["Resource"]) == arns | {f"{arn}:*" for arn in arns}
    (association,) = [a for a in prod.of_type(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation") if a.name == "prod-log-agent"]
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "logging", "fluent-bit")


def test_the_agent_runs_on_every_node_reading_logs_read_only(rendered):
    prod = rendered["prod"]
    namespace = next(n for n in prod.of_type(NAMESPACE) if n.name == "prod-logging")
    assert namespace.inputs["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "privileged"
    daemonset = rendered_object(prod, "fluent-bit", "DaemonSet", "fluent-bit")
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "fluent-bit"
    assert {"operator": "Exists"} in pod["tolerations"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/var/log"]["readOnly"] is True
    assert not mounts["/var/fluent-bit/state"].get("readOnly")
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] and context["capabilities"] == {"drop": ["ALL"]}
    assert not context["allowPrivilegeEscalation"]
    # The chart's config file carries the program's outputs (its default ships to Elasticsearch).
    config = rendered_object(prod, "fluent-bit", "ConfigMap", "fluent-bit")["data"]
    text = "\n".join(config.values())
    for group in log_group_names("prod").values():
        assert f"log_group_name {group}" in text
    assert "Name es" not in text and text.count("auto_create_group false") == 2
    assert rendered_object(prod, "fluent-bit", "ServiceMonitor", "fluent-bit")


def test_log_ingestion_is_priced_per_running_node(evaluations):
    lines = {stack: {(line.resource_name, line.key): line.monthly_usd
                     for line in cost_report(evaluations[stack]).priced
                     if line.resource_name.startswith(f"{stack}-logs-")}
             for stack in ("dev", "prod")}
    # prod: 4 nodes all week, 3 GB (containers) and 0.5 GB (journal) each, $0.50/GB.
    assert lines["prod"][("prod-logs-containers", "ingestion")] == Decimal("6.00")
    assert lines["prod"][("prod-logs-nodes", "ingestion")] == Decimal("1.00")
    # dev: 2 nodes asleep outside working hours (50 of 168 hours): 0.6 nodes on average.
    assert lines["dev"][("dev-logs-containers", "ingestion")] == Decimal("0.90")


def test_without_logs_there_is_no_pipeline_and_no_log_cost(dev_without_logs_or_traces):
    evaluation = dev_without_logs_or_traces
    assert evaluation.of_type("platform:index:LogPipeline") == []
    assert not [g for g in evaluation.of_type(LOG_GROUP) if g.inputs.get("name", "").startswith(
        "/platform/")]


def test_a_retention_cloudwatch_does_not_allow_is_refused(tmp_path, capsys):
    path = write_stack(tmp_path, mutate(stack_config("dev"),
                                        "platform:observability.logs.retentionDays", 10))
    err = config_error(path, capsys)
    assert "platform:observability.logs.retentionDays" in err and "10" in err
