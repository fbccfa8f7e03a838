"""The platform's configuration model: one typed model for a whole environment.

This module is the only code that reads ``pulumi.Config``. Everything else receives a validated
:class:`PlatformConfig`.

How a stack's configuration is built:

1. the stack file's ``platform:*`` keys are read (``aws:region`` too);
2. they are laid over the defaults of the environment *preset* the stack names
   (``platform:preset: dev`` is cheap, ``prod`` is highly available), so a stack file only says
   what differs;
3. the result is validated by pydantic. Unknown keys are errors, so a typo is never ignored.

The sections are the components' own argument models (`components.network.NetworkArgs`, ...):
this module composes them into one environment, adds what spans sections (teams against the
monitoring namespace, the prod lock), the presets, and the error formatting.

Any problem stops the program before a single resource is registered, with one message that
names the stack file, each bad key's path, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
import difflib
import json
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import pulumi
from pulumi.runtime import config as _runtime_config
from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator

from components.admission import AdmissionArgs, horizon
from components.args import ArgsModel, AwsRegion, CalendarDate, GitHubHandle, Invalid, Slug, TagValue
from components.backup import BackupArgs
from components.chaos import ChaosArgs
from components.cluster import ClusterArgs
from components.database import DatabaseArgs, window_minutes
from components.gitops import GitOpsArgs
from components.network import NetworkArgs
from components.observability import AlertingArgs, ObservabilityArgs
from components.schedule import OffHoursArgs
from components.tenancy import Team, host_covers
from components.vault import VaultArgs

PROJECT_NAMESPACE = "platform"

# Tag keys every AWS resource carries (docs/harness.md, "The tags"). `service` is set per component,
# `managed-by` is always "pulumi"; the others come from this model.
REQUIRED_TAG_KEYS = ("team", "service", "environment", "cost-center", "owner", "managed-by")


class ConfigError(pulumi.RunError):
    """A user's configuration is wrong. ``RunError`` makes the Pulumi CLI print the message
    without a Python traceback; ``platformctl`` exits 2 with it."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid configuration in {source} ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n{lines}"
        )


# --------------------------------------------------------------------------------------------
# The model: the components' own args (components/*.py), composed into one environment


class Tags(ArgsModel):
    """Values of the standard tags that come from config (`platform:tags`). The keys are the tag
    keys themselves. `service`, `environment` and `managed-by` are set by the program."""

    team: TagValue = Field(description="Team that owns the environment, e.g. `platform`.")
    cost_center: TagValue = Field(
        alias="cost-center", description="Cost center the spend is booked to, e.g. `cc-1234`."
    )
    owner: TagValue = Field(
        description="Who to ask about a resource: a person or list address, e.g. "
        "`platform-team@example.com`."
    )


# What a prod-preset stack relies on: (key, the safe setting, whether a config keeps it, why).
# A prod stack that weakens one needs a `prodExceptions` entry for that key (named, dated,
# approved), which the review shows as an advisory verdict, and a mandatory one once expired.
PROD_CONTROLS: tuple[tuple[str, str, Callable[[Any], bool], str], ...] = (
    ("database.multiAz", "true", lambda c: c.database.multi_az, "a standby in another AZ"),
    ("database.deletionProtection", "true", lambda c: c.database.deletion_protection,
     "RDS refuses to delete the database"),
    ("database.finalSnapshot", "true", lambda c: c.database.final_snapshot,
     "a snapshot before any deletion"),
    ("database.protect", "true", lambda c: c.database.protect, "Pulumi refuses to delete it"),
    ("database.backupRetentionDays", "14 to 35", lambda c: c.database.backup_retention_days >= 14,
     "two weeks of point-in-time recovery"),
    ("database.caBundleFile", "set", lambda c: c.database.ca_bundle_file is not None,
     "every database client verifies the server's certificate and name (sslmode=verify-full)"),
    ("cluster.deletionProtection", "true", lambda c: c.cluster.deletion_protection,
     "EKS refuses to delete the cluster"),
    ("network.flowLogs.enabled", "true", lambda c: c.network.flow_logs.enabled,
     "the network's audit trail"),
    ("security.gatekeeper.enforcement", "deny",
     lambda c: c.security.gatekeeper.enforcement == "deny", "admission policies refuse"),
    ("security.gatekeeper.failClosed", "true", lambda c: c.security.gatekeeper.fail_closed,
     "no object skips the policies while Gatekeeper is down"),
    ("security.gatekeeper.requireDigest", "true", lambda c: c.security.gatekeeper.require_digest,
     "images by digest, so what was signed is what runs"),
    ("security.imageSignatures.mode", "enforce",
     lambda c: c.security.image_signatures.mode == "enforce", "unsigned images are refused"),
    ("backup.copyRegion", "set", lambda c: c.backup.copy_region is not None,
     "backups outlive a region: copies and the database's point-in-time recovery elsewhere"),
    ("gitops.autoSync", "false", lambda c: not c.gitops.auto_sync,
     "changes reach prod when a person syncs them, inside the sync windows"),
    ("gitops.sso", "set", lambda c: c.gitops.sso is not None,
     "no shared local admin holds every deployment"),
    ("gitops.canaryPauseMinutes", "not set", lambda c: c.gitops.canary_pause_minutes is None,
     "every canary observes each step as long as its service's spec says"),
)


