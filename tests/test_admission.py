"""The admission policies: the Rego of every ConstraintTemplate (Rego v1) run on real OPA,
Gatekeeper's engine, and on regorus, which must agree, on a table of admission requests,
exemptions that expire, and the templates and constraints the real stacks deploy: schema-valid,
warn in dev, deny in prod, team namespaces only, created in an order an empty cluster
accepts."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
import regorus
import yaml

from components import admission
from components.admission import POLICIES, Gatekeeper, constraint_template
from components.kubernetes import PLATFORM_NAMESPACES
from components.tenancy import Team
from tests import k8s_objects, opa
from tests.conftest import REPO, config_error, mutate, stack_config, write_stack
from tests.k8s_objects import manifest

TEMPLATE_TYPE = "kubernetes:templates.gatekeeper.sh/v1:ConstraintTemplate"
REGISTRY = "111111111111.dkr.ecr.us-east-1.amazonaws.com/"
DIGEST = "@sha256:" + "ab" * 32
BY_ID = {p.id: p for p in POLICIES}

# The prod stack's Gatekeeper settings: digests and probes required.
APPROVER = "@example-security-lead"
PROD = Gatekeeper.model_validate({
    "replicas": 2, "enforcement": "deny", "failClosed": True, "allowedRegistries": [REGISTRY],
    "requireDigest": True, "probesRequired": True,
    "exemptionApprovers": [APPROVER, "@example-platform-lead"]})
POLICY_TYPE = "kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy"
# The prod stack's teams (the ingress policy's hosts come from them).
TEAMS = [Team.model_validate({"name": "checkout", "services": ["checkout"],
                              "hosts": ["checkout.example.com"]})]


def parameters_of(policy_id: str) -> dict[str, Any]:
    return admission.parameters(BY_ID[policy_id], PROD, TEAMS)


@cache
def _engine(policy_id: str) -> regorus.Engine:
    engine = regorus.Engine()
    engine.set_rego_v0(False)  # the templates declare Rego v1
    for name, source in _modules(policy_id):
        engine.add_policy(name, source)
    return engine


@cache
def template_source(policy_id: str) -> dict[str, Any]:
    """The Rego source of a policy's ConstraintTemplate, as Gatekeeper reads it (read-only)."""
    (target,) = constraint_template(BY_ID[policy_id])["spec"]["targets"]
    (code,) = target["code"]
    assert code["engine"] == "Rego" and code["source"]["version"] == "v1"
    return code["source"]


@cache
def _modules(policy_id: str) -> tuple[tuple[str, str], ...]:
    """The template's Rego as (file name, source) modules: its libs, then its own."""
    source = template_source(policy_id)
    return (*((f"lib{i}.rego", lib) for i, lib in enumerate(source["libs"])),
            (f"{policy_id}.rego", source["rego"]))


def violations(policy_id: str, obj: dict[str, Any],
               parameters: dict[str, Any] | None = None) -> list[str]:
    """What Gatekeeper would report for `obj` under one policy (its messages)."""
    policy = BY_ID[policy_id]
    engine = _engine(policy_id).clone()
    request = {
        "review": {"object": obj, "kind": {"kind": obj["kind"]}, "operation": "CREATE",
                   "namespace": "checkout"},
        "parameters": parameters_of(policy_id) if parameters is None else parameters,
    }
    engine.set_input_json(json.dumps(request))
    package = policy.template_name
    result = json.loads(engine.eval_query_as_json(f"data.{package}.violation"))
    (expression,) = result["result"][0]["expressions"]
    by_regorus = sorted(v["msg"] for v in expression["value"])
    # The same case on real OPA, Gatekeeper's engine: the verdict that counts.
    by_opa = sorted(v["msg"] for v in opa.query(_modules(policy_id),
                                                 f"data.{package}.violation", request) or [])
    assert by_opa == by_regorus, (
        f"{policy_id}: OPA says {by_opa}, regorus says {by_regorus} for {obj.get('kind')} "
        f"{obj.get('metadata', {}).get('name')}")
    return by_opa


# -- admission requests ----------------------------------------------------------------------

def good_container(name: str = "app") -> dict[str, Any]:
    return {
        "name": name,
        "image": f"{REGISTRY}checkout{DIGEST}",
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}},
    }


LABELS = {"team": "checkout", "app.kubernetes.io/name": "checkout"}


def good_pod_spec() -> dict[str, Any]:
    init = good_container("migrate")
    del init["readinessProbe"], init["livenessProbe"]  # init containers cannot have them
    return {"containers": [good_container()], "initContainers": [init]}


def wrap(kind: str, spec: dict[str, Any], annotations: dict[str, str] | None = None,
         on_template: bool = False) -> dict[str, Any]:
    """A `kind` object around a pod spec; exemption annotations on it or on its template."""
    own = {} if on_template else dict(annotations or {})
    metadata = {"name": "checkout", "namespace": "checkout", "labels": dict(LABELS),
                "annotations": own}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    template = {"metadata": {"labels": dict(LABELS),
                             "annotations": dict(annotations or {}) if on_template else {}},
                "spec": spec}
    api = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Rollout": "argoproj.io/v1alpha1",
           "Job": "batch/v1", "CronJob": "batch/v1"}[kind]
    if kind == "CronJob":
        body = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}
    else:
        body = {"selector": {"matchLabels": {"app.kubernetes.io/name": "checkout"}},
                "template": template}
    return {"apiVersion": api, "kind": kind, "metadata": metadata, "spec": body}


WRAPPERS = ("Pod", "Deployment", "StatefulSet", "Rollout", "CronJob")
SLOTS = ("containers", "initContainers", "ephemeralContainers")


