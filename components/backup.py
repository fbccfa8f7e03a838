"""Backups and disaster recovery: `Backup` (platform:index:Backup).

What is protected, how, and why this way:
* **The database** already has RDS automated backups with point-in-time recovery in its own
  region (components/database.py: 14 days in prod). With a copy region (prod), those automated
  backups are *replicated* there (RDS cross-region automated backups replication): a restore in
  the second region can reach any second of the retention, a few minutes behind (RPO minutes),
  where a daily AWS Backup copy would lose up to a day (RPO 24 h) for the same storage price.
* **The platform's state on EBS volumes** (Vault's raft data and audit log, by default: the
  secrets, and who read them) has no backup of its own: AWS Backup takes a daily snapshot of
  the volumes of the protected namespaces into a vault encrypted with its own KMS key, kept
  `retentionDays`; with a copy region, each recovery point is copied to a vault there, kept
  `copyRetentionDays`. The volumes are found by tags the cluster's gp3 StorageClass writes on
  every volume it makes (its cluster and its claim's namespace, components/cluster.py).
* **Nothing is lost by a command**: in a protected stack (prod) the vaults and their keys are
  Pulumi-`protect`ed and each vault has an AWS Backup Vault Lock (governance mode: recovery
  points cannot be deleted before `retentionDays` nor kept past the maximum, by anyone without
  the lock's bypass permission).

`platformctl drill restore|failover` proves the database's side (docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components import iam
from components.args import ArgsModel, AwsRegion, Invalid, Slug, pattern
from components.tagging import PlatformComponent

# Tags the gp3 StorageClass writes on every EBS volume it provisions (the EBS CSI driver's
# tagSpecification parameters; `{{ .PVCNamespace }}` is expanded by the driver).
CLUSTER_TAG = "platform.example.org/cluster"
NAMESPACE_TAG = "platform.example.org/namespace"

Cron = Annotated[str, pattern(r"cron\([0-9*,/ ?LW#A-Z-]+\)",
                              "an AWS cron expression, e.g. cron(0 5 ? * * *)")]

BACKUP_POLICIES = ("service-role/AWSBackupServiceRolePolicyForBackup",
                   "service-role/AWSBackupServiceRolePolicyForRestores")
# What the principals that use a vault's key may do with it (through the services only).
BACKUP_KEY_USE = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                  "kms:CreateGrant", "kms:ListGrants", "kms:DescribeKey")


class BackupArgs(ArgsModel):
    """Backups and disaster recovery (`platform:backup`)."""

    namespaces: tuple[Slug, ...] = Field(
        ("vault",), description="Namespaces whose EBS volumes AWS Backup snapshots daily "
        "(their claims' volumes, found by the tags the gp3 StorageClass writes).")
    schedule: Cron = Field(
        "cron(0 5 ? * * *)", description="When the daily backup starts (UTC), after the "
        "database's backup window.")
    retention_days: int = Field(
        7, ge=1, le=3650, description="Days a volume recovery point is kept in the stack's "
        "region.")
    copy_region: AwsRegion | None = Field(
        None, description="A second region for disaster recovery: volume recovery points are "
        "copied there and the database's automated backups replicated there (point-in-time "
        "recovery in that region). Unset: backups stay in the stack's region.")
    copy_retention_days: int = Field(
        35, ge=1, le=3650, description="Days a copy is kept in the copy region.")
    database_replica_retention_days: int = Field(
        7, ge=1, le=35, description="Days of point-in-time recovery the database's replicated "
        "automated backups cover in the copy region.")

    @model_validator(mode="after")
    def _consistent(self) -> BackupArgs:
        if len(set(self.namespaces)) != len(self.namespaces):
            raise Invalid("namespaces", list(self.namespaces), "lists a namespace twice")
        return self


class Backup(PlatformComponent):
    """AWS Backup for the platform's volumes, and the database's backups in a second region."""

    service = "backup"
    type_token = "platform:index:Backup"

    def __init__(self, name: str, args: BackupArgs, *, region: str, cluster_name: str,
                 database: aws.rds.Instance, key_administrators: Sequence[str],
                 protect: bool, opts: pulumi.ResourceOptions | None = None):
        """`key_administrators`: the account root and the role `pulumi up` runs as (the
        cluster's), who administer the backup keys; `protect`: Pulumi `protect` on the vaults
        and keys, and a Vault Lock on each vault (prod)."""
        super().__init__(name, opts)
        self.args = args
        account = key_administrators[0].split(":")[4]
        keep = pulumi.ResourceOptions(parent=self, protect=protect)
        partition = key_administrators[0].split(":")[1]
        role = aws.iam.Role(
            f"{name}-backup", description="AWS Backup: snapshots and copies of the platform",
            assume_role_policy=iam.to_json(iam.service_trust("backup.amazonaws.com", account)),
            opts=pulumi.ResourceOptions(parent=self))
        for managed in BACKUP_POLICIES:
            aws.iam.RolePolicyAttachment(
                f"{name}-{managed.rsplit('/', 1)[-1]}", role=role.name,
                policy_arn=f"arn:{partition}:iam::aws:policy/{managed}",
                opts=pulumi.ResourceOptions(parent=role))

        self.vault_name, self.copy_vault_name = f"platform-{name}", f"platform-{name}-dr"
        self.vault, self.key = self._vault(name, self.vault_name, region, account,
                                           key_administrators, role.arn, keep, protect,
                                           args.retention_days)
        self.copy_vault = None
        copy_provider = None
        if args.copy_region is not None:
            copy_provider = aws.Provider(f"{name}-dr", region=args.copy_region,
                                         opts=pulumi.ResourceOptions(parent=self))
            in_dr = pulumi.ResourceOptions(parent=self, protect=protect, provider=copy_provider)
            self.copy_vault, self.copy_key = self._vault(
                f"{name}-dr", self.copy_vault_name, args.copy_region, account,
                key_administrators, role.arn, in_dr, protect, args.copy_retention_days,
                extra_services=("rds",))

        # The vaults by name and ARN as plain strings (what they will be), so the plan's rule
        # is known in a preview and the review can price its retentions.
        copy_actions = []
        if self.copy_vault is not None:
            copy_actions.append(aws.backup.PlanRuleCopyActionArgs(
                destination_vault_arn=f"arn:{partition}:backup:{args.copy_region}:{account}:"
                                      f"backup-vault:{self.copy_vault_name}",
                lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(
                    delete_after=args.copy_retention_days)))
        self.plan = aws.backup.Plan(
            f"{name}-daily", name=f"platform-{name}-daily",
            rules=[aws.backup.PlanRuleArgs(
                rule_name="daily", target_vault_name=self.vault_name, schedule=args.schedule,
                start_window=60, completion_window=360,
                lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=args.retention_days),
                copy_actions=copy_actions)],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                v for v in (self.vault, self.copy_vault) if v is not None]))
        for namespace in args.namespaces:
            aws.backup.Selection(
                f"{name}-{namespace}-volumes", name=f"{name}-{namespace}-volumes",
                plan_id=self.plan.id, iam_role_arn=role.arn,
                resources=["arn:aws:ec2:*:*:volume/*"],
                conditions=[aws.backup.SelectionConditionArgs(string_equals=[
                    aws.backup.SelectionConditionStringEqualArgs(
                        key=f"aws:ResourceTag/{CLUSTER_TAG}", value=cluster_name),
                    aws.backup.SelectionConditionStringEqualArgs(
                        key=f"aws:ResourceTag/{NAMESPACE_TAG}", value=namespace)])],
                opts=pulumi.ResourceOptions(parent=self.plan))

        self.database_replication = None
        if copy_provider is not None:
            self.database_replication = aws.rds.InstanceAutomatedBackupsReplication(
                f"{name}-database-dr", source_db_instance_arn=database.arn,
                retention_period=args.database_replica_retention_days,
                kms_key_id=self.copy_key.arn,
                opts=pulumi.ResourceOptions(parent=self, provider=copy_provider,
                                            protect=protect))
        self.register_outputs({"vaultName": self.vault.name,
                               "copyVaultArn": self.copy_vault.arn if self.copy_vault else None})

    def _vault(self, name: str, vault_name: str, region: str, account: str,
               administrators: Sequence[str], backup_role_arn: pulumi.Input[str],
               opts: pulumi.ResourceOptions, lock: bool, retention_days: int,
               extra_services: tuple[str, ...] = ()) -> tuple[aws.backup.Vault, aws.kms.Key]:
        """A backup vault with its own key, used only through AWS Backup and EC2 (EBS snapshots
        are copied into the vault's key by EC2), and in the copy region RDS for the replicated
        backups, on the requests of the two principals that use it: the backup role, which
        AWS Backup's jobs and copy jobs run as, and the deploying role (the vault and the
        replication are created with it)."""
        key = aws.kms.Key(f"{name}-backup", description=f"AWS Backup vault of {name} ({region})",
                          enable_key_rotation=True, deletion_window_in_days=30, opts=opts)
        child = pulumi.ResourceOptions(parent=key)
        aws.kms.Alias(f"{name}-backup", name=f"alias/platform-{name}-backup",
                      target_key_id=key.key_id, opts=child)
        services = [f"{s}.{region}.amazonaws.com" for s in ("backup", "ec2", *extra_services)]
        policy = aws.kms.KeyPolicy(
            f"{name}-backup", key_id=key.key_id,
            policy=pulumi.Output.from_input(backup_role_arn).apply(
                lambda backup_role: iam.to_json(iam.key_policy(administrators, [iam.key_use(
                    "ThroughBackupOnly", [administrators[-1], backup_role], BACKUP_KEY_USE,
                    {"StringEquals": {"kms:ViaService": services,
                                      "kms:CallerAccount": account}})]))),
            opts=child)
        vault = aws.backup.Vault(f"{name}-backup", name=vault_name,
                                 kms_key_arn=key.arn, force_destroy=False,
                                 opts=pulumi.ResourceOptions.merge(
                                     opts, pulumi.ResourceOptions(depends_on=[policy])))
        if lock:
            aws.backup.VaultLockConfiguration(
                f"{name}-backup", backup_vault_name=vault.name,
                min_retention_days=retention_days,
                max_retention_days=3650,
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=vault)))
        return vault, key
