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
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from pydantic import Field, model_validator

from components import iam
from components.args import (
    ArgsModel,
    BackupWindow,
    DbInstanceClass,
    Invalid,
    LogRetention,
    MaintenanceWindow,
    PgIdentifier,
    PostgresVersion,
)
from components.network import NetworkRef
from components.tagging import PlatformComponent

# -- arguments ----------------------------------------------------------------------------------

# Instance classes that do not offer Performance Insights (RDS for PostgreSQL).
_NO_PERFORMANCE_INSIGHTS = ("db.t3.micro", "db.t3.small", "db.t4g.micro", "db.t4g.small")


def window_minutes(window: str) -> list[tuple[int, int]]:
    """A daily hh:mm-hh:mm or weekly ddd:hh:mm-ddd:hh:mm window as minute ranges of the week."""
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    def minute(text: str) -> int:
        parts = text.split(":")
        day = days.index(parts[0]) if len(parts) == 3 else 0
        return day * 1440 + int(parts[-2]) * 60 + int(parts[-1])

    start, end = (minute(p) for p in window.split("-"))
    if window.count(":") == 2:  # daily: the same range on each day
        return [(d * 1440 + start, d * 1440 + end + (1440 if end < start else 0)) for d in range(7)]
    return [(start, end)] if end > start else [(start, 7 * 1440), (0, end)]


def instance_identifier(name: str) -> str:
    """The RDS instance's identifier for a stack (what the drills act on)."""
    return f"platform-{name}"


class DatabaseArgs(ArgsModel):
    """RDS for PostgreSQL (`platform:database`). The safe settings are the defaults in every
    preset; a stack file that turns one off says so explicitly (prod cannot)."""

    engine_version: PostgresVersion = Field(
        # 18.4: PostgreSQL's current minor (2026-08), offered by RDS (looked up 2026-11-21).
        "18.4", description="PostgreSQL major.minor. Minor upgrades are applied automatically in "
        "the maintenance window; a major upgrade is a deliberate change here.",
    )
    instance_class: DbInstanceClass = Field(description="RDS instance class.")
    allocated_storage_gib: int = Field(20, ge=20, le=65536, description="Initial gp3 storage, GiB.")
    max_allocated_storage_gib: int = Field(
        description="Storage autoscaling ceiling, GiB (at least the allocated storage)."
    )
    multi_az: bool = Field(True, description="A synchronous standby in another AZ (fail-over).")
    backup_retention_days: int = Field(
        14, ge=0, le=35, description="Days of automated backups and point-in-time recovery "
        "(prod: at least 14).",
    )
    backup_window: BackupWindow = Field("03:00-04:00", description="Daily backup window, UTC.")
    maintenance_window: MaintenanceWindow = Field(
        "sun:04:30-sun:05:30", description="Weekly maintenance window, UTC; must not overlap the "
        "backup window.",
    )
    deletion_protection: bool = Field(True, description="RDS refuses to delete the instance.")
    final_snapshot: bool = Field(True, description="Take a final snapshot if it is ever deleted.")
    protect: bool = Field(
        True, description="Pulumi `protect`: `pulumi destroy` and any replacement fail instead of "
        "deleting the database.",
    )
    apply_immediately: bool = Field(
        False, description="Apply changes at once instead of in the next maintenance window."
    )
    slow_query_ms: int = Field(
        500, ge=-1, description="Log statements slower than this (ms); -1 turns it off."
    )
    database_name: PgIdentifier = Field("platform", description="The initial database.")
    master_username: PgIdentifier = Field(
        "platform_admin", description="Master user name (a reserved name such as `postgres` or "
        "`rdsadmin` is refused by RDS).",
    )
    master_password_version: int = Field(
        1, ge=1, description="Bump to make `pulumi up` set the master password again from the "
        "generated secret (break-glass after Vault has rotated it).",
    )
    log_retention_days: LogRetention = Field(
        30, description="Days CloudWatch keeps the PostgreSQL logs."
    )
    ca_bundle_file: str | None = Field(
        None, min_length=1, max_length=500,
        description="The RDS CA bundle of the stack's region (PEM file, relative to where "
        "`pulumi up` runs), from AWS's trust store: `curl -o rds-ca.pem https://truststore.pki"
        ".rds.amazonaws.com/<region>/<region>-bundle.pem` (the shipped stacks name "
        "certs/rds-ca-us-east-1.pem). Set: every client (Vault, its handover Job, the team "
        "namespaces' services through their `postgres-tls` ConfigMap, the drills) verifies the "
        "server with `sslmode=verify-full` against it; it must hold the region's RSA2048 G1 "
        "root. Unset (never in prod: the prod lock): encrypted but not verified, and "
        "`pulumi up` warns.")

    @model_validator(mode="after")
    def _consistent(self) -> DatabaseArgs:
        if self.ca_bundle_file is not None:
            path = Path(self.ca_bundle_file)
            if not path.is_file():
                raise Invalid("caBundleFile", self.ca_bundle_file,
                           f"is not a file (from {Path.cwd()}); allowed: the path of the PEM "
                           "bundle downloaded from AWS's RDS trust store")
            if not bundle_subjects(path.read_bytes()):
                raise Invalid("caBundleFile", self.ca_bundle_file,
                           "holds no PEM certificate; allowed: the RDS CA bundle (PEM)")
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise Invalid("maxAllocatedStorageGib", self.max_allocated_storage_gib,
                       f"is below allocatedStorageGib ({self.allocated_storage_gib}); allowed: "
                       "at least the allocated storage")
        if self.master_username in ("postgres", "rdsadmin", "admin", "root"):
            raise Invalid("masterUsername", self.master_username,
                       "is reserved; allowed: another identifier, e.g. platform_admin")
        backup = window_minutes(self.backup_window)
        maintenance = window_minutes(self.maintenance_window)
        if any(a < d and c < b for a, b in backup for c, d in maintenance):
            raise Invalid("maintenanceWindow", self.maintenance_window,
                       f"overlaps the backup window {self.backup_window}; allowed: a window "
                       "outside it")
        return self

    @property
    def performance_insights(self) -> bool:
        return self.instance_class not in _NO_PERFORMANCE_INSIGHTS