def _in_slot(slot: str, change: Callable[[dict[str, Any]], None]):
    def mutate(spec: dict[str, Any]) -> None:
        if slot == "ephemeralContainers":
            debug = good_container("debug")
            for key in ("resources", "readinessProbe", "livenessProbe"):
                debug.pop(key)  # not allowed on ephemeral containers
            spec["ephemeralContainers"] = [debug]
        change(spec[slot][0])
    return mutate


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(container: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = container
        for key in parents:
            target = target.setdefault(key, {})
        if value is _DROP:
            target.pop(last, None)
        else:
            target[last] = value
    return change


_DROP = object()

# (policy, case, which slots, how the container is made bad)
CONTAINER_CASES = [
    ("non-root", "runAsNonRoot unset", SLOTS, _set("securityContext.runAsNonRoot", _DROP)),
    ("non-root", "runAsNonRoot false", SLOTS, _set("securityContext.runAsNonRoot", False)),
    ("non-root", "runAsUser 0", SLOTS, _set("securityContext.runAsUser", 0)),
    ("no-privilege-escalation", "unset", SLOTS,
     _set("securityContext.allowPrivilegeEscalation", _DROP)),
    ("no-privilege-escalation", "true", SLOTS,
     _set("securityContext.allowPrivilegeEscalation", True)),
    ("drop-capabilities", "nothing dropped", SLOTS, _set("securityContext.capabilities", _DROP)),
    ("drop-capabilities", "some dropped", SLOTS,
     _set("securityContext.capabilities.drop", ["NET_RAW"])),
    ("drop-capabilities", "adds NET_ADMIN", SLOTS,
     _set("securityContext.capabilities.add", ["NET_ADMIN"])),
    ("host-isolation", "privileged", SLOTS, _set("securityContext.privileged", True)),
    ("host-isolation", "host port", ("containers",),
     _set("ports", [{"containerPort": 80, "hostPort": 80}])),
    ("resources", "no cpu request", ("containers", "initContainers"),
     _set("resources.requests.cpu", _DROP)),
    ("resources", "no memory request", ("containers", "initContainers"),
     _set("resources.requests.memory", _DROP)),
    ("resources", "no memory limit", ("containers", "initContainers"),
     _set("resources.limits", _DROP)),
    ("allowed-images", "Docker Hub", SLOTS, _set("image", f"nginx{DIGEST}")),
    ("allowed-images", "look-alike registry", SLOTS,
     _set("image", f"111111111111.dkr.ecr.us-east-1.amazonaws.com.evil.io/x{DIGEST}")),
    ("allowed-images", "a tag, not a digest", SLOTS, _set("image", f"{REGISTRY}checkout:1.2.3")),
    # The approved registry as a path under another host: a prefix check, not "contains".
    ("allowed-images", "approved registry inside another", SLOTS,
     _set("image", f"evil.io/{REGISTRY}checkout{DIGEST}")),
    ("sandbox", "seccomp Unconfined", SLOTS,
     _set("securityContext.seccompProfile", {"type": "Unconfined"})),
    ("sandbox", "AppArmor Unconfined", SLOTS,
     _set("securityContext.appArmorProfile", {"type": "Unconfined"})),
    ("sandbox", "procMount Unmasked", SLOTS, _set("securityContext.procMount", "Unmasked")),
    ("sandbox", "a Windows host process", SLOTS,
     _set("securityContext.windowsOptions", {"hostProcess": True})),
    ("probes", "no readiness probe", ("containers",), _set("readinessProbe", _DROP)),
    ("probes", "no liveness probe", ("containers",), _set("livenessProbe", _DROP)),
]

POD_CASES = [
    ("host-isolation", "hostNetwork", lambda spec: spec.update(hostNetwork=True)),
    ("host-isolation", "hostPID", lambda spec: spec.update(hostPID=True)),
    ("host-isolation", "hostPath volume",
     lambda spec: spec.update(volumes=[{"name": "root", "hostPath": {"path": "/"}}])),
    ("sandbox", "seccomp Unconfined", lambda spec: spec.setdefault("securityContext", {}).update(
        seccompProfile={"type": "Unconfined"})),
    ("sandbox", "an unsafe sysctl", lambda spec: spec.setdefault("securityContext", {}).update(
        sysctls=[{"name": "kernel.shm_rmid_forced", "value": "1"},
                 {"name": "net.core.somaxconn", "value": "4096"}])),
    ("sandbox", "an nfs volume", lambda spec: spec.update(volumes=[
        {"name": "share", "nfs": {"server": "10.0.0.1", "path": "/export"}}])),
]


def _cases():
    for policy_id, case, slots, change in CONTAINER_CASES:
        for slot in slots:
            for kind in WRAPPERS:
                if slot == "ephemeralContainers" and kind != "Pod":
                    continue  # only a running pod gets ephemeral containers
                if policy_id == "probes" and kind not in ("Deployment", "Rollout"):
                    continue  # the constraint matches those kinds only
                yield pytest.param(policy_id, kind, _in_slot(slot, change),
                                   id=f"{policy_id}:{case}:{slot}:{kind}")
    for policy_id, case, change in POD_CASES:
        for kind in WRAPPERS:
            yield pytest.param(policy_id, kind, change, id=f"{policy_id}:{case}:{kind}")


def bad_object(kind: str, mutate, annotations=None, on_template=False) -> dict[str, Any]:
    spec = good_pod_spec()
    mutate(spec)
    return wrap(kind, spec, annotations, on_template)


@pytest.mark.parametrize("kind", WRAPPERS)
@pytest.mark.parametrize("policy_id", sorted(BY_ID))
def test_a_good_object_is_admitted(policy_id, kind):
    spec = good_pod_spec()
    if kind == "Pod":
        spec["ephemeralContainers"] = [{k: v for k, v in good_container("debug").items()
                                        if k not in ("resources", "readinessProbe",
                                                     "livenessProbe")}]
    assert violations(policy_id, wrap(kind, spec)) == []


@pytest.mark.parametrize(("policy_id", "kind", "mutate"), list(_cases()))
def test_each_policy_denies_its_bad_object(policy_id, kind, mutate):
    found = violations(policy_id, bad_object(kind, mutate))
    assert found and all(f"[{policy_id}]" in message for message in found), found


@pytest.mark.parametrize("kind", ["Deployment", "Pod"])
def test_required_labels(kind):
    obj = wrap(kind, good_pod_spec())
    del obj["metadata"]["labels"]["team"]
    assert violations("required-labels", obj) == [
        f'{kind} "checkout" must have the label "team" [required-labels]']
    if kind == "Deployment":
        obj = wrap(kind, good_pod_spec())
        obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = ""
        assert "the pod template of Deployment" in violations("required-labels", obj)[0]


def test_digests_and_capabilities_follow_the_parameters():
    tagged = bad_object("Deployment", _in_slot("containers", _set("image", f"{REGISTRY}x:1")))
    relaxed = {**BY_ID["allowed-images"].values(PROD), "requireDigest": False}
    assert violations("allowed-images", tagged, relaxed) == []
    adds = bad_object("Pod", _in_slot("containers", _set("securityContext.capabilities.add",
                                                         ["NET_BIND_SERVICE"])))
    allowed = {**BY_ID["drop-capabilities"].values(PROD),
               "allowedCapabilities": ["NET_BIND_SERVICE"]}
    assert violations("drop-capabilities", adds) != []
    assert violations("drop-capabilities", adds, allowed) == []


# -- exemptions that expire --------------------------------------------------------------------

def _day(offset: int) -> str:
    return (datetime.datetime.now(datetime.UTC).date()
            + datetime.timedelta(days=offset)).isoformat()


def _exemption(policy_id: str, exemption_id: str = "ex-1") -> dict[str, str]:
    """The annotation by which an object opts in to an exemption of the stack config."""
    return {BY_ID[policy_id].exemption_annotation: exemption_id}


def _granted(policy_id: str, until: str, namespace: str = "checkout",
             exemption_id: str = "ex-1", **changes: Any) -> dict[str, Any]:
    """The policy's parameters with one exemption granted in the stack config."""
    return {**parameters_of(policy_id), **changes,
            "exemptions": {exemption_id: {"namespace": namespace, "until": until}}}


EXEMPTION_SUBJECTS = [
    # (policy, object kind, the bad change, exemption on the pod template?)
    ("non-root", "Pod", _in_slot("containers", _set("securityContext.runAsUser", 0)), False),
    ("allowed-images", "Deployment", _in_slot("initContainers", _set("image", "nginx:1")), True),
    ("host-isolation", "Rollout", lambda spec: spec.update(hostNetwork=True), False),
    ("probes", "Rollout", _in_slot("containers", _set("readinessProbe", _DROP)), True),
    ("resources", "CronJob", _in_slot("containers", _set("resources", _DROP)), True),
]


@pytest.mark.parametrize(("policy_id", "kind", "mutate", "on_template"), EXEMPTION_SUBJECTS,
                         ids=[s[0] for s in EXEMPTION_SUBJECTS])
def test_an_exemption_holds_until_its_date(policy_id, kind, mutate, on_template):
    obj = bad_object(kind, mutate, _exemption(policy_id), on_template)

    def check(until: str) -> list[str]:
        return violations(policy_id, obj, _granted(policy_id, until))

    assert violations(policy_id, obj) != []  # annotated, but nothing granted in the config
    assert check(_day(1)) == []  # expires tomorrow: exempt
    assert check(_day(30)) == []  # the longest allowed
    assert check(_day(-1)) != []  # expired yesterday
    assert check(_day(0)) != []  # expires today (at 00:00 UTC): no longer
    assert check(_day(31)) != []  # further ahead than maxExemptionDays
    for malformed in ("2026-13-01", "tomorrow", "2099-1-1", ""):
        assert check(malformed) != [], malformed


def test_a_team_cannot_grant_or_move_an_exemption_from_its_manifests():
    mutate = lambda spec: spec.update(hostIPC=True)  # noqa: E731
    # An annotation carrying a date, or naming an id the config does not have, grants nothing.
    dated = bad_object("Pod", mutate, {BY_ID["host-isolation"].exemption_annotation: _day(5)})
    assert violations("host-isolation", dated, _granted("host-isolation", _day(5))) != []
    unknown = bad_object("Pod", mutate, _exemption("host-isolation", "ex-2"))
    assert violations("host-isolation", unknown, _granted("host-isolation", _day(5))) != []
    # An entry granted in another namespace does not hold in this one.
    obj = bad_object("Pod", mutate, _exemption("host-isolation"))
    assert violations("host-isolation", obj, _granted("host-isolation", _day(5),
                                                      namespace="payments")) != []
    assert violations("host-isolation", obj, _granted("host-isolation", _day(5))) == []


def test_an_exemption_covers_only_its_policy():
    obj = bad_object("Pod", _in_slot("containers", _set("securityContext.runAsUser", 0)),
                     {**_exemption("resources"), "exempt.platform.example.org/everything": "ex-1"})
    assert violations("non-root", obj) != []


def test_the_exemption_horizon_follows_the_parameter():
    mutate = lambda spec: spec.update(hostIPC=True)  # noqa: E731
    obj = bad_object("Pod", mutate, _exemption("host-isolation"))
    assert violations("host-isolation", obj, _granted("host-isolation", _day(60))) != []
    assert violations("host-isolation", obj, _granted("host-isolation", _day(60),
                                                      maxExemptionDays=90)) == []


def test_the_stack_configs_exemptions_become_each_constraints_parameter():
    gatekeeper = Gatekeeper.model_validate({
        **PROD.model_dump(by_alias=True), "exemptions": [
            {"id": "legacy-root", "policy": "non-root", "namespace": "checkout",
             "until": _day(10), "approvedBy": APPROVER,
             "reason": "vendor image runs as root until its 2.0 release"}]})
    assert admission.exemptions_of("non-root", gatekeeper) == {
        "legacy-root": {"namespace": "checkout", "until": _day(10)}}
    assert admission.exemptions_of("resources", gatekeeper) == {}


# -- what the real stacks deploy ------------------------------------------------------------

def _constraints(evaluation):
    return [r for r in evaluation.resources
            if r.type.startswith("kubernetes:constraints.gatekeeper.sh/")]


def test_dev_warns_and_prod_denies(evaluations):
    dev, prod = (_constraints(evaluations[s]) for s in ("dev", "prod"))
    assert {r.inputs["spec"]["enforcementAction"] for r in dev} == {"warn"}
    assert {r.inputs["spec"]["enforcementAction"] for r in prod} == {"deny"}
    assert {r.inputs["metadata"]["name"] for r in prod} == set(BY_ID)
    # Probes are required in prod; dev leaves them out (and warns only, for the rest).
    assert {r.inputs["metadata"]["name"] for r in dev} == set(BY_ID) - {"probes"}
    images = next(r for r in prod if r.inputs["metadata"]["name"] == "allowed-images")
    assert images.inputs["spec"]["parameters"]["requireDigest"] is True
    assert images.inputs["spec"]["parameters"]["registries"] == [REGISTRY]


def test_constraints_match_team_namespaces_and_never_the_platforms(stack):
    for resource in _constraints(stack):
        match = resource.inputs["spec"]["match"]
        assert match["namespaceSelector"] == {"matchExpressions": [
            {"key": admission.TEAM_LABEL, "operator": "Exists"}]}
        excluded = set(match["excludedNamespaces"])
        assert set(PLATFORM_NAMESPACES) | {stack.config.observability.namespace} <= excluded
        assert not excluded & {ns for t in stack.config.teams for ns in t.namespaces}
        kinds = {k for group in match["kinds"] for k in group["kinds"]}
        assert {"Deployment", "Rollout"} <= kinds or kinds in (
            {"ServiceMonitor", "PodMonitor", "Probe"}, {"Ingress", "Service"},
            {"PrometheusRule", "AnalysisTemplate", "Rollout"})


def test_templates_are_the_rego_under_test_and_valid_upstream(stack, crds):
    assert crds.crd("templates.gatekeeper.sh/v1", "ConstraintTemplate").chart == "gatekeeper 3.23.0"
    templates = stack.of_type(TEMPLATE_TYPE)
    assert len(templates) == len(_constraints(stack))
    for resource in templates:
        body = manifest(resource)
        assert crds.errors(body) == []
        policy = next(p for p in POLICIES if p.template_name == body["metadata"]["name"])
        assert body == {k: v for k, v in constraint_template(policy).items()}
        assert body["spec"]["crd"]["spec"]["names"]["kind"].lower() == body["metadata"]["name"]


def test_an_empty_cluster_gets_release_then_templates_then_constraints(stack):
    release = k8s_objects.release(stack, "gatekeeper")
    templates = {r.inputs["spec"]["crd"]["spec"]["names"]["kind"]: r
                 for r in stack.of_type(TEMPLATE_TYPE)}
    for template in templates.values():
        assert release.urn in template.dependencies
        assert (template.inputs["metadata"]["annotations"]["pulumi.com/waitFor"]
                == "jsonpath={.status.created}=true")
    for constraint in _constraints(stack):
        assert templates[constraint.inputs["kind"]].urn in constraint.dependencies


def test_gatekeeper_release_is_pinned_and_fails_closed_in_prod(evaluations):
    def release(name):
        return k8s_objects.release(evaluations[name], "gatekeeper")

    dev, prod = release("dev"), release("prod")
    assert dev.inputs["version"] == prod.inputs["version"] == "3.23.0"
    assert dev.inputs["values"]["validatingWebhookFailurePolicy"] == "Ignore"
    assert prod.inputs["values"]["validatingWebhookFailurePolicy"] == "Fail"
    assert prod.inputs["values"]["replicas"] == 2
    exempt = prod.inputs["values"]["validatingWebhookExemptNamespacesLabels"]
    assert "kube-system" in exempt["kubernetes.io/metadata.name"]


def test_every_rego_file_is_deployed():
    files = {p.name for p in admission.REGO_DIR.glob("*.rego")} - {"lib.rego"}
    assert files == {p.file for p in POLICIES}


def test_the_policy_table_covers_every_policy():
    covered = {c[0] for c in CONTAINER_CASES} | {c[0] for c in POD_CASES} | {
        "required-labels", "monitor-scope", "ingress", "team-telemetry"}
    assert covered == set(BY_ID)


def test_the_prod_settings_used_here_are_the_prod_stacks(evaluations):
    gatekeeper = evaluations["prod"].config.security.gatekeeper
    assert gatekeeper == PROD
    assert stack_config("prod")["platform:security"]["gatekeeper"]["allowedRegistries"] == [
        REGISTRY]


# -- signed images ---------------------------------------------------------------------------

def test_unsigned_images_warn_in_dev_and_are_rejected_in_prod(evaluations, crds):
    modes = {}
    for name, evaluation in evaluations.items():
        (policy,) = [p for p in evaluation.of_type(POLICY_TYPE)
                     if p.inputs["metadata"]["name"] == "signed-by-organisation"]
        body = manifest(policy)
        assert crds.errors(body) == []
        modes[name] = body["spec"]["mode"]
        assert body["spec"]["images"] == [{"glob": f"{REGISTRY}**"}]
        (authority,) = body["spec"]["authorities"]
        (identity,) = authority["keyless"]["identities"]
        assert identity["issuer"] == "https://token.actions.githubusercontent.com"
        assert identity["subjectRegExp"].startswith("^https://github\\.com/example-org/")
        release = k8s_objects.release(evaluation, "policy-controller")
        assert release.urn in policy.dependencies
        selector = release.inputs["values"]["webhook"]["namespaceSelector"]
        assert selector["matchExpressions"][0]["key"] == admission.SIGSTORE_INCLUDE_LABEL
        # Team namespaces opt in; the platform's do not.
        for namespace in evaluation.of_type("kubernetes:core/v1:Namespace"):
            labels = namespace.inputs["metadata"].get("labels", {})
            team_namespace = admission.TEAM_LABEL in labels
            assert (labels.get(admission.SIGSTORE_INCLUDE_LABEL) == "true") == team_namespace
    assert modes == {"dev": "warn", "prod": "enforce"}


def test_a_public_key_can_replace_keyless(tmp_path):
    from components.admission import AdmissionControl
    from tests.units import eks_cluster, evaluate_alone

    key = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"
    config = mutate(stack_config("prod"), "platform:security.imageSignatures",
                    {"publicKey": key})
    evaluation = evaluate_alone(write_stack(tmp_path, config), lambda cfg: AdmissionControl(
        cfg.environment, cfg.security, eks_cluster(cfg).target,
        [cfg.observability.namespace], cfg.teams))
    (policy,) = [p for p in evaluation.of_type(POLICY_TYPE)
                 if p.inputs["metadata"]["name"] == "signed-by-organisation"]
    (authority,) = policy.inputs["spec"]["authorities"]
    assert authority["key"]["data"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "keyless" not in authority


@pytest.mark.parametrize(("signatures", "message"), [
    ({"keylessSubjectRegExp": "https://github.com/example-org/.*"}, "must be anchored with ^"),
    ({"keylessSubjectRegExp": "^(unclosed"}, "is not a regular expression"),
    ({"keylessSubjectRegExp": None}, "set exactly one of keylessSubjectRegExp and publicKey"),
    ({"publicKey": "ssh-ed25519 AAAA"}, "set exactly one of"),
    ({"keylessSubjectRegExp": None, "publicKey": "ssh-ed25519 AAAA"},
     "is not a PEM public key"),
    ({"mode": "audit"}, "platform:security.imageSignatures.mode: 'audit'"),
])
def test_bad_image_signature_settings_are_config_errors(tmp_path, capsys, signatures, message):
    config = mutate(stack_config("dev"), "platform:security.imageSignatures", {
        **stack_config("dev")["platform:security"]["imageSignatures"], **signatures})
    config["platform:security"]["imageSignatures"] = {
        k: v for k, v in config["platform:security"]["imageSignatures"].items() if v is not None}
    err = config_error(write_stack(tmp_path, config), capsys)
    assert message in err, err


# -- team monitors ---------------------------------------------------------------------------

def _monitor(kind: str = "ServiceMonitor", **spec_changes) -> dict[str, Any]:
    field = {"ServiceMonitor": "endpoints", "PodMonitor": "podMetricsEndpoints"}[kind]
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app.kubernetes.io/name": "checkout"}},
                            field: [{"port": "http", "path": "/metrics"}]}
    spec.update(spec_changes)
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": kind,
            "metadata": {"name": "checkout", "namespace": "checkout"}, "spec": spec}


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor"])
def test_a_teams_monitor_of_its_own_namespace_is_admitted(kind):
    assert violations("monitor-scope", _monitor(kind)) == []
    own = _monitor(kind, namespaceSelector={"matchNames": ["checkout"]})
    assert violations("monitor-scope", own) == []
    # The golden path's ServiceMonitor passes as generated.
    generated = yaml.safe_load(
        (REPO / "gitops/teams/checkout/checkout/servicemonitor.yaml").read_text())
    assert violations("monitor-scope", generated) == []


