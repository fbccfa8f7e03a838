"""`platformctl check-gitops`: what a pull request may put under gitops/, checked before merge
(the pull-request workflow's `gitops` job, and the test suite over this repository).

- Every team kustomization is local: its `resources`, `components` and `bases` are paths inside
  its own team's directory, and it inflates no Helm chart and runs no generator, transformer or
  validator plugin. A remote base (`https://...`, `github.com/...?ref=main`, `git@...`) would be
  fetched by Argo CD's repo server at sync time: what it holds is not in the pull request, is
  governed by no AppProject `sourceRepos`, and can change after prod was pinned to a commit.
- Every service spec's generated manifests are what `platformctl new-service` writes from it
  (`new-service --check` over services/*.yaml): a hand edit of a generated file does not land.

The synced-apps reader (platformctl.synced) refuses a remote source too, so the review never
counts a workload it cannot see.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Kustomization fields that name other kustomizations or files to include.
INCLUDES = ("resources", "components", "bases")
# Fields whose presence alone fetches or executes something at build time.
FORBIDDEN = {
    "helmCharts": "inflates a Helm chart, fetched from its repository at sync time",
    "helmChartInflationGenerator": "inflates a Helm chart at sync time",
    "generators": "runs generator plugins at sync time",
    "transformers": "runs transformer plugins at sync time",
    "validators": "runs validator plugins at sync time",
}
REMOTE = re.compile(r"^([a-z][a-z0-9+.-]*://|[a-z][a-z0-9+.-]*::|git@|[^/]+\.[a-z]{2,}/)"
                    r"|\?ref=|//", re.IGNORECASE)


def remote_problems(kustomization: Mapping[str, Any], where: str, directory: str,
                    confine: str | None) -> list[str]:
    """Why a kustomization (`where`, in repository directory `directory`) is not local: each
    problem names the file, the key, the value and what is allowed. Its includes must stay
    under `confine` (the team's directory; None: anywhere in the repository)."""
    problems = []
    for key, why in FORBIDDEN.items():
        if key in kustomization:
            problems.append(f"{where}: {key}: {why}; allowed: plain manifests of this "
                            "directory (platformctl new-service writes them)")
    for key in INCLUDES:
        for entry in kustomization.get(key) or ():
            value = str(entry)
            if REMOTE.search(value):
                problems.append(f"{where}: {key}: {value!r}: a remote source, fetched at sync "
                                "time and outside this pull request; allowed: a path in this "
                                "repository" + (f", inside {confine}" if confine else ""))
                continue
            if confine is None:
                continue
            target = posixpath.normpath(posixpath.join(directory, value))
            if value.startswith("/") or not (target == confine or
                                             target.startswith(confine.rstrip("/") + "/")):
                problems.append(f"{where}: {key}: {value!r}: leaves {confine}; allowed: a "
                                f"path inside {confine}")
    return problems


def team_kustomizations(project: Path) -> Iterable[tuple[Path, str]]:
    """(kustomization file, its team's directory) under gitops/teams/."""
    teams = project / "gitops" / "teams"
    for path in sorted(teams.rglob("kustomization.y*ml")) if teams.is_dir() else ():
        team = path.relative_to(teams).parts[0]
        yield path, f"gitops/teams/{team}"


def check(project: Path) -> list[str]:
    """Every team kustomization's remote or escaping sources (see the module docstring)."""
    from stacks import userfile
    from stacks.config import ConfigError

    problems = []
    for path, confine in team_kustomizations(project):
        where = path.relative_to(project).as_posix()
        try:
            document = userfile.read_yaml(path)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        if not isinstance(document, dict):
            problems.append(f"{where}: not a kustomization (a mapping)")
            continue
        problems += remote_problems(document, where, posixpath.dirname(where), confine)
    return problems
