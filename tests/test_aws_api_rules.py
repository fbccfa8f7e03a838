"""The AWS API's own rules on the values the plans send, read from botocore's service models
(installed with the project). EC2 states its character rules only in the members' documentation
("Valid characters: a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*"): they are parsed from that
text here, never typed by hand. The provider checks only the length, so a value outside them
passes a preview and fails `pulumi up` at create."""

from __future__ import annotations

import html
import re

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
_RULE = re.compile(r"(?:Valid characters:|Allowed characters are)\s*(.+?)(?:</p>|$)")
_LENGTH = re.compile(r"Up to (\d+) characters")


def documented_rule(shape: str, member: str) -> tuple[frozenset[str], int]:
    """The characters and the length a member's documentation allows."""
    text = EC2.shape_for(shape).members[member].documentation
    (allowed,) = _RULE.findall(text)
    allowed = html.unescape(allowed).strip().rstrip(".")
    head, _, literal = allowed.partition(", and ")
    characters: set[str] = set(literal)
    for part in head.split(", "):
        if re.fullmatch(r"\w-\w", part):
            characters |= {chr(c) for c in range(ord(part[0]), ord(part[2]) + 1)}
        elif part == "spaces":
            characters.add(" ")
        else:
            raise AssertionError(f"{shape}.{member}: cannot read {part!r} in {allowed!r}")
    (length,) = _LENGTH.findall(text)
    return frozenset(characters), int(length)


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