@pytest.mark.parametrize(("case", "change", "expected"), [
    ("every namespace", {"namespaceSelector": {"any": True}}, "must not select every namespace"),
    ("another team's", {"namespaceSelector": {"matchNames": ["checkout", "payments"]}},
     'must not watch namespace "payments"'),
    ("prometheus's token", {"endpoints": [{"port": "http", "bearerTokenFile":
                                           "/var/run/secrets/kubernetes.io/serviceaccount/token"}]},
     "endpoints[0].bearerTokenFile reads a file in Prometheus's container"),
    ("prometheus's TLS key", {"endpoints": [{"port": "http", "tlsConfig": {
        "keyFile": "/etc/prometheus/secrets/x/tls.key"}}]}, "endpoints[0].tlsConfig.keyFile"),
    ("a credentials file", {"endpoints": [{"port": "http", "authorization": {
        "credentialsFile": "/etc/passwd"}}]}, "endpoints[0].authorization.credentialsFile"),
    ("honorLabels", {"endpoints": [{"port": "http", "honorLabels": True}]},
     "endpoints[0].honorLabels must not be true"),
])
def test_a_monitor_reaching_outside_its_namespace_or_into_prometheus_is_refused(
        case, change, expected):
    (message,) = violations("monitor-scope", _monitor(**change))
    assert expected in message and message.endswith("[monitor-scope]"), message


