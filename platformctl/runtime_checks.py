"""Will it run? The review's checks of what the platform would start, over the plan and the
objects rendered from its Helm releases: every pod admitted by its namespace's Pod Security
level; nothing racing a fail-closed admission webhook on a first install; every workload that
calls AWS with a role of exactly what it calls; every alert reading metrics that something
scrapes; the pods fitting the nodes.

CrossGuard never sees these objects (a `helm.v3.Release` is one opaque resource to the engine),
so these are not policies of the pack: they are plain functions of a :class:`RenderedStack`, run
by the review pipeline (platformctl.pipeline) once it has rendered the releases, and reported
beside the pack's verdicts under their own names and enforcement levels. Without a rendering
they are never run and the review says "not evaluated" with the reason.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platform_guard.policies._base import (
    HIGH,
    MANDATORY,
    PRODUCTION,
    get,
    schema,
    violation,
)
from pulumi_policy import EnforcementLevel, PolicyConfigSchema, PolicyResource, Severity
from pulumi_policy.policy import _NotApplicableError

import platform_facts
from platform_facts import capacity, podsecurity
from platformctl.document import counted

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
CLUSTER_SCOPED = frozenset({
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService",
    "PriorityClass", "StorageClass", "PersistentVolume", "IngressClass", "RuntimeClass",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CSIDriver"})


@dataclass(frozen=True)
class Release:
    """The objects one Helm release renders (platformctl.rendering), by its Release's URN."""

    urn: str
    name: str  # the Helm release name
    namespace: str
    chart: str  # "<chart> <version>"
    objects: Sequence[Mapping[str, Any]]

    def namespace_of(self, body: Mapping[str, Any]) -> str | None:
        """Where helm creates the object: its own namespace, else the release's."""
        if body.get("kind") in CLUSTER_SCOPED:
            return None
        return (body.get("metadata") or {}).get("namespace") or self.namespace


@dataclass(frozen=True)
class Application:
    """A team service Argo CD syncs into this environment once the stack is up (the root
    Application's directory in gitops/ lists it): not a Pulumi resource, but its pods need room
    on the same nodes."""

    name: str  # the Argo CD Application
    path: str  # its manifests' directory in the repository
    objects: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class RenderedStack:
    """What these checks read: the plan's resources as the policies see them (pulumi_policy's
    linked `PolicyResource`s), the rendered releases of its Release resources and the team
    services Argo CD would sync."""

    resources: Sequence[PolicyResource]
    releases: Sequence[Release] = ()
    applications: Sequence[Application] = ()


Finding = tuple[str, str | None]  # (message, urn of the resource it is about, or None)


@dataclass(frozen=True)
class RenderedCheck:
    """A check of the rendered platform, described as a policy is (name, enforcement, severity,
    remediation, config schema) so the adapter configures and reports it the same way."""

    name: str
    description: str
    enforcement_level: EnforcementLevel
    severity: Severity
    remediation_steps: str
    run: Callable[[RenderedStack, dict[str, Any]], Iterator[Finding]]
    config_schema: PolicyConfigSchema | None = field(default=None)


NAMESPACE = "kubernetes:core/v1:Namespace"


METADATA_NAME = "kubernetes.io/metadata.name"  # the label the API server puts on every namespace


class _Namespaces(dict[str, dict[str, Any]]):
    """The labels of each namespace the plan or a release creates, with the one the API server
    adds; a namespace created elsewhere (kube-system, ...) has only that one."""

    def __init__(self, resources: Sequence[PolicyResource], releases: Sequence[Release]):
        super().__init__()
        bodies: list[Mapping[str, Any]] = [r.props for r in resources
                                           if r.resource_type == NAMESPACE]
        bodies += [o for rel in releases for o in rel.objects if o.get("kind") == "Namespace"]
        for body in bodies:
            name = get(body, "metadata", "name")
            if name:
                self[str(name)] = {**dict(get(body, "metadata", "labels", default={})),
                                   METADATA_NAME: str(name)}

    def labels(self, name: str) -> Mapping[str, Any]:
        return self.get(name) or {METADATA_NAME: name}

    def pod_security(self, name: str) -> str:
        """The enforced Pod Security level (without the label: privileged, the default)."""
        return str(self.labels(name).get(podsecurity.LEVEL_LABEL, "privileged"))


