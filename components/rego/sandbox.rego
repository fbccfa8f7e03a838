# Pods keep the container sandbox: no Unconfined seccomp or AppArmor profile, no Unmasked /proc,
# only the sysctls the Pod Security Standards call safe, only volume types that hold no host or
# network storage of their own (no nfs, iscsi, ...), no Windows host processes. Pod Security
# `restricted` enforces these in team namespaces already; this is the second layer, for a
# namespace whose label is changed and for what Pod Security admits with a warning only.
package k8splatformsandbox

import data.lib.platform

policy := "sandbox"

spec := platform.pod_spec(input.review.object)

pod_security := object.get(spec, "securityContext", {})

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	pod_security.seccompProfile.type == "Unconfined"
	msg := sprintf("the pod must not set seccompProfile.type: Unconfined [%s]", [policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	entry.container.securityContext.seccompProfile.type == "Unconfined"
	msg := sprintf("%s must not set seccompProfile.type: Unconfined [%s]",
		[platform.describe(entry), policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	pod_security.appArmorProfile.type == "Unconfined"
	msg := sprintf("the pod must not set appArmorProfile.type: Unconfined [%s]", [policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	entry.container.securityContext.appArmorProfile.type == "Unconfined"
	msg := sprintf("%s must not set appArmorProfile.type: Unconfined [%s]",
		[platform.describe(entry), policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	value := platform.annotation_sets[_][key]
	startswith(key, "container.apparmor.security.beta.kubernetes.io/")
	value == "unconfined"
	msg := sprintf("annotation %s must not be unconfined [%s]", [key, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	entry.container.securityContext.procMount == "Unmasked"
	msg := sprintf("%s must not set procMount: Unmasked [%s]", [platform.describe(entry), policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	sysctl := pod_security.sysctls[_]
	not safe_sysctl(sysctl.name)
	msg := sprintf("the pod must not set sysctl %s; allowed: %v [%s]",
		[sysctl.name, input.parameters.safeSysctls, policy])
}

safe_sysctl(name) if {
	input.parameters.safeSysctls[_] == name
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	volume := spec.volumes[_]
	kind := object.keys(volume)[_]
	kind != "name"
	not allowed_volume(kind)
	msg := sprintf("volume %q must not be of type %s; allowed: %v [%s]",
		[volume.name, kind, input.parameters.volumeTypes, policy])
}

allowed_volume(kind) if {
	input.parameters.volumeTypes[_] == kind
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	pod_security.windowsOptions.hostProcess == true
	msg := sprintf("the pod must not run as a Windows host process [%s]", [policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	entry.container.securityContext.windowsOptions.hostProcess == true
	msg := sprintf("%s must not run as a Windows host process [%s]",
		[platform.describe(entry), policy])
}