def test_the_monitor_constraint_matches_the_monitor_kinds(stack):
    (constraint,) = [c for c in _constraints(stack) if c.inputs["metadata"]["name"] == "monitor-scope"]
    assert constraint.inputs["spec"]["match"]["kinds"] == [
        {"apiGroups": ["monitoring.coreos.com"], "kinds": ["ServiceMonitor", "PodMonitor", "Probe"]}]


# -- Ingress ---------------------------------------------------------------------------------

GOLDEN_INGRESS = REPO / "gitops/teams/checkout/checkout/ingress.yaml"


def _ingress(**changes) -> dict[str, Any]:
    body = yaml.safe_load(GOLDEN_INGRESS.read_text())
    for path, value in changes.items():
        target = body
        *parents, last = path.split("|")
        for key in parents:
            target = target[key]
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return body


def _recorded_parameters(evaluation, policy_id: str) -> dict[str, Any]:
    (found,) = [c for c in _constraints(evaluation) if c.inputs["metadata"]["name"] == policy_id]
    return found.inputs["spec"]["parameters"]


def test_the_golden_paths_ingress_passes_with_the_stacks_own_constraint(evaluations):
    for evaluation in evaluations.values():
        parameters = _recorded_parameters(evaluation, "ingress")
        assert parameters["hosts"] == {"checkout": ["checkout.example.com"]}
        assert violations("ingress", _ingress(), parameters) == []


