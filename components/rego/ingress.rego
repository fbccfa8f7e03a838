# A team's Ingresses go through the one shared ALB, for the hosts the team owns
# (`platform:teams[].hosts`), and in the golden path's shape. Every public service shares that
# ALB (its IngressClassParams force the group and scheme), so an Ingress for another team's host
# would take that team's traffic, one without a host (or with a default backend) would catch
# everyone's unmatched requests, and a listener setting of its own (ports, TLS policy, inbound
# CIDRs, actions, a group or scheme) would change, or break, the listener every team shares.
# What the golden path writes passes; nothing else does. And no Service makes a load balancer
# or a node port of its own: each would be another load balancer, or a port on every node,
# outside the plan and its price.
package k8splatformingress

import data.lib.platform

policy := "ingress"

obj := input.review.object

namespace := object.get(obj.metadata, "namespace", input.review.namespace)

describe := sprintf("Ingress %q", [obj.metadata.name])

claimed := object.get(object.get(input.parameters, "hosts", {}), namespace, [])

annotations := object.get(obj.metadata, "annotations", {})

alb_prefix := "alb.ingress.kubernetes.io/"

# A claimed host (exact, or *.domain for any name under it) covers a host: stacks/config.py
# host_covers is the same rule.
covers(owned, host) if {
	owned == host
}

covers(owned, host) if {
	startswith(owned, "*.")
	suffix := substring(owned, 1, -1)
	endswith(host, suffix)
	host != substring(owned, 2, -1)
}

hosts contains host if {
	host := obj.spec.rules[_].host
}

hosts contains host if {
	host := obj.spec.tls[_].hosts[_]
}

violation contains {"msg": msg} if {
	obj.kind == "Ingress"
	not platform.exempt(policy)
	class := object.get(obj.spec, "ingressClassName", "")
	class != input.parameters.ingressClassName
	msg := sprintf("%s must set ingressClassName: %s (has %q) [%s]",
		[describe, input.parameters.ingressClassName, class, policy])
}

violation contains {"msg": msg} if {
	obj.kind == "Ingress"
	not platform.exempt(policy)
	rule := obj.spec.rules[index]
	not rule.host
	msg := sprintf("%s rules[%d] has no host: it would catch every request the shared load balancer does not route elsewhere [%s]",
		[describe, index, policy])
}

violation contains {"msg": msg} if {
	obj.kind == "Ingress"
	not platform.exempt(policy)
	obj.spec.defaultBackend
	msg := sprintf("%s must not set defaultBackend: it would catch every request the shared load balancer does not route elsewhere [%s]",
		[describe, policy])
}

violation contains {"msg": msg} if {
	obj.kind == "Ingress"
	not platform.exempt(policy)
	host := hosts[_]
	not any_covers(host)
	msg := sprintf("%s serves host %q, which namespace %q's team does not own (its hosts: %v; platform:teams[].hosts) [%s]",
		[describe, host, namespace, claimed, policy])
}

any_covers(host) if {
	covers(claimed[_], host)
}

violation contains {"msg": msg} if {
	obj.kind == "Ingress"
	not platform.exempt(policy)
	value := input.parameters.annotations[key]
	object.get(annotations, key, "") != value
	msg := sprintf("%s must set annotation %s: %q (the shared load balancer's setting; has %q) [%s]",
		[describe, key, value, object.get(annotations, key, ""), policy])
}

violation contains {"msg": msg} if {
	obj.kind == "Ingress"
	not platform.exempt(policy)
	annotations[key]
	startswith(key, alb_prefix)
	not input.parameters.annotations[key]
	not free_annotation(key)
	msg := sprintf("%s must not set annotation %s: the load balancer is shared; allowed besides the fixed ones: %v [%s]",
		[describe, key, input.parameters.freeAnnotations, policy])
}

free_annotation(key) if {
	input.parameters.freeAnnotations[_] == key
}

# A canary's traffic split, as the Argo Rollouts controller writes it: the action of a backend
# this Ingress routes through the `use-annotation` port (the rollout's root Service), forwarding
# by weight to the rollout's own Services: the root, `<root>-stable` and `<root>-canary` (the
# golden path's names). Nothing else an action can do passes: another Service of the namespace,
# a target group ARN (anyone's target group), a redirect, a fixed response.
action_prefix := "alb.ingress.kubernetes.io/actions."

free_annotation(key) if {
	startswith(key, action_prefix)
	name := substring(key, count(action_prefix), -1)
	routes_through_action(name)
	forwards_to_services(annotations[key], name)
}

rollout_services(name) := {name, sprintf("%s-stable", [name]), sprintf("%s-canary", [name])}

routes_through_action(name) if {
	backend := obj.spec.rules[_].http.paths[_].backend.service
	backend.name == name
	backend.port.name == "use-annotation"
}

forwards_to_services(value, name) if {
	json.is_valid(value)
	action := json.unmarshal(value)
	only_keys(action, {"type", "forwardconfig"})
	lower(field(action, "type")) == "forward"
	config := field(action, "forwardconfig")
	only_keys(config, {"targetgroups", "targetgroupstickinessconfig"})
	groups := field(config, "targetgroups")
	count(groups) > 0
	not not_a_service(groups, name)
}

not_a_service(groups, name) if {
	group := groups[_]
	not a_service(group, name)
}

a_service(group, name) if {
	only_keys(group, {"servicename", "serviceport", "weight"})
	rollout_services(name)[field(group, "servicename")]
}

# The load balancer controller reads these keys case-insensitively (Go's JSON): compare them
# lower-cased, and refuse one key written twice in two cases.
only_keys(o, allowed) if {
	is_object(o)
	keys := {lower(k) | o[k]}
	count(keys) == count(o)
	count(keys - allowed) == 0
}

field(o, name) := value if {
	some k
	lower(k) == name
	value := o[k]
}

violation contains {"msg": msg} if {
	obj.kind == "Ingress"
	not platform.exempt(policy)
	annotations["kubernetes.io/ingress.class"]
	msg := sprintf("%s must not set the legacy annotation kubernetes.io/ingress.class; use ingressClassName [%s]",
		[describe, policy])
}

violation contains {"msg": msg} if {
	obj.kind == "Service"
	not platform.exempt(policy)
	type := object.get(obj.spec, "type", "ClusterIP")
	type_refused[type]
	msg := sprintf("Service %q must not be of type %s: expose it through the shared load balancer (an Ingress, the golden path's exposure: public) [%s]",
		[obj.metadata.name, type, policy])
}

type_refused := {"LoadBalancer", "NodePort"}

# CVE-2020-8554: externalIPs make kube-proxy on every node send the traffic for those addresses
# (the database's, say) to this Service's pods. The API server refuses them in every namespace
# (the platform-no-external-ips ValidatingAdmissionPolicy); this says so in Gatekeeper's audit too.
violation contains {"msg": msg} if {
	obj.kind == "Service"
	not platform.exempt(policy)
	count(object.get(obj.spec, "externalIPs", [])) > 0
	msg := sprintf("Service %q must not set externalIPs: kube-proxy would send every pod's traffic for %v to it (CVE-2020-8554) [%s]",
		[obj.metadata.name, obj.spec.externalIPs, policy])
}
