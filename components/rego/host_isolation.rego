# Pods stay out of the node: no host namespaces, hostPath volumes, host ports or privileged
# containers.
package k8splatformhostisolation

import data.lib.platform

policy := "host-isolation"

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	spec := platform.pod_spec(input.review.object)
	field := ["hostNetwork", "hostPID", "hostIPC"][_]
	spec[field] == true
	msg := sprintf("the pod must not set %s: true [%s]", [field, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	volume := platform.pod_spec(input.review.object).volumes[_]
	volume.hostPath
	msg := sprintf("volume %q must not be a hostPath [%s]", [volume.name, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	entry.container.securityContext.privileged == true
	msg := sprintf("%s must not be privileged [%s]", [platform.describe(entry), policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	port := entry.container.ports[_]
	port.hostPort
	msg := sprintf("%s must not bind host port %v [%s]",
		[platform.describe(entry), port.hostPort, policy])
}
