"""The Pod Security Standards (Kubernetes 1.36, policy version `latest`): would Pod Security
admission refuse this pod in a namespace that enforces `baseline` or `restricted`?

One function per control, named as in the published standard
(https://kubernetes.io/docs/concepts/security/pod-security-standards/, read 2026-12-02; the
reference implementation is k8s.io/pod-security-admission/policy). Each returns the fields that
break it. Workloads are checked through their pod templates: the API server admits a Deployment
whose pods it will refuse (with a warning), so a refused template means pods that never start.
No maintained implementation of the standard runs offline here (the Gatekeeper library's
pod-security templates follow the older PodSecurityPolicy fields, not these levels); these
controls are tested one by one in tests/test_podsecurity.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

LEVELS = ("privileged", "baseline", "restricted")
LEVEL_LABEL = "pod-security.kubernetes.io/enforce"

BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"})
RESTRICTED_VOLUMES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim",
    "projected", "secret"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t",
                           "container_engine_t"})
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"

# Where a kind keeps its pod template (metadata + spec).
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Rollout": ("spec", "template"),
}


@dataclass(frozen=True)
class Finding:
    control: str  # the standard's name for the control, e.g. "Running as Non-root"
    field: str  # where, in the pod template, e.g. "spec.containers[0].securityContext.runAsNonRoot"
    problem: str

    def __str__(self) -> str:
        return f"{self.control}: {self.field} {self.problem}"


def pod_template(body: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """(path prefix, pod template) of a Pod or workload; None for other kinds."""
    path = TEMPLATE_PATHS.get(str(body.get("kind")))
    if path is None:
        return None
    node: Any = body
    for key in path:
        node = (node or {}).get(key) if isinstance(node, Mapping) else None
    return (".".join(path) + "." if path else ""), (node or {})


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for index, container in enumerate(spec.get(field) or ()):
            yield f"spec.{field}[{index}]", container


def _sc(node: Mapping[str, Any]) -> Mapping[str, Any]:
    return node.get("securityContext") or {}


Check = Callable[[Mapping[str, Any]], Iterator[tuple[str, str]]]  # template -> (field, problem)


# -- baseline -------------------------------------------------------------------------------

def host_process(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    spec = template.get("spec") or {}
    if (_sc(spec).get("windowsOptions") or {}).get("hostProcess"):
        yield "spec.securityContext.windowsOptions.hostProcess", "is true"
    for where, c in _containers(spec):
        if (_sc(c).get("windowsOptions") or {}).get("hostProcess"):
            yield f"{where}.securityContext.windowsOptions.hostProcess", "is true"


def host_namespaces(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    spec = template.get("spec") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            yield f"spec.{key}", "is true"


def privileged_containers(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for where, c in _containers(template.get("spec") or {}):
        if _sc(c).get("privileged"):
            yield f"{where}.securityContext.privileged", "is true"


def capabilities_baseline(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for where, c in _containers(template.get("spec") or {}):
        added = set((_sc(c).get("capabilities") or {}).get("add") or ()) - BASELINE_CAPABILITIES
        if added:
            yield f"{where}.securityContext.capabilities.add", f"adds {sorted(added)}"


def host_path_volumes(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for index, volume in enumerate((template.get("spec") or {}).get("volumes") or ()):
        if "hostPath" in volume:
            yield f"spec.volumes[{index}].hostPath", f"mounts {volume['hostPath'].get('path')}"


def host_ports(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for where, c in _containers(template.get("spec") or {}):
        for index, port in enumerate(c.get("ports") or ()):
            if port.get("hostPort"):
                yield f"{where}.ports[{index}].hostPort", f"is {port['hostPort']}"


def app_armor(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    for key, value in annotations.items():
        if key.startswith(APPARMOR_PREFIX) and value != "runtime/default" and not str(
                value).startswith("localhost/"):
            yield f"metadata.annotations[{key}]", f"is {value!r}"
    spec = template.get("spec") or {}
    for where, node in [("spec", spec), *_containers(spec)]:
        profile = (_sc(node).get("appArmorProfile") or {}).get("type")
        if profile is not None and profile not in ("RuntimeDefault", "Localhost"):
            yield f"{where}.securityContext.appArmorProfile.type", f"is {profile!r}"


def selinux(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    spec = template.get("spec") or {}
    for where, node in [("spec", spec), *_containers(spec)]:
        options = _sc(node).get("seLinuxOptions") or {}
        if options.get("type", "") not in SELINUX_TYPES:
            yield f"{where}.securityContext.seLinuxOptions.type", f"is {options['type']!r}"
        for key in ("user", "role"):
            if options.get(key):
                yield f"{where}.securityContext.seLinuxOptions.{key}", "is set"


def proc_mount(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for where, c in _containers(template.get("spec") or {}):
        mount = _sc(c).get("procMount")
        if mount not in (None, "Default"):
            yield f"{where}.securityContext.procMount", f"is {mount!r}"


def seccomp_baseline(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    spec = template.get("spec") or {}
    for where, node in [("spec", spec), *_containers(spec)]:
        if (_sc(node).get("seccompProfile") or {}).get("type") == "Unconfined":
            yield f"{where}.securityContext.seccompProfile.type", "is 'Unconfined'"


def sysctls(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for index, sysctl in enumerate(_sc(template.get("spec") or {}).get("sysctls") or ()):
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"spec.securityContext.sysctls[{index}]", f"sets {sysctl.get('name')}"


# -- restricted -----------------------------------------------------------------------------

def volume_types(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for index, volume in enumerate((template.get("spec") or {}).get("volumes") or ()):
        kinds = set(volume) - {"name"} - RESTRICTED_VOLUMES
        if kinds:
            yield f"spec.volumes[{index}]", f"is of type {sorted(kinds)}"


def privilege_escalation(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for where, c in _containers(template.get("spec") or {}):
        if _sc(c).get("allowPrivilegeEscalation") is not False:
            yield f"{where}.securityContext.allowPrivilegeEscalation", "must be false"


def running_as_non_root(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    spec = template.get("spec") or {}
    pod = _sc(spec).get("runAsNonRoot")
    if pod is False:
        yield "spec.securityContext.runAsNonRoot", "is false"
    for where, c in _containers(spec):
        own = _sc(c).get("runAsNonRoot")
        if own is False or (own is None and pod is not True):
            yield f"{where}.securityContext.runAsNonRoot", "must be true (here or for the pod)"


def running_as_non_root_user(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    spec = template.get("spec") or {}
    for where, node in [("spec", spec), *_containers(spec)]:
        if _sc(node).get("runAsUser") == 0:
            yield f"{where}.securityContext.runAsUser", "is 0"


def seccomp_restricted(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    spec = template.get("spec") or {}
    allowed = ("RuntimeDefault", "Localhost")
    pod = (_sc(spec).get("seccompProfile") or {}).get("type")
    if pod is not None and pod not in allowed:
        yield "spec.securityContext.seccompProfile.type", f"is {pod!r}"
    for where, c in _containers(spec):
        own = (_sc(c).get("seccompProfile") or {}).get("type")
        if (own if own is not None else pod) not in allowed:
            yield (f"{where}.securityContext.seccompProfile.type",
                   "must be RuntimeDefault or Localhost (here or for the pod)")


def capabilities_restricted(template: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for where, c in _containers(template.get("spec") or {}):
        capabilities = _sc(c).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or ()):
            yield f"{where}.securityContext.capabilities.drop", "must include ALL"
        added = set(capabilities.get("add") or ()) - {"NET_BIND_SERVICE"}
        if added:
            yield (f"{where}.securityContext.capabilities.add",
                   f"adds {sorted(added)} (only NET_BIND_SERVICE)")


BASELINE: tuple[tuple[str, Check], ...] = (
    ("HostProcess", host_process),
    ("Host Namespaces", host_namespaces),
    ("Privileged Containers", privileged_containers),
    ("Capabilities", capabilities_baseline),
    ("HostPath Volumes", host_path_volumes),
    ("Host Ports", host_ports),
    ("AppArmor", app_armor),
    ("SELinux", selinux),
    ("/proc Mount Type", proc_mount),
    ("Seccomp", seccomp_baseline),
    ("Sysctls", sysctls),
)
RESTRICTED: tuple[tuple[str, Check], ...] = (
    ("Volume Types", volume_types),
    ("Privilege Escalation", privilege_escalation),
    ("Running as Non-root", running_as_non_root),
    ("Running as Non-root user", running_as_non_root_user),
    ("Seccomp", seccomp_restricted),
    ("Capabilities", capabilities_restricted),
)


def controls(level: str) -> tuple[tuple[str, Check], ...]:
    if level not in LEVELS:
        raise ValueError(f"Pod Security level {level!r}: allowed {', '.join(LEVELS)}")
    return {"privileged": (), "baseline": BASELINE, "restricted": BASELINE + RESTRICTED}[level]


def findings(template: Mapping[str, Any], level: str) -> list[Finding]:
    """What Pod Security `level` refuses in a pod template (metadata + spec); [] if admitted."""
    return [Finding(name, field, problem) for name, check in controls(level)
            for field, problem in check(template)]


def violations(spec: Mapping[str, Any], level: str) -> list[str]:
    """Findings for a bare pod spec, as lines."""
    return [str(f) for f in findings({"spec": spec}, level)]
