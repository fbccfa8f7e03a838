"""The review document: one stack's offline preview (plan, platform-guard verdicts, cost) and,
with a base revision, what changed. One JSON document (schema `platformctl.review/v1`, the
model platformctl.document, described by docs/review-schema.json) from which the terminal,
markdown and JSON outputs are all rendered (platformctl.report), so they cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from platform_facts import replacement
from platform_facts.costmodel import CostReport
from platformctl.crds import immutable_paths
from platformctl.crossguard import GuardReport
from platformctl.document import SCHEMA, Diff, ReviewDocument, counted, usd
from platformctl.pricing import cost_report
from platformctl.recording import Evaluation, mask_secrets, secret_digests, unwrap_secrets


def resource_key(type_token: str, name: str) -> str:
    return f"{type_token}::{name}"


def _shown_object(body: Mapping[str, Any]) -> dict[str, Any]:
    """A rendered object as the review document carries it: Secret data masked (charts generate
    keys and certificates), CRD schemas (megabytes) replaced by their size and digest, and the
    fields their transition rules make immutable (`immutable`, when there are any)."""
    shown = dict(body)
    if body.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(body.get(key), Mapping):
                shown[key] = {k: "[secret]" for k in body[key]}
    elif body.get("kind") == "CustomResourceDefinition":
        spec = dict(body.get("spec") or {})
        versions = []
        for version in spec.get("versions") or ():
            version = dict(version)
            if "schema" in version:
                schema = version["schema"]
                text = json.dumps(schema, sort_keys=True)
                version["schema"] = {"omitted": f"{len(text)} bytes",
                                     "sha256": hashlib.sha256(text.encode()).hexdigest()}
                frozen = immutable_paths((schema or {}).get("openAPIV3Schema") or {})
                if frozen:
                    version["schema"]["immutable"] = frozen
            versions.append(version)
        shown["spec"] = {**spec, "versions": versions}
    return shown


def rendered_section(evaluation: Evaluation) -> dict[str, Any]:
    """The objects inside each Helm release (platformctl.rendering), per release."""
    releases = []
    for rendered in sorted(evaluation.rendered, key=lambda r: (r.namespace, r.release)):
        releases.append({
            "key": resource_key(rendered.resource.type, rendered.resource.name),
            "release": rendered.release,
            "namespace": rendered.namespace,
            "chart": rendered.chart.name,
            "version": rendered.chart.version,
            "archive": rendered.chart.chart_path,
            "sha256": rendered.chart.sha256,
            "object_count": len(rendered.objects),
            "object_counts": rendered.counts(),
            "placeholders": list(rendered.placeholders),
            "objects": [{"apiVersion": o.api_version, "kind": o.kind, "namespace": o.namespace,
                         "name": o.name, "source": o.source, "object": _shown_object(o.object)}
                        for o in rendered.objects],
        })
    return {"object_count": sum(r["object_count"] for r in releases), "releases": releases}


def _assessment(evaluation: Evaluation):
    """platform_facts.capacity's assessment, the same computation as the node-capacity check;
    None until the releases are rendered."""
    if not evaluation.is_rendered:
        return None
    assert evaluation.config is not None
    key = (id(evaluation.resources), len(evaluation.resources), len(evaluation.rendered))
    cached = evaluation.__dict__.get("_assessment")
    if cached is not None and cached[0] == key:
        return cached[1]
    from platform_facts import capacity
    from platformctl.crossguard import rendered_releases
    from platformctl.pricing import capacity_inputs

    found = capacity.assess(capacity_inputs(evaluation), rendered_releases(evaluation).values(),
                            evaluation.synced, evaluation.config.preset == "prod")
    evaluation.__dict__["_assessment"] = (key, found)
    return found


def capacity_section(evaluation: Evaluation) -> list[dict[str, Any]]:
    """Pods, CPU and memory requested against what the node groups hold; empty until the
    releases are rendered."""
    assessment = _assessment(evaluation)
    scenarios = assessment.scenarios if assessment is not None else []
    return [{"scenario": s.label, "nodes": s.nodes, "fits": s.fits,
             "pods": {"requested": s.pods[0], "allocatable": s.pods[1]},
             "cpu_millicores": {"requested": round(s.cpu_m[0]), "allocatable": round(s.cpu_m[1])},
             "memory_mib": {"requested": round(s.memory_mib[0]),
                            "allocatable": round(s.memory_mib[1])},
             "requests_unknown": list(s.unknown),
             "node_groups": [{"name": name, "nodes": count, "instance_types": shape.instance_type,
                              "pods_per_node": shape.max_pods,
                              "cpu_millicores_per_node": round(shape.cpu_m),
                              "memory_mib_per_node": round(shape.memory_mib)}
                             for name, count, shape in s.groups]} for s in scenarios]


def placement_section(evaluation: Evaluation) -> dict[str, Any] | None:
    """The pods placed one by one, and each node drained (production)."""
    assessment = _assessment(evaluation)
    if assessment is None or assessment.placement is None:
        return None
    placed = assessment.placement
    return {"nodes": placed.nodes, "unplaced": placed.unplaced,
            "drains": [{"node": d.node, "zone": d.zone, "pending": d.pending,
                        "waiting": d.waiting} for d in placed.drains]}


ON_DEMAND_LINES = {("aws:eks/nodeGroup:NodeGroup", "nodes"), ("aws:rds/instance:Instance", "instance")}


def commitment_section(evaluation: Evaluation, ceiling: CostReport, over: Decimal,
                       per_node: Sequence[Decimal]) -> dict[str, Any] | None:
    """What a 1-year commitment would have to save to matter: enough, with the ceiling's
    headroom, for one more node of the cheapest growable node group. The lines it could cover:
    on-demand nodes and database instances (spot is never covered)."""
    spot = {r.name for r in evaluation.of_type("aws:eks/nodeGroup:NodeGroup")
            if unwrap_secrets(r.inputs).get("capacityType") == "SPOT"}
    covered = sum((line.monthly_usd for line in ceiling.priced
                   if (line.resource_type, line.key) in ON_DEMAND_LINES
                   and line.resource_name not in spot), Decimal(0))
    if covered <= 0:
        return None
    needed = max(Decimal(0), min(per_node) + over) if per_node else Decimal(0)
    return {"on_demand_monthly_usd": usd(covered), "needed_monthly_usd": usd(needed),
            "needed_percent": round(float(needed / covered * 100), 1) if per_node else None}


def showback_section(evaluation: Evaluation, ceiling: CostReport) -> dict[str, Any] | None:
    """Each team's quota priced (platform_facts.showback)."""
    from platformctl.pricing import team_showback

    found = team_showback(evaluation, ceiling)
    if found is None:
        return None
    return {"nodes": found.nodes, "cpu_millicores": round(found.cpu_m),
            "memory_mib": round(found.memory_mib), "fleet_monthly_usd": usd(found.monthly_usd),
            "teams_monthly_usd": usd(found.teams_monthly_usd),
            "teams": [{"team": t.team, "namespaces": list(t.namespaces),
                       "cpu_millicores": round(t.cpu_m), "memory_mib": round(t.memory_mib),
                       "share_percent": round(float(t.share * 100), 1), "dominant": t.dominant,
                       "monthly_usd": usd(t.monthly_usd)} for t in found.teams]}


