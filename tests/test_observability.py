"""The ObservabilityStack: rules rendered from the real stacks' SLO specs and checked by promtool
(burn-rate detection times: tests/test_burn_rates.py), every platform alert firing on its bad
series only, runbooks in sync, Alertmanager config checked by amtool, owned Kubernetes objects
validated, and the AWS-side alarms and budget."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components import alerts, slo
from components.observability import (
    ALERTMANAGER_SECRET,
    AlertingArgs,
    ObservabilityStack,
    alertmanager_config,
    max_connections,
    platform_alerts,
)
from components.slo import SloSpec
from platformctl import cli, stackfile
from platformctl.crossguard import policy_config
from platformctl.recording import Evaluation, Secret, unwrap_secrets
from tests import k8s_objects
from tests.conftest import REPO, config_error, mutate, stack_config, write_stack
from tests.k8s_objects import manifest, owned_objects
from tests.units import evaluate_alone, plain_target

PROMTOOL, AMTOOL = shutil.which("promtool"), shutil.which("amtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package "
                                    "`prometheus`) is installed by .ci/run")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool (Debian package "
                                  "`prometheus-alertmanager`) is installed by .ci/run")
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"


def rule_files(evaluation: Evaluation, directory: Path) -> list[Path]:
    """The rule files of a stack, as its recorded PrometheusRules deploy them."""
    paths = []
    for resource in evaluation.of_type(RULE):
        name = resource.inputs["metadata"]["name"]
        path = directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump(unwrap_secrets(resource.inputs)["spec"], sort_keys=False))
        paths.append(path)
    return paths


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@needs_promtool
@pytest.mark.parametrize("stack_name", ["dev", "prod"])
def test_rules_rendered_from_the_real_stacks_pass_promtool(evaluations, tmp_path, stack_name):
    paths = rule_files(evaluations[stack_name], tmp_path)
    assert sorted(p.name for p in paths) == ["platform-alerts.yaml", "platform-slos.yaml"]
    result = promtool("check", "rules", *map(str, paths), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    slos = yaml.safe_load((tmp_path / "platform-slos.yaml").read_text())["groups"]
    services = {g["name"].removeprefix("slo-") for g in slos}
    assert {"kube-apiserver", "argocd", "ingress"} <= services
    for group in slos:  # alerts evaluated after the ratios they read, in the same group
        kinds = ["record" if "record" in r else "alert" for r in group["rules"]]
        assert kinds == sorted(kinds, reverse=True) and set(kinds) == {"record", "alert"}


# -- the platform alerts, each on a bad and a healthy series -------------------------------

ALERT_CASES: dict[str, dict[str, Any]] = {
    "PlatformNodeNotReady": {
        "series": [('kube_node_status_condition{condition="Ready",status="true",node="n1"}',
                    "1x10 0x30"),
                   ('kube_node_status_condition{condition="Ready",status="true",node="n2"}',
                    "1x40")],
        "quiet_at": "14m", "firing_at": "36m",
        "labels": {"condition": "Ready", "status": "true", "node": "n1"},
        "annotations": {"summary": "Node n1 is not Ready",
                        "description": "Node n1 has not been Ready for 15 minutes; its pods are "
                                       "being rescheduled if capacity allows."},
    },
    "PlatformPodCrashLooping": {
        "series": [('kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff",'
                    'namespace="apps",pod="api-1",container="api"}', "0x5 1x40"),
                   ('kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff",'
                    'namespace="apps",pod="api-2",container="api"}', "0x45")],
        "quiet_at": "10m", "firing_at": "30m",
        "labels": {"reason": "CrashLoopBackOff", "namespace": "apps", "pod": "api-1",
                   "container": "api"},
        "annotations": {"summary": "apps/api-1 is crash-looping",
                        "description": "Container api of apps/api-1 has been in "
                                       "CrashLoopBackOff for 15 minutes."},
    },
    "PlatformVolumeFillingUp": {
        "series": [('kubelet_volume_stats_available_bytes{namespace="monitoring",'
                    'persistentvolumeclaim="data"}', "20000000000-50000000x300"),
                   ('kubelet_volume_stats_capacity_bytes{namespace="monitoring",'
                    'persistentvolumeclaim="data"}', "100000000000x300"),
                   ('kubelet_volume_stats_available_bytes{namespace="monitoring",'
                    'persistentvolumeclaim="quiet"}', "50000000000x300"),
                   ('kubelet_volume_stats_capacity_bytes{namespace="monitoring",'
                    'persistentvolumeclaim="quiet"}', "100000000000x300")],
        "quiet_at": "190m", "firing_at": "215m",
        "labels": {"namespace": "monitoring", "persistentvolumeclaim": "data"},
        "annotations": {"summary": "Volume monitoring/data fills within 4 hours",
                        "description": "Less than 10% free and, at the last 6 hours' rate, "
                                       "full within 4 hours: the workload using it will fail "
                                       "writes."},
    },
    "PlatformTargetDown": {
        "series": [('up{job="node-exporter",namespace="monitoring",instance="a"}', "1x5 0x30"),
                   ('up{job="node-exporter",namespace="monitoring",instance="b"}', "1x35"),
                   ('up{job="node-exporter",namespace="monitoring",instance="c"}', "1x35"),
                   ('up{job="grafana",namespace="monitoring",instance="g"}', "1x35")],
        "quiet_at": "10m", "firing_at": "30m",
        "labels": {"job": "node-exporter", "namespace": "monitoring"},
        "annotations": {"summary": "More than 10% of the node-exporter targets are down",
                        "description": "More than 10% of the scrape targets of job "
                                       "node-exporter in monitoring have been down for 15 "
                                       "minutes: its metrics, and any SLO computed from them, "
                                       "are incomplete."},
    },
    "PlatformArgoCDAppDegraded": {
        "series": [('argocd_app_info{name="shop",project="payments",health_status="Degraded",'
                    'sync_status="Synced"}', "1x30"),
                   ('argocd_app_info{name="cart",project="payments",health_status="Healthy",'
                    'sync_status="Synced"}', "1x30")],
        "quiet_at": "10m", "firing_at": "20m",
        "labels": {"name": "shop", "project": "payments", "health_status": "Degraded",
                   "sync_status": "Synced"},
        "annotations": {"summary": "Argo CD application shop is Degraded",
                        "description": "Application shop (project payments) has been Degraded "
                                       "for 15 minutes."},
    },
    "PlatformArgoCDAppOutOfSync": {
        "series": [('argocd_app_info{name="shop",project="payments",health_status="Healthy",'
                    'sync_status="OutOfSync"}', "1x45"),
                   ('argocd_app_info{name="cart",project="payments",health_status="Healthy",'
                    'sync_status="Synced"}', "1x45")],
        "quiet_at": "20m", "firing_at": "40m",
        "labels": {"name": "shop", "project": "payments", "health_status": "Healthy",
                   "sync_status": "OutOfSync"},
        "annotations": {"summary": "Argo CD application shop is out of sync",
                        "description": "Application shop has been OutOfSync for 30 minutes: "
                                       "what runs is not what Git says."},
    },
    "PlatformVaultSealed": {
        "series": [('vault_core_unsealed{pod="vault-0"}', "1x5 0x10"),
                   ('vault_core_unsealed{pod="vault-1"}', "1x15")],
        "quiet_at": "6m", "firing_at": "10m",
        "labels": {"pod": "vault-0"},
        "annotations": {"summary": "Vault vault-0 is sealed",
                        "description": "A sealed Vault serves no secrets: new pods that need "
                                       "secrets cannot start and dynamic database credentials "
                                       "cannot be renewed."},
    },
    "PlatformAlertNotificationsFailing": {
        "series": [('alertmanager_notifications_failed_total{integration="slack"}', "0+1x30"),
                   ('alertmanager_notifications_failed_total{integration="webhook"}', "0x30")],
        "quiet_at": "10m", "firing_at": "25m",
        "labels": {"integration": "slack"},
        "annotations": {"summary": "Alertmanager cannot deliver notifications to slack",
                        "description": "Notifications to slack have been failing for 15 "
                                       "minutes: pages may not reach anyone."},
    },
    # The log pipeline's (deployed with it; both stacks run it).
    "PlatformLogAgentMissing": {
        "series": [('kube_daemonset_status_desired_number_scheduled{namespace="logging",'
                    'daemonset="fluent-bit"}', "3x40"),
                   ('kube_daemonset_status_number_available{namespace="logging",'
                    'daemonset="fluent-bit"}', "3x10 2x30"),
                   # Another DaemonSet one short: not the log agent's business.
                   ('kube_daemonset_status_desired_number_scheduled{namespace="kube-system",'
                    'daemonset="aws-node"}', "3x40"),
                   ('kube_daemonset_status_number_available{namespace="kube-system",'
                    'daemonset="aws-node"}', "2x40")],
        "quiet_at": "20m", "firing_at": "30m",
        "labels": {"namespace": "logging", "daemonset": "fluent-bit"},
        "annotations": {"summary": "The log agent is not running on 1 node(s)",
                        "description": "Fluent Bit has been unavailable on 1 of the nodes it "
                                       "should run on for 15 minutes: those nodes' container "
                                       "and journal logs are not shipped (they stay on the node "
                                       "until its log files rotate)."},
    },
    "PlatformLogRecordsDropped": {
        "series": [('fluentbit_output_dropped_records_total{pod="fluent-bit-a",'
                    'name="cloudwatch_logs.0"}', "0x20 0+5x20"),
                   ('fluentbit_output_dropped_records_total{pod="fluent-bit-b",'
                    'name="cloudwatch_logs.0"}', "7x40")],
        "quiet_at": "15m", "firing_at": "30m",
        "labels": {"pod": "fluent-bit-a", "name": "cloudwatch_logs.0"},
        "annotations": {"summary": "fluent-bit-a is dropping log records (cloudwatch_logs.0)",
                        "description": "Fluent Bit on fluent-bit-a has dropped records of "
                                       "output cloudwatch_logs.0 in the last 10 minutes, after "
                                       "exhausting its retries or its disk buffer: those lines "
                                       "are lost."},
    },
    "PlatformLogDeliveryFailing": {
        "series": [('fluentbit_output_errors_total{pod="fluent-bit-a",name="cloudwatch_logs.1"}',
                    "0x10 0+2x40"),
                   ('fluentbit_output_errors_total{pod="fluent-bit-b",name="cloudwatch_logs.1"}',
                    "4x50")],
        "quiet_at": "10m", "firing_at": "35m",
        "labels": {"pod": "fluent-bit-a", "name": "cloudwatch_logs.1"},
        "annotations": {"summary": "fluent-bit-a cannot deliver logs to CloudWatch "
                                   "(cloudwatch_logs.1)",
                        "description": "Output cloudwatch_logs.1 of Fluent Bit on fluent-bit-a "
                                       "has failed to deliver for 15 minutes; records wait in "
                                       "the node's buffer and are dropped once their retries "
                                       "run out."},
    },
    # The trace gateway's.
    "PlatformTraceGatewayDown": {
        "series": [('kube_deployment_status_replicas_available{namespace="tracing",'
                    'deployment="otel-gateway"}', "2x5 0x30"),
                   ('kube_deployment_status_replicas_available{namespace="argocd",'
                    'deployment="argocd-server"}', "0x35")],
        "quiet_at": "10m", "firing_at": "20m",
        "labels": {"namespace": "tracing", "deployment": "otel-gateway"},
        "annotations": {"summary": "The trace gateway has no available replica",
                        "description": "No replica of the OpenTelemetry Collector gateway has "
                                       "been available for 10 minutes: the services' spans are "
                                       "refused and dropped by their SDKs."},
    },
    "PlatformTraceSpansDropped": {
        # pod a refuses spans and has no enqueue counter yet; pod b is steady.
        "series": [('otelcol_receiver_refused_spans_total{pod="otel-gateway-a",receiver="otlp"}',
                    "0x20 0+10x20"),
                   ('otelcol_receiver_refused_spans_total{pod="otel-gateway-b",receiver="otlp"}',
                    "3x40"),
                   ('otelcol_exporter_enqueue_failed_spans_total{pod="otel-gateway-b",'
                    'exporter="awsxray"}', "0x40")],
        "quiet_at": "15m", "firing_at": "30m",
        "labels": {"pod": "otel-gateway-a"},
        "annotations": {"summary": "otel-gateway-a is dropping spans",
                        "description": "The trace gateway otel-gateway-a has refused spans at "
                                       "its receiver (memory limiter) or could not queue them "
                                       "for export in the last 10 minutes: those spans are "
                                       "lost."},
    },
    "PlatformTraceExportFailing": {
        "series": [('otelcol_exporter_send_failed_spans_total{pod="otel-gateway-a",'
                    'exporter="awsxray"}', "0x10 0+4x40"),
                   ('otelcol_exporter_send_failed_spans_total{pod="otel-gateway-b",'
                    'exporter="awsxray"}', "9x50")],
        "quiet_at": "10m", "firing_at": "35m",
        "labels": {"pod": "otel-gateway-a", "exporter": "awsxray"},
        "annotations": {"summary": "otel-gateway-a cannot send traces to X-Ray (awsxray)",
                        "description": "Exporter awsxray of the trace gateway otel-gateway-a "
                                       "has failed to send spans for 15 minutes; they are "
                                       "retried, then dropped."},
    },
}


def test_every_platform_alert_has_a_case():
    assert set(ALERT_CASES) == {a.name for a in (*alerts.PROMETHEUS_ALERTS,
                                                 *alerts.LOG_PIPELINE_ALERTS,
                                                 *alerts.TRACE_PIPELINE_ALERTS)}
    assert len(alerts.all_alerts()) >= 8 + 1  # platform alerts, SLO burns, RDS alarms


@needs_promtool
def test_each_platform_alert_fires_on_its_bad_series_only(evaluations, tmp_path):
    rule_files(evaluations["dev"], tmp_path)
    base = evaluations["dev"].config.alerting.runbook_base_url
    tests = []
    assert evaluations["dev"].config.observability.logs.enabled
    for alert in platform_alerts(evaluations["dev"].config.observability):
        case = ALERT_CASES[alert.name]
        firing = {"exp_labels": {**case["labels"], "severity": alert.severity,
                                 "team": alert.team},
                  "exp_annotations": {**case["annotations"],
                                      "runbook_url": alert.runbook_url(base)}}
        tests.append({
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in case["series"]],
            "alert_rule_test": [
                {"eval_time": case["quiet_at"], "alertname": alert.name, "exp_alerts": []},
                {"eval_time": case["firing_at"], "alertname": alert.name,
                 "exp_alerts": [firing]},
            ],
        })
    (tmp_path / "alerts-test.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["platform-alerts.yaml"], "evaluation_interval": "1m", "tests": tests},
        sort_keys=False))
    result = promtool("test", "rules", "alerts-test.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_severity_summary_description_and_runbook(evaluations):
    base = evaluations["dev"].config.alerting.runbook_base_url
    spec = next(r for r in evaluations["dev"].of_type(RULE)
                if r.inputs["metadata"]["name"] == "platform-alerts").inputs["spec"]
    for rule in spec["groups"][0]["rules"]:
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["annotations"]["runbook_url"].startswith(base + "/")


# -- runbooks ------------------------------------------------------------------------------

def test_runbooks_are_generated_and_in_sync():
    generated = alerts.runbooks()
    committed = {p.relative_to(REPO) for p in (REPO / alerts.RUNBOOK_DIR).glob("*.md")}
    assert committed == set(generated), "run `platformctl generate --write`"
    for path, text in generated.items():
        assert (REPO / path).read_text() == text, f"{path} is stale: platformctl generate --write"
        for section in ("## Ownership", "## SLO", "## Dashboards", "## First 10 Minutes",
                        "## Rollback"):
            assert section in text, (path, section)


def test_every_paging_alert_links_its_runbook(evaluations):
    base = evaluations["prod"].config.alerting.runbook_base_url
    paging = [a for a in alerts.all_alerts() if a.paging]
    assert {a.name for a in paging} >= {"SLOErrorBudgetBurn", "PlatformVaultSealed",
                                        "PlatformVolumeFillingUp", "DatabaseStorageLow"}
    for alert in paging:
        url = alert.runbook_url(base)
        assert url.startswith(base + "/") and url.endswith(".md")
        assert (REPO / alerts.RUNBOOK_DIR / url.rsplit("/", 1)[1]).is_file(), url
    # The rules carry the same links.
    specs = [r.inputs["spec"] for r in evaluations["prod"].of_type(RULE)]
    urls = {rule["annotations"]["runbook_url"] for spec in specs for group in spec["groups"]
            for rule in group["rules"] if rule.get("labels", {}).get("severity") == "critical"}
    assert urls <= {a.runbook_url(base) for a in paging}


def test_generate_reports_stale_files(tmp_path, capsys):
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    (tmp_path / "charts").mkdir()
    shutil.copy2(REPO / "charts" / "README.md", tmp_path / "charts" / "README.md")
    analysis = tmp_path / "gitops" / "platform" / "analysis"
    analysis.mkdir(parents=True)
    shutil.copy2(REPO / "gitops" / "platform" / "analysis" / "http-slo.yaml", analysis)
    (tmp_path / "Pulumi.yaml").write_text("name: platform\nruntime: python\n")
    assert cli.main(["generate", "--project-dir", str(tmp_path)]) == 0
    (tmp_path / "docs" / "runbooks" / "platform-vault-sealed.md").write_text("edited by hand\n")
    assert cli.main(["generate", "--project-dir", str(tmp_path)]) == 1
    assert "stale: docs/runbooks/platform-vault-sealed.md" in capsys.readouterr().out


# -- Alertmanager ----------------------------------------------------------------------------

ALERTING = AlertingArgs.model_validate({
    "receivers": [
        {"name": "platform", "teams": ["platform"], "slackChannel": "#platform-alerts",
         "slackWebhookUrl": "https://hooks.slack.com/services/T0/B0/placeholder"},
        {"name": "payments-pager", "teams": ["payments"], "severities": ["critical"],
         "webhookUrl": "https://pager.example.com/hook"},
        {"name": "payments-chat", "teams": ["payments"], "severities": ["warning"]},
    ],
    "defaultReceiver": "platform",
    "runbookBaseUrl": "https://github.com/example-org/platform/blob/main/docs/runbooks",
})


def _urls(alerting: AlertingArgs) -> dict[str, str | None]:
    return {r.name: (r.slack_webhook_url or r.webhook_url).get_secret_value()
            if (r.slack_webhook_url or r.webhook_url) else None for r in alerting.receivers}


@needs_amtool
def test_alertmanager_config_passes_amtool(tmp_path):
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(alertmanager_config(ALERTING, _urls(ALERTING))))
    result = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Found:" in result.stdout


@needs_amtool
def test_alertmanager_routes_by_team_and_severity(tmp_path):
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(alertmanager_config(ALERTING, _urls(ALERTING))))

    def route(*labels: str) -> str:
        result = subprocess.run([AMTOOL, "config", "routes", "test", "--config.file", str(path),
                                 *labels], capture_output=True, text=True, timeout=60)
        return result.stdout.strip()

    assert route("team=payments", "severity=critical", "alertname=X") == "payments-pager"
    assert route("team=payments", "severity=warning", "alertname=X") == "payments-chat"
    assert route("team=platform", "severity=critical", "alertname=X") == "platform"
    assert route("team=unknown", "severity=warning", "alertname=X") == "platform"
    assert route("alertname=Watchdog", "severity=none") == "null"


def test_warnings_are_inhibited_by_their_critical_twin():
    config = alertmanager_config(ALERTING, _urls(ALERTING))
    (rule,) = config["inhibit_rules"]
    assert rule["source_matchers"] == ['severity = "critical"']
    assert rule["target_matchers"] == ['severity = "warning"']
    assert {"alertname", "service"} <= set(rule["equal"])
    assert config["route"]["group_by"] == ["alertname", "service", "team"]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["platform"]["slack_configs"][0]["channel"] == "#platform-alerts"
    assert "slack_configs" not in receivers["payments-chat"]  # no URL: drops, and warns


def _observability_alone(cfg) -> None:
    """The observability stack of a stack file's config on an existing cluster, alone."""
    ObservabilityStack(cfg.environment, cfg.observability, cfg.alerting, plain_target(),
                       environment=cfg.environment)


