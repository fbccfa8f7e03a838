"""Burn-rate detection times of the SLO rules rendered from the real stacks, proved by
`promtool test rules` against the workbook's arithmetic (its own file: the promtool runs take
the longest of the suite, and a file is the unit the test workers share out)."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml

from components import alerts, slo
from tests.conftest import stack_config
from tests.test_observability import needs_promtool, promtool, rule_files

# -- burn-rate detection times --------------------------------------------------------------

STEP = 2  # minutes between samples and between rule evaluations
RATE = 1000  # requests per minute
HEALTHY = 3 * 24 * 60  # minutes of healthy history: every window is full before the step
APISERVER = next(s for s in slo.PLATFORM_SLOS if s.service == "kube-apiserver")
BURN_RUNBOOK = alerts.SLO_BURN.runbook_url(
    stack_config("dev")["platform:alerting"]["runbookBaseUrl"])


def _window_minutes(window: str) -> int:
    return int(slo._hours(window) * 60)


def expected_ratio(error_ratio: float, minutes_since_step: int, window: str,
                   outage: int | None = None) -> float:
    """The workbook's arithmetic: the window holds the minutes of errors that fall inside it
    (errors from the step on, for `outage` minutes if it ends). Prometheus's rate() agrees: it
    extrapolates the total to the window's start, and the error counter, zero there, not at
    all."""
    window_minutes = _window_minutes(window)
    end = minutes_since_step if outage is None else min(minutes_since_step, outage)
    inside = max(0, end - max(0, minutes_since_step - window_minutes))
    return error_ratio * inside / window_minutes


def expected_alerts(error_ratio: float, minutes: int,
                    outage: int | None = None) -> list[dict[str, Any]]:
    """The burn alerts that must fire `minutes` after the step; refuses a time within 5% of a
    threshold, where sampling could tip the result either way."""
    firing = []
    rules = {(r["labels"]["severity"], r["labels"]["window"]): r
             for r in slo.alert_rules(APISERVER, BURN_RUNBOOK)}
    for severity, burn, long_window, short_window in slo.BURN_ALERTS:
        threshold = burn * APISERVER.error_budget
        values = [expected_ratio(error_ratio, minutes, w, outage)
                  for w in (long_window, short_window)]
        for value in values:
            assert value == 0 or abs(value - threshold) / threshold >= 0.05, (
                f"{minutes} min is too close to the {burn}x threshold to assert")
        if all(v > threshold for v in values):
            rule = rules[(severity, long_window)]
            firing.append({"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]})
    return firing


def burn_test(error_ratio: float, checks: list[int], outage: int | None = None) -> dict[str, Any]:
    """A promtool test group: healthy for 3 days, then `error_ratio` of requests fail (for
    `outage` minutes, then none, if given); at each check (minutes after the step) exactly the
    arithmetic's alerts are firing."""
    samples_before = HEALTHY // STEP
    after = max(checks) // STEP + 2
    per_step = RATE * STEP
    errors = round(per_step * error_ratio)
    bad = after if outage is None else outage // STEP  # steps with errors
    start = samples_before * per_step
    ok = f"{start}+{per_step - errors}x{bad}"
    failed = f"0+{errors}x{bad}"
    if bad < after:  # recovered: every request succeeds again
        ok += f" {start + (per_step - errors) * bad + per_step}+{per_step}x{after - bad - 1}"
        failed += f" {errors * bad}x{after - bad - 1}"
    return {
        "interval": f"{STEP}m",
        "input_series": [
            {"series": 'apiserver_request_total{job="apiserver",code="200"}',
             "values": f"0+{per_step}x{samples_before - 1} {ok}"},
            {"series": 'apiserver_request_total{job="apiserver",code="500"}',
             "values": f"0x{samples_before - 1} {failed}"},
        ],
        "alert_rule_test": [
            {"eval_time": f"{HEALTHY + minutes}m", "alertname": slo.ALERT_NAME,
             "exp_alerts": expected_alerts(error_ratio, minutes, outage)}
            for minutes in checks
        ],
    }