ALB = "alb.ingress.kubernetes.io/"


@pytest.mark.parametrize(("case", "changes", "expected"), [
    ("another team's host", {"spec|rules": [{"host": "payments.example.com", "http": {}}]},
     'serves host "payments.example.com", which namespace "checkout"\'s team does not own'),
    ("another team's certificate", {"spec|tls": [{"hosts": ["payments.example.com"]}]},
     'serves host "payments.example.com"'),
    ("no host", {"spec|rules": [{"http": {}}]}, "rules[0] has no host"),
    ("a default backend", {"spec|defaultBackend": {"service": {"name": "x", "port": {
        "number": 80}}}}, "must not set defaultBackend"),
    ("its own load balancer", {f"metadata|annotations|{ALB}group.name": "mine"},
     f"must not set annotation {ALB}group.name"),
    ("a scheme of its own", {f"metadata|annotations|{ALB}scheme": "internal"},
     f"must not set annotation {ALB}scheme"),
    ("no target type", {f"metadata|annotations|{ALB}target-type": None},
     f'must set annotation {ALB}target-type: "ip"'),
    ("a weaker TLS policy", {f"metadata|annotations|{ALB}ssl-policy": "ELBSecurityPolicy-2016-08"},
     f"{ALB}ssl-policy"),
    ("the shared listener's CIDRs", {f"metadata|annotations|{ALB}inbound-cidrs": "10.0.0.0/8"},
     f"must not set annotation {ALB}inbound-cidrs"),
    ("a forward to any target group", {f"metadata|annotations|{ALB}actions.steal": "{}"},
     f"must not set annotation {ALB}actions.steal"),
    ("another ingress class", {"spec|ingressClassName": "nginx"}, "must set ingressClassName: alb"),
])
def test_an_ingress_outside_its_teams_hosts_or_the_shared_settings_is_refused(
        case, changes, expected):
    found = violations("ingress", _ingress(**changes))
    assert any(expected in m for m in found) and all(m.endswith("[ingress]") for m in found), found


def _split(*groups: dict[str, Any], **extra: Any) -> str:
    """An action annotation's value as the Argo Rollouts controller writes it (its Go struct's
    keys, utils/ingress/ingress.go)."""
    return json.dumps({"Type": "forward", "ForwardConfig": {"TargetGroups": list(groups)},
                       **extra})


CANARY = {"ServiceName": "checkout-canary", "ServicePort": "80", "Weight": 10}
STABLE = {"ServiceName": "checkout-stable", "ServicePort": "80", "Weight": 90}


def test_the_canary_split_the_rollouts_controller_writes_is_admitted():
    """The controller updates the Ingress at every step: Gatekeeper must let that through."""
    split = _ingress(**{f"metadata|annotations|{ALB}actions.checkout": _split(CANARY, STABLE)})
    assert violations("ingress", split) == []
    lower = _ingress(**{f"metadata|annotations|{ALB}actions.checkout": json.dumps(
        {"type": "forward", "forwardConfig": {"targetGroups": [
            {"serviceName": "checkout-stable", "servicePort": "80"}]}})})
    assert violations("ingress", lower) == []


@pytest.mark.parametrize(("case", "value", "backend_port"), [
    ("a target group by ARN (anyone's)", _split(CANARY, {
        "TargetGroupARN": "arn:aws:elasticloadbalancing:us-east-1:111111111111:targetgroup/"
                          "payments/0123456789abcdef", "Weight": 90}), "use-annotation"),
    ("a redirect", json.dumps({"Type": "redirect", "RedirectConfig": {
        "Host": "evil.example.net", "StatusCode": "HTTP_302"}}), "use-annotation"),
    ("a fixed response next to the forward", _split(STABLE, FixedResponseConfig={
        "StatusCode": "503"}), "use-annotation"),
    ("a key written twice in two cases", json.dumps({
        "Type": "forward", "type": "redirect", "ForwardConfig": {"TargetGroups": [STABLE]}}),
     "use-annotation"),
    ("no target group", _split(), "use-annotation"),
    ("not JSON", "forward to checkout-stable", "use-annotation"),
    ("an action no backend uses", _split(STABLE), "http"),
])
def test_any_other_action_on_the_shared_load_balancer_is_refused(case, value, backend_port):
    body = _ingress(**{f"metadata|annotations|{ALB}actions.checkout": value})
    body["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {
        "name": backend_port}
    assert any(f"must not set annotation {ALB}actions.checkout" in m
               for m in violations("ingress", body)), case


@pytest.mark.parametrize(("service_type", "refused"), [
    (None, False), ("ClusterIP", False), ("LoadBalancer", True), ("NodePort", True)])
def test_a_service_cannot_make_a_load_balancer_or_node_port_of_its_own(service_type, refused):
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "checkout", "namespace": "checkout"},
               "spec": {"ports": [{"port": 80}], **({"type": service_type} if service_type else {})}}
    found = violations("ingress", service)
    assert found == ([f'Service "checkout" must not be of type {service_type}: expose it through '
                      "the shared load balancer (an Ingress, the golden path's exposure: public) "
                      "[ingress]"] if refused else [])


def test_the_ingress_constraint_reads_services_too(stack):
    (constraint,) = [c for c in _constraints(stack) if c.inputs["metadata"]["name"] == "ingress"]
    assert {"apiGroups": [""], "kinds": ["Service"]} in constraint.inputs["spec"]["match"]["kinds"]


def test_a_wildcard_host_covers_names_under_it_only():
    parameters = {**parameters_of("ingress"), "hosts": {"checkout": ["*.checkout.example.com"]}}
    ok = _ingress(**{"spec|rules": [{"host": "api.checkout.example.com", "http": {}}],
                     "spec|tls": [{"hosts": ["api.checkout.example.com"]}]})
    assert violations("ingress", ok, parameters) == []
    apex = _ingress(**{"spec|rules": [{"host": "checkout.example.com", "http": {}}],
                       "spec|tls": None})
    assert violations("ingress", apex, parameters)
    sibling = _ingress(**{"spec|rules": [{"host": "evilcheckout.example.com", "http": {}}],
                          "spec|tls": None})
    assert violations("ingress", sibling, parameters)


