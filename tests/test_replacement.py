"""Replace or update, as the provider decides: the extracted facts, the decision per resource,
the cascade through inputs that use a replaced resource's outputs, and the engine's refusal to
delete a protected resource."""

from __future__ import annotations

import copy
import inspect

import pytest

from platform_facts import replacement
from platform_facts import replacement_extract as extract
from platformctl import report, review
from platformctl.crossguard import check_evaluation
from platformctl.pricing import cost_report

FACTS = replacement.facts()


@pytest.fixture(scope="module")
def documents(evaluations):
    return {name: review.build_document(ev, check_evaluation(ev), cost_report(ev))
            for name, ev in evaluations.items()}


@pytest.fixture(scope="module")
def rendered_documents(rendered):
    return {name: review.build_document(ev, check_evaluation(ev), cost_report(ev))
            for name, ev in rendered.items()}


def _change(doc, name, edit, type_token=None):
    """A head document: `doc` with resource `name`'s inputs edited in place by `edit`."""
    head = copy.deepcopy(doc)
    resource = next(r for r in head["resources"] if r["name"] == name
                    and (type_token is None or r["type"] == type_token))
    edit(resource)
    return head


def _changed(base, head):
    return {c["key"]: c for c in review.diff(base, head)["resources"]["changed"]}


# -- the facts -----------------------------------------------------------------------------------

def test_every_resource_type_in_both_plans_has_facts(documents):
    types = {r["type"] for doc in documents.values() for r in doc["resources"] if r["custom"]}
    aws = {t for t in types if t.startswith("aws:")}
    assert aws <= set(FACTS["aws"]), aws - set(FACTS["aws"])
    assert {t for t in types if t.startswith("random:")} <= set(FACTS["random"])
    # Kubernetes: pulumi-kubernetes' table covers every kind (metadata for all of them).
    assert FACTS["kubernetes"]["metadata"] == [".metadata.name", ".metadata.namespace"]
    assert FACTS["sources"]["aws"]["version"].startswith("v6.")


@pytest.mark.parametrize("type_token", sorted(FACTS["aws"]))
def test_every_fact_names_an_input_the_sdk_has(type_token):
    # The extraction mapped Terraform names to Pulumi ones through the installed SDK; an SDK
    # upgrade that renames an input fails here, not silently in a review.
    props = extract._properties(extract._sdk_args(type_token))
    entry = FACTS["aws"][type_token]
    for path in entry["force_new"] + entry["conditional"] + entry["unresolved"]:
        assert path.split(".")[0] in props, (type_token, path)


def test_the_facts_say_what_the_provider_source_says():
    aws = FACTS["aws"]
    assert "cidrBlock" in aws["aws:ec2/vpc:Vpc"]["force_new"]
    assert {"cidrBlock", "vpcId", "availabilityZone"} <= set(
        aws["aws:ec2/subnet:Subnet"]["force_new"])
    assert {"storageEncrypted", "kmsKeyId", "username", "engine"} <= set(
        aws["aws:rds/instance:Instance"]["force_new"])
    # Updated in place by the provider: the DB identifier, the engine version, the node
    # group's sizes and launch template version, the cluster's Kubernetes version.
    assert not {"identifier", "engineVersion", "instanceClass"} & set(
        aws["aws:rds/instance:Instance"]["force_new"])
    group = aws["aws:eks/nodeGroup:NodeGroup"]["force_new"]
    assert "subnetIds" in group and "instanceTypes" in group and "launchTemplate.id" in group
    assert not any(p.startswith("scalingConfig") or p == "launchTemplate.version" for p in group)
    assert "version" not in aws["aws:eks/cluster:Cluster"]["force_new"]


# -- the extractor on Go source --------------------------------------------------------------

