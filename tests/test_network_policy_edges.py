"""The network policies' peers at their edges, evaluated as Kubernetes does (a peer with both
selectors: pods matching the podSelector in namespaces matching the namespaceSelector; a peer
with a podSelector alone: pods of the policy's own namespace). A peer loosened to any namespace
lets a pod anyone labels `prometheus` or `argo-rollouts` in a team namespace through."""

from __future__ import annotations

from typing import Any

import pytest

from components.observability import network_policies as monitoring_policies
from components.tenancy import network_policies as team_policies
from platform_facts.capacity import matches_selector


def admitted(policy_namespace: str, policy: dict[str, Any], namespace: str,
             namespace_labels: dict[str, str], pod_labels: dict[str, str]) -> bool:
    """Whether a pod (its namespace, that namespace's labels, its own labels) is a source one
    of the policy's ingress rules admits (ports aside)."""
    for rule in policy.get("ingress") or ():
        for peer in rule.get("from") or ():
            if "ipBlock" in peer:
                continue
            if "namespaceSelector" in peer:
                in_namespace = matches_selector(peer["namespaceSelector"], namespace_labels)
            else:
                in_namespace = namespace == policy_namespace
            if in_namespace and matches_selector(peer.get("podSelector"), pod_labels):
                return True
    return False


def labels_of(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


PROMETHEUS = {"app.kubernetes.io/name": "prometheus"}
ROLLOUTS = {"app.kubernetes.io/name": "argo-rollouts"}


@pytest.mark.parametrize(("namespace", "pod", "expected"), [
    ("monitoring", PROMETHEUS, True),  # the platform's Prometheus scrapes the team
    ("payments", PROMETHEUS, False),  # a team's pod labelled prometheus
    ("checkout", PROMETHEUS, True),  # the namespace's own pods (allow-same-namespace)
    ("monitoring", {"app.kubernetes.io/name": "grafana"}, False),
    ("argocd", PROMETHEUS, False),
])
def test_a_team_namespace_admits_prometheus_from_monitoring_only(namespace, pod, expected):
    policies = team_policies("monitoring", ["10.0.0.0/24"], ["10.0.100.0/24"])
    ingress = [p for p in policies.values() if "Ingress" in p.get("policyTypes", [])]
    found = any(admitted("checkout", p, namespace, labels_of(namespace), pod) for p in ingress)
    assert found is expected, (namespace, pod)


@pytest.mark.parametrize(("namespace", "pod", "expected"), [
    ("argocd", ROLLOUTS, True),  # Argo Rollouts' analysis queries Prometheus
    ("checkout", ROLLOUTS, False),  # a team's pod labelled argo-rollouts
    ("argocd", {"app.kubernetes.io/name": "argocd-server"}, False),
    ("checkout", PROMETHEUS, False),  # a team's pod cannot reach Alertmanager or Prometheus
    ("monitoring", {"app": "anything"}, True),  # the namespace's own pods
])
def test_the_monitoring_namespace_admits_the_rollouts_controller_only(namespace, pod, expected):
    policies = monitoring_policies("monitoring", "10.10.0.0/16")
    found = any(admitted("monitoring", p, namespace, labels_of(namespace), pod)
                for p in policies.values())
    assert found is expected, (namespace, pod)