def _pod_security(stack: RenderedStack, config: dict[str, Any]):
    releases = stack.releases
    namespaces = _Namespaces(stack.resources, releases)
    for release in releases:
        for body in release.objects:
            found = podsecurity.pod_template(body)
            if found is None:
                continue
            prefix, template = found
            namespace = release.namespace_of(body) or "default"
            level = namespaces.pod_security(namespace)
            problems = podsecurity.findings(template, level)
            if not problems:
                continue
            name = (body.get("metadata") or {}).get("name")
            listed = "; ".join(f"{p.control}: {prefix}{p.field} {p.problem}" for p in problems)
            yield violation(
                "Helm release", release.name,
                f"{body['kind']} {namespace}/{name} ({release.chart}) would have its pods refused "
                f"by Pod Security '{level}' in namespace {namespace}: {listed}",
                "set the chart's security context values so every container meets the level "
                "(runAsNonRoot, seccompProfile RuntimeDefault, allowPrivilegeEscalation false, "
                "capabilities drop ALL), or lower the namespace's level with a reason"), release.urn


# -- install order: fail-closed webhooks --------------------------------------------------------

WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower == "endpoints":
        return lower
    if lower.endswith("y") and lower[-2:-1] not in "aeiou":
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s"


def _rule_matches(rule: Mapping[str, Any], group: str, version: str, kind: str,
                  namespaced: bool) -> bool:
    def allows(field: str, value: str) -> bool:
        allowed = list(rule.get(field) or ())
        return "*" in allowed or value in allowed

    resources = [r for r in rule.get("resources") or () if "/" not in r]  # subresources aside
    scope = rule.get("scope", "*")
    return (allows("apiGroups", group) and allows("apiVersions", version)
            and ("*" in resources or _plural(kind) in resources)
            and ("*" in (rule.get("operations") or ()) or "CREATE" in (rule.get("operations") or ()))
            and (scope == "*" or scope == ("Namespaced" if namespaced else "Cluster")))


@dataclass(frozen=True)
class _Webhook:
    name: str
    release: Release
    configuration: Mapping[str, Any]
    webhook: Mapping[str, Any]

    def intercepts(self, body: Mapping[str, Any], namespace: str | None,
                   namespaces: _Namespaces) -> bool:
        api_version = str(body.get("apiVersion", ""))
        group, _, version = api_version.rpartition("/")
        kind = str(body.get("kind", ""))
        if not any(_rule_matches(rule, group, version, kind, namespace is not None)
                   for rule in self.webhook.get("rules") or ()):
            return False
        labels = (body.get("metadata") or {}).get("labels") or {}
        if not capacity.matches_selector(self.webhook.get("objectSelector"), labels):
            return False
        if kind == "Namespace":
            name = (body.get("metadata") or {}).get("name")
            return capacity.matches_selector(self.webhook.get("namespaceSelector"),
                                     {**labels, METADATA_NAME: name})
        if namespace is None:
            return True  # namespaceSelector does not apply to other cluster-scoped objects
        return capacity.matches_selector(self.webhook.get("namespaceSelector"),
                                 namespaces.labels(namespace))


def _fail_closed_webhooks(releases: Sequence[Release]) -> list[_Webhook]:
    found = []
    for release in releases:
        for body in release.objects:
            if body.get("kind") not in WEBHOOK_KINDS:
                continue
            for webhook in body.get("webhooks") or ():
                # failurePolicy defaults to Fail in admissionregistration.k8s.io/v1.
                if webhook.get("failurePolicy", "Fail") == "Fail":
                    found.append(_Webhook(str(webhook.get("name")), release, body, webhook))
    return found


