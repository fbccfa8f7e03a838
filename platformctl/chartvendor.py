"""`platformctl charts vendor NAME VERSION SOURCE`: a chart bump as one command. SOURCE is a
local Git repository holding the chart's upstream (a clone, or a snapshot of it): the chart's
directory at the tag of VERSION is packaged with the real helm into `charts/`, the old archive
removed, and NAME's entry in `charts/charts.yaml` rewritten (version, app version, archive,
sha256, source ref, commit, date and path; the licence file refreshed from the repository at
that tag; a note saying so), then `charts/README.md` regenerated. Everything is checked before
anything is written: the chart vendored, the tag found, the chart's name and version at it, no
subchart to fetch.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

LICENSE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING")


class VendorError(Exception):
    """The bump cannot be made as asked; nothing was written."""


@dataclass
class Vendored:
    name: str
    old_version: str
    version: str
    archive: Path
    sha256: str
    ref: str
    commit: str


def _git(source: Path, *args: str, text: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=text,
                          timeout=120, check=False)


def resolve_ref(source: Path, name: str, version: str, ref: str | None) -> str:
    """`ref`, or the first of the tags upstreams use for a chart release that exists."""
    candidates = [ref] if ref else [f"{name}-{version}", f"{name}-helm-chart-{version}",
                                    f"v{version}", version, f"{name}-v{version}"]
    for candidate in candidates:
        if _git(source, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}").returncode == 0:
            return candidate
    raise VendorError(f"{source}: no tag for {name} {version} (tried {', '.join(candidates)}); "
                      "allowed: --ref TAG naming it")


def _entry_block(catalog: str, name: str) -> tuple[int, int]:
    """Where NAME's entry is in charts.yaml's text: its line and the next entry's."""
    match = re.search(rf"^  {re.escape(name)}:\n", catalog, re.M)
    if not match:
        raise VendorError(f"chart {name!r} is not vendored in charts/charts.yaml")
    following = re.search(r"^  [A-Za-z0-9-]+:\n", catalog[match.end():], re.M)
    return match.start(), match.end() + (following.start() if following else
                                         len(catalog) - match.end())


