"""`KubernetesTarget`: where the platform's Kubernetes-side components install.

What `ObservabilityStack`, `SecurityStack` (Gatekeeper, Vault, the team baseline) and
`ArgoBootstrap` need from a cluster is small: a Kubernetes provider, the cluster's name, the one
way the platform installs a vendored chart, the one way it makes a namespace of its own, and the
order in which installs must happen. That is this type. `Cluster` (EKS) makes one
(`cluster.target`) with an AWS workload identity for the components that give pods AWS roles;
any other cluster can be a target too:

    target = KubernetesTarget(provider=k8s.Provider("existing", kubeconfig=...),
                              cluster_name="existing", api_server_cidr="10.0.0.0/16")
    ObservabilityStack("dev", observability_args, alerting_args, target, environment="dev")

Install order. A release that registers a fail-closed admission webhook, or installs CRDs that
later releases render objects of, is declared a prerequisite (:meth:`add_prerequisite`) right
after it is created: everything made through this target afterwards waits for it. So the
program's order is the install order, and `webhook-install-order` checks the result on the
rendered charts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pulumi
import pulumi_kubernetes as k8s

from components import charts

if TYPE_CHECKING:
    import pulumi_aws as aws

ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"


def apart_key(replicas: int, zones: int) -> str:
    """Where a workload's replicas must not share: an AZ while there are no more of them than
    AZs (losing one leaves the others serving), a node beyond that."""
    return ZONE_KEY if replicas <= zones else HOST_KEY

# Namespaces the platform's own components run in: never team namespaces, never matched by the
# admission policies (node-exporter, the CNI, Gatekeeper itself need what those policies forbid).
PLATFORM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "default",
                       "gatekeeper-system", "monitoring", "vault", "cosign-system", "argocd",
                       "cert-manager", "chaos-mesh", "logging", "tracing")


class WorkloadIdentity(Protocol):
    """How a cluster gives one Kubernetes service account an AWS role (`Cluster` on EKS: Pod
    Identity or IRSA)."""

    partition: str

    def service_account_role(
        self, name: str, namespace: str, service_account: str, *,
        managed_policies: Sequence[str] = (), policy: pulumi.Input[str] | None = None,
        via: str = "pod-identity", associate: bool = True, parent: pulumi.Resource,
    ) -> aws.iam.Role: ...


@dataclass
class KubernetesTarget:
    """A cluster the Kubernetes-side components install on."""

    provider: k8s.Provider
    """The provider every Kubernetes object goes through."""
    cluster_name: str
    """The cluster's name, for descriptions and key aliases."""
    api_server_cidr: pulumi.Input[str]
    """The network the API server calls webhooks from (on EKS, the VPC): network policies
    admit it to the webhooks' pods."""
    storage_class: pulumi.Resource | None = None
    """The default StorageClass, when this program makes it: stateful releases wait for it.
    None: the cluster has one already."""
    identity: WorkloadIdentity | None = None
    """AWS roles for service accounts. None on a cluster without one: the components that
    need it (Vault's auto-unseal, image signature checks against ECR) refuse to install."""
    services: list[pulumi.Resource] = field(default_factory=list)
    """What the cluster itself installs (storage, load balancing, autoscaling, certificates):
    an admission controller waits for all of it, so none of it races its webhooks."""
    prerequisites: list[pulumi.Resource] = field(default_factory=list)
    """Releases everything made from now on waits for (:meth:`add_prerequisite`)."""
    zones: int = 1
    """How many AZs the nodes span (an EKS Cluster's: its private subnets); 1 when not known.
    What must survive an AZ's loss is kept one pod per AZ over them (:meth:`apart`)."""

    def apart(self, selector: Mapping[str, str], replicas: int) -> dict[str, object]:
        """A pod `affinity` keeping a workload's pods (its own labels, `selector`) apart: one
        per AZ (required) while there are no more of them than AZs, so losing an AZ (or a node)
        leaves the others serving; one per node (required) beyond that. The node-capacity check
        places and drains them so."""
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": dict(selector)},
             "topologyKey": apart_key(replicas, self.zones)}]}}

    def options(self, parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
        """Options for a Kubernetes object of a component: this target's provider, and a
        dependency on every prerequisite declared so far."""
        depends_on = [*self.prerequisites, *(kwargs.pop("depends_on", None) or [])]
        return pulumi.ResourceOptions(parent=parent, provider=self.provider,
                                      depends_on=depends_on, **kwargs)

    def add_prerequisite(self, release: pulumi.Resource) -> None:
        """From now on, every Kubernetes object made through this target waits for `release`.

        For a release that registers a fail-closed admission webhook (`failurePolicy: Fail`) that
        matches what later resources create (until its pods serve, the API server refuses those
        objects: the `webhook-install-order` policy checks it on the rendered webhooks), or that
        installs CRDs later releases render objects of (a chart that renders a ServiceMonitor
        fails, or silently leaves it out, while the kind does not exist). Declare it right after
        creating it; what it needs itself must be created before."""
        self.prerequisites.append(release)

    def require_identity(self, component: str) -> WorkloadIdentity:
        """The target's workload identity, or a clear error naming who needs it."""
        if self.identity is None:
            raise ValueError(f"{component} gives pods AWS roles: it needs a target with a "
                             f"workload identity (an EKS Cluster's `target`), and "
                             f"{self.cluster_name} has none")
        return self.identity

    def platform_namespace(
        self,
        resource_name: str,
        namespace: str,
        *,
        parent: pulumi.Resource,
        pod_security: str,
        labels: Mapping[str, str] | None = None,
    ) -> k8s.core.v1.Namespace:
        """A namespace of the platform's own components: owned by the platform team, with the
        Pod Security level (`restricted`, `baseline` or `privileged`) its charts need."""
        return k8s.core.v1.Namespace(
            resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace, labels={
                "team": "platform", **(labels or {}),
                "pod-security.kubernetes.io/enforce": pod_security}),
            opts=self.options(parent),
        )

    def helm_release(
        self,
        resource_name: str,
        *,
        parent: pulumi.Resource,
        release: str,
        chart: str,
        namespace: str,
        values: pulumi.Input[dict],
        depends_on: Sequence[pulumi.Resource] = (),
        timeout: int | None = None,
    ) -> k8s.helm.v3.Release:
        """The vendored chart `chart` (charts/charts.yaml) on this target, installed the one way
        the platform installs charts: from its archive in charts/ (what the review rendered),
        `atomic` (a failed install or upgrade rolls back) and cleaned up on failure."""
        vendored = charts.chart(chart)
        return k8s.helm.v3.Release(
            resource_name,
            name=release,
            chart=vendored.chart_path,
            version=vendored.version,
            namespace=namespace,
            values=values,
            atomic=True,
            cleanup_on_fail=True,
            timeout=timeout,
            opts=self.options(parent, depends_on=list(depends_on)),
        )
