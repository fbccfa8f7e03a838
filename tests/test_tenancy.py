"""The team baseline over the real stacks and a stack with more teams: every team namespace has
all of it; the objects validate strictly (checkov: tests/test_checkov.py); bad team config is
a clear error."""

from __future__ import annotations

import kubernetes_validate
import pytest

from components.admission import TEAM_LABEL
from components.tenancy import EXPOSURE_LABEL, TEAM_ADMIN_ROLE
from platformctl.recording import Evaluation
from tests.conftest import config_error, mutate, stack_config, write_stack
from tests.k8s_objects import manifest, owned_objects

TENANCY = "platform:index:Tenancy"
ADMISSION = "platform:index:AdmissionControl"
POLICIES = {"default-deny", "allow-dns", "allow-same-namespace", "allow-monitoring",
            "allow-load-balancers", "allow-database", "allow-tracing"}

def _objects(evaluation: Evaluation, namespace: str) -> dict[tuple[str, str], dict]:
    found = {}
    for resource in owned_objects(evaluation, TENANCY):
        body = manifest(resource)
        if body["metadata"].get("namespace") == namespace:
            found[(resource.type.split(":")[-1], body["metadata"]["name"])] = body
    return found


def assert_baseline(evaluation: Evaluation, team: str, namespace: str) -> None:
    (ns,) = [manifest(r) for r in evaluation.of_type("kubernetes:core/v1:Namespace")
             if r.inputs["metadata"]["name"] == namespace]
    labels = ns["metadata"]["labels"]
    assert labels[TEAM_LABEL] == labels["team"] == team
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"

    objects = _objects(evaluation, namespace)
    hard = objects[("ResourceQuota", "team-quota")]["spec"]["hard"]
    assert {"requests.cpu", "requests.memory", "limits.memory", "pods"} <= set(hard)
    assert hard["services.loadbalancers"] == hard["services.nodeports"] == "0"
    assert objects[("LimitRange", "container-defaults")]["spec"]["limits"][0]["default"]
    assert {n for (kind, n) in objects if kind == "NetworkPolicy"} == POLICIES
    deny = objects[("NetworkPolicy", "default-deny")]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    bindings = {n: b for (kind, n), b in objects.items() if kind == "RoleBinding"}
    assert bindings["team-viewers"]["roleRef"]["name"] == "view"
    assert bindings["team-admins"]["roleRef"]["name"] == TEAM_ADMIN_ROLE
    deployer = bindings["argocd-deployer"]
    assert deployer["subjects"] == [{"kind": "ServiceAccount", "namespace": "argocd",
                                     "name": "argocd-application-controller"}]
    # Only Argo CD may write workloads: no human group is bound to a writing role.
    for binding in bindings.values():
        if binding["roleRef"]["name"] in ("admin", "edit", "cluster-admin"):
            assert all(s["kind"] == "ServiceAccount" for s in binding["subjects"])
    assert objects[("ServiceAccountPatch", "default")]["automountServiceAccountToken"] is False


def test_every_team_namespace_of_the_real_stacks_has_the_baseline(stack):
    namespaces = [(t.name, ns) for t in stack.config.teams for ns in t.namespaces]
    assert namespaces  # the real stacks have a team
    for team, namespace in namespaces:
        assert_baseline(stack, team, namespace)


def test_every_namespace_of_every_team_has_the_baseline(two_teams):
    expected = [("checkout", "checkout"), ("checkout", "checkout-jobs"), ("search", "search")]
    assert sorted(two_teams.outputs["teamNamespaces"].value) == sorted(n for _, n in expected)
    for team, namespace in expected:
        assert_baseline(two_teams, team, namespace)
    quota = _objects(two_teams, "checkout-jobs")[("ResourceQuota", "team-quota")]
    assert (quota["spec"]["hard"]["pods"], quota["spec"]["hard"]["requests.cpu"]) == ("20", "2")
    admins = _objects(two_teams, "search")[("RoleBinding", "team-admins")]["subjects"]
    assert [s["name"] for s in admins] == ["search-admins"]  # the default group


