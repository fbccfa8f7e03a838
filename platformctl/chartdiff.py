"""`platformctl charts diff NAME ARCHIVE`: what replacing the vendored chart NAME by ARCHIVE
(another version, packaged) changes in each stack, before the bump is made.

For every release of the chart in each stack (the program evaluated offline, values as the
stack sets them), both archives are rendered by the real helm at the stack's Kubernetes version
and compared:
- objects added, removed and changed (by kind, namespace and name), each change with the field
  paths that differ (generated values such as certificates left out, as the review does);
- values the stack sets that the new chart no longer reads (the review's ignored-values check,
  run against the new chart);
- CustomResourceDefinitions: versions no longer served, schema fields removed, fields made
  required. A version no longer served while an object of the stack (a rendered one, or a team
  manifest Argo CD syncs) still uses it is a blocker: the API server would stop serving it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from platformctl.objectdiff import MAX_PATHS
from platformctl.objectdiff import field_paths as _paths

BLOCKER, CHANGE = "blocker", "change"


class ChartDiffError(Exception):
    """The chart or the archive cannot be compared (unknown chart, not a chart archive)."""


@dataclass
class ReleaseDiff:
    stack: str
    release: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    unread_values: list[str] = field(default_factory=list)
    crds: list[dict[str, Any]] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)


@dataclass
class ChartDiff:
    chart: str
    old_version: str
    new_version: str
    releases: list[ReleaseDiff] = field(default_factory=list)

    @property
    def blockers(self) -> list[str]:
        return [b for r in self.releases for b in r.blockers]

    def document(self) -> dict[str, Any]:
        return {"schema": "platformctl.chart-diff/v1", "chart": self.chart,
                "from": self.old_version, "to": self.new_version, "blockers": self.blockers,
                "releases": [dataclasses.asdict(r) for r in self.releases]}


def archive_chart(archive: Path) -> dict[str, Any]:
    """The Chart.yaml of a packaged chart."""
    try:
        with tarfile.open(archive) as tar:
            member = next(m for m in tar.getmembers()
                          if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml"))
            return yaml.safe_load(tar.extractfile(member).read()) or {}
    except (OSError, tarfile.TarError, StopIteration, yaml.YAMLError) as error:
        raise ChartDiffError(f"{archive}: not a packaged chart (helm package's .tgz): "
                             f"{error}") from None


def _key(body: dict[str, Any]) -> str:
    metadata = body.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{body.get('kind')} {namespace + '/' if namespace else ''}{metadata.get('name')}"


def _schema_fields(schema: dict[str, Any], at: str = "") -> tuple[set[str], set[str]]:
    """(every property path, every required property path) of an OpenAPI v3 schema."""
    fields, required = set(), set()
    for name, sub in (schema.get("properties") or {}).items():
        where = f"{at}.{name}" if at else name
        fields.add(where)
        if name in (schema.get("required") or []):
            required.add(where)
        inner_fields, inner_required = _schema_fields(sub or {}, where)
        fields |= inner_fields
        required |= inner_required
    items = schema.get("items")
    if isinstance(items, dict):
        inner_fields, inner_required = _schema_fields(items, f"{at}[]")
        fields |= inner_fields
        required |= inner_required
    return fields, required


def crd_changes(old: dict[str, Any], new: dict[str, Any] | None) -> dict[str, Any]:
    """Versions no longer served, fields removed and fields made required, per version."""
    spec = old.get("spec") or {}
    group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")

    def served(crd: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
        return {v["name"]: ((v.get("schema") or {}).get("openAPIV3Schema") or {})
                for v in ((crd or {}).get("spec") or {}).get("versions") or []
                if v.get("served", True)}

    before, after = served(old), served(new)
    change: dict[str, Any] = {"crd": (old.get("metadata") or {}).get("name"), "group": group,
                              "kind": kind, "versions_removed": sorted(set(before) - set(after)),
                              "fields_removed": {}, "fields_now_required": {}}
    for version in sorted(set(before) & set(after)):
        old_fields, old_required = _schema_fields(before[version])
        new_fields, new_required = _schema_fields(after[version])
        if gone := sorted(old_fields - new_fields):
            change["fields_removed"][version] = gone
        if now := sorted((new_required - old_required) & old_fields):
            change["fields_now_required"][version] = now
    return change


def _new_root(project: Path, chart: Any, archive: Path, into: Path) -> Path:
    """A project root whose charts/ has `archive` where the vendored one was (same file name,
    so the stacks' Release inputs find it) and charts.yaml records its sha256."""
    (into / "charts").mkdir(parents=True)
    shutil.copy2(archive, into / "charts" / chart.archive)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    catalog = (project / "charts" / "charts.yaml").read_text(encoding="utf-8")
    (into / "charts" / "charts.yaml").write_text(catalog.replace(chart.sha256, sha),
                                                 encoding="utf-8")
    return into


def diff(project: Path, name: str, archive: Path, stacks: list[str],
         evaluations: dict[str, Any] | None = None) -> ChartDiff:
    """`evaluations`: stacks already evaluated (the tests'), by name; the others are evaluated
    here."""
    from components import charts
    from platformctl import pipeline, rendering, synced

    catalog = charts.catalog(project)
    if name not in catalog:
        raise ChartDiffError(f"chart {name!r} is not vendored in charts/charts.yaml; allowed: "
                             + ", ".join(sorted(catalog)))
    vendored = catalog[name]
    new_chart = archive_chart(archive)
    if new_chart.get("name") != name:
        raise ChartDiffError(f"{archive}: a chart named {new_chart.get('name')!r}, not {name!r}")
    result = ChartDiff(name, vendored.version, str(new_chart.get("version")))
    with tempfile.TemporaryDirectory() as scratch:
        new_root = _new_root(project, vendored, archive, Path(scratch))
        cache_dir = rendering.helmbin.cache_dir() / "renders"
        for stack in stacks:
            evaluation = ((evaluations or {}).get(stack)
                          or pipeline.evaluate(stack, project_dir=project))
            kube_version = rendering.kube_version_of(evaluation)
            releases = [r for r in evaluation.of_type(rendering.RELEASE_TYPE)
                        if str(r.inputs.get("chart")) == vendored.chart_path]
            if not releases:
                continue
            if not evaluation.is_rendered:
                rendering.render(evaluation, project)
            in_use = {(str(o.object.get("apiVersion")), str(o.object.get("kind")))
                      for rel in evaluation.rendered for o in rel.objects}
            in_use |= {(str(o.get("apiVersion")), str(o.get("kind")))
                       for app in synced.applications(evaluation, project) for o in app.objects}
            # Each side as its stack installs it: with the API versions the stack's CRDs add
            # (the new chart's own CRDs on the new side), as the review renders.
            old_jobs = {r.urn: rendering._job(r, project)
                        for r in evaluation.of_type(rendering.RELEASE_TYPE)}
            new_jobs = {**old_jobs, **{r.urn: rendering._job(r, new_root) for r in releases}}
            old_apis = rendering.api_versions(old_jobs.values(), kube_version, cache_dir)
            new_apis = rendering.api_versions(new_jobs.values(), kube_version, cache_dir)
            for resource in releases:
                old = rendering.render_in_stack(old_jobs[resource.urn], kube_version, old_apis,
                                                cache_dir)
                new = rendering.render_in_stack(new_jobs[resource.urn], kube_version, new_apis,
                                                cache_dir)
                result.releases.append(_compare(stack, old, new, in_use, rendering.ignored_values(
                    evaluation, resource, new_root)))
    return result


def _compare(stack: str, old: Any, new: Any, in_use: set[tuple[str, str]],
             unread: list[str]) -> ReleaseDiff:
    from platformctl.rendering import without_generated

    found = ReleaseDiff(stack, old.release, unread_values=unread)
    before = {_key(o.object): without_generated(o.object) for o in old.objects}
    after = {_key(o.object): without_generated(o.object) for o in new.objects}
    found.added = sorted(set(after) - set(before))
    found.removed = sorted(set(before) - set(after))
    for key in sorted(set(before) & set(after)):
        if before[key] == after[key]:
            continue
        if key.startswith("CustomResourceDefinition "):
            change = crd_changes(before[key], after[key])
            if change["versions_removed"] or change["fields_removed"] or \
                    change["fields_now_required"]:
                found.crds.append(change)
        paths = _paths(before[key], after[key])
        found.changed[key] = paths[:MAX_PATHS] + (
            [f"... {len(paths) - MAX_PATHS} more"] if len(paths) > MAX_PATHS else [])
    for key in found.removed:
        if key.startswith("CustomResourceDefinition "):
            found.crds.append(crd_changes(before[key], None))
    for change in found.crds:
        for version in change["versions_removed"]:
            api = f"{change['group']}/{version}"
            if (api, change["kind"]) in in_use:
                found.blockers.append(
                    f"{stack}: {api} {change['kind']} is no longer served by the new chart's "
                    f"CRD {change['crd']}, and objects of the stack use it")
    return found


def text(result: ChartDiff) -> str:
    out = [f"Chart {result.chart}: {result.old_version} -> {result.new_version}"
           + (f": {len(result.blockers)} blocker(s)" if result.blockers else ""), ""]
    for blocker in result.blockers:
        out.append(f"BLOCKER {blocker}")
    for release in result.releases:
        out.append(f"{release.stack} / release {release.release}: {len(release.added)} added, "
                   f"{len(release.removed)} removed, {len(release.changed)} changed")
        out += [f"  + {k}" for k in release.added]
        out += [f"  - {k}" for k in release.removed]
        for key, paths in release.changed.items():
            out.append(f"  ~ {key}: {', '.join(paths)}")
        if release.unread_values:
            out.append("  values the new chart does not read: "
                       + ", ".join(release.unread_values))
        for change in release.crds:
            parts = []
            if change["versions_removed"]:
                parts.append(f"versions no longer served {', '.join(change['versions_removed'])}")
            for version, fields in change["fields_removed"].items():
                parts.append(f"{version}: fields removed {', '.join(fields[:8])}"
                             + (" ..." if len(fields) > 8 else ""))
            for version, fields in change["fields_now_required"].items():
                parts.append(f"{version}: now required {', '.join(fields)}")
            out.append(f"  CRD {change['crd']}: {'; '.join(parts)}")
    return "\n".join(out) + "\n"
