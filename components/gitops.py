"""`ArgoBootstrap`: Argo CD and Argo Rollouts (pinned Helm releases), the cluster's metadata for
Argo in the gitops-bridge way, an AppProject per team, and the root Application (app-of-apps)
that watches this repository's `gitops/environments/<environment>/`.

After this, Git does the rest: `gitops/` (environment-agnostic: it reads the environment, account,
region, VPC and add-on flags from the cluster Secret's labels and annotations, as the gitops-bridge
pattern does) holds the Applications of each environment, and each team's services.

Argo CD is not exposed publicly (ClusterIP; `kubectl -n argocd port-forward svc/argocd-server
8443:443`). SSO-ready: with `platform:gitops.sso` set, OIDC login is configured, the local admin
is disabled and the IdP's admin group maps to `role:admin`; everyone else is read-only.
Dev syncs automatically with prune and self-heal; prod syncs by hand (promotion is a reviewed
change in Git, synced by a person), and team projects only inside the sync windows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, SecretStr

from components import pod_resources
from components.args import (
    ArgsModel,
    GroupName,
    HttpsUrl,
)
from components.kubernetes import KubernetesTarget
from components.tagging import PlatformComponent
from components.tenancy import Team, isolate_namespace

# -- arguments ----------------------------------------------------------------------------------

class SyncWindow(ArgsModel):
    """An Argo CD sync window (`platform:gitops.syncWindows[]`), in UTC."""

    kind: Literal["allow", "deny"] = Field(description="Allow or deny syncs in the window.")
    schedule: str = Field(pattern=r"^(\S+\s+){4}\S+$",
                          description="Cron schedule of the window's start, e.g. `0 9 * * 1-5`.")
    duration: str = Field(pattern=r"^\d+[hm]$", description="How long it lasts, e.g. 7h.")
    manual_sync: bool = Field(True, description="Allow manual syncs while the window denies.")


class Sso(ArgsModel):
    """OIDC single sign-on for Argo CD (`platform:gitops.sso`); the client secret is a secret:
    `pulumi config set --secret --path platform:gitops.sso.clientSecret <secret>`."""

    issuer: HttpsUrl = Field(description="OIDC issuer URL.")
    client_id: str = Field(min_length=1, max_length=200, description="OIDC client ID.")
    client_secret: SecretStr | None = Field(
        None, description="OIDC client secret (secret; set by an operator: SSO login fails, "
        "and `pulumi up` warns, until it is).")
    admin_group: GroupName = Field(description="IdP group that gets Argo CD's admin role.")


class GitOpsArgs(ArgsModel):
    """Argo CD, Argo Rollouts and the app-of-apps (`platform:gitops`)."""

    repo_url: HttpsUrl = Field(description="This repository, which Argo CD watches, e.g. "
                               "https://github.com/<org>/platform.git.")
    revision: str = Field("main", min_length=1, max_length=100,
                          description="Branch, tag or commit Argo CD follows.")
    ha: bool = Field(description="Argo CD highly available: two replicas of its API server, "
                     "repository server and ApplicationSet controller (one application "
                     "controller: a second one would only shard clusters).")
    redis_ha: bool = Field(
        False, description="Redis HA (three Redis servers with Sentinel behind three HAProxy "
        "pods, about 390m CPU and 480 MiB of requests) instead of one Redis. Redis is Argo CD's "
        "cache: losing it costs a cache rebuild (slower UI and syncs for minutes), not a "
        "failed deployment.")
    auto_sync: bool = Field(
        description="Sync automatically with prune and self-heal (dev). Off: every change is "
        "synced by hand (promotion), inside the sync windows (prod).")
    sync_windows: tuple[SyncWindow, ...] = Field(
        (), description="When the team projects may sync (UTC).")
    sso: Sso | None = Field(None, description="OIDC SSO; without it, the local admin (its "
                            "password in the `argocd-initial-admin-secret` Secret).")
    canary_pause_minutes: int | None = Field(
        None, ge=1, le=120,
        description="The longest a canary pauses at a step in this environment (dev: 1): its "
        "Applications patch each service's Rollout, so a change reaches the environment in "
        "minutes while prod keeps the pauses each spec asks for (the prod lock refuses it "
        "there). Not set: each spec's own pauses.")
    ui_url: HttpsUrl | None = Field(
        None, description="Where people reach Argo CD's UI (e.g. through the organisation's "
        "access proxy): the software catalog (`catalog-info.yaml`) links each service's "
        "Application there. Not set: no such link.")


NAMESPACE = "argocd"
IN_CLUSTER = "https://kubernetes.default.svc"
ARGO_API = "argoproj.io/v1alpha1"
GITOPS_PATH = "gitops"
PLATFORM_PROJECT = "platform"

# What a team may deploy into its namespaces: workloads through Rollouts, and what serves,
# scales, watches and feeds them. No cluster-scoped kinds, no RBAC, no quota changes.
TEAM_KINDS: tuple[tuple[str, str], ...] = (
    ("argoproj.io", "Rollout"), ("argoproj.io", "AnalysisTemplate"),
    ("", "Service"), ("", "ConfigMap"), ("", "ServiceAccount"),
    ("apps", "Deployment"), ("batch", "Job"), ("batch", "CronJob"),
    ("autoscaling", "HorizontalPodAutoscaler"), ("policy", "PodDisruptionBudget"),
    ("networking.k8s.io", "NetworkPolicy"), ("networking.k8s.io", "Ingress"),
    ("monitoring.coreos.com", "ServiceMonitor"), ("monitoring.coreos.com", "PrometheusRule"),
    ("secrets.hashicorp.com", "VaultDynamicSecret"), ("secrets.hashicorp.com", "VaultStaticSecret"),
)


def cluster_secret(environment: str, metadata: Mapping[str, str],
                   addons: Mapping[str, bool]) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) of the in-cluster cluster Secret: the gitops-bridge contract.
    Labels select (environment, `enable_<addon>`); annotations carry values."""
    labels = {"argocd.argoproj.io/secret-type": "cluster", "environment": environment,
              **{f"enable_{name}": str(on).lower() for name, on in addons.items()}}
    return labels, dict(metadata)


