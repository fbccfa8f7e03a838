"""Render the Helm releases of a recording with the real helm: what `pulumi up` would start.

For each `kubernetes:helm.sh/v3:Release` in an evaluation, `helm template` (Helm 3, the installer's
major: platformctl/helmbin.py) runs on the vendored archive the release installs
(charts/charts.yaml, sha256 checked), with exactly the release's name, namespace and values,
the cluster's Kubernetes version and the API versions of every CRD the platform's charts install.
The objects helm prints become :class:`RenderedObject`s, children of their release, on `evaluation.rendered`.

* Secrets in values are never handed to helm: each is replaced by :data:`SECRET_PLACEHOLDER`
  (so rendered objects and the cache hold no secret), and values that are unknown offline by
  :data:`UNKNOWN_PLACEHOLDER`; a release that got either lists the value paths.
* Capabilities: a chart may switch templates on `.Capabilities.APIVersions` (ServiceMonitors when
  the prometheus-operator CRDs exist, ...). The API versions given are those of the CRDs all the
  platform's releases install: the steady state of the cluster after the first `pulumi up`. A
  first install, where releases run in parallel, may see fewer of them (install order is checked
  separately).
* Releases render in parallel, and each render is cached under the cache directory
  (:func:`platformctl.helmbin.cache_dir`) by everything that decides its output: archive sha256,
  values, release, namespace, Kubernetes and API versions, and which helm renders.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pulumi.runtime import rpc

from components import charts
from platformctl import helmbin, synced
from platformctl.recording import (
    Evaluation,
    RecordedResource,
    RenderedObject,
    RenderedRelease,
    Secret,
)
from platformctl.runtime_checks import RELEASE_TYPE
from stacks import userfile

SECRET_PLACEHOLDER = "PLATFORMCTL-SECRET-NOT-RENDERED"
UNKNOWN_PLACEHOLDER = "PLATFORMCTL-UNKNOWN-OFFLINE"
CACHE_VERSION = 2  # bump when what is cached changes shape

_SOURCE = re.compile(r"^# Source: (.+)$", re.MULTILINE)


class _Loader(userfile.FAST_SAFE_LOADER):  # type: ignore[misc,valid-type]
    """The C loader where PyYAML has libyaml (charts render megabytes of CRDs). A plain `=`
    (an enum value in prometheus-operator's CRDs) is YAML 1.1's `value` tag, which PyYAML's
    safe loaders cannot construct; Kubernetes reads it as the string "="."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


class RenderError(Exception):
    """A release that cannot be rendered: one line naming the release, the chart and why."""


# -- values -------------------------------------------------------------------------------


def helm_values(values: Any, path: str = "", marked: list[str] | None = None) -> Any:
    """Recorded values as helm gets them: secrets and unknowns replaced by marked placeholders
    (their paths appended to `marked`)."""
    marked = [] if marked is None else marked
    if isinstance(values, Secret):
        marked.append(f"{path or '(values)'} (secret)")
        return SECRET_PLACEHOLDER
    if isinstance(values, dict):
        return {k: helm_values(v, f"{path}.{k}" if path else k, marked) for k, v in values.items()}
    if isinstance(values, list):
        return [helm_values(v, f"{path}[{i}]", marked) for i, v in enumerate(values)]
    if values == rpc.UNKNOWN:
        marked.append(f"{path or '(values)'} (unknown offline)")
        return UNKNOWN_PLACEHOLDER
    return values


# -- one release ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    resource: RecordedResource
    release: str
    namespace: str
    chart: charts.VendoredChart
    values: dict[str, Any]
    placeholders: tuple[str, ...]
    include_crds: bool
    helm: str = "helm"  # which helm renders (platformctl.helmbin.TOOLS): the installer's major

    def key(self, kube_version: str, api_versions: tuple[str, ...]) -> str:
        material = json.dumps({
            "v": CACHE_VERSION, "helm": helmbin.identity(self.helm), "sha256": self.chart.sha256,
            "release": self.release, "namespace": self.namespace, "values": self.values,
            "kube": kube_version, "apis": list(api_versions), "crds": self.include_crds,
        }, sort_keys=True, default=str)
        return hashlib.sha256(material.encode()).hexdigest()


def _job(resource: RecordedResource, root: Path) -> _Job:
    inputs = resource.inputs
    chart_path = str(inputs.get("chart", ""))
    found = charts.by_chart_path(chart_path, root)
    if found is None:
        raise RenderError(
            f"release {resource.name}: chart {chart_path!r} is not a vendored archive "
            f"(charts/charts.yaml); every release installs from charts/")
    try:
        found.verify()
    except charts.ChartError as exc:
        raise RenderError(f"release {resource.name}: {exc}") from None
    if inputs.get("repositoryOpts"):
        raise RenderError(f"release {resource.name}: chart {found.name} has repositoryOpts; "
                          "a vendored chart installs from its archive alone")
    if str(inputs.get("version", found.version)) != found.version:
        raise RenderError(f"release {resource.name}: chart {found.name} version "
                          f"{inputs.get('version')} is not the vendored {found.version}")
    marked: list[str] = []
    values = helm_values(inputs.get("values") or {}, "", marked)
    if not isinstance(values, dict):
        raise RenderError(f"release {resource.name}: values are not a mapping")
    return _Job(resource=resource, release=str(inputs.get("name") or resource.name),
                namespace=str(inputs.get("namespace") or "default"), chart=found,
                values=values, placeholders=tuple(marked),
                include_crds=not inputs.get("skipCrds", False))


def _helm_error(stderr: str) -> str:
    """helm's error as one line: its last `Error:` line and the detail lines after it (a values
    schema failure lists the chart and the offending paths below the `Error:` line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    starts = [i for i, line in enumerate(lines) if line.startswith("Error")]
    if not starts:
        return (lines or ["helm failed without a message"])[-1]
    return " ".join(lines[starts[-1]:starts[-1] + 8])


def _parse(job: _Job, text: str) -> list[dict[str, Any]]:
    found = []
    for chunk in re.split(r"^---\s*$", text, flags=re.MULTILINE):
        source = _SOURCE.search(chunk)
        try:
            body = yaml.load(chunk, Loader=_Loader)
        except yaml.YAMLError as exc:
            raise RenderError(f"release {job.resource.name}: chart {job.chart.name} "
                              f"{job.chart.version}: rendered YAML does not parse: {exc}") from None
        if not body:
            continue
        if not isinstance(body, dict) or "kind" not in body:
            raise RenderError(f"release {job.resource.name}: chart {job.chart.name}: rendered "
                              f"a document that is not a Kubernetes object ({source and source[1]})")
        # A `List` (kind List, items) is applied item by item, as kubectl and helm do.
        for item in body.get("items") or () if body["kind"] == "List" else (body,):
            found.append({"source": source[1] if source else "", "object": item})
    return found


def _run_helm(job: _Job, kube_version: str, api_versions: tuple[str, ...]) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as values_file:
        json.dump(job.values, values_file)
        values_file.flush()
        command = [str(helmbin.binary(job.helm)), "template", job.release, str(job.chart.archive_path),
                   "--namespace", job.namespace, "--kube-version", kube_version,
                   "--values", values_file.name, "--skip-tests"]
        if job.include_crds:
            command.append("--include-crds")
        for api in api_versions:
            command += ["--api-versions", api]
        # No network, no user repositories: helm reads only the archive.
        env = {**os.environ, "HELM_REPOSITORY_CONFIG": os.devnull, "HELM_NO_PLUGINS": "1"}
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        except (OSError, subprocess.SubprocessError) as exc:
            raise RenderError(f"release {job.resource.name}: chart {job.chart.name} "
                              f"{job.chart.version}: helm did not run: {exc}") from None
    if done.returncode != 0:
        raise RenderError(f"release {job.resource.name}: chart {job.chart.name} "
                          f"{job.chart.version}: {_helm_error(done.stderr)}")
    return _parse(job, done.stdout)


def _cached_or_rendered(job: _Job, kube_version: str, api_versions: tuple[str, ...],
                        cache_dir: Path | None) -> tuple[list[dict[str, Any]], bool]:
    path = cache_dir / f"{job.key(kube_version, api_versions)}.json" if cache_dir else None
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8")), True
        except (OSError, ValueError):
            pass
    documents = _run_helm(job, kube_version, api_versions)
    if path is not None:
        _write(path, json.dumps(documents))
        _write(path.with_suffix(".apis"), json.dumps(
            crd_api_versions(d["object"] for d in documents)))
    return documents, False


def _write(path: Path, text: str) -> None:
    """Write a cache file atomically (parallel reviews share the cache); a cache that cannot be
    written (read-only home, full disk) only costs the next run a render."""
    staging = path.with_name(f".{path.name}.{os.getpid()}.{id(text)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging.write_text(text, encoding="utf-8")
        staging.replace(path)
    except OSError:
        staging.unlink(missing_ok=True)


def _crd_apis(job: _Job, kube_version: str, cache_dir: Path | None) -> tuple[str, ...]:
    """The API versions of the CRDs the release installs (rendered without extra APIs): read
    from the cache's small sidecar file when there is one, so a warm run loads no CRD twice."""
    if cache_dir is not None:
        sidecar = cache_dir / f"{job.key(kube_version, ())}.apis"
        if sidecar.is_file():
            try:
                return tuple(json.loads(sidecar.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                pass
    documents, _ = _cached_or_rendered(job, kube_version, (), cache_dir)
    return crd_api_versions(d["object"] for d in documents)


def api_versions(jobs: Iterable[_Job], kube_version: str, cache_dir: Path | None,
                 pool: ThreadPoolExecutor | None = None) -> tuple[str, ...]:
    """The API versions the CRDs of every release of a stack (`jobs`) add to the cluster's
    built-in ones: what a chart asking `.Capabilities.APIVersions.Has` sees once they are in."""
    found = (pool.map if pool else map)(lambda j: _crd_apis(j, kube_version, cache_dir), jobs)
    return tuple(sorted({a for apis in found for a in apis}))


def render_in_stack(job: _Job, kube_version: str, apis: tuple[str, ...],
                    cache_dir: Path | None) -> RenderedRelease:
    """One release as the stack installs it: with the stack's CRD API versions (`apis`, from
    :func:`api_versions`) when its chart's templates ask for them (else its first rendering
    is the final one)."""
    return _render(job, kube_version,
                   apis if apis and _uses_capabilities(job.chart, cache_dir) else (), cache_dir)


def _render(job: _Job, kube_version: str, api_versions: tuple[str, ...],
            cache_dir: Path | None) -> RenderedRelease:
    started = time.perf_counter()
    documents, cached = _cached_or_rendered(job, kube_version, api_versions, cache_dir)
    objects = []
    for doc in documents:
        body = doc["object"]
        metadata = body.get("metadata") or {}
        objects.append(RenderedObject(
            release=job.resource.name, api_version=str(body.get("apiVersion", "")),
            kind=str(body["kind"]), namespace=metadata.get("namespace"),
            name=str(metadata.get("name", "")), source=doc["source"], object=body))
    return RenderedRelease(resource=job.resource, release=job.release, namespace=job.namespace,
                           chart=job.chart, objects=objects, placeholders=list(job.placeholders),
                           cached=cached, seconds=time.perf_counter() - started)


def _uses_capabilities(chart: charts.VendoredChart, cache_dir: Path | None) -> bool:
    """Whether any template of the chart (or its subcharts) reads `.Capabilities.APIVersions`
    (remembered per archive sha256)."""
    marker = cache_dir / f"capabilities-{chart.sha256}" if cache_dir else None
    if marker is not None and marker.is_file():
        return marker.read_text(encoding="utf-8").strip() == "yes"
    with tarfile.open(chart.archive_path) as archive:
        uses = _tar_mentions(archive, b"Capabilities.APIVersions")
    if marker is not None:
        _write(marker, "yes" if uses else "no")
    return uses


def _tar_mentions(archive: tarfile.TarFile, needle: bytes) -> bool:
    for member in archive.getmembers():
        if not member.isfile():
            continue
        data = archive.extractfile(member).read()  # type: ignore[union-attr]
        if member.name.endswith(".tgz"):
            with tarfile.open(fileobj=io.BytesIO(data)) as inner:
                if _tar_mentions(inner, needle):
                    return True
        elif needle in data:
            return True
    return False


def crd_api_versions(bodies: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """`group/version` and `group/version/Kind` of every served version of the CRDs among the
    object `bodies`, as `helm template --api-versions` takes them."""
    apis = set()
    for body in bodies:
        if body.get("kind") != "CustomResourceDefinition":
            continue
        spec = body.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or ():
            if version.get("served", True):
                apis.add(f"{group}/{version['name']}")
                apis.add(f"{group}/{version['name']}/{kind}")
    return tuple(sorted(apis))


def kube_version_of(evaluation: Evaluation) -> str:
    assert evaluation.config is not None
    return f"v{evaluation.config.cluster.kubernetes_version}.0"


def render(evaluation: Evaluation, root: Path | None = None, use_cache: bool = True,
           workers: int | None = None, helm: str = "helm") -> list[RenderedRelease]:
    """Render every Helm release of `evaluation` (also stored on `evaluation.rendered`), with
    `helm` (Helm 3, the installer's major, unless the helm 3/4 differential asks for `helm4`).

    Raises :class:`RenderError` (one line: release, chart, helm's error) or
    :class:`platformctl.helmbin.HelmNotFound`."""
    root = root or charts.PROJECT_ROOT
    evaluation.synced = synced.applications(evaluation, root)
    jobs = [dataclasses.replace(_job(r, root), helm=helm)
            for r in evaluation.of_type(RELEASE_TYPE)]
    if not jobs:
        evaluation.rendered, evaluation.is_rendered = [], True
        return []
    helmbin.binary(helm)  # fail once, clearly, before starting threads
    kube_version = kube_version_of(evaluation)
    cache_dir = helmbin.cache_dir() / "renders" if use_cache else None
    workers = workers or max(2, os.cpu_count() or 2)
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        # First the CRDs every release installs, then each release with their API versions.
        apis = api_versions(jobs, kube_version, cache_dir, pool)
        rendered = list(pool.map(
            lambda j: render_in_stack(j, kube_version, apis, cache_dir), jobs))
    evaluation.rendered, evaluation.is_rendered = rendered, True
    return rendered


def render_each(evaluation: Evaluation, kube_version: str,
                root: Path | None = None) -> tuple[list[RenderedRelease], dict[str, str]]:
    """Every Helm release of `evaluation` rendered at `kube_version` (another minor than the
    stack's: `platformctl upgrade-check`), each on its own: (the releases helm rendered, the
    error of each it refused by release name: a chart whose kubeVersion excludes the version,
    say). `evaluation.rendered` is left as it was."""
    root = root or charts.PROJECT_ROOT
    jobs = [_job(r, root) for r in evaluation.of_type(RELEASE_TYPE)]
    helmbin.binary()
    cache_dir = helmbin.cache_dir() / "renders"
    refused: dict[str, str] = {}

    def crd_apis(job: _Job) -> tuple[str, ...]:
        try:
            return _crd_apis(job, kube_version, cache_dir)
        except RenderError as error:
            refused[job.release] = str(error)
            return ()

    def one(job: _Job, apis: tuple[str, ...]) -> RenderedRelease | None:
        try:
            return render_in_stack(job, kube_version, apis, cache_dir)
        except RenderError as error:
            refused[job.release] = str(error)
            return None

    # As render() does: the CRDs every release installs first, then each release with them.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        apis = tuple(sorted({a for found in pool.map(crd_apis, jobs) for a in found}))
        rendered = [r for r in pool.map(lambda j: one(j, apis),
                                        [j for j in jobs if j.release not in refused])
                    if r is not None]
    return rendered, refused


def objects(evaluation: Evaluation) -> list[RenderedObject]:
    """Every rendered object of an evaluation (after :func:`render`)."""
    return [o for rendered in evaluation.rendered for o in rendered.objects]


# -- values the chart does not know -----------------------------------------------------------


def chart_defaults(chart: charts.VendoredChart) -> dict[str, Any]:
    """The chart's default values, each subchart's under its name (as a parent passes them)."""
    def read(archive: tarfile.TarFile, prefix: str) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        subcharts: dict[str, dict[str, Any]] = {}
        for member in archive.getmembers():
            if not member.isfile():
                continue
            parts = member.name.split("/")
            if parts[0] != prefix:
                continue
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            if parts[1:] == ["values.yaml"]:
                defaults = yaml.load(data, Loader=_Loader) or {}
            elif len(parts) == 3 and parts[1] == "charts" and parts[2].endswith(".tgz"):
                with tarfile.open(fileobj=io.BytesIO(data)) as inner:
                    name = inner.getmembers()[0].name.split("/")[0]
                    subcharts[name] = read(inner, name)
            elif len(parts) == 4 and parts[1] == "charts" and parts[3] == "values.yaml":
                subcharts[parts[2]] = yaml.load(data, Loader=_Loader) or {}
        for name, values in subcharts.items():
            defaults[name] = {**values, **(defaults.get(name) or {})}
        return defaults

    with tarfile.open(chart.archive_path) as archive:
        return read(archive, chart.name)


def unknown_values(values: Mapping[str, Any], defaults: Mapping[str, Any],
                   path: tuple[str, ...] = (), paths: bool = False) -> list[Any]:
    """Value paths the chart's defaults do not declare (dotted, or as key lists with `paths`):
    candidates for a key helm ignores silently, or one the chart reads without declaring it (a
    commented-out default). A key under a default that is an empty map, or not a map at all (a
    free-form value), is accepted."""
    unknown: list[Any] = []
    for key, value in values.items():
        here = (*path, str(key))
        if key not in defaults:
            if key != "global":
                unknown.append(list(here) if paths else ".".join(here))
            continue
        default = defaults[key]
        if isinstance(value, Mapping) and isinstance(default, Mapping) and default:
            unknown += unknown_values(value, default, here, paths)
    return unknown


def _probe(value: Any) -> Any:
    """A different value of the same kind: if the chart reads the key, the rendering changes."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return f"{value}-platformctl-probe"
    if isinstance(value, list):
        return [*value, "platformctl-probe"]
    return "platformctl-probe"


def _trial(values: Mapping[str, Any], path: list[str]) -> dict[str, Any]:
    """`values` with the value at `path` changed (a leaf) or taken out (a map)."""
    head, rest = path[0], path[1:]
    copy = dict(values)
    if rest:
        copy[head] = _trial(copy[head], rest)
    elif isinstance(copy[head], Mapping):
        del copy[head]
    else:
        copy[head] = _probe(copy[head])
    return copy


def without_generated(body: Mapping[str, Any]) -> dict[str, Any]:
    """A rendered object without what a chart generates afresh on every render (keys and
    certificates, their CA bundles and checksums, `rollme` annotations of random letters), so two
    renders compare by what was asked."""
    def scrub(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: scrub(v) for k, v in value.items()
                    if k not in ("caBundle", "rollme") and not str(k).startswith("checksum/")}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    copy = dict(body)
    if copy.get("kind") == "Secret":
        copy.pop("data", None)
        copy.pop("stringData", None)
    return scrub(copy)


def _comparable(documents: list[dict[str, Any]]) -> str:
    return json.dumps([without_generated(doc["object"]) for doc in documents], sort_keys=True,
                      default=str)


def ignored_values(evaluation: Evaluation, resource: RecordedResource,
                   root: Path | None = None,
                   known_read: set[tuple[str, str]] | None = None) -> list[str]:
    """Value paths a release sets that its chart ignores (helm never says): for each path the
    chart's defaults do not declare, the value is changed (or, for a map, taken out), and if the
    rendering stays the same, the chart never read it (a misspelt or renamed key). The trial
    renders are cached like any other. `known_read`, if given, holds (chart, path) pairs already
    shown to be read (skipped) and receives those shown here."""
    job = _job(resource, root or charts.PROJECT_ROOT)
    kube_version = kube_version_of(evaluation)
    cache_dir = helmbin.cache_dir() / "renders"
    known = known_read if known_read is not None else set()
    flagged = [p for p in unknown_values(job.values, chart_defaults(job.chart), paths=True)
               if (job.chart.name, ".".join(p)) not in known]
    if not flagged:
        return []

    def rendering_of(values: Mapping[str, Any]) -> str:
        trial = dataclasses.replace(job, values=dict(values))
        return _comparable(_cached_or_rendered(trial, kube_version, (), cache_dir)[0])

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        reference, *trials = pool.map(
            rendering_of, [job.values, *(_trial(job.values, p) for p in flagged)])
    ignored = [".".join(p) for p, trial in zip(flagged, trials, strict=True) if trial == reference]
    known.update((job.chart.name, ".".join(p)) for p in flagged if ".".join(p) not in ignored)
    return ignored
