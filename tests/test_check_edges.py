"""The rendered-object checks' own edges: for each condition of `workload-identity` and
`scrape-coverage`, a case just inside (admitted) and one just outside (refused), so that
loosening any condition fails the suite. (Pod Security's edges: tests/test_podsecurity.py.)"""

from __future__ import annotations

import json

import pytest

from tests.test_policies import release, resource, run, vault_identity

NEEDED = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "iam:GetRole"]
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


def identity_messages(resources) -> list[str]:
    return [v.message for v in run("workload-identity", {}, resources).violations]


def _with_policy(resources, statement, by_name=False):
    role = next(r for r in resources if r.type == ROLE)
    extra = resource(ROLE_POLICY, {"policy": json.dumps({"Statement": [statement]}),
                                   **({"role": "vault"} if by_name else {})},
                     name="extra", property_dependencies={} if by_name else {"role": [role.urn]})
    return [*resources, extra]


# -- workload-identity: a chart's workload ---------------------------------------------------------

def test_exactly_what_the_workload_calls_is_admitted():
    assert identity_messages(vault_identity(NEEDED)) == []
    # A Deny statement takes nothing away from what is allowed, and grants nothing.
    assert identity_messages(_with_policy(vault_identity(NEEDED), {
        "Effect": "Deny", "Action": ["kms:ScheduleKeyDeletion"], "Resource": "*"})) == []


@pytest.mark.parametrize("granted, expected", [
    (NEEDED[:-1], "lacks iam:GetRole"),
    ([*NEEDED, "kms:CreateGrant"], "grants more than vault calls: kms:CreateGrant"),
    (["kms:*", "iam:GetRole"], "grants more than vault calls: kms:*"),
])
def test_one_action_more_or_less_is_refused(granted, expected):
    (message,) = identity_messages(vault_identity(granted))
    assert expected in message


def test_a_not_action_allow_grants_everything_else_and_is_refused():
    messages = identity_messages(_with_policy(vault_identity(NEEDED), {
        "Effect": "Allow", "NotAction": ["iam:*"], "Resource": "*"}))
    assert any("NotAction:iam:*" in m for m in messages), messages


