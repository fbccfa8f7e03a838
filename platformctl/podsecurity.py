"""Pod Security Standards (Kubernetes 1.36, `latest`): would the API server's Pod Security
admission refuse this pod in a namespace enforcing `baseline` or `restricted`?

The checks are those of https://kubernetes.io/docs/concepts/security/pod-security-standards/
(the `k8s.io/pod-security-admission` policies), applied to a pod spec; workloads are checked
through their pod templates, as the admission controller warns for them and refuses their pods.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

LEVELS = ("privileged", "baseline", "restricted")

BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"})
RESTRICTED_VOLUMES = frozenset({
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret", "image"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t",
                           "container_engine_t"})
WORKLOAD_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
                  "ReplicationController", "Rollout")


def pod_spec(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a Pod or of a workload's pod template (None for other kinds)."""
    kind, spec = body.get("kind"), body.get("spec") or {}
    if kind not in WORKLOAD_KINDS:
        return None
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(field) or ():
            yield f"{field[:-1]} {c.get('name')}", c


def _baseline(spec: Mapping[str, Any]) -> Iterator[str]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            yield f"{key}=true"
    pod_sc = spec.get("securityContext") or {}
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess"):
        yield "pod windowsOptions.hostProcess=true"
    for volume in spec.get("volumes") or ():
        if "hostPath" in volume:
            yield f"hostPath volume {volume.get('name')}"
    for sysctl in pod_sc.get("sysctls") or ():
        if sysctl.get("name") not in SAFE_SYSCTLS:
            yield f"sysctl {sysctl.get('name')}"
    profiles = [("pod", pod_sc)] + [(n, c.get("securityContext") or {}) for n, c in _containers(spec)]
    for where, sc in profiles:
        if (sc.get("seccompProfile") or {}).get("type") == "Unconfined":
            yield f"{where}: seccompProfile Unconfined"
        if (sc.get("appArmorProfile") or {}).get("type") == "Unconfined":
            yield f"{where}: appArmorProfile Unconfined"
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            yield f"{where}: seLinuxOptions {selinux}"
    for where, c in _containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            yield f"{where}: privileged"
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            yield f"{where}: windowsOptions.hostProcess=true"
        added = set((sc.get("capabilities") or {}).get("add") or ()) - BASELINE_CAPABILITIES
        if added:
            yield f"{where}: capabilities.add {sorted(added)}"
        if sc.get("procMount", "Default") != "Default":
            yield f"{where}: procMount {sc['procMount']}"
        for port in c.get("ports") or ():
            if port.get("hostPort"):
                yield f"{where}: hostPort {port['hostPort']}"


def _restricted(spec: Mapping[str, Any]) -> Iterator[str]:
    for volume in spec.get("volumes") or ():
        kinds = set(volume) - {"name"}
        if kinds and not kinds <= RESTRICTED_VOLUMES:
            yield f"volume {volume.get('name')} of type {sorted(kinds - RESTRICTED_VOLUMES)}"
    pod_sc = spec.get("securityContext") or {}
    if pod_sc.get("runAsUser") == 0:
        yield "pod runAsUser=0"
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    for where, c in _containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            yield f"{where}: allowPrivilegeEscalation must be false"
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            yield f"{where}: runAsNonRoot must be true (pod or container)"
        if sc.get("runAsUser") == 0:
            yield f"{where}: runAsUser=0"
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            yield f"{where}: seccompProfile must be RuntimeDefault or Localhost (pod or container)"
        capabilities = sc.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or ()):
            yield f"{where}: capabilities must drop ALL"
        added = set(capabilities.get("add") or ()) - {"NET_BIND_SERVICE"}
        if added:
            yield f"{where}: capabilities.add {sorted(added)} (only NET_BIND_SERVICE)"


def violations(spec: Mapping[str, Any], level: str) -> list[str]:
    """Why Pod Security `level` would refuse a pod with this spec ([] if admitted)."""
    if level not in LEVELS:
        raise ValueError(f"Pod Security level {level!r}: allowed {', '.join(LEVELS)}")
    found: list[str] = []
    if level in ("baseline", "restricted"):
        found += _baseline(spec)
    if level == "restricted":
        found += _restricted(spec)
    return found