def argocd_values(config: GitOpsArgs, sso_secret: str | None) -> dict[str, Any]:
    """argo-cd chart values, read against the vendored chart (charts/charts.yaml); the tests
    render them and check that the chart reads every key set here."""
    replicas = 2 if config.ha else 1
    cm: dict[str, Any] = {
        "admin.enabled": "false" if config.sso else "true",
        "exec.enabled": "false",
        "timeout.reconciliation": "180s",
        "statusbadge.enabled": "false",
    }
    # A signed-in user outside every group below gets nothing (not even read: Applications
    # show manifests, and Secrets' keys in diffs).
    rbac = {"policy.default": "", "scopes": "[groups]"}
    if config.sso is not None:
        cm["oidc.config"] = (
            f"name: SSO\nissuer: {config.sso.issuer}\nclientID: {config.sso.client_id}\n"
            "clientSecret: $oidc.clientSecret\nrequestedScopes: [openid, profile, email, groups]\n")
        rbac["policy.csv"] = f"g, {config.sso.admin_group}, role:admin\n"
    return {
        "fullnameOverride": "argocd",
        "global": {"logging": {"format": "json"}},
        "configs": {
            "cm": cm,
            "rbac": rbac,
            "params": {"controller.diff.server.side": "true"},
            **({"secret": {"extra": {"oidc.clientSecret": sso_secret}}} if sso_secret else {}),
        },
        "redisSecretInit": {"resources": pod_resources.values("argocd.redisSecretInit")},
        **({"redis-ha": {
            "enabled": True,
            "redis": {"resources": pod_resources.values("argocd.redis-ha.redis")},
            "sentinel": {"resources": pod_resources.values("argocd.redis-ha.sidecar")},
            "splitBrainDetection": {"resources": pod_resources.values("argocd.redis-ha.sidecar")},
            "init": {"resources": pod_resources.values("argocd.redis-ha.sidecar")},
            "haproxy": {"resources": pod_resources.values("argocd.redis-ha.haproxy"),
                        "init": {"resources": pod_resources.values("argocd.redis-ha.sidecar")}},
        }} if config.redis_ha else {
            "redis-ha": {"enabled": False},
            "redis": {"resources": pod_resources.values("argocd.redis")}}),
        # The application controller exports argocd_app_info and argocd_app_sync_total, which
        # the Argo CD alerts and SLO read: its metrics Service and ServiceMonitor are off by
        # default in the chart.
        # One application controller: a second one only shards clusters (the chart sets
        # ARGOCD_CONTROLLER_REPLICAS), and Argo CD here manages one; its StatefulSet restarts it.
        "controller": {"replicas": 1,
                       "resources": pod_resources.values("argocd.controller"), "metrics": {
            "enabled": True, "serviceMonitor": {"enabled": True,
                                                "additionalLabels": {"team": "platform"}}}},
        "server": {"replicas": replicas, "service": {"type": "ClusterIP"},
                   "ingress": {"enabled": False},
                   "resources": pod_resources.values("argocd.server")},
        "repoServer": {"replicas": replicas,
                       "resources": pod_resources.values("argocd.repoServer"),
                       "copyutil": {"resources": pod_resources.values(
                           "argocd.repoServer.copyutil")}},
        "applicationSet": {"replicas": replicas,
                           "resources": pod_resources.values("argocd.applicationSet")},
        "dex": {"enabled": False},  # OIDC straight to the IdP
        "notifications": {"enabled": True,
                          "resources": pod_resources.values("argocd.notifications")},
    }


