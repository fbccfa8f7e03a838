"""`platformctl upgrade-check STACK --to 1.N`: what moving a stack's Kubernetes minor would meet,
found before the change, as an ordered plan (control plane, add-ons, charts, objects, node
groups) with its blockers first.

- Control plane: the target is a minor in EKS standard support and the next one after the
  stack's (EKS upgrades a control plane one minor at a time). The facts of each minor (EKS
  support, add-on builds, autoscaler tag, each with its source and date) are
  platform_facts/kubernetes.json, which the config model reads too.
- Add-ons: each pinned build must be the one recorded as known good on the target (kube-proxy's
  minor must be the target's in any case); a minor without recorded builds blocks (a facts gap
  is a blocker, never a pass).
- Cluster Autoscaler: the image tag recorded for the target minor.
- Charts: every Helm release rendered by the real helm at the target version
  (`--kube-version`): a chart whose `kubeVersion` excludes it is refused by helm itself.
- Objects: every rendered object and every object of the team manifests Argo CD syncs
  (`gitops/`), checked against the target's API: an API version the target no longer serves
  (kubernetes-validate's schemas of both minors, up to 1.37) is a blocker with the versions of
  that kind the target serves; objects on served APIs are validated strictly against the
  target's schema. Kinds of CustomResourceDefinitions are their CRDs' business, not the
  minor's.
- Node groups: a managed node group's update surges (new nodes first: the larger of its AZ
  count and maxUnavailable) and drains each old node in turn; the review's drain simulation
  (platform_facts.capacity), run with that surge for every stack, and its PodDisruptionBudget
  check say whether that can finish with the PDBs and the capacity the stack has.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMAS = "kubernetes-json-schema"
OK, BLOCKER, NOTE = "ok", "blocker", "note"
ORDER = ("control plane", "add-ons", "cluster autoscaler", "charts", "objects", "node groups")


@dataclass
class Finding:
    step: str  # one of ORDER
    status: str  # ok | blocker | note
    subject: str
    detail: str
    fix: str = ""


@dataclass
class Report:
    stack: str
    current: str
    target: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.status == BLOCKER]

    def add(self, step: str, status: str, subject: str, detail: str, fix: str = "") -> None:
        self.findings.append(Finding(step, status, subject, detail, fix))

    def document(self) -> dict[str, Any]:
        return {"schema": "platformctl.upgrade-check/v1", "stack": self.stack,
                "from": self.current, "to": self.target, "ready": not self.blockers,
                "blockers": [asdict(f) for f in self.blockers],
                "plan": [{"step": step, "findings": [asdict(f) for f in self.findings
                                                     if f.step == step]} for step in ORDER]}


# -- the API each minor serves (kubernetes-validate's schemas) ---------------------------------

@functools.cache
def _schema_root() -> Path:
    import kubernetes_validate

    return Path(kubernetes_validate.__file__).parent / SCHEMAS


def known_minors() -> list[str]:
    found = {m.group(1) for p in _schema_root().iterdir()
             if (m := re.fullmatch(r"v(1\.\d+)\.0-local", p.name))}
    return sorted(found, key=lambda v: int(v.split(".")[1]))


@functools.cache
def served(minor: str) -> frozenset[tuple[str, str, str]]:
    """(group, version, kind) of every object kind the minor's API serves."""
    document = json.loads((_schema_root() / f"v{minor}.0-local" / "_definitions.json")
                          .read_text(encoding="utf-8"))
    found = set()
    for definition in document["$defs"].values():
        for gvk in definition.get("x-kubernetes-group-version-kind") or []:
            found.add((gvk["group"], gvk["version"], gvk["kind"]))
    return frozenset(found)


def _group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _stability(version: str) -> tuple[int, int, int]:
    """v2 > v1 > v1beta2 > v1beta1 > v1alpha1: (major, stage, stage's number)."""
    found = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not found:
        return (0, 0, 0)
    stage = {"alpha": 0, "beta": 1, None: 2}[found.group(2)]
    return (int(found.group(1)), stage, int(found.group(3) or 0))


