"""`AdmissionControl`: OPA Gatekeeper (a pinned Helm release) and the platform's admission
policies, as ConstraintTemplates whose Rego lives in `components/rego/` and one constraint each;
and signed images: the Sigstore policy-controller (a pinned Helm release) with a
ClusterImagePolicy requiring a cosign signature of the organisation's CI (keyless) or key on
every image of the approved registries, in the team namespaces (warn in dev, enforce in prod).

The policies apply to team namespaces only (selected by the team label `Tenancy` puts on them);
the platform's own namespaces are excluded by name as well, so node-exporter, the CNI and the
charts keep running. A violation warns in dev and is denied in prod (`enforcement`). An object
may be exempted from one policy until a date, by an annotation (`lib.rego`): the exemption stops
being honoured on that date, and one dated further ahead than `maxExemptionDays` never is.

The first `pulumi up` on an empty cluster: a constraint's kind exists only once Gatekeeper has
processed its template. The templates depend on the release (installed with `atomic`, so its
webhook and CRDs are up) and carry `pulumi.com/waitFor: jsonpath={.status.created}=true`, which
holds the update until Gatekeeper reports the constraint CRD created; each constraint depends
on its template. So the order is release, template, created, constraint, in one update.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, model_validator

from components import iam, pod_resources
from components.args import (
    ArgsModel,
    CalendarDate,
    Capability,
    GitHubHandle,
    HttpsUrl,
    Invalid,
    LabelKey,
    RegistryPrefix,
    Slug,
)
from components.cluster import (
    FREE_ALB_ANNOTATIONS,
    INGRESS_CLASS,
    SHARED_ALB_ANNOTATIONS,
)
from components.kubernetes import PLATFORM_NAMESPACES, KubernetesTarget
from components.tagging import PlatformComponent
from components.wellknown import SIGSTORE_INCLUDE_LABEL, TEAM_LABEL
from platform_facts import podsecurity

if TYPE_CHECKING:
    from components.tenancy import Team

# -- arguments ----------------------------------------------------------------------------------

# The admission policies' ids (POLICIES below; a test keeps them equal).
ADMISSION_POLICY_IDS = ("non-root", "no-privilege-escalation", "drop-capabilities", "resources",
                        "allowed-images", "required-labels", "sandbox", "host-isolation",
                        "monitor-scope", "ingress", "probes", "team-telemetry")


class Exemption(ArgsModel):
    """One time-limited exemption (`platform:security.gatekeeper.exemptions[]`)."""

    id: Slug = Field(description="What the object's annotation names.")
    policy: Literal[ADMISSION_POLICY_IDS] = Field(  # type: ignore[valid-type]
        description="The one admission policy it exempts from.")
    namespace: Slug = Field(description="The team namespace it holds in.")
    until: CalendarDate = Field(description="Last day is the day before (00:00 UTC); at most "
                                "maxExemptionDays ahead (the config refuses later dates, and "
                                "the policies would not honour them).")
    approved_by: GitHubHandle = Field(description="Who approved it (one of exemptionApprovers).")
    reason: str = Field(min_length=10, max_length=500, description="Why, and what ends it.")


def horizon(days: int) -> str:
    """The latest date an exemption (or a prod exception) may name, from today (UTC)."""
    import datetime

    today = datetime.datetime.now(datetime.UTC).date()
    return (today + datetime.timedelta(days=days)).isoformat()


class Gatekeeper(ArgsModel):
    """OPA Gatekeeper and the platform's admission policies (`platform:security.gatekeeper`).
    The policies apply to team namespaces only; exemptions are annotations that expire
    (docs/security.md, "Admission policies")."""

    replicas: int = Field(ge=1, le=5, description="Admission webhook replicas.")
    enforcement: Literal["warn", "deny"] = Field(
        description="What a violation does in team namespaces: `warn` admits and warns, `deny` "
        "rejects.")
    fail_closed: bool = Field(
        description="Reject team workloads while the webhook is unreachable (failurePolicy "
        "Fail) instead of admitting them unchecked. The platform's namespaces are exempt either "
        "way, so the cluster can always heal.")
    allowed_registries: tuple[RegistryPrefix, ...] = Field(
        min_length=1, description="Image registries (prefixes ending in '/') team images may "
        "come from.")
    require_digest: bool = Field(description="Team images must be pinned by digest.")
    probes_required: bool = Field(
        description="Deployments and Rollouts must declare readiness and liveness probes.")
    allowed_capabilities: tuple[Capability, ...] = Field(
        (), description="Capabilities a container may add back after dropping ALL.")
    required_labels: tuple[LabelKey, ...] = Field(
        ("team", "app.kubernetes.io/name"), min_length=1,
        description="Labels every team object and pod template carries.")
    max_exemption_days: int = Field(
        30, ge=1, le=90, description="How far ahead an exemption's date may be; a later date is "
        "not honoured.")
    exemption_approvers: tuple[GitHubHandle, ...] = Field(
        (), description="Who may approve an exemption (each entry of `exemptions` names one); "
        "they review the stack files (CODEOWNERS).")
    exemptions: tuple[Exemption, ...] = Field(
        (), description="Time-limited exemptions from one admission policy in one team "
        "namespace. An object opts in with the annotation `exempt.platform.example.org/<policy>: "
        "<id>`; a team cannot grant or extend one from its own manifests.")

    @model_validator(mode="after")
    def _exemptions_approved(self) -> Gatekeeper:
        ids = [e.id for e in self.exemptions]
        for index, exemption in enumerate(self.exemptions):
            if ids.count(exemption.id) > 1:
                raise Invalid(f"exemptions[{index}].id", exemption.id, "is used twice; allowed: "
                           "one entry per id")
            latest = horizon(self.max_exemption_days)
            if exemption.until > latest:
                raise Invalid(f"exemptions[{index}].until", exemption.until,
                           f"is more than maxExemptionDays ({self.max_exemption_days}) ahead; "
                           f"allowed: {latest} at the latest")
            if exemption.approved_by not in self.exemption_approvers:
                raise Invalid(f"exemptions[{index}].approvedBy", exemption.approved_by,
                           "is not an exemption approver; allowed: "
                           + (", ".join(self.exemption_approvers) or "none configured "
                              "(exemptionApprovers)"))
        return self


class ImageSignatures(ArgsModel):
    """Signed images: the Sigstore policy-controller and a ClusterImagePolicy over the approved
    registries (`platform:security.imageSignatures`). Set exactly one of
    `keylessSubjectRegExp` (cosign keyless: the identity of the organisation's CI) and
    `publicKey` (a cosign public key)."""

    mode: Literal["warn", "enforce"] = Field(
        description="An unsigned image in a team namespace: `warn` admits it with a warning, "
        "`enforce` rejects it.")
    replicas: int = Field(ge=1, le=5, description="Webhook replicas.")
    keyless_issuer: HttpsUrl = Field(
        "https://token.actions.githubusercontent.com",
        description="OIDC issuer of the signing identity (GitHub Actions by default).")
    keyless_subject_reg_exp: str | None = Field(
        None, min_length=1, max_length=300,
        description="Regular expression the signing certificate's subject must match: the "
        "golden path's service CI, a reusable workflow, signs as itself, e.g. "
        "`^https://github\\.com/<org>/platform/\\.github/workflows/service-ci\\.yml"
        "@refs/heads/main$`.")
    public_key: str | None = Field(
        None, description="A cosign public key (PEM), instead of keyless signing.")

    @model_validator(mode="after")
    def _one_authority(self) -> ImageSignatures:
        if (self.keyless_subject_reg_exp is None) == (self.public_key is None):
            raise Invalid("keylessSubjectRegExp", self.keyless_subject_reg_exp,
                       "set exactly one of keylessSubjectRegExp and publicKey")
        if self.keyless_subject_reg_exp is not None:
            try:
                re.compile(self.keyless_subject_reg_exp)
            except re.error as error:
                raise Invalid("keylessSubjectRegExp", self.keyless_subject_reg_exp,
                           f"is not a regular expression ({error})") from None
            if not self.keyless_subject_reg_exp.startswith("^"):
                raise Invalid("keylessSubjectRegExp", self.keyless_subject_reg_exp,
                           "must be anchored with ^ (an unanchored pattern matches forks)")
        if self.public_key is not None and not self.public_key.strip().startswith(
                "-----BEGIN PUBLIC KEY-----"):
            raise Invalid("publicKey", self.public_key[:30], "is not a PEM public key "
                       "(-----BEGIN PUBLIC KEY-----)")
        return self


class AdmissionArgs(ArgsModel):
    """Admission control (`platform:security`)."""

    gatekeeper: Gatekeeper = Field(description="Gatekeeper and its policies.")
    image_signatures: ImageSignatures = Field(description="Signed images (Sigstore).")


REGO_DIR = Path(__file__).parent / "rego"
NAMESPACE = "gatekeeper-system"
SIGSTORE_NAMESPACE = "cosign-system"
# The chart's webhook service account (policy-controller.fullname + "-webhook").
SIGSTORE_SERVICE_ACCOUNT = "policy-controller-webhook"
FULCIO_URL = "https://fulcio.sigstore.dev"
REKOR_URL = "https://rekor.sigstore.dev"
TEMPLATE_API = "templates.gatekeeper.sh/v1"
CONSTRAINT_API = "constraints.gatekeeper.sh/v1beta1"
EXEMPTION_PREFIX = "exempt.platform.example.org/"

# Everything that makes pods: their own kinds and every controller with a pod template.
POD_MAKERS = (
    {"apiGroups": [""], "kinds": ["Pod", "ReplicationController"]},
    {"apiGroups": ["apps"], "kinds": ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]},
    {"apiGroups": ["batch"], "kinds": ["Job", "CronJob"]},
    {"apiGroups": ["argoproj.io"], "kinds": ["Rollout"]},
)
# The ingress policy also reads Services: none may be a load balancer or node port of its own.
INGRESSES = ({"apiGroups": ["networking.k8s.io"], "kinds": ["Ingress"]},
             {"apiGroups": [""], "kinds": ["Service"]})



def ingress_hosts(teams: Sequence[Team]) -> dict[str, list[str]]:
    """The hosts each team namespace's Ingresses may serve (the ingress policy's parameter)."""
    return {namespace: list(team.hosts) for team in teams for namespace in team.namespaces}


MONITORS = (
    {"apiGroups": ["monitoring.coreos.com"], "kinds": ["ServiceMonitor", "PodMonitor", "Probe"]},
)
TELEMETRY = (
    {"apiGroups": ["monitoring.coreos.com"], "kinds": ["PrometheusRule"]},
    {"apiGroups": ["argoproj.io"], "kinds": ["AnalysisTemplate", "Rollout"]},
)
# The severities Alertmanager routes (components/observability.py: critical pages, warning
# files a ticket) and `info`, which it routes nowhere.
ALERT_SEVERITIES = ("critical", "warning", "info")
LONG_RUNNING = (
    {"apiGroups": ["apps"], "kinds": ["Deployment"]},
    {"apiGroups": ["argoproj.io"], "kinds": ["Rollout"]},
)

_STRINGS = {"type": "array", "items": {"type": "string"}}
_EXEMPTION_DAYS = {
    "maxExemptionDays": {"type": "integer", "minimum": 1},
    "exemptions": {"type": "object", "additionalProperties": {"type": "object", "properties": {
        "namespace": {"type": "string"}, "until": {"type": "string"}}}},
}


@dataclass(frozen=True)
class Policy:
    """One admission policy: a ConstraintTemplate (Rego in `rego/<file>`) and its constraint."""

    id: str  # the constraint's name and the exemption annotation's suffix
    kind: str  # the constraint kind Gatekeeper creates from the template
    file: str
    description: str
    parameters: dict[str, Any]  # openAPIV3 properties of the constraint's parameters
    values: Callable[[Gatekeeper], dict[str, Any]]
    kinds: tuple[dict[str, Any], ...] = POD_MAKERS
    enabled: Callable[[Gatekeeper], bool] = lambda gatekeeper: True
    # Parameters that come from the teams' config (merged into `values`).
    team_values: Callable[[Sequence[Team]], dict[str, Any]] | None = None

    @property
    def template_name(self) -> str:
        return self.kind.lower()

    @property
    def rego(self) -> str:
        return (REGO_DIR / self.file).read_text()

    @property
    def exemption_annotation(self) -> str:
        return EXEMPTION_PREFIX + self.id


def _days(gatekeeper: Gatekeeper) -> dict[str, Any]:
    return {"maxExemptionDays": gatekeeper.max_exemption_days}


def exemptions_of(policy_id: str, gatekeeper: Gatekeeper) -> dict[str, dict[str, str]]:
    """The stack config's exemptions from one policy, as its constraint's parameter."""
    return {e.id: {"namespace": e.namespace, "until": e.until}
            for e in gatekeeper.exemptions if e.policy == policy_id}


POLICIES: tuple[Policy, ...] = (
    Policy("non-root", "K8sPlatformNonRoot", "non_root.rego",
           "Containers run as a non-root user.", dict(_EXEMPTION_DAYS), _days),
    Policy("no-privilege-escalation", "K8sPlatformNoPrivilegeEscalation",
           "no_privilege_escalation.rego",
           "Containers set allowPrivilegeEscalation: false.", dict(_EXEMPTION_DAYS), _days),
    Policy("drop-capabilities", "K8sPlatformCapabilities", "capabilities.rego",
           "Containers drop ALL capabilities and add back only allowed ones.",
           {**_EXEMPTION_DAYS, "allowedCapabilities": _STRINGS},
           lambda g: {**_days(g), "allowedCapabilities": list(g.allowed_capabilities)}),
    Policy("resources", "K8sPlatformResources", "resources.rego",
           "Containers request CPU and memory and limit memory.", dict(_EXEMPTION_DAYS), _days),
    Policy("allowed-images", "K8sPlatformImages", "images.rego",
           "Images come from approved registries (by digest where required).",
           {**_EXEMPTION_DAYS, "registries": _STRINGS, "requireDigest": {"type": "boolean"}},
           lambda g: {**_days(g), "registries": list(g.allowed_registries),
                      "requireDigest": g.require_digest}),
    Policy("required-labels", "K8sPlatformLabels", "labels.rego",
           "Objects and their pod templates carry the required labels.",
           {**_EXEMPTION_DAYS, "labels": _STRINGS},
           lambda g: {**_days(g), "labels": list(g.required_labels)}),
    Policy("sandbox", "K8sPlatformSandbox", "sandbox.rego",
           "Pods keep the container sandbox: no Unconfined seccomp or AppArmor, no Unmasked "
           "/proc, only safe sysctls, only volume types without storage of their own.",
           {**_EXEMPTION_DAYS, "safeSysctls": _STRINGS, "volumeTypes": _STRINGS},
           lambda g: {**_days(g), "safeSysctls": sorted(podsecurity.SAFE_SYSCTLS),
                      "volumeTypes": sorted(podsecurity.RESTRICTED_VOLUMES)}),
    Policy("host-isolation", "K8sPlatformHostIsolation", "host_isolation.rego",
           "No host namespaces, hostPath volumes, host ports or privileged containers.",
           dict(_EXEMPTION_DAYS), _days),
    Policy("monitor-scope", "K8sPlatformMonitorScope", "monitor_scope.rego",
           "ServiceMonitors, PodMonitors and Probes watch their own namespace, read no file "
           "of Prometheus's (its token) and do not honour the target's labels.",
           dict(_EXEMPTION_DAYS), _days, kinds=MONITORS),
    Policy("ingress", "K8sPlatformIngress", "ingress.rego",
           "Ingresses use the shared load balancer, for hosts their team owns, with its fixed "
           "settings; no Service makes a load balancer or a node port of its own.",
           {**_EXEMPTION_DAYS, "ingressClassName": {"type": "string"},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "freeAnnotations": _STRINGS,
            "hosts": {"type": "object", "additionalProperties": _STRINGS}},
           lambda g: {**_days(g), "ingressClassName": INGRESS_CLASS,
                      "annotations": dict(SHARED_ALB_ANNOTATIONS),
                      "freeAnnotations": list(FREE_ALB_ANNOTATIONS)},
           kinds=INGRESSES, team_values=lambda teams: {"hosts": ingress_hosts(teams)}),
    Policy("team-telemetry", "K8sPlatformTeamTelemetry", "telemetry.rego",
           "A team's PrometheusRules alert as its own team with a routed severity and name no "
           "other team or namespace; its AnalysisTemplates query its own namespace's series "
           "only; its Rollouts pass their analysis no other namespace.",
           {**_EXEMPTION_DAYS, "severities": _STRINGS,
            "teams": {"type": "object", "additionalProperties": {"type": "string"}}},
           lambda g: {**_days(g), "severities": list(ALERT_SEVERITIES)},
           kinds=TELEMETRY,
           team_values=lambda teams: {"teams": {namespace: t.name for t in teams
                                                for namespace in t.namespaces}}),
    Policy("probes", "K8sPlatformProbes", "probes.rego",
           "Deployments and Rollouts declare readiness and liveness probes.",
           dict(_EXEMPTION_DAYS), _days, kinds=LONG_RUNNING,
           enabled=lambda g: g.probes_required),
)


def library() -> str:
    return (REGO_DIR / "lib.rego").read_text()


def constraint_template(policy: Policy) -> dict[str, Any]:
    return {
        "apiVersion": TEMPLATE_API,
        "kind": "ConstraintTemplate",
        "metadata": {
            "name": policy.template_name,
            "labels": {"team": "platform"},
            "annotations": {
                "description": policy.description,
                # Hold the update until Gatekeeper has created the constraint kind.
                "pulumi.com/waitFor": "jsonpath={.status.created}=true",
            },
        },
        "spec": {
            "crd": {"spec": {
                "names": {"kind": policy.kind},
                "validation": {"openAPIV3Schema": {"type": "object",
                                                   "properties": policy.parameters}},
            }},
            # Rego v1 (`code`, Gatekeeper >= 3.19): the syntax the OPA Gatekeeper embeds parses
            # by default, and the one the tests run on real OPA (tests/opa.py).
            "targets": [{"target": "admission.k8s.gatekeeper.sh", "code": [{
                "engine": "Rego",
                "source": {"version": "v1", "rego": policy.rego, "libs": [library()]}}]}],
        },
    }


def parameters(policy: Policy, gatekeeper: Gatekeeper,
               teams: Sequence[Team] = ()) -> dict[str, Any]:
    """A policy's constraint parameters: its own values, the teams' (hosts) where it takes
    them, and the exemptions the stack config grants from it."""
    return {**policy.values(gatekeeper),
            **(policy.team_values(teams) if policy.team_values else {}),
            "exemptions": exemptions_of(policy.id, gatekeeper)}


def constraint(policy: Policy, gatekeeper: Gatekeeper, excluded: Sequence[str],
               teams: Sequence[Team] = ()) -> dict[str, Any]:
    return {
        "apiVersion": CONSTRAINT_API,
        "kind": policy.kind,
        "metadata": {"name": policy.id, "labels": {"team": "platform"},
                     "annotations": {"description": policy.description,
                                     "exemption-annotation": policy.exemption_annotation}},
        "spec": {
            "enforcementAction": gatekeeper.enforcement,
            "match": {
                "kinds": [dict(k) for k in policy.kinds],
                "namespaceSelector": {"matchExpressions": [
                    {"key": TEAM_LABEL, "operator": "Exists"}]},
                "excludedNamespaces": sorted(excluded),
            },
            "parameters": parameters(policy, gatekeeper, teams),
        },
    }


# The pod labels of the fail-closed webhooks' servers (their Services select them so).
GATEKEEPER_SELECTOR = {"control-plane": "controller-manager", "gatekeeper.sh/operation": "webhook",
                       "release": "gatekeeper"}
SIGSTORE_WEBHOOK_SELECTOR = {"app.kubernetes.io/name": "policy-controller",
                             "control-plane": "policy-controller-webhook"}


def helm_values(gatekeeper: Gatekeeper, excluded: Sequence[str],
                target: KubernetesTarget) -> dict[str, Any]:
    """Gatekeeper chart values, read against the vendored chart's values.yaml and validating
    webhook template (charts/charts.yaml); the tests render them and check that the chart
    reads every key set here. `target`: the cluster, for the webhook's spread over its AZs."""
    ha = gatekeeper.replicas > 1
    return {
        "replicas": gatekeeper.replicas,
        "auditInterval": 60,
        # Audit only the kinds the constraints match (every constraint names its kinds), not
        # every kind the API serves: a fifth of the list requests, and of the audit log they
        # write to the control-plane log (platform_facts/prices.json, controlPlaneAudit).
        "auditMatchKindOnly": True,
        "constraintViolationsLimit": 50,
        "logDenies": True,
        "validatingWebhookFailurePolicy": "Fail" if gatekeeper.fail_closed else "Ignore",
        # The webhook never sees the platform's namespaces: a Gatekeeper outage (failing
        # closed) cannot stop kube-system or the add-ons from healing.
        "validatingWebhookExemptNamespacesLabels": {
            "kubernetes.io/metadata.name": sorted(excluded)},
        "pdb": {"controllerManager": {"minAvailable": 1 if ha else 0}},
        "controllerManager": {"resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                            "limits": {"memory": "512Mi"}},
                              # Fails closed: never all of it in one AZ (the chart's
                              # default only prefers other nodes).
                              **({"affinity": target.apart(GATEKEEPER_SELECTOR,
                                                           gatekeeper.replicas)} if ha else {})},
        "audit": {"resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                "limits": {"memory": "512Mi"}}},
        # Our namespace object is created by Pulumi, labelled already (see below).
        "postInstall": {"labelNamespace": {"enabled": False},
                        "resources": pod_resources.values("gatekeeper.postInstall")},
        "crds": {"resources": pod_resources.values("gatekeeper.crds")},
        "disabledBuiltins": ["{http.send}"],
    }


# What the golden path's service CI (.github/workflows/service-ci.yml) attests beside its
# signature, by cosign predicate type: an image without both, signed by the same authority, is
# not admitted (the build that skipped its SBOM or its provenance did not come from that CI).
REQUIRED_ATTESTATIONS = {"sbom": "spdxjson", "provenance": "slsaprovenance1"}


def image_policy(signatures: ImageSignatures, registries: Sequence[str]) -> dict[str, Any]:
    """The ClusterImagePolicy (policy.sigstore.dev/v1beta1): every image of an approved
    registry carries a cosign signature of the configured authority, and its SBOM and
    provenance attestations, signed by it too."""
    if signatures.public_key is not None:
        authority: dict[str, Any] = {"name": "organisation-key", "key": {
            "data": signatures.public_key.strip() + "\n", "hashAlgorithm": "sha256"}}
    else:
        authority = {
            "name": "organisation-ci",
            "keyless": {"url": FULCIO_URL, "identities": [{
                "issuer": signatures.keyless_issuer,
                "subjectRegExp": signatures.keyless_subject_reg_exp}]},
            "ctlog": {"url": REKOR_URL},
        }
    # Cosign's classic layout (signature and attestations as tags beside the image), which the
    # CI writes (`--new-bundle-format=false`): said explicitly, it is also the default.
    authority["signatureFormat"] = "legacy"
    authority["attestations"] = [{"name": name, "predicateType": predicate}
                                 for name, predicate in REQUIRED_ATTESTATIONS.items()]
    return {
        "apiVersion": "policy.sigstore.dev/v1beta1",
        "kind": "ClusterImagePolicy",
        "metadata": {"name": "signed-by-organisation", "labels": {"team": "platform"}},
        "spec": {
            "images": [{"glob": f"{registry}**"} for registry in registries],
            "authorities": [authority],
            "mode": signatures.mode,
        },
    }


# The provenance a team's image must carry (Rego the policy-controller evaluates through cosign:
# package `sigstore`, rule `isCompliant`, over the in-toto statement; written so that it parses as
# Rego v0, which cosign uses, and as v1). The reusable service CI writes the calling repository
# into the predicate from GitHub's own context, which a caller cannot set.
PROVENANCE_SOURCE_REGO = """package sigstore

import future.keywords.if
import future.keywords.in

default isCompliant := false

isCompliant if {
	input.predicateType == "https://slsa.dev/provenance/v1"
	input.predicate.buildDefinition.externalParameters.workflow.repository in data_sources
}

data_sources := %s
"""


def team_image_policies(signatures: ImageSignatures,
                        teams: Sequence[Team]) -> list[dict[str, Any]]:
    """A ClusterImagePolicy per team with images: its repositories' images need, on top of the
    organisation's signature (every policy an image matches must pass), a provenance whose
    source is one of the team's build repositories. Keyless only: a key signs for everyone."""
    if signatures.public_key is not None:
        return []
    found = []
    for team in teams:
        if not team.images:
            continue
        authority = image_policy(signatures, ())["spec"]["authorities"][0]
        sources = json.dumps(sorted(team.build_repositories))
        authority["name"] = f"{team.name}-ci"
        authority["attestations"] = [
            {"name": "provenance", "predicateType": REQUIRED_ATTESTATIONS["provenance"],
             "policy": {"type": "rego", "data": PROVENANCE_SOURCE_REGO % sources}}]
        found.append({
            "apiVersion": "policy.sigstore.dev/v1beta1", "kind": "ClusterImagePolicy",
            "metadata": {"name": f"built-by-{team.name}", "labels": {"team": "platform"}},
            "spec": {"images": [{"glob": f"{image}**"} for image in team.images],
                     "authorities": [authority], "mode": signatures.mode}})
    return found


# Pod Security `restricted` (the level of its namespace) for every container the chart starts.
# The chart's names are misleading (read in templates/webhook/*.yaml of the vendored 0.10.6):
# `webhook.podSecurityContext` is the *container's* securityContext, `webhook.securityContext` the
# pod's, and the post-delete `leases-cleanup` Job's container gets `leasescleanup.podSecurityContext`
# (off by default: no securityContext at all). Without these, the webhook's pods are refused.
_RESTRICTED_CONTAINER = {
    "enabled": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"}}


def sigstore_values(signatures: ImageSignatures, target: KubernetesTarget) -> dict[str, Any]:
    """policy-controller chart values, read against the vendored chart (charts/charts.yaml).
    `target`: the cluster, for the webhook's spread over its AZs."""
    return {
        "installCRDs": True,
        "webhook": {
            "replicaCount": signatures.replicas,
            # Fails closed in enforce mode: never all of it in one AZ (the chart's default only
            # prefers other nodes).
            **({"affinity": target.apart(SIGSTORE_WEBHOOK_SELECTOR, signatures.replicas)}
               if signatures.replicas > 1 else {}),
            "failurePolicy": "Fail" if signatures.mode == "enforce" else "Ignore",
            # An image no ClusterImagePolicy matches (in a namespace the webhook watches) is
            # refused in enforce mode, said explicitly rather than left to the build's default.
            "configData": {"no-match-policy": "deny" if signatures.mode == "enforce"
                           else "warn"},
            "podDisruptionBudget": {"enabled": signatures.replicas > 1, "minAvailable": 1},
            "namespaceSelector": {"matchExpressions": [
                {"key": SIGSTORE_INCLUDE_LABEL, "operator": "In", "values": ["true"]}]},
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                          "limits": {"memory": "512Mi"}},
            "podSecurityContext": {**_RESTRICTED_CONTAINER, "runAsUser": 1000},
            "securityContext": {"enabled": True, "runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"}},
        },
        # The chainguard kubectl image runs as 65532 (nonroot).
        "leasescleanup": {"podSecurityContext": {**_RESTRICTED_CONTAINER, "runAsUser": 65532},
                          "resources": pod_resources.values("policy-controller.leasescleanup")},
    }


