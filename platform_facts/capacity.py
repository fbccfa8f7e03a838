"""Will the platform's pods fit on its nodes? Pods, CPU and memory requested by everything the
platform schedules, against what its node groups hold at their minimum size (and, for
production, with one node lost), from allocatable (not capacity) and the pods a node admits.

What is scheduled: the rendered releases' and the synced team services' Deployments,
StatefulSets and Argo Rollouts x replicas (never fewer than an HPA's minReplicas), the pods the
prometheus-operator makes from Prometheus and Alertmanager objects, DaemonSets once per node,
and the EKS add-ons' pods (capacity.json). Jobs (install hooks) come and go and are left out.

What a node holds: the kubelet's maxPods as the launch template's nodeadm NodeConfig sets it,
bounded by the addresses the VPC CNI has (per ENI slot one address, or a /28 prefix with prefix
delegation); CPU and memory less EKS's kube-reserved (memory for the max pods nodeadm computes
it for) and the eviction threshold. A node group of several instance types counts as its
smallest. Facts and their sources: capacity.json.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email
import functools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
RESOURCE_QUOTA = "kubernetes:core/v1:ResourceQuota"
ASSESSED_TYPES = (NODE_GROUP, ADDON, RESOURCE_QUOTA)  # what `assess` reads of the plan
POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Rollout")  # Rollout: Argo's
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


ZONE_KEY = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class Workload:
    source: str  # the release or add-on
    kind: str
    name: str
    replicas: int | None  # None: a DaemonSet, one pod per node; 0: a Job (comes and goes)
    cpu_m: float | None  # per pod, what its containers request; None: not known
    memory_mib: float | None
    # Containers that request no CPU or no memory ("<container>: cpu, memory"): the scheduler
    # counts them as zero, so what they use is nowhere in the plan.
    missing: tuple[str, ...] = ()
    namespace: str | None = None
    labels: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # Its pods keep data on volumes of their own (a StatefulSet's volumeClaimTemplates, the
    # operator's storage): EBS volumes, which live in the AZ where the pod first ran.
    zonal_volumes: bool = False
    # Topology keys of a hard anti-affinity among its own pods (kubernetes.io/hostname: one per
    # node; topology.kubernetes.io/zone: one per AZ).
    apart: tuple[str, ...] = ()


def matches_selector(selector: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions); none or {} selects all."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator = expression.get("key"), expression.get("operator")
        values = list(expression.get("values") or ())
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _container_requests(container: Mapping[str, Any]) -> tuple[float, float, str | None]:
    """(CPU m, memory MiB, what it misses) of one container."""
    resources = container.get("resources") or {}
    # The API server copies a limit into a request the container does not make.
    requests = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    cpu = cpu_millicores(requests["cpu"]) if "cpu" in requests else 0.0
    memory = memory_mib(requests["memory"]) if "memory" in requests else 0.0
    absent = [key for key, value in (("cpu", cpu), ("memory", memory)) if value <= 0]
    missing = f"{container.get('name')}: {', '.join(absent)}" if absent else None
    return cpu, memory, missing


def pod_requests(pod: Mapping[str, Any]) -> tuple[float, float, tuple[str, ...]]:
    """What the scheduler reserves for a pod: its containers and sidecars (init containers
    with restartPolicy Always) together, or its largest init container if larger; and the
    containers that request no CPU or memory."""
    cpu = memory = init_cpu = init_memory = 0.0
    missing = []
    for container in pod.get("containers") or ():
        c, m, absent = _container_requests(container)
        cpu, memory = cpu + c, memory + m
        missing += [absent] if absent else []
    for container in pod.get("initContainers") or ():
        c, m, absent = _container_requests(container)
        missing += [absent] if absent else []
        if container.get("restartPolicy") == "Always":
            cpu, memory = cpu + c, memory + m
        else:
            init_cpu, init_memory = max(init_cpu, c), max(init_memory, m)
    return max(cpu, init_cpu), max(memory, init_memory), tuple(missing)


def _autoscaled_minimum(objects: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """HorizontalPodAutoscalers' minReplicas by (kind, name) of what they scale: the HPA sets
    the replica count, never below that."""
    found = {}
    for body in objects:
        if body.get("kind") == "HorizontalPodAutoscaler":
            spec = body.get("spec") or {}
            target = spec.get("scaleTargetRef") or {}
            found[(str(target.get("kind")), str(target.get("name")))] = int(
                spec.get("minReplicas", 1))
    return found


RELOADER_FLAG = "--prometheus-config-reloader="


def _config_reloader(objects: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The config-reloader sidecar the prometheus-operator adds to every Prometheus and
    Alertmanager pod, with the requests its Deployment's flags give it (`0`: none); None when
    the release renders no operator."""
    for body in objects:
        if body.get("kind") != "Deployment":
            continue
        for container in ((body.get("spec") or {}).get("template") or {}).get(
                "spec", {}).get("containers") or ():
            args = [str(a) for a in container.get("args") or ()]
            if any(a.startswith(RELOADER_FLAG) for a in args):
                flags = dict(a[2:].split("=", 1) for a in args if "=" in a and a.startswith("--"))
                requests = {key: flags.get(f"config-reloader-{key}-request", "0")
                            for key in ("cpu", "memory")}
                return {"name": "config-reloader", "resources": {"requests": {
                    key: value for key, value in requests.items() if value not in ("0", "")}}}
    return None


