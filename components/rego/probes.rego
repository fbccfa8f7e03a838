# Long-running workloads (Deployments, Rollouts) declare readiness and liveness probes on every
# container, so rollouts wait for ready pods and hung ones are restarted.
package k8splatformprobes

import data.lib.platform

policy := "probes"

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	entry.field == "containers"
	probe := ["readinessProbe", "livenessProbe"][_]
	not entry.container[probe]
	msg := sprintf("%s must have a %s [%s]", [platform.describe(entry), probe, policy])
}