def test_receivers_without_a_url_warn_and_the_config_is_a_secret(evaluations, tmp_path):
    dev = evaluations["dev"]
    assert any("receiver 'platform' has no slackWebhookUrl" in w for w in dev.warnings)
    config = stack_config("dev")
    config["platform:alerting"]["receivers"][0]["slackWebhookUrl"] = {"secure": "v1:AAAA"}
    evaluation = evaluate_alone(write_stack(tmp_path, config), _observability_alone)
    assert not any("has no slackWebhookUrl" in w for w in evaluation.warnings)
    (secret,) = [s for s in evaluation.of_type("kubernetes:core/v1:Secret")
                 if s.inputs["metadata"]["name"] == ALERTMANAGER_SECRET]
    assert isinstance(secret.inputs["stringData"], Secret)  # the URL makes the data secret
    rendered = yaml.safe_load(unwrap_secrets(secret.inputs)["stringData"]["alertmanager.yaml"])
    slack = next(r for r in rendered["receivers"] if r["name"] == "platform")["slack_configs"][0]
    # The stack file's secure: value, as a placeholder naming its ciphertext's digest.
    assert slack["api_url"].startswith(stackfile.SECRET_PLACEHOLDER)


# -- the chart, owned objects, dashboards ----------------------------------------------------

