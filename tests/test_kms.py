"""Every KMS key the platform creates has its own key policy: the account and the deploying role
administer it and never use it; only the role that needs the key uses it. Without a policy,
AWS's default hands the key to IAM (any principal with kms:Decrypt on * could use it)."""

from __future__ import annotations

import json

from platformctl.recording import Evaluation

KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
USE = {"kms:encrypt", "kms:decrypt", "kms:reencrypt*", "kms:reencryptfrom", "kms:reencryptto",
       "kms:generatedatakey*", "kms:generatedatakey", "kms:creategrant", "kms:*"}


def _policies(stack: Evaluation) -> dict[str, dict]:
    """The key policy document of each key, by the key's resource name."""
    keys = {k.urn: k for k in stack.of_type(KEY)}
    found: dict[str, dict] = {}
    for policy in stack.of_type(KEY_POLICY):
        (key_urn,) = policy.property_dependencies["keyId"]
        assert keys[key_urn].name not in found, "one policy per key"
        found[keys[key_urn].name] = json.loads(policy.inputs["policy"])
    return found


def _principals(statement: dict) -> list[str]:
    principal = statement["Principal"]["AWS"]
    return principal if isinstance(principal, list) else [principal]


def test_every_key_has_a_policy_that_keeps_administration_apart_from_use(stack):
    policies = _policies(stack)
    assert sorted(policies) == sorted(k.name for k in stack.of_type(KEY))
    admin = stack.config.cluster.admin_role_arn
    root = "arn:aws:iam::123456789012:root"
    for name, document in policies.items():
        (administer, *uses) = document["Statement"]
        assert sorted(_principals(administer)) == sorted([root, admin]), name
        assert not {a.lower() for a in administer["Action"]} & USE, name
        assert uses, name
        for statement in uses:
            assert "*" not in _principals(statement) and root not in _principals(statement), name


def test_only_vault_uses_the_unseal_key_and_the_database_key_only_through_rds(stack):
    env = stack.stack
    policies = _policies(stack)
    (vault,) = policies[f"{env}-vault-unseal"]["Statement"][1:]
    (user,) = _principals(vault)
    assert f":role/{env}-vault" in user  # Vault's Pod Identity role (mock ARN)
    assert vault["Action"] == ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
    (rds,) = policies[f"{env}-rds"]["Statement"][1:]
    assert rds["Condition"]["StringEquals"]["kms:ViaService"] == "rds.us-east-1.amazonaws.com"
    eks = policies[f"{env}-eks-secrets"]["Statement"][1:]
    assert [s["Sid"] for s in eks] == ["EksEnvelopeEncryption", "CreateTheClustersGrant"]
    assert eks[1]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