def vendor(project: Path, name: str, version: str, source: Path, ref: str | None = None,
           path: str | None = None) -> Vendored:
    from components import charts
    from platformctl import helmbin

    catalog_path = project / "charts" / "charts.yaml"
    catalog_text = catalog_path.read_text(encoding="utf-8")
    found = charts.catalog(project)
    if name not in found:
        raise VendorError(f"chart {name!r} is not vendored in charts/charts.yaml; allowed: "
                          + ", ".join(sorted(found)))
    current = found[name]
    if current.dependencies:
        raise VendorError(f"{name} has subcharts ("
                          + ", ".join(str(d.get("name")) for d in current.dependencies)
                          + ") whose provenance charts.yaml records: build and package it by "
                          "hand (charts/README.md, `helm dependency build`)")
    if not (source / ".git").exists() and _git(source, "rev-parse", "--git-dir").returncode != 0:
        raise VendorError(f"SOURCE: {source}: not a Git repository; allowed: a clone of the "
                          f"chart's upstream ({current.source.get('repository')})")
    ref = resolve_ref(source, name, version, ref)
    chart_dir = path or str(current.source.get("path"))
    commit = _git(source, "rev-parse", f"{ref}^{{commit}}").stdout.strip()
    date = _git(source, "log", "-1", "--format=%cs", commit).stdout.strip()
    tree = _git(source, "archive", "--format=tar", commit, chart_dir, text=False)
    if tree.returncode != 0:
        raise VendorError(f"{source} at {ref}: no directory {chart_dir!r} "
                          f"({tree.stderr.decode().strip()}); allowed: --path DIR")
    with tempfile.TemporaryDirectory() as scratch:
        with tarfile.open(fileobj=BytesIO(tree.stdout)) as tar:
            tar.extractall(scratch, filter="data")
        unpacked = Path(scratch) / chart_dir
        chart = yaml.safe_load((unpacked / "Chart.yaml").read_text(encoding="utf-8")) or {}
        if chart.get("name") != name or str(chart.get("version")) != version:
            raise VendorError(f"{source} at {ref}: {chart_dir}/Chart.yaml is "
                              f"{chart.get('name')} {chart.get('version')}, not {name} {version}")
        if chart.get("dependencies"):
            subcharts = ", ".join(str(d.get("name")) for d in chart["dependencies"])
            raise VendorError(f"{name} {version} has subcharts ({subcharts}) whose provenance "
                              "charts.yaml records: build and package it by hand "
                              "(charts/README.md, `helm dependency build`)")
        out = Path(scratch) / "out"
        done = subprocess.run([str(helmbin.binary()), "package", str(unpacked), "-d", str(out)],
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise VendorError(f"helm package: {done.stderr.strip()}")
        (packaged,) = out.glob("*.tgz")
        licence = next((_git(source, "show", f"{commit}:{f}").stdout for f in LICENSE_FILES
                        if _git(source, "cat-file", "-e", f"{commit}:{f}").returncode == 0), None)
        packaged_bytes = packaged.read_bytes()
    target = project / "charts" / packaged.name
    # Everything checked: now write, all of it or (an error, Ctrl-C) none of it.
    touched = [target, project / "charts" / current.archive, catalog_path,
               project / "charts" / str(current.license["file"]), project / charts.README_PATH]
    originals = {p: p.read_bytes() if p.is_file() else None for p in touched}

    def restore() -> None:
        for touched_path, data in originals.items():
            if data is None:
                touched_path.unlink(missing_ok=True)
            else:
                touched_path.write_bytes(data)
        charts.catalog.cache_clear()

    from platformctl import interrupts

    key = interrupts.on_interrupt(restore)
    try:
        _write(project, catalog_path, catalog_text, current, name, version, chart, target,
               packaged_bytes, licence, ref, commit, date, chart_dir)
    except BaseException:
        restore()
        raise
    finally:
        interrupts.done(key)
    sha = hashlib.sha256(packaged_bytes).hexdigest()
    return Vendored(name, current.version, version, target, sha, ref, commit)


def _write(project: Path, catalog_path: Path, catalog_text: str, current: Any, name: str,
           version: str, chart: dict[str, Any], target: Path, packaged: bytes,
           licence: str | None, ref: str, commit: str, date: str, chart_dir: str) -> None:
    from components import charts

    target.write_bytes(packaged)
    sha = hashlib.sha256(packaged).hexdigest()
    if current.archive != target.name:
        (project / "charts" / current.archive).unlink(missing_ok=True)
    if licence is not None:
        (project / "charts" / str(current.license["file"])).write_text(licence, encoding="utf-8")
    start, end = _entry_block(catalog_text, name)
    repository = current.source.get("repository")
    block = "\n".join([
        f"  {name}:",
        f"    version: {version}",
        f"    app_version: {yaml.safe_dump(str(chart.get('appVersion', version))).splitlines()[0]}",
        f"    archive: {target.name}",
        f"    sha256: {sha}",
        f"    published: {current.published}",
        f"    source: {{repository: {repository}, ref: {ref},",
        f"             commit: {commit}, date: {date},",
        f"             path: {chart_dir}}}",
        f"    license: {{spdx: {current.license['spdx']}, file: {current.license['file']}}}",
        "    notes:",
        f"      - bumped from {current.version} to {version} with `platformctl charts vendor` from",
        f"        {repository} at {ref}.",
    ]) + "\n"
    catalog_path.write_text(catalog_text[:start] + block + catalog_text[end:], encoding="utf-8")
    charts.catalog.cache_clear()  # read again: the README is the new catalog's
    (project / charts.README_PATH).write_text(charts.readme(project), encoding="utf-8")