def _control_value(config: Any, key: str) -> Any:
    """A control's value by its key path (aliases), for the error message."""
    value: Any = config
    for part in key.split("."):
        value = getattr(value, next(n for n, f in type(value).model_fields.items()
                                    if (f.alias or n) == part))
    return value


class ProdException(ArgsModel):
    """A named, dated, approved weakening of one prod control (`platform:prodExceptions[]`)."""

    key: Literal[tuple(k for k, *_ in PROD_CONTROLS)] = Field(  # type: ignore[misc]
        description="The control it weakens (a key of the prod lock, docs/configuration.md).")
    until: CalendarDate = Field(description="When it ends (YYYY-MM-DD), at most "
                                "security.gatekeeper.maxExemptionDays ahead; after it the review "
                                "refuses the stack (a mandatory verdict).")
    approved_by: GitHubHandle = Field(description="Who approved it (one of "
                                      "security.gatekeeper.exemptionApprovers).")
    reason: str = Field(min_length=10, max_length=500, description="Why, and what ends it.")


class PlatformConfig(ArgsModel):
    """A whole environment. The stack file's `platform:<key>` keys, laid over the preset."""

    preset: Literal["dev", "prod"] = Field(
        description="Environment preset whose defaults this stack starts from: `dev` is cheap, "
        "`prod` is highly available."
    )
    environment: Slug = Field(
        description="Environment name: the `environment` tag and the prefix of resource names. "
        "Defaults to the preset's name, so a `staging` stack sets `preset: prod` and "
        "`environment: staging`."
    )
    region: AwsRegion = Field(
        description="AWS region, read from the stack's `aws:region` (default `us-east-1`)."
    )
    budget_monthly_usd: float = Field(
        gt=0,
        description="The environment's monthly budget in US dollars: at most the organisation's "
        "cap; all stacks' budgets together are checked against the cap by `platformctl budget`.",
    )
    budget_ceiling_monthly_usd: float = Field(
        gt=0,
        description="The most the environment may cost at its ceiling (every node group at "
        "maxSize, database storage at its autoscaling maximum), in US dollars a month: its share "
        "of the organisation's cap, judged by the mandatory `budget-ceiling` policy. At least "
        "`budgetMonthlyUsd`, which is its default; all stacks' shares together may not exceed "
        "the cap (checked across the project's stack files).",
    )
    organization_budget_monthly_usd: float = Field(
        gt=0,
        description="The organisation's monthly cap in US dollars across every stack, set once "
        "in Pulumi.yaml's project-level `config:` (a stack file may not set it). `platformctl "
        "budget` checks the sum of the stacks' estimates and of their budgets against it.",
    )
    created_year: int | None = Field(
        None, ge=2014,
        description="The year the environment was first deployed: its KMS keys carry it (tag "
        "`platform.example.org/created-year`) and the cost model prices their rotations for "
        "their age ($1/month in a key's first year, $3 from its third). Not set: priced as "
        "created this year; set it on an older stack.")
    tags: Tags = Field(description="Values of the standard tags.")
    network: NetworkArgs = Field(description="The VPC.")
    cluster: ClusterArgs = Field(description="The EKS cluster.")
    database: DatabaseArgs = Field(description="RDS for PostgreSQL.")
    observability: ObservabilityArgs = Field(description="Monitoring stack and SLOs.")
    alerting: AlertingArgs = Field(description="Alert routing and notification.")
    security: AdmissionArgs = Field(description="Admission control.")
    vault: VaultArgs = Field(description="Vault.")
    gitops: GitOpsArgs = Field(description="Argo CD and the app-of-apps.")
    backup: BackupArgs = Field(description="Backups and disaster recovery: AWS Backup for the "
                               "platform's volumes, the database's backups in a second region.")
    chaos: ChaosArgs = Field(default_factory=ChaosArgs,
                             description="Chaos experiments on AWS (FIS templates).")
    off_hours: OffHoursArgs | None = Field(
        None, description="Working hours of a non-prod stack: outside them its nodes scale to "
        "zero and its database stops (EventBridge Scheduler), and the cost model prices them "
        "for the hours they run. Not for a prod-preset stack.")
    prod_exceptions: tuple[ProdException, ...] = Field(
        (), description="Controls a prod-preset stack weakens on purpose, each named, dated and "
        "approved (the prod lock, docs/configuration.md); the review shows each as an advisory verdict, and "
        "refuses the stack once one has expired.")
    teams: tuple[Team, ...] = Field(
        (), description="The teams whose workloads run on the platform, each with its own "
        "namespaces.")

    @model_validator(mode="after")
    def _created_in_the_past(self) -> PlatformConfig:
        import datetime

        now = datetime.date.today().year
        if self.created_year is not None and self.created_year > now:
            raise Invalid("createdYear", self.created_year,
                          f"is after this year; allowed: 2014 to {now}")
        return self

    def type_tags(self) -> dict[str, dict[str, str]]:
        """Tags the program adds to every resource of a type (beside the standard tags)."""
        from platform_facts.costmodel import CREATED_YEAR_TAG

        if self.created_year is None:
            return {}
        return {"aws:kms/key:Key": {CREATED_YEAR_TAG: str(self.created_year)}}

    @model_validator(mode="after")
    def _no_off_hours_in_prod(self) -> PlatformConfig:
        if self.preset == "prod" and self.off_hours is not None and self.off_hours.enabled:
            raise Invalid("offHours", "set", "puts production to sleep; allowed in a "
                          "prod-preset stack: not set (remove it)")
        return self

    @model_validator(mode="after")
    def _database_windows_while_awake(self) -> PlatformConfig:
        """RDS takes no automated backup of a stopped instance and applies no maintenance to it:
        with off-hours, both windows fall in working hours."""
        hours = self.off_hours
        if hours is None or not hours.enabled:
            return self
        awake = (f"{', '.join(hours.days)} {hours.start}-{hours.stop} {hours.timezone}")
        db = self.database
        if not hours.holds(window_minutes(db.backup_window), every_day=True):
            raise Invalid("database.backupWindow", db.backup_window,
                          f"falls while off-hours has the database stopped ({awake} awake), "
                          "and RDS backs up no stopped instance; allowed: a daily UTC window "
                          "within the working hours of each working day, e.g. 08:30-09:00 for "
                          "08:00-18:00 UTC")
        if not hours.holds(window_minutes(db.maintenance_window), every_day=False):
            raise Invalid("database.maintenanceWindow", db.maintenance_window,
                          f"falls while off-hours has the database stopped ({awake} awake), "
                          "and RDS maintains no stopped instance (it waits for the next "
                          "start); allowed: a weekly UTC window within working hours, e.g. "
                          "wed:17:00-wed:17:30 for 08:00-18:00 UTC")
        return self

    @model_validator(mode="after")
    def _copies_elsewhere(self) -> PlatformConfig:
        if self.backup.copy_region == self.region:
            raise Invalid("backup.copyRegion", self.backup.copy_region,
                          "is the stack's own region: a copy there outlives nothing; allowed: "
                          "another region")
        return self

    @model_validator(mode="after")
    def _zonal_groups_reach_every_zone(self) -> PlatformConfig:
        zones = self.network.az_count
        for name, group in self.cluster.node_groups.items():
            if group.zonal and group.max_size < zones:
                raise Invalid(f"cluster.nodeGroups.{name}.maxSize", group.max_size,
                              f"is split across {zones} AZs (zonal), leaving an AZ's group with "
                              f"no node ever; allowed: at least {zones} (network.azCount)")
        return self

    @model_validator(mode="after")
    def _team_images_in_approved_registries(self) -> PlatformConfig:
        registries = self.security.gatekeeper.allowed_registries
        for index, team in enumerate(self.teams):
            for image in team.images:
                if not any(image.startswith(r) for r in registries):
                    raise Invalid(f"teams[{index}].images", image,
                                  "is not in an approved registry; allowed: under "
                                  + ", ".join(registries))
        images = [(team.name, image) for team in self.teams for image in team.images]
        for name, image in images:
            for other, theirs in images:
                if other != name and (image.startswith(theirs) or theirs.startswith(image)):
                    raise Invalid("teams", image, f"is an image repository of team {name!r} "
                                  f"and of team {other!r} ({theirs}); allowed: one owner")
        return self

    @model_validator(mode="after")
    def _bundle_of_the_region(self) -> PlatformConfig:
        """The CA bundle must hold the root the instance's certificate chains to in this
        stack's region, or every verify-full client would refuse the server."""
        from components.database import SERVER_CA, bundle_subjects, server_root

        bundle = self.database.ca_bundle_file
        if bundle is not None:
            root = server_root(self.region)
            if root not in bundle_subjects(Path(bundle).read_bytes()):
                raise Invalid("database.caBundleFile", bundle,
                              f"holds no '{root}' certificate, the root of the database's "
                              f"{SERVER_CA} certificate in {self.region}; allowed: the region's "
                              f"bundle, https://truststore.pki.rds.amazonaws.com/{self.region}/"
                              f"{self.region}-bundle.pem")
        return self

    @model_validator(mode="after")
    def _quotas_within_the_nodes(self) -> PlatformConfig:
        """What the config alone can know of quota-capacity (the review's check, which also
        counts the platform's pods): the teams' quotas together cannot promise more CPU or
        memory than the node groups hold at maxSize with no pod of the platform at all."""
        from platform_facts.capacity import KubeletSettings, cpu_millicores, memory_mib, node_shape

        known = [(group, [t for t in group.instance_types if t in _capacity_types()])
                 for group in self.cluster.node_groups.values()]
        if not self.teams or any(not listed for _, listed in known):
            return self  # an unknown type: the review's node-capacity check names it
        cpu = memory = 0.0
        for group, listed in known:
            shapes = [node_shape(t, True, KubeletSettings(max_pods=group.max_pods))
                      for t in listed]
            cpu += group.max_size * min(s.cpu_m for s in shapes)
            memory += group.max_size * min(s.memory_mib for s in shapes)
        for label, key, held, unit, measure in (
                ("CPU", "requestsCpu", cpu, "m", cpu_millicores),
                ("memory", "requestsMemory", memory, " MiB", memory_mib)):
            promised = {team.name: measure(getattr(team.quota, _snake(key))) * len(team.namespaces)
                        for team in self.teams}
            if sum(promised.values()) > held:
                listed = ", ".join(f"{name} {value:,.0f}{unit}" for name, value in promised.items())
                raise Invalid(f"teams[].quota.{key}", listed,
                              f"adds up to {sum(promised.values()):,.0f}{unit} of {label} over "
                              f"the teams' namespaces, more than every node group at maxSize "
                              f"holds ({held:,.0f}{unit}) before the platform's own pods; "
                              "allowed: smaller quotas, or a larger maxSize within the budget "
                              "ceiling")
        return self

    @model_validator(mode="after")
    def _no_nat_instance_in_prod(self) -> PlatformConfig:
        if self.preset == "prod" and self.network.nat_strategy == "instance":
            raise Invalid("network.natStrategy", "instance",
                          "is for non-prod stacks (one instance: egress stops for minutes when it "
                          "is replaced); allowed in a prod-preset stack: single, one-per-az or none")
        return self

    @model_validator(mode="after")
    def _within_the_organisation(self) -> PlatformConfig:
        if self.budget_monthly_usd > self.organization_budget_monthly_usd:
            raise Invalid("budgetMonthlyUsd", self.budget_monthly_usd,
                          f"exceeds the organisation's cap of "
                          f"{self.organization_budget_monthly_usd:g} (organizationBudgetMonthlyUsd"
                          ", Pulumi.yaml); allowed: at most the cap")
        if self.budget_ceiling_monthly_usd < self.budget_monthly_usd:
            raise Invalid("budgetCeilingMonthlyUsd", self.budget_ceiling_monthly_usd,
                          f"is below budgetMonthlyUsd ({self.budget_monthly_usd:g}), and the "
                          "ceiling is never below the expected cost; allowed: at least "
                          f"{self.budget_monthly_usd:g}")
        if self.budget_ceiling_monthly_usd > self.organization_budget_monthly_usd:
            raise Invalid("budgetCeilingMonthlyUsd", self.budget_ceiling_monthly_usd,
                          f"exceeds the organisation's cap of "
                          f"{self.organization_budget_monthly_usd:g} (organizationBudgetMonthlyUsd"
                          ", Pulumi.yaml); allowed: at most the cap")
        return self

    @model_validator(mode="after")
    def _teams_distinct(self) -> PlatformConfig:
        names: set[str] = set()
        namespaces: set[str] = set()
        for index, team in enumerate(self.teams):
            if team.name in names:
                raise Invalid(f"teams[{index}].name", team.name, "is listed twice; allowed: each "
                           "team once")
            names.add(team.name)
            for namespace in team.namespaces:
                if namespace in namespaces or namespace == self.observability.namespace:
                    raise Invalid(f"teams[{index}].namespaces", namespace, "is already taken; "
                               "allowed: a namespace of one team only")
                namespaces.add(namespace)
        services = [s for team in self.teams for s in team.services]
        for service in services:
            if services.count(service) > 1:
                raise Invalid("teams", service, "is a service of two teams; allowed: one owner")
        claimed: list[tuple[str, str]] = []  # (host, team)
        for index, team in enumerate(self.teams):
            for host in team.hosts:
                owner = next((other for h, other in claimed if other != team.name and (
                    host_covers(h, host) or host_covers(host, h))), None)
                if owner is not None:
                    raise Invalid(f"teams[{index}].hosts", host,
                               f"overlaps a host of team {owner!r}; allowed: names no other "
                               "team claims (a team could otherwise take the other's traffic)")
                claimed.append((host, team.name))
        return self

    @model_validator(mode="after")
    def _production_controls(self) -> PlatformConfig:
        """The prod lock: a prod-preset stack keeps every control of PROD_CONTROLS, or names
        the weakening in prodExceptions (approved by an exemption approver)."""
        excepted = {e.key for e in self.prod_exceptions}
        keys = [e.key for e in self.prod_exceptions]
        days = self.security.gatekeeper.max_exemption_days
        for index, exception in enumerate(self.prod_exceptions):
            if exception.key in keys[:index]:
                raise Invalid(f"prodExceptions[{index}].key", exception.key,
                           "has two entries; allowed: one entry per control")
            if exception.until > horizon(days):
                raise Invalid(f"prodExceptions[{index}].until", exception.until,
                           f"is more than security.gatekeeper.maxExemptionDays ({days}) ahead; "
                           f"allowed: {horizon(days)} at the latest, renewed with a new "
                           "approval")
            if exception.approved_by not in self.security.gatekeeper.exemption_approvers:
                raise Invalid(f"prodExceptions[{index}].approvedBy", exception.approved_by,
                           "is not an approver; allowed: one of "
                           "security.gatekeeper.exemptionApprovers")
        if self.preset != "prod":
            if self.prod_exceptions:
                raise Invalid("prodExceptions", [e.key for e in self.prod_exceptions],
                           "are for prod-preset stacks; allowed: [] here")
            return self
        for key, safe, kept, why in PROD_CONTROLS:
            if kept(self):
                if key in excepted:
                    raise Invalid("prodExceptions", key, "excepts a control the stack keeps; "
                               "allowed: remove the entry")
                continue
            if key not in excepted:
                raise Invalid(key, _control_value(self, key), f"is weakened in a prod-preset "
                           f"stack ({why}); allowed: {safe}, or a prodExceptions entry for "
                           f"{key} (until, approvedBy, reason)")
        return self

    def standard_tags(self, service: str) -> dict[str, str]:
        """The standard tags (docs/harness.md) of a resource that belongs to `service`."""
        tags = {
            "team": self.tags.team,
            "service": service,
            "environment": self.environment,
            "cost-center": self.tags.cost_center,
            "owner": self.tags.owner,
            "managed-by": "pulumi",
        }
        assert tuple(tags) == REQUIRED_TAG_KEYS
        return tags