def _webhook_availability(stack: RenderedStack, config: dict[str, Any]):
    if not config.get("production"):
        raise _NotApplicableError("outside production the webhooks' servers run one replica "
                                  "(cluster.controllerReplicas, security.*.replicas)")
    served: dict[tuple[str, str], tuple[Release, list[str]]] = {}
    for hook in _fail_closed_webhooks(stack.releases):
        service = (hook.webhook.get("clientConfig") or {}).get("service")
        if not service:
            continue  # served from outside the cluster
        key = (str(service.get("namespace")), str(service.get("name")))
        served.setdefault(key, (hook.release, []))[1].append(hook.name)
    if not served:
        return
    services = {(release.namespace_of(o) or "", str((o.get("metadata") or {}).get("name"))): o
                for release in stack.releases for o in release.objects
                if o.get("kind") == "Service"}
    scheduled = capacity.workloads(stack.releases)
    for (namespace, name), (release, names) in sorted(served.items()):
        what = (f"{counted(len(names), 'fail-closed webhook')} ({', '.join(sorted(names)[:3])}"
                f"{', ...' if len(names) > 3 else ''}) of Helm release '{release.name}'")
        service = services.get((namespace, name))
        selector = ((service or {}).get("spec") or {}).get("selector")
        pods = [w for w in scheduled if w.namespace == namespace and w.replicas and selector
                and capacity.matches_selector({"matchLabels": selector}, w.labels)]
        if not pods:
            yield violation(
                "Service", f"{namespace}/{name}",
                f"{what} {'are' if len(names) > 1 else 'is'} served by Service "
                f"{namespace}/{name}, and " + ("no rendered pod matches its selector"
                                               if service else "it is not among the rendered "
                                               "objects") + ": whether a zone's loss stops them "
                "cannot be told", "render the Service and its pods with the release"), release.urn
            continue
        count = sum(w.replicas or 0 for w in pods)
        if count >= 2 and all(capacity.ZONE_KEY in w.apart for w in pods) and len(pods) == 1:
            continue
        (w, *_) = pods
        why = ("one pod serves them" if count < 2 else
               f"its {count} pods may share an AZ (nothing requires one per AZ)")
        yield violation(
            w.kind, f"{w.source}/{w.name}",
            f"{what} {'are' if len(names) > 1 else 'is'} served by {w.kind} {namespace}/{w.name}, "
            f"and {why}: losing that AZ or node makes the API server refuse everything they "
            "intercept until the pods are rescheduled elsewhere (a lost node's pods are evicted "
            "after 5 minutes)",
            "run two or more replicas kept one per AZ by a required pod anti-affinity on "
            "topology.kubernetes.io/zone (KubernetesTarget.apart)"), release.urn


def _manifest(resource) -> dict[str, Any] | None:
    """A Kubernetes resource of the plan as the object it creates (None for other resources)."""
    token = resource.resource_type
    if not token.startswith("kubernetes:") or token.startswith(("kubernetes:helm.sh/",
                                                                 "pulumi:providers:")):
        return None
    group_version, _, kind = token.split(":", 1)[1].rpartition(":")
    group, _, version = group_version.rpartition("/")
    props = resource.props
    return {"apiVersion": f"{version}" if group in ("core", "") else f"{group}/{version}",
            "kind": kind, "metadata": dict(get(props, "metadata", default={}))}


def _waits_for(resource, target_urn: str, children: Mapping[str, list]) -> bool:
    """Whether `resource` depends on `target_urn`, directly or transitively (a dependency on a
    component is one on all its children, as the engine makes it)."""
    seen: set[str] = set()
    pending = list(resource.dependencies)
    while pending:
        node = pending.pop()
        if node.urn in seen:
            continue
        seen.add(node.urn)
        if node.urn == target_urn:
            return True
        pending += list(node.dependencies) + children.get(node.urn, [])
    return False


def _install_order(stack: RenderedStack, config: dict[str, Any]):
    releases = stack.releases
    # Rules left empty are filled in by the controller at run time: nothing to check here.
    webhooks = [w for w in _fail_closed_webhooks(releases) if w.webhook.get("rules")]
    if not webhooks:
        return
    by_urn = {r.urn: r for r in stack.resources}
    children: dict[str, list] = {}
    for r in stack.resources:
        if r.parent is not None:
            children.setdefault(r.parent.urn, []).append(r)
    namespaces = _Namespaces(stack.resources, releases)
    # Who creates what: each release its rendered objects, each Kubernetes resource itself.
    creators: list[tuple[Any, str, list[tuple[Mapping[str, Any], str | None]]]] = []
    for release in releases:
        creators.append((by_urn[release.urn], f"Helm release '{release.name}'",
                         [(o, release.namespace_of(o)) for o in release.objects]))
    for resource in stack.resources:
        body = _manifest(resource)
        if body is not None:
            namespace = body["metadata"].get("namespace")
            namespaced = body["kind"] not in CLUSTER_SCOPED
            creators.append((resource, f"{body['kind']} '{resource.name}'",
                             [(body, (namespace or "default") if namespaced else None)]))
    for webhook in webhooks:
        for creator, label, objects in creators:
            if creator.urn == webhook.release.urn:
                continue  # helm installs a release's own webhooks after its other objects
            hit = next(((o, ns) for o, ns in objects
                        if webhook.intercepts(o, ns, namespaces)), None)
            if hit is None or _waits_for(creator, webhook.release.urn, children) or _waits_for(
                    by_urn[webhook.release.urn], creator.urn, children):
                continue  # after the webhook serves, or done before it exists
            body, namespace = hit
            where = f"{namespace}/" if namespace else ""
            yield violation(
                label.split(" '")[0], label.split("'")[1],
                f"creates {body['kind']} {where}{(body.get('metadata') or {}).get('name')}, which "
                f"the fail-closed webhook {webhook.name} of Helm release "
                f"'{webhook.release.name}' intercepts, without depending on that release: on a "
                "first install they run in parallel and the API server refuses the object until "
                "the webhook serves",
                f"make it depend on the '{webhook.release.name}' release (KubernetesTarget.add_prerequisite "
                "does it for everything installed after a prerequisite), or make that release "
                "wait for it"), creator.urn




