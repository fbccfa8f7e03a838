# A team's ServiceMonitors, PodMonitors and Probes watch the team's own namespace and hand
# Prometheus nothing to read from its own file system. Prometheus scrapes with the credentials a
# monitor names: a `bearerTokenFile` (or TLS or credentials file) of Prometheus's own would send a
# target Prometheus's service account token or keys; a namespaceSelector reaching other
# namespaces would scrape (and read) other teams' services; honorLabels would let a target
# overwrite the labels that say where its metrics come from. The platform's own monitors live in
# the platform's namespaces, which this constraint does not match.
package k8splatformmonitorscope

import data.lib.platform

policy := "monitor-scope"

obj := input.review.object

namespace := object.get(obj.metadata, "namespace", input.review.namespace)

describe := sprintf("%s %q", [obj.kind, obj.metadata.name])

# What the monitor scrapes with: each endpoint of a ServiceMonitor or PodMonitor, and a Probe's
# own spec (its prober settings).
endpoints contains entry if {
	field := ["endpoints", "podMetricsEndpoints"][_]
	endpoint := obj.spec[field][index]
	entry := {"where": sprintf("%s[%d]", [field, index]), "endpoint": endpoint}
}

endpoints contains entry if {
	obj.kind == "Probe"
	entry := {"where": "spec", "endpoint": obj.spec}
}

# Fields that name a file in the Prometheus container.
file_fields contains entry if {
	some e
	endpoints[e]
	e.endpoint.bearerTokenFile
	entry := {"where": e.where, "field": "bearerTokenFile"}
}

file_fields contains entry if {
	some e
	endpoints[e]
	field := ["caFile", "certFile", "keyFile"][_]
	e.endpoint.tlsConfig[field]
	entry := {"where": e.where, "field": concat(".", ["tlsConfig", field])}
}

file_fields contains entry if {
	some e
	endpoints[e]
	e.endpoint.authorization.credentialsFile
	entry := {"where": e.where, "field": "authorization.credentialsFile"}
}

file_fields contains entry if {
	some e
	endpoints[e]
	e.endpoint.oauth2.clientSecretFile
	entry := {"where": e.where, "field": "oauth2.clientSecretFile"}
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	obj.spec.namespaceSelector.any == true
	msg := sprintf("%s must not select every namespace (namespaceSelector.any); it may watch %q only [%s]",
		[describe, namespace, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	other := obj.spec.namespaceSelector.matchNames[_]
	other != namespace
	msg := sprintf("%s must not watch namespace %q (namespaceSelector.matchNames); it may watch %q only [%s]",
		[describe, other, namespace, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := file_fields[_]
	msg := sprintf("%s %s.%s reads a file in Prometheus's container; use a Secret in %q (bearerTokenSecret, tlsConfig.ca/cert/keySecret, authorization.credentials) [%s]",
		[describe, entry.where, entry.field, namespace, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	some e
	endpoints[e]
	e.endpoint.honorLabels == true
	msg := sprintf("%s %s.honorLabels must not be true: a target could overwrite the labels that say where its metrics come from [%s]",
		[describe, e.where, policy])
}

# Relabelings that write the labels which say where a series comes from (its namespace, job and
# address) or how it is scraped: a team could pass its series off as another team's, or scrape
# something else under its monitor's name. `labelmap` is refused: its replacement can write any
# of them. The operator stamps `namespace` after these anyway (enforcedNamespaceLabel).
protected_labels := {"namespace", "job", "__address__", "__scheme__", "__metrics_path__"}

relabelings contains entry if {
	some e
	endpoints[e]
	field := ["relabelings", "metricRelabelings"][_]
	config := e.endpoint[field][index]
	entry := {"where": sprintf("%s.%s[%d]", [e.where, field, index]), "config": config}
}

relabelings contains entry if {
	obj.kind == "Probe"
	field := ["staticConfig", "ingress"][_]
	config := obj.spec.targets[field].relabelingConfigs[index]
	entry := {"where": sprintf("spec.targets.%s.relabelingConfigs[%d]", [field, index]), "config": config}
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := relabelings[_]
	target := object.get(entry.config, "targetLabel", "")
	protected_labels[target]
	msg := sprintf("%s %s must not write %s: it says where a series comes from and how it is scraped [%s]",
		[describe, entry.where, target, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := relabelings[_]
	lower(object.get(entry.config, "action", "replace")) == "labelmap"
	msg := sprintf("%s %s must not use action labelmap: its replacement can write any label, %v included [%s]",
		[describe, entry.where, sort([l | l := protected_labels[_]]), policy])
}
