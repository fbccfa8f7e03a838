"""Recorded Kubernetes resources as the manifests the provider would apply, for validators."""

from __future__ import annotations

from typing import Any

from platformctl.recording import Evaluation, RecordedResource, unwrap_secrets

# Top-level fields of the kinds the platform owns (the rest of a recording is Pulumi's).
MANIFEST_FIELDS = (
    "apiVersion", "kind", "metadata", "spec", "data", "stringData", "type", "provisioner",
    "parameters", "reclaimPolicy", "volumeBindingMode", "allowVolumeExpansion", "rules",
    "roleRef", "subjects", "automountServiceAccountToken",
)


def manifest(resource: RecordedResource) -> dict[str, Any]:
    inputs = unwrap_secrets(resource.inputs)
    return {k: v for k, v in inputs.items() if k in MANIFEST_FIELDS}


def owned_objects(evaluation: Evaluation, component: str) -> list[RecordedResource]:
    """The Kubernetes objects (not Helm releases) a component of the type `component` owns."""
    found = []
    for resource in evaluation.resources:
        if not resource.custom or not resource.type.startswith("kubernetes:"):
            continue
        if resource.type.startswith("kubernetes:helm.sh"):
            continue
        owner = evaluation.component_of(resource)
        if owner is not None and owner.type == component:
            found.append(resource)
    return found


RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"


def release(evaluation: Evaluation, chart: str) -> RecordedResource:
    """The one Helm release of an evaluation that installs the vendored chart `chart`."""
    from components import charts

    path = charts.catalog()[chart].chart_path
    (found,) = [r for r in evaluation.of_type(RELEASE_TYPE) if r.inputs["chart"] == path]
    return found


def rendered_object(evaluation: Evaluation, release: str, kind: str, name: str) -> dict[str, Any]:
    """The one object of kind `kind` named `name` that the Helm release `release` renders."""
    (found,) = [o.object for r in evaluation.rendered if r.release == release
                for o in r.objects if o.kind == kind and o.name == name]
    return found
