"""A team's telemetry speaks for that team only: Prometheus stamps every team series, rule and
alert with its namespace (enforcedNamespaceLabel, the platform's own namespaces excluded), and
the golden path's SLO rules read and label their own namespace only. promtool evaluates the
shipped rules against a forged series (another namespace's pods claiming to be `checkout` and
failing) and a forging rule (another team's recording rule with checkout's SLO labels, as the
team-telemetry admission policy lets it carry them): neither reaches checkout's alerts, while
checkout's own errors do."""

from __future__ import annotations

import yaml

from components.kubernetes import PLATFORM_NAMESPACES
from tests.conftest import REPO
from tests.test_observability import needs_promtool, promtool

RULES = REPO / "gitops" / "teams" / "checkout" / "checkout" / "prometheusrule.yaml"
MONITOR_KINDS = ("prometheusrules", "servicemonitors", "podmonitors", "probes")


def _prometheus(evaluation):
    for release in evaluation.rendered:
        for o in release.objects:
            if o.kind == "Prometheus":
                return o.object
    raise AssertionError("no Prometheus rendered")


def test_prometheus_stamps_team_objects_with_their_namespace(rendered):
    for evaluation in rendered.values():
        spec = _prometheus(evaluation)["spec"]
        assert spec["enforcedNamespaceLabel"] == "namespace"
        excluded = {(r["resource"], r["namespace"]) for r in spec["excludedFromEnforcement"]
                    if "name" not in r}
        platform = {*PLATFORM_NAMESPACES, evaluation.config.observability.namespace}
        assert excluded == {(kind, ns) for kind in MONITOR_KINDS for ns in platform}
        teams = {ns for t in evaluation.config.teams for ns in t.namespaces}
        assert not {r["namespace"] for r in spec["excludedFromEnforcement"]} & teams


def _forging_rule() -> dict:
    """payments' recording rule: checkout's SLO series name and labels, its own team (the
    admission policy refuses `team: checkout`), stamped with its namespace by Prometheus."""
    return {"name": "payments-forgery", "rules": [{
        "record": "slo:sli_error:ratio_rate1h", "expr": "vector(1)",
        "labels": {"service": "checkout", "slo": "checkout-availability", "team": "payments",
                   "namespace": "payments"}}, {
        "record": "slo:sli_error:ratio_rate5m", "expr": "vector(1)",
        "labels": {"service": "checkout", "slo": "checkout-availability", "team": "payments",
                   "namespace": "payments"}}]}


def _test(name: str, errors_namespace: str) -> dict:
    """checkout serving 100 requests/s, and as many failing in `errors_namespace`: no alert of
    checkout's is expected (a 50% error ratio would page if it counted)."""
    rate = "0+6000x180"
    return {"name": name, "interval": "1m", "input_series": [
        {"series": 'http_requests_total{namespace="checkout",service="checkout",code="200"}',
         "values": rate},
        {"series": f'http_requests_total{{namespace="{errors_namespace}",service="checkout",'
                   'code="500"}', "values": rate}],
        "alert_rule_test": [{"eval_time": "90m", "alertname": "SLOErrorBudgetBurn",
                             "exp_alerts": []}]}


def _run(tmp_path, test: dict):
    groups = yaml.safe_load(RULES.read_text())["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(
        {"groups": [*groups, _forging_rule()]}, sort_keys=False))
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({
        "rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [test]},
        sort_keys=False))
    return promtool("test", "rules", "test.yaml", cwd=tmp_path)


@needs_promtool
def test_forged_series_and_rules_do_not_reach_another_teams_alerts(tmp_path):
    result = _run(tmp_path, _test("forged by payments", "payments"))
    assert result.returncode == 0, result.stdout + result.stderr
    # The same errors in checkout's own namespace do page: the test can tell.
    result = _run(tmp_path, _test("checkout's own errors", "checkout"))
    assert result.returncode != 0
    assert 'alertname="SLOErrorBudgetBurn", namespace="checkout"' in result.stdout + result.stderr
    assert 'severity="critical"' in result.stdout + result.stderr
