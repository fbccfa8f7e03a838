# Containers drop ALL Linux capabilities and add back only the allowed ones.
package k8splatformcapabilities

import data.lib.platform

policy := "drop-capabilities"

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	# Empty when `drop` (or the whole securityContext) is missing. Exactly `ALL`, as Pod
	# Security's restricted level compares it: `all` would pass here and fail there.
	dropped := {c | c := entry.container.securityContext.capabilities.drop[_]}
	not dropped.ALL
	msg := sprintf("%s must drop ALL capabilities (securityContext.capabilities.drop: [ALL]) [%s]",
		[platform.describe(entry), policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	# Names as the runtime reads them: any case, with or without the CAP_ prefix.
	allowed := {normal(c) | c := object.get(input.parameters, "allowedCapabilities", [])[_]}
	added := {normal(c) | c := entry.container.securityContext.capabilities.add[_]}
	extra := added - allowed
	count(extra) > 0
	msg := sprintf("%s adds capabilities %v; allowed: %v [%s]",
		[platform.describe(entry), sort(extra), sort(allowed), policy])
}

normal(name) := trim_prefix(upper(name), "CAP_")
