"""Pod Security admission: the standard's controls one by one, and the `pod-security-admission`
policy over the rendered platform (the shipped stacks pass; a seeded defect is refused)."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from platform_facts import podsecurity
from platformctl.crossguard import check_evaluation

GOOD = {
    "metadata": {"annotations": {}},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "config", "configMap": {"name": "c"}}],
        "containers": [{"name": "app", "ports": [{"containerPort": 8080}], "securityContext": {
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    },
}


_UNSET = object()


def _set(template, path, value):
    """`template` with one field set in place (dotted path, [n] for a list index; _UNSET takes
    it out)."""
    node = template
    keys = path.replace("[", ".[").split(".")
    for key, following in zip(keys, keys[1:] + [None], strict=True):
        index = int(key[1:-1]) if key.startswith("[") else key
        if following is None:
            if value is _UNSET:
                node.pop(index, None)
            else:
                node[index] = value
        else:
            if not isinstance(index, int) and index not in node:
                node[index] = {}
            node = node[index]
    return template


def _with(path: str, value):
    """GOOD with one field set (dotted path, [n] for a list index)."""
    return _set(copy.deepcopy(GOOD), path, value)


# (control, level it belongs to, a field that breaks it, the bad value)
CASES = [
    ("HostProcess", "baseline", "spec.securityContext.windowsOptions", {"hostProcess": True}),
    ("Host Namespaces", "baseline", "spec.hostNetwork", True),
    ("Host Namespaces", "baseline", "spec.hostPID", True),
    ("Privileged Containers", "baseline", "spec.containers[0].securityContext.privileged", True),
    ("Capabilities", "baseline", "spec.containers[0].securityContext.capabilities",
     {"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
    ("HostPath Volumes", "baseline", "spec.volumes[0]", {"name": "h", "hostPath": {"path": "/"}}),
    ("Host Ports", "baseline", "spec.containers[0].ports[0]", {"containerPort": 80, "hostPort": 80}),
    ("AppArmor", "baseline", "metadata.annotations",
     {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}),
    ("SELinux", "baseline", "spec.securityContext.seLinuxOptions", {"type": "spc_t"}),
    ("/proc Mount Type", "baseline", "spec.containers[0].securityContext.procMount", "Unmasked"),
    ("Seccomp", "baseline", "spec.securityContext.seccompProfile", {"type": "Unconfined"}),
    ("Sysctls", "baseline", "spec.securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"}]),
    ("Volume Types", "restricted", "spec.volumes[0]", {"name": "n", "nfs": {"server": "x"}}),
    ("Privilege Escalation", "restricted",
     "spec.containers[0].securityContext.allowPrivilegeEscalation", True),
    ("Running as Non-root", "restricted", "spec.securityContext.runAsNonRoot", None),
    ("Running as Non-root user", "restricted", "spec.containers[0].securityContext.runAsUser", 0),
    ("Seccomp", "restricted", "spec.securityContext.seccompProfile", None),
    ("Capabilities", "restricted", "spec.containers[0].securityContext.capabilities",
     {"drop": ["NET_RAW"]}),
]


def test_the_good_template_is_admitted_at_every_level():
    for level in podsecurity.LEVELS:
        assert podsecurity.findings(GOOD, level) == []


@pytest.mark.parametrize(("control", "level", "field", "value"), CASES,
                         ids=[f"{c[1]}:{c[0]}:{c[2].rsplit('.', 1)[-1]}" for c in CASES])
def test_each_control_refuses_what_the_standard_refuses(control, level, field, value):
    template = _with(field, value)
    found = podsecurity.findings(template, "restricted")
    assert control in {f.control for f in found}, found
    # Each finding names the field; a restricted-only control is not a baseline finding.
    assert all(f.field.startswith(("spec.", "metadata.")) for f in found)
    baseline = {f.control for f in podsecurity.findings(template, "baseline")}
    assert (control in baseline) == (level == "baseline") or control in {"Seccomp", "Capabilities"}
    assert podsecurity.findings(template, "privileged") == []


def test_only_net_bind_service_may_be_added_in_restricted():
    template = _with("spec.containers[0].securityContext.capabilities",
                     {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
    assert podsecurity.findings(template, "restricted") == []
    template["spec"]["containers"][0]["securityContext"]["capabilities"]["add"].append("CHOWN")
    assert [f.control for f in podsecurity.findings(template, "baseline")] == []
    assert [f.control for f in podsecurity.findings(template, "restricted")] == ["Capabilities"]


def test_a_container_may_not_undo_the_pods_non_root():
    template = _with("spec.containers[0].securityContext.runAsNonRoot", False)
    (finding,) = podsecurity.findings(template, "restricted")
    assert finding.field == "spec.containers[0].securityContext.runAsNonRoot"


def test_workloads_are_checked_through_their_pod_templates():
    for kind, wrap in (("Deployment", lambda t: {"spec": {"template": t}}),
                       ("CronJob", lambda t: {"spec": {"jobTemplate": {"spec": {"template": t}}}}),
                       ("Pod", lambda t: t)):
        prefix, template = podsecurity.pod_template({"kind": kind, **wrap(GOOD)})
        assert template["spec"] == GOOD["spec"]
    assert podsecurity.pod_template({"kind": "ConfigMap"}) is None


# -- the policy over the rendered platform ------------------------------------------------------

def test_every_pod_of_the_shipped_stacks_is_admitted(rendered):
    for evaluation in rendered.values():
        report = check_evaluation(evaluation)
        assert report.of("pod-security-admission") == []
        assert report.evaluated("pod-security-admission")


def test_without_rendered_objects_the_check_is_not_evaluated(evaluations):
    report = check_evaluation(dataclasses.replace(evaluations["dev"], rendered=[]))
    assert [n.reason for n in report.not_evaluated if n.policy == "pod-security-admission"] == [
        "the objects inside the Helm releases were not rendered for this run; "
        "`platformctl review` renders them with helm"]
    assert report.of("pod-security-admission") == []


def test_a_pod_without_run_as_non_root_in_a_restricted_namespace_is_refused(rendered):
    prod = rendered["prod"]
    releases = []
    for release in prod.rendered:
        if release.chart.name == "policy-controller":
            objects = []
            for o in release.objects:
                body = copy.deepcopy(o.object)
                if o.kind == "Deployment":
                    del body["spec"]["template"]["spec"]["containers"][0]["securityContext"][
                        "runAsNonRoot"]
                    del body["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
                objects.append(dataclasses.replace(o, object=body))
            release = dataclasses.replace(release, objects=objects)
        releases.append(release)
    report = check_evaluation(dataclasses.replace(prod, rendered=releases))
    (verdict,) = report.of("pod-security-admission")
    assert verdict.enforcement == "mandatory"
    assert verdict.resource_type == "kubernetes:helm.sh/v3:Release"
    assert verdict.resource_name == "prod-policy-controller"
    assert ("Deployment cosign-system/policy-controller-webhook (policy-controller 0.10.6) would "
            "have its pods refused by Pod Security 'restricted' in namespace cosign-system: "
            "Running as Non-root: spec.template.spec.containers[0].securityContext.runAsNonRoot "
            "must be true") in verdict.message


# -- each control's edge, in every kind of container -----------------------------------------

CONTAINER_KINDS = ("containers", "initContainers", "ephemeralContainers")


def _everywhere():
    """GOOD with a compliant init container and ephemeral container beside the app."""
    template = copy.deepcopy(GOOD)
    app = template["spec"]["containers"][0]
    template["spec"]["initContainers"] = [{**copy.deepcopy(app), "name": "init", "ports": []}]
    template["spec"]["ephemeralContainers"] = [{**copy.deepcopy(app), "name": "debug",
                                                "ports": []}]
    return template


# (level, control, path with {c} for each kind of container, just inside, just outside)
EDGES = [
    ("baseline", "HostProcess", "spec.{c}[0].securityContext.windowsOptions",
     {"hostProcess": False}, {"hostProcess": True}),
    ("baseline", "HostProcess", "spec.securityContext.windowsOptions",
     {"hostProcess": False}, {"hostProcess": True}),
    ("baseline", "Host Namespaces", "spec.hostIPC", False, True),
    ("baseline", "Host Namespaces", "spec.hostPID", False, True),
    ("baseline", "Host Namespaces", "spec.hostNetwork", False, True),
    ("baseline", "Privileged Containers", "spec.{c}[0].securityContext.privileged", False, True),
    ("baseline", "Capabilities", "spec.{c}[0].securityContext.capabilities.add",
     ["SYS_CHROOT"], ["SYS_ADMIN"]),
    ("baseline", "HostPath Volumes", "spec.volumes[0]", {"name": "v", "emptyDir": {}},
     {"name": "v", "hostPath": {"path": "/tmp"}}),
    ("baseline", "Host Ports", "spec.{c}[0].ports", [{"containerPort": 80, "hostPort": 0}],
     [{"containerPort": 80, "hostPort": 1}]),
    ("baseline", "AppArmor", "metadata.annotations",
     {"container.apparmor.security.beta.kubernetes.io/app": "localhost/profile"},
     {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}),
    ("baseline", "AppArmor", "spec.{c}[0].securityContext.appArmorProfile",
     {"type": "Localhost"}, {"type": "Unconfined"}),
    ("baseline", "AppArmor", "spec.securityContext.appArmorProfile",
     {"type": "RuntimeDefault"}, {"type": "Unconfined"}),
    ("baseline", "SELinux", "spec.{c}[0].securityContext.seLinuxOptions",
     {"type": "container_init_t", "level": "s0:c1"}, {"type": "spc_t"}),
    ("baseline", "SELinux", "spec.securityContext.seLinuxOptions",
     {"type": "container_t"}, {"type": "container_t", "user": "system_u"}),
    ("baseline", "SELinux", "spec.{c}[0].securityContext.seLinuxOptions",
     {"level": "s0"}, {"role": "sysadm_r"}),
    ("baseline", "/proc Mount Type", "spec.{c}[0].securityContext.procMount",
     "Default", "Unmasked"),
    ("baseline", "Seccomp", "spec.{c}[0].securityContext.seccompProfile",
     {"type": "Localhost", "localhostProfile": "p.json"}, {"type": "Unconfined"}),
    ("baseline", "Sysctls", "spec.securityContext.sysctls",
     [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}],
     [{"name": "net.core.somaxconn", "value": "1024"}]),
    ("restricted", "Volume Types", "spec.volumes[0]",
     {"name": "v", "projected": {"sources": []}}, {"name": "v", "awsElasticBlockStore": {}}),
    ("restricted", "Privilege Escalation",
     "spec.{c}[0].securityContext.allowPrivilegeEscalation", False, _UNSET),
    ("restricted", "Running as Non-root", "spec.{c}[0].securityContext.runAsNonRoot",
     True, False),
    ("restricted", "Running as Non-root user", "spec.{c}[0].securityContext.runAsUser", 1, 0),
    ("restricted", "Running as Non-root user", "spec.securityContext.runAsUser", 1, 0),
    ("restricted", "Seccomp", "spec.{c}[0].securityContext.seccompProfile",
     {"type": "RuntimeDefault"}, {"type": "Unconfined"}),
    ("restricted", "Capabilities", "spec.{c}[0].securityContext.capabilities",
     {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}, {"drop": ["ALL"], "add": ["CHOWN"]}),
    ("restricted", "Capabilities", "spec.{c}[0].securityContext.capabilities",
     {"drop": ["NET_RAW", "ALL"]}, {"drop": ["NET_RAW"]}),
]


def _edge_cases():
    for level, control, path, inside, outside in EDGES:
        kinds = CONTAINER_KINDS if "{c}" in path else (None,)
        for kind in kinds:
            where = path.format(c=kind) if kind else path
            yield pytest.param(level, control, where, inside, outside,
                               id=f"{level}:{control}:{where}")


@pytest.mark.parametrize(("level", "control", "path", "inside", "outside"), list(_edge_cases()))
def test_each_control_admits_just_inside_and_refuses_just_outside(level, control, path, inside,
                                                                  outside):
    admitted = _set(_everywhere(), path, inside)
    assert [f for f in podsecurity.findings(admitted, level) if f.control == control] == []
    refused = _set(_everywhere(), path, outside)
    found = [f for f in podsecurity.findings(refused, level) if f.control == control]
    assert found, (control, path)
    # The finding names the container (or pod field) that broke it.
    container = path.split(".")[1] if path.startswith("spec.") and "[0]" in path else None
    if container in CONTAINER_KINDS:
        assert all(f.field.startswith(f"spec.{container}[0]") for f in found), found
    # A restricted control is not a baseline finding; nothing is refused when privileged.
    if level == "restricted" and control not in ("Seccomp", "Capabilities"):
        assert not [f for f in podsecurity.findings(refused, "baseline") if f.control == control]
    assert podsecurity.findings(refused, "privileged") == []


def test_the_pods_non_root_covers_every_container_unless_one_says_otherwise():
    template = _everywhere()
    for kind in CONTAINER_KINDS:
        assert "runAsNonRoot" not in template["spec"][kind][0].get("securityContext", {})
    assert podsecurity.findings(template, "restricted") == []
    _set(template, "spec.securityContext.runAsNonRoot", _UNSET)
    fields = {f.field for f in podsecurity.findings(template, "restricted")}
    assert fields == {f"spec.{k}[0].securityContext.runAsNonRoot" for k in CONTAINER_KINDS}