# -- workload identities ---------------------------------------------------------------------

ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


@functools.cache
def identities() -> dict[str, Any]:
    path = Path(platform_facts.__file__).resolve().parent / "identities.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _granted(role, resources) -> tuple[set[str], list[str]]:
    """Actions the role's inline policies allow, and its managed policy attachments. A policy
    counts when it names the role through the role's outputs (the engine's link) or by the
    role's own name. An `Allow` with `NotAction` allows everything it does not list: it is
    returned as `NotAction:<actions>`, which covers nothing and is always more than needed."""
    actions: set[str] = set()
    managed: list[str] = []
    role_name = get(role.props, "name")
    for r in resources:
        linked = [d.urn for d in (r.property_dependencies.get("role") or [])]
        by_name = role_name is not None and get(r.props, "role") == role_name
        if role.urn not in linked and not by_name:
            continue
        if r.resource_type == ROLE_POLICY:
            document = json.loads(str(get(r.props, "policy", default="{}")))
            statements = document.get("Statement") or ()
            for statement in [statements] if isinstance(statements, dict) else statements:
                if statement.get("Effect") != "Allow":
                    continue
                action = statement.get("Action") or []
                actions.update([action] if isinstance(action, str) else action)
                if "NotAction" in statement:
                    excluded = statement["NotAction"]
                    excluded = [excluded] if isinstance(excluded, str) else excluded
                    actions.add("NotAction:" + ",".join(excluded))
        elif r.resource_type == ROLE_POLICY_ATTACHMENT:
            managed.append(str(get(r.props, "policyArn", default="")))
    return actions, managed


# An AWS managed policy's ARN (any partition); a customer policy of the same name is not it.
AWS_MANAGED_POLICY = re.compile(r"^arn:aws[a-z-]*:iam::aws:policy/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)$")