def rollouts_values(config: GitOpsArgs) -> dict[str, Any]:
    """argo-rollouts chart values (controller.replicas, dashboard.enabled)."""
    return {"controller": {"replicas": 2 if config.ha else 1,
                           "resources": pod_resources.values("argo-rollouts.controller")},
            "dashboard": {"enabled": False}}


def team_project(team: Team, config: GitOpsArgs) -> dict[str, Any]:
    """The team's AppProject: its repositories, its namespaces, its kinds, nothing more."""
    kinds: dict[str, list[str]] = {}
    for group, kind in TEAM_KINDS:
        kinds.setdefault(group, []).append(kind)
    spec: dict[str, Any] = {
        "description": f"Team {team.name}: its services, in its namespaces only",
        "sourceRepos": [config.repo_url, *team.repos],
        "destinations": [{"server": IN_CLUSTER, "namespace": ns} for ns in team.namespaces],
        "clusterResourceWhitelist": [],
        "namespaceResourceWhitelist": [{"group": g, "kind": k} for g, k in TEAM_KINDS],
        "orphanedResources": {"warn": True},
        "sourceNamespaces": [],
    }
    if config.sync_windows:
        spec["syncWindows"] = [
            {"kind": w.kind, "schedule": w.schedule, "duration": w.duration,
             "applications": ["*"], "manualSync": w.manual_sync, "timeZone": "UTC"}
            for w in config.sync_windows]
    return {"apiVersion": ARGO_API, "kind": "AppProject",
            "metadata": {"name": team.name, "namespace": NAMESPACE,
                         "labels": {"team": team.name}},
            "spec": spec}


def platform_project(config: GitOpsArgs, teams: Sequence[Team],
                     monitoring_namespace: str = "monitoring") -> dict[str, Any]:
    """The root app's project: this repository only, Applications into argocd only, and the
    delivery facts' ConfigMap into the monitoring namespace (gitops/platform/dora/)."""
    return {"apiVersion": ARGO_API, "kind": "AppProject",
            "metadata": {"name": PLATFORM_PROJECT, "namespace": NAMESPACE,
                         "labels": {"team": "platform"}},
            "spec": {
                "description": "The app-of-apps (Applications and ApplicationSets of "
                               "gitops/environments/<env>) and the platform apps of "
                               "gitops/platform/",
                "sourceRepos": [config.repo_url],
                "destinations": [{"server": IN_CLUSTER, "namespace": NAMESPACE},
                                 {"server": IN_CLUSTER, "namespace": monitoring_namespace}],
                "clusterResourceWhitelist": [
                    {"group": "argoproj.io", "kind": "ClusterAnalysisTemplate"}],
                "namespaceResourceWhitelist": [
                    {"group": "argoproj.io", "kind": "Application"},
                    {"group": "argoproj.io", "kind": "ApplicationSet"},
                    {"group": "", "kind": "ConfigMap"}],
            }}


def locked_default_project() -> dict[str, Any]:
    """Argo CD's `default` AppProject, which it creates allowing every repository, cluster,
    namespace and kind: emptied, so an Application that names no project of the platform's can
    deploy nothing (each team's and the root app name their own)."""
    return {"apiVersion": ARGO_API, "kind": "AppProject",
            "metadata": {"name": "default", "namespace": NAMESPACE,
                         "labels": {"team": "platform"},
                         # Take the fields over from Argo CD's own manager (server-side apply).
                         "annotations": {"pulumi.com/patchForce": "true"}},
            "spec": {"description": "Locked: no sources, no destinations, no kinds",
                     "sourceRepos": [], "destinations": [],
                     "clusterResourceWhitelist": [], "namespaceResourceWhitelist": []}}


