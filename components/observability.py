"""`ObservabilityStack`: Prometheus, Alertmanager and Grafana (kube-prometheus-stack), the SLO and
platform alert rules, Alertmanager routing, dashboards as code, and the AWS side: CloudWatch
alarms on the database, an SNS topic for them, and the environment's AWS Budget.

What it owns is first-class Kubernetes objects (namespace, secrets, PrometheusRules, dashboard
ConfigMaps), so policies and validators see them; the chart is a pinned `helm.v3.Release`.
Nothing is exposed publicly: Grafana, Prometheus and Alertmanager are ClusterIP services reached
with `kubectl port-forward` (the stack exports the commands).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
import yaml
from pydantic import Field, model_validator

from components import alerts, iam, pod_resources, slo
from components.args import (
    ArgsModel,
    Email,
    HttpsUrl,
    Invalid,
    PodResources,
    PromDuration,
    SecretUrl,
    SlackChannel,
    Slug,
)
from components.database import DatabaseRef
from components.kubernetes import PLATFORM_NAMESPACES, KubernetesTarget, apart_key
from components.logs import LogsArgs, log_group_names
from components.slo import SloSpec
from components.tagging import PlatformComponent
from components.traces import TracesArgs

# -- arguments ----------------------------------------------------------------------------------

class PrometheusSizing(ArgsModel):
    """Prometheus (`platform:observability.prometheus`)."""

    replicas: int = Field(ge=1, le=3, description="Prometheus replicas (each scrapes everything).")
    retention: PromDuration = Field(description="How long samples are kept, e.g. 15d.")
    storage_gib: int = Field(ge=10, le=1000, description="gp3 volume per replica, GiB.")
    resources: PodResources = Field(description="Requests and limits per replica.")


class AlertmanagerSizing(ArgsModel):
    """Alertmanager (`platform:observability.alertmanager`)."""

    replicas: int = Field(ge=1, le=3, description="Alertmanager replicas (they gossip).")
    storage_gib: int = Field(2, ge=1, le=100, description="gp3 volume per replica, GiB.")


class ObservabilityArgs(ArgsModel):
    """Prometheus, Alertmanager and Grafana (kube-prometheus-stack) and the SLOs
    (`platform:observability`)."""

    namespace: Slug = Field("monitoring", description="Namespace of the monitoring stack.")
    prometheus: PrometheusSizing = Field(description="Prometheus sizing.")
    alertmanager: AlertmanagerSizing = Field(description="Alertmanager sizing.")
    grafana_replicas: int = Field(1, ge=1, le=3, description="Grafana replicas.")
    grafana_url: HttpsUrl | None = Field(
        None, description="Where people reach Grafana (e.g. through the organisation's access "
        "proxy): the software catalog (`catalog-info.yaml`) links each service's SLO "
        "dashboard, logs and traces there. Not set: no such links.")
    logs: LogsArgs = Field(default_factory=LogsArgs,
                           description="Container and node logs (Fluent Bit to CloudWatch Logs).")
    traces: TracesArgs = Field(default_factory=TracesArgs,
                               description="Traces (OTLP to a collector gateway, then AWS X-Ray).")
    slos: tuple[SloSpec, ...] = Field(
        (), description="Teams' SLOs (docs/slo-template.yaml is the template); the platform's "
        "own SLOs are built in.",
    )

    @model_validator(mode="after")
    def _unique_slos(self) -> ObservabilityArgs:
        seen = set()
        for spec in self.slos:
            if spec.service in seen:
                raise Invalid("slos", spec.service, "two SLOs for one service; allowed: one each")
            seen.add(spec.service)
        return self


class Receiver(ArgsModel):
    """Where a team's alerts go (`platform:alerting.receivers[]`). Webhook and Slack URLs are
    secrets: `pulumi config set --secret --path 'platform:alerting.receivers[0].slackWebhookUrl'
    <url>`; without one, the receiver drops its alerts and `pulumi up` warns."""

    name: Slug = Field(description="Receiver name.")
    teams: tuple[Slug, ...] = Field(min_length=1, description="Teams (the `team` label) routed here.")
    severities: tuple[Literal["critical", "warning"], ...] = Field(
        ("critical", "warning"), min_length=1, description="Severities routed here.")
    slack_channel: SlackChannel | None = Field(None, description="Slack channel for Slack URLs.")
    slack_webhook_url: SecretUrl | None = Field(None, description="Slack incoming webhook (secret).")
    webhook_url: SecretUrl | None = Field(None, description="Generic webhook, e.g. a pager (secret).")

    @model_validator(mode="after")
    def _one_destination(self) -> Receiver:
        if self.slack_webhook_url is not None and self.webhook_url is not None:
            raise Invalid("webhookUrl", "[secret]", "set only one of slackWebhookUrl and webhookUrl")
        if self.slack_webhook_url is not None and self.slack_channel is None:
            raise Invalid("slackChannel", None, "required with slackWebhookUrl")
        return self


class AlertingArgs(ArgsModel):
    """Alert routing (`platform:alerting`)."""

    receivers: tuple[Receiver, ...] = Field(min_length=1, description="Alert receivers.")
    default_receiver: Slug = Field(description="Receiver for alerts of no listed team.")
    emails: tuple[Email, ...] = Field(
        (), description="Addresses subscribed to the SNS topic of CloudWatch alarms and budget "
        "notifications (each confirms by email).",
    )
    runbook_base_url: HttpsUrl = Field(
        description="Where docs/runbooks/ is browsable, e.g. "
        "https://github.com/<org>/platform/blob/main/docs/runbooks; alerts link there.")

    @model_validator(mode="after")
    def _default_exists(self) -> AlertingArgs:
        names = [r.name for r in self.receivers]
        if self.default_receiver not in names:
            raise Invalid("defaultReceiver", self.default_receiver,
                       f"is not a receiver; allowed: {', '.join(names)}")
        return self


RELEASE = "platform-monitoring"  # fullnameOverride: names of the chart's objects
# The operator reads Alertmanager's config from this secret (useExistingSecret):
# alertmanager-<fullname>-alertmanager.
ALERTMANAGER_SECRET = f"alertmanager-{RELEASE}-alertmanager"
GRAFANA_ADMIN_SECRET = "grafana-admin"
# The grafana subchart names its objects from the *release* (kube-prometheus-stack-grafana), not
# from the parent's fullnameOverride: name it explicitly, so the Service is where the outputs say.
GRAFANA_FULLNAME = f"{RELEASE}-grafana"
DASHBOARD_UID = "platform-slos"

# RDS for PostgreSQL: max_connections = DBInstanceClassMemory / 9531392 (parameter group
# default), by the class's memory in GiB.
_CLASS_MEMORY_GIB = {"db.t4g.micro": 1, "db.t4g.small": 2, "db.t4g.medium": 4,
                     "db.t4g.large": 8, "db.t4g.xlarge": 16, "db.m7g.large": 8,
                     "db.m7g.xlarge": 16, "db.r7g.large": 16}


def max_connections(instance_class: str) -> int:
    return int(_CLASS_MEMORY_GIB.get(instance_class, 1) * 1024**3 // 9531392)


def alertmanager_config(alerting: AlertingArgs, urls: Mapping[str, str | None]) -> dict[str, Any]:
    """Alertmanager's configuration: routes by team and severity, a receiver per configured
    receiver (`urls` gives each one's secret URL, or None: the receiver then drops alerts),
    warnings inhibited by their critical twin, grouping by alert, service and team."""
    receivers: list[dict[str, Any]] = [{"name": "null"}]
    routes: list[dict[str, Any]] = [
        # The chart's always-firing heartbeat and info inhibitor go nowhere.
        {"receiver": "null", "matchers": ['alertname = "Watchdog"']},
        {"receiver": "null", "matchers": ['alertname = "InfoInhibitor"']},
    ]
    for receiver in alerting.receivers:
        entry: dict[str, Any] = {"name": receiver.name}
        url = urls.get(receiver.name)
        if url and receiver.slack_webhook_url is not None:
            entry["slack_configs"] = [{
                "api_url": url, "channel": receiver.slack_channel, "send_resolved": True,
                "title": '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} '
                         '{{ .CommonLabels.service }}',
                "text": '{{ range .Alerts }}*{{ .Labels.severity }}*: {{ .Annotations.summary }}'
                        '\n{{ .Annotations.description }}\nRunbook: {{ .Annotations.runbook_url }}'
                        '\n{{ end }}',
            }]
        elif url:
            entry["webhook_configs"] = [{"url": url, "send_resolved": True}]
        receivers.append(entry)
        teams = "|".join(receiver.teams)
        severities = "|".join(receiver.severities)
        routes.append({
            "receiver": receiver.name,
            "matchers": [f'team =~ "{teams}"', f'severity =~ "{severities}"'],
            "routes": [
                # Pages repeat hourly until resolved; tickets twice a day.
                {"receiver": receiver.name, "matchers": ['severity = "critical"'],
                 "group_wait": "30s", "repeat_interval": "1h"},
                {"receiver": receiver.name, "matchers": ['severity = "warning"'],
                 "group_wait": "5m", "repeat_interval": "12h"},
            ],
        })
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": alerting.default_receiver,
            "group_by": ["alertname", "service", "team"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": routes,
        },
        "inhibit_rules": [{
            # A page makes its ticket-level twin (same alert, same service) redundant.
            "source_matchers": ['severity = "critical"'],
            "target_matchers": ['severity = "warning"'],
            "equal": ["alertname", "service", "namespace"],
        }],
        "receivers": receivers,
    }


def platform_alerts(observability: ObservabilityArgs) -> tuple[alerts.Alert, ...]:
    """The Prometheus alerts this stack deploys: the log pipeline's only where it runs (their
    metrics exist nowhere else)."""
    return (*alerts.PROMETHEUS_ALERTS,
            *(alerts.LOG_PIPELINE_ALERTS if observability.logs.enabled else ()),
            *(alerts.TRACE_PIPELINE_ALERTS if observability.traces.enabled else ()))


def rule_groups(observability: ObservabilityArgs, alerting: AlertingArgs) -> dict[str, list[dict]]:
    """The PrometheusRule specs this stack deploys: the SLOs' and the platform alerts'."""
    burn_runbook = alerts.SLO_BURN.runbook_url(alerting.runbook_base_url)
    slos: Sequence[SloSpec] = (*slo.PLATFORM_SLOS, *observability.slos)
    return {
        "platform-slos": slo.slo_rule_groups(slos, burn_runbook),
        "platform-alerts": alerts.prometheus_rule_groups(alerting.runbook_base_url,
                                                         platform_alerts(observability)),
    }


METRIC_SOURCES_ANNOTATION = "platform.example.org/metric-sources"
# The platform SLOs' scrape targets; the others are team services, scraped through the
# ServiceMonitors the golden path writes into gitops/ (not part of this plan).
PLATFORM_SLO_SOURCES = {"kube-apiserver": alerts.API_SERVER, "argocd": alerts.ARGOCD_CONTROLLER}
EXTERNAL_SOURCE = "external: the service's own ServiceMonitor, written by the golden path (gitops/)"


def metric_sources(observability: ObservabilityArgs) -> dict[str, dict[str, str]]:
    """Per PrometheusRule, where each alert's (or SLO group's) metrics come from, as the
    `platform.example.org/metric-sources` annotation carries it to the scrape-coverage policy."""
    def placed(source: str) -> str:
        return source.replace("{monitoring}", observability.namespace)

    slos: Sequence[SloSpec] = (*slo.PLATFORM_SLOS, *observability.slos)
    return {
        "platform-slos": {f"slo-{s.service}": placed(PLATFORM_SLO_SOURCES.get(
            s.service, EXTERNAL_SOURCE)) for s in slos},
        "platform-alerts": {a.name: placed(a.source) for a in platform_alerts(observability)
                            if a.source},
    }


DASHBOARD_RANGE = ("${__from}", "${__to}")  # a link from a panel: the dashboard's time range


def explore_url(datasource: str, query: dict[str, Any],
                time_range: tuple[str, str] = DASHBOARD_RANGE) -> str:
    """A Grafana Explore link: one pane, one query, the dashboard's time range (or another)."""
    pane = {"datasource": datasource, "queries": [{"refId": "A", **query}],
            "range": {"from": time_range[0], "to": time_range[1]}}
    return "/explore?schemaVersion=1&orgId=1&panes=" + quote(
        json.dumps({"a": pane}, separators=(",", ":")), safe="${}_")