def test_team_admins_cannot_write_workloads(stack):
    (role,) = [manifest(r) for r in stack.of_type("kubernetes:rbac.authorization.k8s.io/v1:"
                                                   "ClusterRole")
               if r.inputs["metadata"]["name"] == TEAM_ADMIN_ROLE]
    for rule in role["rules"]:
        assert not set(rule["verbs"]) & {"update", "patch", "*"}
        assert set(rule["resources"]) <= {"pods", "pods/log", "pods/portforward", "pods/eviction"}
        if "pods" in rule["resources"]:
            assert rule["verbs"] == ["delete"]  # restart, never create


def test_load_balancers_reach_only_pods_marked_public_from_the_public_subnets(stack):
    (namespace,) = stack.config.teams[0].namespaces
    policy = _objects(stack, namespace)[("NetworkPolicy", "allow-load-balancers")]["spec"]
    assert policy["podSelector"] == {"matchLabels": {EXPOSURE_LABEL: "public"}}
    public = stack.outputs["vpcCidr"].value
    cidrs = [peer["ipBlock"]["cidr"] for peer in policy["ingress"][0]["from"]]
    assert cidrs and public not in cidrs  # the subnets, never the whole VPC (pods live there)
    assert len(cidrs) == len(stack.outputs["availabilityZones"].value)


def _owned_manifests(evaluation: Evaluation) -> list[dict]:
    """The security components' own built-in Kubernetes objects (custom resources are checked
    against their CRDs in test_admission.py and test_vault.py)."""
    found = [manifest(r) for r in owned_objects(evaluation, TENANCY)]
    for component in (ADMISSION, "platform:index:SecretsStack"):
        found += [manifest(r) for r in owned_objects(evaluation, component)
                  if r.type in ("kubernetes:core/v1:Namespace",
                                "kubernetes:core/v1:ServiceAccount",
                                "kubernetes:networking.k8s.io/v1:NetworkPolicy")]
    return found


def test_owned_objects_validate_strictly(two_teams, stack):
    for evaluation in (two_teams, stack):
        bodies = _owned_manifests(evaluation)
        assert len(bodies) >= 15  # a namespace's 13 objects, the admin role, Gatekeeper's
        for body in bodies:
            kubernetes_validate.validate(body, "1.36.0", strict=True)


@pytest.mark.parametrize(("teams", "message"), [
    ([{"name": "ops", "namespaces": ["kube-system"]}],
     "platform:teams[0].namespaces: 'kube-system': is a platform namespace"),
    ([{"name": "ab"}, {"name": "cd", "namespaces": ["ab"]}],
     "platform:teams[1].namespaces: 'ab': is already taken"),
    ([{"name": "ab"}, {"name": "ab"}], "platform:teams[1].name: 'ab': is listed twice"),
    ([{"name": "Checkout"}], "platform:teams[0].name: 'Checkout'"),
    ([{"name": "x1", "quota": {"pods": 0}}], "platform:teams[0].quota.pods: 0"),
])
def test_bad_teams_are_config_errors(tmp_path, capsys, teams, message):
    path = write_stack(tmp_path, mutate(stack_config("dev"), "platform:teams", teams))
    err = config_error(path, capsys)
    assert message in err, err


@pytest.mark.parametrize("registry", ["111111111111.dkr.ecr.us-east-1.amazonaws.com",
                                      "https://ghcr.io/", "ghcr.io/Org/"])
def test_a_registry_must_be_a_prefix_ending_in_a_slash(tmp_path, capsys, registry):
    config = mutate(stack_config("dev"), "platform:security",
                    {"gatekeeper": {"allowedRegistries": [registry]}})
    err = config_error(write_stack(tmp_path, config), capsys)
    assert "platform:security.gatekeeper.allowedRegistries[0]" in err and registry in err, err


