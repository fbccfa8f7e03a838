"""The platform's alerts, as data, and the runbooks generated from them.

Paging (severity `critical`) is for what users feel or are about to: an SLO burning its error
budget, a volume about to fill, Vault sealed (no secrets for new pods), notifications failing,
the database running out of storage. Everything else opens a ticket (`warning`). Each alert has
a summary, a description and a `runbook_url`; each paging alert has a runbook in docs/runbooks/,
generated from the fields below (`platformctl generate --write`; a test keeps them in sync).

Prometheus alerts become a PrometheusRule (ObservabilityStack); CloudWatch alarms watch what
Prometheus cannot see (RDS) and notify the alerts SNS topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components import slo

RUNBOOK_DIR = Path("docs") / "runbooks"

SLO_DASHBOARD = "Platform / SLOs and error budgets (uid platform-slos)"

# Scrape targets the alerts read, by the Service a ServiceMonitor selects ("<namespace>/<name>";
# `{monitoring}` is the monitoring namespace). Names are those the vendored charts render.
KUBE_STATE_METRICS = "{monitoring}/kube-prometheus-stack-kube-state-metrics"
KUBELET = "kube-system/platform-monitoring-kubelet"  # made by prometheus-operator at run time
PROMETHEUS = "{monitoring}/platform-monitoring-prometheus"
ALERTMANAGER = "{monitoring}/platform-monitoring-alertmanager"
ARGOCD_CONTROLLER = "argocd/argocd-application-controller-metrics"
VAULT_SERVERS = "vault/vault-internal"
API_SERVER = "default/kubernetes"  # every cluster has it
LOG_AGENT = "logging/fluent-bit"  # components/logs.py: the chart's Service and ServiceMonitor
TRACE_GATEWAY = "tracing/otel-gateway"  # components/traces.py: the same, port `metrics`


@dataclass(frozen=True)
class Runbook:
    impact: str
    first_10_minutes: tuple[str, ...]
    rollback: str
    dashboards: tuple[str, ...] = (SLO_DASHBOARD,)
    escalation: str = "the platform on-call, then the platform lead"


@dataclass(frozen=True)
class Alert:
    name: str
    severity: str  # critical pages, warning opens a ticket
    summary: str
    description: str
    team: str = "platform"
    expr: str | None = None  # Prometheus alerts
    # Where its metrics come from: the scrape target's Service, "<namespace>/<name>" ({monitoring}
    # is the monitoring namespace), checked against the rendered charts (scrape-coverage).
    source: str | None = None
    for_: str | None = None
    runbook: Runbook | None = None
    cloudwatch: dict[str, Any] = field(default_factory=dict)  # CloudWatch alarms

    @property
    def slug(self) -> str:
        """`SLOErrorBudgetBurn` -> `slo-error-budget-burn`."""
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", self.name).lower()

    @property
    def paging(self) -> bool:
        return self.severity == "critical"

    def runbook_url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.slug}.md"


SLO_BURN = Alert(
    name=slo.ALERT_NAME, severity="critical",
    summary="A service is burning its error budget too fast",
    description="Multiwindow, multi-burn-rate alert generated from each SLO (components/slo.py); "
                "critical at 14.4x (1h) and 6x (6h), warning at 3x (1d) and 1x (3d).",
    runbook=Runbook(
        impact="Users of the `service` in the alert's labels are getting errors at a rate that "
               "spends the SLO's error budget early; at 14.4x the month's budget lasts about two "
               "days.",
        first_10_minutes=(
            "Open the SLO dashboard for the `service` label: which window fired (the `window` "
            "label) and since when.",
            "Check recent deployments: `kubectl argo rollouts list rollouts -n <namespace>` and "
            "Argo CD history for the service.",
            "Compare error rate by version (canary vs stable) and by pod.",
            "Check Kubernetes events in the namespace and the service's dependencies (database, "
            "downstream APIs).",
            "Decide: roll back, shift traffic, scale, or mitigate the dependency.",
        ),
        rollback="`kubectl argo rollouts abort <rollout> -n <namespace>` stops a canary and "
                 "returns traffic to stable (seconds); for a completed rollout, revert the image "
                 "digest commit in gitops/ and let Argo CD sync (minutes).",
    ),
)

PROMETHEUS_ALERTS = (
    Alert(
        name="PlatformNodeNotReady", severity="warning",
        source=KUBE_STATE_METRICS,
        summary="Node {{ $labels.node }} is not Ready",
        description="Node {{ $labels.node }} has not been Ready for 15 minutes; its pods are being "
                    "rescheduled if capacity allows.",
        expr='kube_node_status_condition{condition="Ready",status="true"} == 0',
        for_="15m",
    ),
    Alert(
        name="PlatformPodCrashLooping", severity="warning",
        source=KUBE_STATE_METRICS,
        summary="{{ $labels.namespace }}/{{ $labels.pod }} is crash-looping",
        description="Container {{ $labels.container }} of {{ $labels.namespace }}/"
                    "{{ $labels.pod }} has been in CrashLoopBackOff for 15 minutes.",
        expr='max_over_time(kube_pod_container_status_waiting_reason'
             '{reason="CrashLoopBackOff"}[5m]) >= 1',
        for_="15m",
    ),
    Alert(
        name="PlatformVolumeFillingUp", severity="critical",
        source=KUBELET,
        summary="Volume {{ $labels.namespace }}/{{ $labels.persistentvolumeclaim }} fills within "
                "4 hours",
        description="Less than 10% free and, at the last 6 hours' rate, full within 4 hours: "
                    "the workload using it will fail writes.",
        expr="kubelet_volume_stats_available_bytes / kubelet_volume_stats_capacity_bytes < 0.10\n"
             "and\npredict_linear(kubelet_volume_stats_available_bytes[6h], 4 * 3600) < 0",
        for_="5m",
        runbook=Runbook(
            impact="The workload writing to this volume (often Prometheus, Alertmanager or "
                   "Vault's raft storage) stops working when it is full.",
            dashboards=("Kubernetes / Persistent Volumes", SLO_DASHBOARD),
            first_10_minutes=(
                "Identify the claim and its workload: `kubectl -n <namespace> get pvc "
                "<persistentvolumeclaim> -o wide` and `kubectl -n <namespace> describe pod`.",
                "See what grows: for Prometheus, a cardinality spike (`topk(10, count by "
                "(__name__)({__name__=~\".+\"}))`); for others, logs or data.",
                "Expand the volume (gp3 StorageClass allows it): `kubectl -n <namespace> patch "
                "pvc <persistentvolumeclaim> -p '{\"spec\":{\"resources\":{\"requests\":"
                "{\"storage\":\"<bigger>\"}}}}'`, then raise the size in the stack config.",
                "If Prometheus: shorten retention in platform:observability.prometheus.retention "
                "and `pulumi up`.",
            ),
            rollback="Volume expansion cannot be undone (EBS grows only); revert a config change "
                     "that caused the growth (retention, scrape targets) through a pull request.",
        ),
    ),
    Alert(
        name="PlatformTargetDown", severity="warning",
        source=PROMETHEUS,
        summary="More than 10% of the {{ $labels.job }} targets are down",
        description="More than 10% of the scrape targets of job {{ $labels.job }} in "
                    "{{ $labels.namespace }} have been down for 15 minutes: its metrics, and any "
                    "SLO computed from them, are incomplete.",
        expr="count by (job, namespace) (up == 0) / count by (job, namespace) (up) > 0.10",
        for_="15m",
    ),
    Alert(
        name="PlatformArgoCDAppDegraded", severity="warning",
        source=ARGOCD_CONTROLLER,
        summary="Argo CD application {{ $labels.name }} is Degraded",
        description="Application {{ $labels.name }} (project {{ $labels.project }}) has been "
                    "Degraded for 15 minutes.",
        expr='argocd_app_info{health_status="Degraded"} == 1',
        for_="15m",
    ),
    Alert(
        name="PlatformArgoCDAppOutOfSync", severity="warning",
        source=ARGOCD_CONTROLLER,
        summary="Argo CD application {{ $labels.name }} is out of sync",
        description="Application {{ $labels.name }} has been OutOfSync for 30 minutes: what runs "
                    "is not what Git says.",
        expr='argocd_app_info{sync_status="OutOfSync"} == 1',
        for_="30m",
    ),
    Alert(
        name="PlatformVaultSealed", severity="critical",
        source=VAULT_SERVERS,
        summary="Vault {{ $labels.pod }} is sealed",
        description="A sealed Vault serves no secrets: new pods that need secrets cannot start "
                    "and dynamic database credentials cannot be renewed.",
        expr="vault_core_unsealed == 0",
        for_="2m",
        runbook=Runbook(
            impact="Pods that start now cannot get their secrets; running services lose database "
                   "access when their dynamic credentials expire.",
            dashboards=("Vault (Grafana, platform folder)", SLO_DASHBOARD),
            first_10_minutes=(
                "`kubectl -n vault get pods` and `kubectl -n vault exec vault-0 -- vault status`: "
                "sealed, and why (restart, lost KMS access)?",
                "Auto-unseal uses the KMS key: check the Vault role's access to it (CloudTrail "
                "`kms:Decrypt` denials) and that the key is enabled.",
                "If a single pod is sealed, delete it and let raft rejoin.",
                "If all are sealed and KMS is fine, follow the recovery steps in "
                "docs/security.md (Vault bootstrap) with the recovery keys.",
            ),
            rollback="Revert the last change to the Vault release or the KMS key policy (pull "
                     "request); Vault unseals again once it can use the key.",
        ),
    ),
    Alert(
        name="PlatformAlertNotificationsFailing", severity="critical",
        source=ALERTMANAGER,
        summary="Alertmanager cannot deliver notifications to {{ $labels.integration }}",
        description="Notifications to {{ $labels.integration }} have been failing for 15 "
                    "minutes: pages may not reach anyone.",
        expr="rate(alertmanager_notifications_failed_total[5m]) > 0",
        for_="15m",
        runbook=Runbook(
            impact="Other alerts may fire without anyone being told.",
            dashboards=("Alertmanager / Overview",),
            first_10_minutes=(
                "`kubectl -n monitoring logs statefulset/alertmanager-platform-monitoring-"
                "alertmanager` for the integration's error (401, 404, timeout).",
                "Check the receiver URL secret: `pulumi config get --path "
                "platform:alerting.receivers` (a rotated Slack webhook is the usual cause).",
                "Watch the alerts directly meanwhile: `kubectl -n monitoring port-forward "
                "svc/platform-monitoring-alertmanager 9093`.",
            ),
            rollback="Set the previous webhook URL again with `pulumi config set --secret "
                     "--path ...` and `pulumi up`.",
        ),
    ),
)


# The log pipeline's own health (components/logs.py), deployed with it. Tickets, not pages: no
# user feels them, but an incident without its logs is one nobody can explain afterwards.
_LOG_DASHBOARDS = ("Fluent Bit (Explore: fluentbit_* metrics, job fluent-bit)",
                   "CloudWatch: the log groups' IncomingBytes")
LOG_PIPELINE_ALERTS = (
    Alert(
        name="PlatformLogAgentMissing", severity="warning",
        source=KUBE_STATE_METRICS,
        summary="The log agent is not running on {{ $value }} node(s)",
        description="Fluent Bit has been unavailable on {{ $value }} of the nodes it should run "
                    "on for 15 minutes: those nodes' container and journal logs are not "
                    "shipped (they stay on the node until its log files rotate).",
        expr='kube_daemonset_status_desired_number_scheduled{namespace="logging",'
             'daemonset="fluent-bit"}\n- kube_daemonset_status_number_available'
             '{namespace="logging",daemonset="fluent-bit"} > 0',
        for_="15m",
        runbook=Runbook(
            impact="Logs of the pods on the affected nodes are missing from CloudWatch until "
                   "the agent runs again; after the kubelet rotates the files they are lost.",
            dashboards=_LOG_DASHBOARDS,
            first_10_minutes=(
                "Which nodes: `kubectl -n logging get pods -o wide` against `kubectl get "
                "nodes`; `kubectl -n logging describe pod <pod>` for why it is not running "
                "(Pending for resources, CrashLoopBackOff, image pull).",
                "Pending: the node is full. The DaemonSet runs as system-node-critical and "
                "should preempt; check `kubectl describe node <node>` for the allocatable it "
                "lacks.",
                "Crashing: `kubectl -n logging logs <pod> --previous` (a bad config after a "
                "chart or values change, or a state file it cannot open in "
                "/var/fluent-bit/state).",
            ),
            rollback="Revert the last change to components/logs.py or the fluent-bit chart "
                     "(pull request, `pulumi up`); the agent resumes from its saved positions.",
        ),
    ),
    Alert(
        name="PlatformLogRecordsDropped", severity="warning",
        source=LOG_AGENT,
        summary="{{ $labels.pod }} is dropping log records ({{ $labels.name }})",
        description="Fluent Bit on {{ $labels.pod }} has dropped records of output "
                    "{{ $labels.name }} in the last 10 minutes, after exhausting its retries or "
                    "its disk buffer: those lines are lost.",
        expr="sum by (pod, name) (increase(fluentbit_output_dropped_records_total[10m])) > 0",
        runbook=Runbook(
            impact="Log lines are lost for good: an incident in that window may lack its "
                   "evidence.",
            dashboards=_LOG_DASHBOARDS,
            first_10_minutes=(
                "`kubectl -n logging logs <pod>` for the output's errors: throttling "
                "(ThrottlingException), access denied (the role or its Pod Identity "
                "association), or a missing log group.",
                "Check PlatformLogDeliveryFailing: drops follow failed deliveries.",
                "If one pod floods (`topk(5, sum by (namespace) (rate(fluentbit_input_bytes_total"
                "[5m])))` does not say which; CloudWatch Logs Insights `stats count() by "
                "kubernetes.namespace_name` does), ask its team to lower its log level.",
            ),
            rollback="Revert the change that raised the volume or broke delivery; raise "
                     "storage.total_limit_size in components/logs.py only with node disk to "
                     "spare.",
        ),
    ),
    Alert(
        name="PlatformLogDeliveryFailing", severity="warning",
        source=LOG_AGENT,
        summary="{{ $labels.pod }} cannot deliver logs to CloudWatch ({{ $labels.name }})",
        description="Output {{ $labels.name }} of Fluent Bit on {{ $labels.pod }} has failed "
                    "to deliver for 15 minutes; records wait in the node's buffer and are "
                    "dropped once their retries run out.",
        expr="sum by (pod, name) (rate(fluentbit_output_errors_total[5m])) > 0",
        for_="15m",
        runbook=Runbook(
            impact="Logs arrive late; if delivery does not recover, they are dropped "
                   "(PlatformLogRecordsDropped).",
            dashboards=_LOG_DASHBOARDS,
            first_10_minutes=(
                "`kubectl -n logging logs <pod>`: AccessDeniedException (the role "
                "`<env>-log-agent`, its Pod Identity association for logging/fluent-bit, the "
                "Pod Identity agent add-on), ResourceNotFoundException (a log group deleted by "
                "hand: `pulumi up` restores it), throttling, or no route to the CloudWatch "
                "Logs endpoint (NAT).",
                "Check the AWS side: CloudWatch `ThrottleCount` and CloudTrail for "
                "`PutLogEvents` denials of the role.",
            ),
            rollback="Revert the change to the role, the network or the chart values "
                     "(pull request, `pulumi up`).",
        ),
    ),
)


# The trace gateway's own health (components/traces.py), deployed with it. Tickets: traces are
# evidence, not service.
_TRACE_DASHBOARDS = ("OpenTelemetry Collector (Explore: otelcol_* metrics, job otel-gateway)",
                     "X-Ray: the environment's group")
TRACE_PIPELINE_ALERTS = (
    Alert(
        name="PlatformTraceGatewayDown", severity="warning",
        source=KUBE_STATE_METRICS,
        summary="The trace gateway has no available replica",
        description="No replica of the OpenTelemetry Collector gateway has been available for "
                    "10 minutes: the services' spans are refused and dropped by their SDKs.",
        expr='kube_deployment_status_replicas_available{namespace="tracing",'
             'deployment="otel-gateway"} < 1',
        for_="10m",
        runbook=Runbook(
            impact="No traces are recorded; services are unaffected (their SDKs drop spans "
                   "they cannot send).",
            dashboards=_TRACE_DASHBOARDS,
            first_10_minutes=(
                "`kubectl -n tracing get pods` and `kubectl -n tracing describe pod <pod>`: "
                "Pending (capacity), CrashLoopBackOff (`kubectl -n tracing logs <pod> "
                "--previous`: a configuration the collector refuses), OOMKilled (the memory "
                "limiter's share of the limit).",
                "After a chart or values change, compare the rendered config "
                "(`platformctl review <stack> --format json`, releases) with the last good one.",
            ),
            rollback="Revert the change to components/traces.py or the chart (pull request, "
                     "`pulumi up`).",
        ),
    ),
    Alert(
        name="PlatformTraceSpansDropped", severity="warning",
        source=TRACE_GATEWAY,
        summary="{{ $labels.pod }} is dropping spans",
        description="The trace gateway {{ $labels.pod }} has refused spans at its receiver "
                    "(memory limiter) or could not queue them for export in the last 10 "
                    "minutes: those spans are lost.",
        # `or`, not `+`: a counter the collector has not incremented yet may not exist.
        expr="sum by (pod) (increase(otelcol_receiver_refused_spans_total[10m])) > 0\nor sum "
             "by (pod) (increase(otelcol_exporter_enqueue_failed_spans_total[10m])) > 0",
        runbook=Runbook(
            impact="Some traces are incomplete or missing for the window.",
            dashboards=_TRACE_DASHBOARDS,
            first_10_minutes=(
                "Which: `otelcol_receiver_refused_spans_total` (memory pressure: "
                "`container_memory_working_set_bytes{namespace=\"tracing\"}` against the "
                "limit) or `otelcol_exporter_enqueue_failed_spans_total` (the export queue is "
                "full: see PlatformTraceExportFailing).",
                "A traffic spike: raise platform:observability.traces.replicas, or lower "
                "samplingPercent (the sampler runs after the memory limiter).",
            ),
            rollback="Revert the change that raised the volume; more replicas are a config "
                     "change and a `pulumi up`.",
        ),
    ),
    Alert(
        name="PlatformTraceExportFailing", severity="warning",
        source=TRACE_GATEWAY,
        summary="{{ $labels.pod }} cannot send traces to X-Ray ({{ $labels.exporter }})",
        description="Exporter {{ $labels.exporter }} of the trace gateway {{ $labels.pod }} "
                    "has failed to send spans for 15 minutes; they are retried, then dropped.",
        expr="sum by (pod, exporter) (rate(otelcol_exporter_send_failed_spans_total[5m])) > 0",
        for_="15m",
        runbook=Runbook(
            impact="Traces arrive late or not at all.",
            dashboards=_TRACE_DASHBOARDS,
            first_10_minutes=(
                "`kubectl -n tracing logs deploy/otel-gateway`: AccessDenied (the role "
                "`<env>-trace-gateway`, its Pod Identity association for "
                "tracing/otel-gateway), throttling (X-Ray's PutTraceSegments quota), or no "
                "route to the X-Ray endpoint (NAT).",
                "CloudTrail for `PutTraceSegments` denials of the role.",
            ),
            rollback="Revert the change to the role, the network or the chart values "
                     "(pull request, `pulumi up`).",
        ),
    ),
)


def database_alarms(max_connections: int) -> tuple[Alert, ...]:
    """CloudWatch alarms on the RDS instance (thresholds from its size)."""
    return (
        Alert(
            name="DatabaseCpuHigh", severity="warning",
            summary="RDS CPU above 80% for 15 minutes",
            description="The database instance is CPU-bound; queries slow down.",
            cloudwatch={"metric": "CPUUtilization", "statistic": "Average",
                        "comparison": "GreaterThanThreshold", "threshold": 80,
                        "periods": 3, "period": 300},
        ),
        Alert(
            name="DatabaseStorageLow", severity="critical",
            summary="RDS free storage below 10% of its allocation",
            description="Storage autoscaling should have grown it; if it cannot (at the ceiling), "
                        "writes fail when it is full.",
            cloudwatch={"metric": "FreeStorageSpace", "statistic": "Minimum",
                        "comparison": "LessThanThreshold", "threshold_fraction": 0.10,
                        "periods": 2, "period": 300},
            runbook=Runbook(
                impact="Writes fail when the disk is full; PostgreSQL stops accepting them.",
                dashboards=("RDS console: Monitoring tab of the instance", SLO_DASHBOARD),
                first_10_minutes=(
                    "Check whether storage autoscaling is at its ceiling "
                    "(platform:database.maxAllocatedStorageGib) in the RDS console.",
                    "Find what grows: table and index sizes (`pg_total_relation_size`), "
                    "bloat, or WAL held by a replication slot.",
                    "Raise maxAllocatedStorageGib in the stack file and `pulumi up` (online, no "
                    "downtime).",
                ),
                rollback="Storage cannot shrink; a wrong increase costs money, not data. Revert "
                         "the config change through a pull request.",
            ),
        ),
        Alert(
            name="DatabaseConnectionsHigh", severity="warning",
            summary=f"RDS connections above 80% of max_connections ({max_connections})",
            description="New connections will soon be refused; check pool sizes and leaks.",
            cloudwatch={"metric": "DatabaseConnections", "statistic": "Maximum",
                        "comparison": "GreaterThanThreshold",
                        "threshold": int(max_connections * 0.8), "periods": 3, "period": 300},
        ),
    )


def cluster_alarms() -> tuple[Alert, ...]:
    """CloudWatch alarms on the EKS cluster's own metrics (AWS/EKS, free for 1.28 and later):
    what holds when Prometheus itself is down or cannot be scheduled, and the stop condition of
    the node-termination experiment (components/chaos.py)."""
    return (
        Alert(
            name="ClusterPodsUnschedulable", severity="warning",
            summary="Pods unschedulable for 15 minutes",
            description="The scheduler has pods no node can take (capacity, taints, zones): a "
                        "lost node not replaced, or requests above what the node groups offer.",
            cloudwatch={"namespace": "AWS/EKS", "metric": "scheduler_pending_pods_UNSCHEDULABLE",
                        "statistic": "Maximum", "comparison": "GreaterThanThreshold",
                        "threshold": 0, "periods": 15, "period": 60},
        ),
    )


def prometheus_rule_groups(runbook_base_url: str,
                           deployed: tuple[Alert, ...] = PROMETHEUS_ALERTS) -> list[dict[str, Any]]:
    rules = []
    for alert in deployed:
        rule: dict[str, Any] = {
            "alert": alert.name,
            "expr": alert.expr,
            "labels": {"severity": alert.severity, "team": alert.team},
            "annotations": {"summary": alert.summary, "description": alert.description,
                            "runbook_url": alert.runbook_url(runbook_base_url)},
        }
        if alert.for_:
            rule["for"] = alert.for_
        rules.append(rule)
    return [{"name": "platform-alerts", "interval": "1m", "rules": rules}]


def all_alerts() -> tuple[Alert, ...]:
    """Every alert of the platform, for the runbooks (the RDS alarms' thresholds don't matter)."""
    return (SLO_BURN, *PROMETHEUS_ALERTS, *LOG_PIPELINE_ALERTS, *TRACE_PIPELINE_ALERTS,
            *database_alarms(100), *cluster_alarms())


def render_runbook(alert: Alert) -> str:
    book = alert.runbook
    assert book is not None, alert.name
    steps = "\n".join(f"{i}. {step}" for i, step in enumerate(book.first_10_minutes, 1))
    dashboards = "\n".join(f"- {d}" for d in book.dashboards)
    source = (f"a CloudWatch alarm ({alert.cloudwatch.get('namespace', 'AWS/RDS')}), to the "
              "alerts SNS topic" if alert.cloudwatch
              else "a Prometheus alert, routed by Alertmanager")
    return f"""# Runbook: {alert.name}