def telemetry_links(service: str, environment: str, logs: bool, traces: bool,
                    time_range: tuple[str, str] = DASHBOARD_RANGE) -> list[dict[str, Any]]:
    """Links to the service's logs and traces in Explore, from an SLO's panels (the dashboard's
    range) or the software catalog (a fixed one): the golden path names the container after
    the service; the gateway stamps the environment on every span."""
    links = []
    if logs:
        links.append({"title": f"{service}: logs", "url": explore_url(CLOUDWATCH_UID, {
            "datasource": {"type": "cloudwatch", "uid": CLOUDWATCH_UID},
            "queryMode": "Logs", "region": "default",
            "expression": "fields @timestamp, kubernetes.pod_name, log | filter "
                          f'kubernetes.container_name = "{service}" | sort @timestamp desc'},
            time_range)})
    if traces:
        links.append({"title": f"{service}: traces", "url": explore_url(XRAY_UID, {
            "datasource": {"type": "grafana-x-ray-datasource", "uid": XRAY_UID},
            "queryType": "getTraceSummaries",
            "query": f'service("{service}") AND annotation.deployment_environment_name = '
                     f'"{environment}"'}, time_range)})
    return links


# Delivery (DORA): the facts `platformctl dora` counts, one series per prod promotion and per
# change, written into gitops/platform/dora/ by `platformctl promote` (a ConfigMap Argo CD syncs
# into the monitoring namespace) and served by node-exporter's textfile collector (every node
# serves the same file: the queries take the max per series). Labelled platform_service and
# platform_team: `service` is the scrape's own label (the node-exporter Service).
DELIVERY_UID = "platform-delivery"
DELIVERY_CONFIGMAP, DELIVERY_FILE = "platform-dora", "dora.prom"
DELIVERY_TEXTFILE_DIR = "/var/lib/platform-dora"
DELIVERY_SERVICE_LABEL, DELIVERY_TEAM_LABEL = "platform_service", "platform_team"
DELIVERY_METRICS = {
    "platform_dora_promotion_timestamp_seconds": "When a promotion to prod was recorded.",
    "platform_dora_promotion_failed": "1 when the promotion was rolled back within the change "
                                      "window (a failed change), else 0.",
    "platform_dora_restore_seconds": "A failed promotion: the time to the next good one.",
    "platform_dora_change_lead_time_seconds": "A commit that changed the service: the time to "
                                              "the prod promotion that shipped it.",
    "platform_dora_change_promoted_timestamp_seconds": "A commit that changed the service: when "
                                                       "the promotion that shipped it came.",
}