SDK_SOURCE = '''
func resourceThing() *schema.Resource {
	return &schema.Resource{
		CustomizeDiff: customdiff.Sequence(
			customdiff.ForceNewIfChange("size", func(_ context.Context, o, n, _ any) bool {
				return n.(int) < o.(int)
			}),
		),
		SchemaFunc: func() map[string]*schema.Schema {
			return map[string]*schema.Schema{
				names.AttrCIDRBlock: {
					Type:     schema.TypeString,
					Optional: true,
					ForceNew: true, // "a, b": not a separator
				},
				"size": {Type: schema.TypeInt, Optional: true},
				"block": {
					Type:     schema.TypeList,
					Optional: true,
					Elem: &schema.Resource{
						Schema: map[string]*schema.Schema{
							names.AttrSubnetIDs: {Type: schema.TypeSet, Required: true, ForceNew: true},
							"label":             {Type: schema.TypeString, Optional: true},
						},
					},
				},
				names.AttrPolicy: sdkv2.SomeHelperNobodyIndexed(),
				names.AttrTags:    tftags.TagsSchema(),
				names.AttrARN:     {Type: schema.TypeString, Computed: true},
			}
		},
	}
}
'''


def test_the_sdk_reader_finds_force_new_nested_conditional_and_unresolved():
    facts = extract.sdk_resource_facts(SDK_SOURCE)
    assert facts.force_new == {"cidr_block", "block.subnet_ids"}
    assert facts.conditional == {"size"}
    assert facts.unresolved == {"policy"}
    assert facts.attributes == {"cidr_block", "size", "block", "policy", "tags"}


def test_the_framework_reader_finds_requires_replace():
    source = '''
	response.Schema = schema.Schema{
		Attributes: map[string]schema.Attribute{
			"cluster_name": schema.StringAttribute{
				Required: true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"role_arn": schema.StringAttribute{Required: true},
			"keepers": schema.MapAttribute{
				Optional: true,
				PlanModifiers: []planmodifier.Map{mapplanmodifiers.RequiresReplaceIfValuesNotNull()},
			},
			names.AttrID: framework.IDAttribute(),
		},
	}'''
    facts = extract.framework_resource_facts(source)
    assert facts.force_new == {"cluster_name"}
    assert facts.conditional == {"keepers"}


@pytest.mark.parametrize("const, name", [
    ("CIDRBlock", "cidr_block"), ("SubnetIDs", "subnet_ids"), ("VPCSecurityGroupIDs",
    "vpc_security_group_ids"), ("AWSAccountID", "aws_account_id"), ("Identifier", "identifier"),
    ("S3BucketName", "s3_bucket_name"), ("KMSKeyARN", "kms_key_arn"), ("IOPS", "iops")])
def test_attribute_constants_read_as_the_provider_spells_them(const, name):
    assert extract.attr_const(const) == name


def test_the_kubernetes_table_is_read_from_diff_go():
    diff_go = '''
func (k *kubeProvider) forceNewProperties(obj *unstructured.Unstructured) []string {
	if clients.IsSecret(obj) && (!k.enableSecretMutable || clients.IsImmutable(obj)) {
		props = append(props, properties{".type", ".stringData", ".data"}...)
	} else if kindFields, kindExists := version[gvk.Kind]; kindExists {
	} else if clients.IsConfigMap(obj) && (!k.enableConfigMapMutable || clients.IsImmutable(obj)) {
		props = append(props, properties{".binaryData", ".data"}...)
	}
}
var forceNew = _groups{
	"core": core,
	"apps": _versions{"v1": _kinds{"Deployment": deployment}},
}
var core = _versions{
	"v1": _kinds{
		"Service": properties{
			".spec.clusterIP",
		},
	},
}
var deployment = append(
	properties{
		".spec.selector",
	},
	labelSelectorForceNewProperties(".spec.selector")...,
)
func metadataForceNewProperties(prefix string) properties {
	return properties{
		prefix + ".name",
	}
}
func labelSelectorForceNewProperties(prefix string) properties {
	return properties{
		prefix + ".matchLabels",
	}
}
'''
    helm = 'forceNewFields := []string{".name", ".namespace"}'
    table = extract.kubernetes_facts(diff_go, helm)
    assert table["kinds"]["apps"]["v1"]["Deployment"] == [".spec.selector",
                                                          ".spec.selector.matchLabels"]
    assert table["kinds"]["core"]["v1"]["Service"] == [".spec.clusterIP"]
    assert table["metadata"] == [".metadata.name"]
    assert table["secret_unless_mutable"] == [".type", ".stringData", ".data"]
    assert table["helm_release"] == [".name", ".namespace"]