# (scenario, error ratio, minutes after the step to check, what the checks must show[, outage])
SCENARIOS = {
    # A total outage pages within about 5 minutes.
    "outage": (1.0, [0, 6], lambda fired: fired[0] == [] and ("critical", "1h") in fired[1]),
    # A 10-minute outage that ends: the fast page stops within about 5 minutes of the recovery
    # (its 5m short window empties; the 1h window alone still holds the errors), while the 6h
    # pair may page on. A longer short window would keep the fast page firing.
    "outage-recovered": (1.0, [6, 18, 30], lambda fired: ("critical", "1h") in fired[0]
                         and ("critical", "1h") not in fired[1]
                         and ("critical", "1h") not in fired[2], 10),
    # 2% (burn 20x) pages after 14.4/20 of the 1h window = 43.2 min, and not before.
    "burn-20x": (0.02, [40, 50],
                 lambda fired: fired[0] == [] and fired[1] == [("critical", "1h")]),
    # 0.05% (burn 0.5x) never alerts over 3 days.
    "burn-0.5x": (0.0005, [60, 24 * 60, 3 * 24 * 60], lambda fired: fired == [[], [], []]),
    # 0.25% (burn 2.5x) never pages; opens a ticket through the 1x/3d pair after 0.4 x 3 days
    # = 28.8 h, not before, and never through the 3x/1d pair.
    "burn-2.5x": (0.0025, [26 * 60, 31 * 60, 3 * 24 * 60],
                  lambda fired: fired[0] == [] and fired[1] == fired[2] == [("warning", "3d")]),
}


@pytest.fixture(scope="module")
def burn_runs(evaluations, tmp_path_factory):
    """Each scenario through promtool, in parallel (each takes seconds)."""
    directory = tmp_path_factory.mktemp("burn")
    rule_files(evaluations["dev"], directory)
    # Only the API server's group, as the stack renders it: the other SLOs' rules read series
    # these tests do not feed, and evaluating them over three days of samples only costs time.
    slos = directory / "platform-slos.yaml"
    rules = yaml.safe_load(slos.read_text())
    rules["groups"] = [g for g in rules["groups"] if g["name"] == f"slo-{APISERVER.service}"]
    assert len(rules["groups"]) == 1
    slos.write_text(yaml.safe_dump(rules, sort_keys=False))
    jobs = {}
    for name, (ratio, checks, _, *outage) in SCENARIOS.items():
        # The rules are evaluated at every multiple of the evaluation interval up to the last
        # check. None of them reads another rule over time and no alert has a `for`, so each
        # value at a check depends on the samples alone: evaluating only at the checks' common
        # divisor gives the same answers as every STEP, with a fraction of promtool's work (three
        # days of 3d windows before the step, twice over for the long scenarios): the checks'
        # minutes are chosen for a large divisor (6 min, not 2, for the outages).
        every = math.gcd(*(HEALTHY + minutes for minutes in checks))
        test = {"rule_files": ["platform-slos.yaml"], "evaluation_interval": f"{every}m",
                "tests": [burn_test(ratio, checks, *outage)]}
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(test, sort_keys=False))
        jobs[name] = test
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(jobs, pool.map(
            lambda n: promtool("test", "rules", f"{n}.yaml", cwd=directory), jobs),
            strict=True))
    return jobs, results


@needs_promtool
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_burn_rate_alerts_fire_when_the_workbook_says(burn_runs, scenario):
    jobs, results = burn_runs
    result = results[scenario]
    assert result.returncode == 0, result.stdout + result.stderr
    checks = jobs[scenario]["tests"][0]["alert_rule_test"]
    fired = [[(a["exp_labels"]["severity"], a["exp_labels"]["window"]) for a in c["exp_alerts"]]
             for c in checks]
    assert SCENARIOS[scenario][2](fired), fired


def test_the_arithmetic_matches_the_workbook():
    # Detection time of a 2% error rate on a 99.9% SLO over the 1h window: 14.4/20 h.
    assert round(0.0144 / 0.02 * 60, 1) == 43.2
    assert expected_ratio(0.02, 43, "1h") < 14.4 * 0.001 < expected_ratio(0.02, 44, "1h")
    # 2.5x over 3 days: 1/2.5 of the window.
    assert round(1 / 2.5 * 72, 1) == 28.8