def delivery_queries(by: str, window: str = "$__range_s") -> dict[str, str]:
    """The four keys as PromQL over the facts, per `by` (platform_service or platform_team),
    over the `window` (seconds) that ends at the query's time: what the dashboard shows and
    tests/test_dora.py evaluates with promtool against `platformctl dora`'s figures."""
    def one(metric: str, *labels: str) -> str:
        return f"max by ({', '.join((by, *labels))}) ({metric})"

    def inside(metric: str, *labels: str) -> str:  # the facts whose time is in the window
        return f"(({one(metric, *labels)} > (time() - {window})) <= time())"

    promoted = inside("platform_dora_promotion_timestamp_seconds", "record")
    shipped = inside("platform_dora_change_promoted_timestamp_seconds", "commit", "record")
    return {
        "deployments per week": f"count by ({by}) ({promoted}) / ({window} / 604800)",
        "lead time (median)": f"quantile by ({by}) (0.5, "
                              f"{one('platform_dora_change_lead_time_seconds', 'commit', 'record')}"
                              f" and on ({by}, commit, record) {shipped})",
        "change failure rate": f"sum by ({by}) ({one('platform_dora_promotion_failed', 'record')}"
                               f" and on ({by}, record) {promoted}) / count by ({by}) "
                               f"({promoted})",
        "time to restore (median)": f"quantile by ({by}) (0.5, "
                                    f"{one('platform_dora_restore_seconds', 'record')} and on "
                                    f"({by}, record) {promoted})",
    }