def test_an_image_no_policy_matches_is_denied_in_prod_explicitly(rendered):
    for name, evaluation in rendered.items():
        config_map = k8s_objects.rendered_object(evaluation, "policy-controller", "ConfigMap",
                                                 "config-policy-controller")
        expected = {"dev": "warn", "prod": "deny"}[name]
        assert config_map["data"] == {"no-match-policy": expected}, name


@pytest.mark.parametrize("on_template", [False, True])
def test_an_unconfined_apparmor_annotation_is_refused(on_template):
    annotation = {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
    found = violations("sandbox", wrap("Deployment", good_pod_spec(), annotation, on_template))
    assert found == ["annotation container.apparmor.security.beta.kubernetes.io/app must not be "
                     "unconfined [sandbox]"]


def test_sandbox_parameters_are_the_pod_security_standards_lists():
    from platform_facts import podsecurity

    parameters = parameters_of("sandbox")
    assert set(parameters["safeSysctls"]) == podsecurity.SAFE_SYSCTLS
    assert "nfs" not in parameters["volumeTypes"] and "persistentVolumeClaim" in \
        parameters["volumeTypes"]
    (message,) = [m for m in violations("sandbox", bad_object("Pod", lambda spec: spec.setdefault(
        "securityContext", {}).update(sysctls=[{"name": "net.core.somaxconn", "value": "1"}])))]
    assert message.startswith("the pod must not set sysctl net.core.somaxconn")


def test_the_config_knows_every_policy_by_its_id():
    from components.admission import ADMISSION_POLICY_IDS

    assert sorted(ADMISSION_POLICY_IDS) == sorted(BY_ID)


# -- the API server's own policies (ValidatingAdmissionPolicy, CEL) ----------------------------

def _cel_denials(obj: dict[str, Any], namespace_labels: dict[str, str]) -> list[str]:
    """What the API server would deny `obj` for under the platform's ValidatingAdmissionPolicies:
    each binding's namespace selector matched, each validation's CEL evaluated by a real CEL
    engine (cel-python) with `object` bound as the API server binds it; a false result denies
    with the validation's message."""
    import celpy

    from components.admission import native_policies
    from platform_facts.capacity import matches_selector

    env = celpy.Environment()
    denied = []
    for policy, binding in native_policies():
        selector = binding["spec"].get("matchResources", {}).get("namespaceSelector")
        if not matches_selector(selector, namespace_labels):
            continue
        assert binding["spec"]["validationActions"] == ["Deny"]
        rules = policy["spec"]["matchConstraints"]["resourceRules"]
        if not any(obj["kind"] == "Service" and "services" in r["resources"] for r in rules):
            continue
        for validation in policy["spec"]["validations"]:
            program = env.program(env.compile(validation["expression"]))
            if not program.evaluate({"object": celpy.json_to_cel(obj)}):
                denied.append(validation["message"])
    return denied


TEAM_NAMESPACE = {"platform.example.org/team": "checkout", "team": "checkout"}
PLATFORM_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
SERVICE_CASES = [
    # (case, spec, refused by Gatekeeper's ingress policy, refused by the API server in a team
    #  namespace, in a platform namespace)
    ("cluster-ip", {"ports": [{"port": 80}]}, False, False, False),
    ("cluster-ip-typed", {"type": "ClusterIP", "ports": [{"port": 80}]}, False, False, False),
    ("empty-external-ips", {"ports": [{"port": 80}], "externalIPs": []}, False, False, False),
    ("database-address", {"ports": [{"port": 5432}], "externalIPs": ["10.20.21.5"]},
     True, True, True),
    ("two-addresses", {"ports": [{"port": 443}], "externalIPs": ["10.0.0.1", "10.0.0.2"]},
     True, True, True),
    ("load-balancer", {"type": "LoadBalancer", "ports": [{"port": 80}]}, True, True, False),
    ("node-port", {"type": "NodePort", "ports": [{"port": 80}]}, True, True, False),
    ("external-name", {"type": "ExternalName", "externalName": "db.example.com"},
     False, False, False),
]


@pytest.mark.parametrize(("case", "spec", "by_gatekeeper", "in_team", "in_platform"),
                         SERVICE_CASES, ids=[c[0] for c in SERVICE_CASES])
def test_services_that_intercept_or_expose_are_refused_by_gatekeeper_and_the_api_server(
        case, spec, by_gatekeeper, in_team, in_platform):
    """The same cases on the Rego (regorus and OPA) and on the CEL the API server runs: the
    API server denies in every environment (Gatekeeper only warns in dev), and externalIPs in
    every namespace, the platform's included."""
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "checkout", "namespace": "checkout"}, "spec": spec}
    assert bool(violations("ingress", service)) is by_gatekeeper, case
    assert bool(_cel_denials(service, TEAM_NAMESPACE)) is in_team, case
    assert bool(_cel_denials(service, PLATFORM_NAMESPACE)) is in_platform, case
    if spec.get("externalIPs"):
        (message,) = _cel_denials(service, TEAM_NAMESPACE)
        assert "CVE-2020-8554" in message
        assert any("must not set externalIPs" in m for m in violations("ingress", service))


def test_both_stacks_deny_external_ips_natively_in_every_namespace(evaluations):
    """Dev and prod alike (not Gatekeeper's warn/deny): the policies and their Deny bindings
    are in both plans, bound to each policy by name; no platform chart renders a Service with
    externalIPs or a team-namespace selector the platform's namespaces would match."""
    for evaluation in evaluations.values():
        policies = {r.inputs["metadata"]["name"]: r for r in evaluation.of_type(
            "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy")}
        bindings = {r.inputs["metadata"]["name"]: r for r in evaluation.of_type(
            "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding")}
        assert set(policies) == set(bindings) == {
            "platform-no-external-ips", "platform-team-service-types"}
        for name, binding in bindings.items():
            assert binding.inputs["spec"]["policyName"] == name
            assert binding.inputs["spec"]["validationActions"] == ["Deny"]
        assert "matchResources" not in bindings["platform-no-external-ips"].inputs["spec"]


def test_no_platform_chart_renders_a_service_with_external_ips(rendered):
    for evaluation in rendered.values():
        for release in evaluation.rendered:
            for o in release.objects:
                if o.kind == "Service":
                    assert not (o.object.get("spec") or {}).get("externalIPs"), o.name


@pytest.mark.parametrize("kind", ["ServiceMonitor", "PodMonitor"])
@pytest.mark.parametrize("field", ["relabelings", "metricRelabelings"])
@pytest.mark.parametrize("label", ["namespace", "job", "__address__", "__scheme__",
                                   "__metrics_path__"])