ENGINE = "postgres"
PORT = 5432
# The logs RDS for PostgreSQL exports to CloudWatch (the engine's log, and major-version upgrades).
EXPORTED_LOGS = ("postgresql", "upgrade")


@dataclass(frozen=True)
class DatabaseRef:
    """What the other components need of a database, never the `Database` itself: where it is,
    the master login's password (the handle Vault's one-shot handover uses, then rotates away),
    what to wait for before connecting, and its settings (instance class, storage, CA bundle)."""

    identifier: str  # the RDS instance identifier (CloudWatch's DBInstanceIdentifier)
    address: pulumi.Input[str]
    port: pulumi.Input[int]
    db_name: pulumi.Input[str]
    username: pulumi.Input[str]
    master_password: pulumi.Input[str]  # secret
    ready: pulumi.Resource  # the instance: connect only once it exists
    config: DatabaseArgs
    sleeps: bool = False  # stopped outside working hours (off-hours): it reports no metrics then


class Database(PlatformComponent):
    """RDS for PostgreSQL in the database subnets, reachable from the cluster's nodes only."""

    service = "database"
    type_token = "platform:index:Database"

    def __init__(
        self,
        name: str,
        config: DatabaseArgs,
        network: NetworkRef,
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
        self.identifier = instance_identifier(name)

        key_policy = self._encryption_key(name, region, key_administrators)
        subnet_group = self._where_it_lives(name, network, client_security_group)
        parameters = self._parameters_and_logs(name)
        self._instance(name, subnet_group, parameters, key_policy)

        self.ref = DatabaseRef(
            identifier=self.identifier, address=self.instance.address, port=self.instance.port,
            db_name=self.instance.db_name, username=self.instance.username,
            master_password=self.master_password.result, ready=self.instance, config=config)
        self.register_outputs({
            "address": self.instance.address,
            "port": self.instance.port,
            "securityGroupId": self.security_group.id,
        })

    # -- the constructor's steps, in order -------------------------------------------

    def _encryption_key(self, name: str, region: str,
                        key_administrators: Sequence[str]) -> aws.kms.KeyPolicy:
        """The instance's own KMS key, protected with the data it decrypts (everything that
        holds data or decrypts it is protected together), usable only through RDS; the key
        policy is returned (the instance waits for it)."""
        self.key = aws.kms.Key(
            f"{name}-rds",
            description=f"Storage and Performance Insights encryption of {self.identifier}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, protect=self.config.protect),
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
        return key_policy

    def _where_it_lives(self, name: str, network: NetworkRef,
                        client_security_group: aws.ec2.SecurityGroup) -> aws.rds.SubnetGroup:
        """The database subnets and a security group admitting 5432 from the nodes only."""
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-db",
            description=f"Database subnets of {self.identifier}",
            subnet_ids=list(network.database_subnet_ids),
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-db",
            vpc_id=network.vpc_id,
            # EC2 allows only a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$* here (no
            # apostrophe; tests/test_aws_api_rules.py reads the rule from botocore).
            description=f"PostgreSQL {self.identifier}: 5432 from the cluster nodes only",
            tags={"Name": f"{self.identifier}-db"},
            opts=pulumi.ResourceOptions(parent=self),
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
        return subnet_group

    def _parameters_and_logs(self, name: str) -> aws.rds.ParameterGroup:
        """TLS forced and slow queries logged; the log group RDS exports into."""
        major = self.config.engine_version.split(".")[0]
        parameters = aws.rds.ParameterGroup(
            f"{name}-pg{major}",
            family=f"{ENGINE}{major}",
            description=f"{self.identifier}: TLS required, slow queries logged",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                # Passwords stored as SCRAM verifiers, so clients can require channel binding
                # (SCRAM-SHA-256-PLUS binds the login to the TLS session the client verified).
                aws.rds.ParameterGroupParameterArgs(name="password_encryption",
                                                    value="scram-sha-256"),
                aws.rds.ParameterGroupParameterArgs(
                    name="log_min_duration_statement", value=str(self.config.slow_query_ms)),
                aws.rds.ParameterGroupParameterArgs(name="log_connections", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_disconnections", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_lock_waits", value="1"),
            ],
            # A new major version means a new family: Pulumi creates the new group, moves the
            # instance to it, then deletes the old one.
            opts=pulumi.ResourceOptions(parent=self),
        )

        # RDS creates the group of each log it exports on first export, with no retention
        # (kept forever, billed forever): create each first, with one.
        self.log_groups = [aws.cloudwatch.LogGroup(
            f"{name}-{log}-log",
            name=f"/aws/rds/instance/{self.identifier}/{log}",
            retention_in_days=self.config.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self),
        ) for log in EXPORTED_LOGS]
        return parameters

    def _instance(self, name: str, subnet_group: aws.rds.SubnetGroup,
                  parameters: aws.rds.ParameterGroup, key_policy: aws.kms.KeyPolicy) -> None:
        """The master password (Vault takes it over) and the instance."""
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
            engine_version=self.config.engine_version,
            # Standard support only; RDS otherwise enrols old majors in paid extended support.
            engine_lifecycle_support="open-source-rds-extended-support-disabled",
            instance_class=self.config.instance_class,
            db_name=self.config.database_name,
            username=self.config.master_username,
            password_wo=self.master_password.result,
            password_wo_version=self.config.master_password_version,
            port=PORT,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            publicly_accessible=False,
            parameter_group_name=parameters.name,
            storage_type="gp3",
            allocated_storage=self.config.allocated_storage_gib,
            max_allocated_storage=self.config.max_allocated_storage_gib,
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            multi_az=self.config.multi_az,
            backup_retention_period=self.config.backup_retention_days,
            backup_window=self.config.backup_window,
            maintenance_window=self.config.maintenance_window,
            copy_tags_to_snapshot=True,
            delete_automated_backups=not self.config.final_snapshot,
            deletion_protection=self.config.deletion_protection,
            skip_final_snapshot=not self.config.final_snapshot,
            final_snapshot_identifier=(f"{self.identifier}-final" if self.config.final_snapshot
                                       else None),
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            apply_immediately=self.config.apply_immediately,
            performance_insights_enabled=self.config.performance_insights,
            performance_insights_kms_key_id=self.key.arn if self.config.performance_insights else None,
            performance_insights_retention_period=7 if self.config.performance_insights else None,
            enabled_cloudwatch_logs_exports=list(EXPORTED_LOGS),
            ca_cert_identifier="rds-ca-rsa2048-g1",
            tags={"Name": self.identifier},
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=self.config.protect,
                depends_on=[*self.log_groups, key_policy],
            ),
        )


# -- what a client needs to verify the server --------------------------------------------------

# The certificate authority the instance is created with (Database: ca_cert_identifier).
SERVER_CA = "rds-ca-rsa2048-g1"


def bundle_subjects(pem: bytes) -> list[str]:
    """The common names of the certificates in a PEM bundle (empty: none parse)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        return []
    return [str(a.value) for c in certificates
            for a in c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]


def server_root(region: str) -> str:
    """The common name of the root the instance's certificate chains to (SERVER_CA)."""
    return f"Amazon RDS {region} Root CA RSA2048 G1"


def client_tls(config: DatabaseArgs) -> dict[str, str]:
    """What every PostgreSQL client of the platform is given (libpq's settings, as the
    `postgres-tls` ConfigMap's keys): verify the server's certificate and name against the RDS
    CA bundle (`verify-full`) where the stack names one, else encrypt only (`require`, never in
    prod: the prod lock); and require SCRAM channel binding, which ties the password exchange to
    the TLS session (the parameter group stores SCRAM verifiers)."""
    settings = {"sslmode": "verify-full" if config.ca_bundle_file else "require",
                "channelbinding": "require"}
    if config.ca_bundle_file:
        settings["root.crt"] = Path(config.ca_bundle_file).read_text()
    return settings