# Preset defaults. Stack files override any of them; lists are replaced, objects merged.
GRAVITON_FAMILIES = ["t4g", "m7g", "m8g", "c7g", "c8g", "r7g", "r8g"]

PRESETS: dict[str, dict[str, Any]] = {
    "dev": {
        "network": {
            "azCount": 2,
            # A NAT instance: $3.71 a month against a gateway's $32.85 plus $0.045/GB.
            "natStrategy": "instance",
            "flowLogs": {"retentionDays": 14},
        },
        "cluster": {
            "logRetentionDays": 14,
            "deletionProtection": False,
            "allowedInstanceFamilies": GRAVITON_FAMILIES,
            # No shared load balancer in dev: services are reached in the cluster or by
            # port-forward ($23.72/month less than an internet-facing ALB in two AZs).
            "ingressScheme": "none",
            # One replica of each cluster controller: they fit the two nodes with the rest.
            "controllerReplicas": 1,
            "nodeGroups": {
                # Two spot pools of one shape (2 vCPU, 4 GiB): the autoscaler plans with one.
                # Zonal: one group per AZ (1 node each), so the autoscaler can add a node
                # where an EBS volume is.
                "system": {"instanceTypes": ["t4g.medium", "c7g.large"], "capacityType": "SPOT",
                           "minSize": 2, "desiredSize": 2, "maxSize": 3, "diskSizeGib": 20,
                           "maxPods": 40, "zonal": True},
            },
        },
        # Its windows in working hours: off-hours has the instance stopped outside them, and RDS
        # neither backs up nor maintains a stopped instance.
        "database": {"instanceClass": "db.t4g.micro", "maxAllocatedStorageGib": 30,
                     "applyImmediately": True, "backupWindow": "08:30-09:00",
                     "maintenanceWindow": "wed:17:00-wed:17:30"},
        "observability": {
            "prometheus": {"replicas": 1, "retention": "7d", "storageGib": 10, "resources": {
                "cpuRequest": "200m", "memoryRequest": "1Gi", "memoryLimit": "2Gi"}},
            "alertmanager": {"replicas": 1},
            "logs": {"retentionDays": 7},
            "traces": {"samplingPercent": 10, "replicas": 1, "assumedRequestsPerSecond": 1},
        },
        "security": {"gatekeeper": {"replicas": 1, "enforcement": "warn", "failClosed": False,
                                    "requireDigest": False, "probesRequired": False},
                     "imageSignatures": {"mode": "warn", "replicas": 1}},
        "vault": {"replicas": 1},
        "gitops": {"ha": False, "autoSync": True, "canaryPauseMinutes": 1},
        "backup": {"retentionDays": 7},
        "chaos": {"mesh": True},
        # Asleep outside working hours: the nodes and the database run 50 of 168 hours a week.
        "offHours": {"days": ["MON", "TUE", "WED", "THU", "FRI"], "start": "08:00",
                     "stop": "18:00", "timezone": "UTC"},
    },
    "prod": {
        "network": {
            "azCount": 3,
            # The shared ALB in two AZs' public subnets (its targets in all three): one public
            # IPv4 address less ($3.65/month); it serves on through the loss of either AZ.
            "loadBalancerAzCount": 2,
            "natStrategy": "one-per-az",
            "flowLogs": {"retentionDays": 90},
        },
        "cluster": {
            "logRetentionDays": 90,
            "deletionProtection": True,
            "allowedInstanceFamilies": GRAVITON_FAMILIES,
            "nodeGroups": {
                # An on-demand node in each AZ holds what must not go with a spot reclaim
                # (Vault, Prometheus, Alertmanager keep EBS volumes there: zonal, one group per
                # AZ); a spot group beside it holds the rest and grows for the teams, up to one
                # node per AZ (docs/adr/0012-prod-capacity-under-the-cap.md). Root volumes of
                # EKS's default size: images and logs only (data is on EBS volumes of its own).
                "system": {"instanceTypes": ["t4g.medium"], "capacityType": "ON_DEMAND",
                           "minSize": 3, "desiredSize": 3, "maxSize": 3, "diskSizeGib": 20,
                           "maxPods": 40, "zonal": True},
                # Two spot pools of one shape (2 vCPU, 4 GiB): the autoscaler plans with one.
                "spot": {"instanceTypes": ["t4g.medium", "c7g.large"], "capacityType": "SPOT",
                         "minSize": 1, "desiredSize": 1, "maxSize": 3, "diskSizeGib": 20,
                         "maxPods": 40, "zonal": True},
            },
        },
        # Storage grows by itself up to twice what is allocated; more is a decision (and a
        # ceiling the budget has to hold).
        "database": {"instanceClass": "db.t4g.small", "maxAllocatedStorageGib": 40},
        "observability": {
            # 15 days of a small cluster's series fit in a few GB (~100k series scraped every
            # 30 s at ~1.3 bytes a sample: ~6 GB); 20 GiB leaves three times that, and the gp3
            # class allows growing a volume in place.
            # 15 days of a small cluster's series fit in a few GB (~100k series scraped every
            # 30 s at ~1.3 bytes a sample: ~6 GB); 10 GiB leaves room for compaction, and the
            # gp3 class grows a volume in place. Requests: ~100k series hold well under 1 GiB of
            # head and index; compaction and queries burst within the 3 GiB limit
            # (docs/adr/0012-prod-capacity-under-the-cap.md).
            "prometheus": {"replicas": 2, "retention": "15d", "storageGib": 10, "resources": {
                "cpuRequest": "200m", "memoryRequest": "1Gi", "memoryLimit": "3Gi"}},
            "alertmanager": {"replicas": 2},
            # A month of logs to investigate an incident in; older questions go to metrics.
            "logs": {"retentionDays": 30},
            # A tenth of the traces: 5 requests a second in all keep ~1.3 M traces a month.
            "traces": {"samplingPercent": 10, "replicas": 2, "assumedRequestsPerSecond": 5},
        },
        # Two admission replicas on different nodes: one serves while the other goes.
        "security": {"gatekeeper": {"replicas": 2, "enforcement": "deny", "failClosed": True,
                                    "requireDigest": True, "probesRequired": True},
                     "imageSignatures": {"mode": "enforce", "replicas": 2}},
        "vault": {"replicas": 3},
        # A month of daily volume snapshots here and in the copy region, and a week of the
        # database's point-in-time recovery there.
        "backup": {"retentionDays": 35, "copyRegion": "us-west-2", "copyRetentionDays": 35},
        "chaos": {"fis": True},
        "gitops": {"ha": True, "autoSync": False, "syncWindows": [
            {"kind": "allow", "schedule": "0 9 * * 1-4", "duration": "7h"}]},
    },
}