def test_a_monitor_cannot_relabel_where_its_series_come_from(kind, field, label):
    """Every endpoint field of both monitor kinds, every protected label; the label just
    outside the set is admitted, and labelmap is refused as a whole."""
    endpoints = {"ServiceMonitor": "endpoints", "PodMonitor": "podMetricsEndpoints"}[kind]

    def monitor(config):
        return _monitor(kind, **{endpoints: [{"port": "http", field: [config]}]})

    (message,) = violations("monitor-scope", monitor({"targetLabel": label, "replacement": "x"}))
    assert f"{endpoints}[0].{field}[0] must not write {label}" in message
    assert violations("monitor-scope", monitor({"targetLabel": "tier", "replacement": "x"})) == []
    assert violations("monitor-scope", monitor({"targetLabel": f"{label}_x",
                                                "replacement": "x"})) == []
    (labelmap,) = violations("monitor-scope", monitor({"action": "LabelMap", "regex": "(.*)"}))
    assert "must not use action labelmap" in labelmap


def test_a_probe_cannot_relabel_where_its_series_come_from():
    probe = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Probe",
             "metadata": {"name": "p", "namespace": "checkout"},
             "spec": {"metricRelabelings": [{"targetLabel": "job", "replacement": "x"}],
                      "targets": {"staticConfig": {"static": ["a"], "relabelingConfigs": [
                          {"targetLabel": "namespace", "replacement": "payments"}]}}}}
    assert sorted(m.split(" must")[0] for m in violations("monitor-scope", probe)) == [
        'Probe "p" spec.metricRelabelings[0]',
        'Probe "p" spec.targets.staticConfig.relabelingConfigs[0]']


# -- team telemetry: alerts, canary analysis ---------------------------------------------------

def _rule(**rule) -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
            "metadata": {"name": "r", "namespace": "checkout"},
            "spec": {"groups": [{"name": "g", "rules": [rule]}]}}


def test_the_golden_paths_rules_analysis_and_rollout_pass_as_generated():
    for name in ("prometheusrule.yaml", "analysistemplate.yaml", "rollout.yaml"):
        (body,) = yaml.safe_load_all((REPO / "gitops/teams/checkout/checkout" / name).read_text())
        assert violations("team-telemetry", body) == [], name


@pytest.mark.parametrize(("case", "labels", "expected"), [
    ("own team, paging", {"team": "checkout", "severity": "critical"}, None),
    ("own team, ticket", {"team": "checkout", "severity": "warning"}, None),
    ("own team, info", {"team": "checkout", "severity": "info"}, None),
    ("pages as the platform", {"team": "platform", "severity": "critical"},
     'must carry team: "checkout"'),
    ("another team", {"team": "payments", "severity": "warning"}, 'must carry team: "checkout"'),
    ("no team (the default receiver)", {"severity": "critical"}, 'must carry team: "checkout"'),
    ("a severity nothing routes", {"team": "checkout", "severity": "page"},
     "must set severity to one of"),
    ("severity in another case", {"team": "checkout", "severity": "Critical"},
     "must set severity to one of"),
    ("another namespace", {"team": "checkout", "severity": "warning", "namespace": "payments"},
     'must not set namespace: "payments"'),
])
def test_a_teams_alert_speaks_for_its_team_only(case, labels, expected):
    found = violations("team-telemetry", _rule(alert="A", expr="vector(1)", labels=labels))
    if expected is None:
        assert found == [], case
    else:
        assert len(found) == 1 and expected in found[0], (case, found)


def test_a_teams_recording_rule_cannot_label_another_team():
    assert violations("team-telemetry", _rule(record="r:x", expr="vector(1)")) == []
    assert violations("team-telemetry", _rule(record="r:x", expr="vector(1)",
                                              labels={"team": "checkout"})) == []
    (message,) = violations("team-telemetry", _rule(record="r:x", expr="vector(1)",
                                                    labels={"team": "payments"}))
    assert 'must not label its series team: "payments"' in message


def _analysis(query: str) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": {"name": "a", "namespace": "checkout"},
            "spec": {"metrics": [{"name": "m", "provider": {"prometheus": {
                "address": "http://prometheus:9090", "query": query}}}]}}


@pytest.mark.parametrize(("query", "refused"), [
    ('sum(rate(http_requests_total{namespace="checkout",code=~"5.."}[5m]))', None),
    ('sum by (le, code) (rate(x_bucket{namespace="{{args.namespace}}"}[5m])) offset 5m', None),
    ('histogram_quantile(0.99, sum without (pod) (rate(x{ namespace = "checkout" }[2m])))',
     None),
    ('sum(rate(http_requests_total{code=~"5.."}[5m]))', "without namespace"),
    ('sum(rate(http_requests_total{namespace="payments"}[5m]))', "without namespace"),
    ('sum(rate(http_requests_total{namespace=~"checkout|payments"}[5m]))', "without namespace"),
    ('a{namespace="checkout"} / b{service="x"}', "without namespace"),
    ("sum(rate(http_requests_total[5m]))", "names http_requests_total without a selector"),
    ('up and on (job) up{namespace="checkout"}', "names up without a selector"),
])
def test_a_canary_analysis_reads_its_own_namespace_only(query, refused):
    found = violations("team-telemetry", _analysis(query))
    if refused is None:
        assert found == [], (query, found)
    else:
        assert found and all(refused in m or "without" in m for m in found), (query, found)
        assert any(refused in m for m in found), (query, found)


def test_a_rollout_passes_its_analysis_no_other_namespace():
    (rollout,) = yaml.safe_load_all(
        (REPO / "gitops/teams/checkout/checkout/rollout.yaml").read_text())
    args = rollout["spec"]["strategy"]["canary"]["analysis"]["args"]
    for arg in args:
        if arg["name"] == "namespace":
            arg["value"] = "payments"
    (message,) = violations("team-telemetry", rollout)
    assert 'passes namespace "payments" to its analysis' in message
    step = {"analysis": {"templates": [{"templateName": "t"}],
                         "args": [{"name": "namespace", "valueFrom": {"fieldRef": {
                             "fieldPath": "metadata.labels['x']"}}}]}}
    rollout["spec"]["strategy"]["canary"]["analysis"]["args"] = []
    rollout["spec"]["strategy"]["canary"]["steps"] = [step]
    (message,) = violations("team-telemetry", rollout)
    assert "strategy.canary.steps[0].analysis passes namespace" in message


@pytest.mark.parametrize(("drop", "refused"), [
    (["ALL"], False), (["ALL", "NET_RAW"], False), (["all"], True), (["All"], True),
    (["NET_RAW"], True), ([], True)])
def test_drop_must_be_exactly_all_as_pod_security_reads_it(drop, refused):
    spec = good_pod_spec()
    spec["containers"][0]["securityContext"]["capabilities"] = {"drop": drop}
    found = violations("drop-capabilities", wrap("Deployment", spec))
    assert bool(found) is refused, (drop, found)


@pytest.mark.parametrize(("add", "refused"), [
    (["NET_BIND_SERVICE"], False), (["net_bind_service"], False),
    (["CAP_NET_BIND_SERVICE"], False), (["SYS_ADMIN"], True), (["cap_sys_admin"], True)])
def test_added_capabilities_are_compared_as_the_runtime_reads_them(add, refused):
    spec = good_pod_spec()
    spec["containers"][0]["securityContext"]["capabilities"] = {"drop": ["ALL"], "add": add}
    parameters = {**parameters_of("drop-capabilities"), "allowedCapabilities": ["NET_BIND_SERVICE"]}
    found = violations("drop-capabilities", wrap("Deployment", spec), parameters)
    assert bool(found) is refused, (add, found)


