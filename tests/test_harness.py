"""The offline evaluation harness: what it records, how it treats secrets, and that evaluations
are independent and repeatable."""

from __future__ import annotations

import re

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pytest

from platformctl import stackfile
from platformctl.harness import evaluate
from platformctl.recording import Secret, mask_secrets
from stacks import config as config_model
from tests.conftest import REPO, stack_config, write_stack
from tests.units import evaluate_alone, own_network


def test_records_parents_dependencies_and_providers(evaluations):
    dev = evaluations["dev"]
    subnet = dev.one("aws:ec2/subnet:Subnet", "dev-private-us-east-1a")
    vpc = dev.one("aws:ec2/vpc:Vpc", "dev-vpc")
    network = dev.one("platform:index:Network", "dev")
    assert subnet.parent == vpc.urn and vpc.parent == network.urn
    assert vpc.urn in subnet.dependencies
    assert subnet.property_dependencies["vpcId"] == [vpc.urn]
    (nat,) = dev.of_type("aws:autoscaling/group:Group")  # the NAT instance
    igw = dev.of_type("aws:ec2/internetGateway:InternetGateway")[0]
    assert igw.urn in nat.dependencies  # depends_on, not only data flow
    assert subnet.provider.endswith("::aws-provider-id")
    assert subnet.id.startswith("subnet-") and subnet.outputs["cidrBlock"] == subnet.inputs["cidrBlock"]
    assert dev.component_of(subnet) is network


def test_evaluations_are_independent_and_repeatable(evaluations):
    # The session's recording of dev (made first) against one made now, after many others.
    first, second = evaluations["dev"], evaluate("dev", project_dir=REPO)
    assert [(r.type, r.name, r.inputs) for r in sorted(first.resources, key=lambda r: r.urn)] == \
        [(r.type, r.name, r.inputs) for r in sorted(second.resources, key=lambda r: r.urn)]
    # A fresh root stack each time: the previous run's tagging transformation is not applied
    # twice, and the stack's own name is right after evaluating another stack (a unit is
    # enough: the root stack and the transformation are the harness's, whatever it builds).
    prod = evaluate_alone("prod", own_network)
    assert prod.stack == "prod" and prod.resources
    assert {r.tags["environment"] for r in prod.resources if r.tags} == {"prod"}


def test_an_evaluation_leaves_no_logger_behind():
    """Each evaluation's engine log is its own and goes with it: a process that evaluates many
    stacks (review --all's parent, a benchmark) does not keep a logger and its warnings per
    evaluation in `logging`'s registry."""
    import logging

    before = set(logging.Logger.manager.loggerDict)
    evaluation = evaluate_alone("dev", own_network)
    evaluate_alone("prod", own_network)
    assert set(logging.Logger.manager.loggerDict) == before
    assert evaluation.resources  # it ran


def _secret_program(source):
    from components import tagging
    from components.network import Network

    cfg = config_model.load(source)
    tagging.install(cfg.standard_tags)
    network = Network(cfg.environment, cfg.network, cfg.region)
    password = random.RandomPassword("db", length=24, special=False,
                                     opts=pulumi.ResourceOptions(parent=network))
    # The password flows into another resource's input, as a master password would.
    aws.ssm.Parameter("db-password", type="SecureString", value=password.result,
                      opts=pulumi.ResourceOptions(parent=network))
    return {"password": password.result, "token": pulumi.Output.secret("s3cr3t"), "plain": "ok"}


def test_secret_outputs_are_marked_like_the_engine_does():
    evaluation = evaluate("dev", project_dir=REPO, program=_secret_program)
    outputs = evaluation.outputs
    assert outputs["password"].secret  # via additionalSecretOutputs, applied by the monitor
    assert outputs["token"].secret and outputs["token"].shown() == "[secret]"
    assert not outputs["plain"].secret and outputs["plain"].shown() == "ok"
    parameter = evaluation.one("aws:ssm/parameter:Parameter", "db-password")
    assert isinstance(parameter.inputs["value"], Secret)
    assert mask_secrets(parameter.inputs)["value"] == "[secret]"
    assert "[secret]" == repr(parameter.inputs["value"])
    assert outputs["password"].value not in str(mask_secrets(parameter.inputs))