def ceiling_section(evaluation: Evaluation, costs: CostReport,
                    ceiling: CostReport | None = None) -> dict[str, Any]:
    """The plan at its ceiling beside the expected `costs`: the total against the stack's share
    of the organisation's cap, the lines that differ, and what each node group's nodes cost."""
    from platform_facts.costmodel import node_pools
    from platformctl.pricing import cost_inputs

    cfg = evaluation.config
    assert cfg is not None
    ceiling = ceiling or cost_report(evaluation, ceiling=True)
    expected = {(line.resource_type, line.resource_name, line.key): line.monthly_usd
                for line in costs.priced}
    allowance = Decimal(str(cfg.budget_ceiling_monthly_usd))
    over = ceiling.total - allowance
    pools = [p for p in node_pools(cost_inputs(evaluation), cfg.region)
             if p.max_size > p.desired_size]
    return {
        "total_monthly_usd": usd(ceiling.total),
        "budget_monthly_usd": usd(allowance),
        "headroom_monthly_usd": usd(-over),
        "lines": [{
            "resource_type": line.resource_type, "resource_name": line.resource_name,
            "key": line.key, "item": line.item,
            "expected_monthly_usd": usd(expected.get(
                (line.resource_type, line.resource_name, line.key), Decimal(0))),
            "ceiling_monthly_usd": usd(line.monthly_usd),
        } for line in sorted(ceiling.priced, key=lambda line: (
            line.component or "", line.resource_type, line.resource_name, line.key))
            if line.monthly_usd != expected.get(
                (line.resource_type, line.resource_name, line.key))],
        "node_groups": [{
            "pool": p.pool, "max_size": p.max_size, "desired_size": p.desired_size,
            "per_node_monthly_usd": usd(p.per_node_usd),
            "largest_allowed_max_size": p.largest_max(over) if over > 0 else p.max_size + (
                int((-over) / p.per_node_usd) if p.per_node_usd > 0 else 0),
        } for p in pools],
        "commitment": commitment_section(evaluation, ceiling, over,
                                         [p.per_node_usd for p in pools]),
    }


def coverage(evaluation: Evaluation, costs: CostReport) -> dict[str, int]:
    """What the cost model made of every resource of the plan (Infracost's coverage line):
    priced (a line with a price), free (costs nothing itself), unpriced (a line without a
    price: unknown until apply, or no rule), and the components (groupings, no bill)."""
    priced = {(line.resource_type, line.resource_name) for line in costs.priced}
    unpriced = {(line.resource_type, line.resource_name) for line in costs.unpriced} - priced
    free = set(costs.free) - priced - unpriced
    components = sum(1 for r in evaluation.resources if not r.custom)
    return {"resources": len(evaluation.resources), "priced": len(priced), "free": len(free),
            "unpriced": len(unpriced), "components": components}


