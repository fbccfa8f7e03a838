"""The production-readiness review, generated: `platformctl readiness STACK [--service SPEC]`.

Each line is a control with the evidence that proves it (a resource of the recording and the
input that shows it, a policy verdict, an alert's runbook, a drill report, a rendered object,
the test that keeps it so) and a status computed from the review, never typed by hand:

    pass           the evidence shows the control holds
    fail           the evidence shows it does not
    no evidence    nothing proves it (no drill report yet, or one older than DRILL_MAX_AGE)
    not evaluated  the check that would prove it did not run (its reason in the detail: the
                   Helm releases could not be rendered, say); never read as a pass
    not required   a prod-only control in a non-prod stack

The checklist is computed from the one review pipeline (platformctl.pipeline), every step of it:
the same verdicts `platformctl review` reports. The stack is ready when every required line
passes (exit 0; else 1).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from components import alerts
from components.admission import REQUIRED_ATTESTATIONS
from platformctl.drills import REPORTS_DIR
from platformctl.pipeline import Review
from platformctl.recording import RecordedResource

DRILL_MAX_AGE = timedelta(days=90)
PASS, FAIL, NO_EVIDENCE, NOT_REQUIRED = "pass", "fail", "no evidence", "not required"
NOT_EVALUATED = "not evaluated"
STATUSES = (PASS, FAIL, NO_EVIDENCE, NOT_EVALUATED, NOT_REQUIRED)
SYMBOL = {PASS: "✅", FAIL: "❌", NO_EVIDENCE: "⚠️", NOT_EVALUATED: "❔", NOT_REQUIRED: "➖"}


@dataclass
class Line:
    area: str
    control: str
    status: str
    evidence: list[str] = field(default_factory=list)
    detail: str = ""


def _resource_evidence(resource: RecordedResource, shown: str) -> str:
    return f"{resource.type} `{resource.name}` ({shown})"


class _Checks:
    def __init__(self, review: Review, project: Path, now: datetime):
        self.e, self.guard, self.costs = review.evaluation, review.verdicts, review.cost
        self.project, self.now = project, now
        assert self.e.config is not None
        self.prod = self.e.config.preset == "prod"
        self.lines: list[Line] = []

    def add(self, area: str, control: str, ok: bool | None, evidence: Iterable[str],
            detail: str = "", prod_only: bool = False, not_evaluated: str | None = None) -> None:
        """A line; `not_evaluated` (the reason) when the check behind `ok` never ran."""
        status = (NOT_EVALUATED if not_evaluated is not None else NO_EVIDENCE if ok is None
                  else PASS if ok else FAIL)
        if not_evaluated is not None:
            detail = "; ".join(p for p in (not_evaluated, detail) if p)
        if prod_only and not self.prod and status != PASS:
            status = NOT_REQUIRED
        self.lines.append(Line(area, control, status, list(evidence), detail))

    def not_evaluated(self, *policies: str) -> str | None:
        """Why the named policies (all of them when none is named) were not evaluated."""
        found = [n for n in self.guard.not_evaluated if not policies or n.policy in policies]
        if not found:
            return None
        reasons = sorted({n.reason for n in found})
        return (f"not evaluated: {', '.join(n.policy for n in found)} ({'; '.join(reasons)})")

    def of(self, type_token: str) -> list[RecordedResource]:
        return self.e.of_type(type_token)

    def one_input(self, type_token: str, key: str) -> tuple[RecordedResource | None, Any]:
        found = self.of(type_token)
        return (found[0], found[0].inputs.get(key)) if found else (None, None)

    def drill(self, kind: str) -> tuple[bool | None, list[str], str]:
        """The newest drill report of this kind for the stack: passed and recent enough."""
        reports = sorted((self.project / REPORTS_DIR).glob(f"{self.e.stack}-{kind}-*.json"))
        if not reports:
            return None, [], f"no {REPORTS_DIR}/{self.e.stack}-{kind}-*.json yet"
        newest = reports[-1]
        doc = json.loads(newest.read_text(encoding="utf-8"))
        started = datetime.strptime(doc["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        shown = newest.relative_to(self.project).as_posix()
        if self.now - started > DRILL_MAX_AGE:
            return None, [shown], f"the newest is {(self.now - started).days} days old"
        figures = ", ".join(f"{k.split('_')[0].upper()} {doc[k]:.0f} s"
                            for k in ("rto_seconds", "rpo_seconds") if doc.get(k) is not None)
        return doc["status"] == "passed", [shown], f"{doc['status']}; {figures}".rstrip("; ")


def environment(review: Review, project: Path, now: datetime | None = None) -> list[Line]:
    """The environment's checklist, from its review (recording, verdicts, cost)."""
    c = _Checks(review, project, now or datetime.now(UTC))
    evaluation, guard, costs = c.e, c.guard, c.costs
    config = evaluation.config
    assert config is not None

    # -- data and recovery
    db, multi_az = c.one_input("aws:rds/instance:Instance", "multiAz")
    if db is not None:
        c.add("recovery", "Database has a standby in another AZ", bool(multi_az),
              [_resource_evidence(db, f"multiAz: {bool(multi_az)}"), "tests/test_database.py"],
              prod_only=True)
        c.add("recovery", "Database cannot be deleted by a command",
              bool(db.inputs.get("deletionProtection")) and db.protect,
              [_resource_evidence(db, f"deletionProtection: {db.inputs.get('deletionProtection')}"
                                  f", protect: {db.protect}")], prod_only=True)
        retention = int(db.inputs.get("backupRetentionPeriod") or 0)
        c.add("recovery", "Point-in-time recovery for at least 14 days", retention >= 14,
              [_resource_evidence(db, f"backupRetentionPeriod: {retention}")], prod_only=True)
    selections = c.of("aws:backup/selection:Selection")
    c.add("recovery", "Platform volumes backed up daily (AWS Backup)", bool(selections),
          [_resource_evidence(s, "daily plan") for s in selections] or ["no backup selection"],
          "docs/database.md, tests/test_backup.py")
    copies = [v for v in c.of("aws:backup/vault:Vault") if v.name.endswith("-dr-backup")]
    replicas = c.of("aws:rds/instanceAutomatedBackupsReplication:"
                    "InstanceAutomatedBackupsReplication")
    c.add("recovery", "Backups outlive the region (copies, replicated database backups)",
          bool(copies and replicas),
          [_resource_evidence(r, "copy region") for r in (*copies, *replicas)]
          or ["no copy region (platform:backup.copyRegion)"], prod_only=True)
    for kind, control in (("restore", "Restore drill passed in the last 90 days"),
                          ("failover", "Failover drill passed in the last 90 days")):
        ok, evidence, detail = c.drill(kind)
        c.add("recovery", control, ok, evidence or [f"platformctl drill {kind} {evaluation.stack}"],
              detail, prod_only=True)
    templates = c.of("aws:fis/experimentTemplate:ExperimentTemplate")
    c.add("recovery", "Chaos experiments with stop conditions (database failover, node loss)",
          len(templates) >= 2 and all(t.inputs.get("stopConditions") for t in templates),
          [_resource_evidence(t, f"{len(t.inputs.get('stopConditions') or [])} stop conditions")
           for t in templates] or ["platform:chaos.fis"], "tests/test_chaos.py",
          prod_only=True)
    capacity = guard.of("node-capacity")
    unevaluated = c.not_evaluated("node-capacity")
    c.add("recovery", "The platform fits with one node lost", not capacity,
          ["policy `node-capacity`" + (f": {capacity[0].message}" if capacity
                                       else " not evaluated" if unevaluated else " passes")],
          prod_only=True, not_evaluated=unevaluated)
    webhooks = guard.of("webhook-availability")
    unevaluated = c.not_evaluated("webhook-availability")
    c.add("recovery", "Admission survives losing an AZ (fail-closed webhooks one pod per AZ)",
          not webhooks,
          ["policy `webhook-availability`" + (f": {webhooks[0].message}" if webhooks
                                              else " not evaluated" if unevaluated
                                              else " passes")],
          prod_only=True, not_evaluated=unevaluated)

    # -- security
    c.add("security", "No mandatory policy violation", not guard.mandatory,
          [f"platform-guard: {len(guard.mandatory)} mandatory, {len(guard.advisory)} advisory, "
           f"{len(guard.not_evaluated)} not evaluated"],
          not_evaluated=None if guard.mandatory else c.not_evaluated())
    gatekeeper = config.security.gatekeeper
    c.add("security", "Admission policies refuse (fail closed)",
          gatekeeper.enforcement == "deny" and gatekeeper.fail_closed,
          [f"platform:security.gatekeeper: enforcement {gatekeeper.enforcement}, failClosed "
           f"{gatekeeper.fail_closed}", "tests/test_admission.py"], prod_only=True)
    policies = c.of("kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy")
    signed = [p for p in policies if p.inputs.get("spec", {}).get("mode") == "enforce"
              and {a.get("predicateType") for auth in p.inputs["spec"].get("authorities", [])
                   for a in auth.get("attestations", [])} >= set(REQUIRED_ATTESTATIONS.values())]
    c.add("security", "Only signed, attested images run (SBOM and provenance)", bool(signed),
          [_resource_evidence(p, f"mode {p.inputs.get('spec', {}).get('mode')}")
           for p in policies] + ["tests/test_service_ci.py"], prod_only=True)
    keys = c.of("aws:kms/key:Key")
    key_policies = c.of("aws:kms/keyPolicy:KeyPolicy")
    c.add("security", "Every KMS key has its own key policy and rotates",
          len(key_policies) == len(keys) and all(k.inputs.get("enableKeyRotation") for k in keys),
          [f"{len(keys)} keys, {len(key_policies)} key policies", "tests/test_kms.py"])
    # The same facts the program warns about: an IdP without its client secret cannot sign
    # anyone in (the secret is the operator's to set; until it is, there is no evidence).
    sso = config.gitops.sso
    c.add("security", "Argo CD sign-in through the IdP, no local admin",
          False if sso is None else True if sso.client_secret is not None else None,
          ["platform:gitops.sso"] if sso is None or sso.client_secret is not None else
          ["platform:gitops.sso.clientSecret is not set: `pulumi config set --secret --path "
           "platform:gitops.sso.clientSecret <secret>`"], prod_only=True)

    # -- operations
    missing = [a.name for a in alerts.all_alerts() if a.paging and not (
        project / alerts.RUNBOOK_DIR / f"{a.slug}.md").is_file()]
    c.add("operations", "Every paging alert has a runbook", not missing,
          [f"{alerts.RUNBOOK_DIR.as_posix()}/ ({'missing: ' + ', '.join(missing) if missing else 'all'})"])
    rules = c.of("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    c.add("operations", "SLO burn-rate alerts are deployed", bool(rules),
          [_resource_evidence(r, "rules") for r in rules[:3]] or ["no PrometheusRule"],
          "tests/test_burn_rates.py")
    # A receiver without a destination drops its alerts (the program warns so): none of them
    # reaches a person until its URL is set (an operator's secret: no evidence until then).
    receivers = config.alerting.receivers
    silent = [r.name for r in receivers if r.slack_webhook_url is None and r.webhook_url is None]
    c.add("operations", "Alerts reach a person (receivers configured)",
          False if not receivers else None if silent else True,
          [f"platform:alerting: {len(receivers)} receivers"] + [
              f"receiver {name!r} has no slackWebhookUrl or webhookUrl (its alerts are dropped): "
              f"`pulumi config set --secret --path 'platform:alerting.receivers[...]."
              "slackWebhookUrl' <url>`" for name in silent], prod_only=True)
    groups = [g for g in c.of("aws:cloudwatch/logGroup:LogGroup")
              if str(g.inputs.get("name", "")).startswith(f"/platform/{config.environment}/")]
    c.add("operations", "Container and node logs are shipped and kept (a retention set)",
          bool(c.of("platform:index:LogPipeline")) and bool(groups)
          and all(g.inputs.get("retentionInDays") for g in groups),
          [_resource_evidence(g, f"{g.inputs.get('retentionInDays')} days") for g in groups]
          or ["no LogPipeline (platform:observability.logs.enabled)"], "tests/test_logs.py")
    xray = c.of("aws:xray/group:Group")
    c.add("operations", "Traces reach X-Ray from every service (the gateway runs)",
          bool(c.of("platform:index:TracePipeline")) and bool(xray),
          [_resource_evidence(g, "X-Ray group") for g in xray]
          or ["no TracePipeline (platform:observability.traces.enabled)"], "tests/test_traces.py")
    c.add("operations", "Changes reach the environment by a person's sync",
          not config.gitops.auto_sync, [f"platform:gitops.autoSync: {config.gitops.auto_sync}"],
          prod_only=True)

    # -- cost
    total = float(costs.total)
    c.add("cost", "Estimate within the budget", total <= config.budget_monthly_usd,
          [f"${total:,.2f}/month of ${config.budget_monthly_usd:,.2f} (the cost model)"])
    budgets = c.of("aws:budgets/budget:Budget")
    c.add("cost", "AWS Budget alerts at 80% forecast and 100% actual", bool(budgets),
          [_resource_evidence(b, "notifications") for b in budgets] or ["no AWS Budget"])
    return c.lines


