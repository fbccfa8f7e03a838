"""The log pipeline: `LogPipeline` (platform:index:LogPipeline).

Fluent Bit (the vendored `fluent-bit` chart) runs on every node and ships two streams to
CloudWatch Logs, into log groups this program owns (so their retention is code, and the agent
may write to them but never create, delete or re-tune one):

* `/platform/<env>/containers`: every container's stdout/stderr (`/var/log/containers`), with
  the pod's namespace, name, labels and container in each record (the kubernetes filter), one
  log stream per node and container file;
* `/platform/<env>/nodes`: the kubelet's and containerd's journal on each node.

Why CloudWatch Logs rather than Loki on S3: no stateful pods to size, upgrade and back up on
nodes the capacity check already counts, retention per log group, IAM for who reads what, and a
Grafana data source that ships with Grafana; per GB it costs more ($0.50 ingested against S3's
storage), which the cost model prices from a per-node assumption (docs/observability.md#logs).

Records are buffered on the node's disk (`/var/fluent-bit/state`) while CloudWatch is
unreachable, and the read positions survive a restart of the agent, so a rollout or a network
blip neither loses nor repeats lines. The agent's AWS role comes from the cluster's
service-account role helper (EKS Pod Identity), limited to writing into these two groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components import iam
from components.args import ArgsModel, LogRetention
from components.tagging import PlatformComponent
from components.tenancy import isolate_namespace

NAMESPACE = "logging"
RELEASE = "fluent-bit"  # the chart's fullname: the DaemonSet, Service and ServiceMonitor
SERVICE_ACCOUNT = "fluent-bit"
METRICS_PORT = 2020  # the chart's HTTP server: health and /api/v2/metrics/prometheus
STATE_DIR = "/var/fluent-bit/state"  # on the node: read positions and the disk buffer
BUFFER_LIMIT = "512M"  # per output: what a node holds while CloudWatch is unreachable


class LogsArgs(ArgsModel):
    """Container and node logs to CloudWatch Logs (`platform:observability.logs`)."""

    enabled: bool = Field(True, description="Run the log agent (Fluent Bit) on every node.")
    retention_days: LogRetention = Field(
        30, description="Days CloudWatch keeps the container and node logs (a value CloudWatch "
        "allows: 1, 3, 5, 7, 14, 30, 60, 90, ...).")


def log_group_names(environment: str) -> dict[str, str]:
    """The pipeline's log groups by stream (the cost model reads the kind from the name)."""
    return {kind: f"/platform/{environment}/{kind}" for kind in ("containers", "nodes")}


def fluent_bit_config(groups: Mapping[str, str], region: str) -> dict[str, str]:
    """The chart's `config.*` sections (Fluent Bit's classic configuration)."""
    service = f"""[SERVICE]
    Daemon Off
    Flush 5
    Log_Level info
    Parsers_File /fluent-bit/etc/parsers.conf
    HTTP_Server On
    HTTP_Listen 0.0.0.0
    HTTP_Port {METRICS_PORT}
    Health_Check On
    storage.path {STATE_DIR}/buffer
    storage.sync normal
    storage.backlog.mem_limit 16M
"""
    inputs = f"""[INPUT]
    Name tail
    Tag kube.*
    Path /var/log/containers/*.log
    multiline.parser cri
    DB {STATE_DIR}/containers.db
    DB.locking true
    Mem_Buf_Limit 16MB
    Skip_Long_Lines On
    Refresh_Interval 10
    storage.type filesystem

[INPUT]
    Name systemd
    Tag node.*
    Systemd_Filter _SYSTEMD_UNIT=kubelet.service
    Systemd_Filter _SYSTEMD_UNIT=containerd.service
    DB {STATE_DIR}/journal.db
    Read_From_Tail On
    storage.type filesystem
"""
    filters = """[FILTER]
    Name kubernetes
    Match kube.*
    Merge_Log On
    Keep_Log Off
    K8S-Logging.Parser Off
    K8S-Logging.Exclude Off
    Labels On
    Annotations Off
"""

    def output(match: str, group: str, prefix: str) -> str:
        return f"""[OUTPUT]
    Name cloudwatch_logs
    Match {match}
    region {region}
    log_group_name {group}
    log_stream_prefix {prefix}
    auto_create_group false
    Retry_Limit 10
    storage.total_limit_size {BUFFER_LIMIT}
"""

    outputs = (output("kube.*", groups["containers"], "${NODE_NAME}.")
               + "\n" + output("node.*", groups["nodes"], "${NODE_NAME}."))
    return {"service": service, "inputs": inputs, "filters": filters, "outputs": outputs,
            "customParsers": ""}


