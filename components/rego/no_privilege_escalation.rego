# Containers cannot gain more privileges than their parent process: allowPrivilegeEscalation is
# set to false explicitly (its default is true).
package k8splatformnoprivilegeescalation

import data.lib.platform

policy := "no-privilege-escalation"

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	not entry.container.securityContext.allowPrivilegeEscalation == false
	msg := sprintf("%s must set securityContext.allowPrivilegeEscalation: false [%s]",
		[platform.describe(entry), policy])
}
