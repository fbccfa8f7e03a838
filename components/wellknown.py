"""Names one component sets and another selects on: labels, namespaces and ports that cross
component boundaries. They live here, not in either component, so neither imports the other
(admission control selects team namespaces by the label tenancy puts on them; tenancy lets team
pods reach the trace gateway's namespace and ports)."""

from __future__ import annotations

# Team namespaces carry this label (Tenancy sets it); the admission constraints select on it.
TEAM_LABEL = "platform.example.org/team"
# policy-controller checks pods only in namespaces with this label (Tenancy sets it).
SIGSTORE_INCLUDE_LABEL = "policy.sigstore.dev/include"
# "public" on a team namespace: its pods may be reached from the load balancers.
EXPOSURE_LABEL = "platform.example.org/exposure"
# The AWS Load Balancer Controller injects readiness gates into pods of namespaces with it.
READINESS_GATE_LABEL = "elbv2.k8s.aws/pod-readiness-gate-inject"

# The trace gateway (TracePipeline): its namespace and OTLP ports, which team pods may reach.
TRACE_NAMESPACE = "tracing"
OTLP_GRPC_PORT, OTLP_HTTP_PORT = 4317, 4318

# The ConfigMap every team namespace gets with what a PostgreSQL client needs to verify the
# database (components/database.py client_tls; components/tenancy.py makes it), and where the
# golden path mounts it.
POSTGRES_TLS_CONFIGMAP = "postgres-tls"
POSTGRES_TLS_DIR = "/etc/postgres-tls"