def build_document(evaluation: Evaluation, guard: GuardReport, costs: CostReport) -> dict[str, Any]:
    cfg = evaluation.config
    assert cfg is not None
    known = evaluation.by_urn()
    formers = evaluation.former_urns()
    resources = []

    def keys(urns: Sequence[str]) -> list[str]:
        return sorted({resource_key(known[u].type, known[u].name) for u in urns if u in known})

    # By URN: the SDK registers resources in an order that varies from run to run.
    for r in sorted(evaluation.resources, key=lambda r: r.urn):
        component = evaluation.component_of(r)
        parent = known.get(r.parent or "")
        property_dependencies = {k: keys(v) for k, v in sorted(r.property_dependencies.items())}
        resources.append({
            "key": resource_key(r.type, r.name),
            "type": r.type,
            "name": r.name,
            "component": component.type.rsplit(":", 1)[-1] if component else None,
            "parent": resource_key(parent.type, parent.name) if parent else None,
            "custom": r.custom,
            "protect": r.protect,
            "inputs": mask_secrets(r.inputs),
            "secret_digests": secret_digests(r.inputs),
            "urn": r.urn,
            "former_urns": sorted(formers.get(r.urn, ())),
            "ignore_changes": list(r.ignore_changes),
            "replace_on_changes": list(r.replace_on_changes),
            "dependencies": keys(r.dependencies),
            "property_dependencies": {k: v for k, v in property_dependencies.items() if v},
        })
    total = usd(costs.total)
    budget = usd(cfg.budget_monthly_usd)
    ceiling = cost_report(evaluation, ceiling=True)
    document = {
        "schema": SCHEMA,
        "stack": evaluation.stack,
        "source": evaluation.source,
        "preset": cfg.preset,
        "environment": cfg.environment,
        "region": cfg.region,
        "budget_monthly_usd": budget,
        "total_monthly_usd": total,
        # What the plan costs whatever it serves, and the usage lines at the model's assumptions.
        "fixed_monthly_usd": usd(costs.fixed),
        "usage_monthly_usd": usd(costs.usage),
        "headroom_monthly_usd": usd(Decimal(str(budget)) - Decimal(str(total))),
        "ceiling": ceiling_section(evaluation, costs, ceiling),
        "showback": showback_section(evaluation, ceiling),
        "resource_count": len(resources),
        "resource_counts": dict(sorted(Counter(r.type for r in evaluation.resources).items())),
        "resources": resources,
        "outputs": {k: {"value": v.shown(), "secret": v.secret}
                    for k, v in evaluation.outputs.items()},
        "cost": {
            "by_component": {k: usd(v) for k, v in costs.by_component().items()},
            "lines": [{
                "component": line.component,
                "resource_type": line.resource_type,
                "resource_name": line.resource_name,
                "key": line.key,
                "item": line.item,
                "monthly_usd": usd(line.monthly_usd),
                "detail": line.detail,
                "assumption": line.assumption,
                "unpriced_reason": line.unpriced_reason,
                "usage": line.usage,
            } for line in sorted(costs.lines, key=lambda line: (
                line.component or "", line.resource_type, line.resource_name, line.key))],
            "unpriced_count": len(costs.unpriced),
            "coverage": coverage(evaluation, costs),
        },
        "policies": {
            "mandatory": [v.to_dict() for v in guard.mandatory],
            "advisory": [v.to_dict() for v in guard.advisory],
            "cannot_run": [v.to_dict() for v in guard.cannot_run],
            "not_applicable_count": len(guard.not_applicable),
            # Checks that did not run (what they read was not computed): neither pass nor fail.
            "not_evaluated": [n.to_dict() for n in guard.not_evaluated],
        },
        "rendered": rendered_section(evaluation),
        "capacity": capacity_section(evaluation),
        "placement": placement_section(evaluation),
        "warnings": list(evaluation.warnings),
        "diff": None,
    }
    document["exit_code"] = 1 if guard.mandatory else 2 if guard.not_evaluated else 0
    return ReviewDocument.model_validate(document).to_dict()


# -- diff ----------------------------------------------------------------------------------

PROTECTED_POLICY = "protected-resources"
REFUSED_POLICY = "update-refused"
CRD_VERSION_POLICY = "crd-version-in-use"


