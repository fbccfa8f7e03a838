"""The AWS API's own rules on the values the plans send, read from botocore's service models
(installed with the project). EC2 states its character rules only in the members' documentation
("Valid characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*"): they are parsed from that
text here, never typed by hand. The provider checks only the length, so a value outside them
passes a preview and fails `pulumi up` at create."""

from __future__ import annotations

import botocore.session
import pytest

EC2 = botocore.session.get_session().get_service_model("ec2")
# (resource type, input) -> the EC2 API member the provider sends it as
DESCRIPTIONS = {
    ("aws:ec2/securityGroup:SecurityGroup", "description"):
        ("CreateSecurityGroupRequest", "Description"),
    ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "description"):
        ("UserIdGroupPair", "Description"),
    ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "description"):
        ("IpRange", "Description"),
}
def documented_rule(shape: str, member: str) -> tuple[frozenset[str], int]:
    """The characters and the length a member's documentation allows (parsed by the review's
    own reader, platform_facts.awsapi)."""
    from platform_facts.awsapi import _prose

    characters, length = _prose(EC2.shape_for(shape).members[member].documentation)
    assert characters is not None and length is not None, (shape, member)
    return characters, length


def test_the_documented_rules_read_as_ec2_states_them():
    characters, length = documented_rule("CreateSecurityGroupRequest", "Description")
    assert length == 255
    assert {"a", "Z", "0", " ", ".", "&", ";", "$", "*", "{", "]"} <= characters
    assert not {"'", '"', "\\", "%", "?", "<", "~"} & characters
    assert len(characters) == 26 * 2 + 10 + 1 + len("._-:/()#,@[]+=&;{}!$*")
    # Each member's own text: a rule naming another security group allows no "&".
    pair, _ = documented_rule("UserIdGroupPair", "Description")
    assert characters - pair == {"&"} and documented_rule("IpRange", "Description") == (
        characters, length)


def test_every_security_group_description_is_one_ec2_accepts(stack):
    checked = 0
    for resource in stack.resources:
        key = (resource.type, "description")
        if key not in DESCRIPTIONS or not isinstance(resource.inputs.get("description"), str):
            continue
        characters, length = documented_rule(*DESCRIPTIONS[key])
        value = resource.inputs["description"]
        bad = sorted(set(value) - characters)
        assert not bad and len(value) <= length, (
            f"{resource.type} {resource.name}: description {value!r} has {bad} "
            f"({'.'.join(DESCRIPTIONS[key])}: {len(characters)} characters allowed)")
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("value", ["the cluster's nodes", 'say "hi"', "100%"])
def test_a_description_outside_the_rule_is_caught(value):
    characters, _ = documented_rule("CreateSecurityGroupRequest", "Description")
    assert set(value) - characters


# -- the review's aws-api-rules ---------------------------------------------------------------


def _constrained(rule) -> bool:
    return bool(rule.minimum is not None or rule.maximum is not None or rule.pattern
                or rule.enum or rule.characters)


def test_the_mapping_covers_every_api_constrained_input_of_both_plans(evaluations):
    """Every AWS type of both plans has its create operation; every input path resolves to a
    member of botocore's model; every constrained member of the operation is reached by an
    input of the plans, by an SDK input of the same name (matched by itself once set), or is
    declared as set by no input, with why."""
    from platform_facts import awsapi, sdk_types
    from platformctl.crossguard import from_recording

    covered: dict[str, set[str]] = {}
    for evaluation in evaluations.values():
        for resource in evaluation.resources:
            if not resource.type.startswith("aws:"):
                continue
            assert resource.type in awsapi.OPERATIONS, resource.type
            props = from_recording(resource).props
            service, operation, _ = awsapi.OPERATIONS[resource.type]
            for member in awsapi.mapping(resource.type, props).values():
                if member is None:
                    continue
                call, _, path = member.rpartition(":")
                if path:  # "Call:" alone: what is under the input matches the call's members
                    awsapi.rule_for(service, call or operation, path.replace("*", "IpRanges"))
                covered.setdefault(resource.type, set()).add(
                    path.split(".")[0].removesuffix("[]").lower())
    assert len(covered) >= 40
    for type_token in covered:
        service, operation, _ = awsapi.OPERATIONS[type_token]
        cls = sdk_types.resource_class(type_token)
        sdk_inputs = {k.lower() for k in sdk_types.input_types(sdk_types.args_class(cls))}
        declared = awsapi.NOT_FROM_INPUTS.get(type_token, {})
        members = awsapi._model(service).operation_model(operation).input_shape.members
        for member in members:
            if not _constrained(awsapi.rule_for(service, operation, member)):
                continue
            assert (member.lower() in covered[type_token] or member.lower() in sdk_inputs
                    or member in declared), (type_token, member)
        assert set(declared) <= set(members), type_token