LOAD_TESTED = "Load-tested: the HPA scales out before a replica leaves its SLO"


def _load_tested(spec: Any, project: Path, add) -> None:
    """The service's load-test report (bench/load.py; platformctl.loadtest): its capacity per
    replica within the spec's SLO, the HPA's target at most the proposed one (it scales out
    while each replica still has room) and maxReplicas enough for the peak; no evidence without
    a report. A report older than 90 days is said beside its figures."""
    from platformctl import loadtest

    where = loadtest.path_for(project, spec.team, spec.name).relative_to(project).as_posix()
    try:
        load = loadtest.read(project, spec.team, spec.name, spec.slo.latency_p99_ms,
                             spec.slo.error_budget)
    except loadtest.ReportError as error:
        add(LOAD_TESTED, False, [where], str(error))
        return
    if load is None:
        add(LOAD_TESTED, None, [f"bench/load.py writes {where}"])
        return
    measured = load.measured_at.strftime("%Y-%m-%d")
    notes = [] if load.age() <= loadtest.OLD_AFTER else [
        f"measured {measured}, more than 90 days ago: run bench/load.py again"]
    target, proposed = spec.scaling.target_cpu_percent, load.proposed_target_percent
    most, peak = spec.scaling.max_replicas, spec.scaling.peak_requests_per_second
    needed = load.replicas_for(peak) if peak is not None and load.capacity_rps > 0 else None
    add(LOAD_TESTED, load.capacity_rps > 0 and target <= proposed
        and (needed is None or needed <= most), [
        where,
        f"{load.capacity_rps:g} requests/s per replica within p99 {load.latency_p99_ms:g} ms at "
        f"{load.cpu_request:g} CPU, measured {measured}",
        f"HPA target {target}% of the CPU request, at most {proposed}% "
        f"({load.cpu_percent_at_capacity:g}% at capacity x {loadtest.HEADROOM})",
        f"{most} replicas serve {most * load.capacity_rps * loadtest.HEADROOM:g} requests/s"
        + ("" if peak is None else f"; the peak of {peak:g} needs {needed} (maxReplicas {most})")
        ], "; ".join([*notes, *([] if peak is not None else [
            "no peak rate in the spec (scaling.peakRequestsPerSecond)"])]))


