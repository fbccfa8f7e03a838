"""Will it run? Checks of what the platform would start, over the plan and the objects rendered
from its Helm releases (platform_guard.rendered): every pod admitted by its namespace's Pod
Security level."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import StackValidationArgs

from platform_guard import podsecurity, rendered
from platform_guard.policies._base import HIGH, MANDATORY, get, stack_policy, violation

NAMESPACE = "kubernetes:core/v1:Namespace"


def _levels(args: StackValidationArgs,
            releases: list[rendered.Release]) -> dict[str, str]:
    """Each namespace's enforced Pod Security level (a namespace without the label: privileged,
    the API server's default)."""
    levels: dict[str, str] = {}
    bodies: list[Mapping[str, Any]] = [r.props for r in args.resources if r.resource_type == NAMESPACE]
    bodies += [o for release in releases for o in release.objects if o.get("kind") == "Namespace"]
    for body in bodies:
        name = get(body, "metadata", "name")
        if name:
            levels[str(name)] = str(get(body, "metadata", "labels", podsecurity.LEVEL_LABEL,
                                        default="privileged"))
    return levels


def _pod_security(args: StackValidationArgs, config: dict[str, Any]):
    releases = rendered.releases(args)
    if releases is None:
        args.not_applicable(rendered.NOT_RENDERED)
    levels = _levels(args, releases)
    for release in releases:
        for body in release.objects:
            found = podsecurity.pod_template(body)
            if found is None:
                continue
            prefix, template = found
            namespace = release.namespace_of(body) or "default"
            level = levels.get(namespace, "privileged")
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


POLICIES = [
    stack_policy(
        "pod-security-admission",
        "Every pod the platform starts (the Helm releases' rendered workloads) is admitted by its "
        "namespace's Pod Security level (`pod-security.kubernetes.io/enforce`), per the Pod "
        "Security Standards.",
        enforcement=MANDATORY, severity=HIGH, check=_pod_security,
        remediation="Meet the namespace's Pod Security level in the chart values."),
]
