"""`Tenancy`: the baseline every team namespace starts from. Teams are data
(`platform:teams`); each of their namespaces gets

- Pod Security `restricted` (enforced, warned and audited), and the team label the admission
  policies select on;
- a ResourceQuota (no LoadBalancer or NodePort Services: exposure goes through the platform's
  ingress) and a LimitRange that gives containers without resources sane defaults;
- default-deny NetworkPolicies for ingress and egress, then explicit allows: DNS, the same
  namespace, Prometheus from the monitoring namespace, the load balancers' subnets to pods
  labelled for public exposure, PostgreSQL in the database subnets;
- RBAC: viewers read (never Secrets), admins also read logs, port-forward and restart pods,
  and only Argo CD's application controller may change what runs (deploys go through Git);
- the `default` service account without an automatically mounted token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, model_validator

from components.args import (
    ArgsModel,
    GroupName,
    HttpsUrl,
    Invalid,
    Quantity,
    Slug,
    pattern,
)
from components.kubernetes import PLATFORM_NAMESPACES, KubernetesTarget
from components.network import NetworkRef
from components.tagging import PlatformComponent
from components.wellknown import (
    EXPOSURE_LABEL,
    OTLP_GRPC_PORT,
    OTLP_HTTP_PORT,
    POSTGRES_TLS_CONFIGMAP,
    READINESS_GATE_LABEL,
    SIGSTORE_INCLUDE_LABEL,
    TEAM_LABEL,
    TRACE_NAMESPACE,
)

# -- arguments ----------------------------------------------------------------------------------

ImageRepository = Annotated[
    str, pattern(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?(/[a-z0-9._-]+)+",
                 "an image repository without tag or digest, e.g. "
                 "111111111111.dkr.ecr.us-east-1.amazonaws.com/checkout")]
IngressHost = Annotated[
    str, pattern(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
                  "a DNS name, or *.<name> for every name under it, e.g. checkout.example.com")]


def host_covers(claimed: str, host: str) -> bool:
    """Whether a team's claimed host (exact, or `*.domain`) covers `host` (itself possibly a
    `*.` wildcard). The one rule the config and the admission policy (ingress.rego) share."""
    if claimed == host:
        return True
    if claimed.startswith("*."):
        suffix = claimed[1:]  # ".domain"
        return host.endswith(suffix) and host != suffix[1:]
    return False


# `platform` labels the platform's own objects and alerts (and names its Argo CD project);
# `default` is Argo CD's project, which the platform locks (components/gitops.py).
RESERVED_TEAM_NAMES = ("platform", "default")


class TeamQuota(ArgsModel):
    """A team namespace's ResourceQuota (`platform:teams[].quota`). Quotas are capacity: the
    review's `quota-capacity` check refuses quotas that, with the platform's own pods, do not
    fit the node groups at their maxSize (in production with one node lost), and prices each
    team's quota (docs/cost-and-policies.md, showback). The defaults fit two teams beside the
    shipped prod platform and one beside dev's."""

    requests_cpu: Quantity = Field("2", description="Sum of CPU requests.")
    requests_memory: Quantity = Field("3Gi", description="Sum of memory requests.")
    limits_memory: Quantity = Field("6Gi", description="Sum of memory limits.")
    pods: int = Field(20, ge=1, le=1000, description="Pods.")
    persistent_volume_claims: int = Field(10, ge=0, le=200, description="PVCs.")
    requests_storage: Quantity = Field("100Gi", description="Sum of PVC storage requests.")


