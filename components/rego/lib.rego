# Shared by every platform ConstraintTemplate (Gatekeeper `libs`, in Rego v1: the templates'
# `code` declares the version, and Gatekeeper's OPA parses them so).
# What an admission request's object holds, however it is wrapped, and whether a policy is
# exempted for it by an entry of the stack config that has not expired.
package lib.platform

# Kinds whose pods come from `spec.template` (Rollout is Argo Rollouts'; a Rollout that points
# at a Deployment with `workloadRef` instead is checked through that Deployment).
template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
	"ReplicationController", "Rollout"}

pod_spec(obj) := spec if {
	obj.kind == "Pod"
	spec := obj.spec
}

pod_spec(obj) := spec if {
	template_kinds[obj.kind]
	spec := obj.spec.template.spec
}

pod_spec(obj) := spec if {
	obj.kind == "CronJob"
	spec := obj.spec.jobTemplate.spec.template.spec
}

# Every container of the object under review, with the field that holds it.
containers contains entry if {
	spec := pod_spec(input.review.object)
	field := ["containers", "initContainers", "ephemeralContainers"][_]
	container := spec[field][_]
	entry := {"field": field, "container": container}
}

# The pod's metadata: the object's own for a Pod, the template's for a workload.
pod_metadata(obj) := meta if {
	obj.kind == "Pod"
	meta := obj.metadata
}

pod_metadata(obj) := meta if {
	template_kinds[obj.kind]
	meta := object.get(obj.spec.template, "metadata", {})
}

pod_metadata(obj) := meta if {
	obj.kind == "CronJob"
	meta := object.get(obj.spec.jobTemplate.spec.template, "metadata", {})
}

describe(entry) := text if {
	text := sprintf("%s %q", [trim_suffix(entry.field, "s"), entry.container.name])
}

# -- exemptions: granted in the stack config, expiring ----------------------------------------
# An exemption is an entry of `platform:security.gatekeeper.exemptions` (a stack file, reviewed
# by the security owners: CODEOWNERS), handed to each constraint as `exemptions` (id -> its
# namespace and end date). An object (or its pod template, so its pods too) opts in with the
# annotation `exempt.platform.example.org/<policy>: <id>`. It is exempt only in that namespace,
# until 00:00 UTC of the entry's date, and only while that date is at most `maxExemptionDays`
# ahead: a team cannot grant, extend or move an exemption by editing its own manifests.
exemption_prefix := "exempt.platform.example.org/"

default_max_exemption_days := 30

annotation_sets contains annotations if {
	annotations := input.review.object.metadata.annotations
}

annotation_sets contains annotations if {
	annotations := pod_metadata(input.review.object).annotations
}

review_namespace := object.get(input.review.object.metadata, "namespace", input.review.namespace)

# A date as YYYY-MM-DD: such strings order like the dates, so the dates are compared and never
# parsed (a malformed date is then simply not honoured, in every Rego engine).
day(ns) := text if {
	[y, m, d] := time.date(ns)
	text := sprintf("%04d-%02d-%02d", [y, m, d])
}

exempt(policy) if {
	key := concat("", [exemption_prefix, policy])
	id := annotation_sets[_][key]
	entry := object.get(input.parameters, "exemptions", {})[id]
	entry.namespace == review_namespace
	regex.match(`^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$`, entry.until)
	now := time.now_ns()
	days := object.get(input.parameters, "maxExemptionDays", default_max_exemption_days)
	day(now) < entry.until
	entry.until <= day(time.add_date(now, 0, 0, days))
}