# -- the decision ------------------------------------------------------------------------------

@pytest.mark.parametrize("type_token, before, after, action, fields", [
    ("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16"}, {"cidrBlock": "10.1.0.0/16"}, "replace",
     ("cidrBlock",)),
    ("aws:ec2/vpc:Vpc", {"cidrBlock": "10.0.0.0/16", "enableDnsHostnames": False},
     {"cidrBlock": "10.0.0.0/16", "enableDnsHostnames": True}, "update", ()),
    # Nested: the node group's launch template id replaces it, its version does not.
    ("aws:eks/nodeGroup:NodeGroup", {"launchTemplate": {"id": "lt-1", "version": "1"}},
     {"launchTemplate": {"id": "lt-1", "version": "2"}}, "update", ()),
    ("aws:eks/nodeGroup:NodeGroup", {"launchTemplate": {"id": "lt-1", "version": "1"}},
     {"launchTemplate": {"id": "lt-2", "version": "1"}}, "replace", ("launchTemplate.id",)),
    # Unset and null are the same input.
    ("aws:rds/instance:Instance", {"kmsKeyId": None}, {}, "update", ()),
    ("aws:ec2/securityGroup:SecurityGroup", {"ingress": []}, {"ingress": [{"fromPort": 1}]},
     "unknown", ("ingress",)),
    ("aws:made/up:Thing", {"a": 1}, {"a": 2}, "unknown", ()),
    ("kubernetes:storage.k8s.io/v1:StorageClass", {"parameters": {"type": "gp2"}},
     {"parameters": {"type": "gp3"}}, "replace", ("parameters",)),
    ("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", {"roleRef": {"name": "a"}},
     {"roleRef": {"name": "b"}}, "replace", ("roleRef",)),
    ("kubernetes:core/v1:Secret", {"stringData": {"a": "1"}}, {"stringData": {"a": "2"}},
     "replace", ("stringData",)),
    ("kubernetes:core/v1:ConfigMap", {"data": {"a": "1"}}, {"data": {"a": "2"}}, "replace",
     ("data",)),
    ("kubernetes:core/v1:Namespace", {"metadata": {"name": "a", "labels": {"x": "1"}}},
     {"metadata": {"name": "a", "labels": {"x": "2"}}}, "update", ()),
    ("kubernetes:core/v1:Namespace", {"metadata": {"name": "a"}}, {"metadata": {"name": "b"}},
     "replace", ("metadata.name",)),
    ("kubernetes:helm.sh/v3:Release", {"name": "a", "values": {"x": 1}},
     {"name": "a", "values": {"x": 2}}, "update", ()),
    ("kubernetes:helm.sh/v3:Release", {"name": "a", "namespace": "x"},
     {"name": "a", "namespace": "y"}, "replace", ("namespace",)),
    ("random:index/randomPassword:RandomPassword", {"length": 24}, {"length": 32}, "replace",
     ("length",)),
    ("pulumi:providers:aws", {"region": "us-east-1"}, {"region": "us-west-2"}, "unknown",
     ("region",)),
    # The API server's own immutable fields that pulumi-kubernetes updates (and fails on).
    ("kubernetes:storage.k8s.io/v1:StorageClass", {"reclaimPolicy": "Delete"},
     {"reclaimPolicy": "Retain"}, "refused", ("reclaimPolicy",)),
    ("kubernetes:storage.k8s.io/v1:StorageClass", {"volumeBindingMode": "Immediate"},
     {"volumeBindingMode": "WaitForFirstConsumer"}, "refused", ("volumeBindingMode",)),
    ("kubernetes:storage.k8s.io/v1:StorageClass", {"allowVolumeExpansion": False},
     {"allowVolumeExpansion": True}, "update", ()),
    # A field both tables name replaces (pulumi-kubernetes's table wins: it replaces).
    ("kubernetes:storage.k8s.io/v1:StorageClass",
     {"parameters": {"type": "gp2"}, "reclaimPolicy": "Delete"},
     {"parameters": {"type": "gp3"}, "reclaimPolicy": "Retain"}, "replace", ("parameters",)),
])
def test_decide(type_token, before, after, action, fields):
    decision = replacement.decide(type_token, before, after)
    assert (decision.action, decision.fields) == (action, fields)


