"""SLOs as data -> Prometheus rules: recording rules of the error ratio over the standard windows
and multiwindow, multi-burn-rate alerts, as in the Google SRE workbook ("Alerting on SLOs",
table 5-8): page when 2% of a 30-day budget burns in 1 hour (14.4x, checked over 1h and 5m) or
5% in 6 hours (6x, over 6h and 30m); open a ticket when 10% burns in 3 days (1x, over 3d and 6h)
or, faster, in 1 day (3x, over 1d and 2h). The short window makes an alert stop soon after the
burn stops. Every rule carries `service`, `team` and `slo` labels; alerts also `severity`
(critical pages, warning opens a ticket) and `window` (the long window that fired).

The ObservabilityStack and the golden path (a service's own SLO) both use `slo_rule_groups`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import Field, model_validator

from components.args import (
    ArgsModel,
    Invalid,
    MetricSelector,
    Slug,
)

# -- arguments ----------------------------------------------------------------------------------

class SloSpec(ArgsModel):
    """A service level objective, as data: the component turns it into recording rules over the
    standard windows and multiwindow, multi-burn-rate alerts (Google SRE workbook, chapter 5)."""

    service: Slug = Field(description="Service the SLO is about (the `service` label).")
    team: Slug = Field(description="Team that owns it (the `team` label; routes its alerts).")
    description: str = Field(min_length=1, max_length=200, description="What is measured.")
    objective: float = Field(gt=0.5, lt=1, description="Target good-event ratio, e.g. 0.999.")
    window_days: Literal[7, 14, 28, 30] = Field(30, description="SLO window in days.")
    total: MetricSelector = Field(description="Counter of all events (a selector).")
    errors: MetricSelector | None = Field(None, description="Counter of bad events; or `good`.")
    good: MetricSelector | None = Field(None, description="Counter of good events; or `errors`.")
    namespace: Slug | None = Field(
        None, description="The namespace whose series the selectors read (a team service's): "
        "its recording rules carry it and its alerts select it, so no other namespace's "
        "series or rules can feed them.")

    @model_validator(mode="after")
    def _one_sli(self) -> SloSpec:
        if (self.errors is None) == (self.good is None):
            raise Invalid("errors", self.errors, "set exactly one of errors and good (the SLI is "
                       "errors/total or 1 - good/total)")
        return self

    @property
    def error_budget(self) -> float:
        return round(1 - self.objective, 10)



WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

# (severity, burn rate, long window, short window)
BURN_ALERTS = (
    ("critical", 14.4, "1h", "5m"),
    ("critical", 6.0, "6h", "30m"),
    ("warning", 3.0, "1d", "2h"),
    ("warning", 1.0, "3d", "6h"),
)
ALERT_NAME = "SLOErrorBudgetBurn"
RECORD = "slo:sli_error:ratio_rate{window}"

# The platform's own SLOs. The ingress SLO reads the request counters of publicly exposed
# services, labelled `exposure="public"` by their ServiceMonitors (the golden path does this).
PLATFORM_SLOS = (
    SloSpec.model_validate({
        "service": "kube-apiserver", "team": "platform", "objective": 0.999,
        "description": "Kubernetes API requests answered without a server error",
        "total": 'apiserver_request_total{job="apiserver"}',
        "errors": 'apiserver_request_total{job="apiserver",code=~"5.."}',
    }),
    SloSpec.model_validate({
        "service": "argocd", "team": "platform", "objective": 0.99,
        "description": "Argo CD syncs that succeed",
        "total": "argocd_app_sync_total",
        "errors": 'argocd_app_sync_total{phase=~"Error|Failed"}',
    }),
    SloSpec.model_validate({
        "service": "ingress", "team": "platform", "objective": 0.999,
        "description": "HTTP requests to publicly exposed services answered without a 5xx",
        "total": 'http_requests_total{exposure="public"}',
        "errors": 'http_requests_total{exposure="public",code=~"5.."}',
    }),
)


def _labels(slo: SloSpec) -> dict[str, str]:
    labels = {"service": slo.service, "team": slo.team, "slo": f"{slo.service}-availability"}
    if slo.namespace:
        labels["namespace"] = slo.namespace
    return labels


def _selector_labels(slo: SloSpec) -> str:
    return ", ".join(f'{k}="{v}"' for k, v in _labels(slo).items())


def error_ratio(slo: SloSpec, window: str) -> str:
    total = f"sum(rate({slo.total}[{window}]))"
    # `or vector(0)`: no error series yet means no errors, not no data.
    if slo.errors is not None:
        return f"(sum(rate({slo.errors}[{window}])) or vector(0)) / {total}"
    return f"1 - ((sum(rate({slo.good}[{window}])) or vector(0)) / {total})"


def recording_rules(slo: SloSpec) -> list[dict[str, Any]]:
    return [{"record": RECORD.format(window=w), "expr": error_ratio(slo, w),
             "labels": _labels(slo)} for w in WINDOWS]


def alert_rules(slo: SloSpec, runbook_url: str) -> list[dict[str, Any]]:
    rules = []
    for severity, burn, long_window, short_window in BURN_ALERTS:
        threshold = round(burn * slo.error_budget, 10)
        selector = _selector_labels(slo)
        budget_share = round(burn * _hours(long_window) / (slo.window_days * 24) * 100, 1)
        rules.append({
            "alert": ALERT_NAME,
            "expr": (f"{RECORD.format(window=long_window)}{{{selector}}} > {threshold}\n"
                     f"and\n{RECORD.format(window=short_window)}{{{selector}}} > {threshold}"),
            "labels": {**_labels(slo), "severity": severity, "window": long_window},
            "annotations": {
                "summary": f"{slo.service} is burning its error budget {burn:g}x too fast",
                "description": (
                    f"{slo.description}: the error ratio over {long_window} and {short_window} is "
                    f"above {threshold:g} ({burn:g} x the {slo.error_budget:g} budget of a "
                    f"{slo.objective:.4g} SLO); at this rate {budget_share:g}% of the "
                    f"{slo.window_days}-day budget is gone in {long_window}."),
                "runbook_url": runbook_url,
            },
        })
    return rules


def _hours(window: str) -> float:
    value, unit = float(window[:-1]), window[-1]
    return value * {"m": 1 / 60, "h": 1, "d": 24}[unit]


def slo_rule_groups(slos: Iterable[SloSpec], runbook_url: str) -> list[dict[str, Any]]:
    """Prometheus rule groups (the `groups:` of a rule file / PrometheusRule spec)."""
    # One group per SLO, recording rules first: rules of a group are evaluated in order, so the
    # burn alerts read ratios recorded in the same evaluation. In separate groups they would race
    # (groups run independently) and lag the recordings by up to an interval.
    return [{"name": f"slo-{slo.service}", "interval": "1m",
             "rules": recording_rules(slo) + alert_rules(slo, runbook_url)}
            for slo in slos]
