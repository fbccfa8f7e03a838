"""Will the platform's pods fit on its nodes? Pods, CPU and memory requested by everything the
platform schedules, against what its node groups hold at their minimum size (and, for
production, with one node lost), from allocatable (not capacity) and the VPC CNI's pod limit.

What is scheduled: the rendered releases' Deployments and StatefulSets x replicas, the pods the
prometheus-operator makes from Prometheus and Alertmanager objects, DaemonSets once per node, and
the EKS add-ons' pods (capacity.json). Jobs (install hooks) come and go and are left out. A
node group that may get several instance types counts as its smallest. Facts and their sources:
capacity.json.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
OPERATOR_KINDS = ("Prometheus", "Alertmanager")  # pods the prometheus-operator makes


@functools.cache
def data() -> dict[str, Any]:
    return json.loads((Path(__file__).resolve().parent / "capacity.json").read_text())


def cpu_millicores(quantity: Any) -> float:
    text = str(quantity)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


_MEMORY = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024, "k": 1000 / 1048576,
           "M": 1e6 / 1048576, "G": 1e9 / 1048576}


def memory_mib(quantity: Any) -> float:
    text = str(quantity)
    for suffix in ("Ki", "Mi", "Gi", "Ti", "k", "M", "G"):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * _MEMORY[suffix]
    return float(text) / 1048576


@dataclass(frozen=True)
class Workload:
    source: str  # the release or add-on
    kind: str
    name: str
    replicas: int | None  # None: a DaemonSet, one pod per node
    cpu_m: float | None  # per pod; None: not known
    memory_mib: float | None


def _requests(containers: Iterable[Mapping[str, Any]]) -> tuple[float, float]:
    cpu = memory = 0.0
    for container in containers:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += cpu_millicores(requests["cpu"]) if "cpu" in requests else 0.0
        memory += memory_mib(requests["memory"]) if "memory" in requests else 0.0
    return cpu, memory


def workloads(releases: Iterable[Any]) -> list[Workload]:
    """What the rendered releases schedule (`releases`: platform_guard.rendered.Release)."""
    found = []
    for release in releases:
        for body in release.objects:
            kind, spec = body.get("kind"), body.get("spec") or {}
            name = str((body.get("metadata") or {}).get("name"))
            if kind in ("Deployment", "StatefulSet", "DaemonSet"):
                pod = (spec.get("template") or {}).get("spec") or {}
                cpu, memory = _requests(pod.get("containers") or ())
                init_cpu, init_memory = _requests(pod.get("initContainers") or ())
                found.append(Workload(release.name, kind, name,
                                      None if kind == "DaemonSet" else int(spec.get("replicas", 1)),
                                      max(cpu, init_cpu), max(memory, init_memory)))
            elif kind in OPERATOR_KINDS:
                cpu, memory = _requests([{"resources": spec.get("resources") or {}}])
                found.append(Workload(release.name, kind, name, int(spec.get("replicas", 1)),
                                      cpu, memory))
    return found


def addon_workloads(addon_names: Iterable[str]) -> list[Workload]:
    pods = data()["addonPods"]
    return [Workload(f"add-on {name}", p["kind"], p["name"], p.get("replicas"), p["cpuM"],
                     p["memoryMiB"])
            for name in addon_names for p in pods.get(name, ())]


@dataclass(frozen=True)
class NodeShape:
    instance_type: str
    max_pods: int
    cpu_m: float  # allocatable
    memory_mib: float


def node_shape(instance_type: str, prefix_delegation: bool) -> NodeShape:
    facts = data()
    spec = facts["instanceTypes"][instance_type]
    limits = facts["maxPods"]
    if prefix_delegation:
        recommended = (limits["recommendedMaxLarge"] if spec["vcpu"] >= limits["largeFromVcpu"]
                       else limits["recommendedMaxSmall"])
        max_pods = min(recommended, spec["enis"] * (spec["ipv4PerEni"] - 1)
                       * limits["addressesPerPrefix"] + 2)
    else:
        max_pods = spec["enis"] * (spec["ipv4PerEni"] - 1) + 2
    reserved = facts["kubeReserved"]
    cpu_reserved, cores = 0.0, spec["vcpu"]
    for count, share in reserved["cpuShares"]:
        used = cores if count is None else min(cores, count)
        cpu_reserved += used * 1000 * share
        cores -= used
        if cores <= 0:
            break
    memory = (spec["memoryMiB"] - reserved["memoryMiBPerPod"] * max_pods
              - reserved["memoryMiBBase"] - reserved["evictionHardMiB"])
    return NodeShape(instance_type, max_pods, spec["vcpu"] * 1000 - cpu_reserved, memory)


@dataclass(frozen=True)
class NodeGroup:
    name: str
    min_size: int
    instance_types: tuple[str, ...]

    def shape(self, prefix_delegation: bool) -> NodeShape:
        """The smallest of its instance types, attribute by attribute (what spot may hand out)."""
        shapes = [node_shape(t, prefix_delegation) for t in self.instance_types]
        return NodeShape("/".join(self.instance_types), min(s.max_pods for s in shapes),
                         min(s.cpu_m for s in shapes), min(s.memory_mib for s in shapes))


@dataclass
class Scenario:
    label: str
    nodes: int
    pods: tuple[float, float]  # (requested, allocatable)
    cpu_m: tuple[float, float]
    memory_mib: tuple[float, float]
    unknown: list[str] = field(default_factory=list)  # workloads whose requests are unknown

    @property
    def fits(self) -> bool:
        return all(used <= held for used, held in (self.pods, self.cpu_m, self.memory_mib))

    def short(self) -> str:
        def part(label: str, pair: tuple[float, float], unit: str) -> str:
            return f"{label} {pair[0]:,.0f}{unit} of {pair[1]:,.0f}{unit}"
        return ", ".join([part("pods", self.pods, ""), part("CPU", self.cpu_m, "m"),
                          part("memory", self.memory_mib, " MiB")])


def scenario(label: str, groups: Sequence[NodeGroup], lost: int, scheduled: Sequence[Workload],
             prefix_delegation: bool) -> Scenario:
    nodes = sum(g.min_size for g in groups) - lost
    shapes = [g.shape(prefix_delegation) for g in groups]
    # Nodes lost come out of the group with the largest nodes (the worst case).
    counts = [g.min_size for g in groups]
    for _ in range(lost):
        index = max((i for i in range(len(groups)) if counts[i] > 0),
                    key=lambda i: (shapes[i].memory_mib, shapes[i].cpu_m), default=None)
        if index is not None:
            counts[index] -= 1
    held_pods = sum(c * s.max_pods for c, s in zip(counts, shapes, strict=True))
    held_cpu = sum(c * s.cpu_m for c, s in zip(counts, shapes, strict=True))
    held_memory = sum(c * s.memory_mib for c, s in zip(counts, shapes, strict=True))
    pods = cpu = memory = 0.0
    unknown = []
    for w in scheduled:
        count = nodes if w.replicas is None else w.replicas
        pods += count
        cpu += count * (w.cpu_m or 0)
        memory += count * (w.memory_mib or 0)
        if w.cpu_m is None or w.memory_mib is None:
            unknown.append(f"{w.source}: {w.kind} {w.name}")
    return Scenario(label, nodes, (pods, held_pods), (cpu, held_cpu), (memory, held_memory),
                    unknown)


def prefix_delegation(addons: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the vpc-cni add-on's configuration turns prefix delegation on."""
    for props in addons:
        if props.get("addonName") == "vpc-cni" and props.get("configurationValues"):
            values = json.loads(str(props["configurationValues"]))
            if str((values.get("env") or {}).get("ENABLE_PREFIX_DELEGATION")).lower() == "true":
                return True
    return False


def plan(resources: Iterable[tuple[str, Mapping[str, Any]]], releases: Iterable[Any],
         production: bool) -> list[Scenario]:
    """The capacity scenarios of a stack: at minimum size, and (production) with one node lost.
    `resources`: (type token, props) of the plan; `releases`: the rendered releases."""
    resources = list(resources)
    groups = [NodeGroup(str(props.get("nodeGroupName") or name),
                        int((props.get("scalingConfig") or {}).get("minSize", 0)),
                        tuple(props.get("instanceTypes") or ()))
              for name, (token, props) in enumerate(resources) if token == NODE_GROUP]
    groups = [g for g in groups if g.instance_types]
    addons = [props for token, props in resources if token == ADDON]
    delegation = prefix_delegation(addons)
    scheduled = [*workloads(releases),
                 *addon_workloads(str(a.get("addonName")) for a in addons)]
    if not groups:
        return []
    found = [scenario("at minimum size", groups, 0, scheduled, delegation)]
    if production:
        found.append(scenario("one node lost", groups, 1, scheduled, delegation))
    return found
