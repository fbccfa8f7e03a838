"""The unit layer: one component built alone under Pulumi's mocks, from a stack file's validated
config and hand-made references (a VPC, a Kubernetes cluster, a database) instead of the other
components. A unit evaluation registers tens of resources, not the platform's ~230, so a test
of one component's setting costs a fraction of a whole-program evaluation.

The config still comes from a stack file through the one config model: what a unit test proves
about a setting holds for the key an operator writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from platformctl.harness import evaluate
from platformctl.recording import Evaluation
from stacks import config as config_model
from tests.conftest import REPO

# A VPC this program did not make, as a NetworkRef names it.
EXISTING_VPC = dict(vpc_id="vpc-0existing", vpc_cidr="10.99.0.0/16",
                    private_subnet_ids=["subnet-0priv-a", "subnet-0priv-b"],
                    private_subnet_zones=["us-east-1a", "us-east-1b"],
                    database_subnet_ids=["subnet-0db-a", "subnet-0db-b"])


def existing_network():
    from components.network import NetworkRef

    return NetworkRef(**EXISTING_VPC)


def plain_target():
    """An existing cluster reached through a plain kubeconfig: no EKS, no workload identity."""
    import pulumi_kubernetes as k8s

    from components.kubernetes import KubernetesTarget

    provider = k8s.Provider("existing", kubeconfig="{}", enable_server_side_apply=True)
    return KubernetesTarget(provider=provider, cluster_name="existing",
                            api_server_cidr="192.168.0.0/16")


def _stand_in(name: str, service: str):
    """A component standing for a part of the platform a unit does not build (the tagging
    mechanism wants every AWS resource inside one)."""
    from components.tagging import PlatformComponent

    class StandIn(PlatformComponent):
        type_token = "tests:index:StandIn"

    StandIn.service = service
    return StandIn(name)


def client_security_group():
    """The security group of the database's clients (on EKS, the nodes')."""
    import pulumi
    import pulumi_aws as aws

    return aws.ec2.SecurityGroup("clients", vpc_id=EXISTING_VPC["vpc_id"],
                                 description="Database clients",
                                 opts=pulumi.ResourceOptions(parent=_stand_in("clients",
                                                                              "cluster")))


def existing_database(cfg: config_model.PlatformConfig, ready):
    """A database this program did not make, as a DatabaseRef names it; `ready` stands for the
    instance (what to wait for before connecting)."""
    import pulumi

    from components.database import DatabaseRef

    return DatabaseRef(identifier="existing-db", address="existing-db.internal", port=5432,
                       db_name="platform", username="platform_admin",
                       master_password=pulumi.Output.secret("existing-master-password"),
                       ready=ready, config=cfg.database)


def own_network(cfg: config_model.PlatformConfig):
    """The stack's own Network component, from its config (nothing else of the platform)."""
    from components.network import Network

    return Network(cfg.environment, cfg.network, cfg.region)


def eks_cluster(cfg: config_model.PlatformConfig):
    """The EKS cluster of a stack's config in the existing VPC: its `target` carries the
    workload identity the components that give pods AWS roles need."""
    from components.cluster import Cluster

    return Cluster(cfg.environment, cfg.cluster, existing_network(), cfg.region,
                   tags_for=cfg.standard_tags)


def database(cfg: config_model.PlatformConfig):
    """The stack's Database component in the existing VPC, for the nodes' security group."""
    from components.database import Database

    return Database(cfg.environment, cfg.database, existing_network(), client_security_group(),
                    cfg.region, key_administrators=[cfg.cluster.admin_role_arn])


def nothing(cfg: config_model.PlatformConfig) -> None:
    """No component: what the policies that read only the stack's config judge."""
    return None


def existing_instance(cfg: config_model.PlatformConfig):
    """An RDS instance made elsewhere (what Backup, OffHours and chaos experiments act on)."""
    import pulumi
    import pulumi_aws as aws

    return aws.rds.Instance(
        "existing-db", engine="postgres", instance_class=cfg.database.instance_class,
        allocated_storage=20, identifier=f"{cfg.environment}-existing-db",
        opts=pulumi.ResourceOptions(parent=_stand_in("existing-db", "database")))


def existing_alarms() -> dict:
    """The platform's alarms a chaos experiment stops on, made elsewhere."""
    import pulumi
    import pulumi_aws as aws

    owner = _stand_in("alarms", "observability")
    return {slug: aws.cloudwatch.MetricAlarm(
        slug, comparison_operator="GreaterThanThreshold", evaluation_periods=1,
        metric_name="CPUUtilization", namespace="AWS/RDS", period=60, statistic="Average",
        threshold=90, opts=pulumi.ResourceOptions(parent=owner))
        for slug in ("database-cpu-high", "cluster-pods-unschedulable")}


Build = Callable[[config_model.PlatformConfig], Any]


def evaluate_alone(stack: str | Path, build: Build) -> Evaluation:
    """Evaluate `build(config)` alone for a stack (`dev`, `prod` or a stack file): the config
    validated and the standard tags installed as the program does, then only what `build`
    makes. Its return value, a dict, becomes the outputs."""
    from components import tagging

    def program(source):
        cfg = config_model.load(source)
        tagging.install(cfg.standard_tags)
        made = build(cfg)
        return made if isinstance(made, dict) else {}

    return evaluate(stack, project_dir=REPO, program=program)