def _release(evaluation: Evaluation):
    return k8s_objects.release(evaluation, "kube-prometheus-stack")


def test_chart_is_pinned_sized_per_environment_and_private(evaluations):
    dev, prod = _release(evaluations["dev"]), _release(evaluations["prod"])
    for release in (dev, prod):
        assert release.inputs["chart"] == "charts/kube-prometheus-stack-88.5.3.tgz"
        assert release.inputs["version"] == "88.5.3"
        values = release.inputs["values"]
        assert values["grafana"]["ingress"]["enabled"] is False
        assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
        assert "adminPassword" not in values["grafana"]
        assert values["alertmanager"]["alertmanagerSpec"]["useExistingSecret"] is True
        spec = values["prometheus"]["prometheusSpec"]
        claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
        assert claim["storageClassName"] == "gp3"
        assert spec["resources"]["limits"]["memory"]
        assert spec["ruleSelectorNilUsesHelmValues"] is False
        assert "LoadBalancer" not in json.dumps(values)
    dev_spec = dev.inputs["values"]["prometheus"]["prometheusSpec"]
    prod_spec = prod.inputs["values"]["prometheus"]["prometheusSpec"]
    assert (dev_spec["replicas"], dev_spec["retention"]) == (1, "7d")
    assert (prod_spec["replicas"], prod_spec["retention"]) == (2, "15d")
    assert prod.inputs["values"]["alertmanager"]["alertmanagerSpec"]["replicas"] == 2