def _changed_resources(before: Mapping[str, Mapping[str, Any]],
                       after: Mapping[str, Mapping[str, Any]],
                       api_immutable: Mapping[str, Sequence[str]] | None = None,
                       ) -> list[dict[str, Any]]:
    """Every resource in both revisions whose inputs change, or whose inputs use a replaced
    resource's outputs, with what the provider does with it (`platform_facts.replacement`):
    the engine's own order of business: ignoreChanges first, then the provider's diff, then the
    replacements cascading through the inputs that use a replaced resource's outputs."""
    providers = {k: r["inputs"] for k, r in after.items()
                 if r["type"] == "pulumi:providers:kubernetes"}
    k8s_provider = next(iter(providers.values()), None) if len(providers) == 1 else None
    entries: dict[str, dict[str, Any]] = {}
    for key in sorted(set(before) & set(after)):
        was, now = _with_digests(before[key], after[key])
        inputs = replacement.without_ignored(was["inputs"], now["inputs"],
                                             now.get("ignore_changes", ()))
        values = _changed_values(was["inputs"], inputs)
        keys = [path for path, _, _ in values]
        protect_changed = was["protect"] != now["protect"]
        new_urn = (was.get("urn") is not None and now.get("urn") is not None
                   and was["urn"] != now["urn"] and was["urn"] not in now.get("former_urns", ()))
        if not keys and not protect_changed and not new_urn:
            continue
        entry: dict[str, Any] = {
            "key": key, "type": now["type"], "name": now["name"],
            "changed_inputs": keys + (["(protect)"] if protect_changed else []),
            "protect": bool(was["protect"] or now["protect"]),
            # Old and new, as the documents hold them (secrets masked): what --diff shows.
            "values": {path: dict(zip(("old", "new"), _shown_values(old, new), strict=True))
                       for path, old, new in values}}
        if new_urn and now.get("custom", True):
            entry.update(action="replace", replace_fields=[], conditional=False,
                         reason="its URN changes without an alias: the engine deletes it and "
                                "creates it anew")
        elif keys and now.get("custom", True):
            decision = replacement.decide(now["type"], was["inputs"], inputs, k8s_provider,
                                          now.get("replace_on_changes", ()), api_immutable)
            entry.update(action=decision.action, replace_fields=list(decision.fields),
                         conditional=decision.conditional, reason=decision.reason)
        entries[key] = entry
    # Cascade: a replaced resource's outputs are unknown until it is created again, so every
    # input that uses them changes; where such an input forces a replacement, the dependent is
    # replaced too (what `pulumi preview` shows as `+-` on, say, every subnet of a new VPC).
    grew = True
    while grew:
        grew = False
        replaced = {k for k, e in entries.items() if e.get("action") == "replace"}
        for key in sorted(set(before) & set(after)):
            now = after[key]
            if not now.get("custom", True):
                continue
            for input_name, sources in sorted(now.get("property_dependencies", {}).items()):
                hit = sorted(set(sources) & replaced)
                if not hit:
                    continue
                entry = entries.setdefault(key, {
                    "key": key, "type": now["type"], "name": now["name"], "changed_inputs": [],
                    "protect": bool(before[key]["protect"] or now["protect"]),
                    "action": "update", "replace_fields": []})
                if input_name not in entry["changed_inputs"]:
                    entry["changed_inputs"] = sorted({*entry["changed_inputs"], input_name})
                entry["replaced_because"] = sorted({*entry.get("replaced_because", []), *hit})
                forces = replacement.forces_replacement(now["type"], input_name)
                if forces and entry.get("action") != "replace":
                    entry.update(action="replace", conditional=False,
                                 replace_fields=sorted({*entry.get("replace_fields", []),
                                                        input_name}))
                    grew = True
                elif forces is None and entry.get("action") == "update":
                    entry.update(action="unknown", replace_fields=[input_name],
                                 reason="whether this input forces a replacement is not known")
    _refused_by_aws(entries, before, after)
    replaced = {k for k, e in entries.items() if e.get("action") == "replace"}
    for key, entry in entries.items():
        if entry.get("action") == "replace":
            entry["dependents"] = sorted(
                k for k, r in after.items()
                if key in r.get("dependencies", ()) and k not in replaced)
        if not entry.get("replaced_because"):
            entry.pop("replaced_because", None)
    return [entries[k] for k in sorted(entries)]


def _refused_by_aws(entries: dict[str, dict[str, Any]],
                    before: Mapping[str, Mapping[str, Any]],
                    after: Mapping[str, Mapping[str, Any]]) -> None:
    """An update the cascade makes that AWS refuses: an input that now names a VPC replaced
    anew, or subnets or security groups replaced into it, on a resource AWS keeps in its VPC
    (`replacement.AWS_KEPT_IN_VPC`), unless the input AWS moves it with changes too, or what
    makes AWS refuse is not in the base (`replacement.AWS_REFUSED_WHILE`)."""
    replaced = {k for k, e in entries.items() if e.get("action") == "replace"}
    base_types = {r["type"] for r in before.values()}

    def in_a_new_vpc(key: str) -> bool:  # a new VPC, or replaced with its VPC
        return key in replaced and bool(
            after[key]["type"] == "aws:ec2/vpc:Vpc"
            or "vpcId" in entries[key].get("replace_fields", ())
            or set(after[key].get("property_dependencies", {}).get("vpcId", ())) & replaced)

    for key, entry in entries.items():
        rule = replacement.AWS_KEPT_IN_VPC.get(entry["type"])
        if entry.get("action") != "update" or not rule:
            continue
        if replacement.AWS_MOVES_WITH.get(entry["type"]) in entry["changed_inputs"]:
            continue
        holding = replacement.AWS_REFUSED_WHILE.get(entry["type"])
        if holding is not None and not base_types & set(holding):
            continue
        moved = sorted(
            name for name, sources in after[key].get("property_dependencies", {}).items()
            if name in rule and any(in_a_new_vpc(s) for s in sources))
        if moved:
            entry.update(action="refused", replace_fields=moved, reason=(
                "; ".join(rule[name] for name in moved) + ": its new value is a VPC made "
                "anew, or in one (replaced with it). `pulumi preview` shows an update; `pulumi "
                "up` fails here, after what precedes it is applied"))


