"""The objects inside the stack's Helm releases, for the policies that check what the platform
would start (Pod Security, ...).

CrossGuard never sees them: a `helm.v3.Release` is one opaque resource to the engine. The offline
review (`platformctl review`) renders every release with the real helm from its vendored archive
and provides the objects here while the policies run (:func:`provided`). Under the Pulumi CLI
nothing provides them, and those policies are not applicable: run `platformctl review`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import StackValidationArgs

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
CLUSTER_SCOPED = frozenset({
    "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService",
    "PriorityClass", "StorageClass", "PersistentVolume", "IngressClass", "RuntimeClass",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "CSIDriver"})


@dataclass(frozen=True)
class Release:
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
class _Provided:
    releases: Mapping[str, Release]
    applications: Sequence[Application]


_PROVIDED: list[_Provided] = []


@contextlib.contextmanager
def provided(releases: Mapping[str, Release],
             applications: Sequence[Application] = ()) -> Iterator[None]:
    """Make the rendered releases (by Release URN), and the applications Argo CD would sync,
    visible to the policies for a while."""
    _PROVIDED.append(_Provided(releases, tuple(applications)))
    try:
        yield
    finally:
        _PROVIDED.pop()


def releases(args: StackValidationArgs) -> list[Release]:
    """The rendered releases of this stack's Release resources. When nothing rendered them (the
    Pulumi CLI), the calling policy is reported not applicable (`args.not_applicable` raises)."""
    if not _PROVIDED:
        args.not_applicable(NOT_RENDERED)
    known = _PROVIDED[-1].releases
    return [known[r.urn] for r in args.resources
            if r.resource_type == RELEASE_TYPE and r.urn in known]


def applications() -> list[Application]:
    """The team services Argo CD would sync into this stack's cluster (none when not provided)."""
    return list(_PROVIDED[-1].applications) if _PROVIDED else []


NOT_RENDERED = ("the objects inside Helm releases are rendered only by `platformctl review`; "
                "run it for this check")