def _operator_labels(kind: str, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """The labels the prometheus-operator puts on the pods of a Prometheus or Alertmanager,
    with the object's podMetadata labels."""
    kind_label = kind.lower()
    return {**((spec.get("podMetadata") or {}).get("labels") or {}),
            "app.kubernetes.io/name": kind_label, "app.kubernetes.io/instance": name,
            "app.kubernetes.io/managed-by": "prometheus-operator",
            "operator.prometheus.io/name": name, kind_label: name}


def _apart(affinity: Mapping[str, Any] | None, labels: Mapping[str, Any]) -> tuple[str, ...]:
    """The topology keys of required pod anti-affinity terms that select the pod's own labels."""
    terms = (((affinity or {}).get("podAntiAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or ())
    return tuple(sorted({str(t.get("topologyKey")) for t in terms
                         if t.get("labelSelector") is not None
                         and matches_selector(t.get("labelSelector"), labels)}))


def _namespace(source: Any, body: Mapping[str, Any]) -> str | None:
    namespace_of = getattr(source, "namespace_of", None)
    if namespace_of is not None:
        return namespace_of(body)
    return (body.get("metadata") or {}).get("namespace")


def workloads(sources: Iterable[Any]) -> list[Workload]:
    """What the rendered releases or synced applications schedule (`sources`: objects with a
    `name` and `objects`, platformctl.runtime_checks.Release or Application). Jobs (install
    hooks, CronJobs' runs) come with 0 replicas: they come and go, but request like the rest."""
    found = []
    for source in sources:
        minimum = _autoscaled_minimum(source.objects)
        reloader = None
        for body in source.objects:
            kind, spec = body.get("kind"), body.get("spec") or {}
            name = str((body.get("metadata") or {}).get("name"))
            template = None
            if kind in POD_TEMPLATE_KINDS or kind == "Job":
                template = spec.get("template") or {}
            elif kind == "CronJob":
                template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get(
                    "template") or {}
            if template is not None:
                cpu, memory, missing = pod_requests(template.get("spec") or {})
                if kind in ("Job", "CronJob"):
                    replicas: int | None = 0
                elif kind == "DaemonSet":
                    replicas = None
                else:
                    replicas = max(int(spec.get("replicas", 1)),
                                   minimum.get((str(kind), name), 0))
                labels = dict((template.get("metadata") or {}).get("labels") or {})
                found.append(Workload(
                    source.name, str(kind), name, replicas, cpu, memory, missing,
                    _namespace(source, body), labels,
                    kind == "StatefulSet" and bool(spec.get("volumeClaimTemplates")),
                    _apart((template.get("spec") or {}).get("affinity"), labels)))
            elif kind in OPERATOR_KINDS:
                if reloader is None:
                    reloader = _config_reloader(source.objects) or {
                        "name": "config-reloader (no prometheus-operator in this release)"}
                cpu, memory, missing = pod_requests({"containers": [
                    {"name": kind.lower(), "resources": spec.get("resources") or {}},
                    reloader]})
                labels = _operator_labels(kind, name, spec)
                found.append(Workload(
                    source.name, kind, name, int(spec.get("replicas", 1)), cpu, memory, missing,
                    _namespace(source, body), labels,
                    bool((spec.get("storage") or {}).get("volumeClaimTemplate")),
                    _apart(spec.get("affinity"), labels)))
    return found


def _scaled(value: Any, total: int) -> int:
    """An IntOrString of a PodDisruptionBudget against `total` pods; a percentage rounds up,
    as the disruption controller rounds both maxUnavailable and minAvailable."""
    text = str(value).strip()
    if text.endswith("%"):
        return -(-int(text[:-1]) * total // 100)
    return int(text)


@dataclass(frozen=True)
class Budget:
    """A PodDisruptionBudget and the pods it guards."""

    source: str
    name: str
    namespace: str | None
    pods: int  # the pods it selects (replicas of the workloads it matches)
    workloads: tuple[str, ...]
    allowed: int  # evictions it allows with every pod healthy
    rule: str  # "maxUnavailable: 0", "minAvailable: 1"


def disruption_budgets(sources: Iterable[Any], scheduled: Sequence[Workload]) -> list[Budget]:
    """Every PodDisruptionBudget of `sources` (releases, applications) that selects pods of
    `scheduled` (same namespace, selector matching the pod template's labels), with the
    evictions it allows when all those pods are healthy: 0 means a drain, the autoscaler's
    scale-down and a managed node group's update wait on it for ever (EKS gives up after 15
    minutes and fails the update). DaemonSet pods and Jobs are not evicted by a drain."""
    found = []
    for source in sources:
        for body in source.objects:
            spec = body.get("spec") or {}
            if body.get("kind") != "PodDisruptionBudget" or "selector" not in spec:
                continue  # policy/v1: a PDB without a selector selects nothing
            namespace = _namespace(source, body)
            selected = [w for w in scheduled if w.namespace == namespace and w.replicas
                        and matches_selector(spec.get("selector"), w.labels)]
            if not selected:
                continue
            pods = sum(w.replicas or 0 for w in selected)
            if "maxUnavailable" in spec:
                rule = f"maxUnavailable: {spec['maxUnavailable']}"
                allowed = _scaled(spec["maxUnavailable"], pods)
            elif "minAvailable" in spec:
                rule = f"minAvailable: {spec['minAvailable']}"
                allowed = pods - _scaled(spec["minAvailable"], pods)
            else:
                continue
            found.append(Budget(source.name, str((body.get("metadata") or {}).get("name")),
                                namespace, pods, tuple(f"{w.kind} {w.name}" for w in selected),
                                max(allowed, 0), rule))
    return found


def addon_workloads(addon_names: Iterable[str]) -> list[Workload]:
    """The EKS add-ons' pods, from capacity.json: EKS installs and owns their manifests, so
    their requests are facts read upstream, not values of ours. A request the manifest does
    not make is 0 there (the scheduler counts it as 0 too: see `Scenario.unrequested`); one
    that could not be read is null and refused as unknown."""
    pods = data()["addonPods"]
    found = []
    for name in addon_names:
        for p in pods.get(name, ()):
            unknown = [key for key, fact in (("cpu", p["cpuM"]), ("memory", p["memoryMiB"]))
                       if fact is None]
            found.append(Workload(
                f"add-on {name}", p["kind"], p["name"], p.get("replicas"), p["cpuM"],
                p["memoryMiB"],
                (f"{p['name']}: {', '.join(unknown)} not known (capacity.json)",) if unknown
                else (), "kube-system"))
    return found


@dataclass(frozen=True)
class KubeletSettings:
    """What a launch template's nodeadm NodeConfig sets for the kubelet's pod count."""

    max_pods: int | None = None  # spec.kubelet.config.maxPods
    reserved_for: int | None = None  # spec.kubelet.maxPodsExpression, when a plain number


def kubelet_settings(user_data: Any) -> KubeletSettings:
    """Read the NodeConfig documents (MIME parts of type application/node.eks.aws) in a launch
    template's base64 user data; later documents override earlier ones, as nodeadm merges them.
    A maxPodsExpression that is not a plain number is not evaluated (None)."""
    if not user_data:
        return KubeletSettings()
    try:
        text = base64.b64decode(str(user_data), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return KubeletSettings()
    message = email.message_from_string(text)
    parts = message.walk() if message.is_multipart() else [message]
    max_pods = reserved_for = None
    for part in parts:
        if part.get_content_type() != "application/node.eks.aws":
            continue
        for document in yaml.safe_load_all(str(part.get_payload())):
            kubelet = ((document or {}).get("spec") or {}).get("kubelet") or {}
            configured = (kubelet.get("config") or {}).get("maxPods")
            if isinstance(configured, int):
                max_pods = configured
            expression = str(kubelet.get("maxPodsExpression", "")).strip()
            if expression:
                reserved_for = int(expression) if expression.isdigit() else None
    return KubeletSettings(max_pods, reserved_for)


@dataclass(frozen=True)
class NodeShape:
    instance_type: str
    max_pods: int
    cpu_m: float  # allocatable
    memory_mib: float


def address_limit(instance_type: str, prefix_delegation: bool) -> int:
    """Pods the VPC CNI can give an address on one node: ENIs x (addresses per ENI - 1) + 2
    (host-network pods), each address slot a /28 prefix of 16 with prefix delegation."""
    facts = data()
    spec = facts["instanceTypes"][instance_type]
    per_slot = facts["maxPods"]["addressesPerPrefix"] if prefix_delegation else 1
    return spec["enis"] * (spec["ipv4PerEni"] - 1) * per_slot + 2


def default_max_pods(instance_type: str, prefix_delegation: bool) -> int:
    """The kubelet's maxPods when the launch template does not set it: the address limit,
    capped at EKS's recommendation with prefix delegation."""
    facts = data()
    limits, spec = facts["maxPods"], facts["instanceTypes"][instance_type]
    if not prefix_delegation:
        return address_limit(instance_type, False)
    recommended = (limits["recommendedMaxLarge"] if spec["vcpu"] >= limits["largeFromVcpu"]
                   else limits["recommendedMaxSmall"])
    return min(recommended, address_limit(instance_type, True))


def node_shape(instance_type: str, prefix_delegation: bool,
               kubelet: KubeletSettings | None = None) -> NodeShape:
    """What one node of `instance_type` holds. `kubelet`: what the launch template's NodeConfig
    sets (maxPods, and the max pods kube-reserved memory is computed for)."""
    facts = data()
    spec = facts["instanceTypes"][instance_type]
    kubelet = kubelet or KubeletSettings()
    default = default_max_pods(instance_type, prefix_delegation)
    admitted = kubelet.max_pods or kubelet.reserved_for or default
    # A pod past the address limit is admitted and then waits for an address for ever.
    max_pods = min(admitted, address_limit(instance_type, prefix_delegation))
    # nodeadm: kube-reserved from maxPodsExpression's result, else from the ENI limit without
    # prefixes (it does not know about prefix delegation); kubelet.config.maxPods never counts.
    reserved_for = kubelet.reserved_for or (default if kubelet.max_pods is None
                                            else address_limit(instance_type, False))
    reserved = facts["kubeReserved"]
    cpu_reserved, cores = 0.0, spec["vcpu"]
    for count, share in reserved["cpuShares"]:
        used = cores if count is None else min(cores, count)
        cpu_reserved += used * 1000 * share
        cores -= used
        if cores <= 0:
            break
    memory = (spec["memoryMiB"] - reserved["memoryMiBPerPod"] * reserved_for
              - reserved["memoryMiBBase"] - reserved["evictionHardMiB"])
    return NodeShape(instance_type, max_pods, spec["vcpu"] * 1000 - cpu_reserved, memory)


@dataclass(frozen=True)
class NodeGroup:
    name: str
    min_size: int
    instance_types: tuple[str, ...]
    kubelet: KubeletSettings = KubeletSettings()
    zones: tuple[str, ...] = ()  # the AZs of its subnets (empty: not known)
    max_size: int | None = None
    resource: str = ""  # the plan's resource name (what the cost model's lines name)

    def shape(self, prefix_delegation: bool) -> NodeShape:
        """The smallest of its instance types, attribute by attribute (what spot may hand out);
        types capacity.json does not know are left out (the policy reports them)."""
        shapes = [node_shape(t, prefix_delegation, self.kubelet) for t in self.instance_types
                  if t in data()["instanceTypes"]]
        return NodeShape("/".join(self.instance_types), min(s.max_pods for s in shapes),
                         min(s.cpu_m for s in shapes), min(s.memory_mib for s in shapes))


@dataclass
class Scenario:
    label: str
    nodes: int
    pods: tuple[float, float]  # (requested, allocatable)
    cpu_m: tuple[float, float]
    memory_mib: tuple[float, float]
    # Workloads some container of which requests no CPU or memory, or whose requests are not
    # known: the node-capacity check refuses them.
    unknown: list[str] = field(default_factory=list)
    # EKS add-on pods whose own manifest requests no CPU or no memory (counted as 0, as the
    # scheduler does): listed, not refused (EKS owns those manifests).
    unrequested: list[str] = field(default_factory=list)
    # Per node group: its name, nodes in this scenario and what one node holds.
    groups: list[tuple[str, int, NodeShape]] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return all(used <= held for used, held in (self.pods, self.cpu_m, self.memory_mib))

    def short(self) -> str:
        def part(label: str, pair: tuple[float, float], unit: str) -> str:
            return f"{label} {pair[0]:,.0f}{unit} of {pair[1]:,.0f}{unit}"
        return ", ".join([part("pods", self.pods, ""), part("CPU", self.cpu_m, "m"),
                          part("memory", self.memory_mib, " MiB")])


def scenario(label: str, groups: Sequence[NodeGroup], lost: int, scheduled: Sequence[Workload],
             prefix_delegation: bool, at_max: bool = False) -> Scenario:
    """The sums of what `scheduled` requests against what the groups hold at their minimum size
    (`at_max`: at their maxSize, where the plan states one), less `lost` nodes."""
    counts = [g.max_size if at_max and g.max_size is not None else g.min_size for g in groups]
    nodes = sum(counts) - lost
    shapes = [g.shape(prefix_delegation) for g in groups]
    # Nodes lost come out of the group with the largest nodes (the worst case).
    for _ in range(lost):
        index = max((i for i in range(len(groups)) if counts[i] > 0),
                    key=lambda i: (shapes[i].memory_mib, shapes[i].cpu_m), default=None)
        if index is not None:
            counts[index] -= 1
    held_pods = sum(c * s.max_pods for c, s in zip(counts, shapes, strict=True))
    held_cpu = sum(c * s.cpu_m for c, s in zip(counts, shapes, strict=True))
    held_memory = sum(c * s.memory_mib for c, s in zip(counts, shapes, strict=True))
    pods = cpu = memory = 0.0
    unknown, unrequested = [], []
    for w in scheduled:
        count = nodes if w.replicas is None else w.replicas
        pods += count
        cpu += count * (w.cpu_m or 0)
        memory += count * (w.memory_mib or 0)
        if w.missing:
            unknown.append(f"{w.source}: {w.kind} {w.name}")
        elif w.source.startswith("add-on ") and not (w.cpu_m and w.memory_mib):
            unrequested.append(f"{w.source}: {w.kind} {w.name}")
    return Scenario(label, nodes, (pods, held_pods), (cpu, held_cpu), (memory, held_memory),
                    unknown, unrequested,
                    [(g.name, c, s) for g, c, s in zip(groups, counts, shapes, strict=True)])


def prefix_delegation(addons: Iterable[Mapping[str, Any]]) -> bool:
    """Whether the vpc-cni add-on's configuration turns prefix delegation on."""
    for props in addons:
        if props.get("addonName") == "vpc-cni" and props.get("configurationValues"):
            values = json.loads(str(props["configurationValues"]))
            if str((values.get("env") or {}).get("ENABLE_PREFIX_DELEGATION")).lower() == "true":
                return True
    return False


@dataclass(frozen=True)
class PlannedResource:
    """A resource of the plan as the check needs it: `linked` holds, per input property, the
    props of the resources that property's value comes from (a node group's `launchTemplate`)."""

    type: str
    name: str
    props: Mapping[str, Any]
    linked: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)


def shape_problems(instance_types: Sequence[str]) -> list[str]:
    """Why a node group's instance types cannot be planned with as one shape: types
    capacity.json does not know, or types of different vCPUs or memory (Cluster Autoscaler
    simulates every node of a group as one shape; upstream requires mixed types to match)."""
    known = data()["instanceTypes"]
    unknown = [t for t in instance_types if t not in known]
    problems = []
    if unknown:
        problems.append(f"instance type(s) {', '.join(unknown)} are not in "
                        "platform_facts/capacity.json, so what their nodes hold is not known")
    shapes = {t: (known[t]["vcpu"], known[t]["memoryMiB"]) for t in instance_types if t in known}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{t} ({v} vCPU, {m:,} MiB)" for t, (v, m) in shapes.items())
        problems.append(f"instance types of different shapes: {listed}; Cluster Autoscaler "
                        "plans every node of a group as one shape, so it may add a node too "
                        "small for the pod it was added for")
    return problems


def node_groups(resources: Iterable[PlannedResource]) -> list[NodeGroup]:
    groups = []
    known = data()["instanceTypes"]
    for r in resources:
        if r.type != NODE_GROUP or not any(t in known for t in r.props.get("instanceTypes") or ()):
            continue
        templates = [t for t in r.linked.get("launchTemplate", ()) if "userData" in t]
        scaling = r.props.get("scalingConfig") or {}
        subnets = r.linked.get("subnetIds", ())
        zones = tuple(sorted({str(s["availabilityZone"]) for s in subnets
                              if s.get("availabilityZone")}))
        groups.append(NodeGroup(
            str(r.props.get("nodeGroupName") or r.name),
            int(scaling.get("minSize", 0)),
            tuple(r.props["instanceTypes"]),
            kubelet_settings(templates[0]["userData"]) if templates else KubeletSettings(),
            zones if zones and len(subnets) == len(r.props.get("subnetIds") or ()) else (),
            int(scaling["maxSize"]) if "maxSize" in scaling else None, r.name))
    return sorted(groups, key=lambda g: g.name)  # not the plan's order, which varies by run


@dataclass(frozen=True)
class Quota:
    """A team namespace's ResourceQuota as the plan creates it: what the team may request."""

    team: str
    namespace: str
    cpu_m: float
    memory_mib: float
    pods: int | None  # None: the quota does not bound pods


def _resource_quotas(resources: Iterable[PlannedResource]
                     ) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """Each ResourceQuota of the plan: its metadata and its `spec.hard`."""
    for r in resources:
        if r.type == RESOURCE_QUOTA:
            yield r.props.get("metadata") or {}, (r.props.get("spec") or {}).get("hard") or {}


def _requests_bound(hard: Mapping[str, Any], resource: str) -> Any:
    """What a quota's `hard` bounds the requests of `resource` (cpu, memory) to; `requests.X`
    and plain `X` mean the same; None: not bounded."""
    return hard.get(f"requests.{resource}", hard.get(resource))


def team_quotas(resources: Iterable[PlannedResource]) -> list[Quota]:
    """The plan's ResourceQuotas that bound CPU and memory requests, each with its team (the
    quota's `team` label, else its namespace), sorted by team and namespace."""
    found = []
    for metadata, hard in _resource_quotas(resources):
        cpu, memory = _requests_bound(hard, "cpu"), _requests_bound(hard, "memory")
        namespace = metadata.get("namespace")
        if cpu is None or memory is None or not namespace:
            continue
        team = (metadata.get("labels") or {}).get("team") or namespace
        pods = hard.get("pods")
        found.append(Quota(str(team), str(namespace), cpu_millicores(cpu), memory_mib(memory),
                           int(pods) if pods is not None else None))
    return sorted(found, key=lambda q: (q.team, q.namespace))


def unbounded_quotas(resources: Iterable[PlannedResource]) -> list[str]:
    """The plan's ResourceQuotas that bound neither CPU nor memory requests, or only one of
    them (`namespace/name: what is missing`): `team_quotas` cannot count them, so what their
    namespace's pods may request is not known."""
    found = []
    for metadata, hard in _resource_quotas(resources):
        missing = [f"requests.{resource}" for resource in ("cpu", "memory")
                   if _requests_bound(hard, resource) is None]
        if missing and metadata.get("namespace"):
            found.append(f"{metadata['namespace']}/{metadata.get('name')}: no "
                         f"{' or '.join(missing)}")
    return sorted(found)


def quotas_by_team(quotas: Iterable[Quota]) -> dict[str, list[Quota]]:
    """The quotas of each team (over its namespaces), in the order given."""
    by_team: dict[str, list[Quota]] = {}
    for q in quotas:
        by_team.setdefault(q.team, []).append(q)
    return by_team


@dataclass(frozen=True)
class TeamRoom:
    """One team's quotas (over its namespaces) against the room the platform leaves."""

    team: str
    namespaces: tuple[str, ...]
    cpu_m: float
    memory_mib: float
    pods: float
    # What this team could be given with every other team's quota as it is (never below 0).
    room_cpu_m: float
    room_memory_mib: float
    room_pods: float

    @property
    def fits_alone(self) -> bool:
        return (self.cpu_m <= self.room_cpu_m and self.memory_mib <= self.room_memory_mib
                and self.pods <= self.room_pods)


@dataclass
class QuotaFit:
    """The team quotas against the node groups at their maximum (in production with one node
    lost), after the platform's own pods: quotas are promises of capacity, so their sum plus
    what the platform requests must be there when every group has grown as far as it may."""

    label: str
    nodes: int
    held: tuple[float, float, float]  # pods, CPU (m), memory (MiB) allocatable
    platform: tuple[float, float, float]  # what the platform's pods request (DaemonSets per node)
    teams: list[TeamRoom]
    # Node groups whose maxSize the plan does not state: counted at their minimum size.
    unbounded: list[str] = field(default_factory=list)

    @property
    def quotas(self) -> tuple[float, float, float]:
        return (sum(t.pods for t in self.teams), sum(t.cpu_m for t in self.teams),
                sum(t.memory_mib for t in self.teams))

    @property
    def free(self) -> tuple[float, float, float]:
        """What the nodes hold beyond the platform's requests: all the teams can be promised."""
        return tuple(h - p for h, p in zip(self.held, self.platform, strict=True))  # type: ignore[return-value]

    @property
    def short(self) -> list[str]:
        """The dimensions the quotas overrun ("CPU by 1,200m")."""
        return [f"{label} by {q - f:,.0f}{unit}" for label, unit, q, f in zip(
            ("pods", "CPU", "memory"), ("", "m", " MiB"), self.quotas, self.free, strict=True)
            if q > f]

    @property
    def fits(self) -> bool:
        return not self.short


def quota_fit(groups: Sequence[NodeGroup], scheduled: Sequence[Workload],
              quotas: Sequence[Quota], prefix_delegation: bool, production: bool) -> QuotaFit:
    """`scheduled` minus the pods in the quotas' namespaces (those count against their team's
    quota) is the platform; the groups are taken at maxSize, less one node in production."""
    team_namespaces = {q.namespace for q in quotas}
    platform = [w for w in scheduled if w.namespace not in team_namespaces]
    lost = 1 if production else 0
    found = scenario("at maximum size" + (" with one node lost" if production else ""),
                     groups, lost, platform, prefix_delegation, at_max=True)
    held = (found.pods[1], found.cpu_m[1], found.memory_mib[1])
    used = (found.pods[0], found.cpu_m[0], found.memory_mib[0])
    by_team = quotas_by_team(quotas)
    # A quota without a pods bound is bounded by what the nodes hold.
    sums = {team: (sum(q.pods if q.pods is not None else held[0] for q in qs),
                   sum(q.cpu_m for q in qs), sum(q.memory_mib for q in qs))
            for team, qs in by_team.items()}
    totals = [sum(s[i] for s in sums.values()) for i in range(3)]
    teams = []
    for team, (pods, cpu, memory) in sums.items():
        room = [max(0.0, held[i] - used[i] - (totals[i] - own))
                for i, own in enumerate((pods, cpu, memory))]
        teams.append(TeamRoom(team, tuple(q.namespace for q in by_team[team]), cpu, memory, pods,
                              room[1], room[2], room[0]))
    return QuotaFit(found.label, found.nodes, held, used, teams,
                    [g.name for g in groups if g.max_size is None])


@dataclass
class Assessment:
    """What a stack's nodes hold of what it schedules."""

    groups: list[NodeGroup]
    scheduled: list[Workload]
    scenarios: list[Scenario]  # the sums: at minimum size, and (production) one node lost
    placement: Placement | None  # pod by pod, and (production) each node drained
    zone_problems: list[str]
    quotas: QuotaFit | None = None  # the team quotas at maxSize (None: no groups or no quotas)


def assess(resources: Iterable[PlannedResource], releases: Iterable[Any],
           applications: Iterable[Any], production: bool) -> Assessment:
    """`resources`: the plan; `releases`: the rendered releases; `applications`: the team
    services Argo CD would sync (platformctl.runtime_checks.Application)."""
    resources = list(resources)
    groups = node_groups(resources)
    addons = [r.props for r in resources if r.type == ADDON]
    delegation = prefix_delegation(addons)
    scheduled = [*workloads(releases), *workloads(applications),
                 *addon_workloads(str(a.get("addonName")) for a in addons)]
    if not groups:
        return Assessment(groups, scheduled, [], None, [])
    found = [scenario("at minimum size", groups, 0, scheduled, delegation)]
    if production:
        found.append(scenario("one node lost", groups, 1, scheduled, delegation))
    quotas = team_quotas(resources)
    return Assessment(groups, scheduled, found,
                      placement(groups, scheduled, delegation, drains=production),
                      zone_problems(groups, scheduled),
                      quota_fit(groups, scheduled, quotas, delegation, production)
                      if quotas else None)


def plan(resources: Iterable[PlannedResource], releases: Iterable[Any],
         applications: Iterable[Any], production: bool) -> list[Scenario]:
    """The capacity scenarios of a stack: at minimum size, and (production) with one node lost."""
    return assess(resources, releases, applications, production).scenarios


# -- volumes and zones, placement and drains --------------------------------------------------

def zone_problems(groups: Sequence[NodeGroup], scheduled: Sequence[Workload]) -> list[str]:
    """Node groups that pods with EBS volumes may land on but that span several AZs (or whose
    AZs are not known): when such a pod's node goes, the pod can run only in its volume's AZ,
    and the Cluster Autoscaler adds a node to a multi-AZ group in whichever AZ the Auto
    Scaling group picks. A group per AZ lets it add one where the volume is."""
    zonal = sorted({f"{w.kind} {w.name}" for w in scheduled if w.zonal_volumes and w.replicas})
    if not zonal:
        return []
    problems = []
    for group in groups:
        if len(group.zones) != 1:
            where = (f"spans {', '.join(group.zones)}" if group.zones
                     else "has subnets whose AZs the plan does not name")
            problems.append(f"node group {group.name} {where} while {', '.join(zonal)} keep "
                            "data on EBS volumes, which live in one AZ")
    return problems


@dataclass
class _Node:
    label: str
    group: str
    zone: str
    pods: int  # free slots
    cpu_m: float  # free
    memory_mib: float
    placed: list[tuple[Workload, int]] = field(default_factory=list)
    allocatable: tuple[float, float] = (1.0, 1.0)  # CPU m, memory MiB

    def score(self, w: Workload) -> float:
        """kube-scheduler's default resource scores with the pod on the node, each weight 1
        (pkg/scheduler/framework/plugins/noderesources): LeastAllocated, the mean of CPU's and
        memory's free shares, plus BalancedAllocation, one minus the standard deviation of
        their used shares (for two resources, half their difference): a node left with CPU
        and no memory, or the reverse, takes nothing more."""
        free_cpu = (self.cpu_m - (w.cpu_m or 0)) / self.allocatable[0]
        free_memory = (self.memory_mib - (w.memory_mib or 0)) / self.allocatable[1]
        return (free_cpu + free_memory) / 2 + 1 - abs(free_cpu - free_memory) / 2


def _fits(node: _Node, w: Workload, nodes: Sequence[_Node], zone: str | None) -> bool:
    if zone is not None and node.zone != zone:
        return False
    if node.pods < 1 or node.cpu_m < (w.cpu_m or 0) or node.memory_mib < (w.memory_mib or 0):
        return False
    for key in w.apart:
        if key == "topology.kubernetes.io/zone":
            if any(p is w for n in nodes if n.zone == node.zone for p, _ in n.placed):
                return False
        elif any(p is w for p, _ in node.placed):  # hostname, and any key we do not model
            return False
    return True


def _place(w: Workload, nodes: Sequence[_Node], zone: str | None, index: int) -> _Node | None:
    """Onto the node with the most room left (the scheduler's least-allocated scoring)."""
    fitting = [n for n in nodes if _fits(n, w, nodes, zone)]
    if not fitting:
        return None
    node = max(fitting, key=lambda n: (n.score(w), n.label))
    node.pods, node.cpu_m, node.memory_mib = (node.pods - 1, node.cpu_m - (w.cpu_m or 0),
                                              node.memory_mib - (w.memory_mib or 0))
    node.placed.append((w, index))
    return node


def _largest_first(pods: Iterable[tuple[Workload, int]]) -> list[tuple[Workload, int]]:
    return sorted(pods, key=lambda p: (-(p[0].memory_mib or 0), -(p[0].cpu_m or 0),
                                       p[0].source, p[0].name, p[1]))


def _pod(w: Workload, index: int) -> str:
    return f"{w.source}: {w.kind} {w.name} #{index} ({w.cpu_m or 0:,.0f}m, " \
           f"{w.memory_mib or 0:,.0f} MiB)"


@dataclass
class Drain:
    """Draining one node: where its pods go."""

    node: str
    zone: str
    pending: list[str] = field(default_factory=list)  # no node takes them: refused
    # Pods bound to their volume's AZ that wait for the autoscaler to add a node there.
    waiting: list[str] = field(default_factory=list)


@dataclass
class Placement:
    """Every pod placed, one by one, on the nodes at minimum size; then each node drained."""

    nodes: list[str]
    unplaced: list[str]  # pods no node at minimum size takes (though the sums may fit)
    drains: list[Drain]


def placement(groups: Sequence[NodeGroup], scheduled: Sequence[Workload],
              prefix_delegation: bool, drains: bool) -> Placement:
    """Place the pods on the nodes at minimum size (DaemonSet pods on every node first, then
    the rest largest first, each on the node with the most room left that fits it, honouring
    hard anti-affinity among a workload's own pods); pods with EBS volumes stay in the AZ they
    were placed in. Then (`drains`) drain each node in turn: its pods go to the other nodes,
    largest first; a pod bound to an AZ where no other node has room waits for the autoscaler
    if a group of that one AZ can grow, and is pending otherwise. Nodes of a group spread
    over its AZs in turn, as the Auto Scaling group balances them."""
    nodes: list[_Node] = []
    for group in groups:
        shape = group.shape(prefix_delegation)
        for i in range(group.min_size):
            zone = group.zones[i % len(group.zones)] if group.zones else "?"
            nodes.append(_Node(f"{group.name}#{i + 1}", group.name, zone, shape.max_pods,
                               shape.cpu_m, shape.memory_mib, [],
                               (shape.cpu_m, shape.memory_mib)))
    daemons = [w for w in scheduled if w.replicas is None]
    for node in nodes:
        for w in daemons:
            node.pods, node.cpu_m, node.memory_mib = (node.pods - 1, node.cpu_m - (w.cpu_m or 0),
                                                      node.memory_mib - (w.memory_mib or 0))
    pods = _largest_first((w, i) for w in scheduled if w.replicas for i in range(w.replicas))
    bound: dict[tuple[int, int], str] = {}
    unplaced = []
    for w, i in pods:
        node = _place(w, nodes, None, i)
        if node is None:
            unplaced.append(_pod(w, i))
        elif w.zonal_volumes:
            bound[(id(w), i)] = node.zone
    if any(n.pods < 0 or n.cpu_m < 0 or n.memory_mib < 0 for n in nodes):
        unplaced.append("DaemonSet pods: they alone exceed a node")
    result = Placement([f"{n.label} ({n.zone})" for n in nodes], unplaced, [])
    if not drains:
        return result
    for drained in nodes:
        others = [dataclasses.replace(n, placed=list(n.placed)) for n in nodes if n is not drained]
        drain = Drain(drained.label, drained.zone)
        for w, i in _largest_first(drained.placed):
            zone = bound.get((id(w), i))
            if _place(w, others, zone, i) is not None:
                continue
            # The autoscaler adds a node for it to any group of that one AZ that can grow.
            grows = zone is not None and any(
                g.zones == (zone,) and g.max_size is not None and g.max_size > g.min_size
                for g in groups)
            if grows and (w.replicas or 0) > 1:
                drain.waiting.append(_pod(w, i))
            elif grows:
                drain.pending.append(_pod(w, i) + f": its only pod, bound to {zone}, waits for "
                                     "a new node there")
            else:
                drain.pending.append(_pod(w, i))
        result.drains.append(drain)
    return result
