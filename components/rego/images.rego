# Images come only from the approved registries and, where required (prod), by digest: a tag can
# be moved to other bytes, a digest cannot.
package k8splatformimages

import data.lib.platform

policy := "allowed-images"

approved(image) if {
	startswith(image, input.parameters.registries[_])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := platform.containers[_]
	not approved(entry.container.image)
	msg := sprintf("%s image %q is not from an approved registry; allowed: %v [%s]",
		[platform.describe(entry), entry.container.image, input.parameters.registries, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	input.parameters.requireDigest == true
	entry := platform.containers[_]
	not regex.match(`@sha256:[a-f0-9]{64}$`, entry.container.image)
	msg := sprintf("%s image %q must be pinned by digest (name@sha256:...) [%s]",
		[platform.describe(entry), entry.container.image, policy])
}
