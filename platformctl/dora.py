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

from platformctl import golden
from platformctl.gitcmd import git
from platformctl.releases import RELEASES, Record, read_record
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


def service_keys(project: Path, spec: service_spec.ServiceSpec, spec_path: str,
                 records: Sequence[Record], since: datetime, until: datetime,
                 window: timedelta = DEFAULT_WINDOW) -> Keys:
    keys = Keys(spec.name, spec.team)
    prod = sorted((r for r in records if r.target == PROD), key=lambda r: (r.time, r.path))
    promotions = [r for r in prod if r.kind == "promotion"]
    changes = _commits(project, [spec_path, golden.base_path(spec),
                                 golden.application_path(spec, DEV)])
    failed_at: list[datetime] = []
    for index, promotion in enumerate(promotions):
        at = parse_time(promotion.time)
        before = parse_time(promotions[index - 1].time) if index else None
        after = parse_time(promotions[index + 1].time) if index + 1 < len(promotions) else None
        rolled_back = any(r.kind == "rollback" and at < parse_time(r.time) <= at + window
                          and (after is None or parse_time(r.time) < after) for r in prod)
        if not since <= at <= until:
            continue
        keys.deployments += 1
        keys.lead_times += [(at - when).total_seconds() for when, _ in changes
                            if when <= at and (before is None or when > before)]
        if rolled_back:
            keys.failed += 1
            failed_at.append(at)
    keys.rollbacks = sum(1 for r in prod if r.kind == "rollback"
                         and since <= parse_time(r.time) <= until)
    # Time to restore: from a failed promotion to the next promotion that did not fail.
    good = [parse_time(p.time) for p in promotions if parse_time(p.time) not in failed_at]
    for failure in failed_at:
        restored = next((t for t in good if t > failure), None)
        if restored is None:
            keys.open_failures += 1
        else:
            keys.restore_times.append((restored - failure).total_seconds())
    return keys


def report(project: Path, since: datetime | None = None, until: datetime | None = None,
           window: timedelta = DEFAULT_WINDOW) -> dict[str, Any]:
    """The four keys of every service of services/*.yaml and of every team. Raises
    ConfigError naming a malformed record or spec."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=DEFAULT_DAYS)
    weeks = max((until - since).total_seconds() / (7 * 86400), 1 / 7)
    services, teams = [], {}
    for path in sorted((project / "services").glob("*.yaml")):
        spec = service_spec.load(path)
        directory = project / RELEASES / spec.team / spec.name
        records = [read_record(p, p.relative_to(project).as_posix())
                   for p in sorted(directory.glob("*.yaml"))]
        keys = service_keys(project, spec, path.relative_to(project).as_posix(), records,
                            since, until, window)
        services.append(keys)
        teams.setdefault(spec.team, Keys(spec.team, spec.team)).merge(keys)
    return {
        "schema": "platformctl.dora/v1",
        "since": since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "until": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "change_window_days": window.total_seconds() / 86400,
        "records": sum(k.deployments + k.rollbacks for k in services),
        "services": [k.document(weeks) for k in services],
        "teams": [k.document(weeks) for k in teams.values()],
    }


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


def rows(doc: Mapping[str, Any], kind: str) -> list[list[str]]:
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
    return out


def render_markdown(doc: Mapping[str, Any]) -> str:
    out = [f"### Delivery, {doc['since'][:10]} to {doc['until'][:10]} (DORA)", ""]
    if not doc["records"]:
        out += ["No promotion or rollback of prod in this window (gitops/releases/ has none).",
                ""]
    for kind, first in (("services", "service"), ("teams", "team")):
        header = [first, *COLUMNS[1:]] if kind == "services" else ["team", *COLUMNS[2:]]
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r if kind == "services" else r[1:]) + " |"
                for r in rows(doc, kind)]
        out.append("")
    return "\n".join(out)
