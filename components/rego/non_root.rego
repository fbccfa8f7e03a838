# Containers run as a non-root user: runAsNonRoot true (the container's, else the pod's) and no
# explicit runAsUser 0.
package k8splatformnonroot

import data.lib.platform

policy := "non-root"

security_value(entry, key) := value if {
	value := entry.container.securityContext[key]
}

security_value(entry, key) := value if {
	not has_key(object.get(entry.container, "securityContext", {}), key)
	value := platform.pod_spec(input.review.object).securityContext[key]
}

has_key(obj, key) if {
	_ = obj[key]
}

# A rule of its own, negated below: OPA evaluates a call inside `not f(x) == true` before the
# `not`, so with runAsNonRoot set nowhere (f undefined) that body fails and nothing is denied.
run_as_non_root(entry) if {
	security_value(entry, "runAsNonRoot") == true
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	not run_as_non_root(entry)
	msg := sprintf("%s must set securityContext.runAsNonRoot: true (or the pod must) [%s]",
		[platform.describe(entry), policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	security_value(entry, "runAsUser") == 0
	msg := sprintf("%s runs as user 0 (root) [%s]", [platform.describe(entry), policy])
}