def check_objects(report: Report, objects: list[tuple[str, dict[str, Any]]]) -> None:
    """`objects`: (where it comes from, the object). Built-in kinds only: a kind no minor's
    schemas know is a custom resource."""
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    current, target = served(report.current), served(report.target)
    builtin = {(g, k) for g, _, k in current | target}
    seen = 0
    for where, body in objects:
        group, version = _group_version(str(body.get("apiVersion", "")))
        kind = str(body.get("kind", ""))
        if (group, kind) not in builtin:
            continue
        seen += 1
        name = f"{kind} {(body.get('metadata') or {}).get('name', '?')} ({where})"
        if (group, version, kind) not in target:
            instead = sorted(f"{g + '/' if g else ''}{v}" for g, v, k in target
                             if g == group and k == kind)
            report.add("objects", BLOCKER, name,
                       f"{body.get('apiVersion')} {kind} is not served by {report.target}",
                       f"use {' or '.join(instead)}" if instead else
                       f"{kind} is gone in {report.target}: remove the object")
            continue
        newer = sorted((v for g, v, k in target if g == group and k == kind
                        and _stability(v)[1] == 2 and _stability(v) > _stability(version)),
                       key=_stability)
        if newer:
            report.add("objects", NOTE, name,
                       f"{body.get('apiVersion')} is superseded in {report.target} (deprecated: "
                       "a later minor stops serving it)",
                       f"use {group + '/' if group else ''}{newer[-1]}")
        try:
            kubernetes_validate.validate(body, f"{report.target}.0", strict=True)
        except ValidationError as error:
            report.add("objects", BLOCKER, name,
                       f"invalid for {report.target}: {error.message[:300]}",
                       "change the object (or the chart values that make it)")
    if not report.blockers or all(f.step != "objects" for f in report.blockers):
        report.add("objects", OK, f"{seen} objects of built-in kinds",
                   f"every one on an API {report.target} serves, valid against its schema")


# -- the stack's own pins ----------------------------------------------------------------------

def check_pins(report: Report, config: Any) -> None:
    """The stack's pins against platform_facts/kubernetes.json's record of the target minor."""
    from platform_facts import kubernetes as facts

    allowed = list(facts.minors())
    current_minor, target_minor = (int(v.split(".")[1]) for v in (report.current, report.target))
    if report.target not in allowed:
        report.add("control plane", BLOCKER, f"EKS {report.target}",
                   f"not a minor platform_facts/kubernetes.json records in EKS standard support "
                   f"({', '.join(allowed)})",
                   f"when EKS offers {report.target}: record it there with its dates, add-on "
                   "builds and Cluster Autoscaler tag, and their sources")
    elif target_minor != current_minor + 1:
        report.add("control plane", BLOCKER, f"EKS {report.current} -> {report.target}",
                   "EKS upgrades a control plane one minor at a time",
                   f"upgrade to 1.{current_minor + 1} first")
    else:
        report.add("control plane", OK, f"EKS {report.current} -> {report.target}",
                   "the next minor, in EKS standard support",
                   f"pulumi config set --path platform:cluster.kubernetesVersion {report.target}")
    known = facts.addons(report.target)
    pins = {name.replace("_", "-"): value
            for name, value in config.cluster.addon_versions.model_dump().items()}
    for addon, value in sorted(pins.items()):
        fix = (f"aws eks describe-addon-versions --kubernetes-version {report.target} "
               f"--addon-name {addon}; record it in platform_facts/kubernetes.json and set "
               "platform:cluster.addonVersions")
        if addon == "kube-proxy" and not value.startswith(f"v{report.target}."):
            report.add("add-ons", BLOCKER, f"{addon} {value}",
                       f"kube-proxy's minor must equal the cluster's ({report.target})", fix)
        elif known is None:
            report.add("add-ons", BLOCKER, f"{addon} {value}",
                       f"no add-on builds recorded for {report.target}", fix)
        elif known.get(addon) != value:
            report.add("add-ons", BLOCKER, f"{addon} {value}",
                       f"{report.target}'s known-good build is {known.get(addon)} "
                       f"({facts.source(report.target, 'addons')})", fix)
        else:
            report.add("add-ons", OK, f"{addon} {value}",
                       f"known good on {report.target} ({facts.source(report.target, 'addons')})")
    tag = facts.cluster_autoscaler_tag(report.target)
    if tag is None:
        report.add("cluster autoscaler", BLOCKER, f"image for {report.target}",
                   "no tag recorded (its minor must match the cluster's)",
                   f"record the newest v{report.target}.x tag in platform_facts/kubernetes.json")
    else:
        report.add("cluster autoscaler", OK, f"image {tag}",
                   f"for {report.target} ({facts.source(report.target, 'cluster_autoscaler')})")


# -- charts, objects and node groups from the review -------------------------------------------

