"""CPU and memory of the platform's own pods whose charts ship no default: one table, each
figure with its source. The node-capacity check refuses a rendered pod without requests (the
scheduler would count it as zero and place it anywhere), so every container of every release's
pod templates, install hooks included, gets its figures here or in its component's values.

Sources are the vendored charts' own suggestions (the commented `resources:` example under
the value path, read in the archive under charts/), or, where a chart suggests none, the
nearest suggestion for a container of the same job, said as such. Limits are on memory only
(a CPU limit throttles a pod that the node has room for). Figures are requests for a small
organisation's platform (a few dozen applications); raise them in this table when the
platform's own dashboards show a container above its request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figures:
    cpu: str  # request
    memory: str  # request
    memory_limit: str
    source: str

    def values(self) -> dict[str, Any]:
        """A chart's `resources:` value."""
        return {"requests": {"cpu": self.cpu, "memory": self.memory},
                "limits": {"memory": self.memory_limit}}


def _example(chart: str, path: str) -> str:
    return f"{chart} values.yaml, the commented example under {path}"


_ARGO = "argo-cd 10.1.1"
_PROMETHEUS = "kube-prometheus-stack 88.5.3"
_HOOK = ("no chart example: a one-shot install hook (a single CLI call); a small request and "
         "a limit with room, so the hook never runs out of memory mid-install")

FIGURES: dict[str, Figures] = {
    # argo-cd
    "argocd.controller": Figures("250m", "256Mi", "512Mi", _example(_ARGO, "controller.resources")),
    "argocd.server": Figures("50m", "64Mi", "128Mi", _example(_ARGO, "server.resources")),
    "argocd.repoServer": Figures("10m", "64Mi", "128Mi", _example(_ARGO, "repoServer.resources")),
    "argocd.repoServer.copyutil": Figures(
        "50m", "64Mi", "128Mi", _example(_ARGO, "repoServer.copyutil.resources")),
    "argocd.applicationSet": Figures(
        "100m", "128Mi", "128Mi", _example(_ARGO, "applicationSet.resources")),
    "argocd.notifications": Figures(
        "100m", "128Mi", "128Mi", _example(_ARGO, "notifications.resources")),
    "argocd.redis": Figures("100m", "64Mi", "128Mi", _example(_ARGO, "redis.resources")),
    "argocd.redisSecretInit": Figures(
        "100m", "64Mi", "128Mi", _example(_ARGO, "redisSecretInit.resources")),
    # argo-cd's redis-ha subchart (prod): the same cache as the single redis above, so sized
    # like it (redis-ha's own example, 200Mi for redis and for sentinel, sizes a
    # general-purpose Redis); sentinel, the split-brain check, haproxy and the init
    # containers are small sidecars, sized like argo-cd's redis exporter example.
    "argocd.redis-ha.redis": Figures(
        "100m", "64Mi", "128Mi", _example(_ARGO, "redis.resources") + " (the same cache)"),
    "argocd.redis-ha.sidecar": Figures(
        "10m", "32Mi", "64Mi", _example(_ARGO, "redis.exporter.resources")
        + " (a small sidecar of the same Redis)"),
    "argocd.redis-ha.haproxy": Figures(
        "10m", "32Mi", "128Mi", _example(_ARGO, "redis.exporter.resources")
        + " (a small proxy; the limit leaves room for connection bursts)"),
    # argo-rollouts 2.41.0
    "argo-rollouts.controller": Figures(
        "50m", "64Mi", "128Mi", _example("argo-rollouts 2.41.0", "controller.resources")),
    # aws-load-balancer-controller 3.5.0
    "aws-load-balancer-controller": Figures(
        "100m", "128Mi", "128Mi", _example("aws-load-balancer-controller 3.5.0", "resources")),
    # kube-prometheus-stack and its subcharts
    "kube-prometheus-stack.prometheusOperator": Figures(
        "100m", "100Mi", "200Mi", _example(_PROMETHEUS, "prometheusOperator.resources")),
    # The config-reloader sidecar of the Prometheus and Alertmanager pods: the chart passes
    # the operator "0" (no request) unless set; these are the operator's own flag defaults.
    "kube-prometheus-stack.prometheusConfigReloader": Figures(
        "10m", "50Mi", "50Mi", "prometheus-operator's defaults of --config-reloader-cpu-request, "
        "--config-reloader-memory-request and --config-reloader-memory-limit"),
    "kube-prometheus-stack.admissionWebhooks.patch": Figures("10m", "32Mi", "128Mi", _HOOK),
    "kube-prometheus-stack.kube-state-metrics": Figures(
        "10m", "32Mi", "64Mi", _example("kube-state-metrics (subchart)", "resources")),
    "kube-prometheus-stack.node-exporter": Figures(
        "100m", "30Mi", "50Mi", _example("prometheus-node-exporter (subchart)", "resources")),
    "kube-prometheus-stack.grafana.sidecar": Figures(
        "50m", "50Mi", "100Mi", _example("grafana (subchart)", "sidecar.resources")),
    # install hooks of gatekeeper and policy-controller
    "gatekeeper.postInstall": Figures("10m", "32Mi", "128Mi", _HOOK),
    "gatekeeper.crds": Figures("10m", "64Mi", "256Mi", _HOOK + " (it applies the CRDs)"),
    "policy-controller.leasescleanup": Figures("10m", "32Mi", "128Mi", _HOOK),
}


def values(key: str) -> dict[str, Any]:
    return FIGURES[key].values()