@pytest.mark.parametrize(("service", "refused"), [
    ("checkout", False), ("checkout-stable", False), ("checkout-canary", False),
    ("checkout-admin", True), ("payments-stable", True), ("checkout-canary-x", True),
    ("", True)])
def test_a_canary_action_forwards_to_the_rollouts_own_services_only(service, refused):
    """The action named after the rollout's root Service may forward to it and its stable and
    canary Services, nothing else of the namespace."""
    group = {"ServiceName": service, "ServicePort": "80", "Weight": 10}
    body = _ingress(**{f"metadata|annotations|{ALB}actions.checkout": _split(group, STABLE)})
    found = violations("ingress", body)
    assert bool(found) is refused, (service, found)


HEX64 = "a" * 64


@pytest.mark.parametrize(("image", "refused"), [
    (f"{REGISTRY}checkout@sha256:{HEX64}", False),
    (f"{REGISTRY}checkout:1.2@sha256:{HEX64}", False),  # the kubelet pulls by the digest
    (f"{REGISTRY}checkout@sha256:{HEX64[:-1]}", True),  # 63 hex
    (f"{REGISTRY}checkout@sha256:{HEX64}0", True),  # 65
    (f"{REGISTRY}checkout@sha256:{HEX64.upper()}", True),  # not a digest as OCI writes one
    (f"{REGISTRY}checkout@sha256:{HEX64}:latest", True),
    (f"{REGISTRY}checkout:sha256-{HEX64}", True),  # a tag that looks like one
    (f"{REGISTRY}checkout@sha512:{'a' * 128}", True),
    (f"{REGISTRY}checkout:1.2", True),
])
def test_an_image_is_pinned_only_by_a_whole_sha256_digest(image, refused):
    body = bad_object("Deployment", _in_slot("containers", _set("image", image)))
    found = [m for m in violations("allowed-images", body)
             if "must be pinned by digest" in m and f'"{image}"' in m]
    assert bool(found) is refused, (image, found)


@pytest.mark.parametrize(("prefix", "refused"), [
    ("", False), ("evil.example.com/", True),
    (REGISTRY.rstrip("/") + ".evil.example.com/", True),  # the approved name as a prefix
])
def test_an_image_comes_from_an_approved_registry_exactly(prefix, refused):
    image = (f"{REGISTRY}checkout@sha256:{HEX64}" if not prefix
             else f"{prefix}checkout@sha256:{HEX64}")
    body = bad_object("Deployment", _in_slot("containers", _set("image", image)))
    found = [m for m in violations("allowed-images", body)
             if "approved registry" in m and f'"{image}"' in m]
    assert bool(found) is refused, (image, found)


# -- a team's images ship from its own CI only -------------------------------------------------

def _provenance(repository: str, predicate_type: str = "https://slsa.dev/provenance/v1"):
    """The in-toto statement service-ci.yml attests (its jq template), as cosign hands it to the
    policy."""
    return {"_type": "https://in-toto.io/Statement/v1", "predicateType": predicate_type,
            "subject": [{"name": "x", "digest": {"sha256": "a" * 64}}],
            "predicate": {"buildDefinition": {
                "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                "externalParameters": {"workflow": {
                    "ref": "refs/heads/main", "repository": repository,
                    "path": ".github/workflows/ci.yml"}}},
                "runDetails": {"builder": {"id": "https://github.com/actions/runner"}}}}


def _team_policy(evaluation):
    (policy,) = [r for r in evaluation.of_type(
        "kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy")
        if r.inputs["metadata"]["name"] == "built-by-checkout"]
    return policy.inputs["spec"]


@pytest.mark.parametrize(("repository", "compliant"), [
    ("https://github.com/example-org/checkout", True),
    ("https://github.com/example-org/payments", False),  # another team's CI
    ("https://github.com/example-org/checkout-fork", False),
    ("https://github.com/example-org/checkout/", False),
])
def test_a_teams_images_need_a_provenance_from_its_own_repository(evaluations, repository,
                                                                 compliant):
    """The policy cosign evaluates (package sigstore, isCompliant) on the statement, by OPA;
    it parses as Rego v1 and, through its future imports, as v0 (cosign's)."""
    spec = _team_policy(evaluations["prod"])
    assert spec["images"] == [{"glob": "111111111111.dkr.ecr.us-east-1.amazonaws.com/checkout**"}]
    (authority,) = spec["authorities"]
    assert authority["keyless"]["identities"] == [{
        "issuer": "https://token.actions.githubusercontent.com",
        "subjectRegExp": evaluations["prod"].config.security.image_signatures
        .keyless_subject_reg_exp}]
    (attestation,) = authority["attestations"]
    assert (attestation["name"], attestation["predicateType"]) == ("provenance", "slsaprovenance1")
    module = (("sigstore.rego", attestation["policy"]["data"]),)
    assert opa.query(module, "data.sigstore.isCompliant", _provenance(repository)) is compliant
    # Another predicate type (an SBOM posing as provenance) is not compliant either.
    assert opa.query(module, "data.sigstore.isCompliant", _provenance(
        "https://github.com/example-org/checkout", "https://spdx.dev/Document")) is False


def test_team_images_stay_in_approved_registries_with_one_owner(tmp_path, capsys):
    team = {"name": "checkout", "images": ["evil.example.com/checkout"],
            "buildRepositories": ["https://github.com/example-org/checkout"]}
    config = mutate(stack_config("prod"), "platform:teams", [team])
    assert "platform:teams[0].images: 'evil.example.com/checkout': is not in an approved " \
        "registry" in config_error(write_stack(tmp_path, config), capsys)
    mine = "111111111111.dkr.ecr.us-east-1.amazonaws.com/checkout"
    config = mutate(stack_config("prod"), "platform:teams", [
        {**team, "images": [mine]},
        {"name": "payments", "images": [mine + "-worker"],
         "buildRepositories": ["https://github.com/example-org/payments"]}])
    assert "is an image repository of team" in config_error(write_stack(tmp_path, config), capsys)
    config = mutate(stack_config("prod"), "platform:teams", [
        {"name": "checkout", "images": [mine]}])
    assert "platform:teams[0].buildRepositories: []: is empty while images are set" in \
        config_error(write_stack(tmp_path, config), capsys)


@pytest.mark.parametrize("v0", [True, False])
def test_the_provenance_policy_parses_as_cosign_reads_it(evaluations, v0):
    """cosign evaluates attestation policies as Rego v0; the module must mean the same there."""
    import regorus

    (attestation,) = _team_policy(evaluations["prod"])["authorities"][0]["attestations"]
    engine = regorus.Engine()
    engine.set_rego_v0(v0)
    engine.add_policy("sigstore.rego", attestation["policy"]["data"])
    for repository, compliant in (("https://github.com/example-org/checkout", True),
                                  ("https://github.com/example-org/payments", False)):
        engine.set_input_json(json.dumps(_provenance(repository)))
        result = json.loads(engine.eval_query_as_json("data.sigstore.isCompliant"))
        assert result["result"][0]["expressions"][0]["value"] is compliant
