"""What Argo CD would start in a stack's cluster from this repository, once `pulumi up` is done.

The program creates one root Application per environment (components/gitops.py); it syncs the
directory `spec.source.path` names (gitops/environments/<env>/), whose kustomization lists the
environment's Applications; each team service's Application syncs its own directory
(gitops/teams/<team>/<service>/). None of it is a Pulumi resource, but its pods land on the
same nodes, so the capacity check counts them (platform_guard.rendered.Application).

Read as files, not built with kustomize: the directories `platformctl new-service` writes list
plain manifests (the environment only swaps the image digest, which takes no room). An
ApplicationSet is not expanded (the platform's one, platform-analysis, makes a
ClusterAnalysisTemplate and no pods).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from platform_guard.rendered import Application

from platformctl.harness import Evaluation, unwrap_secrets
from stacks import userfile
from stacks.config import ConfigError

APPLICATION_TYPE = "kubernetes:argoproj.io/v1alpha1:Application"


class SyncedError(Exception):
    """A directory or file the root Application leads to is missing or not YAML (one line)."""


def _documents(path: Path, root: Path) -> list[dict[str, Any]]:
    """The YAML documents of a gitops/ file, read as every user file is (stacks/userfile: a
    regular file, bounded, UTF-8)."""
    try:
        text = userfile.read_text(path)
    except ConfigError as error:
        raise SyncedError(f"{path.relative_to(root)}: {'; '.join(error.problems)}") from None
    try:
        return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    except yaml.YAMLError as error:
        raise SyncedError(f"{path.relative_to(root)}: not YAML ({error})") from None


def _listed(directory: Path, root: Path) -> list[dict[str, Any]]:
    """The objects a kustomization directory lists (its `resources`, files only)."""
    kustomization = directory / "kustomization.yaml"
    found: list[dict[str, Any]] = []
    for kustomize in _documents(kustomization, root):
        for entry in kustomize.get("resources") or ():
            target = directory / str(entry)
            found += (_listed(target, root) if target.is_dir()
                      else _documents(target, root))
    return found


def _source(app: Mapping[str, Any]) -> Mapping[str, Any]:
    return (app.get("spec") or {}).get("source") or {}


def applications(evaluation: Evaluation, root: Path) -> list[Application]:
    """The Applications the stack's root Application syncs from this repository (`root`), with
    the objects each would create. Empty when the stack has no root Application or its
    environment has no directory here."""
    found = []
    for resource in evaluation.of_type(APPLICATION_TYPE):
        root_app = unwrap_secrets(resource.inputs)
        path = str(_source(root_app).get("path") or "")
        directory = root / path
        if not path or not (directory / "kustomization.yaml").is_file():
            continue
        for app in _listed(directory, root):
            source = _source(app)
            if app.get("kind") != "Application" or not source.get("path"):
                continue
            if source.get("repoURL") != _source(root_app).get("repoURL"):
                continue  # another repository's: not readable here
            app_dir = root / str(source["path"])
            name = str((app.get("metadata") or {}).get("name"))
            if not (app_dir / "kustomization.yaml").is_file():
                raise SyncedError(f"{path}: Application {name} syncs {source['path']}, which "
                                  "has no kustomization.yaml here")
            found.append(Application(name, str(source["path"]), _listed(app_dir, root)))
    return found