def _with_digests(was: Mapping[str, Any], now: Mapping[str, Any]
                  ) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Both revisions of a resource with each masked secret both record a digest of shown as
    `[secret <digest>]`, so a changed secret is a changed input (and can force a replacement)
    while neither value is shown. A secret only one side has a digest for (a base reviewed
    before digests were recorded) stays `[secret]` on both: not compared."""
    old, new = was.get("secret_digests") or {}, now.get("secret_digests") or {}
    common = sorted(set(old) & set(new))
    if not common:
        return was, now

    def overlay(resource: Mapping[str, Any], digests: Mapping[str, str]) -> dict[str, Any]:
        inputs = json.loads(json.dumps(resource["inputs"]))
        for path in common:
            _set_path(inputs, path, f"[secret {digests[path]}]")
        return {**resource, "inputs": inputs}

    return overlay(was, old), overlay(now, new)


def _set_path(value: Any, path: str, new: Any) -> None:
    """Set `a.b[2].c` in nested dicts and lists (a path secret_digests made)."""
    parts = [int(p) if p.isdigit() else p
             for p in path.replace("[", ".").replace("]", "").split(".") if p]
    for part in parts[:-1]:
        value = value[part]
    if parts:
        value[parts[-1]] = new


def _protected_verdicts(before: Mapping[str, Mapping[str, Any]],
                        after: Mapping[str, Mapping[str, Any]],
                        changed: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The engine refuses to delete a protected resource, and a replacement deletes it: `pulumi
    up` stops there, after everything before it in the plan was applied."""
    verdicts = []
    for entry in changed:
        # The engine refuses when the resource is protected in its state and in the program;
        # unprotecting and replacing in one change is allowed (and shown as a replacement).
        key = entry["key"]
        if entry.get("action") == "replace" and before[key]["protect"] and after[key]["protect"]:
            why = (f"its input(s) {', '.join(entry['replace_fields'])} force a new resource"
                   if entry["replace_fields"] else entry.get("reason") or "")
            if entry.get("replaced_because"):
                why = (why + "; " if why else "") + ("it uses the outputs of replaced "
                                                     + ", ".join(entry["replaced_because"]))
            verdicts.append(_protected_verdict(entry["type"], entry["name"],
                                               f"replaced, but protected: {why}"))
    for key in sorted(set(before) - set(after)):
        if before[key]["protect"] and before[key].get("custom", True):
            verdicts.append(_protected_verdict(before[key]["type"], before[key]["name"],
                                               "deleted by this change, but protected"))
    return verdicts


def _protected_unseen(after: Mapping[str, Mapping[str, Any]],
                      changed: Sequence[Mapping[str, Any]]) -> dict[str, str] | None:
    """A changed resource whose action is unknown hides whether a protected resource is
    replaced: the resource itself if protected, or, for a provider, every protected resource
    of its package."""
    protected_packages = {r["type"].split(":", 1)[0] for r in after.values() if r["protect"]}
    unseen = []
    for entry in changed:
        if entry.get("action") != "unknown":
            continue
        package = (entry["type"].split(":")[2] if entry["type"].startswith("pulumi:providers:")
                   else None)
        if entry["protect"] or (package and package in protected_packages):
            unseen.append(f"{entry['name']} ({entry.get('reason') or 'action not known'})")
    if not unseen:
        return None
    return {"policy": PROTECTED_POLICY,
            "reason": "whether a protected resource is replaced cannot be told: "
                      + "; ".join(unseen)}