def test_replace_on_changes_makes_the_engine_replace_what_the_provider_would_update():
    """The engine applies a resource's replaceOnChanges after the provider's diff: a change
    under one of its paths is a replacement, whatever the provider says; `*` is every input."""
    aws = ("aws:ec2/vpc:Vpc", {"enableDnsHostnames": False}, {"enableDnsHostnames": True})
    assert replacement.decide(*aws).action == "update"
    decision = replacement.decide(*aws, replace_on_changes=["enableDnsHostnames"])
    assert (decision.action, decision.fields, decision.reason) == (
        "replace", ("enableDnsHostnames",), "its replaceOnChanges option")
    assert replacement.decide(*aws, replace_on_changes=["tags"]).action == "update"
    assert replacement.decide(*aws, replace_on_changes=["*"]).action == "replace"
    nested = replacement.decide("kubernetes:apps/v1:Deployment",
                                {"spec": {"replicas": 1, "template": {"x": 1}}},
                                {"spec": {"replicas": 2, "template": {"x": 1}}},
                                replace_on_changes=["spec.template"])
    assert nested.action == "update"
    # An immutable field under replaceOnChanges is replaced, no longer refused.
    sc = ("kubernetes:storage.k8s.io/v1:StorageClass", {"reclaimPolicy": "Delete"},
          {"reclaimPolicy": "Retain"})
    assert replacement.decide(*sc).action == "refused"
    assert replacement.decide(*sc, replace_on_changes=["reclaimPolicy"]).action == "replace"


def test_a_crds_transition_rule_refuses_the_update_of_its_field():
    rollout = ("kubernetes:argoproj.io/v1alpha1:Rollout",
               {"spec": {"selector": {"matchLabels": {"app": "a"}}, "replicas": 1}})
    frozen = {"argoproj.io/v1alpha1/Rollout": ["spec.selector"]}
    moved = {"spec": {"selector": {"matchLabels": {"app": "b"}}, "replicas": 1}}
    scaled = {"spec": {"selector": {"matchLabels": {"app": "a"}}, "replicas": 3}}
    assert replacement.decide(*rollout, moved, api_immutable=frozen).action == "refused"
    assert replacement.decide(*rollout, scaled, api_immutable=frozen).action == "update"
    assert replacement.decide(*rollout, moved).action == "update"  # no CRD facts: the provider's


def test_transition_rules_are_read_from_a_crd_schema():
    from platformctl.crds import immutable_paths

    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "selector": {"type": "object",
                         "x-kubernetes-validations": [{"rule": "self == oldSelf",
                                                       "message": ".spec.selector is immutable"}]},
            "ports": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string",
                         "x-kubernetes-validations": [{"rule": "oldSelf == self"}]}}}},
            "size": {"type": "integer",
                     "x-kubernetes-validations": [{"rule": "self >= oldSelf"}]}}}}}
    assert immutable_paths(schema) == ["spec.selector", "spec.ports[*].name"]