<!-- Generated from components/alerts.py by `platformctl generate --write`. Do not edit:
     tests/test_observability.py fails when this file and the alert disagree. -->

**Severity:** {alert.severity} ({"pages" if alert.paging else "opens a ticket"}). \
**Source:** {source}.

> {alert.summary}
>
> {alert.description}

## Ownership
- Team: {alert.team}
- Escalation: {book.escalation}

## SLO
- User impact: {book.impact}
- Error budget policy: when a service's budget is spent, its team stops feature rollouts until
  the SLO is met again (reliability work first).

## Dashboards
{dashboards}

## First 10 Minutes
{steps}

## Rollback
- {book.rollback}

## Post-Incident Evidence
- Alert history: Alertmanager (`kubectl -n monitoring port-forward
  svc/platform-monitoring-alertmanager 9093`), CloudWatch alarm history.
- Metrics: the dashboards above, exported for the time range.
- Events: `kubectl get events -A --sort-by=.lastTimestamp`.
- Changes: `git log` of this repository and gitops/, Argo CD history, `pulumi stack history`.
"""


def runbooks() -> dict[Path, str]:
    """docs/runbooks/<alert>.md for every paging alert, and every other alert with one."""
    return {RUNBOOK_DIR / f"{alert.slug}.md": render_runbook(alert)
            for alert in all_alerts() if alert.paging or alert.runbook is not None}
