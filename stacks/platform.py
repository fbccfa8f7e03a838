"""The platform, composed for one environment. Reads top to bottom like the architecture and
the install order: configuration, tagging, network, cluster, database, observability, security
(admission control, the team baseline, Vault), GitOps.

`run()` is the whole program. It returns the stack outputs instead of exporting them, because
`pulumi.export` registers nothing under the test runtime (docs/harness.md); `__main__.py` exports
what it returns, and the offline harness resolves the same dict.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pulumi
import pulumi_aws as aws

from components import cost_outputs, tagging
from components.backup import Backup
from components.chaos import ChaosExperiments, ChaosMesh
from components.cluster import Cluster
from components.database import Database
from components.gitops import GITOPS_PATH, ArgoBootstrap
from components.logs import LogPipeline
from components.network import Network
from components.observability import ObservabilityStack
from components.schedule import OffHours
from components.security import SecurityStack, SecurityStackArgs
from components.traces import TracePipeline
from components.vault import IN_CLUSTER_ADDRESS as VAULT_ADDRESS
from stacks import config as config_model


def run(source: str | None = None) -> dict[str, pulumi.Input[object]]:
    """Build the platform for the current stack; `source` names the stack file in errors."""
    # Configuration first: a bad value stops here, before any resource is registered.
    cfg = config_model.load(source)
    env = cfg.environment

    tagging.install(cfg.standard_tags, cfg.type_tags())
    costs = cost_outputs.install()

    # One explicit AWS provider whose region is the config model's: the region the program
    # reasons about (subnet AZs, endpoint names, prices) is the region it deploys to.
    provider = aws.Provider("aws", region=cfg.region)
    aws_only = pulumi.ResourceOptions(providers={"aws": provider})

    network = Network(env, cfg.network, cfg.region, opts=aws_only)
    cluster = Cluster(env, cfg.cluster, network.ref, cfg.region, tags_for=cfg.standard_tags,
                      opts=aws_only)
    # Everything Kubernetes-side installs through the cluster's target, in this order (each
    # release that fails closed or brings CRDs is a prerequisite of what follows it).
    target = cluster.target
    database = Database(env, cfg.database, network.ref, cluster.node_security_group, cfg.region,
                        cluster.key_administrators, opts=aws_only)
    # Backups: the platform's volumes (AWS Backup) and, with a copy region, the database's
    # point-in-time recovery there too.
    backup = Backup(env, cfg.backup, region=cfg.region, cluster_name=cluster.cluster_name,
                    database=database.instance, key_administrators=cluster.key_administrators,
                    protect=cfg.preset == "prod", opts=aws_only)
    # Monitoring first: its CRDs (ServiceMonitor, PrometheusRule) are what the later charts
    # render objects of, and it watches everything installed after it.
    observability = ObservabilityStack(
        env, cfg.observability, cfg.alerting, target, environment=env,
        budget_monthly_usd=cfg.budget_monthly_usd, region=cfg.region,
        database=dataclasses.replace(database.ref, sleeps=cfg.off_hours is not None
                                     and cfg.off_hours.enabled),
        opts=aws_only)
    # Then security: Gatekeeper (fail closed: everything after it waits for it), the team
    # namespaces and their baseline, Vault.
    security = SecurityStack(
        env,
        SecurityStackArgs(
            admission=cfg.security, vault=cfg.vault, teams=cfg.teams,
            admin_role_arn=cfg.cluster.admin_role_arn,
            key_administrators=cluster.key_administrators,
            monitoring_namespace=cfg.observability.namespace,
            protect=cfg.preset == "prod"),
        target, network.ref, database.ref, cfg.region, opts=aws_only)
    # Logs: Fluent Bit on every node into CloudWatch Logs (after monitoring, whose
    # ServiceMonitor kind its chart renders, and Gatekeeper, whose webhooks see its objects).
    if cfg.observability.logs.enabled:
        LogPipeline(env, cfg.observability.logs, target, environment=env, region=cfg.region,
                    monitoring_namespace=cfg.observability.namespace, opts=aws_only)
    # Traces: an OpenTelemetry Collector gateway the services send OTLP to, into AWS X-Ray.
    if cfg.observability.traces.enabled:
        TracePipeline(env, cfg.observability.traces, target, environment=env,
                      region=cfg.region, monitoring_namespace=cfg.observability.namespace,
                      opts=aws_only)
    # GitOps: Argo CD takes over from here; gitops/ reads the cluster's metadata (gitops-bridge).
    gitops = ArgoBootstrap(
        env, cfg.gitops, env, cfg.teams, target,
        metadata={
            "aws_account_id": cluster.account, "aws_region": cfg.region,
            "aws_cluster_name": cluster.eks.name, "aws_vpc_id": network.vpc.id,
            "addons_repo_url": cfg.gitops.repo_url, "addons_repo_revision": cfg.gitops.revision,
            "addons_repo_basepath": GITOPS_PATH, "database_address": database.instance.address,
            "vault_address": VAULT_ADDRESS,
            "monitoring_namespace": cfg.observability.namespace,
        },
        addons={"kube_prometheus_stack": True, "gatekeeper": True, "policy_controller": True,
                "vault": True, "vault_secrets_operator": True, "argo_rollouts": True,
                "aws_load_balancer_controller": True, "metrics_server": True},
        monitoring_namespace=cfg.observability.namespace,
        opts=pulumi.ResourceOptions(providers={"aws": provider}, depends_on=[security]))

    # Chaos Mesh in the cluster (dev): the experiments of gitops/chaos/, applied by a person.
    if cfg.chaos.mesh:
        ChaosMesh(env, target, opts=pulumi.ResourceOptions(providers={"aws": provider},
                                                           depends_on=[security]))
    # Chaos experiments on AWS, run by a person, stopped by the platform's alarms.
    if cfg.chaos.fis:
        ChaosExperiments(env, cfg.chaos, cluster_name=cluster.eks.name,
                         node_groups=cluster.node_groups, database=database.instance,
                         alarms=observability.alarms, account=cluster.account,
                         partition=cluster.partition, region=cfg.region, opts=aws_only)

    # A non-prod stack asleep outside working hours (nodes to zero, the database stopped).
    if cfg.off_hours is not None and cfg.off_hours.enabled:
        OffHours(env, cfg.off_hours, cluster.eks.name, cluster.node_group_sizes,
                 database.instance, nat_instance=network.nat_instance_group,
                 alarms=list(observability.alarms.values()), opts=aws_only)

    return _outputs(cfg, network, cluster, database, backup, observability, security, gitops,
                    costs.report(cfg.region))


def _outputs(cfg: config_model.PlatformConfig, network: Network, cluster: Cluster,
             database: Database, backup: Backup, observability: ObservabilityStack,
             security: SecurityStack, gitops: ArgoBootstrap,
             cost_report: pulumi.Output[dict[str, Any]]) -> dict[str, pulumi.Input[object]]:
    """The stack outputs: what an operator copies (kubectl, port-forwards), what CI reads (the
    cost report) and the ids other stacks may need; secrets stay secret."""
    env = cfg.environment
    return {
        "environment": env,
        "region": cfg.region,
        "budgetMonthlyUsd": cfg.budget_monthly_usd,
        # network
        "vpcId": network.vpc.id,
        "vpcCidr": network.vpc.cidr_block,
        "availabilityZones": network.availability_zones,
        "publicSubnetIds": network.subnet_ids("public"),
        "privateSubnetIds": network.subnet_ids("private"),
        "databaseSubnetIds": network.subnet_ids("database"),
        "natGatewayPublicIps": pulumi.Output.all(*network.nat_public_ips),
        "flowLogGroupName": network.flow_log_group.name if network.flow_log_group else None,
        # cluster
        "clusterName": cluster.eks.name,
        "clusterEndpoint": cluster.eks.endpoint,
        "clusterOidcProviderArn": cluster.oidc_provider.arn,
        "kubeconfig": cluster.kubeconfig,  # a secret: it names the endpoint and CA
        "configureKubectl": cluster.update_kubeconfig_command,
        # database (the master password is never an output: Vault takes it over)
        "databaseAddress": database.instance.address,
        "databasePort": database.instance.port,
        "databaseName": database.instance.db_name,
        "databaseMasterUsername": database.instance.username,
        "databaseSecurityGroupId": database.security_group.id,
        # backups
        "backupVaultName": backup.vault.name,
        "backupCopyVaultArn": backup.copy_vault.arn if backup.copy_vault else None,
        # observability (nothing public: reach the UIs through the cluster API)
        "grafanaPortForward": observability.port_forwards["grafana"],
        "prometheusPortForward": observability.port_forwards["prometheus"],
        "alertmanagerPortForward": observability.port_forwards["alertmanager"],
        "grafanaAdminPassword": observability.grafana_password.result,  # a secret
        "alertsTopicArn": observability.topic.arn,
        # security and tenancy
        "admissionEnforcement": cfg.security.gatekeeper.enforcement,
        "admissionPolicies": sorted(security.admission.constraints),
        "teamNamespaces": sorted(security.tenancy.namespaces),
        # Vault: in-cluster only; configured once the operator has initialised it
        "vaultAddressInCluster": VAULT_ADDRESS,
        "vaultPortForward": "kubectl -n vault port-forward svc/vault 8200",
        "vaultConfigured": security.secrets.configured,
        "vaultBootstrap": security.secrets.bootstrap,
        "vaultUnsealKeyArn": security.secrets.unseal_key.arn,
        # GitOps (in-cluster only)
        "argocdPortForward": "kubectl -n argocd port-forward svc/argocd-server 8443:443",
        "gitopsRoot": f"{cfg.gitops.repo_url} {cfg.gitops.revision} "
                      f"{GITOPS_PATH}/environments/{env}",
        "gitopsProjects": sorted(gitops.projects),
        # what it costs (the one cost model; platformctl cost --stack-output reads these)
        "monthlyCostUsd": cost_report.apply(lambda r: float(r["totalMonthlyUsd"])),
        "costReport": cost_report,
    }