def test_the_vendored_crds_transition_rules_reach_the_review_document(rendered_documents):
    """The Rollout CRD (argo-rollouts) freezes spec.selector; the document carries it with the
    CRD's digest, and the diff reads it from there."""
    assert review.api_immutable(rendered_documents["prod"]) == {
        "argoproj.io/v1alpha1/Rollout": ["spec.selector"]}


def test_every_kubernetes_kind_the_plans_create_was_read_for_immutable_fields(
        rendered_documents):
    """A built-in kind the program creates directly has been read in the API server's update
    validation (listed, with the fields pulumi-kubernetes's table lacks); a new kind fails here
    until it is."""
    documents = rendered_documents
    kinds = {replacement.kubernetes_api_version(r["type"]) for doc in documents.values()
             for r in doc["resources"] if r["type"].startswith("kubernetes:")}
    crds = {k for doc in documents.values() for rel in doc["rendered"]["releases"]
            for o in rel["objects"] if o["kind"] == "CustomResourceDefinition"
            for k in (f"{o['object']['spec']['group']}/{v['name']}/"
                      f"{o['object']['spec']['names']['kind']}"
                      for v in o["object"]["spec"]["versions"])}
    # Gatekeeper makes each constraint kind's CRD from the program's own ConstraintTemplate
    # (parameters only, no transition rules); a `...Patch` type is a server-side patch.
    built_in = {k for k in kinds - crds if k is not None and not k.endswith("Patch")
                and not k.startswith("constraints.gatekeeper.sh/")}
    assert built_in and built_in <= set(replacement.KUBERNETES_API_IMMUTABLE), (
        built_in - set(replacement.KUBERNETES_API_IMMUTABLE))


def test_an_update_the_kubernetes_api_refuses_is_a_mandatory_violation(documents):
    dev = documents["dev"]

    def retain(r):
        r["inputs"]["reclaimPolicy"] = "Retain"

    head = review.attach_diff(dev, _change(dev, "dev-gp3", retain,
                                           "kubernetes:storage.k8s.io/v1:StorageClass"))
    entry = _changed(dev, head)["kubernetes:storage.k8s.io/v1:StorageClass::dev-gp3"]
    assert (entry["action"], entry["replace_fields"]) == ("refused", ["reclaimPolicy"])
    refused = [v for v in head["policies"]["mandatory"] if v["policy"] == "update-refused"]
    assert [v["resource_name"] for v in refused] == ["dev-gp3"]
    assert head["exit_code"] == 1 and head["diff"]["resources"]["counts"]["refused"] == 1
    assert "**refused**" in report.render_markdown(head)
    # Asking the engine to replace it instead is what the remediation says, and it passes.
    def retain_by_replacing(r):
        retain(r)
        r["replace_on_changes"] = ["reclaimPolicy"]

    head = review.attach_diff(dev, _change(dev, "dev-gp3", retain_by_replacing,
                                           "kubernetes:storage.k8s.io/v1:StorageClass"))
    entry = _changed(dev, head)["kubernetes:storage.k8s.io/v1:StorageClass::dev-gp3"]
    assert entry["action"] == "replace"
    assert not [v for v in head["policies"]["mandatory"] if v["policy"] == "update-refused"]


def test_unprotecting_and_replacing_in_one_change_is_what_the_engine_allows(documents):
    """The engine refuses a replacement only when the resource is protected in its state and
    in the program: unprotecting it in the same change lets the replacement through (shown)."""
    prod = documents["prod"]

    def unprotect_and_rename(r):
        r["inputs"]["username"] = "someone_else"
        r["protect"] = False

    head = review.attach_diff(prod, _change(prod, "prod-postgres", unprotect_and_rename,
                                            "aws:rds/instance:Instance"))
    entry = _changed(prod, head)["aws:rds/instance:Instance::prod-postgres"]
    assert entry["action"] == "replace" and entry["protect"]
    names = [v["resource_name"] for v in head["policies"]["mandatory"]
             if v["policy"] == "protected-resources"]
    assert "prod-postgres" not in names