def test_a_policy_naming_the_role_by_name_counts():
    # Linked by the role's name rather than its output: still the role's grant.
    messages = identity_messages(_with_policy(vault_identity(NEEDED), {
        "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, by_name=True))
    assert any("s3:GetObject" in m for m in messages), messages


def test_a_managed_policy_attached_to_a_workload_role_is_refused():
    resources = vault_identity(NEEDED)
    role = next(r for r in resources if r.type == ROLE)
    attached = resource(ATTACHMENT, {"policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
                        name="ro", property_dependencies={"role": [role.urn]})
    (message,) = identity_messages([*resources, attached])
    assert "arn:aws:iam::aws:policy/ReadOnlyAccess" in message


@pytest.mark.parametrize("namespace, account, admitted", [
    ("apps", "vault", True),       # the release's namespace and its ServiceAccount
    ("other", "vault", False),     # another namespace: not this workload's identity
    ("apps", "vault-agent", False),  # another service account
])
def test_the_association_must_name_the_workloads_namespace_and_account(namespace, account,
                                                                       admitted):
    resources = vault_identity(NEEDED)
    association = next(r for r in resources if r.type == ASSOCIATION)
    moved = resource(ASSOCIATION, {"namespace": namespace, "serviceAccount": account},
                     name=association.name,
                     property_dependencies=dict(association.property_dependencies))
    messages = identity_messages([r for r in resources if r is not association] + [moved])
    assert (messages == []) is admitted, messages
    if not admitted:
        assert "has no EKS Pod Identity association" in messages[0]


# -- workload-identity: EKS add-ons --------------------------------------------------------------

def _addon(policy_arns, inline=None, link="serviceAccountRoleArn"):
    role = resource(ROLE, {}, name="ebs-role")
    addon = resource("aws:eks/addon:Addon", {"addonName": "aws-ebs-csi-driver"}, name="ebs",
                     property_dependencies={link: [role.urn]} if link else {})
    out = [role, addon]
    out += [resource(ATTACHMENT, {"policyArn": arn}, name=f"a{i}",
                     property_dependencies={"role": [role.urn]})
            for i, arn in enumerate(policy_arns)]
    if inline:
        out.append(resource(ROLE_POLICY, {"policy": json.dumps({"Statement": [inline]})},
                            name="inline", property_dependencies={"role": [role.urn]}))
    return out


AWS_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"


@pytest.mark.parametrize("link", ["serviceAccountRoleArn", "podIdentityAssociations"])
def test_an_addon_with_exactly_its_aws_managed_policy_is_admitted(link):
    assert identity_messages(_addon([AWS_POLICY], link=link)) == []
    # Another partition's AWS managed policy is the same policy.
    assert identity_messages(_addon([AWS_POLICY.replace("arn:aws:", "arn:aws-us-gov:")])) == []


@pytest.mark.parametrize("policies, inline, expected", [
    ([], None, "lacks AmazonEBSCSIDriverPolicy"),
    # A customer managed policy that only borrows the name is not AWS's policy.
    (["arn:aws:iam::123456789012:policy/AmazonEBSCSIDriverPolicy"], None,
     "lacks AmazonEBSCSIDriverPolicy"),
    ([AWS_POLICY, "arn:aws:iam::aws:policy/AmazonS3FullAccess"], None, "AmazonS3FullAccess"),
    ([AWS_POLICY], {"Effect": "Allow", "Action": "ec2:CreateVolume", "Resource": "*"},
     "ec2:CreateVolume"),
])
def test_an_addon_role_with_anything_else_is_refused(policies, inline, expected):
    messages = identity_messages(_addon(policies, inline))
    assert any(expected in m for m in messages), messages


def test_an_addon_without_a_role_is_refused():
    (message,) = identity_messages(_addon([], link=None))
    assert "has no role" in message


# -- scrape-coverage -----------------------------------------------------------------------------

def _scrape(service=None, monitor=None, prometheus=None, monitor_namespace="apps",
            namespace_labels=None, source="apps/exporter"):
    """An alert reading `source`, a release rendering its Service, a ServiceMonitor and a
    Prometheus; each part overridable."""
    service = service or {"apiVersion": "v1", "kind": "Service", "metadata": {
        "name": "exporter", "namespace": "apps", "labels": {"app": "exporter"}},
        "spec": {"ports": [{"name": "metrics", "port": 9100}]}}
    monitor = monitor or {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
                          "metadata": {"name": "exporter", "namespace": monitor_namespace,
                                       "labels": {"release": "platform"}},
                          "spec": {"selector": {"matchLabels": {"app": "exporter"}},
                                   "endpoints": [{"port": "metrics"}]}}
    prometheus = prometheus or {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                                "metadata": {"name": "p", "namespace": "monitoring"},
                                "spec": {"serviceMonitorSelector": {
                                    "matchLabels": {"release": "platform"}},
                                    "serviceMonitorNamespaceSelector": {}}}
    stack = [release("exporter", [service, monitor]), release("prom", [prometheus])]
    stack.append(resource("kubernetes:core/v1:Namespace", {"metadata": {
        "name": monitor_namespace, "labels": namespace_labels or {}}}, name=monitor_namespace))
    stack.append(resource("kubernetes:monitoring.coreos.com/v1:PrometheusRule", {"metadata": {
        "annotations": {"platform.example.org/metric-sources": json.dumps(
            {"ExporterDown": source})}}}, name="alerts"))
    return [v.message for v in run("scrape-coverage", {}, stack).violations]


def test_a_source_scraped_end_to_end_is_admitted():
    assert _scrape() == []


def _monitor(**spec):
    base = {"selector": {"matchLabels": {"app": "exporter"}}, "endpoints": [{"port": "metrics"}]}
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
            "metadata": {"name": "exporter", "namespace": "apps",
                         "labels": {"release": "platform"}}, "spec": {**base, **spec}}


@pytest.mark.parametrize("spec, admitted", [
    ({"endpoints": [{"port": "metrics"}, {"port": "other"}]}, True),
    ({"endpoints": [{"port": "web"}]}, False),  # a port name the Service lacks
    ({"endpoints": [{"targetPort": 9100}]}, False),  # a number where a name is read
    ({"selector": {"matchLabels": {"app": "exporter", "tier": "x"}}}, False),
    ({"selector": {"matchExpressions": [{"key": "app", "operator": "In",
                                         "values": ["exporter"]}]}}, True),
    ({"selector": {"matchExpressions": [{"key": "app", "operator": "NotIn",
                                         "values": ["exporter"]}]}}, False),
])
def test_the_monitor_must_select_the_service_and_a_named_port(spec, admitted):
    messages = _scrape(monitor=_monitor(**spec))
    assert (messages == []) is admitted, messages


@pytest.mark.parametrize("where, admitted", [
    ({"matchNames": ["apps"]}, True),
    ({"any": True}, True),
    ({"matchNames": ["other"]}, False),
])
def test_the_monitor_namespace_selector(where, admitted):
    monitor = _monitor(namespaceSelector=where)
    monitor["metadata"]["namespace"] = "monitoring"
    messages = _scrape(monitor=monitor, monitor_namespace="monitoring")
    assert (messages == []) is admitted, messages


def test_a_monitor_in_another_namespace_without_a_selector_sees_only_its_own():
    monitor = _monitor()
    monitor["metadata"]["namespace"] = "monitoring"
    assert _scrape(monitor=monitor, monitor_namespace="monitoring")


@pytest.mark.parametrize("selector, ns_selector, ns_labels, admitted", [
    ({"matchLabels": {"release": "platform"}}, {}, {}, True),
    ({"matchLabels": {"release": "other"}}, {}, {}, False),
    ({"matchLabels": {"release": "platform"}}, {"matchLabels": {"team": "platform"}},
     {"team": "platform"}, True),
    ({"matchLabels": {"release": "platform"}}, {"matchLabels": {"team": "platform"}},
     {"team": "payments"}, False),
])
def test_prometheus_must_select_the_monitor_and_its_namespace(selector, ns_selector, ns_labels,
                                                              admitted):
    prometheus = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus",
                  "metadata": {"name": "p", "namespace": "monitoring"},
                  "spec": {"serviceMonitorSelector": selector,
                           "serviceMonitorNamespaceSelector": ns_selector}}
    messages = _scrape(prometheus=prometheus, namespace_labels=ns_labels)
    assert (messages == []) is admitted, messages


def test_an_unknown_source_or_an_external_one():
    assert any("no chart renders its Service apps/missing" in m
               for m in _scrape(source="apps/missing"))
    assert _scrape(source="external:cloudwatch") == []