class Team(ArgsModel):
    """A team: its namespaces get the baseline (Pod Security `restricted`, quota, limits,
    default-deny network policies, RBAC), and the admission policies (`platform:teams[]`)."""

    name: Slug = Field(description="Team name (the `team` label and tag).")
    namespaces: tuple[Slug, ...] = Field(
        min_length=1, description="The team's namespaces; default: one named after the team.")
    admin_groups: tuple[GroupName, ...] = Field(
        description="Kubernetes groups (EKS access entries) of the team's admins: read, "
        "logs, port-forward, restart pods; never deploy (Argo CD does). Default: <name>-admins.")
    viewer_groups: tuple[GroupName, ...] = Field(
        description="Kubernetes groups with read-only access (no Secrets). Default: "
        "<name>-viewers.")
    quota: TeamQuota = Field(default_factory=TeamQuota, description="Per-namespace quota.")
    repos: tuple[HttpsUrl, ...] = Field(
        (), description="Git repositories the team's Argo CD project may deploy from, besides "
        "this one's `gitops/teams/<team>/`.")
    services: tuple[Slug, ...] = Field(
        (), description="Database credentials, and nothing else: the team's services that use "
        "the database, each given short-lived PostgreSQL credentials from Vault, synced into "
        "the Secret `<service>-db` of the team's first namespace (a service without database "
        "needs no entry here; `platformctl new-team --database-service`).")
    images: tuple[ImageRepository, ...] = Field(
        (), description="Image repositories the team's services ship from (e.g. "
        "`111111111111.dkr.ecr.us-east-1.amazonaws.com/checkout`, in an approved registry): an "
        "image there runs only with a provenance, signed by the organisation's CI, that names one "
        "of `buildRepositories` as its source; another team's CI cannot ship into them.")
    build_repositories: tuple[HttpsUrl, ...] = Field(
        (), description="GitHub repositories whose service CI (the reusable service-ci.yml) "
        "builds the team's images: the source a provenance must name. Required with `images`.")
    hosts: tuple[IngressHost, ...] = Field(
        (), description="DNS names the team's services may serve on the shared internet-facing "
        "load balancer (`checkout.example.com`, or `*.checkout.example.com` for every name under "
        "it). Each name belongs to one team; an Ingress for another host, or without one, is "
        "refused, and a team without hosts cannot expose anything to the internet.")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("name"), str):
            name = data["name"]
            data = {"namespaces": [name], "adminGroups": [f"{name}-admins"],
                    "viewerGroups": [f"{name}-viewers"], **data}
        return data

    @model_validator(mode="after")
    def _images_have_a_source(self) -> Team:
        if self.images and not self.build_repositories:
            raise Invalid("buildRepositories", [], "is empty while images are set; allowed: the "
                          "GitHub repositories whose CI builds them, e.g. "
                          "https://github.com/example-org/checkout")
        return self

    @model_validator(mode="after")
    def _not_platform(self) -> Team:
        if self.name in RESERVED_TEAM_NAMES:
            raise Invalid("name", self.name, "is the platform's own (its `team` label, or an "
                          "Argo CD project it locks); allowed: any other name")
        for namespace in self.namespaces:
            if namespace in PLATFORM_NAMESPACES:
                raise Invalid("namespaces", namespace, "is a platform namespace; allowed: any "
                           "other name (platform namespaces: " + ", ".join(PLATFORM_NAMESPACES)
                           + ")")
        return self


TEAM_ADMIN_ROLE = "platform:team-admin"
ARGOCD_NAMESPACE = "argocd"
ARGOCD_CONTROLLER = "argocd-application-controller"
POD_SECURITY = {f"pod-security.kubernetes.io/{mode}": "restricted"
                for mode in ("enforce", "warn", "audit")}

meta = k8s.meta.v1.ObjectMetaArgs


def _namespace_selector(name: str) -> dict[str, Any]:
    return {"matchLabels": {"kubernetes.io/metadata.name": name}}


def network_policies(monitoring_namespace: str, load_balancer_cidrs: Sequence[str],
                     database_cidrs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """NetworkPolicy specs of a team namespace, by name."""
    every_pod: dict[str, Any] = {}
    return {
        "default-deny": {"podSelector": every_pod, "policyTypes": ["Ingress", "Egress"]},
        "allow-dns": {
            "podSelector": every_pod, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": _namespace_selector("kube-system"),
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"protocol": "UDP", "port": 53},
                                  {"protocol": "TCP", "port": 53}]}],
        },
        "allow-same-namespace": {
            "podSelector": every_pod, "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": every_pod}]}],
            "egress": [{"to": [{"podSelector": every_pod}]}],
        },
        "allow-monitoring": {
            "podSelector": every_pod, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{
                "namespaceSelector": _namespace_selector(monitoring_namespace),
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]}],
        },
        # The shared ALB (ip targets) connects to pod IPs directly, from the public subnets it
        # lives in whatever its scheme (components/cluster.py, ingress_class_values).
        "allow-load-balancers": {
            "podSelector": {"matchLabels": {EXPOSURE_LABEL: "public"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"ipBlock": {"cidr": cidr}} for cidr in load_balancer_cidrs]}],
        },
        "allow-database": {
            "podSelector": every_pod, "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": cidr}} for cidr in database_cidrs],
                        "ports": [{"protocol": "TCP", "port": 5432}]}],
        },
        # OTLP to the trace gateway (components/traces.py), the endpoint the golden path sets.
        "allow-tracing": {
            "podSelector": every_pod, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": _namespace_selector(TRACE_NAMESPACE),
                                "podSelector": {"matchLabels": {
                                    "app.kubernetes.io/name": "opentelemetry-collector"}}}],
                        "ports": [{"protocol": "TCP", "port": OTLP_GRPC_PORT},
                                  {"protocol": "TCP", "port": OTLP_HTTP_PORT}]}],
        },
    }