def test_a_mutable_configmap_is_updated_when_the_provider_allows_it():
    decision = replacement.decide("kubernetes:core/v1:ConfigMap", {"data": {"a": "1"}},
                                  {"data": {"a": "2"}}, {"enableConfigMapMutable": "true"})
    assert decision.action == "update"
    immutable = replacement.decide("kubernetes:core/v1:ConfigMap",
                                   {"data": {"a": "1"}, "immutable": True},
                                   {"data": {"a": "2"}, "immutable": True},
                                   {"enableConfigMapMutable": "true"})
    assert immutable.action == "replace"


def test_ignore_changes_is_applied_before_the_diff(documents):
    dev = documents["dev"]

    def grow(r):
        r["inputs"]["scalingConfig"]["desiredSize"] += 1

    name = next(r["name"] for r in dev["resources"] if r["type"] == "aws:eks/nodeGroup:NodeGroup")
    assert _changed(dev, _change(dev, name, grow)) == {}

    def shrink_max(r):
        r["inputs"]["scalingConfig"]["maxSize"] += 1

    changed = _changed(dev, _change(dev, name, shrink_max))
    (entry,) = changed.values()
    assert entry["action"] == "update" and entry["changed_inputs"] == ["scalingConfig.maxSize"]


# -- protected resources -------------------------------------------------------------------------

def test_replacing_a_protected_database_is_a_mandatory_violation(documents):
    prod = documents["prod"]

    def rename_user(r):
        r["inputs"]["username"] = "someone_else"

    head = review.attach_diff(prod, _change(prod, "prod-postgres", rename_user,
                                            "aws:rds/instance:Instance"))
    entry = _changed(prod, head)["aws:rds/instance:Instance::prod-postgres"]
    assert (entry["action"], entry["replace_fields"], entry["protect"]) == (
        "replace", ["username"], True)
    # What uses the database's outputs is listed, so a reviewer sees the blast radius.
    assert entry["dependents"]
    verdicts = {v["resource_name"]: v for v in head["policies"]["mandatory"]
                if v["policy"] == "protected-resources"}
    assert "username force a new resource" in verdicts["prod-postgres"]["message"]
    # The cross-region replication of its backups names the instance's ARN (ForceNew): it is
    # replaced with it, and it is protected too.
    assert "uses the outputs of replaced aws:rds/instance:Instance::prod-postgres" in verdicts[
        "prod-database-dr"]["message"]
    assert head["exit_code"] == 1
    assert sorted(v["resource_name"] for v in head["diff"]["violations"]["new"]) == sorted(
        verdicts)
    markdown = report.render_markdown(head)
    assert "**replace**" in markdown and "`username`" in markdown


def test_an_update_of_a_protected_resource_passes(documents):
    prod = documents["prod"]

    def bigger(r):
        r["inputs"]["allocatedStorage"] = r["inputs"]["allocatedStorage"] + 10

    head = review.attach_diff(prod, _change(prod, "prod-postgres", bigger,
                                            "aws:rds/instance:Instance"))
    assert not [v for v in head["policies"]["mandatory"] if v["policy"] == "protected-resources"]
    assert head["exit_code"] == prod["exit_code"]


def test_deleting_a_protected_resource_is_a_mandatory_violation(documents):
    prod = documents["prod"]
    head = copy.deepcopy(prod)
    head["resources"] = [r for r in head["resources"]
                         if not (r["name"] == "prod-postgres"
                                 and r["type"] == "aws:rds/instance:Instance")]
    head = review.attach_diff(prod, head)
    assert [v["resource_name"] for v in head["policies"]["mandatory"]
            if v["policy"] == "protected-resources"] == ["prod-postgres"]