def _covers(patterns: set[str], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def _identity(stack: RenderedStack, config: dict[str, Any]):
    releases = stack.releases
    yield from _addon_identities(stack)
    declared = identities()["workloads"]
    associations = [r for r in stack.resources if r.resource_type == ASSOCIATION]
    for release in releases:
        chart = release.chart.split(" ")[0]
        if chart not in declared:
            continue
        need = declared[chart]
        account = need["serviceAccount"]
        accounts = {(release.namespace_of(o), (o.get("metadata") or {}).get("name"))
                    for o in release.objects if o.get("kind") == "ServiceAccount"}
        namespace = next((ns for ns, name in accounts if name == account), None)
        if namespace is None:
            yield violation("Helm release", release.name,
                            f"renders no ServiceAccount '{account}', the identity its workload "
                            f"calls AWS with ({release.chart})",
                            "update platform_facts/identities.json for this chart version"), \
                release.urn
            continue
        association = next((a for a in associations if get(a.props, "namespace") == namespace
                            and get(a.props, "serviceAccount") == account), None)
        if association is None:
            yield violation(
                "Helm release", release.name,
                f"its service account {namespace}/{account} calls AWS ({', '.join(need['actions'][:3])}"
                f"{', ...' if len(need['actions']) > 3 else ''}) but has no EKS Pod Identity "
                "association in the plan; pods cannot borrow the node's role (IMDS hop limit 1)",
                "give it a role with Cluster.service_account_role"), release.urn
            continue
        (role, *_) = association.property_dependencies.get("roleArn") or [None]
        if role is None:
            continue
        granted, managed = _granted(role, stack.resources)
        missing = [a for a in need["actions"] if not _covers(granted, a)]
        allowed = {a.lower() for a in need["actions"]}
        extra = sorted(a for a in granted if a.lower() not in allowed)
        where = f"role '{role.name}' of {namespace}/{account}"
        if missing:
            yield violation("IAM role", role.name,
                            f"{where} lacks {', '.join(missing)}, which {chart} calls "
                            f"({need['source']})",
                            "grant them, scoped to the resources it acts on"), role.urn
        if extra or managed:
            yield violation("IAM role", role.name,
                            f"{where} grants more than {chart} calls: "
                            f"{', '.join(extra + managed)}",
                            "remove them (least privilege)"), role.urn




# -- scrape coverage ---------------------------------------------------------------------------

PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
SOURCES_ANNOTATION = "platform.example.org/metric-sources"
# Services every cluster (or the monitoring stack at run time) has, though no chart renders them.
BUILT_IN_SERVICES: dict[str, dict[str, Any]] = {
    # The API server's Service, in every cluster.
    "default/kubernetes": {"labels": {"component": "apiserver", "provider": "kubernetes"},
                           "ports": ["https"]},
    # prometheus-operator's kubelet endpoints controller keeps it (kubeletService in its values).
    "kube-system/platform-monitoring-kubelet": {
        "labels": {"app.kubernetes.io/name": "kubelet", "k8s-app": "kubelet"},
        "ports": ["https-metrics", "http-metrics", "cadvisor"]},
}


def _scrape_coverage(stack: RenderedStack, config: dict[str, Any]):
    releases = stack.releases
    services: dict[str, dict[str, Any]] = dict(BUILT_IN_SERVICES)
    monitors: list[tuple[str, Mapping[str, Any]]] = []
    prometheuses: list[tuple[str, Mapping[str, Any]]] = []
    for release in releases:
        for body in release.objects:
            namespace = release.namespace_of(body)
            name = (body.get("metadata") or {}).get("name")
            if body.get("kind") == "Service":
                services[f"{namespace}/{name}"] = {
                    "labels": (body.get("metadata") or {}).get("labels") or {},
                    "ports": [p.get("name") for p in (body.get("spec") or {}).get("ports") or ()]}
            elif body.get("kind") == "ServiceMonitor":
                monitors.append((str(namespace), body))
            elif body.get("kind") == "Prometheus":
                prometheuses.append((str(namespace), body))
    monitors += [(str(get(r.props, "metadata", "namespace", default="default")), r.props)
                 for r in stack.resources
                 if r.resource_type == "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"]
    namespaces = _Namespaces(stack.resources, releases)

    def scraped(monitor_namespace: str, monitor: Mapping[str, Any]) -> bool:
        labels = get(monitor, "metadata", "labels", default={})
        ns_labels = namespaces.labels(monitor_namespace)
        return any(capacity.matches_selector(get(p, "spec", "serviceMonitorSelector"), labels)
                   and capacity.matches_selector(get(p, "spec", "serviceMonitorNamespaceSelector"),
                                         ns_labels)
                   for _, p in prometheuses)

    def selects(monitor_namespace: str, monitor: Mapping[str, Any], key: str) -> bool:
        namespace, _, _ = key.partition("/")
        spec = get(monitor, "spec", default={})
        where = get(spec, "namespaceSelector", default={})
        if get(where, "any") is not True and namespace not in (
                get(where, "matchNames") or [monitor_namespace]):
            return False
        service = services[key]
        if not capacity.matches_selector(get(spec, "selector"), service["labels"]):
            return False
        ports = [get(e, "port") for e in get(spec, "endpoints", default=[])]
        return any(p in service["ports"] for p in ports)

    for rule in (r for r in stack.resources if r.resource_type == PROMETHEUS_RULE):
        declared = get(rule.props, "metadata", "annotations", SOURCES_ANNOTATION)
        if not declared:
            continue
        for subject, source in json.loads(str(declared)).items():
            if str(source).startswith("external:"):
                continue
            problem = None
            if source not in services:
                problem = f"no chart renders its Service {source}"
            else:
                selecting = [(ns, m) for ns, m in monitors if selects(ns, m, source)]
                if not selecting:
                    problem = f"no ServiceMonitor selects its Service {source} (and a named port)"
                elif not any(scraped(ns, m) for ns, m in selecting):
                    problem = (f"Prometheus selects none of the ServiceMonitors of {source}: "
                               + ", ".join(f"{ns}/{get(m, 'metadata', 'name')}"
                                           for ns, m in selecting))
            if problem:
                yield violation(
                    "PrometheusRule", rule.name,
                    f"{subject} reads metrics from {source}, but {problem}: it can never fire",
                    "enable the chart's metrics and ServiceMonitor for that Service, or correct "
                    "the alert's source (components/alerts.py)"), rule.urn




ADDON = "aws:eks/addon:Addon"


def _addon_identities(stack: RenderedStack):
    """The EKS add-ons that call AWS: a role (IRSA or Pod Identity) with exactly the AWS managed
    policy AWS documents for each."""
    declared = identities()["addons"]
    for addon in (r for r in stack.resources if r.resource_type == ADDON):
        name = str(get(addon.props, "addonName", default=""))
        if name not in declared:
            continue
        need = declared[name]
        roles = [*(addon.property_dependencies.get("serviceAccountRoleArn") or []),
                 *(addon.property_dependencies.get("podIdentityAssociations") or [])]
        if not roles:
            yield violation("EKS add-on", addon.name,
                            f"{name} calls AWS as {need['serviceAccount']} but has no role "
                            "(serviceAccountRoleArn or a Pod Identity association)",
                            f"give it a role with {', '.join(need['managedPolicies'])}"), addon.urn
            continue
        for role in roles:
            actions, managed = _granted(role, stack.resources)
            aws_managed = {m.group(1): arn for arn in managed
                           if (m := AWS_MANAGED_POLICY.match(arn))}
            missing = sorted(set(need["managedPolicies"]) - set(aws_managed))
            extra = (sorted(set(managed) - {aws_managed[n] for n in need["managedPolicies"]
                                            if n in aws_managed})
                     + sorted(actions))
            if missing:
                yield violation("IAM role", role.name,
                                f"role of the {name} add-on lacks {', '.join(missing)} "
                                f"({need['source']})", "attach it"), role.urn
            if extra:
                yield violation("IAM role", role.name,
                                f"role of the {name} add-on grants more than "
                                f"{', '.join(need['managedPolicies'])}: {', '.join(extra)}",
                                "remove them (least privilege)"), role.urn


# -- capacity ----------------------------------------------------------------------------------

def _assessment(stack: RenderedStack, config: dict[str, Any]) -> capacity.Assessment:
    """One assessment per stack and config (node-capacity and volume-zones both read it)."""
    key = bool(config.get("production"))
    cached = _ASSESSED.get(id(stack))
    if cached is not None and cached[0] is stack and cached[1] == key:
        return cached[2]
    found = _assess(stack, key)
    _ASSESSED.clear()  # one stack at a time: keep no other stack alive
    _ASSESSED[id(stack)] = (stack, key, found)
    return found


_ASSESSED: dict[int, tuple[RenderedStack, bool, capacity.Assessment]] = {}


def _assess(stack: RenderedStack, production: bool) -> capacity.Assessment:
    resources = [capacity.PlannedResource(
        r.resource_type, r.name, r.props,
        {key: [d.props for d in linked] for key, linked in (r.property_dependencies or {}).items()})
        for r in stack.resources if r.resource_type in capacity.ASSESSED_TYPES]
    return capacity.assess(resources, stack.releases, stack.applications, production)


def _node_capacity(stack: RenderedStack, config: dict[str, Any]):
    for r in stack.resources:
        if r.resource_type == capacity.NODE_GROUP:
            for problem in capacity.shape_problems(list(get(r.props, "instanceTypes") or ())):
                yield violation("node group", r.name, problem,
                                "use instance types of one shape per node group (t4g.medium "
                                "with c7g.large; m7g.large with m8g.large), or one group per "
                                "shape; add a new type's facts to capacity.json"), r.urn
    assessment = _assessment(stack, config)
    for w in assessment.scheduled:
        if w.missing:
            yield violation(
                w.kind, f"{w.source}/{w.name}",
                f"requests no CPU or memory in {'; '.join(w.missing)}: the scheduler counts it "
                "as zero, so what it uses is in no capacity figure and it lands on any node",
                "set resources.requests (cpu and memory) for every container, init containers "
                "and install hooks included, in the chart's values (an EKS add-on's: its facts "
                "in capacity.json)"), None
    for found in assessment.scenarios:
        if found.fits:
            continue
        over = [label for label, (used, held) in (("pods", found.pods), ("CPU", found.cpu_m),
                                                  ("memory", found.memory_mib)) if used > held]
        yield violation(
            "stack", f"node groups {found.label}",
            f"with {counted(found.nodes, 'node')} the platform's pods do not fit: "
            f"{found.short()} requested vs allocatable; short of {', '.join(over)}"
            + (f" ({len(found.unknown)} workloads without known requests counted as slots only)"
               if found.unknown else ""),
            "raise the node groups' minSize or instance type, or their maxPods (pods; each pod "
            "admitted reserves 11 MiB), within the budget"), None
    placed = assessment.placement
    if placed is None or not all(s.fits for s in assessment.scenarios):
        return
    if placed.unplaced:
        yield violation(
            "stack", "node groups at minimum size",
            f"placed pod by pod, {counted(len(placed.unplaced), 'pod')} find no node with room "
            "although "
            f"the sums fit: {'; '.join(placed.unplaced[:5])}",
            "raise minSize, or use larger nodes: the free room is split across nodes"), None
    for drain in placed.drains:
        if drain.pending:
            yield violation(
                "stack", f"drain of {drain.node}",
                f"draining {drain.node} ({drain.zone}) leaves {counted(len(drain.pending), 'pod')} "
                "with "
                f"no node to go to: {'; '.join(drain.pending[:5])}",
                "raise minSize (in that AZ for pods with EBS volumes), or run such a workload "
                "with more than one replica"), None


def _gib(mib: float) -> str:
    return f"{mib / 1024:,.2f} GiB"


def _quota_capacity(stack: RenderedStack, config: dict[str, Any]):
    planned = [capacity.PlannedResource(r.resource_type, r.name, r.props, {})
               for r in stack.resources if r.resource_type == capacity.RESOURCE_QUOTA]
    for unbounded in capacity.unbounded_quotas(planned):
        yield violation(
            "ResourceQuota", unbounded.split(":")[0],
            f"{unbounded}: what its namespace's pods may request is not bounded, so whether "
            "the team quotas fit the nodes cannot be told",
            "set requests.cpu and requests.memory in the quota (platform:teams[].quota "
            "requestsCpu and requestsMemory)"), None
    fit = _assessment(stack, config).quotas
    if fit is None or fit.fits and not fit.unbounded:
        return
    if fit.unbounded:
        yield violation(
            "stack", "node groups", f"{', '.join(fit.unbounded)} state(s) no maxSize, so what "
            "the team quotas may grow into is not known; counted at minimum size",
            "set scalingConfig.maxSize (cluster.nodeGroups.<name>.maxSize)"), None
    if fit.fits:
        return
    free_pods, free_cpu, free_memory = fit.free
    summary = (f"{fit.label}, the node groups are {fit.nodes} nodes holding "
               f"{fit.held[1]:,.0f}m CPU, {_gib(fit.held[2])} and {fit.held[0]:,.0f} pods; the "
               f"platform requests {fit.platform[1]:,.0f}m, {_gib(fit.platform[2])} and "
               f"{fit.platform[0]:,.0f} pods, leaving {free_cpu:,.0f}m, {_gib(free_memory)} and "
               f"{free_pods:,.0f} pods for the teams; their quotas promise "
               f"{fit.quotas[1]:,.0f}m, {_gib(fit.quotas[2])} and {fit.quotas[0]:,.0f} pods: "
               f"short of {', '.join(fit.short)}")
    for team in fit.teams:
        keys = "platform:teams[" + team.team + "].quota"
        yield violation(
            "team", team.team,
            f"{summary}. Team {team.team} ({', '.join(team.namespaces)}) is promised "
            f"{team.cpu_m:,.0f}m CPU, {_gib(team.memory_mib)} and {team.pods:,.0f} pods; with "
            f"the other teams' quotas as they are it can have at most {team.room_cpu_m:,.0f}m, "
            f"{_gib(team.room_memory_mib)} and {team.room_pods:,.0f} pods",
            f"lower {keys} (requestsCpu, requestsMemory, pods; per namespace) or another "
            "team's, or raise a node group's maxSize within the budget ceiling (the review "
            "names the largest allowed)"), None


def _volume_zones(stack: RenderedStack, config: dict[str, Any]):
    for problem in _assessment(stack, config).zone_problems:
        yield violation("stack", "node groups", problem,
                        "make the node group zonal (cluster.nodeGroups.<name>.zonal: true): "
                        "one group per AZ, so the autoscaler adds a node where the volume is"), None


def _disruption_budgets(stack: RenderedStack, config: dict[str, Any]):
    scheduled = _assessment(stack, config).scheduled
    for budget in capacity.disruption_budgets([*stack.releases, *stack.applications], scheduled):
        if budget.allowed <= 0:
            yield violation(
                "PodDisruptionBudget", f"{budget.source}/{budget.name}",
                f"{budget.rule} over {counted(budget.pods, 'pod')} ({', '.join(budget.workloads)}) "
                "never "
                "allows an eviction: every node drain, Cluster Autoscaler scale-down and "
                "managed node group update waits on it (EKS fails the update after 15 minutes)",
                "allow one pod down (maxUnavailable: 1, or minAvailable below the replicas), "
                "or run more replicas; a single replica needs no budget"), None


def _check(name: str, description: str, *, enforcement: EnforcementLevel,
           severity: Severity, remediation: str, check, config=None) -> RenderedCheck:
    return RenderedCheck(name, description, enforcement, severity, remediation, check,
                         schema(config) if config else None)


CHECKS = [
    _check(
        "pod-security-admission",
        "Every pod the platform starts (the Helm releases' rendered workloads) is admitted by its "
        "namespace's Pod Security level (`pod-security.kubernetes.io/enforce`), per the Pod "
        "Security Standards.",
        enforcement=MANDATORY, severity=HIGH, check=_pod_security,
        remediation="Meet the namespace's Pod Security level in the chart values."),
    _check(
        "webhook-install-order",
        "Whatever creates objects that a fail-closed admission webhook (a Helm release's rendered "
        "webhook configuration with failurePolicy Fail) intercepts depends on that webhook's "
        "release, or that release on it, so a first install does not race it.",
        enforcement=MANDATORY, severity=HIGH, check=_install_order,
        remediation="Depend on the webhook's release (KubernetesTarget.add_prerequisite)."),
    _check(
        "webhook-availability",
        "In production, every fail-closed admission webhook of the Helm releases is served by "
        "two or more pods that a required pod anti-affinity keeps one per AZ, so losing a node "
        "or an AZ does not make the API server refuse what it intercepts.",
        enforcement=MANDATORY, severity=HIGH, check=_webhook_availability, config=PRODUCTION,
        remediation="Run the webhook's server with replicas >= 2 and a required pod "
                    "anti-affinity on topology.kubernetes.io/zone."),
    _check(
        "workload-identity",
        "Every workload of the Helm releases and every EKS add-on that calls AWS "
        "(platform_facts/identities.json) has a role in the plan granting what it calls, and "
        "nothing more.",
        enforcement=MANDATORY, severity=HIGH, check=_identity,
        remediation="Give the service account a role with exactly the actions it calls."),
    _check(
        "scrape-coverage",
        "Every alert and SLO the platform ships reads metrics from a Service (its declared "
        "source) that a rendered chart creates, a ServiceMonitor selects and Prometheus scrapes.",
        enforcement=MANDATORY, severity=HIGH, check=_scrape_coverage,
        remediation="Enable the chart's metrics and ServiceMonitor for the alert's source."),
    _check(
        "node-capacity",
        "The pods the platform schedules (rendered workloads, operator-made pods, DaemonSets per "
        "node, EKS add-ons, the team services Argo CD syncs) fit the node groups at their minimum "
        "size, and in production with one node lost: pods, CPU and memory requests against "
        "allocatable, and pod by pod (each on the node with most room, hard anti-affinity "
        "honoured), in production with each node drained in turn (pods with EBS volumes stay in "
        "their AZ); every container (install hooks included) requests CPU and memory; each node "
        "group's instance types are of one shape.",
        enforcement=MANDATORY, severity=HIGH, check=_node_capacity, config=PRODUCTION,
        remediation="Resize the node groups (minSize, instance type, maxPods)."),
    _check(
        "quota-capacity",
        "The team quotas are capacity: the sum of the team namespaces' ResourceQuota requests "
        "(CPU, memory, pods) plus what the platform's own pods request (DaemonSets on every "
        "node) fits the node groups at their maxSize, and in production with one node lost. "
        "Each team whose quota cannot fit is named, with the most it could have.",
        enforcement=MANDATORY, severity=HIGH, check=_quota_capacity, config=PRODUCTION,
        remediation="Lower a team's quota, or raise a node group's maxSize within the budget "
                    "ceiling."),
    _check(
        "volume-zones",
        "Pods that keep data on EBS volumes (StatefulSets with volume claim templates, the "
        "operator's Prometheus and Alertmanager storage) run on node groups of one AZ each: an "
        "EBS volume lives in one AZ, and the Cluster Autoscaler can add a node in a given AZ only "
        "to a group of that AZ.",
        enforcement=MANDATORY, severity=HIGH, check=_volume_zones,
        remediation="Make the node groups zonal (one per AZ)."),
    _check(
        "disruption-budgets",
        "No PodDisruptionBudget of the rendered releases or the synced team services blocks "
        "eviction: with all the pods it selects healthy, it allows at least one to go "
        "(maxUnavailable above 0, minAvailable below the replicas; percentages round up).",
        enforcement=MANDATORY, severity=HIGH, check=_disruption_budgets,
        remediation="Allow one pod down, or run more replicas; a single replica needs no budget."),
]