def _rollback_drill(project: Path, spec: Any, env: str,
                    now: datetime) -> tuple[bool | None, list[str], str]:
    """The newest rollback drill report of the service in `env` (drills/<env>-rollback-*.json
    whose source is team/name): passed and at most DRILL_MAX_AGE old."""
    mine = []
    for path in sorted((project / REPORTS_DIR).glob(f"{env}-rollback-*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("source") == f"{spec.team}/{spec.name}":
            mine.append((path, doc))
    if not mine:
        return None, [], ""
    path, doc = mine[-1]
    shown = path.relative_to(project).as_posix()
    started = datetime.strptime(doc["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if now - started > DRILL_MAX_AGE:
        return None, [shown], f"the newest is {(now - started).days} days old"
    figure = f"RTO {doc['rto_seconds']:.0f} s" if doc.get("rto_seconds") is not None else ""
    return doc["status"] == "passed", [shown], "; ".join(p for p in (doc["status"], figure) if p)


def service(spec: Any, project: Path, prod: str = "prod",
            now: datetime | None = None) -> list[Line]:
    """A service's checklist, from its spec and the objects the golden path rendered."""
    from platformctl import golden

    base = project / golden.base_path(spec)
    objects: dict[str, dict[str, Any]] = {}
    for path in sorted(base.glob("*.yaml")):
        if path.name in golden.KUSTOMIZE_FILES:
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict):
                objects[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    lines: list[Line] = []

    def add(control: str, ok: bool | None, evidence: list[str], detail: str = "") -> None:
        lines.append(Line("service", control, NO_EVIDENCE if ok is None else PASS if ok else FAIL,
                          evidence, detail))

    rollout = objects.get(f"Rollout/{spec.name}")
    pod = (rollout or {}).get("spec", {}).get("template", {}).get("spec", {})
    container = (pod.get("containers") or [{}])[0]
    where = f"{golden.base_path(spec)}/rollout.yaml"
    add("Readiness, liveness and startup probes",
        all(p in container for p in ("readinessProbe", "livenessProbe", "startupProbe")),
        [where])
    add("Drains before it stops (preStop, grace above the deregistration delay)",
        "preStop" in container.get("lifecycle", {})
        and pod.get("terminationGracePeriodSeconds", 0) > golden.DEREGISTRATION_SECONDS,
        [where, "tests/test_golden.py"])
    add("At least two replicas, one evictable at a time",
        spec.scaling.min_replicas >= 2 and f"PodDisruptionBudget/{spec.name}" in objects,
        [f"minReplicas {spec.scaling.min_replicas}", f"{golden.base_path(spec)}/pdb.yaml"])
    _load_tested(spec, project, add)
    add("An SLO with burn-rate alerts", f"PrometheusRule/{spec.name}-slo" in objects,
        [f"{golden.base_path(spec)}/prometheusrule.yaml",
         f"availability {spec.slo.availability}"])
    analysis = objects.get(f"AnalysisTemplate/{golden.ANALYSIS}")
    add("Canary gated by analysis of the canary's own pods",
        analysis is not None and all(golden.HASH_TARGET_LABEL in m["provider"]["prometheus"]["query"]
                                     for m in analysis["spec"]["metrics"]),
        [f"{golden.base_path(spec)}/analysistemplate.yaml", "tests/test_golden.py"])
    add("Image by digest (signed and attested by the service CI)",
        "@sha256:" in container.get("image", ""), [container.get("image", "no image")])
    records = sorted((project / "gitops" / "releases" / spec.team / spec.name).glob(
        f"*-{prod}-*.yaml"))
    if records:
        from platformctl import releases

        shown = records[-1].relative_to(project).as_posix()
        last = releases.read_record(records[-1], shown)
        # Checked against Git: the commit is history, and the digest was committed into the
        # environment it came from (what it ran there), not only written in a record.
        problems = (releases.record_problems(project, spec, last, last.source)
                    if last.kind == "promotion" else [])
        add(f"Reached {prod} by a recorded promotion", not problems, [shown, *problems])
    else:
        add(f"Reached {prod} by a recorded promotion", None,
            [f"platformctl promote {spec.team}/{spec.name} --to {prod}"])
    ok, evidence, detail = _rollback_drill(project, spec, prod, now or datetime.now(UTC))
    add(f"Rollback drill in {prod} passed in the last 90 days", ok,
        evidence or [f"platformctl drill rollback {spec.team}/{spec.name} --env {prod}"], detail)
    if spec.database:
        add("Database login from Vault, as files", any(
            m.get("name") == "database" for m in container.get("volumeMounts", [])), [where])
    if spec.migrations is not None:
        add("Migrations run before the release (PreSync hooks)", all(
            f"Job/{golden.migration_job_name(spec, s.name)}" in objects
            for s in spec.migrations.steps), [f"{len(spec.migrations.steps)} steps"])
    return lines


def ready(lines: Iterable[Line]) -> bool:
    return all(line.status in (PASS, NOT_REQUIRED) for line in lines)


def markdown(title: str, lines: list[Line]) -> str:
    counts = {s: sum(1 for line in lines if line.status == s) for s in STATUSES}
    verdict = "**Ready**" if ready(lines) else "**Not ready**"
    out = [f"# Readiness: {title}", "",
           f"{verdict}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n), "",
           "| | area | control | evidence | detail |", "|---|---|---|---|---|"]
    for line in lines:
        evidence = "<br/>".join(e.replace("|", "\\|") for e in line.evidence)
        out.append(f"| {SYMBOL[line.status]} {line.status} | {line.area} | {line.control} | "
                   f"{evidence} | {line.detail.replace('|', '/')} |")
    return "\n".join(out) + "\n"


def text(title: str, lines: list[Line]) -> str:
    """For a terminal: one control a line, its evidence indented under it."""
    counts = {s: sum(1 for line in lines if line.status == s) for s in STATUSES}
    verdict = "READY" if ready(lines) else "NOT READY"
    out = [f"Readiness: {title}",
           f"{verdict}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n), ""]
    for line in lines:
        out.append(f"{SYMBOL[line.status]} {line.status:<13} {line.area}: {line.control}")
        out += [f"      {e}" for e in line.evidence]
        if line.detail:
            out.append(f"      ({line.detail})")
    return "\n".join(out) + "\n"


def verdicts(review: Review) -> dict[str, Any]:
    """The policy verdicts the checklist was computed from: the violations as the review
    reports them, and the checks not evaluated with why."""
    guard = review.verdicts
    return {"mandatory": [v.to_dict() for v in guard.mandatory],
            "advisory": [v.to_dict() for v in guard.advisory],
            "not_evaluated": [n.to_dict() for n in guard.not_evaluated]}


def document(title: str, lines: list[Line], review: Review | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"schema": "platformctl.readiness/v1", "title": title,
                           "ready": ready(lines), "lines": [asdict(line) for line in lines]}
    if review is not None:
        doc["policies"] = verdicts(review)
    return doc