def delivery_dashboard() -> dict[str, Any]:
    """Grafana: the four keys per service and per team over the dashboard's time range."""
    units = {"deployments per week": "short", "lead time (median)": "s",
             "change failure rate": "percentunit", "time to restore (median)": "s"}
    panels: list[dict[str, Any]] = []
    for row, (by, what) in enumerate(((DELIVERY_SERVICE_LABEL, "service"),
                                      (DELIVERY_TEAM_LABEL, "team"))):
        for column, (title, expr) in enumerate(delivery_queries(by).items()):
            panels.append({
                "type": "bargauge", "title": f"{title} per {what}",
                "gridPos": {"x": column * 6, "y": row * 8, "w": 6, "h": 8},
                "datasource": {"type": "prometheus", "uid": "prometheus"},
                "fieldConfig": {"defaults": {"unit": units[title]}},
                "targets": [{"refId": "A", "expr": expr, "instant": True,
                             "legendFormat": f"{{{{{by}}}}}"}]})
    return {"uid": DELIVERY_UID, "title": "Platform / Delivery (DORA)",
            "description": "Deployment frequency, lead time for changes, change failure rate "
                           "and time to restore, from the release records (platformctl dora).",
            "tags": ["platform", "dora"], "timezone": "utc", "schemaVersion": 39,
            "time": {"from": "now-30d", "to": "now"}, "panels": panels}


def slo_dashboard(slos: Sequence[SloSpec], environment: str = "",
                  logs: bool = False, traces: bool = False) -> dict[str, Any]:
    """A Grafana dashboard: per SLO, the SLI and error budget left over its window, and the burn
    rate over 1h and 6h (1.0 spends the budget exactly in the window); each SLO's burn-rate
    panel links to its service's logs and traces, when the stack collects them."""
    panels: list[dict[str, Any]] = []
    for row, spec in enumerate(slos):
        selector = f'service="{spec.service}"'
        window = f"{spec.window_days}d"
        ratio = f"avg_over_time(slo:sli_error:ratio_rate5m{{{selector}}}[{window}])"
        y = row * 8
        panels += [
            {"type": "stat", "title": f"{spec.service}: SLI over {window} (objective "
             f"{spec.objective:.4g})", "gridPos": {"x": 0, "y": y, "w": 6, "h": 8},
             "datasource": {"type": "prometheus", "uid": "prometheus"},
             "fieldConfig": {"defaults": {"unit": "percentunit", "decimals": 3}},
             "targets": [{"refId": "A", "expr": f"1 - {ratio}"}]},
            {"type": "stat", "title": f"{spec.service}: error budget left",
             "gridPos": {"x": 6, "y": y, "w": 6, "h": 8},
             "datasource": {"type": "prometheus", "uid": "prometheus"},
             "fieldConfig": {"defaults": {"unit": "percentunit", "min": 0, "max": 1,
                                          "thresholds": {"mode": "absolute", "steps": [
                                              {"color": "red", "value": None},
                                              {"color": "yellow", "value": 0.25},
                                              {"color": "green", "value": 0.5}]}}},
             "targets": [{"refId": "A", "expr": f"1 - ({ratio} / {spec.error_budget:g})"}]},
            {"type": "timeseries", "title": f"{spec.service}: burn rate (1 = on budget)",
             "gridPos": {"x": 12, "y": y, "w": 12, "h": 8},
             "links": telemetry_links(spec.service, environment, logs, traces),
             "datasource": {"type": "prometheus", "uid": "prometheus"},
             "targets": [
                 {"refId": "A", "legendFormat": "1h",
                  "expr": f"slo:sli_error:ratio_rate1h{{{selector}}} / {spec.error_budget:g}"},
                 {"refId": "B", "legendFormat": "6h",
                  "expr": f"slo:sli_error:ratio_rate6h{{{selector}}} / {spec.error_budget:g}"},
             ]},
        ]
    return {"uid": DASHBOARD_UID, "title": "Platform / SLOs and error budgets",
            "tags": ["platform", "slo"], "timezone": "utc", "schemaVersion": 39,
            "refresh": "1m", "time": {"from": "now-24h", "to": "now"}, "panels": panels}


