# A team's alerts and canary queries speak for the team only. Prometheus (enforcedNamespaceLabel)
# stamps every series and alert of a team's objects with the namespace it came from; what that
# cannot stop is a rule that names another team, or pages as the platform, or a canary analysis
# that reads another namespace's series. So, in team namespaces:
# - a PrometheusRule's alerts carry `team:` their namespace's team and a `severity` of the fixed
#   set that Alertmanager routes (critical pages, warning and info file tickets); no rule sets
#   `team` to another team or `namespace` to another namespace;
# - an AnalysisTemplate's Prometheus queries select series by their own namespace in every
#   selector (`namespace="<namespace>"`, or `{{args.namespace}}` bound by the Rollout), and
#   name no metric without a selector;
# - a Rollout hands its analysis no `namespace` argument but its own.
package k8splatformteamtelemetry

import data.lib.platform

policy := "team-telemetry"

obj := input.review.object

namespace := object.get(obj.metadata, "namespace", input.review.namespace)

describe := sprintf("%s %q", [obj.kind, obj.metadata.name])

team := object.get(object.get(input.parameters, "teams", {}), namespace, "")

severities := {s | s := input.parameters.severities[_]}

rules contains entry if {
	obj.kind == "PrometheusRule"
	group := obj.spec.groups[g]
	rule := group.rules[r]
	name := object.get(rule, "alert", object.get(rule, "record", ""))
	entry := {"where": sprintf("groups[%d].rules[%d] (%s)", [g, r, name]), "rule": rule}
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := rules[_]
	entry.rule.alert
	labelled := object.get(object.get(entry.rule, "labels", {}), "team", "")
	labelled != team
	msg := sprintf("%s %s must carry team: %q, its namespace's team (has %q): an alert routes and pages by its team [%s]",
		[describe, entry.where, team, labelled, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := rules[_]
	not entry.rule.alert
	labelled := entry.rule.labels.team
	labelled != team
	msg := sprintf("%s %s must not label its series team: %q; its namespace's team is %q [%s]",
		[describe, entry.where, labelled, team, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := rules[_]
	entry.rule.alert
	severity := object.get(object.get(entry.rule, "labels", {}), "severity", "")
	not severities[severity]
	msg := sprintf("%s %s must set severity to one of %v (has %q) [%s]",
		[describe, entry.where, sort([s | s := severities[_]]), severity, policy])
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := rules[_]
	other := entry.rule.labels.namespace
	other != namespace
	msg := sprintf("%s %s must not set namespace: %q; its series and alerts are %q's [%s]",
		[describe, entry.where, other, namespace, policy])
}

# -- canary analysis --------------------------------------------------------------------------

queries contains entry if {
	obj.kind == "AnalysisTemplate"
	metric := obj.spec.metrics[m]
	query := metric.provider.prometheus.query
	entry := {"where": sprintf("metrics[%d] (%s)", [m, metric.name]), "query": query}
}

# The namespace matchers a query may use: its own namespace, or the argument the Rollout binds
# (checked on the Rollout below).
own_namespace_matchers := {
	sprintf("namespace=%q", [namespace]),
	"namespace=\"{{args.namespace}}\"",
}

# Each selector's body, `{...}`, with spaces removed.
selectors(query) := [s |
	found := regex.find_n(`\{[^{}]*(\{\{[^}]*\}\}[^{}]*)*\}`, query, -1)
	some body in found
	s := replace(body, " ", "")
]

selector_ok(body) if {
	some matcher in own_namespace_matchers
	contains(body, matcher)
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := queries[_]
	body := selectors(entry.query)[_]
	not selector_ok(body)
	msg := sprintf("%s %s selects %s without namespace=%q: a canary reads its own namespace's series only [%s]",
		[describe, entry.where, body, namespace, policy])
}

# What is left of a query once selectors, strings, ranges and grouping clauses are taken out:
# an identifier there that no `(` follows and that is not a PromQL keyword is a metric named
# without a selector, which would read every namespace's series.
stripped(query) := s if {
	a := regex.replace(query, `\{[^{}]*(\{\{[^}]*\}\}[^{}]*)*\}`, "{}")
	b := regex.replace(a, `"[^"]*"`, "")
	c := regex.replace(b, `\[[^\]]*\]`, "")
	d := regex.replace(c, `\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`, "")
	e := regex.replace(d, `\boffset\s+-?[0-9][0-9a-zA-Z]*`, "")
	s := regex.replace(e, `\b[0-9][0-9a-zA-Z.]*`, "")
}

keywords := {"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
	"and", "or", "unless", "atan2", "inf", "nan", "Inf", "NaN"}

bare_metrics(query) := {name |
	found := regex.find_all_string_submatch_n(`([A-Za-z_:][A-Za-z0-9_:]*)\s*([({]?)`, stripped(query), -1)
	some match in found
	match[2] == ""
	name := match[1]
	not keywords[name]
	not regex.match(`^[0-9]`, name)
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := queries[_]
	name := bare_metrics(entry.query)[_]
	msg := sprintf("%s %s names %s without a selector: write %s{namespace=%q, ...} [%s]",
		[describe, entry.where, name, name, namespace, policy])
}

# -- the Rollout's arguments ------------------------------------------------------------------

analyses contains entry if {
	obj.kind == "Rollout"
	entry := {"where": "strategy.canary.analysis", "analysis": obj.spec.strategy.canary.analysis}
}

analyses contains entry if {
	obj.kind == "Rollout"
	step := obj.spec.strategy.canary.steps[i]
	entry := {"where": sprintf("strategy.canary.steps[%d].analysis", [i]), "analysis": step.analysis}
}

violation contains {"msg": msg} if {
	not platform.exempt(policy)
	entry := analyses[_]
	arg := entry.analysis.args[_]
	arg.name == "namespace"
	object.get(arg, "value", "") != namespace
	msg := sprintf("%s %s passes namespace %q to its analysis; it may analyse %q only [%s]",
		[describe, entry.where, object.get(arg, "value", "(valueFrom)"), namespace, policy])
}
