# Shared by every platform ConstraintTemplate (Gatekeeper `libs`; Rego v0, as Gatekeeper runs it).
# What an admission request's object holds, however it is wrapped, and whether a policy is
# exempted for it by an annotation that has not expired.
package lib.platform

# Kinds whose pods come from `spec.template` (Rollout is Argo Rollouts'; a Rollout that points
# at a Deployment with `workloadRef` instead is checked through that Deployment).
template_kinds := {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job",
	"ReplicationController", "Rollout"}

pod_spec(obj) = spec {
	obj.kind == "Pod"
	spec := obj.spec
}

pod_spec(obj) = spec {
	template_kinds[obj.kind]
	spec := obj.spec.template.spec
}

pod_spec(obj) = spec {
	obj.kind == "CronJob"
	spec := obj.spec.jobTemplate.spec.template.spec
}

# Every container of the object under review, with the field that holds it.
containers[entry] {
	spec := pod_spec(input.review.object)
	field := ["containers", "initContainers", "ephemeralContainers"][_]
	container := spec[field][_]
	entry := {"field": field, "container": container}
}

# The pod's metadata: the object's own for a Pod, the template's for a workload.
pod_metadata(obj) = meta {
	obj.kind == "Pod"
	meta := obj.metadata
}

pod_metadata(obj) = meta {
	template_kinds[obj.kind]
	meta := object.get(obj.spec.template, "metadata", {})
}

pod_metadata(obj) = meta {
	obj.kind == "CronJob"
	meta := object.get(obj.spec.jobTemplate.spec.template, "metadata", {})
}

describe(entry) = text {
	text := sprintf("%s %q", [trim_suffix(entry.field, "s"), entry.container.name])
}

# -- exemptions that expire ------------------------------------------------------------------
# `exempt.platform.example.org/<policy>: "YYYY-MM-DD"` on the object (or its pod template)
# exempts it from <policy> until 00:00 UTC of that date, and only when the date is at most
# `maxExemptionDays` ahead: an exemption cannot be made permanent by a far-off date.
exemption_prefix := "exempt.platform.example.org/"

default_max_exemption_days := 30

annotation_sets[annotations] {
	annotations := input.review.object.metadata.annotations
}

annotation_sets[annotations] {
	annotations := pod_metadata(input.review.object).annotations
}

exemption_dates(policy) = dates {
	key := concat("", [exemption_prefix, policy])
	dates := {date | date := annotation_sets[_][key]; regex.match(`^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$`, date)}
}

# A date as YYYY-MM-DD: such strings order like the dates, so the annotation's value is compared
# and never parsed (a malformed date is then simply not honoured, in every Rego engine).
day(ns) = text {
	[y, m, d] := time.date(ns)
	text := sprintf("%04d-%02d-%02d", [y, m, d])
}

# ...and only when the object (or its template) names an approver from the configured list in
# `exempt.platform.example.org/approved-by` (a person who must then review the change: CODEOWNERS).
approver_key := concat("", [exemption_prefix, "approved-by"])

approved {
	approver := annotation_sets[_][approver_key]
	object.get(input.parameters, "exemptionApprovers", [])[_] == approver
}

exempt(policy) {
	approved
	date := exemption_dates(policy)[_]
	now := time.now_ns()
	days := object.get(input.parameters, "maxExemptionDays", default_max_exemption_days)
	day(now) < date
	date <= day(time.add_date(now, 0, 0, days))
}