# Grafana's data sources for the logs and traces (components/logs.py, components/traces.py),
# and the X-Ray plugin Grafana installs at start (the CloudWatch one ships with Grafana).
CLOUDWATCH_UID, XRAY_UID = "cloudwatch", "xray"
XRAY_PLUGIN = "grafana-x-ray-datasource@2.17.1"


def log_group_arns(environment: str, region: str, account: str,
                   partition: str = "aws") -> dict[str, str]:
    """The pipeline's log groups' ARNs by name (deterministic: the program names them)."""
    return {group: f"arn:{partition}:logs:{region}:{account}:log-group:{group}"
            for group in log_group_names(environment).values()}


def telemetry_data_sources(observability: ObservabilityArgs, environment: str, region: str,
                           account: str | None = None,
                           partition: str = "aws") -> list[dict[str, Any]]:
    """Provisioned as code: CloudWatch (the log groups, preselected when the account is known)
    and X-Ray (the traces; a log line's traceId links to it), both through Grafana's own AWS
    role (the SDK's default chain: EKS Pod Identity)."""
    sources = []
    if observability.logs.enabled:
        logs: dict[str, Any] = {"authType": "default", "defaultRegion": region}
        if account is not None:
            logs["logGroups"] = [{"arn": arn, "name": group} for group, arn in log_group_arns(
                environment, region, account, partition).items()]
        if observability.traces.enabled:
            logs["tracingDatasourceUid"] = XRAY_UID
        sources.append({"name": "CloudWatch Logs", "uid": CLOUDWATCH_UID, "type": "cloudwatch",
                        "access": "proxy", "editable": False, "jsonData": logs})
    if observability.traces.enabled:
        sources.append({"name": "X-Ray", "uid": XRAY_UID, "type": "grafana-x-ray-datasource",
                        "access": "proxy", "editable": False,
                        "jsonData": {"authType": "default", "defaultRegion": region}})
    return sources


def helm_values(observability: ObservabilityArgs, environment: str,
                region: str = "default", account: str | None = None,
                partition: str = "aws", zones: int = 1) -> dict[str, Any]:
    """kube-prometheus-stack values, read against the vendored chart's values.yaml (grafana.* in
    the grafana subchart's); the tests render them and check that the chart reads every key.
    `zones`: the AZs the nodes span (the replicas of Prometheus and Alertmanager one per AZ)."""
    prom, manager = observability.prometheus, observability.alertmanager

    def apart(replicas: int) -> dict[str, str]:
        # Required, not the chart's "soft": two replicas in one AZ (or on one node) go down
        # together, and with them every alert. One per AZ while there are no more than AZs.
        return {"podAntiAffinity": "hard",
                "podAntiAffinityTopologyKey": apart_key(replicas, zones)}

    pod = prom.resources

    def volume(gib: int) -> dict[str, Any]:
        return {"volumeClaimTemplate": {"spec": {
            "storageClassName": "gp3", "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": f"{gib}Gi"}}}}}

    return {
        "fullnameOverride": RELEASE,
        "crds": {"enabled": True},
        # EKS runs etcd, the scheduler and the controller manager out of reach, and kube-proxy
        # binds its metrics to localhost: no targets, so no rules or monitors for them.
        "defaultRules": {"create": True, "rules": {
            "etcd": False, "kubeControllerManager": False, "kubeSchedulerAlerting": False,
            "kubeSchedulerRecording": False, "kubeProxy": False, "windows": False}},
        "kubeEtcd": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "prometheusOperator": {
            "resources": pod_resources.values("kube-prometheus-stack.prometheusOperator"),
            "prometheusConfigReloader": {"resources": pod_resources.values(
                "kube-prometheus-stack.prometheusConfigReloader")},
            "admissionWebhooks": {"patch": {"resources": pod_resources.values(
                "kube-prometheus-stack.admissionWebhooks.patch")}}},
        "kube-state-metrics": {
            "resources": pod_resources.values("kube-prometheus-stack.kube-state-metrics")},
        "prometheus-node-exporter": {
            "resources": pod_resources.values("kube-prometheus-stack.node-exporter"),
            # The delivery facts (platformctl dora), from the ConfigMap Argo CD syncs; optional,
            # so node-exporter starts before it exists.
            "extraArgs": [f"--collector.textfile.directory={DELIVERY_TEXTFILE_DIR}"],
            "extraVolumes": [{"name": DELIVERY_CONFIGMAP, "configMap": {
                "name": DELIVERY_CONFIGMAP, "optional": True}}],
            "extraVolumeMounts": [{"name": DELIVERY_CONFIGMAP, "mountPath": DELIVERY_TEXTFILE_DIR,
                                   "readOnly": True}]},
        "alertmanager": {
            "podDisruptionBudget": {"enabled": manager.replicas > 1, "minAvailable": 1},
            "alertmanagerSpec": {
                "replicas": manager.replicas,
                **apart(manager.replicas),
                # The configuration is our own Secret (routing, receivers with secret URLs).
                "useExistingSecret": True,
                "storage": volume(manager.storage_gib),
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"},
                              "limits": {"memory": "256Mi"}},
            },
        },
        "grafana": {
            "fullnameOverride": GRAFANA_FULLNAME,
            "replicas": observability.grafana_replicas,
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user",
                      "passwordKey": "admin-password"},
            "ingress": {"enabled": False},
            "defaultDashboardsTimezone": "utc",
            # Dashboards from the monitoring namespace only: a team's labelled ConfigMap would
            # otherwise become a dashboard every Grafana user opens.
            "sidecar": {"resources": pod_resources.values("kube-prometheus-stack.grafana.sidecar"),
                        "dashboards": {"enabled": True, "label": "grafana_dashboard",
                                       "labelValue": "1",
                                       "searchNamespace": observability.namespace}},
            "resources": {"requests": {"cpu": "50m", "memory": "256Mi"},
                          "limits": {"memory": "512Mi"}},
            **({"additionalDataSources": sources,
                "plugins": [XRAY_PLUGIN] if observability.traces.enabled else []}
               if (sources := telemetry_data_sources(observability, environment, region,
                                                     account, partition))
               else {}),
        },
        "prometheus": {"prometheusSpec": {
            "replicas": prom.replicas,
            **apart(prom.replicas),
            "retention": prom.retention,
            "storageSpec": volume(prom.storage_gib),
            "resources": {"requests": {"cpu": pod.cpu_request, "memory": pod.memory_request},
                          "limits": {"memory": pod.memory_limit}},
            # Pick up every PrometheusRule / ServiceMonitor / PodMonitor, not only the chart's.
            "ruleSelectorNilUsesHelmValues": False,
            "serviceMonitorSelectorNilUsesHelmValues": False,
            "podMonitorSelectorNilUsesHelmValues": False,
            "externalLabels": {"environment": environment},
            # Every series a team's monitor scrapes, and every rule and alert of a team's
            # PrometheusRule, carries the namespace it came from, set by the operator after the
            # object's own relabelings (which cannot forge it); a team's rule expressions are
            # confined to its namespace's series. The platform's own monitors and rules read
            # every namespace and are excluded, namespace by namespace.
            "enforcedNamespaceLabel": ENFORCED_NAMESPACE_LABEL,
            "excludedFromEnforcement": [
                {"group": "monitoring.coreos.com", "resource": resource, "namespace": namespace}
                for namespace in sorted({*PLATFORM_NAMESPACES, observability.namespace})
                for resource in ("prometheusrules", "servicemonitors", "podmonitors", "probes")],
        }},
    }


