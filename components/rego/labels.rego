# Objects carry the required labels (team, app), on themselves and on their pod template, so
# cost, alerts and ownership can be traced from any pod.
package k8splatformlabels

import data.lib.platform

policy := "required-labels"

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	label := input.parameters.labels[_]
	not non_empty(object.get(input.review.object.metadata, "labels", {}), label)
	msg := sprintf("%s %q must have the label %q [%s]",
		[input.review.object.kind, input.review.object.metadata.name, label, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	input.review.object.kind != "Pod"
	meta := platform.pod_metadata(input.review.object)
	label := input.parameters.labels[_]
	not non_empty(object.get(meta, "labels", {}), label)
	msg := sprintf("the pod template of %s %q must have the label %q [%s]",
		[input.review.object.kind, input.review.object.metadata.name, label, policy])
}

non_empty(labels, key) if {
	labels[key] != ""
}
