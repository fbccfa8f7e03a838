"""The vendored Helm charts: `charts/charts.yaml` names, for each chart the platform installs, the
packaged archive in `charts/`, its version, sha256 and upstream source.

Releases install from the archive (a local chart path, relative to the project directory where
`pulumi up` runs), so what `platformctl review` rendered and checked is byte for byte what gets
installed; an archive that is missing or whose sha256 differs from the record stops the program
before anything is registered.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CHARTS_DIR = "charts"  # relative to the project directory (where Pulumi.yaml is)
CATALOG_FILE = "charts.yaml"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ChartError(Exception):
    """A vendored chart that cannot be used: unknown, missing, or not the archive recorded."""


@dataclass(frozen=True)
class VendoredChart:
    name: str
    version: str
    app_version: str
    archive: str
    sha256: str
    published: str
    source: dict[str, Any]
    license: dict[str, Any]
    dependencies: tuple[dict[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    root: Path = field(default=PROJECT_ROOT, compare=False)

    @property
    def chart_path(self) -> str:
        """The chart input of a Release: relative to the project directory, the same on every
        machine that runs `pulumi up` (an absolute path would show as a change per operator)."""
        return f"{CHARTS_DIR}/{self.archive}"

    @property
    def archive_path(self) -> Path:
        return self.root / CHARTS_DIR / self.archive

    def verify(self) -> Path:
        """The archive's path, once its sha256 is the recorded one."""
        path = self.archive_path
        if not path.is_file():
            raise ChartError(f"chart {self.name} {self.version}: {self.chart_path} is missing "
                             f"(recorded in {CHARTS_DIR}/{CATALOG_FILE})")
        digest = _sha256(path)
        if digest != self.sha256:
            raise ChartError(
                f"chart {self.name} {self.version}: {self.chart_path} has sha256 {digest}, "
                f"{CHARTS_DIR}/{CATALOG_FILE} records {self.sha256} (replace the archive with the "
                "reviewed one, or record the new one as charts/README.md describes)")
        return path


@functools.cache
def _sha256_cached(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    stat = path.stat()
    return _sha256_cached(path, stat.st_size, stat.st_mtime_ns)


@functools.cache
def catalog(root: Path = PROJECT_ROOT) -> dict[str, VendoredChart]:
    """Every vendored chart, by chart name."""
    path = root / CHARTS_DIR / CATALOG_FILE
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ChartError(f"{CHARTS_DIR}/{CATALOG_FILE}: cannot be read: {exc}") from None
    charts = {}
    for name, entry in (document or {}).get("charts", {}).items():
        try:
            charts[name] = VendoredChart(
                name=name, version=str(entry["version"]), app_version=str(entry["app_version"]),
                archive=entry["archive"], sha256=entry["sha256"], published=entry["published"],
                source=dict(entry["source"]), license=dict(entry["license"]),
                dependencies=tuple(entry.get("dependencies") or ()),
                notes=tuple(entry.get("notes") or ()), root=root)
        except (KeyError, TypeError) as exc:
            raise ChartError(f"{CHARTS_DIR}/{CATALOG_FILE}: chart {name}: missing {exc}") from None
    return charts


def chart(name: str) -> VendoredChart:
    """The vendored chart `name`, its archive verified."""
    charts = catalog()
    if name not in charts:
        raise ChartError(f"chart {name!r} is not vendored in {CHARTS_DIR}/{CATALOG_FILE} "
                         f"(vendored: {', '.join(sorted(charts))})")
    found = charts[name]
    found.verify()
    return found


def by_chart_path(chart_path: str, root: Path = PROJECT_ROOT) -> VendoredChart | None:
    """The vendored chart a Release's `chart` input points at, if any."""
    return next((c for c in catalog(root).values() if c.chart_path == chart_path), None)


README_PATH = Path(CHARTS_DIR) / "README.md"


def readme(root: Path = PROJECT_ROOT) -> str:
    """charts/README.md, generated from charts/charts.yaml (`platformctl generate --write`)."""
    rows, notes = [], []
    for c in catalog(root).values():
        src = c.source
        rows.append(f"| `{c.name}` | {c.version} ({c.app_version}) | `{c.archive}` | "
                    f"[{src['repository']}](https://github.com/{src['repository']}) `{src['ref']}` "
                    f"({str(src['commit'])[:12]}, {src.get('date', '')}), path `{src['path']}` | "
                    f"`{c.sha256}` | [{c.license['spdx']}]({c.license['file']}) |")
        for dep in c.dependencies:
            where = (f"{dep['repository']} `{dep['ref']}` ({str(dep['commit'])[:12]})"
                     if "repository" in dep else dep.get("source", ""))
            notes.append(f"- `{c.name}` bundles `{dep['name']}` {dep['version']}: {where}")
        notes += [f"- `{c.name}`: {' '.join(str(note).split())}" for note in c.notes]
    return "\n".join([
        "# Vendored Helm charts",
        "",
        "<!-- Generated from charts/charts.yaml by `platformctl generate --write`; edit that file. -->",
        "",
        "Every chart the platform installs, packaged (`helm package`, subcharts inside) at exactly",
        "the version the program installs. Releases install from these archives (a local chart",
        "path), `platformctl review` renders them with the real helm, and the program refuses an",
        "archive whose sha256 differs from `charts.yaml`: what was reviewed is what `pulumi up`",
        "installs. Each upstream repository's licence is in `licenses/`.",
        "",
        "| chart | version (app) | archive | source | sha256 | licence |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "## Subcharts and deviations",
        "",
        *notes,
        "",
        "## Bumping a chart",
        "",
        "From a local clone of the chart's upstream (no network needed), one command packages the",
        "tag's chart directory with helm, replaces the archive, rewrites the chart's entry in",
        "`charts/charts.yaml` (version, app version, archive, sha256, ref, commit, date, path, the",
        "licence file) and regenerates this file; then steps 3 to 5 below:",
        "`.venv/bin/platformctl charts vendor <name> <version> <clone> [--ref TAG] [--path DIR]`",
        "(a chart with subcharts is packaged by hand). Otherwise, on a machine with network",
        "access, from the repository root:",
        "",
        "1. Pull the published chart, or package it from the upstream tag (with its dependencies):",
        "   `helm pull <chart> --repo <published repository> --version <new> -d /tmp`, or",
        "   `helm dependency build <chart dir> && helm package <chart dir> -d /tmp`.",
        "   Before anything changes, `.venv/bin/platformctl charts diff <name> /tmp/<archive>`",
        "   renders both versions with every stack's values: the objects added, removed and",
        "   changed (with field paths), the values the new chart no longer reads, the CRD",
        "   changes; a CRD version the stacks still use and the new chart no longer serves",
        "   fails it (exit 1).",
        "2. Move the archive into `charts/` and remove the old one; in `charts/charts.yaml`",
        "   record the new version, app version,",
        "   archive, `sha256sum charts/<archive>`, the source (repository, tag, commit, path),",
        "   subchart versions, the licence file if it changed, and why.",
        "3. Read the new chart's `values.yaml` and templates against the values the program sets",
        "   (components/*.py): a renamed key is silently ignored by helm.",
        "4. `.venv/bin/platformctl generate --write` (this file), then",
        "   `.venv/bin/platformctl review prod --base origin/main` shows every rendered object the",
        "   bump adds, removes or changes; `bash .ci/run` checks them (Pod Security, schemas, CRDs).",
        "5. Commit the archive, `charts.yaml` and this file together; say in the pull request",
        "   what changed upstream (release notes) and what the review diff shows.",
        "",
    ])
