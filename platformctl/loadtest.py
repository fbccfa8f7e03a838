"""A service's load-test report (bench/load.py) as evidence: what one replica serves within its
SLO at its CPU request, and what that means for its autoscaling.

The HPA scales on CPU utilisation as a share of the request. The report measures that share at
each step; at the capacity (the last step within the SLO) it is `cpu_percent_at_capacity`. The
HPA's target must sit below it with room for the rate to grow while new pods start (about a
minute: the HPA's 15 s sync, the metrics' resolution, the pod's start and readiness): HEADROOM
is that room, a rate a quarter above the target's still within capacity. So:

    proposed target  = floor(cpu_percent_at_capacity * HEADROOM)
    replicas for R   = ceil(R / (capacity_rps_per_replica * HEADROOM))
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EVIDENCE_DIR = Path("bench") / "evidence"
HEADROOM = 0.8
# Older than this, readiness says so beside the figures (the regression job keeps a branch's
# speed from drifting between reports; a new report is one `bench/load.py` run).
OLD_AFTER = timedelta(days=90)
SCHEMA = "platformctl.load/v1"


class ReportError(ValueError):
    """A load-test report that cannot be read: names the file and what is wrong."""


@dataclass(frozen=True)
class LoadEvidence:
    path: str  # relative to the project
    measured_at: datetime
    capacity_rps: float
    cpu_percent_at_capacity: float
    cpu_request: float
    latency_p99_ms: float
    breaking_rps: float | None

    @property
    def proposed_target_percent(self) -> int:
        return math.floor(self.cpu_percent_at_capacity * HEADROOM)

    def replicas_for(self, rate_rps: float) -> int:
        """Replicas that serve `rate_rps` with each at most HEADROOM of its capacity."""
        return max(1, math.ceil(rate_rps / (self.capacity_rps * HEADROOM)))

    def age(self) -> timedelta:
        return now() - self.measured_at


def within_slo(step: dict[str, Any], latency_p99_ms: float, error_budget: float) -> bool:
    """A step of the report within an SLO: its p99 and error rate within it, and the service
    keeping up with the offered rate (bench/load.py's `keeps_up`)."""
    return (float(step["p99_ms"]) <= latency_p99_ms and float(step["error_rate"]) <= error_budget
            and bool(step.get("keeps_up", True)))


def now() -> datetime:
    return datetime.now(UTC)


def path_for(project: Path, team: str, name: str) -> Path:
    return project / EVIDENCE_DIR / f"{team}-{name}-load.json"


def read(project: Path, team: str, name: str, latency_p99_ms: float | None = None,
         error_budget: float | None = None) -> LoadEvidence | None:
    """The service's report, None when there is none; ReportError when it is malformed. With
    an SLO (the spec's, which may have changed since the run), the capacity is recomputed from
    the report's steps against it: the last step within it, counted from the lowest rate."""
    path = path_for(project, team, name)
    if not path.is_file():
        return None
    label = path.relative_to(project).as_posix()
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{label}: not a JSON document: {error}") from None
    schema = document.get("schema") if isinstance(document, dict) else None
    if schema != SCHEMA:
        raise ReportError(f"{label}: schema {schema!r}; allowed: {SCHEMA!r} (bench/load.py "
                          "writes it)")
    if document.get("service") != f"{team}/{name}":
        raise ReportError(f"{label}: service {document.get('service')!r}; allowed: "
                          f"'{team}/{name}', the service it is named for")
    try:
        measured = datetime.strptime(document["measured_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=UTC)
        method = document["method"]
        slo = method["slo"]
        latency = float(slo["latency_p99_ms"] if latency_p99_ms is None else latency_p99_ms)
        budget = float(slo.get("error_budget", 0) if error_budget is None else error_budget)
        capacity = float(document["capacity_rps_per_replica"])
        at_capacity = document["cpu_percent_at_capacity"]
        if latency_p99_ms is not None or error_budget is not None:
            capacity, at_capacity = 0.0, None
            for step in document["steps"]:
                if not within_slo(step, latency, budget):
                    break
                capacity, at_capacity = float(step["achieved_rps"]), step["cpu_percent_of_request"]
        breaking = document.get("breaking_point")
        evidence = LoadEvidence(
            path=label, measured_at=measured, capacity_rps=capacity,
            cpu_percent_at_capacity=float(at_capacity) if at_capacity is not None else 0.0,
            cpu_request=float(method["replica"]["cpu"]), latency_p99_ms=latency,
            breaking_rps=float(breaking["target_rps"]) if breaking else None)
    except (KeyError, TypeError, ValueError) as error:
        raise ReportError(f"{label}: missing or malformed {error}; bench/load.py writes "
                          "measured_at, capacity_rps_per_replica, cpu_percent_at_capacity, "
                          "steps and method") from None
    return evidence
