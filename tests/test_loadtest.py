"""A service's load-test report (bench/load.py) as readiness evidence (platformctl/loadtest.py):
the HPA's target against the utilisation at capacity, the replicas for a rate, the capacity
against the spec's SLO of now, the report's age and a malformed report named."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from platformctl import loadtest, readiness
from stacks import service as service_spec
from tests.conftest import REPO

REPORT = {
    "schema": "platformctl.load/v1", "service": "checkout/checkout",
    "measured_at": "2026-12-07T16:00:00Z",
    "method": {"tool": "hey", "replica": {"cpu": 0.25},
               "slo": {"latency_p99_ms": 300, "error_budget": 0.001}},
    "steps": [
        {"target_rps": 100, "achieved_rps": 100.0, "p99_ms": 50.0, "error_rate": 0.0,
         "keeps_up": True, "cpu_percent_of_request": 40.0},
        {"target_rps": 200, "achieved_rps": 200.0, "p99_ms": 93.7, "error_rate": 0.0,
         "keeps_up": True, "cpu_percent_of_request": 63.4},
        {"target_rps": 300, "achieved_rps": 279.9, "p99_ms": 302.8, "error_rate": 0.0,
         "keeps_up": False, "cpu_percent_of_request": 89.6}],
    "breaking_point": {"target_rps": 300, "p99_ms": 302.8, "error_rate": 0.0},
    "capacity_rps_per_replica": 200.0, "cpu_percent_at_capacity": 63.4,
}
MEASURED = datetime(2026, 12, 7, 16, 0, tzinfo=UTC)


def _project(tmp_path: Path, report: dict | str | None) -> Path:
    if report is not None:
        path = loadtest.path_for(tmp_path, "checkout", "checkout")
        path.parent.mkdir(parents=True)
        path.write_text(report if isinstance(report, str) else json.dumps(report))
    return tmp_path


@pytest.fixture
def line(monkeypatch):
    """The readiness line of checkout with `report`, its HPA target, `days` after the report."""
    def make(tmp_path, report, target: int = 50, days: int = 10, peak: float | None = 500,
             latency: int = 300):
        monkeypatch.setattr(loadtest, "now", lambda: MEASURED + timedelta(days=days))
        return _line(tmp_path, report, target, peak, latency)
    return make


def _line(tmp_path, report, target: int, peak: float | None, latency: int):
    spec = service_spec.load(REPO / "services" / "checkout.yaml")
    spec = spec.model_copy(update={
        "scaling": spec.scaling.model_copy(update={"target_cpu_percent": target,
                                                   "peak_requests_per_second": peak}),
        "slo": spec.slo.model_copy(update={"latency_p99_ms": latency})})
    project = _project(tmp_path, report)
    lines: list[readiness.Line] = []
    readiness._load_tested(spec, project, lambda control, ok, evidence, detail="": lines.append(
        (ok, evidence, detail)))
    return lines[0]


def test_the_proposal_is_the_utilisation_at_capacity_with_room_to_grow(tmp_path):
    evidence = loadtest.read(_project(tmp_path, REPORT), "checkout", "checkout")
    assert evidence.proposed_target_percent == 50  # floor(63.4 x 0.8)
    assert evidence.replicas_for(160) == 1 and evidence.replicas_for(161) == 2  # 200 x 0.8
    assert evidence.replicas_for(1000) == 7 and evidence.replicas_for(0) == 1
    assert evidence.breaking_rps == 300.0


def test_the_hpa_target_must_leave_a_replica_room(tmp_path, line):
    ok, evidence, _ = line(tmp_path, REPORT, target=50)
    assert ok is True
    assert evidence[1:] == [
        "200 requests/s per replica within p99 300 ms at 0.25 CPU, measured 2026-12-07",
        "HPA target 50% of the CPU request, at most 50% (63.4% at capacity x 0.8)",
        "6 replicas serve 960 requests/s; the peak of 500 needs 4 (maxReplicas 6)"]
    ok, evidence, _ = line(tmp_path / "over", REPORT, target=51)
    assert ok is False and "HPA target 51%" in evidence[2]


def test_max_replicas_must_serve_the_peak(tmp_path, line):
    # 960 requests/s from six replicas at 160 each: 961 needs a seventh.
    assert line(tmp_path / "a", REPORT, peak=960)[0] is True
    ok, evidence, _ = line(tmp_path / "b", REPORT, peak=961)
    assert ok is False and evidence[3].endswith("the peak of 961 needs 7 (maxReplicas 6)")
    ok, evidence, detail = line(tmp_path / "c", REPORT, peak=None)
    assert ok is True and evidence[3] == "6 replicas serve 960 requests/s"
    assert detail == "no peak rate in the spec (scaling.peakRequestsPerSecond)"


def test_no_report_is_no_evidence_and_an_old_one_says_its_age(tmp_path, line):
    ok, evidence, _ = line(tmp_path, None)
    assert ok is None and evidence == [
        "bench/load.py writes bench/evidence/checkout-checkout-load.json"]
    ok, _, detail = line(tmp_path / "old", REPORT, days=91)
    assert ok is True
    assert detail == "measured 2026-12-07, more than 90 days ago: run bench/load.py again"
    assert line(tmp_path / "fresh", REPORT, days=90)[2] == ""


def test_the_capacity_is_read_against_the_specs_slo_of_now(tmp_path, line):
    """A tighter objective than the run's: the capacity is the last step within it (100
    requests/s at 40% of the request), so the proposal falls to 32% and a 50% target fails."""
    ok, evidence, _ = line(tmp_path, REPORT, latency=80)
    assert ok is False
    assert evidence[1].startswith("100 requests/s per replica within p99 80 ms")
    assert evidence[2] == "HPA target 50% of the CPU request, at most 32% (40% at capacity x 0.8)"
    # Tighter than every step: no capacity at all.
    assert line(tmp_path / "none", REPORT, latency=40)[0] is False


@pytest.mark.parametrize(("report", "said"), [
    ("{not json", "not a JSON document"),
    ({**REPORT, "schema": "other/v9"}, "schema 'other/v9'; allowed: 'platformctl.load/v1'"),
    ({**REPORT, "service": "search/indexer"}, "service 'search/indexer'; allowed: "
                                              "'checkout/checkout'"),
    ({k: v for k, v in REPORT.items() if k != "capacity_rps_per_replica"},
     "missing or malformed 'capacity_rps_per_replica'"),
])
def test_a_malformed_report_fails_the_line_naming_the_file(tmp_path, line, report, said):
    ok, _, detail = line(tmp_path, copy.deepcopy(report))
    assert ok is False
    assert detail.startswith("bench/evidence/checkout-checkout-load.json: ") and said in detail


def test_the_committed_report_is_checkouts_and_its_spec_follows_it():
    evidence = loadtest.read(REPO, "checkout", "checkout")
    spec = service_spec.load(REPO / "services" / "checkout.yaml")
    assert evidence is not None and evidence.capacity_rps > 0
    assert spec.scaling.target_cpu_percent <= evidence.proposed_target_percent
    chart = loadtest.path_for(REPO, "checkout", "checkout").with_suffix(".png")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # its chart beside it


def test_the_docs_quote_the_committed_report():
    """docs/gitops.md's figures are the committed report's: a new run of bench/load.py that
    changes them fails here until the docs say the new ones."""
    document = json.loads(loadtest.path_for(REPO, "checkout", "checkout").read_text())
    evidence = loadtest.read(REPO, "checkout", "checkout")
    within = [s for s in document["steps"] if s["within_slo"]][-1]
    broken = document["steps"][-1]
    docs = " ".join((REPO / "docs" / "gitops.md").read_text(encoding="utf-8").split())
    assert (f"Checkout's report ({document['measured_at'][:10]}): within the SLO up to "
            f"{evidence.capacity_rps:g} requests/s per replica (p99 {within['p99_ms']:g} ms, CPU "
            f"{evidence.cpu_percent_at_capacity:g}% of the request); at "
            f"{broken['target_rps']:g} requests/s it serves {broken['achieved_rps']:g} with a "
            f"p99 of {broken['p99_ms']:g} ms.") in docs
    assert (f"proposes {evidence.cpu_percent_at_capacity:g}% × {loadtest.HEADROOM:g} → "
            f"{evidence.proposed_target_percent}%") in docs
    assert f"⌈R / {evidence.capacity_rps * loadtest.HEADROOM:g}⌉ replicas" in docs


def test_the_operations_guide_quotes_the_release_and_database_evidence():
    """docs/operations.md's figures are the committed reports' (bench/release.py,
    bench/slow_database.py), and each report's own checks held."""
    docs = " ".join((REPO / "docs" / "operations.md").read_text(encoding="utf-8").split())
    release = json.loads((REPO / "bench" / "evidence" / "checkout-release.json").read_text())
    draining, bare = release["runs"]["draining"], release["runs"]["no_draining"]
    assert all(release["checks"].values())
    assert (f"With draining ({draining['drain_seconds']:g} s): {draining['failed']} of "
            f"{draining['requests']} requests failed, p99 {draining['p99_ms']:g} ms.") in docs
    assert (f"With draining disabled: {bare['failed']} of {bare['requests']} failed, each a "
            "502") in docs
    assert bare["balancer_answered"] == {"502": bare["failed"]}
    slow = json.loads((REPO / "bench" / "evidence" / "checkout-slow-database.json").read_text())
    assert all(slow["checks"].values())
    latency = next(p for p in slow["phases"] if p["phase"] == "latency")
    dead = next(p for p in slow["phases"] if p["phase"] == "dead")
    served = (latency["answered"] - latency["failed"]) / (latency["to_s"] - latency["from_s"])
    assert f"{latency['failed_share']:.0%} of requests refused" in docs
    assert f"{served:.1f} served per second" in docs
    assert f"the slowest answer {latency['slowest_ms'] / 1000:.1f} s" in docs
    assert latency["refused_at_once"] == 0  # "the breaker closed"
    assert latency["recovery_s"] < 0.1  # "serving again at once"
    assert f"none slower than {dead['slowest_ms'] / 1000:.1f} s" in docs
    assert f"serving again {dead['recovery_s']:g} s after the path heals" in docs