DEFAULT_REGION = "us-east-1"


# --------------------------------------------------------------------------------------------
# Reading and validating


def _capacity_types() -> Mapping[str, Any]:
    from platform_facts.capacity import data

    return data()["instanceTypes"]


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _show(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds (an optional one too), and whether it holds a map of them
    (`dict[str, Model]`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return nested_model(members[0])
    if typing.get_origin(annotation) is dict:
        value = typing.get_args(annotation)[1]
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value, True
    return None, False


def _listed_model(annotation: Any) -> type[BaseModel] | None:
    """The model a `tuple[Model, ...]` field holds."""
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item
    return None


def _model_at(loc: tuple[Any, ...], root: type[BaseModel] | None = None
              ) -> type[BaseModel] | None:
    """The model class that owns the key at `loc` (aliases), to list what keys it allows."""
    model: type[BaseModel] = root or PlatformConfig
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return model
        inner, is_map = nested_model(field.annotation)
        listed = _listed_model(field.annotation)
        if inner is None and listed is None:
            return model
        if is_map or listed is not None:
            if not parts:
                return model
            parts.pop(0)  # the map's key (a node group's name) or the list's index
        model = inner or listed
    return model


def _key_path(loc: tuple[Any, ...], prefix: str = f"{PROJECT_NAMESPACE}:") -> str:
    path = prefix
    for i, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if i else "") + str(part)
    return path


_NOT_SET = "(not set)"


def _is_secret(loc: tuple[Any, ...], root: type[BaseModel] | None = None) -> bool:
    """Whether the key at `loc` holds a secret (its value is never shown)."""
    owner = _model_at(loc[:-1], root) if loc else None
    field = next((f for f in owner.model_fields.values() if f.alias == loc[-1]), None) \
        if owner is not None and loc else None
    return field is not None and "SecretStr" in str(field.annotation)


def _describe(error: Mapping[str, Any], root: type[BaseModel] | None = None,
              prefix: str = f"{PROJECT_NAMESPACE}:") -> str:
    """One line: key path, bad value, what is wrong and what is allowed."""
    root = root or PlatformConfig
    loc = tuple(error["loc"])
    kind = error["type"]
    if _is_secret(loc, root):
        error = {**error, "input": "[secret]"}
    if kind == "extra_forbidden":
        owner = _model_at(loc[:-1], root) or root
        allowed = [f.alias for f in owner.model_fields.values()
                   if f.alias and not (owner is PlatformConfig and f.alias == "region")]
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return (f"{_key_path(loc, prefix)}: {_show(error.get('input'))}: unknown key{hint}; "
                f"allowed keys here: {', '.join(allowed)}")
    if kind == "missing":
        owner = _model_at(loc[:-1], root) or root
        field = next((f for f in owner.model_fields.values() if f.alias == loc[-1]), None)
        what = field.description if field and field.description else "a value"
        return f"{_key_path(loc, prefix)}: {_NOT_SET}: required; {what}"
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, Invalid):
        return f"{_key_path(loc + (cause.key,), prefix)}: {_show(cause.value)}: {cause.message}"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be ", "allowed: ")
    return f"{_key_path(loc, prefix)}: {_show(error.get('input'))}: {message}"


