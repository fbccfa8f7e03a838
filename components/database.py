"""`Database`: RDS for PostgreSQL that keeps production data safe by default.

* Private: database subnets (no route out of the VPC), not publicly accessible, a security group
  that admits 5432 from the cluster's nodes only.
* Encrypted: storage and Performance Insights with the database's own KMS key (rotation on);
  TLS forced by the parameter group.
* Recoverable: automated backups with point-in-time recovery, multi-AZ, deletion protection, a
  final snapshot, automated backups kept after deletion, and the Pulumi resources `protect`ed
  (in prod these cannot be switched off; see stacks/config.py).
* Cheap to run: gp3 with storage autoscaling to a ceiling, engine lifecycle support set to
  standard (RDS would otherwise enrol an old major version in paid extended support), minor
  upgrades in the maintenance window.

Master credentials: Pulumi generates the password (pulumi-random, a secret in the state) and
hands it to RDS through the write-only `passwordWo` input, so it is never stored in the RDS
resource's state and Pulumi never sets it again unless `masterPasswordVersion` is bumped. That is
what Vault's database secrets engine needs (SecurityStack): it receives the password once, rotates
it with `rotate-root`, and from then on only Vault knows it; the stale copy in Pulumi's state is
never sent to RDS again. Break-glass: bump `platform:database.masterPasswordVersion` and
`pulumi up` resets the master password to the generated one (then rotate it in Vault again).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import iam
from components.network import Network
from components.tagging import PlatformComponent
from stacks.config import Database as DatabaseConfig

ENGINE = "postgres"
PORT = 5432


class Database(PlatformComponent):
    """RDS for PostgreSQL in the database subnets, reachable from the cluster's nodes only."""

    service = "database"
    type_token = "platform:index:Database"

    def __init__(
        self,
        name: str,
        config: DatabaseConfig,
        network: Network,
        client_security_group: aws.ec2.SecurityGroup,
        region: str,
        key_administrators: Sequence[str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        """`key_administrators`: who manages (never uses) the database's KMS key, the account
        and the role `pulumi up` runs as (`Cluster.key_administrators`); the last one is the
        role that creates the instance, whose request RDS uses the key on."""
        super().__init__(name, opts)
        self.config = config
        # Everything that holds data or decrypts it is protected together.
        keep = pulumi.ResourceOptions(parent=self, protect=config.protect)
        child = pulumi.ResourceOptions(parent=self)
        self.identifier = f"platform-{name}"
        major = config.engine_version.split(".")[0]

        self.key = aws.kms.Key(
            f"{name}-rds",
            description=f"Storage and Performance Insights encryption of {self.identifier}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=keep,
        )
        aws.kms.Alias(f"{name}-rds", name=f"alias/{self.identifier}",
                      target_key_id=self.key.key_id, opts=pulumi.ResourceOptions(parent=self.key))
        account = key_administrators[0].split(":")[4]
        key_policy = aws.kms.KeyPolicy(
            f"{name}-rds",
            key_id=self.key.key_id,
            # Used only through RDS in this region, on the deploying role's requests (RDS then
            # holds its own grants for the instance's storage, snapshots and Performance
            # Insights).
            policy=iam.to_json(iam.key_policy(key_administrators, [iam.key_use(
                "ThroughRdsOnly", key_administrators[-1],
                ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                 "kms:CreateGrant", "kms:ListGrants", "kms:DescribeKey"],
                {"StringEquals": {"kms:ViaService": f"rds.{region}.amazonaws.com",
                                  "kms:CallerAccount": account}})])),
            opts=pulumi.ResourceOptions(parent=self.key),
        )

        subnet_group = aws.rds.SubnetGroup(
            f"{name}-db",
            description=f"Database subnets of {self.identifier}",
            subnet_ids=[s.id for s in network.subnets["database"]],
            opts=child,
        )

        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-db",
            vpc_id=network.vpc.id,
            description=f"PostgreSQL {self.identifier}: 5432 from the cluster's nodes only",
            tags={"Name": f"{self.identifier}-db"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-db-from-nodes",
            security_group_id=self.security_group.id,
            referenced_security_group_id=client_security_group.id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description="PostgreSQL from the EKS nodes",
            opts=pulumi.ResourceOptions(parent=self.security_group),
        )

        parameters = aws.rds.ParameterGroup(
            f"{name}-pg{major}",
            family=f"{ENGINE}{major}",
            description=f"{self.identifier}: TLS required, slow queries logged",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(
                    name="log_min_duration_statement", value=str(config.slow_query_ms)),
                aws.rds.ParameterGroupParameterArgs(name="log_connections", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_disconnections", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_lock_waits", value="1"),
            ],
            # A new major version means a new family: Pulumi creates the new group, moves the
            # instance to it, then deletes the old one.
            opts=child,
        )

        # RDS creates this group on first export with no retention; create it first, with one.
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-postgresql-log",
            name=f"/aws/rds/instance/{self.identifier}/postgresql",
            retention_in_days=config.log_retention_days,
            opts=child,
        )

        self.master_password = random.RandomPassword(
            f"{name}-master-password",
            length=32,
            # Characters RDS rejects in a master password: / @ " and space.
            special=True,
            override_special="!#$%^&*()-_=+[]{}<>:?",
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]),
        )

        self.instance = aws.rds.Instance(
            f"{name}-postgres",
            identifier=self.identifier,
            engine=ENGINE,
            engine_version=config.engine_version,
            # Standard support only; RDS otherwise enrols old majors in paid extended support.
            engine_lifecycle_support="open-source-rds-extended-support-disabled",
            instance_class=config.instance_class,
            db_name=config.database_name,
            username=config.master_username,
            password_wo=self.master_password.result,
            password_wo_version=config.master_password_version,
            port=PORT,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            publicly_accessible=False,
            parameter_group_name=parameters.name,
            storage_type="gp3",
            allocated_storage=config.allocated_storage_gib,
            max_allocated_storage=config.max_allocated_storage_gib,
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            multi_az=config.multi_az,
            backup_retention_period=config.backup_retention_days,
            backup_window=config.backup_window,
            maintenance_window=config.maintenance_window,
            copy_tags_to_snapshot=True,
            delete_automated_backups=not config.final_snapshot,
            deletion_protection=config.deletion_protection,
            skip_final_snapshot=not config.final_snapshot,
            final_snapshot_identifier=(f"{self.identifier}-final" if config.final_snapshot
                                       else None),
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            apply_immediately=config.apply_immediately,
            performance_insights_enabled=config.performance_insights,
            performance_insights_kms_key_id=self.key.arn if config.performance_insights else None,
            performance_insights_retention_period=7 if config.performance_insights else None,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            ca_cert_identifier="rds-ca-rsa2048-g1",
            tags={"Name": self.identifier},
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=config.protect,
                depends_on=[self.log_group, key_policy],
            ),
        )

        self.register_outputs({
            "address": self.instance.address,
            "port": self.instance.port,
            "securityGroupId": self.security_group.id,
        })