ENFORCED_NAMESPACE_LABEL = "namespace"


# Argo Rollouts' controller (in Argo CD's namespace) queries Prometheus for canary analysis.
ROLLOUTS_NAMESPACE = "argocd"
OPERATOR_WEBHOOK_PORT = 10250  # the prometheus-operator's admission webhook (chart default)


def network_policies(namespace: str, control_plane_cidr: Any) -> dict[str, dict[str, Any]]:
    """NetworkPolicy specs of the monitoring namespace, by name: nothing gets in but its own
    pods, Argo Rollouts' analysis queries to Prometheus, and the API server's calls to the
    operator's admission webhook. Team pods cannot reach Alertmanager's API (unauthenticated:
    anyone who reaches it can silence alerts), Prometheus or Grafana; people reach them by
    port-forward, which NetworkPolicy does not see. `control_plane_cidr`: where the EKS control
    plane's network interfaces live (the VPC's CIDR: pods share it, so that rule opens one port
    of one pod, the webhook's, and nothing else)."""
    every_pod: dict[str, Any] = {}
    return {
        "default-deny-ingress": {"podSelector": every_pod, "policyTypes": ["Ingress"]},
        "allow-same-namespace": {
            "podSelector": every_pod, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": every_pod}]}],
        },
        "allow-rollouts-analysis": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{
                "namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": ROLLOUTS_NAMESPACE}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "argo-rollouts"}}}],
                "ports": [{"protocol": "TCP", "port": 9090}]}],
        },
        "allow-api-server-to-the-operator-webhook": {
            "podSelector": {"matchLabels": {"app": "kube-prometheus-stack-operator"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"ipBlock": {"cidr": control_plane_cidr}}],
                         "ports": [{"protocol": "TCP", "port": OPERATOR_WEBHOOK_PORT}]}],
        },
    }


