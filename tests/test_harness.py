"""The offline evaluation harness: what it records, how it treats secrets, and that evaluations
are independent and repeatable."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_random as random
import pytest

from platformctl import stackfile
from platformctl.harness import evaluate
from platformctl.recording import Secret, mask_secrets
from stacks import config as config_model
from tests.conftest import REPO, stack_config, write_stack


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
    # twice, and the stack's own name is right after evaluating another stack.
    prod = evaluate("prod", project_dir=REPO)
    assert {r.tags["environment"] for r in prod.resources if r.tags} == {"prod"}


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
    assert read.config["platform:someToken"] == stackfile.SECRET_PLACEHOLDER
    assert f'"url": "{stackfile.SECRET_PLACEHOLDER}"' in read.config["platform:nested"]
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
