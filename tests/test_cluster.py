"""The Cluster component (EKS), read off the recordings of both real stacks and mutants."""

from __future__ import annotations

import json

import pytest

from components import tagging
from components.cluster import Cluster
from components.network import Network
from platformctl.harness import evaluate
from platformctl.recording import Evaluation
from stacks import config as config_model
from tests.conftest import REPO, mutate, stack_config, write_stack
from tests.units import eks_cluster, evaluate_alone

EKS = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"


def _eks(stack: Evaluation):
    (eks,) = stack.of_type(EKS)
    return eks


def _role_by_arn(stack: Evaluation, arn: str):
    (role,) = [r for r in stack.of_type(ROLE) if r.outputs["arn"] == arn]
    return role


def _managed_policies(stack: Evaluation, role) -> set[str]:
    return {a.inputs["policyArn"].rsplit("/", 1)[-1] for a in stack.of_type(ATTACHMENT)
            if a.inputs["role"] == role.outputs["name"]}


def _by_urn(stack: Evaluation, urns):
    known = stack.by_urn()
    return [known[u] for u in urns if u in known]


def test_control_plane_version_and_support_policy_are_explicit(stack):
    eks = _eks(stack)
    assert eks.inputs["version"] == stack.config.cluster.kubernetes_version == "1.36"
    assert eks.inputs["upgradePolicy"] == {"supportType": "STANDARD"}


def test_secrets_are_envelope_encrypted_with_a_rotating_key(stack):
    eks = _eks(stack)
    (encryption,) = eks.inputs["encryptionConfig"] if isinstance(
        eks.inputs["encryptionConfig"], list) else [eks.inputs["encryptionConfig"]]
    assert encryption["resources"] == ["secrets"]
    (key,) = [k for k in stack.of_type("aws:kms/key:Key")
              if k.outputs["arn"] == encryption["provider"]["keyArn"]]
    assert key.inputs["enableKeyRotation"] is True


def test_control_plane_logs_go_to_a_group_with_retention(stack):
    eks = _eks(stack)
    assert {"api", "audit", "authenticator"} <= set(eks.inputs["enabledClusterLogTypes"])
    (group,) = [g for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup")
                if g.inputs.get("name") == f"/aws/eks/{eks.inputs['name']}/cluster"]
    assert group.inputs["retentionInDays"] == stack.config.cluster.log_retention_days
    assert group.urn in eks.dependencies  # exists (with retention) before EKS writes to it


def test_endpoint_is_private_and_public_access_restricted(stack):
    vpc_config = _eks(stack).inputs["vpcConfig"]
    assert vpc_config["endpointPrivateAccess"] is True
    if vpc_config["endpointPublicAccess"]:
        assert vpc_config["publicAccessCidrs"] == list(stack.config.cluster.public_endpoint.cidrs)
        assert "0.0.0.0/0" not in vpc_config["publicAccessCidrs"]
    private_ids = set(stack.outputs["privateSubnetIds"].value)
    assert set(vpc_config["subnetIds"]) == private_ids