def _refused_verdicts(changed: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """An update the API refuses: a Kubernetes API server's immutable field (the provider plans
    an update, and `pulumi preview`'s dry run and `pulumi up` fail on it), or AWS keeping a
    resource in its VPC (`pulumi up` fails on it)."""
    return [{
        "policy": REFUSED_POLICY, "enforcement": "mandatory", "severity": "high",
        "resource_type": e["type"], "resource_name": e["name"],
        "message": f"{e['name']}: {', '.join(e['replace_fields'])} cannot change in place. "
                   f"{e.get('reason') or ''}".strip(),
        "remediation": replacement.AWS_REFUSAL_REMEDIATION[e["type"]]
        if e["type"] in replacement.AWS_KEPT_IN_VPC else (
            "Keep the field as it is, or have the engine replace the object: add the field to "
            "the resource's replaceOnChanges option (with deleteBeforeReplace when the name "
            "stays the same).")}
        for e in changed if e.get("action") == "refused"]


def api_immutable(document: Mapping[str, Any]) -> dict[str, list[str]]:
    """`group/version/Kind` -> the fields its CRD's transition rules freeze, from the CRDs a
    review document's releases render."""
    frozen: dict[str, list[str]] = {}
    for release in (document.get("rendered") or {}).get("releases") or ():
        for o in release.get("objects") or ():
            if o.get("kind") != "CustomResourceDefinition":
                continue
            spec = o["object"].get("spec") or {}
            for version in spec.get("versions") or ():
                paths = (version.get("schema") or {}).get("immutable")
                if paths:
                    kind = (spec.get("names") or {}).get("kind")
                    frozen[f"{spec.get('group')}/{version.get('name')}/{kind}"] = list(paths)
    return frozen


def _protected_verdict(type_token: str, name: str, message: str) -> dict[str, Any]:
    return {"policy": PROTECTED_POLICY, "enforcement": "mandatory", "severity": "critical",
            "resource_type": type_token, "resource_name": name,
            "message": f"{name}: {message}. The engine refuses to delete a protected resource, "
                       "so `pulumi up` fails part-way",
            "remediation": "Keep the inputs that force a new resource as they are, or migrate "
                           "deliberately: unprotect in one reviewed change (with a snapshot or "
                           "backup of its data), then replace in the next."}


def _preview_counts(before: Mapping[str, Mapping[str, Any]],
                    after: Mapping[str, Mapping[str, Any]],
                    changed: Sequence[Mapping[str, Any]],
                    replaced_by_urn: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    def counted(r: Mapping[str, Any]) -> bool:
        return bool(r.get("custom", True))

    actions = {e["key"]: e.get("action", "update") for e in changed
               if counted(after[e["key"]]) and e.get("action")}
    for entry in replaced_by_urn:
        actions[entry["key"]] = "replace"
    both = [k for k in set(before) & set(after) if counted(after[k])]
    return {
        "create": sum(1 for k in set(after) - set(before) if counted(after[k])),
        "update": sum(1 for a in actions.values() if a == "update"),
        "replace": sum(1 for a in actions.values() if a == "replace"),
        "delete": sum(1 for k in set(before) - set(after) if counted(before[k])),
        "unknown": sum(1 for a in actions.values() if a == "unknown"),
        "refused": sum(1 for a in actions.values() if a == "refused"),
        "unchanged": sum(1 for k in both if k not in actions),
    }



def _changed_values(before: Any, after: Any, path: str = "",
                    depth: int = 2) -> list[tuple[str, Any, Any]]:
    """(path, old, new) of each changed input: mappings entered two levels deep, each path
    dotted ("tags.Name")."""
    if before == after:
        return []
    if depth and isinstance(before, Mapping) and isinstance(after, Mapping):
        changed = []
        for key in sorted(set(before) | set(after)):
            here = f"{path}.{key}" if path else str(key)
            changed.extend(_changed_values(before.get(key), after.get(key), here, depth - 1))
        return changed
    return [(path or "(value)", before, after)]


DIFF_VALUE_CHARS = 160  # a value longer than this is cut
DIFF_CONTEXT_CHARS = 24  # what a long value shows before its first difference


def _shown_values(old: Any, new: Any) -> tuple[str, str]:
    """Old and new value as `pulumi preview --diff` would show them, cut short (secrets are
    masked in the documents already). Two long texts that start alike are shown from a little
    before where they differ, so the cut never hides the change."""
    texts = [("(not set)" if v is None else v if isinstance(v, str)
              else json.dumps(v, sort_keys=True)) for v in (old, new)]
    start = len(os.path.commonprefix(texts)) - DIFF_CONTEXT_CHARS
    if max(map(len, texts)) > DIFF_VALUE_CHARS and start > 0:
        texts = ["…" + t[start:] for t in texts]
    return tuple(t if len(t) <= DIFF_VALUE_CHARS else t[:DIFF_VALUE_CHARS - 1] + "…"
                 for t in texts)  # type: ignore[return-value]


def _violation_key(v: Mapping[str, Any]) -> tuple[Any, ...]:
    # A stack-level verdict has no resource: what its message names before the first colon
    # tells two of one policy apart (node-capacity's scenarios), numbers after it may change.
    subject = v["message"].split(":", 1)[0] if v["resource_name"] is None else ""
    return (v["policy"], v["resource_type"], v["resource_name"], subject)


def dollars(amount: float) -> str:
    return f"-${abs(amount):,.2f}" if amount < 0 else f"${amount:,.2f}"


def signed_dollars(amount: float) -> str:
    """A change in USD: +$1.50, -$2.00 (zero is +$0.00)."""
    return f"{'+' if amount >= 0 else '-'}${abs(amount):,.2f}"


def _money_text(amount: float) -> str:
    return f"{signed_dollars(amount)}/month"


def attach_diff(base: Mapping[str, Any], head: dict[str, Any]) -> dict[str, Any]:
    """`head` with what changed from `base` (`head["diff"]`) and the verdicts only a change can
    have (a protected resource replaced or deleted) among its mandatory ones, its exit code
    following."""
    before = {r["key"]: r for r in base["resources"]}
    after = {r["key"]: r for r in head["resources"]}
    changed = _changed_resources(before, after, api_immutable(head))
    blocking = [*_protected_verdicts(before, after, changed), *_refused_verdicts(changed),
                *_crd_version_verdicts(base, head)]
    if blocking:
        head["policies"]["mandatory"] = [*head["policies"]["mandatory"], *blocking]
    blind = _protected_unseen(after, changed)
    if blind:
        head["policies"]["not_evaluated"] = [*head["policies"].get("not_evaluated", []), blind]
    head["exit_code"] = (1 if head["policies"]["mandatory"]
                         else 2 if head["policies"].get("not_evaluated") else 0)
    head["diff"] = diff(base, head, changed)
    return head


def diff(base: Mapping[str, Any], head: Mapping[str, Any],
         changed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """What changed from `base` to `head` (two review documents of the same stack)."""
    before = {r["key"]: r for r in base["resources"]}
    after = {r["key"]: r for r in head["resources"]}
    if changed is None:  # attach_diff passes what it already worked out
        changed = _changed_resources(before, after, api_immutable(head))

    def violations(doc: Mapping[str, Any]) -> dict[tuple[Any, ...], Mapping[str, Any]]:
        return {_violation_key(v): v for kind in ("mandatory", "advisory")
                for v in doc["policies"][kind]}

    old_v, new_v = violations(base), violations(head)

    # What the engine does with a resource both revisions have: keep it, adopt it under a new
    # URN through an alias (moved), or delete it and create it anew (its URN changed without an
    # alias: a new parent or type chain). Only when both sides name their URNs as the engine
    # does (documents from before that carry none).
    replaced, moved = [], []
    for key in sorted(set(before) & set(after)):
        was, now = before[key].get("urn"), after[key].get("urn")
        if was is None or now is None or was == now:
            continue
        entry = {"key": key, "type": after[key]["type"], "name": after[key]["name"],
                 "base_urn": was, "urn": now}
        (moved if was in after[key].get("former_urns", ()) else replaced).append(entry)

    def lines(doc: Mapping[str, Any]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
        return {(line["resource_type"], line["resource_name"], line["key"]): line
                for line in doc["cost"]["lines"] if line["monthly_usd"] is not None}

    old_l, new_l = lines(base), lines(head)
    cost_changes = []
    for key in sorted(set(old_l) | set(new_l), key=str):
        was = old_l.get(key, {}).get("monthly_usd") or 0.0
        now = new_l.get(key, {}).get("monthly_usd") or 0.0
        delta = usd(Decimal(str(now)) - Decimal(str(was)))
        if delta == 0:
            continue
        line = new_l.get(key) or old_l[key]
        change = "added" if key not in old_l else "removed" if key not in new_l else "changed"
        if change == "changed":
            # Old -> new, the quantities in the items' own words ("2 x t4g.medium" -> "3 x").
            before_item = old_l[key]["item"]
            what = (f"{line['item']}" if before_item == line["item"]
                    else f"{before_item} -> {line['item']}")
            said = f"{what} (${was:,.2f} -> ${now:,.2f})"
        else:
            said = f"{line['item']} {change}"
        cost_changes.append({
            "resource_type": key[0], "resource_name": key[1], "key": key[2],
            "item": line["item"], "change": change, "before_monthly_usd": was,
            "after_monthly_usd": now, "delta_monthly_usd": delta,
            "summary": f"{_money_text(delta)}: {said} ({key[1]})",
        })
    cost_changes.sort(key=lambda c: (-abs(c["delta_monthly_usd"]), c["summary"]))

    def per_resource(lines: Mapping[tuple[str, str, str], Mapping[str, Any]]
                     ) -> dict[tuple[str, str], Decimal]:
        sums: dict[tuple[str, str], Decimal] = {}
        for (kind, name, _), line in lines.items():
            sums[(kind, name)] = sums.get((kind, name), Decimal(0)) + Decimal(
                str(line["monthly_usd"]))
        return sums

    old_r, new_r = per_resource(old_l), per_resource(new_l)
    by_resource = [{"resource_type": k[0], "resource_name": k[1],
                    "before_monthly_usd": usd(old_r.get(k, Decimal(0))),
                    "after_monthly_usd": usd(new_r.get(k, Decimal(0)))}
                   for k in sorted(set(old_r) | set(new_r))
                   if usd(old_r.get(k, Decimal(0))) != usd(new_r.get(k, Decimal(0)))]
    total_delta = usd(Decimal(str(head["total_monthly_usd"] or 0))
                      - Decimal(str(base["total_monthly_usd"] or 0)))

    old_o, new_o = _rendered_objects(base), _rendered_objects(head)
    note = None
    if "rendered" not in base:  # a revision from before the review rendered Helm releases
        old_o, new_o = {}, {}
        note = "the base revision does not render Helm releases; nothing to compare"
    return Diff.model_validate({
        "base": base.get("revision"),
        "resources": {
            "added": [{"key": k, "type": after[k]["type"], "name": after[k]["name"]}
                      for k in sorted(set(after) - set(before))],
            "removed": [{"key": k, "type": before[k]["type"], "name": before[k]["name"]}
                        for k in sorted(set(before) - set(after))],
            "changed": changed,
            "replaced": replaced,
            "moved": moved,
            "counts": _preview_counts(before, after, changed, replaced),
        },
        "rendered": {
            **({"note": note} if note else {}),
            "added": sorted(set(new_o) - set(old_o)),
            "removed": sorted(set(old_o) - set(new_o)),
            "changed": sorted(k for k in set(old_o) & set(new_o) if old_o[k] != new_o[k]),
            **_rendered_details(old_o, new_o),
        },
        "violations": {
            "new": [new_v[k] for k in sorted(set(new_v) - set(old_v), key=str)],
            "resolved": [old_v[k] for k in sorted(set(old_v) - set(new_v), key=str)],
        },
        "cost": {
            "base_total_monthly_usd": base["total_monthly_usd"],
            "total_monthly_usd": head["total_monthly_usd"],
            "delta_monthly_usd": total_delta,
            "summary": f"{_money_text(total_delta)} in total",
            "lines": cost_changes,
            "by_resource": by_resource,
            "base_by_component": dict(base["cost"].get("by_component") or {}),
        },
    }).model_dump(mode="python", by_alias=True)


def _rendered_objects(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {f"{release['release']}: {o['kind']} {o['namespace'] or '-'}/{o['name']}": o["object"]
            for release in (doc.get("rendered") or {}).get("releases", [])
            for o in release["objects"]}


def _crd_version_verdicts(base: Mapping[str, Any],
                          head: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A CRD version the base served, the head no longer serves, and objects of the head still
    use: the API server stops serving those objects (a chart bump's removed version)."""
    if "rendered" not in base:
        return []
    found = _rendered_details(_rendered_objects(base), _rendered_objects(head))
    return [{"policy": CRD_VERSION_POLICY, "enforcement": "mandatory", "severity": "high",
             "resource_type": "CustomResourceDefinition", "resource_name": g["crd"],
             "message": f"{g['crd']} no longer serves {g['api']}, and {g['kind']} objects of "
                        "this stack still use it: the API server would stop serving them",
             "remediation": f"move the {g['kind']} objects to a version the new CRD serves in "
                            "the same change, or keep the chart that serves it"}
            for g in found["crd_versions_removed"] if g["in_use"]]


def _rendered_details(old_o: Mapping[str, Mapping[str, Any]],
                      new_o: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The field paths of each changed object, and the CRD versions the head no longer serves
    (with whether the head's objects still use them): what a chart bump changes."""
    from platformctl.objectdiff import MAX_PATHS
    from platformctl.objectdiff import field_paths as _paths

    fields = {}
    for key in sorted(set(old_o) & set(new_o)):
        if old_o[key] != new_o[key]:
            paths = _paths(old_o[key], new_o[key])
            fields[key] = paths[:MAX_PATHS] + (
                [f"... {len(paths) - MAX_PATHS} more"] if len(paths) > MAX_PATHS else [])
    in_use = {(str(o.get("apiVersion")), str(o.get("kind"))) for o in new_o.values()}

    def served(body: Mapping[str, Any] | None) -> set[str]:
        return {str(v.get("name")) for v in ((body or {}).get("spec") or {}).get("versions") or []
                if v.get("served", True)}

    removed = []
    for key in sorted(set(old_o)):
        body = old_o[key]
        if body.get("kind") != "CustomResourceDefinition":
            continue
        spec = body.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        name = (body.get("metadata") or {}).get("name")
        head = next((o for o in new_o.values() if o.get("kind") == "CustomResourceDefinition"
                     and (o.get("metadata") or {}).get("name") == name), None)
        for version in sorted(served(body) - served(head)):
            api = f"{group}/{version}"
            removed.append({"crd": name, "api": api, "kind": kind,
                            "in_use": (api, str(kind)) in in_use})
    return {"fields": fields, "crd_versions_removed": removed}


# -- the verdict of a document ---------------------------------------------------------------

def named(violations: Sequence[Mapping[str, Any]]) -> str:
    """The policies behind some violations, the most frequent first: `required-tags x72, ...`."""
    counts = Counter(v["policy"] for v in violations)
    return ", ".join(f"{p} x{n}" if n > 1 else p for p, n in counts.most_common())


def verdict(doc: Mapping[str, Any]) -> tuple[str, str]:
    """('blocked' | 'not evaluated' | 'advisory' | 'passes', one line saying it, with the
    policies named). A review with a check that did not run never passes."""
    policies = doc["policies"]
    mandatory, advisory = policies["mandatory"], policies["advisory"]
    unevaluated = policies.get("not_evaluated") or []  # absent from documents before it
    if mandatory:
        return "blocked", (f"BLOCKED: {counted(len(mandatory), 'mandatory violation')}: "
                           f"{named(mandatory)}")
    if doc.get("project_problems"):
        return "blocked", (f"BLOCKED: {counted(len(doc['project_problems']), 'problem')} of "
                           "the project (Pulumi.yaml and the stack files together)")
    if unevaluated:
        return "not evaluated", (f"NOT EVALUATED: {counted(len(unevaluated), 'check')} did "
                                 "not run: "
                                 f"{named(unevaluated)}")
    if advisory:
        return "advisory", f"PASSES with {len(advisory)} advisory: {named(advisory)}"
    return "passes", "PASSES platform-guard: no violations"
