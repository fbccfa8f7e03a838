"""webhook-install-order: nothing the platform installs races a fail-closed admission webhook on a
first install (the rendered webhook configurations against the plan's dependencies)."""

from __future__ import annotations

import dataclasses

from platformctl.crossguard import check_evaluation
from platformctl.recording import Evaluation
from tests.conftest import with_resources

POLICY = "webhook-install-order"


def test_the_shipped_stacks_install_nothing_in_parallel_with_a_fail_closed_webhook(rendered):
    for evaluation in rendered.values():
        report = check_evaluation(evaluation)
        assert report.of(POLICY) == []
        assert report.evaluated(POLICY)


def test_cluster_services_then_monitoring_then_gatekeeper_then_the_rest(rendered):
    prod = rendered["prod"]
    releases = {r.name: r for r in prod.of_type("kubernetes:helm.sh/v3:Release")}
    lbc, metrics, autoscaler, certs, monitoring, gatekeeper = (releases[f"prod-{n}"] for n in (
        "aws-load-balancer-controller", "metrics-server", "cluster-autoscaler", "cert-manager",
        "kube-prometheus-stack", "gatekeeper"))
    services = {lbc.urn, metrics.urn, autoscaler.urn, certs.urn}
    assert services <= set(gatekeeper.dependencies)
    assert lbc.urn in metrics.dependencies
    assert lbc.urn in autoscaler.dependencies  # its Service goes through the LBC's webhook
    assert lbc.urn in certs.dependencies
    # The monitoring CRDs before anything that renders their kinds; Gatekeeper after them.
    assert {lbc.urn, certs.urn} <= set(monitoring.dependencies)
    assert gatekeeper.urn not in monitoring.dependencies
    assert monitoring.urn in gatekeeper.dependencies
    for name, release in releases.items():
        if release not in (lbc, metrics, autoscaler, certs, monitoring, gatekeeper):
            assert {gatekeeper.urn, monitoring.urn} <= set(release.dependencies), name


def _without_dependencies(evaluation: Evaluation, name: str) -> Evaluation:
    return with_resources(evaluation, [dataclasses.replace(r, dependencies=[])
                                       if r.name == name else r for r in evaluation.resources])


def test_a_release_that_no_longer_waits_for_the_load_balancer_controller_is_refused(rendered):
    report = check_evaluation(_without_dependencies(rendered["dev"], "dev-vault"))
    messages = [v.message for v in report.of(POLICY)]
    assert any(m.startswith("Helm release 'vault': creates Service vault/") and
               "the fail-closed webhook mservice.elbv2.k8s.aws of Helm release "
               "'aws-load-balancer-controller' intercepts, without depending on that release"
               in m for m in messages), messages
    (verdict, *_) = report.of(POLICY)
    assert verdict.enforcement == "mandatory" and verdict.resource_name == "dev-vault"


def test_a_namespace_written_while_gatekeeper_installs_is_refused(rendered):
    dev = rendered["dev"]
    (namespace,) = [r for r in dev.resources if r.type == "kubernetes:core/v1:Namespace"
                    and r.inputs["metadata"]["name"] == "checkout"]
    report = check_evaluation(_without_dependencies(dev, namespace.name))
    messages = [v.message for v in report.of(POLICY)]
    assert any("creates Namespace checkout, which the fail-closed webhook "
               "check-ignore-label.gatekeeper.sh of Helm release 'gatekeeper'" in m
               for m in messages), messages
