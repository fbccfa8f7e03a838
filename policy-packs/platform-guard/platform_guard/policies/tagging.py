"""Tagging: every taggable AWS resource carries the platform's tags; Kubernetes namespaces and
workloads carry the team and app labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs

from platform_facts import sdk_types
from platform_guard.policies._base import MANDATORY, MEDIUM, get, resource_policy, violation

REQUIRED_TAGS = ("team", "service", "environment", "cost-center", "owner", "managed-by")

WORKLOAD_TYPES = (
    "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet", "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:Pod", "kubernetes:argoproj.io/v1alpha1:Rollout",
)
APP_LABELS = ("app.kubernetes.io/name", "app")


def _taggable(resource_type: str) -> bool:
    if not resource_type.startswith("aws:"):
        return False
    if resource_type in sdk_types.LISTED_TAG_TYPES:
        return True
    cls = sdk_types.resource_class(resource_type)
    return cls is not None and sdk_types.tags_shape(cls) == "map"


def _check_tags(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    if not _taggable(args.resource_type):
        return []
    tags = sdk_types.tag_map(get(args.props, "tags", default={}))
    missing = [key for key in REQUIRED_TAGS if not str(get(tags, key, default="")).strip()]
    problems = []
    if missing:
        problems.append(violation(args.resource_type, args.name,
                                  f"missing or empty tags: {', '.join(missing)}",
                                  "create it inside a platform component (components/tagging.py "
                                  "adds the standard tags) or set the values in the stack's "
                                  "platform:tags"))
    environment = config.get("environment")
    if environment and get(tags, "environment") and tags["environment"] != environment:
        problems.append(violation(args.resource_type, args.name,
                                  f"environment tag '{tags['environment']}' is not the stack's "
                                  f"environment '{environment}'",
                                  "let the tagging mechanism set it from platform:environment"))
    return problems


required_tags = resource_policy(
    "required-tags",
    "Every taggable AWS resource carries the platform's tags (team, service, environment, "
    "cost-center, owner, managed-by), with the stack's environment.",
    enforcement=MANDATORY, severity=MEDIUM,
    remediation="Create AWS resources inside a platform component, whose tagging transformation "
                "sets the tags from the stack config (platform:tags, platform:environment).",
    check=_check_tags,
    config={"environment": {"type": "string", "default": "",
                            "description": "The stack's environment; the environment tag must "
                                           "equal it (empty: any)."}},
)


def _labels_missing(labels: Any, wanted: tuple[str, ...], any_of: tuple[str, ...] = ()) -> list[str]:
    labels = labels if isinstance(labels, Mapping) else {}
    missing = [key for key in wanted if not labels.get(key)]
    if any_of and not any(labels.get(key) for key in any_of):
        missing.append(" or ".join(any_of))
    return missing


def _check_labels(args: ResourceValidationArgs, config: dict[str, Any]) -> list[str]:
    if args.resource_type == "kubernetes:core/v1:Namespace":
        missing = _labels_missing(get(args.props, "metadata", "labels"), ("team",))
    elif args.resource_type in WORKLOAD_TYPES:
        missing = _labels_missing(get(args.props, "metadata", "labels"), ("team",), APP_LABELS)
    else:
        return []
    if not missing:
        return []
    return [violation(args.resource_type, args.name, f"missing labels: {', '.join(missing)}",
                      "add metadata.labels.team (the owning team) and, on workloads, "
                      "app.kubernetes.io/name")]


kubernetes_labels = resource_policy(
    "kubernetes-labels",
    "Kubernetes namespaces carry a team label; workloads carry team and app labels.",
    enforcement=MANDATORY, severity=MEDIUM,
    remediation="Set metadata.labels.team on namespaces and metadata.labels.team plus "
                "app.kubernetes.io/name on Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, "
                "Pods and Rollouts.",
    check=_check_labels,
)

POLICIES = [required_tags, kubernetes_labels]
