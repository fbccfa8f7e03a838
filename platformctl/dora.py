"""`platformctl dora`: the four keys of delivery (DORA) per service and per team, from what the
repository records: the release records `platformctl promote` writes (gitops/releases/) and the
Git history of each service's files.

Definitions (docs/developer-portal.md says why):
- **Deployment frequency**: promotions to prod in the window, per week.
- **Lead time for changes**: for each prod promotion, every commit that changed the service
  (its spec, its base under gitops/teams/, its dev Application: a new image or config) since
  the promotion before it; the time from each such commit to the promotion. The median over
  the window's changes (a promotion that carries no such commit, e.g. a re-promotion, adds
  none).
- **Change failure rate**: the share of prod promotions followed by a rollback of prod before
  the next promotion and within the change window (`--window`, default 7 days).
- **Time to restore**: for each failed promotion, the time to the next promotion that did not
  fail. A failure not yet followed by a good promotion is open (counted, not timed).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from components.observability import (
    DELIVERY_CONFIGMAP,
    DELIVERY_FILE,
    DELIVERY_METRICS,
    DELIVERY_SERVICE_LABEL,
    DELIVERY_TEAM_LABEL,
)
from platformctl import golden
from platformctl.gitcmd import git
from platformctl.releases import Record, records
from stacks import service as service_spec

PROD, DEV = "prod", "dev"
DEFAULT_DAYS = 90
DEFAULT_WINDOW = timedelta(days=7)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass
class Keys:
    """The four keys of one service or team over the window."""

    name: str
    team: str
    deployments: int = 0
    rollbacks: int = 0
    failed: int = 0
    open_failures: int = 0
    lead_times: list[float] = field(default_factory=list)  # seconds, one per change
    restore_times: list[float] = field(default_factory=list)  # seconds, one per restored failure

    def merge(self, other: Keys) -> None:
        self.deployments += other.deployments
        self.rollbacks += other.rollbacks
        self.failed += other.failed
        self.open_failures += other.open_failures
        self.lead_times += other.lead_times
        self.restore_times += other.restore_times

    def document(self, weeks: float) -> dict[str, Any]:
        def median(values: Sequence[float]) -> float | None:
            return round(statistics.median(values), 1) if values else None

        return {
            "name": self.name, "team": self.team,
            "deployments": self.deployments,
            "deployments_per_week": round(self.deployments / weeks, 2) if weeks else None,
            "changes": len(self.lead_times),
            "lead_time_median_seconds": median(self.lead_times),
            "change_failure_rate": (round(self.failed / self.deployments, 4)
                                    if self.deployments else None),
            "failed_changes": self.failed, "rollbacks": self.rollbacks,
            "time_to_restore_median_seconds": median(self.restore_times),
            "open_failures": self.open_failures,
        }


def _commits(project: Path, paths: Sequence[str]) -> list[tuple[datetime, str]]:
    """(commit time, commit) of every commit of HEAD's history that changed `paths`."""
    result = git(project, "log", "--format=%H %cI", "HEAD", "--", *paths)
    if result.returncode != 0:
        return []
    out = []
    for line in result.stdout.split("\n"):
        if line.strip():
            commit, when = line.split(" ", 1)
            out.append((datetime.fromisoformat(when).astimezone(UTC), commit))
    return sorted(out)


@dataclass(frozen=True)
class Promotion:
    record: str  # the release record's file name, without .yaml
    at: datetime
    failed: bool  # rolled back within the change window, before the next promotion
    restored_at: datetime | None  # failed: when the next promotion that did not fail came


@dataclass(frozen=True)
class Change:
    commit: str
    committed: datetime
    promoted: datetime  # the prod promotion that shipped it
    record: str


@dataclass(frozen=True)
class History:
    """What happened to one service in prod, the whole recorded history: the facts the four
    keys are counted from, in a window (`keys`) or as metrics (`metrics_text`)."""

    service: str
    team: str
    promotions: tuple[Promotion, ...]
    changes: tuple[Change, ...]
    rollbacks: tuple[datetime, ...]