def validation_problems(exc: ValidationError, root: type[BaseModel] | None = None,
                        prefix: str = f"{PROJECT_NAMESPACE}:") -> list[str]:
    """One line per problem of a failed validation of `root` (the whole config by default)."""
    errors = exc.errors(include_url=False)
    # A list whose item failed also reports itself "too short": the item's error says it.
    inner_locs = [tuple(e["loc"]) for e in errors]
    errors = [e for e in errors if not (e["type"] == "too_short" and any(
        len(other) > len(e["loc"]) and other[:len(e["loc"])] == tuple(e["loc"])
        for other in inner_locs))]
    return [_describe(error, root, prefix) for error in errors]


def build(raw: Mapping[str, Any], region: str | None, source: str) -> PlatformConfig:
    """Validate a stack's raw `platform:*` values (keys without the namespace) into the model.

    Raises :class:`ConfigError` with every problem found."""
    preset = raw.get("preset")
    if preset not in PRESETS:
        shown = _NOT_SET if preset is None else _show(preset)
        raise ConfigError(source, [
            f"{PROJECT_NAMESPACE}:preset: {shown} is not a preset; allowed: "
            + ", ".join(repr(p) for p in PRESETS)
        ])
    extra_problems = []
    if "region" in raw:  # the model's region comes from aws:region, the AWS provider's own key
        extra_problems.append(f"{PROJECT_NAMESPACE}:region: {_show(raw['region'])}: unknown key; "
                              "the region is set with aws:region")
        raw = {k: v for k, v in raw.items() if k != "region"}
    merged = _deep_merge(PRESETS[preset], raw)
    merged.setdefault("environment", preset)
    if "budgetMonthlyUsd" in merged:  # the ceiling's share defaults to the budget
        merged.setdefault("budgetCeilingMonthlyUsd", merged["budgetMonthlyUsd"])
    merged["region"] = region if region is not None else DEFAULT_REGION
    try:
        model = PlatformConfig.model_validate(merged)
    except ValidationError as exc:
        problems = list(extra_problems)
        for line in validation_problems(exc):
            if line.startswith(f"{PROJECT_NAMESPACE}:region:"):  # the one key outside ours
                line = "aws:region" + line.removeprefix(f"{PROJECT_NAMESPACE}:region")
            problems.append(line)
        raise ConfigError(source, problems) from None
    if extra_problems:
        raise ConfigError(source, extra_problems)
    return model


