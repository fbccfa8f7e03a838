"""The Kubernetes minors the platform runs on EKS (kubernetes.json): what EKS offers, the add-on
builds known good on each minor, the Cluster Autoscaler image for each. One record, read by the
config model (components/cluster.py) and by `platformctl upgrade-check`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FACTS_FILE = Path(__file__).with_name("kubernetes.json")


@cache
def facts() -> dict[str, Any]:
    return json.loads(FACTS_FILE.read_text(encoding="utf-8"))


def minors() -> tuple[str, ...]:
    """The minors EKS offers in standard support, oldest first."""
    return tuple(sorted((m for m, f in facts()["minors"].items()
                         if f["eks"].get("standard_support")),
                        key=lambda m: int(m.split(".")[1])))


def default_minor() -> str:
    return str(facts()["default"])


def addons(minor: str) -> dict[str, str] | None:
    """The EKS add-on builds known good on `minor` (by add-on name), or None: not looked up."""
    entry = facts()["minors"].get(minor)
    return dict(entry["addons"]) if entry and entry.get("addons") else None


def cluster_autoscaler_tag(minor: str) -> str | None:
    entry = facts()["minors"].get(minor)
    return entry.get("cluster_autoscaler") if entry else None


def source(minor: str, what: str) -> str:
    entry = facts()["minors"].get(minor) or {}
    return str((entry.get("sources") or {}).get(what) or (entry.get("eks") or {}).get("source")
               or "no record")
