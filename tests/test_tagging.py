"""One tagging mechanism: every taggable AWS resource carries the standard tags in its own
`tags` input, with `service` from its component; what escapes the mechanism is caught."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from components import tagging
from components.network import Network
from platform_facts import sdk_types
from platformctl.harness import evaluate
from platformctl.recording import Evaluation
from stacks import config as config_model
from stacks.config import REQUIRED_TAG_KEYS
from tests.conftest import REPO


def untagged(evaluation: Evaluation) -> list[str]:
    """Every taggable AWS resource lacking a required tag, or with a wrong environment tag.
    Taggable is what the SDK says, read independently of the mechanism under test."""
    problems = []
    for resource in evaluation.resources:
        if not resource.custom or not resource.type.startswith("aws:"):
            continue
        if sdk_types.tags_shape(sdk_types.resource_class(resource.type)) is None:
            continue
        tags = resource.tags or {}
        missing = [k for k in REQUIRED_TAG_KEYS if not tags.get(k)]
        if missing:
            problems.append(f"{resource.type} {resource.name}: missing {missing}")
        elif tags["environment"] != evaluation.config.environment:
            problems.append(f"{resource.type} {resource.name}: environment {tags['environment']}")
    return problems


def test_every_taggable_resource_carries_the_standard_tags(stack):
    assert untagged(stack) == []
    taggable = [r for r in stack.resources if r.tags is not None]
    assert len(taggable) >= 15  # the check above looked at something


def test_service_tag_is_the_component_s(stack):
    services = {cls.type_token: cls.service for cls in tagging.PlatformComponent.__subclasses__()}
    seen = set()
    for resource in stack.resources:
        if resource.tags is not None:
            component = stack.component_of(resource)
            assert resource.tags["service"] == services[component.type], resource.name
            seen.add(resource.tags["service"])
    assert {"network", "cluster", "database"} <= seen


def test_component_tags_are_kept_and_standard_tags_win(stack):
    vpc = stack.of_type("aws:ec2/vpc:Vpc")[0]
    assert vpc.tags["Name"] == f"{stack.config.environment}-vpc"
    assert vpc.tags["managed-by"] == "pulumi"


def test_resources_without_tags_input_get_none(stack):
    for assoc in stack.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
        assert "tags" not in assoc.inputs


def test_taggability_is_read_off_the_sdk():
    shape = lambda token: sdk_types.tags_shape(sdk_types.resource_class(token))  # noqa: E731
    assert shape("aws:ec2/vpc:Vpc") == "map"
    assert shape("aws:rds/instance:Instance") == "map"
    assert shape("aws:ec2/routeTableAssociation:RouteTableAssociation") is None
    assert shape("aws:autoscaling/group:Group") == "other"  # a list of tag objects


def _untagged_program(_source):
    """A resource created outside the mechanism: no tagging installed for it."""
    cfg = config_model.load(_source)
    aws.s3.Bucket("stray", tags={"Name": "stray"})
    return {"environment": cfg.environment}


def test_a_resource_created_outside_the_mechanism_fails_the_check():
    evaluation = evaluate("dev", project_dir=REPO, program=_untagged_program)
    problems = untagged(evaluation)
    assert problems and "aws:s3/bucket:Bucket stray" in problems[0]


def _resource_outside_components(_source):
    cfg = config_model.load(_source)
    tagging.install(cfg.standard_tags)
    aws.s3.Bucket("orphan")
    return {}


def test_the_mechanism_refuses_a_taggable_resource_outside_every_component():
    with pytest.raises(tagging.UntaggedResourceError, match="not inside a platform component"):
        evaluate("dev", project_dir=REPO, program=_resource_outside_components)


def _tags_as_output(_source):
    cfg = config_model.load(_source)
    tagging.install(cfg.standard_tags)
    network = Network(cfg.environment, cfg.network, cfg.region)
    # A tags input that is itself an Output still gets the standard tags merged in.
    aws.ec2.SecurityGroup("late", vpc_id=network.vpc.id,
                          tags=network.vpc.id.apply(lambda vpc_id: {"Name": f"late-{vpc_id}"}),
                          opts=pulumi.ResourceOptions(parent=network))
    return {}


def test_tags_given_as_an_output_are_merged_too():
    evaluation = evaluate("dev", project_dir=REPO, program=_tags_as_output)
    sg = evaluation.one("aws:ec2/securityGroup:SecurityGroup", "late")
    assert sg.tags["Name"].startswith("late-vpc-")
    assert sg.tags["service"] == "network"
    assert untagged(evaluation) == []