def _decode(value: Any) -> Any:
    """Config values arrive from the Pulumi CLI as strings; objects and lists as JSON text."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _config_keys() -> set[str]:
    """Every config key the engine handed to this program (the SDK has no public listing)."""
    return set(_runtime_config.CONFIG.get()) | set(_runtime_config.get_config_env())


def secret_paths(model: BaseModel, loc: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where `model` holds a secret value that is set: the key paths (aliases and list indexes)
    of its SecretStr fields that are not None, at any depth."""
    found = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        here = (*loc, info.alias or name)
        if isinstance(value, SecretStr):
            found.append(here)
        elif isinstance(value, BaseModel):
            found += secret_paths(value, here)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    found += secret_paths(item, (*here, index))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    found += secret_paths(item, (*here, key))
    return found


def plaintext_secrets(model: PlatformConfig, secret_keys: set[str]) -> list[str]:
    """One problem per secret value the stack file holds in plaintext: Pulumi encrypts a value
    only when it is set with `--secret` (and then marks its whole top-level key secret)."""
    problems = []
    for loc in secret_paths(model):
        if f"{PROJECT_NAMESPACE}:{loc[0]}" in secret_keys:
            continue
        path = _key_path(loc)
        problems.append(f"{path}: [secret]: set in plaintext, so the stack file and the state "
                        "hold it readable; allowed: a Pulumi secret, set with `pulumi config set "
                        f"--secret --path '{path}' <value>`")
    return problems


def load(source: str | None = None) -> PlatformConfig:
    """Read and validate this stack's configuration. `source` names the stack file in errors."""
    source = source or f"Pulumi.{pulumi.get_stack()}.yaml"
    config = pulumi.Config(PROJECT_NAMESPACE)
    raw: dict[str, Any] = {}
    for full_key in sorted(_config_keys()):
        namespace, _, key = full_key.partition(":")
        if namespace == PROJECT_NAMESPACE and key:
            raw[key] = _decode(config.get(key))
    region = pulumi.Config("aws").get("region")
    model = build(raw, region, source)
    secret_keys = {k for k in _config_keys() if _runtime_config.is_config_secret(k)} | set(
        _runtime_config.get_config_secret_keys_env())
    problems = plaintext_secrets(model, secret_keys)
    if problems:
        raise ConfigError(source, problems)
    return model