class ObservabilityStack(PlatformComponent):
    """Monitoring, alerting, dashboards and the AWS-side alarms and budget."""

    service = "observability"
    type_token = "platform:index:ObservabilityStack"

    def __init__(
        self,
        name: str,
        args: ObservabilityArgs,
        alerting: AlertingArgs,
        target: KubernetesTarget,
        *,
        environment: str,
        budget_monthly_usd: float | None = None,
        database: DatabaseRef | None = None,
        region: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`database`: the RDS instance to watch with CloudWatch alarms (none without one);
        `budget_monthly_usd`: the environment's AWS Budget on its `environment`-tagged spend
        (none without one)."""
        super().__init__(name, opts)
        self.observability, self.alerting = args, alerting
        self._namespace(name, target)
        self._grafana_admin(name, target)
        self._alertmanager_config(name, target)
        account = aws.get_caller_identity(opts=pulumi.InvokeOptions(parent=self)).account_id
        self._chart(name, target, environment, region, account)
        self._rules_and_dashboards(name, target, environment)
        self._aws_side(name, target, environment, region, account)
        self._alarms(name, target, database)
        self._budget(name, environment, budget_monthly_usd)
        namespace, service = args.namespace, f"svc/{RELEASE}"
        self.port_forwards = {
            "grafana": f"kubectl -n {namespace} port-forward svc/{GRAFANA_FULLNAME} 3000:80",
            "prometheus": f"kubectl -n {namespace} port-forward {service}-prometheus 9090",
            "alertmanager": f"kubectl -n {namespace} port-forward {service}-alertmanager 9093",
        }
        self.register_outputs({"alertsTopicArn": self.topic.arn})

    # -- the constructor's steps, in order -------------------------------------------

    def _namespace(self, name: str, target: KubernetesTarget) -> None:
        namespace = self.observability.namespace
        # node-exporter reads the host (hostNetwork, hostPID, hostPath): privileged.
        self.namespace = target.platform_namespace(
            f"{name}-monitoring", namespace, parent=self, pod_security="privileged",
            labels={"app.kubernetes.io/part-of": "platform"})
        # What lives in the namespace waits for it (options taken before the chart becomes a
        # prerequisite of what follows: the dashboards need not wait for the chart).
        self._in_namespace = in_namespace = target.options(self, depends_on=[self.namespace])
        for policy_name, spec in network_policies(namespace, target.api_server_cidr).items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-monitoring-{policy_name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=policy_name, namespace=namespace,
                                                    labels={"team": "platform"}),
                spec=spec, opts=in_namespace)

    def _grafana_admin(self, name: str, target: KubernetesTarget) -> None:
        namespace = self.observability.namespace
        in_namespace = self._in_namespace
        # Grafana's admin credentials: generated, kept as a secret, never in chart values.
        self.grafana_password = random.RandomPassword(
            f"{name}-grafana-admin", length=24, special=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]))
        k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_ADMIN_SECRET, namespace=namespace,
                                                labels={"team": "platform"}),
            string_data={"admin-user": "admin",
                         "admin-password": self.grafana_password.result},
            opts=in_namespace,
        )

    def _alertmanager_config(self, name: str, target: KubernetesTarget) -> None:
        alerting = self.alerting
        namespace = self.observability.namespace
        in_namespace = self._in_namespace
        # Alertmanager's configuration, with the receivers' secret URLs.
        missing = [r.name for r in alerting.receivers
                   if r.slack_webhook_url is None and r.webhook_url is None]
        for receiver in missing:
            pulumi.log.warn(
                f"platform:alerting receiver '{receiver}' has no slackWebhookUrl or webhookUrl: "
                "its alerts are dropped until one is set with `pulumi config set --secret "
                f"--path 'platform:alerting.receivers[<index of {receiver}>].slackWebhookUrl' "
                "<url>`", resource=self)
        urls = {r.name: (r.slack_webhook_url or r.webhook_url).get_secret_value()
                for r in alerting.receivers if r.name not in missing}
        config_yaml = yaml.safe_dump(alertmanager_config(alerting, urls), sort_keys=False)
        k8s.core.v1.Secret(
            f"{name}-alertmanager-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ALERTMANAGER_SECRET, namespace=namespace,
                                                labels={"team": "platform"}),
            string_data={"alertmanager.yaml": pulumi.Output.secret(config_yaml)},
            opts=in_namespace,
        )

    def _chart(self, name: str, target: KubernetesTarget, environment: str, region: str | None,
               account: pulumi.Input[str]) -> None:
        observability = self.observability
        namespace = self.observability.namespace
        partition = target.identity.partition if target.identity else "aws"
        # Vendored chart (charts/charts.yaml).
        self.release = target.helm_release(
            f"{name}-kube-prometheus-stack", parent=self, release="kube-prometheus-stack",
            chart="kube-prometheus-stack", namespace=namespace,
            values=helm_values(observability, environment, region or "default",
                               account if region else None, partition, target.zones),
            timeout=900,
            depends_on=[self.namespace, *filter(None, [target.storage_class])])
        # Its CRDs (ServiceMonitor, PrometheusRule, ...) must exist before the charts that render
        # objects of those kinds install (Vault's and Argo CD's ServiceMonitors).
        target.add_prerequisite(self.release)

    def _rules_and_dashboards(self, name: str, target: KubernetesTarget,
                              environment: str) -> None:
        observability, alerting = self.observability, self.alerting
        namespace = self.observability.namespace
        in_namespace = self._in_namespace
        # Rules and dashboards: first-class objects, created once the chart (and its CRDs) is in.
        after_chart = target.options(self, depends_on=[self.release])
        self.rules = {}
        sources = metric_sources(observability)
        for rule_name, groups in rule_groups(observability, alerting).items():
            self.rules[rule_name] = k8s.apiextensions.CustomResource(
                f"{name}-{rule_name}",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=rule_name, namespace=namespace, labels={"team": "platform"},
                    annotations={METRIC_SOURCES_ANNOTATION: json.dumps(
                        sources[rule_name], sort_keys=True)}),
                spec={"groups": groups},
                opts=after_chart,
            )
        slos = (*slo.PLATFORM_SLOS, *observability.slos)
        k8s.core.v1.ConfigMap(
            f"{name}-slo-dashboard",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="platform-slo-dashboard", namespace=namespace,
                labels={"grafana_dashboard": "1", "team": "platform"}),
            # Every key is a dashboard to Grafana's sidecar: the SLOs, and delivery (DORA).
            data={"platform-slos.json": json.dumps(slo_dashboard(
                slos, environment, logs=observability.logs.enabled,
                traces=observability.traces.enabled), indent=2),
                  "platform-delivery.json": json.dumps(delivery_dashboard(), indent=2)},
            opts=in_namespace,
        )

    def _aws_side(self, name: str, target: KubernetesTarget, environment: str,
                  region: str | None, account: pulumi.Input[str]) -> None:
        observability, alerting = self.observability, self.alerting
        namespace = self.observability.namespace
        # AWS side: an SNS topic for alarms and budget notifications.
        self.topic = aws.sns.Topic(f"{name}-alerts", opts=pulumi.ResourceOptions(parent=self))
        # Grafana reads the logs and traces with a role of its own (read only, these groups).
        if (observability.logs.enabled or observability.traces.enabled) and target.identity:
            identity = target.identity
            groups = list(log_group_arns(environment, region or "*", account,
                                         identity.partition).values())
            self.grafana_role = identity.service_account_role(
                f"{name}-grafana", namespace, GRAFANA_FULLNAME,
                policy=iam.to_json(iam.grafana_reader(
                    groups if observability.logs.enabled else [],
                    traces=observability.traces.enabled)),
                parent=self)
        aws.sns.TopicPolicy(
            f"{name}-alerts",
            arn=self.topic.arn,
            policy=self.topic.arn.apply(lambda arn: iam.to_json(
                iam.alerts_topic_policy(arn, account))),
            opts=pulumi.ResourceOptions(parent=self.topic),
        )
        for index, email in enumerate(alerting.emails):
            aws.sns.TopicSubscription(f"{name}-alerts-email-{index}", topic=self.topic.arn,
                                      protocol="email", endpoint=email,
                                      opts=pulumi.ResourceOptions(parent=self.topic))

    def _alarms(self, name: str, target: KubernetesTarget,
                database: DatabaseRef | None) -> None:
        alerting = self.alerting
        # CloudWatch alarms, by slug: what the chaos experiments stop on (components/chaos.py).
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        if database is not None:
            self._database_alarms(name, database, alerting)
        if target.identity is not None:  # an EKS cluster: its vended AWS/EKS metrics
            for alarm in alerts.cluster_alarms():
                self._alarm(name, alarm, alerting, {"ClusterName": target.cluster_name},
                            float(alarm.cloudwatch["threshold"]), [])

    def _budget(self, name: str, environment: str, budget_monthly_usd: float | None) -> None:
        alerting = self.alerting
        # The environment's AWS Budget: the same figure the policy pack checks the estimate
        # against, on the environment's tagged spend (activate the `environment` cost allocation
        # tag in the billing console).
        self.budget = None if budget_monthly_usd is None else aws.budgets.Budget(
            f"{name}-monthly",
            budget_type="COST",
            limit_amount=f"{budget_monthly_usd:.2f}",
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filters=[aws.budgets.BudgetCostFilterArgs(
                name="TagKeyValue", values=[f"user:environment${environment}"])],
            notifications=[
                aws.budgets.BudgetNotificationArgs(
                    notification_type=kind, comparison_operator="GREATER_THAN",
                    threshold=threshold, threshold_type="PERCENTAGE",
                    subscriber_sns_topic_arns=[self.topic.arn],
                    subscriber_email_addresses=list(alerting.emails) or None)
                for kind, threshold in (("FORECASTED", 80), ("ACTUAL", 100))
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _database_alarms(self, name: str, database: DatabaseRef, alerting: AlertingArgs) -> None:
        db = database.config
        for alarm in alerts.database_alarms(max_connections(db.instance_class)):
            spec = alarm.cloudwatch
            threshold = spec.get("threshold")
            if "threshold_fraction" in spec:  # of the allocated storage, in bytes
                threshold = db.allocated_storage_gib * 1024**3 * spec["threshold_fraction"]
            self._alarm(name, alarm, alerting, {"DBInstanceIdentifier": database.identifier},
                        float(threshold), [database.ready], sleeps=database.sleeps)

    def _alarm(self, name: str, alarm: alerts.Alert, alerting: AlertingArgs,
               dimensions: dict[str, Any], threshold: float,
               depends_on: list[pulumi.Resource], sleeps: bool = False) -> None:
        """A CloudWatch alarm. A paging alarm treats missing data as breaching (a resource that
        stops reporting is down), unless what it watches sleeps on schedule (off-hours): then
        missing data is not breaching, or it would page every night."""
        spec = alarm.cloudwatch
        self.alarms[alarm.slug] = aws.cloudwatch.MetricAlarm(
            f"{name}-{alarm.slug}",
            alarm_description=(f"[{alarm.severity}] {alarm.summary}. {alarm.description} "
                               f"Runbook: {alarm.runbook_url(alerting.runbook_base_url)}"),
            namespace=spec.get("namespace", "AWS/RDS"),
            metric_name=spec["metric"],
            dimensions=dimensions,
            statistic=spec["statistic"],
            period=spec["period"],
            evaluation_periods=spec["periods"],
            comparison_operator=spec["comparison"],
            threshold=threshold,
            treat_missing_data="breaching" if alarm.paging and not sleeps else "notBreaching",
            alarm_actions=[self.topic.arn],
            ok_actions=[self.topic.arn],
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