@pytest.mark.parametrize("namespace", ["vault", "argocd"])
def test_platform_namespaces_nobody_calls_admit_only_themselves_and_prometheus(stack, namespace):
    policies = {r.inputs["metadata"]["name"]: r.inputs["spec"]
                for r in stack.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
                if r.inputs["metadata"]["namespace"] == namespace}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    (rule,) = policies["allow-same-namespace-and-monitoring"]["ingress"]
    peers = rule["from"]
    assert peers[0] == {"podSelector": {}}
    assert peers[1]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": stack.config.observability.namespace}}
    assert len(policies) == 2


# -- what the team namespace's NetworkPolicies admit, evaluated -----------------------------

def _selects(selector: dict, labels: dict) -> bool:
    """A label selector (matchLabels, matchExpressions) against labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression["key"], expression["operator"], expression.get(
            "values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _ingress_allowed(policies: list[tuple[str, dict]], to: tuple[str, dict],
                     source: tuple[str, dict, dict]) -> bool:
    """Kubernetes NetworkPolicy semantics for one pod-to-pod connection: `to` is (namespace,
    pod labels), `source` (namespace, namespace labels, pod labels)."""
    namespace, labels = to
    source_namespace, source_namespace_labels, source_labels = source
    applicable = [spec for ns, spec in policies if ns == namespace
                  and "Ingress" in spec.get("policyTypes", ["Ingress"])
                  and _selects(spec["podSelector"], labels)]
    if not applicable:
        return True
    for spec in applicable:
        for rule in spec.get("ingress") or ():
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                if "ipBlock" in peer:
                    continue
                in_namespace = (_selects(peer["namespaceSelector"], source_namespace_labels)
                                if "namespaceSelector" in peer
                                else source_namespace == namespace)
                if in_namespace and _selects(peer.get("podSelector") or {}, source_labels):
                    return True
    return False


def test_a_pod_of_another_namespace_cannot_reach_a_team_pod(evaluations):
    evaluation = evaluations["prod"]
    policies = [(r.inputs["metadata"]["namespace"], r.inputs["spec"])
                for r in evaluation.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")]
    team_pod = ("checkout", {"app.kubernetes.io/name": "checkout", "team": "checkout"})

    def ns(name: str, **labels: str) -> dict:
        return {"kubernetes.io/metadata.name": name, **labels}

    other_team = ("payments", ns("payments", team="payments"), {"app.kubernetes.io/name": "x"})
    same = ("checkout", ns("checkout", team="checkout"), {"app.kubernetes.io/name": "worker"})
    prometheus = ("monitoring", ns("monitoring"), {"app.kubernetes.io/name": "prometheus"})
    grafana = ("monitoring", ns("monitoring"), {"app.kubernetes.io/name": "grafana"})
    assert not _ingress_allowed(policies, team_pod, other_team)
    assert not _ingress_allowed(policies, team_pod, grafana)
    assert _ingress_allowed(policies, team_pod, same)
    assert _ingress_allowed(policies, team_pod, prometheus)
    # ...and the evaluator itself: a rule open to every namespace would let the other team in.
    widened = [*policies, ("checkout", {"podSelector": {}, "policyTypes": ["Ingress"],
                                        "ingress": [{"from": [{"namespaceSelector": {}}]}]})]
    assert _ingress_allowed(widened, team_pod, other_team)


def test_team_namespaces_get_the_load_balancers_readiness_gates(stack):
    from components.tenancy import READINESS_GATE_LABEL

    namespaces = [r for r in stack.of_type("kubernetes:core/v1:Namespace")
                  if r.inputs["metadata"]["name"] in stack.outputs["teamNamespaces"].value]
    assert namespaces
    for namespace in namespaces:
        assert namespace.inputs["metadata"]["labels"][READINESS_GATE_LABEL] == "enabled"