def test_secure_values_become_flagged_placeholders(tmp_path):
    config = stack_config("dev")
    config["platform:someToken"] = {"secure": "v1:abcdef"}
    config["platform:nested"] = {"url": {"secure": "v1:zzz"}, "plain": 1}
    read = stackfile.read(write_stack(tmp_path, config), "platform")
    token = read.config["platform:someToken"]
    assert token.startswith(stackfile.SECRET_PLACEHOLDER)
    assert f'"url": "{stackfile.SECRET_PLACEHOLDER}' in read.config["platform:nested"]
    # Each placeholder names its ciphertext's digest: a secret set anew is a changed value,
    # the same ciphertext the same one (what `review --base` compares).
    config["platform:someToken"] = {"secure": "v1:abcdeg"}
    again = stackfile.read(write_stack(tmp_path, config), "platform")
    assert again.config["platform:someToken"] != token
    config["platform:someToken"] = {"secure": "v1:abcdef"}
    assert stackfile.read(write_stack(tmp_path, config), "platform").config[
        "platform:someToken"] == token
    assert "v1:abcdef" not in token
    assert set(read.secret_keys) == {"platform:someToken", "platform:nested"}
    assert read.config["platform:network"].startswith("{")  # objects travel as JSON, as the CLI does


def test_unanswered_invokes_fail_loudly():
    def program(source):
        config_model.load(source)
        aws.ec2.get_vpc(default=True)
        return {}

    with pytest.raises(Exception, match="no answer for the invoke aws:ec2/getVpc:getVpc"):
        evaluate("dev", project_dir=REPO, program=program)


