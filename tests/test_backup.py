"""Backups and disaster recovery (components/backup.py): what the vault snapshots and how it finds
it, the copy region in prod (volumes copied, the database's point-in-time recovery replicated),
nothing deletable by a command in prod, priced, and refused when misconfigured."""

from __future__ import annotations

import pytest

from components.backup import CLUSTER_TAG, NAMESPACE_TAG
from platformctl import cli
from platformctl.pricing import cost_report
from tests import k8s_objects
from tests.conftest import mutate, stack_config, write_stack

SELECTION = "aws:backup/selection:Selection"
PLAN = "aws:backup/plan:Plan"
VAULT = "aws:backup/vault:Vault"
REPLICATION = ("aws:rds/instanceAutomatedBackupsReplication:"
               "InstanceAutomatedBackupsReplication")


def test_the_volumes_of_the_protected_namespaces_are_snapshot_daily(stack):
    """The gp3 StorageClass writes the tags the selection reads: a volume of a claim in the vault
    namespace of this cluster carries exactly the tags the selection asks for."""
    (storage_class,) = [r for r in stack.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
                        if r.inputs["metadata"]["name"] == "gp3"]
    params = k8s_objects.manifest(storage_class)["parameters"]
    written = dict(v.split("=", 1) for k, v in params.items() if k.startswith("tagSpecification"))
    cluster = stack.outputs["clusterName"].value
    assert written == {CLUSTER_TAG: cluster, NAMESPACE_TAG: "{{ .PVCNamespace }}"}
    (selection,) = stack.of_type(SELECTION)
    (condition,) = selection.inputs["conditions"]
    wanted = {e["key"].removeprefix("aws:ResourceTag/"): e["value"]
              for e in condition["stringEquals"]}
    vault_volume_tags = {key: value.replace("{{ .PVCNamespace }}", "vault")
                         for key, value in written.items()}
    assert wanted == vault_volume_tags
    assert selection.inputs["resources"] == ["arn:aws:ec2:*:*:volume/*"]
    (plan,) = stack.of_type(PLAN)
    (rule,) = plan.inputs["rules"]
    assert rule["schedule"] == "cron(0 5 ? * * *)"
    assert rule["lifecycle"]["deleteAfter"] == stack.config.backup.retention_days


def test_prod_copies_to_a_second_region_and_replicates_the_databases_recovery(evaluations):
    prod = evaluations["prod"]
    config = prod.config.backup
    (rule,) = prod.one(PLAN, "prod-daily").inputs["rules"]
    (copy,) = rule["copyActions"]
    assert copy["destinationVaultArn"] == (
        f"arn:aws:backup:{config.copy_region}:123456789012:backup-vault:platform-prod-dr")
    assert copy["lifecycle"]["deleteAfter"] == config.copy_retention_days == 35
    copy_vault = prod.one(VAULT, "prod-dr-backup")
    assert copy_vault.inputs["name"] == "platform-prod-dr"
    (replication,) = prod.of_type(REPLICATION)
    assert replication.inputs["retentionPeriod"] == 7
    database = prod.one("aws:rds/instance:Instance", "prod-postgres")
    assert database.urn in replication.property_dependencies["sourceDbInstanceArn"]
    # Dev keeps its backups at home, for a week.
    dev = evaluations["dev"]
    assert dev.of_type(REPLICATION) == [] and len(dev.of_type(VAULT)) == 1
    (dev_rule,) = dev.one(PLAN, "dev-daily").inputs["rules"]
    assert not dev_rule.get("copyActions") and dev_rule["lifecycle"]["deleteAfter"] == 7


def test_in_prod_no_command_deletes_a_recovery_point(evaluations):
    """Vaults, their keys and the replicated backups are protected, and each vault is locked:
    a recovery point lives its retention whoever asks."""
    prod = evaluations["prod"]
    for vault in prod.of_type(VAULT):
        assert vault.protect and vault.inputs["forceDestroy"] is False
        (lock,) = [r for r in prod.of_type(
            "aws:backup/vaultLockConfiguration:VaultLockConfiguration")
            if r.parent == vault.urn]
        assert lock.protect and lock.inputs["minRetentionDays"] >= 35
    for key in prod.of_type("aws:kms/key:Key"):
        if key.name.endswith("-backup"):
            assert key.protect and key.inputs["deletionWindowInDays"] == 30
    (replication,) = prod.of_type(REPLICATION)
    assert replication.protect
    dev = evaluations["dev"]
    assert dev.of_type("aws:backup/vaultLockConfiguration:VaultLockConfiguration") == []


def test_backups_are_priced(evaluations):
    for name, evaluation in evaluations.items():
        report = cost_report(evaluation)
        lines = [line for line in report.lines if line.component == "Backup"]
        assert lines and all(line.unpriced_reason is None for line in lines), name
        snapshots = next(line for line in lines if line.key == "snapshots")
        # 3 (prod) or 1 (dev) Vault servers x (5 GiB raft data + 10 GiB audit log).
        gib = 45 if name == "prod" else 15
        days = evaluation.config.backup.retention_days
        assert float(snapshots.monthly_usd) == pytest.approx(gib * (0.5 + 0.02 * days) * 0.05,
                                                             abs=0.01)
        assert snapshots.usage
    prod_items = {line.item for line in cost_report(evaluations["prod"]).lines
                  if line.component == "Backup"}
    assert any(item.startswith("database backups replicated to the copy region")
               for item in prod_items)


@pytest.mark.parametrize(("stack_name", "changes", "message"), [
    ("prod", {"platform:backup.copyRegion": None},
     "platform:backup.copyRegion: null: is weakened in a prod-preset stack"),
    ("dev", {"platform:backup.copyRegion": "us-east-1"},
     "backup.copyRegion: 'us-east-1': is the stack's own region"),
    ("dev", {"platform:backup.namespaces": ["vault", "vault"]},
     'backup.namespaces: ["vault", "vault"]: lists a namespace twice'),
    ("dev", {"platform:backup.schedule": "daily"}, "backup.schedule: 'daily'"),
])
def test_bad_backup_settings_are_config_errors(tmp_path, capsys, stack_name, changes, message):
    config = stack_config(stack_name)
    for key, value in changes.items():
        config = mutate(config, key, value)
    path = write_stack(tmp_path, config)
    assert cli.main(["review", str(path), "--format", "json"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