@pytest.mark.parametrize(("type_token", "props", "expected"), [
    ("aws:ec2/securityGroup:SecurityGroup", {"description": "the cluster's nodes"},
     "description \"the cluster's nodes\" is refused by the AWS API "
     "(ec2.CreateSecurityGroup.Description): has \"'\""),
    # A rule naming another group allows no '&'; one naming a CIDR range does.
    ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
     {"description": "a&b", "referencedSecurityGroupId": "sg-1"}, "UserIdGroupPairs[].Description"),
    ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
     {"description": "a&b", "cidrIpv4": "10.0.0.0/8"}, None),
    ("aws:ec2/securityGroup:SecurityGroup",
     {"ingress": [{"description": "ok", "cidrBlocks": ["10.0.0.0/8"]},
                  {"description": "a&b", "securityGroups": ["sg-1"]}]},
     "ingress[1].description 'a&b'"),
    ("aws:xray/group:Group", {"groupName": "g" * 32}, None),
    ("aws:xray/group:Group", {"groupName": "g" * 33}, "33 characters, more than the 32"),
    ("aws:iam/role:Role", {"name": "r" * 64}, None),
    ("aws:iam/role:Role", {"name": "r" * 65}, "iam.CreateRole.RoleName"),
    ("aws:iam/role:Role", {"name": "has space"}, "does not match the pattern"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", {"alarmActions": ["a"] * 5}, None),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", {"alarmActions": ["a"] * 6}, "6 entries"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", {"statistic": "Mean"}, "not one of"),
    ("aws:iam/rolePolicy:RolePolicy", {"role": "r" * 65}, "iam.PutRolePolicy.RoleName"),
])
def test_aws_api_rules_boundary(type_token, props, expected):
    from platform_guard.policies import BY_NAME

    from platformctl.crossguard import GuardResource, check

    subject = GuardResource(type=type_token, name="subject",
                            urn=f"urn:pulumi:t::p::{type_token}::subject", props=props)
    report = check([subject], {}, [BY_NAME["aws-api-rules"]], checks=[])
    messages = [v.message for v in report.violations]
    if expected is None:
        assert messages == []
    else:
        assert len(messages) == 1 and expected in messages[0], messages
        assert report.violations[0].enforcement == "mandatory"


