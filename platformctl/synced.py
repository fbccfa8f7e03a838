"""What Argo CD would start in a stack's cluster from this repository, once `pulumi up` is done.

The program creates one root Application per environment (components/gitops.py); it syncs the
directory `spec.source.path` names (gitops/environments/<env>/), whose kustomization lists the
environment's Applications; each team service's Application syncs its own directory
(gitops/teams/<team>/<service>/). None of it is a Pulumi resource, but its pods land on the
same nodes, so the capacity check counts them (platformctl.runtime_checks.Application).

Read as files, not built with kustomize: the directories `platformctl new-service` writes list
plain manifests (the environment only swaps the image digest, which takes no room). An
Application pinned to a commit (`platformctl promote` pins prod to the commit it promoted) is
read at that commit, as Argo CD reads it, when this clone has it; otherwise as in the working
tree. An ApplicationSet is not expanded (the platform's one, platform-analysis, makes a
ClusterAnalysisTemplate and no pods).
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from platformctl.gitcmd import git
from platformctl.recording import Evaluation, unwrap_secrets
from platformctl.runtime_checks import Application
from stacks import userfile
from stacks.config import ConfigError

APPLICATION_TYPE = "kubernetes:argoproj.io/v1alpha1:Application"


class SyncedError(Exception):
    """A directory or file the root Application leads to is missing or not YAML (one line)."""


COMMIT = re.compile(r"[0-9a-f]{40}")


class _Tree:
    """The repository's files: the working tree, or one commit of its history."""

    def __init__(self, root: Path, commit: str | None = None):
        self.root, self.commit = root, commit

    @classmethod
    def at(cls, root: Path, revision: str) -> _Tree:
        """The commit an Application pins, if this clone has it; else the working tree."""
        if COMMIT.fullmatch(revision):
            pinned = cls(root, revision)
            if pinned._kinds:
                return pinned
        return cls(root)

    @functools.cached_property
    def _kinds(self) -> dict[str, str]:
        """Every path of the commit and its kind (tree or blob), listed once; empty when this
        clone does not have the commit."""
        result = git(self.root, "ls-tree", "-r", "-t", str(self.commit))
        if result.returncode != 0:
            return {}
        kinds = {"": "tree"}
        for line in result.stdout.splitlines():
            meta, _, path = line.partition("\t")
            kinds[path] = meta.split()[1]
        return kinds

    def _kind(self, relative: str) -> str | None:
        path = posixpath.normpath(relative)
        return self._kinds.get("" if path == "." else path)

    def is_dir(self, relative: str) -> bool:
        if self.commit is None:
            return (self.root / relative).is_dir()
        return self._kind(relative) == "tree"

    def is_file(self, relative: str) -> bool:
        if self.commit is None:
            return (self.root / relative).is_file()
        return self._kind(relative) == "blob"

    def documents(self, relative: str) -> list[dict[str, Any]]:
        """The YAML documents of a gitops/ file, read as every user file is (stacks/userfile:
        a regular file, bounded, UTF-8)."""
        where = relative if self.commit is None else f"{relative} (at {self.commit[:12]})"
        if self.commit is None:
            try:
                text = userfile.read_text(self.root / relative)
            except ConfigError as error:
                raise SyncedError(f"{relative}: {'; '.join(error.problems)}") from None
        else:
            result = git(self.root, "show", f"{self.commit}:{relative}", text=False)
            if result.returncode != 0:
                raise SyncedError(f"{where}: not in that commit")
            text = result.stdout.decode("utf-8", errors="replace")
        try:
            # libyaml's parser, safe like SafeLoader (a fifth of the time: every review reads
            # every synced file).
            return [d for d in yaml.load_all(text, Loader=userfile.FAST_SAFE_LOADER)
                    if isinstance(d, dict)]
        except yaml.YAMLError as error:
            raise SyncedError(f"{where}: not YAML ({error})") from None

    def listed(self, directory: str) -> list[dict[str, Any]]:
        """The objects a kustomization directory lists (its `resources`, files only)."""
        from platformctl.gitopscheck import remote_problems

        found: list[dict[str, Any]] = []
        for kustomize in self.documents(f"{directory}/kustomization.yaml"):
            # What Argo CD would fetch from elsewhere at sync time is not readable here:
            # refused, never counted as nothing.
            problems = remote_problems(kustomize, f"{directory}/kustomization.yaml",
                                       directory, None)
            if problems:
                raise SyncedError(problems[0])
            for entry in kustomize.get("resources") or ():
                target = f"{directory}/{entry}"
                found += self.listed(target) if self.is_dir(target) else self.documents(target)
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
        for app in _Tree(root).listed(path.rstrip("/")):
            source = _source(app)
            if app.get("kind") != "Application" or not source.get("path"):
                continue
            if source.get("repoURL") != _source(root_app).get("repoURL"):
                continue  # another repository's: not readable here
            app_dir = str(source["path"]).rstrip("/")
            tree = _Tree.at(root, str(source.get("targetRevision") or ""))
            name = str((app.get("metadata") or {}).get("name"))
            if not tree.is_file(f"{app_dir}/kustomization.yaml"):
                raise SyncedError(f"{path}: Application {name} syncs {source['path']}, which "
                                  "has no kustomization.yaml here")
            found.append(Application(name, str(source["path"]), tree.listed(app_dir)))
    return found