def test_no_stack_is_walked_per_resource_and_the_sdk_hook_is_restored(monkeypatch):
    # The SDK's source positions cost a tenth of a 200-team review; the harness turns
    # them off during the run. If the SDK moves its private hook, this says so.
    import pulumi.runtime.resource as sdk_resource

    from platformctl.harness import RecordingMonitor

    original = sdk_resource._get_stack_trace
    frames: list[int] = []
    register = RecordingMonitor.RegisterResource

    def counting(self, request):
        frames.append(len(request.stackTrace.frames))
        return register(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", counting)

    def program(source):
        config_model.load(source)
        aws.ssm.Parameter("plain", type="String", value="x")
        return {}

    evaluate("dev", project_dir=REPO, program=program)
    assert frames and set(frames) == {0}
    assert sdk_resource._get_stack_trace is original


# -- the mocks' ARNs ------------------------------------------------------------------------

# Where an ARN's service is not the SDK module's name.
_ARN_SERVICE_OF_MODULE = {"cloudwatch/logGroup": "logs", "vpc": "ec2"}
# Types with an ARN the IAM definitions have no template for, and the documented shape.
_ARN_WITHOUT_TEMPLATE = {
    # SNS API reference, Subscribe: SubscriptionArn is the topic's ARN and an id.
    "aws:sns/topicSubscription:TopicSubscription":
        r"arn:aws:sns:{region}:123456789012:[\w-]+:[0-9a-f-]{{36}}",
}


def _iam_templates() -> dict[tuple[str, str], str]:
    import json as json_
    from importlib import resources

    data = json_.loads(resources.files("parliament").joinpath("iam_definition.json").read_text())
    return {(service["prefix"], r["resource"]): r["arn"]
            for service in data for r in service["resources"]}


def _arn_pattern(template: str, region: str) -> re.Pattern[str]:
    parts = re.split(r"(\$\{\w+\})", template)
    pattern = ""
    for part in parts:
        if part == "${Partition}":
            pattern += "aws"
        elif part == "${Region}":
            pattern += re.escape(region)
        elif part == "${Account}":
            pattern += "123456789012"
        elif part.startswith("${"):
            pattern += r"[^:]+" if not part.endswith("WithPath}") else r".+"
        else:
            pattern += re.escape(part)
    return re.compile(pattern)


def _provider_regions(evaluation) -> dict[str, str]:
    regions = {r.urn: r.inputs.get("region") for r in evaluation.of_type("pulumi:providers:aws")}
    return {urn: region for urn, region in regions.items() if region}


def test_every_mock_arn_has_the_shape_and_region_aws_gives_it(evaluations):
    """Each ARN output the mocks give matches the ARN format of AWS's service authorization
    reference (the IAM definitions parliament ships) for its resource type, with the region of
    the provider the resource is registered with (the backup copy region's resources carry
    that region); a type whose SDK class has no such output gets none."""
    from platform_facts import sdk_types
    from platformctl.mocks import _ARNS

    templates = _iam_templates()
    checked: set[str] = set()
    for evaluation in evaluations.values():
        regions = _provider_regions(evaluation)
        for resource in evaluation.resources:
            if not resource.type.startswith("aws:"):
                assert "arn" not in resource.outputs, resource.type
                continue
            cls = sdk_types.resource_class(resource.type)
            region = regions.get((resource.provider or "").rsplit("::", 1)[0],
                                 evaluation.config.region)
            outputs = {"arn", "accessEntryArn", "associationArn"}
            declared = {o for o in outputs
                        if isinstance(getattr(cls, _snake(o), None), property)}
            assert {o for o in outputs if o in resource.outputs} == declared, resource.type
            for output in declared:
                value = resource.outputs[output]
                if resource.type in _ARN_WITHOUT_TEMPLATE:
                    pattern = re.compile(_ARN_WITHOUT_TEMPLATE[resource.type].format(
                        region=re.escape(region)))
                else:
                    module = resource.type.split(":")[1]
                    service = _ARN_SERVICE_OF_MODULE.get(
                        module, _ARN_SERVICE_OF_MODULE.get(module.split("/")[0],
                                                           module.split("/")[0]))
                    if resource.type in _ARNS:
                        assert _ARNS[resource.type][1] == service, resource.type
                        key = (service, _ARNS[resource.type][2])
                    else:  # made by the mocks' per-type code
                        key = {"aws:eks/nodeGroup:NodeGroup": ("eks", "nodegroup"),
                               "aws:rds/instance:Instance": ("rds", "db"),
                               "aws:sns/topicPolicy:TopicPolicy": ("sns", "topic"),
                               "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
                                   ("iam", "oidc-provider")}[resource.type]
                    pattern = _arn_pattern(templates[key], "" if service in ("iam", "budgets")
                                           else region)
                assert pattern.fullmatch(value), (resource.type, value, pattern.pattern)
                checked.add(resource.type)
    # The copy region's vault is where it is.
    (dr_vault,) = [v for v in evaluations["prod"].of_type("aws:backup/vault:Vault")
                   if v.name == "prod-dr-backup"]
    assert dr_vault.outputs["arn"] == ("arn:aws:backup:us-west-2:123456789012:backup-vault:"
                                       "platform-prod-dr")
    assert len(checked) >= 35, sorted(checked)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _options_program(_config):
    import pulumi
    import pulumi_aws as aws

    aws.ec2.Vpc("vpc", cidr_block="10.0.0.0/16", opts=pulumi.ResourceOptions(
        replace_on_changes=["enableDnsHostnames"], ignore_changes=["tags"], protect=True))
    return {}


def test_the_options_the_engine_diffs_with_are_recorded():
    """ignoreChanges, replaceOnChanges and protect reach the recording as the engine gets them
    (the review's `--base` applies them as the engine does)."""
    evaluation = evaluate("dev", project_dir=REPO, program=_options_program)
    vpc = evaluation.one("aws:ec2/vpc:Vpc", "vpc")
    assert (vpc.replace_on_changes, vpc.ignore_changes, vpc.protect) == (
        ["enableDnsHostnames"], ["tags"], True)
