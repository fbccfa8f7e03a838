"""The Database component (RDS for PostgreSQL): private, encrypted, recoverable, and in prod
impossible to lose by a command."""

from __future__ import annotations

import pytest

from platformctl.harness import evaluate
from platformctl.recording import Evaluation, Secret, mask_secrets
from stacks.config import ConfigError
from tests.conftest import REPO, mutate, stack_config, write_stack
from tests.units import database as database_alone
from tests.units import evaluate_alone

RDS = "aws:rds/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


def _db(stack: Evaluation):
    (db,) = stack.of_type(RDS)
    return db


def _key_of(stack: Evaluation, arn: str):
    (key,) = [k for k in stack.of_type("aws:kms/key:Key") if k.outputs["arn"] == arn]
    return key


def test_prod_database_survives_destroy_and_replacement(evaluations):
    prod = evaluations["prod"]
    db = _db(prod)
    # `pulumi destroy` or a replacing change fails on a protected resource ...
    assert db.protect is True
    assert _key_of(prod, db.inputs["kmsKeyId"]).protect is True  # the data's key too
    # ... and even outside Pulumi, RDS refuses to delete it, and would keep a final snapshot
    # and the automated backups.
    assert db.inputs["deletionProtection"] is True
    assert db.inputs["skipFinalSnapshot"] is False
    assert db.inputs["finalSnapshotIdentifier"] == f"{db.inputs['identifier']}-final"
    assert db.inputs["deleteAutomatedBackups"] is False
    assert db.inputs["backupRetentionPeriod"] >= 14
    assert db.inputs["multiAz"] is True


def test_dev_skips_the_production_controls_explicitly(evaluations):
    db = _db(evaluations["dev"])
    assert db.protect is False
    assert (db.inputs["multiAz"], db.inputs["deletionProtection"],
            db.inputs["skipFinalSnapshot"]) == (False, False, True)
    stated = stack_config("dev")["platform:database"]
    assert {"multiAz", "deletionProtection", "finalSnapshot", "protect"} <= set(stated)


def test_database_is_private_and_reachable_only_from_the_nodes(stack):
    db = _db(stack)
    assert db.inputs["publiclyAccessible"] is False
    (subnet_group,) = stack.of_type("aws:rds/subnetGroup:SubnetGroup")
    assert db.inputs["dbSubnetGroupName"] == subnet_group.outputs["name"]
    assert set(subnet_group.inputs["subnetIds"]) == set(stack.outputs["databaseSubnetIds"].value)
    (sg_id,) = db.inputs["vpcSecurityGroupIds"]
    rules = [r for r in stack.of_type(INGRESS) if r.inputs["securityGroupId"] == sg_id]
    (node_sg,) = [s for s in stack.of_type("aws:ec2/securityGroup:SecurityGroup")
                  if s.name.endswith("-nodes")]
    assert [(r.inputs["fromPort"], r.inputs["toPort"], r.inputs["ipProtocol"],
             r.inputs.get("referencedSecurityGroupId"), r.inputs.get("cidrIpv4"))
            for r in rules] == [(5432, 5432, "tcp", node_sg.id, None)]
    # The nodes carry that security group.
    templates = [t for t in stack.of_type("aws:ec2/launchTemplate:LaunchTemplate")
                 if stack.component_of(t).type == "platform:index:Cluster"]
    assert templates and all(node_sg.id in t.inputs["vpcSecurityGroupIds"] for t in templates)


def test_storage_is_encrypted_gp3_with_autoscaling(stack):
    db = _db(stack)
    cfg = stack.config.database
    assert db.inputs["storageEncrypted"] is True
    assert _key_of(stack, db.inputs["kmsKeyId"]).inputs["enableKeyRotation"] is True
    assert db.inputs["storageType"] == "gp3"
    assert db.inputs["allocatedStorage"] == cfg.allocated_storage_gib
    assert db.inputs["maxAllocatedStorage"] == cfg.max_allocated_storage_gib > cfg.allocated_storage_gib


def test_engine_is_pinned_on_standard_support(stack):
    db = _db(stack)
    assert db.inputs["engine"] == "postgres"
    assert db.inputs["engineVersion"] == stack.config.database.engine_version == "18.4"
    assert db.inputs["engineLifecycleSupport"] == "open-source-rds-extended-support-disabled"
    assert db.inputs["autoMinorVersionUpgrade"] is True
    assert db.inputs["maintenanceWindow"] == stack.config.database.maintenance_window
    assert db.inputs["backupWindow"] == stack.config.database.backup_window


def test_parameter_group_forces_tls_and_logs_slow_queries(stack):
    (group,) = stack.of_type("aws:rds/parameterGroup:ParameterGroup")
    assert group.inputs["family"] == "postgres18"
    parameters = {p["name"]: p["value"] for p in group.inputs["parameters"]}
    assert parameters["rds.force_ssl"] == "1"
    assert parameters["log_min_duration_statement"] == str(stack.config.database.slow_query_ms)
    assert _db(stack).inputs["parameterGroupName"] == group.outputs["name"]


def test_performance_insights_where_the_class_supports_it(evaluations, tmp_path):
    for name in ("dev", "prod"):  # db.t4g.micro and db.t4g.small do not offer it
        assert not _db(evaluations[name]).inputs.get("performanceInsightsEnabled")
    config = mutate(stack_config("dev"), "platform:database.instanceClass", "db.m7g.large")
    evaluation = evaluate_alone(write_stack(tmp_path, config), database_alone)
    db = _db(evaluation)
    assert db.inputs["performanceInsightsEnabled"] is True
    assert db.inputs["performanceInsightsKmsKeyId"] == db.inputs["kmsKeyId"]
    assert db.inputs["performanceInsightsRetentionPeriod"] == 7  # the free tier


def test_master_password_is_generated_secret_and_write_only(stack):
    db = _db(stack)
    assert "password" not in db.inputs  # never the stored `password` input
    assert isinstance(db.inputs["passwordWo"], Secret)
    assert db.inputs["passwordWoVersion"] == stack.config.database.master_password_version
    assert "manageMasterUserPassword" not in db.inputs


def test_no_secret_appears_in_plaintext_in_outputs_or_inputs(stack):
    passwords = stack.of_type("random:index/randomPassword:RandomPassword")
    assert {p.name.rsplit("-", 2)[-2] for p in passwords} >= {"master", "grafana"}
    for password in passwords:
        secret_value = password.outputs["result"]
        assert len(secret_value) >= 24
        assert "result" in password.additional_secret_outputs
        for key, output in stack.outputs.items():
            if not output.secret:
                assert secret_value not in str(output.value), key
        for resource in stack.resources:
            assert secret_value not in str(mask_secrets(resource.inputs)), resource.name
    assert "databaseMasterPassword" not in stack.outputs
    assert stack.outputs["grafanaAdminPassword"].secret


@pytest.mark.parametrize("field", ["multiAz", "deletionProtection", "finalSnapshot", "protect"])
def test_a_safety_control_off_in_prod_is_a_config_error(tmp_path, field):
    config = mutate(stack_config("prod"), f"platform:database.{field}", False)
    with pytest.raises(ConfigError, match=f"platform:database.{field}: false: is weakened in a "
                       "prod-preset stack"):
        evaluate(write_stack(tmp_path, config), project_dir=REPO)