def isolate_namespace(resource_prefix: str, namespace: str, monitoring_namespace: str,
                      opts: pulumi.ResourceOptions) -> None:
    """A platform namespace that nothing outside it calls (reached by port-forward, which
    NetworkPolicy does not see): ingress only from its own pods and Prometheus. Egress stays
    open (cloud APIs, the database, the Kubernetes API)."""
    every_pod: dict[str, Any] = {}
    specs = {
        "default-deny-ingress": {"podSelector": every_pod, "policyTypes": ["Ingress"]},
        "allow-same-namespace-and-monitoring": {
            "podSelector": every_pod, "policyTypes": ["Ingress"],
            "ingress": [{"from": [
                {"podSelector": every_pod},
                {"namespaceSelector": _namespace_selector(monitoring_namespace),
                 "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
            ]}],
        },
    }
    for policy_name, spec in specs.items():
        k8s.networking.v1.NetworkPolicy(
            f"{resource_prefix}-{policy_name}",
            metadata=meta(name=policy_name, namespace=namespace, labels={"team": "platform"}),
            spec=spec, opts=opts)


def quota(team: Team) -> dict[str, str]:
    q = team.quota
    return {
        "requests.cpu": q.requests_cpu, "requests.memory": q.requests_memory,
        "limits.memory": q.limits_memory, "pods": str(q.pods),
        "persistentvolumeclaims": str(q.persistent_volume_claims),
        "requests.storage": q.requests_storage,
        "services.loadbalancers": "0", "services.nodeports": "0",
    }


LIMIT_RANGE = [{
    "type": "Container",
    "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
    "default": {"memory": "256Mi"},
    "max": {"memory": "8Gi"},
}]

# What a team admin may do beyond `view`: look into and restart pods, never change workloads.
TEAM_ADMIN_RULES = [
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
    {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
]


class Tenancy(PlatformComponent):
    """The team namespaces and their baseline."""

    service = "tenancy"
    type_token = "platform:index:Tenancy"

    def __init__(self, name: str, teams: Sequence[Team], target: KubernetesTarget, network: NetworkRef,
                 monitoring_namespace: str, database_tls: Mapping[str, str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        """`database_tls`: what the namespaces' PostgreSQL clients are given
        (components/database.py client_tls), as the `postgres-tls` ConfigMap."""
        super().__init__(name, opts)
        self._target = target
        self._database_tls = dict(database_tls or {})
        k8s_opts = target.options(self)
        self.admin_role = k8s.rbac.v1.ClusterRole(
            f"{name}-team-admin",
            metadata=meta(name=TEAM_ADMIN_ROLE, labels={"team": "platform"}),
            rules=TEAM_ADMIN_RULES,
            opts=k8s_opts,
        )
        policies = network_policies(
            monitoring_namespace,
            list(network.public_cidrs), list(network.database_cidrs))
        self.namespaces: dict[str, k8s.core.v1.Namespace] = {}
        for team in teams:
            for namespace in team.namespaces:
                self._baseline(name, team, namespace, policies)

    def _baseline(self, name: str, team: Team, namespace: str,
                  policies: dict[str, dict[str, Any]]) -> None:
        prefix = f"{name}-{namespace}"
        labels = {"team": team.name, TEAM_LABEL: team.name}
        ns = k8s.core.v1.Namespace(
            prefix, metadata=meta(name=namespace, labels={
                **labels, **POD_SECURITY, SIGSTORE_INCLUDE_LABEL: "true",
                # The load balancer controller gives pods behind its target groups a readiness
                # gate: a rolling pod counts as ready only once the ALB sends it traffic.
                READINESS_GATE_LABEL: "enabled"}),
            opts=self._opts())
        self.namespaces[namespace] = ns
        opts = self._opts(depends_on=[ns])

        def m(object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
            return meta(name=object_name, namespace=namespace, labels=labels)

        k8s.core.v1.ResourceQuota(f"{prefix}-quota", metadata=m("team-quota"),
                                  spec={"hard": quota(team)}, opts=opts)
        k8s.core.v1.LimitRange(f"{prefix}-limits", metadata=m("container-defaults"),
                               spec={"limits": LIMIT_RANGE}, opts=opts)
        if self._database_tls:
            # libpq's settings for the team's database clients (the golden path mounts it):
            # verify the server against the RDS CA bundle, require channel binding.
            k8s.core.v1.ConfigMap(f"{prefix}-postgres-tls", metadata=m(POSTGRES_TLS_CONFIGMAP),
                                  data=self._database_tls, opts=opts)
        for policy_name, spec in policies.items():
            k8s.networking.v1.NetworkPolicy(f"{prefix}-{policy_name}", metadata=m(policy_name),
                                            spec=spec, opts=opts)
        groups = lambda names: [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",  # noqa: E731
                                 "name": g} for g in names]
        k8s.rbac.v1.RoleBinding(
            f"{prefix}-viewers", metadata=m("team-viewers"),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                      "name": "view"},
            subjects=groups([*team.viewer_groups, *team.admin_groups]), opts=opts)
        k8s.rbac.v1.RoleBinding(
            f"{prefix}-admins", metadata=m("team-admins"),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                      "name": TEAM_ADMIN_ROLE},
            subjects=groups(team.admin_groups),
            opts=self._opts(depends_on=[ns, self.admin_role]))
        # Deploys only through Git: Argo CD's controller is the one writer of workloads.
        k8s.rbac.v1.RoleBinding(
            f"{prefix}-deployer", metadata=m("argocd-deployer"),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                      "name": "admin"},
            subjects=[{"kind": "ServiceAccount", "name": ARGOCD_CONTROLLER,
                       "namespace": ARGOCD_NAMESPACE}], opts=opts)
        k8s.core.v1.ServiceAccountPatch(
            f"{prefix}-default-sa", metadata=m("default"),
            automount_service_account_token=False, opts=opts)

    def _opts(self, **kwargs) -> pulumi.ResourceOptions:
        return self._target.options(self, **kwargs)