def test_owned_kubernetes_objects_validate_strictly(stack):
    checked = 0
    for resource in owned_objects(stack, "platform:index:ObservabilityStack"):
        if resource.type.startswith("kubernetes:monitoring.coreos.com"):
            continue  # custom resources: checked against their CRD below
        kubernetes_validate.validate(manifest(resource), "1.36.0", strict=True)
        checked += 1
    assert checked >= 4  # namespace, two secrets, the dashboard ConfigMap


def test_prometheus_rules_validate_against_the_upstream_crd(stack, crds):
    assert crds.crd("monitoring.coreos.com/v1", "PrometheusRule").chart == \
        "kube-prometheus-stack 88.5.3"
    rules = stack.of_type(RULE)
    assert len(rules) == 2
    for resource in rules:
        assert crds.errors(manifest(resource)) == []


def test_slo_dashboard_is_provisioned_as_code(stack):
    (config_map,) = [c for c in stack.of_type("kubernetes:core/v1:ConfigMap")
                     if c.inputs["metadata"]["name"] == "platform-slo-dashboard"]
    assert config_map.inputs["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map.inputs["data"]["platform-slos.json"])
    titles = " ".join(p["title"] for p in dashboard["panels"])
    for spec in slo.PLATFORM_SLOS:
        assert f"{spec.service}: error budget left" in titles
    assert dashboard["uid"] == "platform-slos"


# -- SLO specs: teams' and the template ----------------------------------------------------

TEMPLATE = REPO / "docs" / "slo-template.yaml"


@needs_promtool
def test_the_slo_template_is_a_valid_spec_with_valid_rules(tmp_path):
    spec = SloSpec.model_validate(yaml.safe_load(TEMPLATE.read_text()))
    path = tmp_path / "team.yaml"
    path.write_text(yaml.safe_dump({"groups": slo.slo_rule_groups([spec], "https://x/r.md")}))
    result = promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_team_slo_in_the_stack_config_becomes_rules(tmp_path):
    team = yaml.safe_load(TEMPLATE.read_text())
    config = mutate(stack_config("dev"), "platform:observability.slos", [team])
    evaluation = evaluate_alone(write_stack(tmp_path, config), _observability_alone)
    (rules,) = [r for r in evaluation.of_type(RULE)
                if r.inputs["metadata"]["name"] == "platform-slos"]
    names = [g["name"] for g in rules.inputs["spec"]["groups"]]
    assert f"slo-{team['service']}" in names


def test_a_bad_slo_is_a_config_error(tmp_path, capsys):
    team = {**yaml.safe_load(TEMPLATE.read_text()), "objective": 1.5}
    path = write_stack(tmp_path, mutate(stack_config("dev"), "platform:observability.slos",
                                        [team]))
    assert "platform:observability.slos[0].objective: 1.5" in config_error(path, capsys)


# -- AWS side: alarms, topic, budget -------------------------------------------------------

def test_database_alarms_notify_the_alerts_topic(stack):
    (topic,) = stack.of_type("aws:sns/topic:Topic")
    alarms = {a.name.split("-", 1)[1]: a for a in stack.of_type(
        "aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarms) == {"database-cpu-high", "database-storage-low",
                           "database-connections-high", "cluster-pods-unschedulable"}
    # The cluster's own (AWS/EKS, vended free): pods no node takes for 15 minutes.
    cluster = alarms.pop("cluster-pods-unschedulable").inputs
    assert cluster["namespace"] == "AWS/EKS"
    assert cluster["metricName"] == "scheduler_pending_pods_UNSCHEDULABLE"
    assert cluster["dimensions"] == {"ClusterName": stack.outputs["clusterName"].value}
    assert (cluster["evaluationPeriods"], cluster["period"]) == (15, 60)
    assert cluster["alarmActions"] == [topic.outputs["arn"]]
    db = stack.of_type("aws:rds/instance:Instance")[0]
    for alarm in alarms.values():
        assert alarm.inputs["dimensions"] == {"DBInstanceIdentifier": db.inputs["identifier"]}
        assert alarm.inputs["alarmActions"] == [topic.outputs["arn"]]
        assert "Runbook: https://" in alarm.inputs["alarmDescription"]
    storage = alarms["database-storage-low"].inputs
    assert storage["threshold"] == db.inputs["allocatedStorage"] * 1024**3 * 0.10
    connections = alarms["database-connections-high"].inputs["threshold"]
    assert connections == int(max_connections(db.inputs["instanceClass"]) * 0.8)
    policy = json.loads(stack.of_type("aws:sns/topicPolicy:TopicPolicy")[0].inputs["policy"])
    assert {s["Principal"]["Service"] for s in policy["Statement"]} == {
        "cloudwatch.amazonaws.com", "budgets.amazonaws.com"}


def test_aws_budget_uses_the_same_figure_as_the_policy_pack(stack):
    (budget,) = stack.of_type("aws:budgets/budget:Budget")
    figure = policy_config(stack.config)["budget-limit"]["budgetMonthlyUsd"]
    assert float(budget.inputs["limitAmount"]) == figure == stack.config.budget_monthly_usd
    assert budget.inputs["timeUnit"] == "MONTHLY" and budget.inputs["budgetType"] == "COST"
    notifications = {(n["notificationType"], n["threshold"]) for n in budget.inputs["notifications"]}
    assert notifications == {("FORECASTED", 80), ("ACTUAL", 100)}
    (topic,) = stack.of_type("aws:sns/topic:Topic")
    for n in budget.inputs["notifications"]:
        assert n["subscriberSnsTopicArns"] == [topic.outputs["arn"]]
    assert budget.inputs["costFilters"] == [
        {"name": "TagKeyValue", "values": [f"user:environment${stack.config.environment}"]}]


def test_nothing_is_exposed_and_the_uis_are_port_forwarded(stack):
    assert stack.outputs["grafanaPortForward"].value.startswith("kubectl -n monitoring "
                                                                "port-forward svc/")
    assert stack.outputs["grafanaAdminPassword"].secret
    for resource in stack.resources:
        assert resource.inputs.get("spec", {}).get("type") != "LoadBalancer" \
            if isinstance(resource.inputs.get("spec"), dict) else True


# -- the monitoring namespace's network ------------------------------------------------------

def _monitoring_policies(evaluation) -> dict[str, dict]:
    namespace = evaluation.config.observability.namespace
    return {r.inputs["metadata"]["name"]: r.inputs["spec"]
            for r in evaluation.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
            if r.inputs["metadata"]["namespace"] == namespace}


def _template_labels(evaluation, release: str, kind: str, name: str) -> dict:
    found = k8s_objects.rendered_object(evaluation, release, kind, name)
    return found["spec"]["template"]["metadata"]["labels"]


def test_nothing_outside_monitoring_reaches_alertmanager_or_prometheus(rendered):
    for evaluation in rendered.values():
        policies = _monitoring_policies(evaluation)
        assert policies["default-deny-ingress"] == {"podSelector": {},
                                                    "policyTypes": ["Ingress"]}
        # Every allowance names who may come in, and no rule admits every namespace's pods.
        for name, spec in policies.items():
            for rule in spec.get("ingress", []):
                for peer in rule["from"]:
                    assert peer != {"namespaceSelector": {}}, name
        rollouts = policies["allow-rollouts-analysis"]
        assert rollouts["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
        (rule,) = rollouts["ingress"]
        selector = rule["from"][0]["podSelector"]["matchLabels"]
        labels = _template_labels(evaluation, "argo-rollouts", "Deployment", "argo-rollouts")
        assert selector.items() <= labels.items()  # selects the real controller
        webhook = policies["allow-api-server-to-the-operator-webhook"]
        operator = _template_labels(evaluation, "kube-prometheus-stack", "Deployment",
                                    "platform-monitoring-operator")
        assert webhook["podSelector"]["matchLabels"].items() <= operator.items()
        assert webhook["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 10250}]
        assert webhook["ingress"][0]["from"][0]["ipBlock"]["cidr"] == \
            evaluation.config.network.cidr


def test_grafana_loads_dashboards_from_the_monitoring_namespace_only(rendered):
    evaluation = rendered["prod"]
    grafana = k8s_objects.rendered_object(evaluation, "kube-prometheus-stack", "Deployment",
                                          "platform-monitoring-grafana")
    containers = {c["name"]: c for c in grafana["spec"]["template"]["spec"]["containers"]}
    env = {e["name"]: e.get("value") for e in containers["grafana-sc-dashboard"]["env"]}
    assert env["NAMESPACE"] == evaluation.config.observability.namespace  # not ALL


def test_node_exporter_serves_the_delivery_facts_and_grafana_shows_them(rendered):
    """node-exporter (as the vendored chart renders it) reads the textfile directory where the
    delivery facts' ConfigMap is mounted, optional, so it starts before Argo CD syncs it; the
    dashboard ships beside the SLOs'."""
    from components.observability import (
        DELIVERY_CONFIGMAP,
        DELIVERY_TEXTFILE_DIR,
        DELIVERY_UID,
    )

    evaluation = rendered["prod"]
    (daemonset,) = [o.object for r in evaluation.rendered if r.release == "kube-prometheus-stack"
                    for o in r.objects if o.kind == "DaemonSet" and "node-exporter" in o.name]
    pod = daemonset["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "node-exporter"]
    assert f"--collector.textfile.directory={DELIVERY_TEXTFILE_DIR}" in container["args"]
    assert {"name": DELIVERY_CONFIGMAP, "mountPath": DELIVERY_TEXTFILE_DIR,
            "readOnly": True} in container["volumeMounts"]
    assert {"name": DELIVERY_CONFIGMAP, "configMap": {"name": DELIVERY_CONFIGMAP,
                                                      "optional": True}} in pod["volumes"]
    (dashboards,) = [r for r in evaluation.of_type("kubernetes:core/v1:ConfigMap")
                     if r.inputs["metadata"]["name"] == "platform-slo-dashboard"]
    delivery = json.loads(dashboards.inputs["data"]["platform-delivery.json"])
    assert delivery["uid"] == DELIVERY_UID and len(delivery["panels"]) == 8


def test_what_pages_and_what_opens_a_ticket(evaluations):
    """The severity of every alert the platform ships, as a fixed table: who gets woken is a
    decision, so a change to it shows up here, not only as regenerated rules."""
    found: dict[str, set[str]] = {}
    for rule_resource in evaluations["prod"].of_type(RULE):
        for group in rule_resource.inputs["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.setdefault(rule["alert"], set()).add(rule["labels"]["severity"])
    assert found == {
        "SLOErrorBudgetBurn": {"critical", "warning"},  # fast burns page, slow ones ticket
        "PlatformVaultSealed": {"critical"},
        "PlatformVolumeFillingUp": {"critical"},
        "PlatformAlertNotificationsFailing": {"critical"},
        "PlatformNodeNotReady": {"warning"},
        "PlatformPodCrashLooping": {"warning"},
        "PlatformTargetDown": {"warning"},
        "PlatformArgoCDAppDegraded": {"warning"},
        "PlatformArgoCDAppOutOfSync": {"warning"},
        # The log pipeline: lost logs open a ticket (no user feels them).
        "PlatformLogAgentMissing": {"warning"},
        "PlatformLogRecordsDropped": {"warning"},
        "PlatformLogDeliveryFailing": {"warning"},
        # The trace gateway: tickets too.
        "PlatformTraceGatewayDown": {"warning"},
        "PlatformTraceSpansDropped": {"warning"},
        "PlatformTraceExportFailing": {"warning"},
    }


# -- logs and traces in Grafana --------------------------------------------------------------

def test_grafana_reads_the_logs_and_traces_through_data_sources_as_code(rendered):
    prod = rendered["prod"]
    config_map = k8s_objects.rendered_object(prod, "kube-prometheus-stack", "ConfigMap",
                                             "platform-monitoring-grafana-datasource")
    sources = {s["uid"]: s for s in yaml.safe_load(
        next(iter(config_map["data"].values())))["datasources"]}
    cloudwatch, xray = sources["cloudwatch"], sources["xray"]
    assert cloudwatch["type"] == "cloudwatch" and xray["type"] == "grafana-x-ray-datasource"
    assert cloudwatch["jsonData"]["authType"] == xray["jsonData"]["authType"] == "default"
    # The groups it preselects are the pipeline's, by the ARNs AWS gives them.
    groups = {g.inputs["name"]: g.outputs["arn"] for g in prod.of_type(
        "aws:cloudwatch/logGroup:LogGroup") if g.inputs.get("name", "").startswith("/platform/")}
    assert {g["name"]: g["arn"] for g in cloudwatch["jsonData"]["logGroups"]} == groups
    assert cloudwatch["jsonData"]["tracingDatasourceUid"] == "xray"  # traceId -> X-Ray
    grafana = k8s_objects.rendered_object(prod, "kube-prometheus-stack", "ConfigMap",
                                          "platform-monitoring-grafana")
    assert grafana["data"]["plugins"] == "grafana-x-ray-datasource@2.17.1"  # pinned
    # Its role reads these groups and X-Ray, nothing else, as Grafana's service account.
    (policy,) = [p for p in prod.of_type("aws:iam/rolePolicy:RolePolicy")
                 if p.name == "prod-grafana"]
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert set(statements["QueryThePlatformsLogs"]["Resource"]) == {
        *groups.values(), *(f"{arn}:*" for arn in groups.values())}
    actions = {a for s in statements.values() for a in s["Action"]}
    assert all(a.split(":")[1].startswith(("Get", "Describe", "Start", "Stop", "Filter",
                                           "BatchGet")) for a in actions), actions
    (association,) = [a for a in prod.of_type(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation") if a.name == "prod-grafana"]
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "monitoring", "platform-monitoring-grafana")
    assert k8s_objects.rendered_object(prod, "kube-prometheus-stack", "ServiceAccount",
                                       "platform-monitoring-grafana")


def test_the_slo_dashboard_links_each_service_to_its_logs_and_traces(evaluations):
    from urllib.parse import parse_qs, urlsplit

    prod = evaluations["prod"]
    (config_map,) = [c for c in prod.of_type("kubernetes:core/v1:ConfigMap")
                     if c.inputs["metadata"]["name"] == "platform-slo-dashboard"]
    dashboard = json.loads(config_map.inputs["data"]["platform-slos.json"])
    burn = [p for p in dashboard["panels"] if p["title"].endswith("burn rate (1 = on budget)")]
    assert burn and all(len(p["links"]) == 2 for p in burn)
    for panel in burn:
        service = panel["title"].split(":")[0]
        logs, traces = (json.loads(parse_qs(urlsplit(link["url"]).query)["panes"][0])["a"]
                        for link in panel["links"])
        assert logs["datasource"] == "cloudwatch" and traces["datasource"] == "xray"
        assert f'kubernetes.container_name = "{service}"' in logs["queries"][0]["expression"]
        assert traces["queries"][0]["query"] == (
            f'service("{service}") AND annotation.deployment_environment_name = "prod"')


@pytest.mark.parametrize("kind", ["Prometheus", "Alertmanager"])
def test_prods_prometheus_and_alertmanager_run_one_replica_per_az(rendered, kind):
    """Two replicas in one AZ go down together, and every alert with them: prod's are kept one
    per AZ (required; the chart's default only preferred other nodes), and the capacity check
    places and drains them so."""
    from platform_facts import capacity
    from platformctl.runtime_checks import Release

    prod = rendered["prod"]
    (release,) = [r for r in prod.rendered if r.release == "kube-prometheus-stack"]
    (spec,) = [o.object["spec"] for o in release.objects if o.kind == kind]
    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "topology.kubernetes.io/zone" and spec["replicas"] == 2
    objects = [o.object for o in release.objects]
    (workload,) = [w for w in capacity.workloads([Release(
        release.resource.urn, release.release, release.namespace, "kube-prometheus-stack",
        objects)]) if w.kind == kind]
    assert capacity.ZONE_KEY in workload.apart and workload.zonal_volumes
