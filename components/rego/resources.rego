# Containers and init containers request CPU and memory and limit memory, so the scheduler can
# place them and one leak cannot starve a node. (Ephemeral containers cannot have resources.)
package k8splatformresources

import data.lib.platform

policy := "resources"

required := [["requests", "cpu"], ["requests", "memory"], ["limits", "memory"]]

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	entry.field != "ephemeralContainers"
	path := required[_]
	not entry.container.resources[path[0]][path[1]]
	msg := sprintf("%s must set resources.%s.%s [%s]",
		[platform.describe(entry), path[0], path[1], policy])
}