def service_history(project: Path, spec: service_spec.ServiceSpec, spec_path: str,
                    records: Sequence[Record], window: timedelta = DEFAULT_WINDOW) -> History:
    prod = sorted((r for r in records if r.target == PROD), key=lambda r: (r.time, r.path))
    promoted = [(parse_time(r.time), Path(r.path).stem) for r in prod if r.kind == "promotion"]
    rollbacks = [parse_time(r.time) for r in prod if r.kind == "rollback"]
    commits = _commits(project, [spec_path, golden.base_path(spec),
                                 golden.application_path(spec, DEV)])
    failed, changes = [], []
    for index, (at, name) in enumerate(promoted):
        before = promoted[index - 1][0] if index else None
        after = promoted[index + 1][0] if index + 1 < len(promoted) else None
        failed.append(any(at < back <= at + window and (after is None or back < after)
                          for back in rollbacks))
        changes += [Change(commit, when, at, name) for when, commit in commits
                    if when <= at and (before is None or when > before)]
    # A failed promotion is restored by the next promotion that did not fail.
    good = [at for (at, _), bad in zip(promoted, failed, strict=True) if not bad]
    promotions = tuple(
        Promotion(name, at, bad, next((t for t in good if t > at), None) if bad else None)
        for (at, name), bad in zip(promoted, failed, strict=True))
    return History(spec.name, spec.team, promotions, tuple(changes), tuple(rollbacks))


def keys(history: History, since: datetime, until: datetime) -> Keys:
    """The four keys of one service's history over [since, until]."""
    out = Keys(history.service, history.team)
    inside = [p for p in history.promotions if since <= p.at <= until]
    out.deployments = len(inside)
    out.lead_times = [(c.promoted - c.committed).total_seconds() for c in history.changes
                      if since <= c.promoted <= until]
    out.rollbacks = sum(1 for back in history.rollbacks if since <= back <= until)
    for promotion in inside:
        if not promotion.failed:
            continue
        out.failed += 1
        if promotion.restored_at is None:
            out.open_failures += 1
        else:
            out.restore_times.append((promotion.restored_at - promotion.at).total_seconds())
    return out


def histories(project: Path, window: timedelta = DEFAULT_WINDOW) -> list[History]:
    """Every service of services/*.yaml, its history. Raises ConfigError naming a malformed
    record or spec."""
    out = []
    for path in sorted((project / "services").glob("*.yaml")):
        spec = service_spec.load(path)
        out.append(service_history(project, spec, path.relative_to(project).as_posix(),
                                   records(project, spec), window))
    return out