def test_a_provider_change_that_cannot_be_judged_is_not_evaluated_when_protected_resources_ride_on_it(
        documents):
    prod = documents["prod"]

    def move(r):
        r["inputs"]["region"] = "eu-west-1"

    head = review.attach_diff(prod, _change(prod, "aws", move, "pulumi:providers:aws"))
    unseen = [n for n in head["policies"]["not_evaluated"] if n["policy"] == "protected-resources"]
    assert unseen and "aws (a provider's own configuration changed" in unseen[0]["reason"]
    assert head["exit_code"] in (1, 2) and head["exit_code"] != 0


def test_the_cascade_replaces_what_uses_a_replaced_resource_through_a_force_new_input(
        documents):
    dev = documents["dev"]

    def new_cidr(r):
        r["inputs"]["cidrBlock"] = "10.30.0.0/16"

    changed = _changed(dev, _change(dev, "dev-vpc", new_cidr, "aws:ec2/vpc:Vpc"))
    vpc = changed["aws:ec2/vpc:Vpc::dev-vpc"]
    assert vpc["action"] == "replace" and vpc["dependents"]
    # A subnet's CIDR did not change here, but its vpcId (ForceNew) is unknown until the new VPC
    # exists: replaced because of the VPC.
    subnets = [c for c in changed.values() if c["type"] == "aws:ec2/subnet:Subnet"]
    assert subnets and all(s["action"] == "replace" and s["replace_fields"] == ["vpcId"]
                           and s["replaced_because"] == ["aws:ec2/vpc:Vpc::dev-vpc"]
                           for s in subnets)
    # A role policy naming the VPC in a condition is updated, not replaced.
    assert changed["aws:iam/rolePolicy:RolePolicy::dev-load-balancer-controller"][
        "action"] == "update"


def test_a_database_cannot_follow_its_vpc_in_place(documents):
    """A new VPC replaces the subnets and security groups; the database's subnet group and
    instance are then updated onto them, which AWS refuses (another VPC): the review says
    refused, a mandatory violation, where the provider (and `pulumi preview`) says update."""
    dev = documents["dev"]

    def new_cidr(r):
        r["inputs"]["cidrBlock"] = "10.30.0.0/16"

    head = review.attach_diff(dev, _change(dev, "dev-vpc", new_cidr, "aws:ec2/vpc:Vpc"))
    changed = {c["key"]: c for c in head["diff"]["resources"]["changed"]}
    group = changed["aws:rds/subnetGroup:SubnetGroup::dev-db"]
    assert (group["action"], group["replace_fields"]) == ("refused", ["subnetIds"])
    assert "The new Subnets are not in the same Vpc" in group["reason"]
    instance = changed["aws:rds/instance:Instance::dev-postgres"]
    assert (instance["action"], instance["replace_fields"]) == ("refused",
                                                                ["vpcSecurityGroupIds"])
    refused = {v["resource_name"]: v for v in head["policies"]["mandatory"]
               if v["policy"] == "update-refused"}
    assert set(refused) == {"dev-db", "dev-postgres", "dev-igw"} and head["exit_code"] == 1
    assert "a DB subnet group of another name" in refused["dev-db"]["remediation"]
    # The Internet gateway is detached from the old VPC to move, which AWS refuses while the
    # NAT's public address is mapped there (the old NAT goes only at the end).
    gateway = changed["aws:ec2/internetGateway:InternetGateway::dev-igw"]
    assert (gateway["action"], gateway["replace_fields"]) == ("refused", ["vpcId"])
    assert "has some mapped public address(es)" in gateway["reason"]
    assert "build the new network beside the old one" in refused["dev-igw"]["remediation"]
    counts = head["diff"]["resources"]["counts"]
    assert counts["refused"] == 3
    footer = report.preview_counts(counts)
    assert "3 refused by the API (Kubernetes or AWS)" in footer
    # docs/review.md quotes this footer.
    from tests.conftest import REPO

    assert f'"{footer}"' in " ".join((REPO / "docs" / "review.md").read_text().split())
    # What AWS updates across VPCs is not judged so: the IAM policy naming the VPC.
    assert changed["aws:iam/rolePolicy:RolePolicy::dev-load-balancer-controller"][
        "action"] == "update"


