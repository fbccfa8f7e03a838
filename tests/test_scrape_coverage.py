"""scrape-coverage: every alert and SLO the platform ships reads metrics from a Service that a
rendered chart creates, a ServiceMonitor selects and Prometheus scrapes (each alert declares its
source next to its runbook: components/alerts.py)."""

from __future__ import annotations

import dataclasses
import json

from components import alerts
from components.observability import METRIC_SOURCES_ANNOTATION
from platformctl.crossguard import check_evaluation
from platformctl.recording import Evaluation
from tests.conftest import with_resources

POLICY = "scrape-coverage"


def test_every_prometheus_alert_declares_where_its_metrics_come_from():
    assert all(a.source for a in (*alerts.PROMETHEUS_ALERTS, *alerts.LOG_PIPELINE_ALERTS,
                                  *alerts.TRACE_PIPELINE_ALERTS))


def test_the_shipped_stacks_scrape_what_their_alerts_read(rendered):
    for evaluation in rendered.values():
        report = check_evaluation(evaluation)
        assert report.of(POLICY) == []
        rules = evaluation.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
        declared = {k: v for r in rules for k, v in json.loads(
            r.inputs["metadata"]["annotations"][METRIC_SOURCES_ANNOTATION]).items()}
        assert declared["PlatformVaultSealed"] == "vault/vault-internal"
        assert declared["slo-argocd"] == "argocd/argocd-application-controller-metrics"


def _without_monitor(evaluation: Evaluation, chart: str) -> Evaluation:
    releases = []
    for release in evaluation.rendered:
        if release.chart.name == chart:
            release = dataclasses.replace(release, objects=[
                o for o in release.objects if o.kind != "ServiceMonitor"])
        releases.append(release)
    return dataclasses.replace(evaluation, rendered=releases)


def test_alerts_on_metrics_nobody_scrapes_are_refused(rendered):
    """As Argo CD and Vault were: the chart's metrics off, no ServiceMonitor."""
    report = check_evaluation(_without_monitor(_without_monitor(rendered["prod"], "argo-cd"),
                                               "vault"))
    messages = sorted(v.message for v in report.of(POLICY))
    assert [m.split(" reads")[0] for m in messages] == [
        "PrometheusRule 'prod-platform-alerts': PlatformArgoCDAppDegraded",
        "PrometheusRule 'prod-platform-alerts': PlatformArgoCDAppOutOfSync",
        "PrometheusRule 'prod-platform-alerts': PlatformVaultSealed",
        "PrometheusRule 'prod-platform-slos': slo-argocd"]
    assert ("PlatformVaultSealed reads metrics from vault/vault-internal, but no ServiceMonitor "
            "selects its Service vault/vault-internal (and a named port): it can never fire"
            ) in messages[2]


def test_a_source_no_chart_renders_is_refused(rendered):
    dev = rendered["dev"]

    def edit(resource):
        if resource.name != "dev-platform-alerts":
            return resource
        metadata = dict(resource.inputs["metadata"])
        sources = json.loads(metadata["annotations"][METRIC_SOURCES_ANNOTATION])
        sources["PlatformVaultSealed"] = "vault/vault-metrics"
        metadata["annotations"] = {METRIC_SOURCES_ANNOTATION: json.dumps(sources)}
        return dataclasses.replace(resource, inputs={**resource.inputs, "metadata": metadata})

    changed = with_resources(dev, [edit(r) for r in dev.resources])
    (verdict,) = check_evaluation(changed).of(POLICY)
    assert "no chart renders its Service vault/vault-metrics" in verdict.message