def root_application(config: GitOpsArgs, environment: str) -> dict[str, Any]:
    sync: dict[str, Any] = {"syncOptions": ["ServerSideApply=true"],
                            "retry": {"limit": 5, "backoff": {"duration": "10s",
                                                              "factor": 2,
                                                              "maxDuration": "3m"}}}
    if config.auto_sync:
        sync["automated"] = {"prune": True, "selfHeal": True}
    return {"apiVersion": ARGO_API, "kind": "Application",
            "metadata": {"name": "root", "namespace": NAMESPACE,
                         "labels": {"team": "platform"},
                         # The Applications it creates are deleted with it, not orphaned.
                         "finalizers": ["resources-finalizer.argocd.argoproj.io"]},
            "spec": {
                "project": PLATFORM_PROJECT,
                "source": {"repoURL": config.repo_url, "targetRevision": config.revision,
                           "path": f"{GITOPS_PATH}/environments/{environment}"},
                "destination": {"server": IN_CLUSTER, "namespace": NAMESPACE},
                "syncPolicy": sync,
            }}


class ArgoBootstrap(PlatformComponent):
    """Argo CD, Argo Rollouts, the cluster metadata, the projects and the root Application."""

    service = "gitops"
    type_token = "platform:index:ArgoBootstrap"

    def __init__(self, name: str, config: GitOpsArgs, environment: str, teams: Sequence[Team],
                 target: KubernetesTarget, metadata: Mapping[str, pulumi.Input[str]],
                 addons: Mapping[str, bool], monitoring_namespace: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__(name, opts)
        self.namespace = target.platform_namespace(
            f"{name}-argocd", NAMESPACE, parent=self, pod_security="baseline")
        in_namespace = target.options(self, depends_on=[self.namespace])
        # Argo CD is reached by port-forward only; it calls out (Git, the API server).
        isolate_namespace(f"{name}-argocd", NAMESPACE, monitoring_namespace, in_namespace)
        sso_secret = (pulumi.Output.secret(config.sso.client_secret.get_secret_value())
                      if config.sso and config.sso.client_secret else None)
        if config.sso and config.sso.client_secret is None:
            pulumi.log.warn(
                "platform:gitops.sso.clientSecret is not set: SSO login to Argo CD fails until "
                "it is (`pulumi config set --secret --path platform:gitops.sso.clientSecret "
                "<secret>`)", resource=self)
        # Vendored charts (charts/charts.yaml).
        self.argocd = target.helm_release(
            f"{name}-argo-cd", parent=self, release="argocd", chart="argo-cd",
            namespace=NAMESPACE,
            values=argocd_values(config, sso_secret), timeout=900, depends_on=[self.namespace])
        self.rollouts = target.helm_release(
            f"{name}-argo-rollouts", parent=self, release="argo-rollouts",
            chart="argo-rollouts", namespace=NAMESPACE,
            values=rollouts_values(config), depends_on=[self.namespace])

        labels, annotations = cluster_secret(environment, {}, addons)
        k8s.core.v1.Secret(
            f"{name}-cluster-metadata",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="in-cluster", namespace=NAMESPACE, labels=labels,
                annotations={**annotations, **metadata}),
            string_data={"name": "in-cluster", "server": IN_CLUSTER,
                         "config": '{"tlsClientConfig": {"insecure": false}}'},
            opts=in_namespace)

        after_argocd = target.options(self, depends_on=[self.argocd])
        projects = [platform_project(config, teams, monitoring_namespace),
                    *(team_project(t, config) for t in teams)]
        self.projects = {}
        for body in projects:
            self.projects[body["metadata"]["name"]] = k8s.apiextensions.CustomResource(
                f"{name}-project-{body['metadata']['name']}", api_version=body["apiVersion"],
                kind=body["kind"], metadata=body["metadata"], spec=body["spec"],
                opts=after_argocd)
        locked = locked_default_project()
        self.default_project = k8s.apiextensions.CustomResourcePatch(
            f"{name}-project-default-locked", api_version=locked["apiVersion"],
            kind=locked["kind"], metadata=locked["metadata"], spec=locked["spec"],
            opts=after_argocd)
        root = root_application(config, environment)
        self.root = k8s.apiextensions.CustomResource(
            f"{name}-root-app", api_version=root["apiVersion"], kind=root["kind"],
            metadata=root["metadata"], spec=root["spec"],
            opts=target.options(self, depends_on=[self.argocd,
                                                       self.projects[PLATFORM_PROJECT]]))