def test_the_review_refuses_a_value_the_aws_api_refuses(tmp_path, capsys):
    """A stack whose values break an AWS API rule exits 1 with the resource, input and rule
    named: a long runbook URL makes the alarms' descriptions (which end with it) longer than
    the 1024 characters PutMetricAlarm takes."""
    import json

    from platformctl import cli
    from tests.conftest import REPO, mutate, stack_config, write_stack

    url = "https://github.com/example-org/platform/blob/main/" + "d/" * 480 + "runbooks"
    path = write_stack(tmp_path, mutate(stack_config("dev"), "platform:alerting.runbookBaseUrl",
                                        url))
    code = cli.main(["review", str(path), "--project-dir", str(REPO), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 1, err
    refused = [v for v in json.loads(out)["policies"]["mandatory"]]
    assert {v["policy"] for v in refused} == {"aws-api-rules"}
    assert len(refused) == 4  # every alarm of the stack
    assert all("alarmDescription" in v["message"] and "PutMetricAlarm.AlarmDescription" in
               v["message"] and "more than the 1024 allowed" in v["message"] for v in refused)


def test_every_pattern_of_the_mapped_operations_is_judged():
    """No rule is skipped for want of a Python regex: every pattern of every member of every
    mapped operation compiles (Auto Scaling's surrogate-pair ranges are translated)."""
    from platform_facts import awsapi

    skipped = []
    for service, operation, _ in awsapi.OPERATIONS.values():
        shape = awsapi._model(service).operation_model(operation).input_shape
        for member in shape.members:
            rule = awsapi.rule_for(service, operation, member)
            if rule.pattern and awsapi._compiled(rule.pattern) is None:
                skipped.append((operation, member))
    assert skipped == []
    rule = awsapi.rule_for("autoscaling", "CreateAutoScalingGroup", "AutoScalingGroupName")
    assert list(rule.problems("dev-nat-instance")) == []
    assert list(rule.problems("bad\x00name"))


# -- tags ------------------------------------------------------------------------------------

def test_every_tagged_type_of_both_plans_has_its_tag_rules(evaluations):
    from platform_facts import awsapi

    tagged = {r.type for ev in evaluations.values() for r in ev.resources
              if r.type.startswith("aws:") and r.inputs.get("tags")}
    assert tagged
    assert {t for t in tagged if awsapi.tag_rules(t) is None} == set()


@pytest.mark.parametrize("type_token, key, value, refused", [
    ("aws:ec2/vpc:Vpc", "k" * 127, "v" * 256, None),
    ("aws:ec2/vpc:Vpc", "k" * 128, "v", "more than the 127 allowed"),
    ("aws:ec2/vpc:Vpc", "k", "v" * 257, "more than the 256 allowed"),
    ("aws:ec2/vpc:Vpc", "aws:team", "v", "which AWS reserves"),
    ("aws:iam/role:Role", "owner", "platform-team@example.com", None),
    ("aws:iam/role:Role", "owner", "Platform Team <team@example.com>", "does not match"),
    ("aws:cloudwatch/logGroup:LogGroup", "cost-center", "cc/1=a+b", None),
    ("aws:cloudwatch/logGroup:LogGroup", "cost-center", "cc#1", "does not match"),
    ("aws:rds/instance:Instance", "team", "platform", None),
    ("aws:rds/instance:Instance", "rds:team", "platform", "which AWS reserves"),
    ("aws:rds/instance:Instance", "team", "tab\there", "does not match"),
    ("aws:kms/key:Key", "k" * 128, "v", None),
    ("aws:kms/key:Key", "k" * 129, "v", "more than the 128 allowed"),
])
def test_tag_keys_and_values_are_held_to_each_services_rules(type_token, key, value, refused):
    from platform_facts import awsapi

    found = awsapi.problems(type_token, {"tags": {key: value}})
    if refused is None:
        assert found == []
    else:
        assert found and all(f[0] == f"tags.{key}" for f in found)
        assert any(refused in f[3] for f in found), found


def test_auto_scaling_tags_are_a_list_of_key_and_value():
    from platform_facts import awsapi

    found = awsapi.problems("aws:autoscaling/group:Group", {"tags": [
        {"key": "k" * 129, "value": "v", "propagateAtLaunch": True}]})
    assert [f[3] for f in found] == ["the key 129 characters, more than the 128 allowed"]


def test_the_reviews_table_is_what_botocores_models_give():
    """The review reads awsapi_rules.json, not botocore: regenerated from the pinned botocore,
    it is byte-identical (a botocore bump or a mapping change without `--write` fails here)."""
    import json

    from platform_facts import awsapi

    assert json.dumps(awsapi.build(), indent=1) + "\n" == \
        awsapi.RULES_FILE.read_text(encoding="utf-8")
    assert awsapi.main([]) == 0


def test_the_table_holds_the_rule_of_every_constrained_member_an_input_reaches():
    """The table and botocore agree member by member: each mapped path's rule read from the
    model equals the table's (so the review's verdicts are botocore's)."""
    from platform_facts import awsapi

    table = awsapi._table()
    checked = 0
    for service, operation, _ in awsapi.OPERATIONS.values():
        for member in awsapi._model(service).operation_model(operation).input_shape.members:
            rule = awsapi.rule_for(service, operation, member)
            assert table.rules.get(f"{service}.{operation}", {}).get(member) == \
                (rule if rule.constrained else None), (operation, member)
            checked += 1
    assert checked > 300


def test_every_input_of_both_plans_reaches_a_member_or_says_why_not(evaluations):
    """Input first: each top-level input of every AWS resource of both plans is matched to a
    member by name, mapped by the table (to a member, a member of the call the provider makes
    after the create, or None: not sent, with why in a comment), or is `tags` (the tag rules).
    So no input the API constrains goes unjudged for want of a mapping."""
    from platform_facts import awsapi
    from platformctl.crossguard import from_recording

    table = awsapi._table()
    unmapped, judged = set(), 0
    for evaluation in evaluations.values():
        for resource in evaluation.resources:
            if not resource.type.startswith("aws:"):
                continue
            props = dict(from_recording(resource).props)
            service, operation, mapped = awsapi.OPERATIONS[resource.type]
            top = table.names.get(f"{service}.{operation}", {}).get("", {})
            for key in props:
                if key == "tags" or key.lower() in top or any(
                        m == key or m.startswith((f"{key}.", f"{key}[]")) for m in mapped):
                    continue
                unmapped.add((resource.type, key))
            judged += sum(1 for _ in awsapi.judged(resource.type, props))
    assert unmapped == set()
    assert judged > 2500  # values held to a rule across both plans (2,857 when written)


@pytest.mark.parametrize("type_token, props, path, refused", [
    # Nested, matched by name under a structure the table maps (LaunchTemplateData).
    ("aws:ec2/launchTemplate:LaunchTemplate",
     {"blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {"volumeType": "gp9"}}]},
     "blockDeviceMappings[0].ebs.volumeType", "not one of"),
    ("aws:ec2/launchTemplate:LaunchTemplate",
     {"metadataOptions": {"httpTokens": "always", "httpPutResponseHopLimit": 2}},
     "metadataOptions.httpTokens", "not one of"),
    # Nested under a member matched by name (eks's camelCase members).
    ("aws:eks/nodeGroup:NodeGroup", {"scalingConfig": {"minSize": -1, "maxSize": 3}},
     "scalingConfig.minSize", "below the minimum 0"),
    # Inputs under an input the table sends to the call the provider makes after the create.
    ("aws:autoscaling/group:Group",
     {"instanceRefresh": {"strategy": "Rolling", "preferences": {"minHealthyPercentage": 150}}},
     "instanceRefresh.preferences.minHealthyPercentage", "above the maximum 100"),
    ("aws:autoscaling/group:Group", {"instanceRefresh": {"strategy": "Sideways"}},
     "instanceRefresh.strategy", "not one of"),
    # The elements of a list the table maps (enabledClusterLogTypes: logging's types[]).
    ("aws:eks/cluster:Cluster", {"enabledClusterLogTypes": ["api", "bogus"]},
     "enabledClusterLogTypes[1]", "not one of"),
    # A renamed structure (vpcConfig: resourcesVpcConfig) whose inputs are valid.
    ("aws:eks/cluster:Cluster", {"vpcConfig": {"subnetIds": ["subnet-1"],
                                               "endpointPublicAccess": True}}, None, None),
])
def test_nested_and_renamed_inputs_are_judged(type_token, props, path, refused):
    from platform_facts import awsapi

    found = awsapi.problems(type_token, props)
    if refused is None:
        assert found == []
    else:
        assert any(f[0] == path and refused in f[3] for f in found), found