def helm_values(groups: Mapping[str, str], region: str) -> dict[str, Any]:
    """fluent-bit chart values, read against the vendored chart (charts/charts.yaml)."""
    host_path = lambda name, path, kind: {"name": name, "hostPath": {"path": path, "type": kind}}  # noqa: E731
    return {
        "kind": "DaemonSet",
        "fullnameOverride": RELEASE,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "testFramework": {"enabled": False},
        # On every node, tainted ones too: a node without the agent is a node whose logs are
        # lost (PlatformLogAgentMissing).
        "tolerations": [{"operator": "Exists"}],
        "priorityClassName": "system-node-critical",
        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
        # Root reads the root-owned log files; nothing else: no capabilities, no writes outside
        # its state directory.
        "securityContext": {
            "runAsUser": 0, "runAsNonRoot": False, "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}},
        # Tens of MiB at a small cluster's volume (buffers are capped: Mem_Buf_Limit, the disk).
        "resources": {"requests": {"cpu": "50m", "memory": "32Mi"},
                      "limits": {"memory": "256Mi"}},
        "daemonSetVolumes": [
            host_path("varlog", "/var/log", "Directory"),
            host_path("state", STATE_DIR, "DirectoryOrCreate"),
            host_path("etcmachineid", "/etc/machine-id", "File"),
        ],
        "daemonSetVolumeMounts": [
            {"name": "varlog", "mountPath": "/var/log", "readOnly": True},
            {"name": "state", "mountPath": STATE_DIR},
            {"name": "etcmachineid", "mountPath": "/etc/machine-id", "readOnly": True},
        ],
        "metricsPort": METRICS_PORT,
        "serviceMonitor": {"enabled": True},
        "config": fluent_bit_config(groups, region),
    }


class LogPipeline(PlatformComponent):
    """Fluent Bit on every node, shipping to the log groups it owns in CloudWatch Logs."""

    service = "logging"
    type_token = "platform:index:LogPipeline"

    def __init__(self, name: str, args: LogsArgs, target: Any, *, environment: str,
                 region: str, monitoring_namespace: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        identity = target.require_identity("LogPipeline")
        names = log_group_names(environment)
        self.log_groups = {
            kind: aws.cloudwatch.LogGroup(
                f"{name}-logs-{kind}", name=group, retention_in_days=args.retention_days,
                opts=pulumi.ResourceOptions(parent=self))
            for kind, group in names.items()}
        # The agent reads the nodes' log directories (hostPath): privileged, in a namespace of
        # its own that nothing else runs in and nothing calls but Prometheus.
        self.namespace = target.platform_namespace(
            f"{name}-logging", NAMESPACE, parent=self, pod_security="privileged")
        isolate_namespace(f"{name}-logging", NAMESPACE, monitoring_namespace,
                          target.options(self, depends_on=[self.namespace]))
        arns = [group.arn for group in self.log_groups.values()]
        self.role = identity.service_account_role(
            f"{name}-log-agent", NAMESPACE, SERVICE_ACCOUNT,
            policy=pulumi.Output.all(*arns).apply(lambda a: iam.to_json(iam.log_agent(a))),
            parent=self)
        self.release = target.helm_release(
            f"{name}-fluent-bit", parent=self, release=RELEASE, chart="fluent-bit",
            namespace=NAMESPACE, values=helm_values(names, region),
            depends_on=[self.namespace, *self.log_groups.values()])
        self.register_outputs({"logGroups": names})