def check_rendered(report: Report, evaluation: Any, project: Path) -> None:
    """Every release rendered at the target version: refused charts are blockers; the objects
    of those that render, and of the team manifests, go to check_objects."""
    from platformctl import rendering

    objects: list[tuple[str, dict[str, Any]]] = []
    rendered, refused = rendering.render_each(evaluation, f"v{report.target}.0", project)
    for release, error in sorted(refused.items()):
        report.add("charts", BLOCKER, release, error,
                   "bump the chart to a version whose kubeVersion allows the target "
                   "(charts/README.md)")
    for release in rendered:
        objects += [(f"release {release.release}", o.object) for o in release.objects]
    if rendered:
        report.add("charts", OK, f"{len(rendered)} releases",
                   f"rendered by helm at {report.target}")
    from platformctl import synced

    for app in synced.applications(evaluation, project):
        objects += [(f"gitops {app.path}", dict(o)) for o in app.objects]
    check_objects(report, objects)


def check_node_roll(report: Report, review: Any) -> None:
    """The managed node groups' rolling update: each node drained in turn (the review's drain
    simulation) against the PodDisruptionBudgets (its pod-disruption-budget check)."""
    from platformctl.review import _assessment

    guard = review.guard
    if guard is None or not guard.evaluated("disruption-budgets"):
        report.add("node groups", BLOCKER, "PodDisruptionBudgets",
                   "not evaluated: the review could not check them", "run it with helm")
    for violation in guard.of("disruption-budgets") if guard else []:
        report.add("node groups", BLOCKER, str(violation.resource_name), violation.message,
                   violation.remediation or "")
    assessment = _assessment(review.evaluation)
    if assessment is None or not assessment.groups:
        report.add("node groups", BLOCKER, "drain simulation",
                   "not evaluated: no rendered releases or no node groups to drain",
                   "run it with helm, on a stack with node groups")
        return
    # Every stack's nodes are rolled by an upgrade, production or not (the review drains
    # production stacks' only). An EKS managed node group's update first scales the group up by
    # the larger of its AZ count and maxUnavailable (1), new nodes on the new version, then
    # drains the old ones one at a time: each drain is simulated with that surge in place.
    import dataclasses

    from platform_facts import capacity
    from platformctl.pricing import capacity_inputs

    addons = [r.props for r in capacity_inputs(review.evaluation) if r.type == capacity.ADDON]
    surged = [dataclasses.replace(g, min_size=g.min_size + max(len(g.zones), 1))
              for g in assessment.groups]
    placement = capacity.placement(surged, assessment.scheduled,
                                   capacity.prefix_delegation(addons), drains=True)
    stuck = [d for d in placement.drains if d.pending]
    for drain in stuck:
        report.add("node groups", BLOCKER, f"drain {drain.node}",
                   f"{', '.join(drain.pending)} find no other node",
                   "more nodes (minSize) or room for the pods while one node is drained")
    if not stuck and not any(f.step == "node groups" and f.status == BLOCKER
                             for f in report.findings):
        report.add("node groups", OK, f"{len(placement.drains)} nodes drained in turn",
                   "with the update's surge nodes, every pod finds another node; no "
                   "PodDisruptionBudget forbids an eviction")


def check(review: Any, target: str, project: Path) -> Report:
    evaluation = review.evaluation
    config = evaluation.config
    report = Report(evaluation.stack, config.cluster.kubernetes_version, target)
    check_pins(report, config)
    check_rendered(report, evaluation, project)
    check_node_roll(report, review)
    report.findings.sort(key=lambda f: (f.status != BLOCKER, ORDER.index(f.step)))
    return report


# -- output ------------------------------------------------------------------------------------

SYMBOL = {OK: "ok     ", BLOCKER: "BLOCKER", NOTE: "note   "}


def text(report: Report) -> str:
    verdict = (f"{len(report.blockers)} blocker(s)" if report.blockers
               else "no blocker")
    out = [f"Upgrade check: {report.stack}, Kubernetes {report.current} -> {report.target}: "
           f"{verdict}", ""]
    for step in ORDER:
        found = [f for f in report.findings if f.step == step]
        if not found:
            continue
        out.append(f"{ORDER.index(step) + 1}. {step}")
        for f in sorted(found, key=lambda f: f.status != BLOCKER):
            out.append(f"   {SYMBOL[f.status]} {f.subject}: {f.detail}")
            if f.fix and f.status != OK:
                out.append(f"           fix: {f.fix}")
    return "\n".join(out) + "\n"


def markdown(report: Report) -> str:
    verdict = (f"**{len(report.blockers)} blocker(s)**" if report.blockers else "no blocker")
    out = [f"### Upgrade check: {report.stack}, Kubernetes {report.current} → {report.target}: "
           f"{verdict}", "", "| step | status | what | detail | fix |", "|---|---|---|---|---|"]
    for step in ORDER:
        for f in sorted((f for f in report.findings if f.step == step),
                        key=lambda f: f.status != BLOCKER):
            cells = (step, f.status, f.subject, f.detail, f.fix if f.status != OK else "")
            out.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(out) + "\n"
