"""The trace pipeline (components/traces.py): the OpenTelemetry Collector gateway as the chart
renders it, exactly the configuration the platform gives it, a role that can only put traces,
the environment's X-Ray group, the teams' way to it, and X-Ray priced from sampling and traffic."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import yaml

from components import traces
from platformctl.pricing import cost_report
from tests.conftest import config_error, mutate, stack_config, write_stack
from tests.k8s_objects import rendered_object

GROUP = "aws:xray/group:Group"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _relay(evaluation) -> dict:
    config_map = rendered_object(evaluation, "otel-gateway", "ConfigMap", "otel-gateway")
    return yaml.safe_load(config_map["data"]["relay"])


def test_the_gateway_runs_only_the_platforms_trace_pipeline(rendered):
    prod = rendered["prod"]
    relay = _relay(prod)
    assert set(relay["receivers"]) == {"otlp"}  # no jaeger, zipkin or self-scrape
    assert set(relay["exporters"]) == {"awsxray"}  # no debug exporter printing every span
    assert relay["exporters"]["awsxray"]["region"] == prod.config.region
    assert relay["service"]["pipelines"] == {"traces": {
        "receivers": ["otlp"], "exporters": ["awsxray"],
        "processors": ["memory_limiter", "probabilistic_sampler", "attributes", "batch"]}}
    sampler = relay["processors"]["probabilistic_sampler"]
    assert sampler["sampling_percentage"] == prod.config.observability.traces.sampling_percent
    (action,) = relay["processors"]["attributes"]["actions"]
    assert (action["key"], action["value"]) == ("deployment.environment.name", "prod")
    deployment = rendered_object(prod, "otel-gateway", "Deployment", "otel-gateway")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"].startswith("otel/opentelemetry-collector-contrib:")
    assert pod["serviceAccountName"] == "otel-gateway"
    service = rendered_object(prod, "otel-gateway", "Service", "otel-gateway")
    assert sorted(p["port"] for p in service["spec"]["ports"]) == [4317, 4318, 8888]
    assert rendered_object(prod, "otel-gateway", "ServiceMonitor", "otel-gateway")
    assert traces.ENDPOINT == "http://otel-gateway.tracing.svc.cluster.local:4318"


def test_team_pods_may_reach_the_gateway_and_nothing_else_there(rendered):
    prod = rendered["prod"]
    deployment = rendered_object(prod, "otel-gateway", "Deployment", "otel-gateway")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    team = prod.config.teams[0].namespaces[0]
    (egress,) = [p for p in prod.of_type(POLICY)
                 if p.inputs["metadata"]["namespace"] == team
                 and p.inputs["metadata"]["name"] == "allow-tracing"]
    (rule,) = egress.inputs["spec"]["egress"]
    (to,) = rule["to"]
    assert to["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "tracing"}
    assert to["podSelector"]["matchLabels"].items() <= labels.items()
    assert sorted(p["port"] for p in rule["ports"]) == [4317, 4318]
    (ingress,) = [p for p in prod.of_type(POLICY)
                  if p.inputs["metadata"]["namespace"] == "tracing"
                  and p.inputs["metadata"]["name"] == "allow-otlp-and-monitoring"]
    otlp, metrics = ingress.inputs["spec"]["ingress"]
    assert sorted(p["port"] for p in otlp["ports"]) == [4317, 4318]
    assert metrics["ports"] == [{"protocol": "TCP", "port": 8888}]


def test_the_gateway_may_only_put_traces(evaluations):
    prod = evaluations["prod"]
    (policy,) = [p for p in prod.of_type("aws:iam/rolePolicy:RolePolicy")
                 if p.name == "prod-trace-gateway"]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Action"] == ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    (association,) = [a for a in prod.of_type(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation") if a.name == "prod-trace-gateway"]
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "tracing", "otel-gateway")


def test_the_environments_group_and_its_price(evaluations):
    for stack, expected in (("dev", "1.31"), ("prod", "6.57")):
        evaluation = evaluations[stack]
        (group,) = evaluation.of_type(GROUP)
        assert group.inputs["groupName"] == stack
        assert group.inputs["filterExpression"] == (
            f'annotation.deployment_environment_name = "{stack}"')
        assert not group.inputs["insightsConfiguration"]["insightsEnabled"]  # billed per trace
        (line,) = [line for line in cost_report(evaluation).priced if line.resource_type == GROUP]
        # assumed requests/s x 730 h x 3600 s x 10% x $5 per million traces
        traffic = evaluation.config.observability.traces.assumed_requests_per_second
        assert line.monthly_usd.quantize(Decimal("0.01")) == Decimal(expected)
        assert line.monthly_usd == (Decimal(str(traffic)) * 730 * 3600 * Decimal("0.1")
                                    * Decimal("0.000005"))


def test_without_traces_there_is_no_gateway_and_no_group(dev_without_logs_or_traces):
    evaluation = dev_without_logs_or_traces
    assert evaluation.of_type("platform:index:TracePipeline") == []
    assert evaluation.of_type(GROUP) == []


@pytest.mark.parametrize("value", [0, 150])
def test_a_sampling_share_outside_0_to_100_is_refused(tmp_path, capsys, value):
    path = write_stack(tmp_path, mutate(stack_config("dev"),
                                        "platform:observability.traces.samplingPercent", value))
    err = config_error(path, capsys)
    assert "platform:observability.traces.samplingPercent" in err and str(value) in err