def test_an_internet_gateway_moves_where_no_public_address_holds_it(documents):
    """Nothing in the base maps a public address in the VPC (no NAT, no address): AWS detaches
    the gateway, so the move is an update."""
    dev = copy.deepcopy(documents["dev"])
    holding = replacement.AWS_REFUSED_WHILE["aws:ec2/internetGateway:InternetGateway"]
    dev["resources"] = [r for r in dev["resources"] if r["type"] not in holding]

    def new_cidr(r):
        r["inputs"]["cidrBlock"] = "10.30.0.0/16"

    gateway = _changed(dev, _change(dev, "dev-vpc", new_cidr, "aws:ec2/vpc:Vpc"))[
        "aws:ec2/internetGateway:InternetGateway::dev-igw"]
    assert gateway["action"] == "update"


def test_a_database_moved_as_aws_documents_it_is_not_refused(documents):
    """The instance switched to a DB subnet group of another name in the same change, with the
    new VPC's security groups: AWS moves it (only the subnet group update itself is refused)."""
    dev = documents["dev"]

    def new_cidr(r):
        r["inputs"]["cidrBlock"] = "10.30.0.0/16"

    def other_group(r):
        r["inputs"]["dbSubnetGroupName"] = "dev-db-moved"

    head = _change(dev, "dev-vpc", new_cidr, "aws:ec2/vpc:Vpc")
    head = _change(head, "dev-postgres", other_group, "aws:rds/instance:Instance")
    instance = _changed(dev, head)["aws:rds/instance:Instance::dev-postgres"]
    assert instance["action"] != "refused"
    assert "dbSubnetGroupName" in instance["changed_inputs"]


def test_extract_cli_documents_its_sources():
    # The module a maintainer runs says where each fact comes from.
    doc = inspect.getdoc(extract)
    assert "terraform-provider-aws" in doc and "pulumi-kubernetes" in doc
    assert set(FACTS["sources"]) == {"aws", "kubernetes", "random"}
    assert all(len(s["commit"]) == 40 for s in FACTS["sources"].values())


# -- secrets ---------------------------------------------------------------------------------

def test_a_secret_set_anew_is_a_change_without_showing_it(tmp_path):
    """Two revisions whose stack files differ only in a secret's ciphertext: the alerting
    config Secret that embeds it changes (its stringData forces a replacement, unless the
    provider makes Secrets mutable); the same ciphertext is no change; no value is shown."""
    from tests.conftest import stack_config, write_stack
    from tests.test_observability import _observability_alone
    from tests.units import evaluate_alone

    def document(ciphertext, name):
        config = stack_config("dev")
        config["platform:alerting"]["receivers"][0]["slackWebhookUrl"] = {"secure": ciphertext}
        directory = tmp_path / name
        directory.mkdir()
        ev = evaluate_alone(write_stack(directory, config), _observability_alone)
        return review.build_document(ev, check_evaluation(ev), cost_report(ev))

    base, same, head = (document("v1:AAAA", "a"), document("v1:AAAA", "b"),
                        document("v1:BBBB", "c"))
    key = next(r["key"] for r in head["resources"] if r["name"].endswith("alertmanager-config"))
    assert "stringData" in {r["key"]: r for r in head["resources"]}[key]["secret_digests"]
    assert key not in _changed(base, same)
    entry = _changed(base, head)[key]
    assert (entry["action"], entry["replace_fields"]) == ("replace", ["stringData"])
    shown = str(review.diff(base, head))
    assert "v1:BBBB" not in shown and "hooks.slack" not in shown
    # A base reviewed before digests were recorded: the secret is not compared (no claim).
    old = copy.deepcopy(base)
    for r in old["resources"]:
        r.pop("secret_digests", None)
    assert key not in _changed(old, head)