# -- Kubernetes-native admission (ValidatingAdmissionPolicy) -------------------------------------

# What the API server itself refuses, in every environment (Gatekeeper's constraints only warn in
# dev): CEL, evaluated in the API server, no webhook to be down. Each (name, expression, message,
# team namespaces only).
NATIVE_POLICIES = (
    # CVE-2020-8554: a Service's externalIPs make kube-proxy on every node send traffic for those
    # addresses (the database's, say) to the Service's pods. Nothing the platform runs uses them,
    # so no namespace may.
    ("platform-no-external-ips",
     "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
     "spec.externalIPs is refused in every namespace: kube-proxy would send every pod's traffic "
     "for those addresses to this Service (CVE-2020-8554); expose a service through an Ingress",
     False),
    # A team's Service makes no load balancer or node port of its own (the ingress policy says
    # the same in Gatekeeper; this denies it in dev too).
    ("platform-team-service-types",
     "!has(object.spec.type) || !(object.spec.type in ['LoadBalancer', 'NodePort'])",
     "a team's Service must not be of type LoadBalancer or NodePort: expose it through the "
     "shared load balancer (an Ingress, the golden path's exposure: public)",
     True),
)


def native_policies() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(ValidatingAdmissionPolicy, its binding) for each of NATIVE_POLICIES: Services, on
    create and update, denied (not warned) when the expression is false."""
    found = []
    for name, expression, message, teams_only in NATIVE_POLICIES:
        policy = {
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name, "labels": {"team": "platform"}},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [{
                    "apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["services"]}]},
                "validations": [{"expression": expression, "message": message,
                                 "reason": "Forbidden"}],
            },
        }
        binding_spec: dict[str, Any] = {"policyName": name, "validationActions": ["Deny"]}
        if teams_only:
            binding_spec["matchResources"] = {"namespaceSelector": {"matchExpressions": [
                {"key": TEAM_LABEL, "operator": "Exists"}]}}
        binding = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name, "labels": {"team": "platform"}},
            "spec": binding_spec,
        }
        found.append((policy, binding))
    return found


class AdmissionControl(PlatformComponent):
    """Gatekeeper, the platform's ConstraintTemplates and their constraints."""

    service = "security"
    type_token = "platform:index:AdmissionControl"

    def __init__(self, name: str, args: AdmissionArgs, target: KubernetesTarget,
                 platform_namespaces: Sequence[str] = (), teams: Sequence[Team] = (),
                 opts: pulumi.ResourceOptions | None = None):
        """`platform_namespaces`: namespaces of the platform's own beyond PLATFORM_NAMESPACES
        (the monitoring namespace, when named otherwise), which the policies never match;
        `teams`: their hosts parameterise the ingress policy."""
        super().__init__(name, opts)
        gatekeeper, signatures = args.gatekeeper, args.image_signatures
        excluded = sorted({*PLATFORM_NAMESPACES, *platform_namespaces})
        self.namespace = target.platform_namespace(
            f"{name}-gatekeeper", NAMESPACE, parent=self, pod_security="restricted",
            labels={"admission.gatekeeper.sh/ignore": "no-self-managing"})
        # Vendored chart (charts/charts.yaml).
        self.release = target.helm_release(
            f"{name}-gatekeeper", parent=self, release="gatekeeper", chart="gatekeeper",
            namespace=NAMESPACE,
            values=helm_values(gatekeeper, excluded, target),
            depends_on=[self.namespace, *target.services])
        # Its webhooks fail closed on every namespace written (both stacks) and, in prod, on
        # every object outside the exempt namespaces: everything after it waits for it.
        target.add_prerequisite(self.release)
        self._signed_images(name, signatures, gatekeeper.allowed_registries, target, teams)
        # The API server's own policies: no webhook, so nothing to wait for.
        self.native: list[k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding] = []
        for policy, binding in native_policies():
            created = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                f"{name}-{policy['metadata']['name']}", metadata=policy["metadata"],
                spec=policy["spec"], opts=target.options(self))
            self.native.append(k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"{name}-{binding['metadata']['name']}", metadata=binding["metadata"],
                spec=binding["spec"], opts=target.options(self, depends_on=[created])))
        self.templates: dict[str, k8s.apiextensions.CustomResource] = {}
        self.constraints: dict[str, k8s.apiextensions.CustomResource] = {}
        for policy in POLICIES:
            if not policy.enabled(gatekeeper):
                continue
            template = constraint_template(policy)
            self.templates[policy.id] = k8s.apiextensions.CustomResource(
                f"{name}-template-{policy.id}",
                api_version=template["apiVersion"], kind=template["kind"],
                metadata=template["metadata"], spec=template["spec"],
                opts=target.options(self, depends_on=[self.release]),
            )
            body = constraint(policy, gatekeeper, excluded, teams)
            self.constraints[policy.id] = k8s.apiextensions.CustomResource(
                f"{name}-constraint-{policy.id}",
                api_version=body["apiVersion"], kind=body["kind"],
                metadata=body["metadata"], spec=body["spec"],
                opts=target.options(self, depends_on=[self.templates[policy.id]]),
            )

    def _signed_images(self, name: str, signatures: ImageSignatures,
                       registries: Sequence[str], target: KubernetesTarget,
                       teams: Sequence[Team] = ()) -> None:
        identity = target.require_identity("AdmissionControl (the policy-controller)")
        namespace = target.platform_namespace(
            f"{name}-cosign", SIGSTORE_NAMESPACE, parent=self, pod_security="restricted")
        # The webhook reads images and their signatures from the private registries, and pods
        # cannot borrow the node's role (IMDS hop limit 1): it gets its own, read-only.
        role = identity.service_account_role(
            f"{name}-policy-controller", SIGSTORE_NAMESPACE, SIGSTORE_SERVICE_ACCOUNT,
            policy=iam.to_json(iam.registry_read(identity.partition, registries)), parent=self)
        # Vendored chart (charts/charts.yaml).
        self.sigstore_release = target.helm_release(
            f"{name}-policy-controller", parent=self, release="policy-controller",
            chart="policy-controller", namespace=SIGSTORE_NAMESPACE,
            values=sigstore_values(signatures, target), depends_on=[namespace, role])
        body = image_policy(signatures, registries)
        self.image_policy = k8s.apiextensions.CustomResource(
            f"{name}-image-policy",
            api_version=body["apiVersion"], kind=body["kind"],
            metadata=body["metadata"], spec=body["spec"],
            opts=target.options(self, depends_on=[self.sigstore_release]),
        )
        for team_body in team_image_policies(signatures, teams):
            k8s.apiextensions.CustomResource(
                f"{name}-image-policy-{team_body['metadata']['name']}",
                api_version=team_body["apiVersion"], kind=team_body["kind"],
                metadata=team_body["metadata"], spec=team_body["spec"],
                opts=target.options(self, depends_on=[self.sigstore_release]))
