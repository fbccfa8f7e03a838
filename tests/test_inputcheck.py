"""The offline stand-in for the provider's Check: recorded inputs against the SDK's declared
input types, at the top level and nested inside lists of input types."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from components import tagging
from components.network import Network
from platformctl import inputcheck
from platformctl.harness import InputCheckError, evaluate
from platformctl.recording import RecordedResource
from stacks import config as config_model
from tests.conftest import REPO


def resource(type_token: str, inputs: dict) -> RecordedResource:
    return RecordedResource(
        type=type_token, name="r", urn=f"urn:test::{type_token}::r", custom=True, inputs=inputs,
        parent=None, dependencies=[], property_dependencies={}, provider=None, protect=False,
        delete_before_replace=False, retain_on_delete=False, ignore_changes=[],
        additional_secret_outputs=[],
    )


VPC = "aws:ec2/vpc:Vpc"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
LISTENER = "aws:lb/listener:Listener"
GOOD_LISTENER = {
    "loadBalancerArn": "arn:lb",
    "defaultActions": [{"type": "forward",
                        "forward": {"targetGroups": [{"arn": "arn:tg", "weight": 1}]}}],
}


def test_both_real_stacks_pass(evaluations):
    for evaluation in evaluations.values():
        assert inputcheck.check(evaluation.resources) == []


def test_valid_nested_inputs_pass():
    assert inputcheck.check([resource(LISTENER, GOOD_LISTENER)]) == []
    assert inputcheck.check([resource(LAUNCH_TEMPLATE, {
        "blockDeviceMappings": [{"deviceName": "/dev/xvda",
                                 "ebs": {"volumeSize": 50, "volumeType": "gp3"}}],
    })]) == []


@pytest.mark.parametrize(("type_token", "inputs", "expected"), [
    # top level
    (VPC, {"cidrBlok": "10.0.0.0/16"}, "aws:ec2/vpc:Vpc 'r' cidrBlok: unknown property"),
    (VPC, {"cidrBlock": "10.0.0.0/16", "enableDnsSupport": "yes"},
     "aws:ec2/vpc:Vpc 'r' enableDnsSupport: expected bool, got str 'yes'"),
    ("aws:ec2/routeTableAssociation:RouteTableAssociation", {"subnetId": "subnet-1"},
     "routeTableId: missing required property"),
    # two levels deep, inside a list of nested input types
    (LAUNCH_TEMPLATE, {"blockDeviceMappings": [{"ebs": {"volumSize": 50}}]},
     "blockDeviceMappings[0].ebs.volumSize: unknown property"),
    (LAUNCH_TEMPLATE, {"blockDeviceMappings": [{"ebs": {"volumeSize": "fifty"}}]},
     "blockDeviceMappings[0].ebs.volumeSize: expected int, got str 'fifty'"),
    (LISTENER, {"loadBalancerArn": "arn:lb", "defaultActions": [
        {"type": "forward", "forward": {"targetGroups": [{"weight": 1}]}}]},
     "defaultActions[0].forward.targetGroups[0].arn: missing required property"),
    # shapes
    (VPC, {"cidrBlock": ["10.0.0.0/16"]}, "cidrBlock: expected string, got list"),
    (LAUNCH_TEMPLATE, {"blockDeviceMappings": {"ebs": {}}},
     "blockDeviceMappings: expected a list, got dict"),
    (VPC, {"cidrBlock": "10.0.0.0/16", "tags": ["a"]}, "tags: expected a map, got list"),
])
def test_the_check_rejects_what_the_provider_would(type_token, inputs, expected):
    problems = inputcheck.check([resource(type_token, inputs)])
    assert any(expected in p for p in problems), problems


def test_free_form_maps_are_not_checked_inside():
    assert inputcheck.check([resource(VPC, {"cidrBlock": "10.0.0.0/16",
                                            "tags": {"anything": "goes", "Name": "x"}})]) == []


def test_integers_arrive_as_numbers_and_pass():
    # The wire has only doubles; the harness turns integral ones back into ints.
    assert inputcheck.check([resource("aws:cloudwatch/logGroup:LogGroup",
                                      {"retentionInDays": 14})]) == []


def test_unknown_types_are_reported():
    problems = inputcheck.check([resource("aws:ec2/notAThing:NotAThing", {})])
    assert problems == ["aws:ec2/notAThing:NotAThing 'r': no Python SDK class declares this type"]


def _misspelling_program(source):
    """The real network, plus a VPC whose props a transformation corrupts the way only raw
    props can (the SDK's keyword arguments would refuse the typo)."""
    cfg = config_model.load(source)
    tagging.install(cfg.standard_tags)

    def corrupt(args: pulumi.ResourceTransformationArgs):
        if args.type_ == "aws:ec2/vpc:Vpc" and args.name == "typo-vpc":
            props = dict(args.props)
            props["enable_dns_hostname"] = props.pop("enable_dns_hostnames")
            return pulumi.ResourceTransformationResult(props, args.opts)
        return None

    pulumi.runtime.register_stack_transformation(corrupt)
    network = Network(cfg.environment, cfg.network, cfg.region)
    aws.ec2.Vpc("typo-vpc", cidr_block="10.99.0.0/16", enable_dns_hostnames=True,
                opts=pulumi.ResourceOptions(parent=network))
    return {}


def test_an_evaluation_with_a_bad_input_fails_naming_resource_and_path():
    with pytest.raises(InputCheckError) as caught:
        evaluate("dev", project_dir=REPO, program=_misspelling_program)
    assert caught.value.problems == [
        "aws:ec2/vpc:Vpc 'typo-vpc' enable_dns_hostname: unknown property (not declared by VpcArgs)"
    ]
