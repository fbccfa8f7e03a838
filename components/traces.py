"""The trace pipeline: `TracePipeline` (platform:index:TracePipeline).

An OpenTelemetry Collector gateway (the vendored `opentelemetry-collector` chart, contrib
distribution, a Deployment) receives OTLP from every service (`http://otel-gateway.tracing
.svc.cluster.local:4318`, which the golden path sets on each service) and sends the traces it
keeps to AWS X-Ray:

* sampling is decided once, at the gateway, by trace id (`probabilistic_sampler`): every span of
  a kept trace is kept, whichever service sent it; the share is
  `platform:observability.traces.samplingPercent` (10% by default);
* X-Ray keeps traces 30 days, free of storage charges; it bills $5.00 per million traces
  recorded, which the cost model prices from the sampling share and the traffic the stack
  assumes (`assumedRequestsPerSecond`, carried as tags of the environment's X-Ray group);
* the X-Ray group `<env>` selects this environment's traces (the gateway stamps
  `deployment.environment.name` on every span and indexes it as an annotation).

Why X-Ray rather than Tempo on S3: no stateful pods, no compactor to size and upgrade, IAM for
who reads what, pay per trace kept; Tempo's S3 storage would be cheaper per trace at volumes
this platform does not expect. The gateway's AWS role comes from the cluster's service-account
role helper (EKS Pod Identity) and may only put trace segments.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field

from components import iam
from components.args import ArgsModel
from components.tagging import PlatformComponent
from components.wellknown import OTLP_GRPC_PORT, OTLP_HTTP_PORT, TRACE_NAMESPACE

meta = k8s.meta.v1.ObjectMetaArgs
NAMESPACE = TRACE_NAMESPACE
RELEASE = "otel-gateway"  # the chart's fullname: the Deployment, Service and ServiceMonitor
SERVICE_ACCOUNT = "otel-gateway"
METRICS_PORT = 8888
ENDPOINT = f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local:{OTLP_HTTP_PORT}"
IMAGE = "otel/opentelemetry-collector-contrib"
# Cost inputs, as tags of the environment's X-Ray group (the cost model reads them).
SAMPLING_TAG = "platform.example.org/sampling-percent"
TRAFFIC_TAG = "platform.example.org/assumed-requests-per-second"
ENVIRONMENT_ATTRIBUTE = "deployment.environment.name"


class TracesArgs(ArgsModel):
    """OTLP traces from the services to AWS X-Ray (`platform:observability.traces`)."""

    enabled: bool = Field(True, description="Run the OpenTelemetry Collector gateway.")
    sampling_percent: float = Field(
        10, gt=0, le=100, description="Share of traces kept, decided by trace id at the "
        "gateway (every span of a kept trace is kept).")
    replicas: int = Field(1, ge=1, le=5, description="Gateway replicas.")
    assumed_requests_per_second: float = Field(
        1, ge=0, description="Requests per second the services receive in all, averaged over "
        "the month: what the cost estimate of X-Ray assumes (not a limit).")


def collector_config(args: TracesArgs, region: str, environment: str) -> dict[str, Any]:
    """The collector's whole configuration (the chart's `alternateConfig`: nothing of the
    chart's default config, whose jaeger, zipkin and debug parts a Pulumi release cannot null
    out, since Pulumi drops null values)."""
    pod_ip = "${env:MY_POD_IP}"
    return {
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": f"{pod_ip}:{OTLP_GRPC_PORT}"},
                                   "http": {"endpoint": f"{pod_ip}:{OTLP_HTTP_PORT}"}}},
        },
        "processors": {
            "memory_limiter": {"check_interval": "5s", "limit_percentage": 80,
                               "spike_limit_percentage": 25},
            "probabilistic_sampler": {"sampling_percentage": args.sampling_percent,
                                      "mode": "hash_seed"},
            # On every span (X-Ray indexes span attributes as annotations: the group's filter).
            "attributes": {"actions": [{"key": ENVIRONMENT_ATTRIBUTE, "value": environment,
                                        "action": "upsert"}]},
            "batch": {},
        },
        "exporters": {
            "awsxray": {"region": region, "indexed_attributes": [ENVIRONMENT_ATTRIBUTE]},
        },
        "extensions": {"health_check": {"endpoint": f"{pod_ip}:13133"}},
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "traces": {"receivers": ["otlp"],
                           "processors": ["memory_limiter", "probabilistic_sampler",
                                          "attributes", "batch"],
                           "exporters": ["awsxray"]},
            },
            # The collector's own metrics (otelcol_*), for its alerts.
            "telemetry": {"metrics": {"readers": [{"pull": {"exporter": {"prometheus": {
                "host": pod_ip, "port": METRICS_PORT}}}}]}},
        },
    }


def helm_values(args: TracesArgs, region: str, environment: str) -> dict[str, Any]:
    """opentelemetry-collector chart values, read against the vendored chart."""
    return {
        "mode": "deployment",
        "fullnameOverride": RELEASE,
        "image": {"repository": IMAGE},
        "replicaCount": args.replicas,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "podSecurityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                               "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"},
                      "limits": {"memory": "256Mi"}},
        **({"podDisruptionBudget": {"enabled": True, "minAvailable": 1}}
           if args.replicas > 1 else {}),
        "ports": {
            "jaeger-compact": {"enabled": False}, "jaeger-thrift": {"enabled": False},
            "jaeger-grpc": {"enabled": False}, "zipkin": {"enabled": False},
            "metrics": {"enabled": True},
        },
        "serviceMonitor": {"enabled": True},
        "alternateConfig": collector_config(args, region, environment),
    }


class TracePipeline(PlatformComponent):
    """The OpenTelemetry Collector gateway, sending sampled traces to AWS X-Ray."""

    service = "tracing"
    type_token = "platform:index:TracePipeline"

    def __init__(self, name: str, args: TracesArgs, target: Any, *, environment: str,
                 region: str, monitoring_namespace: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        identity = target.require_identity("TracePipeline")
        self.group = aws.xray.Group(
            f"{name}-traces", group_name=environment,
            filter_expression=f'annotation.{ENVIRONMENT_ATTRIBUTE.replace(".", "_")} = '
                              f'"{environment}"',
            insights_configuration=aws.xray.GroupInsightsConfigurationArgs(
                insights_enabled=False, notifications_enabled=False),
            tags={SAMPLING_TAG: f"{args.sampling_percent:g}",
                  TRAFFIC_TAG: f"{args.assumed_requests_per_second:g}"},
            opts=pulumi.ResourceOptions(parent=self))
        self.namespace = target.platform_namespace(
            f"{name}-tracing", NAMESPACE, parent=self, pod_security="restricted")
        k8s_opts = target.options(self, depends_on=[self.namespace])
        every_pod: dict[str, Any] = {}
        k8s.networking.v1.NetworkPolicy(
            f"{name}-tracing-default-deny-ingress",
            metadata=meta(name="default-deny-ingress", namespace=NAMESPACE,
                          labels={"team": "platform"}),
            spec={"podSelector": every_pod, "policyTypes": ["Ingress"]}, opts=k8s_opts)
        # OTLP from any namespace's pods; metrics to Prometheus only.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-tracing-allow-otlp-and-monitoring",
            metadata=meta(name="allow-otlp-and-monitoring", namespace=NAMESPACE,
                          labels={"team": "platform"}),
            spec={"podSelector": every_pod, "policyTypes": ["Ingress"], "ingress": [
                {"from": [{"namespaceSelector": every_pod}],
                 "ports": [{"protocol": "TCP", "port": OTLP_GRPC_PORT},
                           {"protocol": "TCP", "port": OTLP_HTTP_PORT}]},
                {"from": [{"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": monitoring_namespace}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}],
                 "ports": [{"protocol": "TCP", "port": METRICS_PORT}]}]},
            opts=k8s_opts)
        self.role = identity.service_account_role(
            f"{name}-trace-gateway", NAMESPACE, SERVICE_ACCOUNT,
            policy=iam.to_json(iam.trace_gateway()), parent=self)
        self.release = target.helm_release(
            f"{name}-otel-gateway", parent=self, release=RELEASE,
            chart="opentelemetry-collector", namespace=NAMESPACE,
            values=helm_values(args, region, environment), depends_on=[self.namespace])
        self.register_outputs({"otlpEndpoint": ENDPOINT, "xrayGroup": environment})