def report(project: Path, since: datetime | None = None, until: datetime | None = None,
           window: timedelta = DEFAULT_WINDOW) -> dict[str, Any]:
    """The four keys of every service of services/*.yaml and of every team. Raises
    ConfigError naming a malformed record or spec."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=DEFAULT_DAYS)
    weeks = max((until - since).total_seconds() / (7 * 86400), 1 / 7)
    services, teams = [], {}
    for history in histories(project, window):
        counted = keys(history, since, until)
        services.append(counted)
        teams.setdefault(history.team, Keys(history.team, history.team)).merge(counted)
    return {
        "schema": "platformctl.dora/v1",
        "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "until": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "change_window_days": window.total_seconds() / 86400,
        "records": sum(k.deployments + k.rollbacks for k in services),
        "services": [k.document(weeks) for k in services],
        "teams": [k.document(weeks) for k in teams.values()],
    }


def metrics_text(all_histories: Sequence[History]) -> str:
    """The facts as Prometheus text (node-exporter's textfile collector serves the file): one
    series per promotion and per change, labelled by service and team, so the dashboard counts
    the four keys over any window with PromQL (components/observability.py: delivery_queries).
    No series depends on the time it is written."""
    samples: dict[str, list[str]] = {name: [] for name in DELIVERY_METRICS}

    def add(name: str, labels: Mapping[str, str], value: float) -> None:
        shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
        samples[name].append(f"{name}{{{shown}}} {value:.0f}")  # whole seconds

    for history in all_histories:
        base = {DELIVERY_SERVICE_LABEL: history.service, DELIVERY_TEAM_LABEL: history.team}
        for p in history.promotions:
            labels = {**base, "record": p.record}
            add("platform_dora_promotion_timestamp_seconds", labels, p.at.timestamp())
            add("platform_dora_promotion_failed", labels, int(p.failed))
            if p.failed and p.restored_at is not None:
                add("platform_dora_restore_seconds", labels,
                    (p.restored_at - p.at).total_seconds())
        for c in history.changes:
            labels = {**base, "commit": c.commit[:12], "record": c.record}
            add("platform_dora_change_lead_time_seconds", labels,
                (c.promoted - c.committed).total_seconds())
            add("platform_dora_change_promoted_timestamp_seconds", labels,
                c.promoted.timestamp())
    out = []
    for name, lines in samples.items():
        out += [f"# HELP {name} {DELIVERY_METRICS[name]}", f"# TYPE {name} gauge", *lines]
    return "\n".join(out) + "\n"


METRICS_PATH = "gitops/platform/dora/platform-dora.yaml"
METRICS_HEADER = ("# Generated by `platformctl promote` (and `platformctl dora --write-metrics`) from\n"
                  "# the release records and Git: the delivery facts node-exporter serves. Do not edit.\n")


def metrics_configmap(project: Path, window: timedelta = DEFAULT_WINDOW) -> str:
    """gitops/platform/dora/platform-dora.yaml: the facts as a ConfigMap (Argo CD syncs it into
    the monitoring namespace, node-exporter's textfile collector serves it); the file as a
    literal block, one line per series."""
    text = metrics_text(histories(project, window))
    return (METRICS_HEADER + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
            f"  name: {DELIVERY_CONFIGMAP}\n  labels:\n    team: platform\ndata:\n"
            f"  {DELIVERY_FILE}: |\n" + "".join(f"    {line}\n" for line in text.splitlines()))


def duration(seconds: float | None) -> str:
    """1 d 4 h, 3 h 20 min, 12 min; blank when none."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


COLUMNS = ("service", "team", "deployments/week", "lead time (median)", "change failure rate",
           "time to restore (median)")


def header(kind: str) -> list[str]:
    """The columns of the services' table or the teams' (no team column: the team is the row)."""
    return [*COLUMNS] if kind == "services" else ["team", *COLUMNS[2:]]


def rows(doc: Mapping[str, Any], kind: str) -> list[list[str]]:
    """The table's rows, as `header(kind)` names the columns."""
    out = []
    for k in doc[kind]:
        rate = k["change_failure_rate"]
        out.append([k["name"], k["team"],
                    f"{k['deployments_per_week']:g} ({k['deployments']})",
                    f"{duration(k['lead_time_median_seconds'])} ({k['changes']} changes)",
                    "-" if rate is None else f"{rate:.0%} ({k['failed_changes']} of "
                                             f"{k['deployments']})",
                    duration(k["time_to_restore_median_seconds"])
                    + (f" ({k['open_failures']} open)" if k["open_failures"] else "")])
    return out if kind == "services" else [row[1:] for row in out]  # a team's name is its team


def render_markdown(doc: Mapping[str, Any]) -> str:
    out = [f"### Delivery, {doc['since'][:10]} to {doc['until'][:10]} (DORA)", ""]
    if not doc["records"]:
        out += ["No promotion or rollback of prod in this window (gitops/releases/ has none).",
                ""]
    for kind in ("services", "teams"):
        columns = header(kind)
        out += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        out += ["| " + " | ".join(row) + " |" for row in rows(doc, kind)]
        out.append("")
    return "\n".join(out)