def test_public_endpoint_can_be_closed(tmp_path):
    config = mutate(stack_config("dev"), "platform:cluster.publicEndpoint",
                    {"enabled": False})
    evaluation = evaluate_alone(write_stack(tmp_path, config), eks_cluster)
    vpc_config = _eks(evaluation).inputs["vpcConfig"]
    assert vpc_config["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc_config


def test_access_entries_only_with_an_explicit_admin(stack):
    eks = _eks(stack)
    assert eks.inputs["accessConfig"] == {
        "authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    admin = stack.config.cluster.admin_role_arn
    (association,) = [a for a in stack.of_type(
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a.inputs["principalArn"] == admin]
    assert association.inputs["policyArn"].endswith(":cluster-access-policy/AmazonEKSClusterAdminPolicy")
    assert association.inputs["accessScope"] == {"type": "cluster"}
    readers = [a for a in stack.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
               if a.inputs["principalArn"] in stack.config.cluster.read_only_role_arns]
    # View, not AdminView: read-only on-call cannot read Secrets.
    assert all(r.inputs["policyArn"].endswith("/AmazonEKSViewPolicy") for r in readers)
    assert len(readers) == len(stack.config.cluster.read_only_role_arns)
    assert not [a for a in stack.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
                if a.inputs["policyArn"].endswith("/AmazonEKSAdminViewPolicy")]


def test_reading_secrets_is_a_separate_named_choice(tmp_path):
    reader = "arn:aws:iam::222222222222:role/break-glass"
    path = write_stack(tmp_path, mutate(stack_config("prod"),
                                        "platform:cluster.secretReaderRoleArns", [reader]))
    evaluation = evaluate_alone(path, eks_cluster)
    (association,) = [a for a in evaluation.of_type(
        "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if a.inputs["principalArn"] == reader]
    assert association.inputs["policyArn"].endswith("/AmazonEKSAdminViewPolicy")


def test_cluster_and_node_roles_have_only_what_they_need(stack):
    eks = _eks(stack)
    cluster_role = _role_by_arn(stack, eks.inputs["roleArn"])
    assert _managed_policies(stack, cluster_role) == {"AmazonEKSClusterPolicy"}
    for group in stack.of_type(NODE_GROUP):
        node_role = _role_by_arn(stack, group.inputs["nodeRoleArn"])
        # No CNI policy on the nodes: the CNI gets its own role.
        assert _managed_policies(stack, node_role) == {
            "AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly"}


def test_vpc_cni_enforces_network_policy_with_its_own_irsa_role(stack):
    (cni,) = [a for a in stack.of_type(ADDON) if a.inputs["addonName"] == "vpc-cni"]
    assert json.loads(cni.inputs["configurationValues"])["enableNetworkPolicy"] == "true"
    role = _role_by_arn(stack, cni.inputs["serviceAccountRoleArn"])
    assert _managed_policies(stack, role) == {"AmazonEKS_CNI_Policy"}
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    (provider,) = stack.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert trust["Principal"] == {"Federated": provider.outputs["arn"]}
    conditions = trust["Condition"]["StringEquals"]
    assert "system:serviceaccount:kube-system:aws-node" in conditions.values()
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_addons_are_pinned_and_ordered_around_the_nodes(stack):
    versions = stack.config.cluster.addon_versions
    expected = {"vpc-cni": versions.vpc_cni, "coredns": versions.coredns,
                "kube-proxy": versions.kube_proxy,
                "aws-ebs-csi-driver": versions.aws_ebs_csi_driver,
                "eks-pod-identity-agent": versions.eks_pod_identity_agent}
    addons = {a.inputs["addonName"]: a for a in stack.of_type(ADDON)}
    assert {name: a.inputs["addonVersion"] for name, a in addons.items()} == expected
    groups = stack.of_type(NODE_GROUP)
    for group in groups:
        before = {r.inputs.get("addonName") for r in _by_urn(stack, group.dependencies)}
        assert {"vpc-cni", "kube-proxy", "eks-pod-identity-agent"} <= before
    for name in ("coredns", "aws-ebs-csi-driver"):
        assert {g.urn for g in groups} <= set(addons[name].dependencies)
    ebs = addons["aws-ebs-csi-driver"]
    (association,) = ebs.inputs["podIdentityAssociations"]
    assert association["serviceAccount"] == "ebs-csi-controller-sa"
    ebs_role = _role_by_arn(stack, association["roleArn"])
    assert _managed_policies(stack, ebs_role) == {"AmazonEBSCSIDriverPolicy"}


def test_node_groups_sit_in_private_subnets_with_imdsv2(stack):
    private_ids = list(stack.outputs["privateSubnetIds"].value)
    zones = list(stack.outputs["availabilityZones"].value)
    templates = {t.id: t for t in stack.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    # Zonal: one group per AZ, in that AZ's private subnet, the sizes split across them.
    for name, pool in stack.config.cluster.node_groups.items():
        groups = [g for g in stack.of_type(NODE_GROUP) if g.inputs["labels"]["node-group"] == name]
        assert pool.zonal
        assert [g.name for g in groups] == [f"{stack.stack}-{name}-{zone}" for zone in zones]
        sizes = pool.sizes_per_zone(len(zones))
        assert [sum(s[i] for s in sizes) for i in range(3)] == [
            pool.min_size, pool.desired_size, pool.max_size]
        _zonal_groups(stack, name, pool, groups, zones, private_ids, sizes, templates)


def _zonal_groups(stack, name, pool, groups, zones, private_ids, sizes, templates):
    for group, zone, subnet, (minimum, desired, maximum) in zip(
            groups, zones, private_ids, sizes, strict=True):
        assert group.inputs["subnetIds"] == [subnet]
        assert group.inputs["tags"]["Name"].endswith(f"-{name}-{zone}")
        assert group.inputs["labels"] == {"node-group": name}
        assert group.inputs["instanceTypes"] == list(pool.instance_types)
        assert group.inputs["capacityType"] == pool.capacity_type
        assert group.inputs["amiType"] == "AL2023_ARM_64_STANDARD"  # Graviton by default
        assert group.inputs["scalingConfig"] == {
            "minSize": minimum, "desiredSize": desired, "maxSize": maximum}
        # The autoscaler owns the count after creation.
        assert "scalingConfig.desiredSize" in group.ignore_changes
        template = templates[group.inputs["launchTemplate"]["id"]]
        metadata = template.inputs["metadataOptions"]
        assert metadata["httpTokens"] == "required"
        assert metadata["httpPutResponseHopLimit"] == 1
        (disk,) = template.inputs["blockDeviceMappings"]
        assert disk["ebs"] == {"volumeSize": pool.disk_size_gib, "volumeType": "gp3",
                               "encrypted": "true", "deleteOnTermination": "true"}
        instance_tags = {s["resourceType"]: s["tags"] for s in template.inputs["tagSpecifications"]}
        assert instance_tags["instance"]["cost-center"] == stack.config.tags.cost_center


def test_dev_uses_spot_and_prod_on_demand_beside_spot(evaluations):
    assert {g.inputs["capacityType"] for g in evaluations["dev"].of_type(NODE_GROUP)} == {"SPOT"}
    # Prod: an on-demand node in every AZ (what keeps EBS volumes), spot beside it.
    capacity = {(g.inputs["labels"]["node-group"], g.inputs["capacityType"])
                for g in evaluations["prod"].of_type(NODE_GROUP)}
    assert capacity == {("system", "ON_DEMAND"), ("spot", "SPOT")}
    system = [g for g in evaluations["prod"].of_type(NODE_GROUP)
              if g.inputs["capacityType"] == "ON_DEMAND"]
    assert [g.inputs["scalingConfig"]["minSize"] for g in system] == [1, 1, 1]


def test_default_storage_class_is_encrypted_gp3(stack):
    (storage_class,) = stack.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    inputs = storage_class.inputs
    assert inputs["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert inputs["provisioner"] == "ebs.csi.aws.com"
    assert inputs["parameters"]["type"] == "gp3" and inputs["parameters"]["encrypted"] == "true"
    assert inputs["volumeBindingMode"] == "WaitForFirstConsumer"


def test_cluster_services_are_pinned_helm_releases(stack):
    releases = {r.inputs["name"]: r for r in stack.of_type("kubernetes:helm.sh/v3:Release")}
    lbc = releases["aws-load-balancer-controller"]
    assert lbc.inputs["chart"] == "charts/aws-load-balancer-controller-3.5.0.tgz"
    assert "repositoryOpts" not in lbc.inputs  # the vendored archive, nothing fetched
    values = lbc.inputs["values"]
    assert values["clusterName"] == _eks(stack).inputs["name"]
    assert values["vpcId"] == stack.outputs["vpcId"].value
    assert values["defaultTargetType"] == "ip"
    assert values["defaultTags"]["environment"] == stack.config.environment
    metrics = releases["metrics-server"]
    assert metrics.inputs["chart"] == "charts/metrics-server-3.13.1.tgz"
    (association,) = [a for a in stack.of_type(
        "aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a.inputs["serviceAccount"] == "aws-load-balancer-controller"]
    assert association.inputs["namespace"] == "kube-system"


def test_kubernetes_objects_use_the_cluster_s_provider(stack):
    (provider,) = stack.of_type("pulumi:providers:kubernetes")
    kubernetes = [r for r in stack.resources if r.type.startswith("kubernetes:")]
    assert len(kubernetes) >= 3
    for resource in kubernetes:
        assert resource.provider.startswith(provider.urn)
    kubeconfig = json.loads(stack.outputs["kubeconfig"].value)
    assert kubeconfig["users"][0]["user"]["exec"]["args"][:2] == ["eks", "get-token"]


def test_kubeconfig_is_a_secret_and_the_kubectl_command_is_exported(stack):
    assert stack.outputs["kubeconfig"].secret
    assert stack.outputs["configureKubectl"].value == (
        f"aws eks update-kubeconfig --region {stack.config.region} "
        f"--name {_eks(stack).inputs['name']}")


def test_prod_cluster_is_deletion_protected(evaluations):
    assert _eks(evaluations["prod"]).inputs["deletionProtection"] is True


def _helper_program(source):
    cfg = config_model.load(source)
    tagging.install(cfg.standard_tags)
    network = Network(cfg.environment, cfg.network, cfg.region)
    cluster = Cluster(cfg.environment, cfg.cluster, network.ref, cfg.region,
                      tags_for=cfg.standard_tags)
    cluster.service_account_role("demo-pod-identity", "apps", "demo",
                                 managed_policies=["AmazonS3ReadOnlyAccess"], parent=cluster)
    cluster.service_account_role("demo-irsa", "apps", "legacy", via="irsa", parent=cluster,
                                 policy='{"Version": "2012-10-17", "Statement": []}')
    with pytest.raises(ValueError, match="via must be"):
        cluster.service_account_role("bad", "apps", "x", via="kiam", parent=cluster)
    return {}


def test_service_account_role_helper():
    evaluation = evaluate("dev", project_dir=REPO, program=_helper_program)
    pod_role = evaluation.one(ROLE, "demo-pod-identity")
    trust = json.loads(pod_role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert set(trust["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    assert trust["Condition"]["ArnLike"]["aws:SourceArn"] == _eks(evaluation).outputs["arn"]
    association = evaluation.one("aws:eks/podIdentityAssociation:PodIdentityAssociation",
                                 "demo-pod-identity")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "apps", "demo")
    irsa = evaluation.one(ROLE, "demo-irsa")
    conditions = json.loads(irsa.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]
    assert "system:serviceaccount:apps:legacy" in conditions["StringEquals"].values()
    assert evaluation.one("aws:iam/rolePolicy:RolePolicy", "demo-irsa")
    assert pod_role.tags["service"] == "cluster"


def test_node_groups_sharing_a_burstable_family_must_agree_on_its_credit_mode(tmp_path, capsys):
    """The mode is the family's default in the account and region (a launch template without
    an instance type cannot carry one): two modes for one family are a config error."""
    from tests.conftest import config_error

    config = stack_config("prod")
    assert "nodeGroups" not in config["platform:cluster"]  # the preset's: add a second group
    config = mutate(config, "platform:cluster.nodeGroups", {
        "system": {"instanceTypes": ["t4g.medium"], "capacityType": "ON_DEMAND", "minSize": 4,
                   "desiredSize": 4, "maxSize": 8, "diskSizeGib": 20, "maxPods": 40},
        "burst": {"instanceTypes": ["t4g.large"], "capacityType": "ON_DEMAND", "minSize": 1,
                  "desiredSize": 1, "maxSize": 2, "cpuCredits": "unlimited"}})
    err = config_error(write_stack(tmp_path, config), capsys)
    assert ("nodeGroups.burst.cpuCredits: 'unlimited': differs from node group system's "
            "'standard' for the same family t4g") in err, err


@pytest.mark.parametrize("release, name", [
    ("aws-load-balancer-controller", "aws-load-balancer-controller"),
    ("cert-manager", "cert-manager-webhook"),
    ("gatekeeper", "gatekeeper-controller-manager"),
    ("policy-controller", "policy-controller-webhook"),
])
def test_prods_fail_closed_webhooks_run_one_pod_per_az(rendered, release, name):
    """Each fails closed on what it intercepts (every Service, certificate, team object, team
    pod): its two pods are kept in two AZs (the charts' defaults only preferred two nodes), and
    webhook-availability finds nothing to say of prod."""
    from platformctl.crossguard import check_evaluation
    from tests import k8s_objects

    prod = rendered["prod"]
    server = k8s_objects.rendered_object(prod, release, "Deployment", name)
    spec = server["spec"]["template"]["spec"]
    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "topology.kubernetes.io/zone" and server["spec"]["replicas"] == 2
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in term["labelSelector"]["matchLabels"].items())
    report = check_evaluation(prod)
    assert not [v for v in report.violations if v.policy == "webhook-availability"]
    assert "webhook-availability" not in {n[0] for n in report.not_applicable}


@pytest.mark.parametrize("release, name", [
    ("cluster-autoscaler", "cluster-autoscaler"), ("metrics-server", "metrics-server")])
def test_prods_autoscaler_and_metrics_server_run_one_pod_per_az(rendered, release, name):
    """What an AZ's loss needs running: the autoscaler (it adds the nodes that replace the lost
    AZ's) and metrics-server (it feeds the HPAs that grow the survivors)."""
    from tests import k8s_objects

    server = k8s_objects.rendered_object(rendered["prod"], release, "Deployment", name)
    spec = server["spec"]["template"]["spec"]
    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "topology.kubernetes.io/zone" and server["spec"]["replicas"] == 2
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in term["labelSelector"]["matchLabels"].items())
    # dev runs one of each, with the chart's default placement.
    dev = k8s_objects.rendered_object(rendered["dev"], release, "Deployment", name)
    assert dev["spec"]["replicas"] == 1 and "podAntiAffinity" not in (
        dev["spec"]["template"]["spec"].get("affinity") or {})
