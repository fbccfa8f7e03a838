"""`Cluster`: EKS, safe by default, ready for the add-ons.

* Control plane: pinned Kubernetes version, upgrade support policy set explicitly, secrets
  envelope-encrypted with its own KMS key (rotation on), control-plane logs into a log group
  created first (so it has a retention), private endpoint always on and the public one restricted
  to configured networks, access entries only (no aws-auth ConfigMap, no implicit admin for
  whoever ran the first `pulumi up`).
* IAM: a cluster role and a node role with only the AWS managed policies they need; the CNI's
  permissions go to the CNI's service account, not to every node. An OIDC provider for IRSA,
  EKS Pod Identity for the rest, and :meth:`Cluster.service_account_role`, the one way other
  components give a Kubernetes service account an AWS role.
* Nodes: managed node groups in the private subnets, launch templates requiring IMDSv2 with a
  hop limit of 1 (pods cannot borrow the node's credentials), encrypted gp3 root volumes,
  Graviton AMIs for Graviton types, the kubelet's maxPods set in the nodes' NodeConfig. VPC CNI
  prefix delegation, so addresses do not bound the pods per node. Cluster Autoscaler (a pinned
  Helm release with its own role) scales each node group between minSize and maxSize; it owns
  `desiredSize` after creation.
* EKS add-ons at pinned versions: vpc-cni (network policy enforcement on), kube-proxy and the Pod
  Identity agent before the nodes; CoreDNS and the EBS CSI driver after them.
* Cluster services: a gp3 encrypted default StorageClass, the AWS Load Balancer Controller,
  metrics-server, Cluster Autoscaler and cert-manager (pinned Helm releases), through
  `cluster.target`: the `KubernetesTarget` (components/kubernetes.py) the Kubernetes-side
  components receive, with this cluster as their AWS workload identity.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from pydantic import Field, model_validator

from components import iam, pod_resources
from components.args import (
    AnyCidr,
    ArgsModel,
    EksAddonVersion,
    IamRoleArn,
    InstanceFamily,
    InstanceType,
    Invalid,
    LabelKey,
    LabelValue,
    LogRetention,
    Slug,
    instance_architecture,
)
from components.backup import CLUSTER_TAG, NAMESPACE_TAG
from components.kubernetes import KubernetesTarget
from components.network import NetworkRef
from components.tagging import PlatformComponent
from platform_facts import kubernetes as kubernetes_facts

# -- arguments ----------------------------------------------------------------------------------

class Taint(ArgsModel):
    """A Kubernetes taint put on every node of a node group."""

    key: LabelKey = Field(description="Taint key.")
    value: LabelValue = Field("", description="Taint value.")
    effect: Literal["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"] = Field(
        description="Taint effect, in EKS's spelling."
    )


class NodeGroup(ArgsModel):
    """An EKS managed node group in the private subnets (`platform:cluster.nodeGroups.<name>`)."""

    instance_types: tuple[InstanceType, ...] = Field(
        min_length=1, max_length=10,
        description="Instance types, one architecture. Several types give spot capacity more "
        "pools; they must share vCPUs and memory (Cluster Autoscaler plans a group as one shape: "
        "the node-capacity check refuses a mix).",
    )
    capacity_type: Literal["ON_DEMAND", "SPOT"] = Field(
        description="`SPOT` is cheap and can be reclaimed with two minutes' notice; `ON_DEMAND` is not."
    )
    min_size: int = Field(ge=0, le=100, description="Fewest nodes.")
    desired_size: int = Field(
        ge=0, le=100,
        description="Nodes at creation. Afterwards the autoscaler owns it: `pulumi up` ignores drift.",
    )
    max_size: int = Field(ge=1, le=100, description="Most nodes.")
    disk_size_gib: int = Field(50, ge=20, le=1000, description="Root volume (gp3, encrypted), GiB.")
    max_pods: int = Field(
        110, ge=8, le=250,
        description="Pods the kubelet admits per node (the launch template's NodeConfig). The "
        "VPC CNI hands out /28 prefixes (prefix delegation), so addresses do not bound it on "
        "Nitro types; memory does: EKS reserves 11 MiB per admitted pod for the kubelet. 110 is "
        "the kubelet's default and EKS's cap below 30 vCPUs.",
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Kubernetes labels on every node."
    )
    taints: tuple[Taint, ...] = Field((), description="Kubernetes taints on every node.")
    zonal: bool = Field(
        False, description="One EKS node group per AZ of the private subnets (named "
        "`<group>-<az>`) instead of one spanning them. The sizes are then totals split across "
        "the AZs (the first AZs get the remainder: 5 over three AZs is 2, 2, 1). Required where "
        "pods keep data on EBS volumes, which live in one AZ: the Cluster Autoscaler can add a "
        "node in the AZ of a pending pod's volume only to a group of that AZ "
        "(docs/adr/0011-zonal-node-groups.md).",
    )
    cpu_credits: Literal["standard", "unlimited"] = Field(
        "standard", description="CPU credit mode of burstable types (t4g, ...), set as the "
        "family's default in the account and region (it applies to other instances of the family "
        "launched without a mode of their own; node groups sharing a family must agree): "
        "`standard` throttles a node to its baseline once its credits are "
        "spent (no charge beyond the hourly price); `unlimited` lets it run above the baseline "
        "and bills the surplus per vCPU-hour (priced at an assumed 10% above baseline).",
    )

    @model_validator(mode="after")
    def _sizes_and_architecture(self) -> NodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise Invalid("desiredSize", self.desired_size,
                       f"must lie between minSize ({self.min_size}) and maxSize ({self.max_size}); "
                       "allowed: minSize <= desiredSize <= maxSize")
        architectures = {instance_architecture(t) for t in self.instance_types}
        if len(architectures) > 1:
            raise Invalid("instanceTypes", list(self.instance_types),
                       "mixes arm64 (Graviton) and x86_64 types; allowed: one architecture per "
                       "node group (they share one AMI)")
        return self

    def sizes_per_zone(self, zones: int) -> list[tuple[int, int, int]]:
        """(minSize, desiredSize, maxSize) of each AZ's group when zonal, else [the sizes]."""
        if not self.zonal:
            return [(self.min_size, self.desired_size, self.max_size)]

        def split(total: int) -> list[int]:
            return [total // zones + (1 if i < total % zones else 0) for i in range(zones)]

        return list(zip(split(self.min_size), split(self.desired_size), split(self.max_size),
                        strict=True))

    @property
    def architecture(self) -> str:
        return instance_architecture(self.instance_types[0])

    @property
    def burstable_families(self) -> tuple[str, ...]:
        """The burstable families (T: t4g, t3, ...) the group may launch, which have a CPU
        credit mode (in a mixed group it applies to those only)."""
        return tuple(sorted({t.split(".", 1)[0] for t in self.instance_types
                             if t.startswith("t")}))


class PublicEndpoint(ArgsModel):
    """Who may reach the EKS API from the internet (`platform:cluster.publicEndpoint`). The
    private endpoint is always on."""

    enabled: bool = Field(description="Expose the EKS API publicly, restricted to `cidrs`.")
    cidrs: tuple[AnyCidr, ...] = Field(
        (), description="Networks allowed to reach the public endpoint (offices, VPN, CI runners' "
        "egress). Required when enabled; 0.0.0.0/0 is refused."
    )

    @model_validator(mode="after")
    def _restricted(self) -> PublicEndpoint:
        if self.enabled and not self.cidrs:
            raise Invalid("cidrs", [], "the public endpoint is enabled without restriction; allowed: "
                       "one or more networks, e.g. your VPN's egress 198.51.100.0/24")
        if not self.enabled and self.cidrs:
            raise Invalid("cidrs", list(self.cidrs),
                       "listed while the public endpoint is disabled; allowed: [] or enabled: true")
        wide = [c for c in self.cidrs if ipaddress.IPv4Network(c).prefixlen < 8]
        if wide:
            raise Invalid("cidrs", list(self.cidrs),
                       f"{', '.join(wide)} opens the API to (nearly) the whole internet; allowed: "
                       "networks of prefix /8 or longer")
        return self


_DEFAULT_ADDONS = kubernetes_facts.addons(kubernetes_facts.default_minor()) or {}


class AddonVersions(ArgsModel):
    """Pinned EKS add-on versions (`platform:cluster.addonVersions`): by default the builds
    platform_facts/kubernetes.json records as known good on the default Kubernetes minor (with
    their source and date). Check with `aws eks describe-addon-versions --kubernetes-version
    <minor> --addon-name <name>` before changing the Kubernetes version, and record them there;
    `platformctl upgrade-check` blocks a minor without them."""

    vpc_cni: EksAddonVersion = Field(
        _DEFAULT_ADDONS["vpc-cni"], description="Amazon VPC CNI, with network policy enforcement."
    )
    coredns: EksAddonVersion = Field(_DEFAULT_ADDONS["coredns"], description="CoreDNS.")
    kube_proxy: EksAddonVersion = Field(
        _DEFAULT_ADDONS["kube-proxy"], description="kube-proxy; its minor must equal the cluster's."
    )
    aws_ebs_csi_driver: EksAddonVersion = Field(
        _DEFAULT_ADDONS["aws-ebs-csi-driver"],
        description="Amazon EBS CSI driver (the gp3 StorageClass)."
    )
    eks_pod_identity_agent: EksAddonVersion = Field(
        _DEFAULT_ADDONS["eks-pod-identity-agent"], description="EKS Pod Identity agent."
    )


EKS_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
REQUIRED_EKS_LOG_TYPES = ("api", "audit", "authenticator")


class ClusterArgs(ArgsModel):
    """The EKS cluster (`platform:cluster`)."""

    # The minors in EKS standard support, with their dates and sources:
    # platform_facts/kubernetes.json.
    kubernetes_version: Literal[kubernetes_facts.minors()] = Field(  # type: ignore[valid-type]
        kubernetes_facts.default_minor(), description="Kubernetes minor version of the control "
        "plane and nodes. Versions in EKS standard support (platform_facts/kubernetes.json); "
        f"{kubernetes_facts.minors()[-1]} is the newest.",
    )
    support_type: Literal["STANDARD", "EXTENDED"] = Field(
        "STANDARD", description="EKS upgrade support policy. `EXTENDED` keeps an old version "
        "running past standard support at six times the hourly control-plane price.",
    )
    admin_role_arn: IamRoleArn = Field(
        description="IAM role given cluster admin through an EKS access entry; `pulumi up` must "
        "run with this role (it installs the cluster services)."
    )
    read_only_role_arns: tuple[IamRoleArn, ...] = Field(
        (), description="IAM roles given read-only access to the cluster (on-call, auditors, CI "
        "preview roles): `AmazonEKSViewPolicy`, which reads no Secrets.",
    )
    secret_reader_role_arns: tuple[IamRoleArn, ...] = Field(
        (), description="IAM roles given `AmazonEKSAdminViewPolicy`: read-only, Secrets "
        "included (every credential in the cluster). A separate, deliberate choice; prefer "
        "`readOnlyRoleArns`.",
    )
    public_endpoint: PublicEndpoint = Field(description="The EKS API's public endpoint.")
    log_types: tuple[Literal["api", "audit", "authenticator", "controllerManager", "scheduler"],
                     ...] = Field(
        REQUIRED_EKS_LOG_TYPES, description="Control-plane log types sent to CloudWatch; "
        "api, audit and authenticator are required.",
    )
    log_retention_days: LogRetention = Field(
        description="Days CloudWatch keeps the control-plane logs."
    )
    allowed_instance_families: tuple[InstanceFamily, ...] = Field(
        min_length=1, description="Instance families node groups may use. The presets allow "
        "Graviton families only (cheaper per vCPU)."
    )
    node_groups: dict[Slug, NodeGroup] = Field(
        min_length=1, description="Managed node groups by name. Stack files merge into the "
        "preset's by name."
    )
    deletion_protection: bool = Field(
        description="EKS refuses to delete the cluster while this is on."
    )
    ingress_scheme: Literal["internet-facing", "internal", "none"] = Field(
        "internet-facing", description="The shared load balancer of the golden path's public "
        "services: `internet-facing` (reachable from the internet; one public IPv4 address per "
        "AZ), `internal` (reachable only from the VPC and what is peered or VPN'd into it) or "
        "`none` (no load balancer and no IngressClass: Ingresses stay inert, services are "
        "reached in the cluster or by `kubectl port-forward`; the cheapest, for a dev stack).",
    )
    controller_replicas: int = Field(
        2, ge=1, le=3,
        description="Replicas of the cluster's own controllers: the load balancer controller "
        "(its webhook fails closed on every Service), metrics-server, the Cluster Autoscaler and "
        "cert-manager. 2 keeps each serving through a node's loss or drain (each then gets a "
        "disruption budget of one pod down); 1 halves their requests, for a dev stack.",
    )
    addon_versions: AddonVersions = Field(
        default_factory=AddonVersions, description="Pinned EKS add-on versions."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ClusterArgs:
        both = sorted(set(self.read_only_role_arns) & set(self.secret_reader_role_arns))
        if both:
            raise Invalid("secretReaderRoleArns", list(self.secret_reader_role_arns),
                       f"{', '.join(both)} is also in readOnlyRoleArns; allowed: each role in "
                       "one of the two lists (one access entry per role)")
        if self.admin_role_arn in (*self.read_only_role_arns, *self.secret_reader_role_arns):
            raise Invalid("adminRoleArn", self.admin_role_arn,
                       "is also listed as a read-only role; allowed: a role in one list only")
        missing = [t for t in REQUIRED_EKS_LOG_TYPES if t not in self.log_types]
        if missing:
            raise Invalid("logTypes", list(self.log_types),
                       f"misses {', '.join(missing)}; allowed: any of {', '.join(EKS_LOG_TYPES)} "
                       f"that includes {', '.join(REQUIRED_EKS_LOG_TYPES)}")
        for name, group in self.node_groups.items():
            for instance_type in group.instance_types:
                family = instance_type.split(".", 1)[0]
                if family not in self.allowed_instance_families:
                    raise Invalid(f"nodeGroups.{name}.instanceTypes", list(group.instance_types),
                               f"{instance_type} is outside the allowed families; allowed: "
                               + ", ".join(self.allowed_instance_families))
        modes: dict[str, tuple[str, str]] = {}
        for name, group in self.node_groups.items():
            for family in group.burstable_families:
                other = modes.setdefault(family, (name, group.cpu_credits))
                if other[1] != group.cpu_credits:
                    raise Invalid(f"nodeGroups.{name}.cpuCredits", group.cpu_credits,
                                  f"differs from node group {other[0]}'s {other[1]!r} for the "
                                  f"same family {family} (a family has one credit mode per "
                                  f"account and region); allowed: {other[1]!r}")
        proxy_minor = ".".join(self.addon_versions.kube_proxy.lstrip("v").split(".")[:2])
        if proxy_minor != self.kubernetes_version:
            raise Invalid("addonVersions.kubeProxy", self.addon_versions.kube_proxy,
                       f"is built for Kubernetes {proxy_minor}, the cluster runs "
                       f"{self.kubernetes_version}; allowed: a v{self.kubernetes_version}.x build")
        return self


    @property
    def credit_modes(self) -> dict[str, str]:
        """{burstable family: CPU credit mode} of the node groups (validated to agree)."""
        return {family: group.cpu_credits for group in self.node_groups.values()
                for family in group.burstable_families}


AMI_TYPES = {"arm64": "AL2023_ARM_64_STANDARD", "x86_64": "AL2023_x86_64_STANDARD"}

# The vpc-cni add-on's configuration (its JSON schema: `aws eks describe-addon-configuration`).
VPC_CNI_CONFIGURATION = {
    # Without this, NetworkPolicies are accepted but not enforced on EKS.
    "enableNetworkPolicy": "true",
    "env": {
        # /28 prefixes instead of single addresses per ENI slot: a t4g.medium holds 242
        # addresses instead of 17, so pods per node are bounded by the kubelet's maxPods
        # (NodeGroup.maxPods) and memory, not by the ENIs. Nitro instance types only (all of
        # the allowed Graviton families are).
        "ENABLE_PREFIX_DELEGATION": "true",
        # One spare prefix per node: a new pod does not wait for an EC2 call.
        "WARM_PREFIX_TARGET": "1",
    },
}

CERT_MANAGER_NAMESPACE = "cert-manager"
# The pod labels of the fail-closed webhooks' servers (their Services select them so); the
# webhook-availability check reads the rendered pods and holds these to them.
LBC_SELECTOR = {"app.kubernetes.io/name": "aws-load-balancer-controller",
                "app.kubernetes.io/instance": "aws-load-balancer-controller"}
CERT_MANAGER_WEBHOOK_SELECTOR = {"app.kubernetes.io/name": "webhook",
                                 "app.kubernetes.io/instance": "cert-manager",
                                 "app.kubernetes.io/component": "webhook"}
# And of the controllers an AZ's loss needs most: the autoscaler adds the nodes that replace the
# lost AZ's, metrics-server feeds the HPAs that grow the survivors.
AUTOSCALER_SELECTOR = {"app.kubernetes.io/name": "aws-cluster-autoscaler",
                       "app.kubernetes.io/instance": "cluster-autoscaler"}
METRICS_SERVER_SELECTOR = {"app.kubernetes.io/name": "metrics-server",
                           "app.kubernetes.io/instance": "metrics-server"}

# Cluster Autoscaler's image per Kubernetes minor: upstream supports each autoscaler minor with
# the same Kubernetes minor only (platform_facts/kubernetes.json, with its source).
CLUSTER_AUTOSCALER_IMAGE_TAGS = {m: kubernetes_facts.cluster_autoscaler_tag(m)
                                 for m in kubernetes_facts.minors()}

_USER_DATA_BOUNDARY = "//platform-nodeconfig//"


def node_config_user_data(max_pods: int) -> str:
    """Launch template user data for an EKS managed node group on AL2023: a MIME part of type
    `application/node.eks.aws` holding a nodeadm NodeConfig, which EKS merges with the one it
    generates (cluster name, endpoint, CA). It sets the kubelet's maxPods, and `maxPodsExpression`
    to the same number, because nodeadm computes kube-reserved memory (11 MiB x max pods + 255)
    from the expression's result (or, without one, from the ENI limit without prefixes: 17 on a
    t4g.medium), never from `kubelet.config.maxPods` (amazon-eks-ami nodeadm, since v20251007)."""
    node_config = (
        "---\n"
        "apiVersion: node.eks.aws/v1alpha1\n"
        "kind: NodeConfig\n"
        "spec:\n"
        "  kubelet:\n"
        f'    maxPodsExpression: "{max_pods}"\n'
        "    config:\n"
        f"      maxPods: {max_pods}\n"
    )
    document = (
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{_USER_DATA_BOUNDARY}"\n'
        "\n"
        f"--{_USER_DATA_BOUNDARY}\n"
        "Content-Type: application/node.eks.aws\n"
        "\n"
        f"{node_config}"
        f"--{_USER_DATA_BOUNDARY}--\n"
    )
    return base64.b64encode(document.encode()).decode()

# The one load balancer every Ingress of the golden path shares (per cluster), made by the load
# balancer controller at run time for its IngressClass `alb`, whose IngressClassParams (the
# platform's) force its group and scheme (internet-facing, or internal for
# an environment only reachable from the VPC, `platform:cluster.ingressScheme`), whatever an
# Ingress says. The listener settings every team shares are the annotations the golden path
# writes and the ingress admission policy requires; a service's own target group settings
# (FREE_ALB_ANNOTATIONS) are the only others it allows. So the plan bounds what the controller
# creates: one ALB, priced by the cost model from these values.
# (The group keeps its first name: renaming it would replace the ALB, and its DNS name with it.)
SHARED_ALB_GROUP = "platform-public"
PUBLIC_SUBNET_TAG = "kubernetes.io/role/elb"  # on the public subnets (components/network.py)
INGRESS_CLASS = "alb"
SHARED_ALB_ANNOTATIONS = {
    "alb.ingress.kubernetes.io/target-type": "ip",
    "alb.ingress.kubernetes.io/listen-ports": '[{"HTTP": 80}, {"HTTPS": 443}]',
    "alb.ingress.kubernetes.io/ssl-redirect": "443",
    "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
}
FREE_ALB_ANNOTATIONS = (
    "alb.ingress.kubernetes.io/target-group-attributes",
    "alb.ingress.kubernetes.io/healthcheck-path",
    "alb.ingress.kubernetes.io/healthcheck-interval-seconds",
    "alb.ingress.kubernetes.io/success-codes",
)


def ingress_class_values(scheme: str) -> dict[str, Any]:
    """The load balancer controller chart's IngressClass values: its class `alb` (the chart's,
    kept as it always was, so no Ingress ever loses its class and the ALB is never deprovisioned)
    pointing at the platform's IngressClassParams; none for `none` (without a class the
    controller provisions nothing for Ingresses)."""
    if scheme == "none":
        return {"createIngressClassResource": False, "ingressClassParams": {"create": False}}
    return {"createIngressClassResource": True, "ingressClass": INGRESS_CLASS,
            "ingressClassParams": {"create": False, "name": SHARED_ALB_GROUP}}


def shared_alb_params(scheme: str) -> dict[str, Any]:
    """The IngressClassParams (elbv2.k8s.aws/v1beta1, read against the vendored chart's CRD):
    the shared ALB's group, scheme and subnets over every Ingress of the class. The platform
    makes it after the controller serves, as the chart recommends, with values the plan knows
    (the cost model prices it)."""
    return {
        "apiVersion": "elbv2.k8s.aws/v1beta1", "kind": "IngressClassParams",
        "metadata": {"name": SHARED_ALB_GROUP, "labels": {"team": "platform"}},
        "spec": {"group": {"name": SHARED_ALB_GROUP}, "scheme": scheme, "ipAddressType": "ipv4",
                 # In the public subnets whatever the scheme (an internal ALB there has private
                 # addresses only): the pods' network policy admits those subnets and nothing
                 # wider (the private subnets hold every pod).
                 "subnets": {"tags": {PUBLIC_SUBNET_TAG: ["1"]}}},
    }


_AWS_POLICY = "arn:{partition}:iam::aws:policy/{name}"
_ACCESS_POLICY = "arn:{partition}:eks::aws:cluster-access-policy/{name}"


class Cluster(PlatformComponent):
    """An EKS cluster with its node groups, add-ons and cluster services."""

    service = "cluster"
    type_token = "platform:index:Cluster"

    def __init__(
        self,
        name: str,
        config: ClusterArgs,
        network: NetworkRef,
        region: str,
        tags_for: Callable[[str], Mapping[str, str]],
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`tags_for(service)` gives the standard tags (the config model's `standard_tags`), for
        what EC2 and the load balancer controller create outside Pulumi (instances, volumes,
        load balancers)."""
        super().__init__(name, opts)
        self.config = config
        self.region = region
        invoke = pulumi.InvokeOptions(parent=self)
        self.account = aws.get_caller_identity(opts=invoke).account_id
        self.partition = aws.get_partition(opts=invoke).partition
        self.cluster_name = f"platform-{name}"
        self._tags_for = tags_for
        # Where the control plane's network interfaces (and the pods) have their addresses.
        self.vpc_cidr = network.vpc_cidr
        self.zones = len(network.private_subnet_ids)  # the AZs the nodes span

        secrets_key_policy = self._before_the_control_plane(name, network)
        self._control_plane(name, network, secrets_key_policy)
        self._who_may_use_it(name)
        before_nodes = self._addons_before_nodes(name) + self._credit_modes(name)
        # (Pulumi name, node group, minSize, desiredSize, maxSize) of each EKS node group: one
        # per configured group, or one per AZ of a zonal group.
        self.node_group_sizes: list[tuple[str, aws.eks.NodeGroup, int, int, int]] = [
            group for pool_name, pool in config.node_groups.items()
            for group in self._node_groups(name, pool_name, pool, network, before_nodes)]
        self.node_groups = [group for _, group, *_ in self.node_group_sizes]
        self.addons = before_nodes + self._addons_after_nodes(name)
        self._kubernetes_target(name, region)
        self._cluster_services(name, network)

        self.register_outputs({
            "clusterName": self.eks.name,
            "endpoint": self.eks.endpoint,
            "oidcProviderArn": self.oidc_provider.arn,
            "nodeSecurityGroupId": self.node_security_group.id,
        })

    # -- the constructor's steps, in order ---------------------------------------------

    def _before_the_control_plane(self, name: str, network: NetworkRef) -> aws.kms.KeyPolicy:
        """The KMS key EKS envelope-encrypts Kubernetes secrets with, the control-plane log
        group (with retention, before EKS writes to it), the roles of the control plane and
        the nodes, the nodes' security group, and the key's policy (returned: the control
        plane waits for it)."""
        # -- encryption key for Kubernetes secrets ---------------------------------------
        self.secrets_key = aws.kms.Key(
            f"{name}-eks-secrets",
            description=f"Envelope encryption of Kubernetes secrets in {self.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.kms.Alias(f"{name}-eks-secrets", name=f"alias/{self.cluster_name}-secrets",
                      target_key_id=self.secrets_key.key_id,
                      opts=pulumi.ResourceOptions(parent=self.secrets_key))

        # -- control-plane logs: the group exists (with retention) before EKS writes to it --
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=f"/aws/eks/{self.cluster_name}/cluster",
            retention_in_days=self.config.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self),
        )

        # -- IAM -------------------------------------------------------------------------
        self.cluster_role = self._role(
            f"{name}-cluster", "EKS control plane", iam.plain_service_trust("eks.amazonaws.com"),
            ["AmazonEKSClusterPolicy"])
        self.node_role = self._role(
            f"{name}-node", "EKS managed nodes", iam.plain_service_trust("ec2.amazonaws.com"),
            ["AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"])

        # Identity of the nodes for others' rules (the database admits 5432 from it). It has no
        # rules of its own; node traffic is governed by the cluster security group.
        self.node_security_group = aws.ec2.SecurityGroup(
            f"{name}-nodes",
            vpc_id=network.vpc_id,
            description=f"Nodes of {self.cluster_name}",
            tags={"Name": f"{self.cluster_name}-nodes"},
            opts=pulumi.ResourceOptions(parent=self),
        )

        # Who administers the platform's KMS keys (never uses them): the account, so it never
        # loses a key, and the role `pulumi up` runs as.
        self.key_administrators = [f"arn:{self.partition}:iam::{self.account}:root",
                                   self.config.admin_role_arn]
        secrets_key_policy = aws.kms.KeyPolicy(
            f"{name}-eks-secrets",
            key_id=self.secrets_key.key_id,
            policy=self.cluster_role.arn.apply(lambda role: iam.to_json(iam.key_policy(
                self.key_administrators, [
                    iam.key_use("EksEnvelopeEncryption", role,
                                ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants",
                                 "kms:DescribeKey"]),
                    # Creating the cluster creates EKS's grant on the key (DescribeKey the
                    # role has as an administrator; the condition applies to grants only).
                    iam.key_use("CreateTheClustersGrant", self.config.admin_role_arn,
                                ["kms:CreateGrant"],
                                {"Bool": {"kms:GrantIsForAWSResource": "true"}}),
                ]))),
            opts=pulumi.ResourceOptions(parent=self.secrets_key),
        )
        return secrets_key_policy

    def _control_plane(self, name: str, network: NetworkRef,
                       secrets_key_policy: aws.kms.KeyPolicy) -> None:
        # -- control plane ---------------------------------------------------------------
        public = self.config.public_endpoint
        self.eks = aws.eks.Cluster(
            f"{name}-eks",
            name=self.cluster_name,
            version=self.config.kubernetes_version,
            role_arn=self.cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(network.private_subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=public.enabled,
                public_access_cidrs=list(public.cidrs) if public.enabled else None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # Admins are explicit access entries, never "whoever created it".
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(
                    key_arn=self.secrets_key.arn),
                resources=["secrets"],
            ),
            enabled_cluster_log_types=list(self.config.log_types),
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=self.config.support_type),
            # The add-ons below are EKS-managed at pinned versions instead.
            bootstrap_self_managed_addons=False,
            deletion_protection=self.config.deletion_protection,
            tags={"Name": self.cluster_name},
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[self.log_group, secrets_key_policy]),
        )

    def _who_may_use_it(self, name: str) -> None:
        # -- who may use the cluster -----------------------------------------------------
        self._access(f"{name}-admin", self.config.admin_role_arn, "AmazonEKSClusterAdminPolicy")
        # Read-only: no Secrets (AmazonEKSAdminViewPolicy would read every credential in the
        # cluster); that wider access is its own list, chosen by name.
        for index, arn in enumerate(self.config.read_only_role_arns):
            self._access(f"{name}-read-only-{index}", arn, "AmazonEKSViewPolicy")
        for index, arn in enumerate(self.config.secret_reader_role_arns):
            self._access(f"{name}-secret-reader-{index}", arn, "AmazonEKSAdminViewPolicy")

        self.oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=self.issuer,
            client_id_lists=["sts.amazonaws.com"],
            opts=pulumi.ResourceOptions(parent=self.eks),
        )

    def _addons_before_nodes(self, name: str) -> list[aws.eks.Addon]:
        # -- add-ons the nodes need before they can become Ready --------------------------
        # The CNI uses IRSA, not Pod Identity: it must work before the Pod Identity agent can.
        cni_role = self.service_account_role(
            f"{name}-vpc-cni", "kube-system", "aws-node",
            managed_policies=["AmazonEKS_CNI_Policy"], via="irsa", parent=self)
        before_nodes = [
            self._addon("vpc-cni", self.config.addon_versions.vpc_cni,
                        service_account_role_arn=cni_role.arn,
                        configuration_values=json.dumps(VPC_CNI_CONFIGURATION)),
            self._addon("kube-proxy", self.config.addon_versions.kube_proxy),
            self._addon("eks-pod-identity-agent", self.config.addon_versions.eks_pod_identity_agent),
        ]
        return before_nodes

    def _addons_after_nodes(self, name: str) -> list[aws.eks.Addon]:
        # -- add-ons that run as Deployments: after the nodes ------------------------------
        ebs_role = self.service_account_role(
            f"{name}-ebs-csi", "kube-system", "ebs-csi-controller-sa",
            managed_policies=["service-role/AmazonEBSCSIDriverPolicy"], associate=False,
            parent=self)
        self.ebs_csi_addon = self._addon(
            "aws-ebs-csi-driver", self.config.addon_versions.aws_ebs_csi_driver,
            pod_identity_associations=[aws.eks.AddonPodIdentityAssociationArgs(
                role_arn=ebs_role.arn, service_account="ebs-csi-controller-sa")],
            depends_on=self.node_groups)
        return [
            self._addon("coredns", self.config.addon_versions.coredns, depends_on=self.node_groups),
            self.ebs_csi_addon,
        ]

    def _kubernetes_target(self, name: str, region: str) -> None:
        # -- the Kubernetes provider later components receive ------------------------------
        self.kubeconfig = pulumi.Output.secret(pulumi.Output.all(
            self.eks.endpoint, self.eks.certificate_authority.data,
        ).apply(lambda args: json.dumps(self._kubeconfig(args[0], args[1]))))
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.addons),
        )
        self.update_kubeconfig_command = (
            f"aws eks update-kubeconfig --region {region} --name {self.cluster_name}"
        )
        # What the Kubernetes-side components receive: this cluster as a target, with its
        # identity (Pod Identity / IRSA roles) for the components that give pods AWS roles.
        self.target = KubernetesTarget(provider=self.provider, cluster_name=self.cluster_name,
                                       api_server_cidr=self.vpc_cidr, identity=self,
                                       zones=self.zones)

    # -- public helpers ------------------------------------------------------------------

    @property
    def issuer(self) -> pulumi.Output[str]:
        return self.eks.identities.apply(lambda ids: ids[0]["oidcs"][0]["issuer"])

    def service_account_role(
        self,
        name: str,
        namespace: str,
        service_account: str,
        *,
        managed_policies: Sequence[str] = (),
        policy: pulumi.Input[str] | None = None,
        via: str = "pod-identity",
        associate: bool = True,
        parent: pulumi.Resource,
    ) -> aws.iam.Role:
        """An IAM role for one Kubernetes service account of this cluster.

        `via="pod-identity"` (default) trusts EKS Pod Identity for this cluster and, unless
        `associate=False` (an EKS add-on makes its own association), creates the association;
        `via="irsa"` trusts this cluster's OIDC issuer for exactly that service account.
        `managed_policies` are AWS managed policy names; `policy` an inline JSON document.
        The role belongs to `parent`, so it carries the calling component's `service` tag."""
        if via == "pod-identity":
            trust = self.eks.arn.apply(
                lambda arn: iam.to_json(iam.pod_identity_trust(self.account, arn)))
        elif via == "irsa":
            trust = pulumi.Output.all(self.oidc_provider.arn, self.issuer).apply(
                lambda a: iam.to_json(iam.irsa_trust(a[0], a[1], namespace, service_account)))
        else:
            raise ValueError(f"via must be 'pod-identity' or 'irsa', not {via!r}")
        role = aws.iam.Role(
            name,
            description=f"{namespace}/{service_account} in {self.cluster_name}",
            assume_role_policy=trust,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for managed in managed_policies:
            aws.iam.RolePolicyAttachment(
                f"{name}-{managed.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=_AWS_POLICY.format(partition=self.partition, name=managed),
                opts=pulumi.ResourceOptions(parent=role),
            )
        if policy is not None:
            aws.iam.RolePolicy(name, role=role.id, policy=policy,
                               opts=pulumi.ResourceOptions(parent=role))
        if via == "pod-identity" and associate:
            aws.eks.PodIdentityAssociation(
                name,
                cluster_name=self.eks.name,
                namespace=namespace,
                service_account=service_account,
                role_arn=role.arn,
                opts=pulumi.ResourceOptions(parent=role),
            )
        return role

    # -- building blocks -----------------------------------------------------------------

    def _role(self, name: str, purpose: str, trust: dict, managed: Sequence[str]) -> aws.iam.Role:
        role = aws.iam.Role(name, description=purpose, assume_role_policy=iam.to_json(trust),
                            opts=pulumi.ResourceOptions(parent=self))
        for policy in managed:
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy}", role=role.name,
                policy_arn=_AWS_POLICY.format(partition=self.partition, name=policy),
                opts=pulumi.ResourceOptions(parent=role))
        return role

    def _access(self, name: str, principal_arn: str, access_policy: str) -> None:
        entry = aws.eks.AccessEntry(
            name, cluster_name=self.eks.name, principal_arn=principal_arn, type="STANDARD",
            opts=pulumi.ResourceOptions(parent=self.eks))
        aws.eks.AccessPolicyAssociation(
            name,
            cluster_name=self.eks.name,
            principal_arn=principal_arn,
            policy_arn=_ACCESS_POLICY.format(partition=self.partition, name=access_policy),
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=pulumi.ResourceOptions(parent=entry, depends_on=[entry]),
        )

    def _addon(self, addon: str, version: str, depends_on: Sequence[pulumi.Resource] = (),
               **kwargs) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{self.cluster_name}-{addon}",
            cluster_name=self.eks.name,
            addon_name=addon,
            addon_version=version,
            # The versions and settings here are the truth; overwrite drift on create and update.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self.eks, depends_on=list(depends_on)),
            **kwargs,
        )

    def _credit_modes(self, name: str) -> list[pulumi.Resource]:
        """The CPU credit mode of each burstable family the node groups launch (t4g, ...), as
        the account's default for the family in this region: a node group's launch template
        cannot carry it (see _node_group), and EC2 launches T4g/T3 `unlimited` otherwise, billed
        for CPU above the baseline. Standard throttles to the baseline instead. It is a
        regional account setting: it also applies to other instances of the family this
        account launches without a credit specification of their own."""
        return [aws.ec2.DefaultCreditSpecification(
                    f"{name}-{family}-credits", instance_family=family, cpu_credits=mode,
                    opts=pulumi.ResourceOptions(parent=self))
                for family, mode in sorted(self.config.credit_modes.items())]

    def _node_groups(self, name: str, pool_name: str, pool, network: NetworkRef,
                     before: Sequence[pulumi.Resource]
                     ) -> list[tuple[str, aws.eks.NodeGroup, int, int, int]]:
        resource_name = f"{name}-{pool_name}"
        instance_tags = dict(self._tags_for("cluster"))
        template = aws.ec2.LaunchTemplate(
            resource_name,
            description=f"Nodes of {self.cluster_name}/{pool_name}",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",  # IMDSv2 only
                # 1 hop: processes on the node reach IMDS, pods (one hop further) do not, so
                # they cannot use the node role; they get their own roles (Pod Identity, IRSA).
                http_put_response_hop_limit=1,
            ),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=pool.disk_size_gib,
                    volume_type="gp3",
                    encrypted="true",
                    delete_on_termination="true",
                ),
            )],
            # No credit specification: the template names no instance type (the node group
            # does), and the provider sends one only with a burstable instance type of the
            # template's own (terraform-provider-aws, expandRequestLaunchTemplateData). The
            # family's default says it instead (_credit_modes).
            # The cluster security group keeps node <-> control plane traffic working; the node
            # group's own is the identity the database admits.
            vpc_security_group_ids=[
                self.eks.vpc_config.cluster_security_group_id, self.node_security_group.id],
            # What EC2 launches from this template carries the standard tags too.
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind,
                    tags={**instance_tags, "Name": f"{self.cluster_name}-{pool_name}"})
                for kind in ("instance", "volume", "network-interface")
            ],
            user_data=node_config_user_data(pool.max_pods),
            tags={"Name": f"{self.cluster_name}-{pool_name}"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        if not pool.zonal:
            placements = [(resource_name, pool_name, list(network.private_subnet_ids),
                           pool.sizes_per_zone(1)[0])]
        else:
            zones = list(network.private_subnet_zones)
            if len(zones) != len(network.private_subnet_ids):
                raise ValueError(f"node group {pool_name} is zonal, but the network names no AZ "
                                 "for its private subnets (NetworkRef.private_subnet_zones)")
            placements = [(f"{resource_name}-{zone}", f"{pool_name}-{zone}", [subnet], sizes)
                          for zone, subnet, sizes in zip(
                              zones, network.private_subnet_ids,
                              pool.sizes_per_zone(len(zones)), strict=True)]
        return [(group_name, self._node_group(group_name, group_label, pool_name, pool, subnets,
                                              sizes, template, before), *sizes)
                for group_name, group_label, subnets, sizes in placements]

    def _node_group(self, resource_name: str, group_label: str, pool_name: str, pool,
                    subnets: list, sizes: tuple[int, int, int], template: aws.ec2.LaunchTemplate,
                    before: Sequence[pulumi.Resource]) -> aws.eks.NodeGroup:
        minimum, desired, maximum = sizes
        return aws.eks.NodeGroup(
            resource_name,
            cluster_name=self.eks.name,
            version=self.config.kubernetes_version,
            node_role_arn=self.node_role.arn,
            subnet_ids=subnets,
            ami_type=AMI_TYPES[pool.architecture],
            instance_types=list(pool.instance_types),
            capacity_type=pool.capacity_type,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=minimum, desired_size=desired, max_size=maximum),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)),
            labels={"node-group": pool_name, **pool.labels},
            taints=[aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value or None, effect=t.effect)
                    for t in pool.taints] or None,
            tags={"Name": f"{self.cluster_name}-{group_label}"},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(before),
                # After creation the cluster autoscaler owns the node count.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )

    def _kubeconfig(self, endpoint: str, ca_data: str) -> dict:
        user = {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "aws",
            "args": ["eks", "get-token", "--cluster-name", self.cluster_name,
                     "--region", self.region, "--output", "json"],
            "interactiveMode": "Never",
        }}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": self.cluster_name,
                          "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
            "users": [{"name": self.cluster_name, "user": user}],
            "contexts": [{"name": self.cluster_name,
                          "context": {"cluster": self.cluster_name, "user": self.cluster_name}}],
            "current-context": self.cluster_name,
        }

    def _cluster_services(self, name: str, network: NetworkRef) -> None:
        self.storage_class = k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="gp3",
                annotations={"storageclass.kubernetes.io/is-default-class": "true"},
            ),
            provisioner="ebs.csi.aws.com",
            # Tags on every volume it makes: the cluster, and the namespace of its claim (the
            # driver expands the template), by which AWS Backup finds what to snapshot
            # (components/backup.py).
            parameters={"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4",
                        "tagSpecification_1": f"{CLUSTER_TAG}={self.cluster_name}",
                        "tagSpecification_2": f"{NAMESPACE_TAG}={{{{ .PVCNamespace }}}}"},
            # Bind where the pod lands: an EBS volume lives in one AZ.
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Delete",
            opts=self.target.options(self, depends_on=[self.ebs_csi_addon]),
        )

        replicas = self.config.controller_replicas
        ha = replicas > 1
        lbc_role = self.service_account_role(
            f"{name}-load-balancer-controller", "kube-system", "aws-load-balancer-controller",
            policy=pulumi.Output.from_input(network.vpc_id).apply(
                lambda vpc_id: iam.to_json(iam.load_balancer_controller(self.partition, vpc_id))),
            parent=self)
        lb_tags = dict(self._tags_for("load-balancing"))
        # Vendored chart (charts/charts.yaml); the review renders these values with it.
        self.load_balancer_controller = self.target.helm_release(
            f"{name}-aws-load-balancer-controller", parent=self,
            release="aws-load-balancer-controller", chart="aws-load-balancer-controller",
            namespace="kube-system",
            values={
                "clusterName": self.cluster_name,
                "region": self.region,
                "vpcId": network.vpc_id,  # no IMDS for pods (hop limit 1): say it explicitly
                "replicaCount": replicas,
                "podDisruptionBudget": {"maxUnavailable": 1},
                # Its webhook fails closed on every Service: never all of it in one AZ.
                **({"affinity": self.target.apart(LBC_SELECTOR, replicas)} if ha else {}),
                "resources": pod_resources.values("aws-load-balancer-controller"),
                "serviceAccount": {"create": True, "name": "aws-load-balancer-controller"},
                # Targets are pod IPs (VPC CNI): traffic skips kube-proxy, and the injected
                # readiness gates plus deregistration delay give connection draining on rollout.
                "defaultTargetType": "ip",
                "enableShield": False,
                "enableWaf": False,
                "enableWafv2": False,
                # Load balancers it creates are tagged like everything else.
                "defaultTags": lb_tags,
                # Its IngressClass, pointing at the platform's params (below).
                **ingress_class_values(self.config.ingress_scheme),
            },
            depends_on=[lbc_role, *self.node_groups],
        )
        # Its webhook mutates every Service and fails closed: nothing else may race it.
        self.target.add_prerequisite(self.load_balancer_controller)
        # The golden path's shared ALB (SHARED_ALB_GROUP above), once the controller serves.
        if self.config.ingress_scheme != "none":
            params = shared_alb_params(self.config.ingress_scheme)
            shared_alb = k8s.apiextensions.CustomResource(
                f"{name}-shared-alb", api_version=params["apiVersion"], kind=params["kind"],
                metadata=params["metadata"], spec=params["spec"],
                opts=self.target.options(self, depends_on=[self.load_balancer_controller]))
            # Cluster-scoped: an admission controller installed later waits for it too.
            self.target.services.append(shared_alb)
        # Vendored chart (charts/charts.yaml); the review renders these values with it.
        self.metrics_server = self.target.helm_release(
            f"{name}-metrics-server", parent=self, release="metrics-server",
            chart="metrics-server", namespace="kube-system",
            values={
                "replicas": replicas,
                "podDisruptionBudget": {"enabled": True, "minAvailable": 1} if ha else {},
                **({"affinity": self.target.apart(METRICS_SERVER_SELECTOR, replicas)}
                   if ha else {}),
            },
        )
        self.cluster_autoscaler = self._cluster_autoscaler(name, replicas)
        self.cert_manager = self._cert_manager(name, replicas)
        # Its CRDs (Certificate, Issuer) and fail-closed webhooks: what comes later waits.
        self.target.add_prerequisite(self.cert_manager)
        # What the cluster itself installs; an admission controller installed later waits for
        # all of it, so none of it races that controller's webhooks.
        self.target.storage_class = self.storage_class
        self.target.services.extend([
            self.storage_class, self.load_balancer_controller, self.metrics_server,
            self.cluster_autoscaler, self.cert_manager])

    def _cert_manager(self, name: str, replicas: int) -> k8s.helm.v3.Release:
        """cert-manager: issues and renews the certificates the platform's own services serve
        (Vault's). Its CRDs come with the chart and stay when it is uninstalled."""
        namespace = self.target.platform_namespace(f"{name}-cert-manager", CERT_MANAGER_NAMESPACE,
                                            parent=self, pod_security="restricted")
        ha = replicas > 1

        def requests(memory: str) -> dict[str, Any]:
            return {"requests": {"cpu": "10m", "memory": memory}, "limits": {"memory": "256Mi"}}

        # Vendored chart (charts/charts.yaml); the review renders these values with it.
        return self.target.helm_release(
            f"{name}-cert-manager", parent=self, release="cert-manager", chart="cert-manager",
            namespace=CERT_MANAGER_NAMESPACE,
            values={
                "crds": {"enabled": True, "keep": True},
                "global": {"leaderElection": {"namespace": CERT_MANAGER_NAMESPACE}},
                "replicaCount": replicas,
                "podDisruptionBudget": {"enabled": True, "minAvailable": 1} if ha else {},
                "resources": requests("64Mi"),
                "webhook": {"replicaCount": replicas, "resources": requests("32Mi"),
                            "podDisruptionBudget": {"enabled": True, "minAvailable": 1}
                            if ha else {},
                            # Fails closed on certificates: never all of it in one AZ.
                            **({"affinity": self.target.apart(CERT_MANAGER_WEBHOOK_SELECTOR,
                                                              replicas)} if ha else {})},
                "cainjector": {"replicaCount": 1, "resources": requests("64Mi")},
                "startupapicheck": {"resources": requests("32Mi")},
            },
            depends_on=[namespace, *self.node_groups],
        )

    def _cluster_autoscaler(self, name: str, replicas: int) -> k8s.helm.v3.Release:
        """Cluster Autoscaler: adds nodes when pods are Pending for want of room, removes the
        ones it can empty, between each node group's minSize and maxSize (it owns desiredSize
        after creation). It finds the node groups by the tags EKS puts on their Auto Scaling
        groups, so a node group added to the config is scaled without touching this."""
        role = self.service_account_role(
            f"{name}-cluster-autoscaler", "kube-system", "cluster-autoscaler",
            policy=iam.to_json(iam.cluster_autoscaler(self.partition, self.region, self.account,
                                                      self.cluster_name)),
            parent=self)
        # Vendored chart (charts/charts.yaml); the review renders these values with it.
        return self.target.helm_release(
            f"{name}-cluster-autoscaler", parent=self, release="cluster-autoscaler",
            chart="cluster-autoscaler", namespace="kube-system",
            values={
                "cloudProvider": "aws",
                "awsRegion": self.region,  # no IMDS for pods (hop limit 1): say it explicitly
                # Default tags: k8s.io/cluster-autoscaler/enabled and .../<cluster name>.
                "autoDiscovery": {"clusterName": self.cluster_name},
                # The autoscaler's minor must match the cluster's (the chart ships 1.35).
                "image": {"tag": CLUSTER_AUTOSCALER_IMAGE_TAGS[self.config.kubernetes_version]},
                # Its leader-election lease is "cluster-autoscaler", the one name its role may
                # update: a second replica takes over within seconds, not after a reschedule.
                "fullnameOverride": "cluster-autoscaler",
                "replicaCount": replicas,
                # Never both in the AZ it would have to replace.
                **({"affinity": self.target.apart(AUTOSCALER_SELECTOR, replicas)}
                   if replicas > 1 else {}),
                "rbac": {"serviceAccount": {"create": True, "name": "cluster-autoscaler"}},
                "extraArgs": {
                    "logtostderr": True, "stderrthreshold": "info", "v": 2,
                    # Add the node that leaves the least CPU and memory idle.
                    "expander": "least-waste",
                    "balance-similar-node-groups": True,
                    # emptyDir is scratch space here; persistent data is on EBS volumes.
                    "skip-nodes-with-local-storage": False,
                },
                "resources": {"requests": {"cpu": "100m", "memory": "300Mi"},
                              "limits": {"memory": "600Mi"}},
                "securityContext": {"runAsNonRoot": True, "runAsUser": 65534,
                                    "runAsGroup": 65534, "fsGroup": 65534,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "containerSecurityContext": {"allowPrivilegeEscalation": False,
                                             "readOnlyRootFilesystem": True,
                                             "capabilities": {"drop": ["ALL"]}},
            },
            depends_on=[role, *self.node_groups],
        )
