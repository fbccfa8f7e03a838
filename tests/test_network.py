"""The Network component, read off the recordings of both real stacks (and a few mutants)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from components.network import subnet_layout
from platformctl.recording import Evaluation
from tests.conftest import mutate, stack_config, write_stack
from tests.units import evaluate_alone, own_network

SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
NAT = "aws:ec2/natGateway:NatGateway"
VPC = "aws:ec2/vpc:Vpc"


def _vpc(evaluation: Evaluation):
    (vpc,) = evaluation.of_type(VPC)
    return vpc


def _subnets(evaluation: Evaluation, tier: str):
    return [s for s in evaluation.of_type(SUBNET) if s.inputs["tags"]["tier"] == tier]


def _route_table_of(evaluation: Evaluation, subnet) -> dict:
    by_id = {r.id: r for r in evaluation.of_type(ROUTE_TABLE)}
    (assoc,) = [a for a in evaluation.of_type(ASSOCIATION) if a.inputs["subnetId"] == subnet.id]
    return by_id[assoc.inputs["routeTableId"]]


def _default_route(evaluation: Evaluation, table):
    routes = [r for r in evaluation.of_type(ROUTE)
              if r.inputs["routeTableId"] == table.id
              and r.inputs.get("destinationCidrBlock") == "0.0.0.0/0"]
    assert len(routes) <= 1
    return routes[0] if routes else None


def test_vpc_uses_the_configured_cidr(stack):
    assert _vpc(stack).inputs["cidrBlock"] == stack.config.network.cidr
    assert _vpc(stack).inputs["enableDnsHostnames"] is True


def test_subnets_are_disjoint_and_inside_the_vpc(stack):
    vpc = ipaddress.IPv4Network(_vpc(stack).inputs["cidrBlock"])
    networks = [ipaddress.IPv4Network(s.inputs["cidrBlock"]) for s in stack.of_type(SUBNET)]
    assert len(networks) == 3 * stack.config.network.az_count
    for net in networks:
        assert net.subnet_of(vpc)
    for i, a in enumerate(networks):
        for b in networks[i + 1:]:
            assert not a.overlaps(b), (a, b)


def test_each_tier_spans_the_configured_azs(stack):
    azs = stack.outputs["availabilityZones"].value
    assert len(azs) == stack.config.network.az_count
    for tier in ("public", "private", "database"):
        assert sorted(s.inputs["availabilityZone"] for s in _subnets(stack, tier)) == sorted(azs)
        assert len(stack.outputs[f"{tier}SubnetIds"].value) == len(azs)


def test_nat_count_matches_the_strategy(stack):
    expected = {"single": 1, "one-per-az": stack.config.network.az_count, "none": 0,
                "instance": 0}
    assert len(stack.of_type(NAT)) == expected[stack.config.network.nat_strategy]
    instance = stack.config.network.nat_strategy == "instance"
    assert len(stack.of_type("aws:ec2/eip:Eip")) == len(stack.of_type(NAT)) + instance
    public_ids = {s.id for s in _subnets(stack, "public")}
    assert all(n.inputs["subnetId"] in public_ids for n in stack.of_type(NAT))


def test_private_subnets_route_through_nat(stack):
    nat_by_id = {n.id: n for n in stack.of_type(NAT)}
    subnet_az = {s.id: s.inputs["availabilityZone"] for s in stack.of_type(SUBNET)}
    for subnet in _subnets(stack, "private"):
        route = _default_route(stack, _route_table_of(stack, subnet))
        assert route is not None, subnet.name
        if stack.config.network.nat_strategy == "instance":
            (interface,) = stack.of_type("aws:ec2/networkInterface:NetworkInterface")
            assert route.inputs["networkInterfaceId"] == interface.id
            continue
        nat = nat_by_id[route.inputs["natGatewayId"]]
        if stack.config.network.nat_strategy == "one-per-az":
            # An AZ's egress survives the loss of another AZ.
            assert subnet_az[nat.inputs["subnetId"]] == subnet.inputs["availabilityZone"]


def test_public_subnets_route_to_the_internet_gateway(stack):
    (igw,) = stack.of_type("aws:ec2/internetGateway:InternetGateway")
    for subnet in _subnets(stack, "public"):
        route = _default_route(stack, _route_table_of(stack, subnet))
        assert route.inputs["gatewayId"] == igw.id
        assert subnet.inputs["mapPublicIpOnLaunch"] is False


def test_database_subnets_have_no_route_out(stack):
    for subnet in _subnets(stack, "database"):
        assert _default_route(stack, _route_table_of(stack, subnet)) is None


def test_flow_logs_are_on_with_retention(stack):
    (flow_log,) = stack.of_type("aws:ec2/flowLog:FlowLog")
    (group,) = [g for g in stack.of_type("aws:cloudwatch/logGroup:LogGroup")
                if g.outputs["arn"] == flow_log.inputs["logDestination"]]
    assert flow_log.inputs["vpcId"] == _vpc(stack).id
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow_log.inputs["logDestination"] == group.outputs["arn"]
    assert group.inputs["retentionInDays"] == stack.config.network.flow_logs.retention_days
    (role,) = [r for r in stack.of_type("aws:iam/role:Role") if r.id == flow_log.inputs[
        "iamRoleArn"].rsplit("/", 1)[-1]]
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Statement"][0]["Condition"]["StringEquals"]


def test_default_security_group_is_locked_down(stack):
    (default_sg,) = stack.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert default_sg.inputs["vpcId"] == _vpc(stack).id
    assert not default_sg.inputs.get("ingress") and not default_sg.inputs.get("egress")


def test_load_balancer_subnet_tags(stack):
    # Internet-facing load balancers in the first loadBalancerAzCount AZs (prod: two of three).
    balanced = stack.config.network.load_balancer_az_count or stack.config.network.az_count
    public = _subnets(stack, "public")
    assert [s.inputs["tags"].get("kubernetes.io/role/elb") for s in public] == (
        ["1"] * balanced + [None] * (len(public) - balanced))
    assert balanced == {"dev": 2, "prod": 2}[stack.stack]
    for subnet in _subnets(stack, "private"):
        assert subnet.inputs["tags"]["kubernetes.io/role/internal-elb"] == "1"
    for subnet in _subnets(stack, "database"):
        assert not any(k.startswith("kubernetes.io/") for k in subnet.inputs["tags"])


def test_s3_gateway_endpoint_serves_private_route_tables(stack):
    (endpoint,) = [e for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                   if e.inputs["vpcEndpointType"] == "Gateway"]
    assert endpoint.inputs["serviceName"] == f"com.amazonaws.{stack.config.region}.s3"
    for subnet in _subnets(stack, "private"):
        assert _route_table_of(stack, subnet).id in endpoint.inputs["routeTableIds"]


def test_all_aws_resources_use_the_configured_region(stack):
    """One provider in the stack's region for everything, but the backups' copy region: only
    the Backup component's copy vault, its key and the database's replicated backups go there."""
    providers = {p.name: p for p in stack.of_type("pulumi:providers:aws")}
    provider = providers.pop("aws")
    assert provider.inputs["region"] == stack.config.region
    copy_region = stack.config.backup.copy_region
    assert [p.inputs["region"] for p in providers.values()] == (
        [copy_region] if copy_region else [])
    elsewhere = []
    for resource in stack.resources:
        if resource.custom and resource.type.startswith("aws:"):
            assert resource.provider
            if not resource.provider.startswith(provider.urn):
                elsewhere.append(resource.type)
    assert sorted(set(elsewhere)) == ([] if not copy_region else [
        "aws:backup/vault:Vault", "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
        "aws:kms/alias:Alias", "aws:kms/key:Key", "aws:kms/keyPolicy:KeyPolicy",
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"])


@pytest.fixture(scope="module")
def no_nat(tmp_path_factory) -> Evaluation:
    config = mutate(stack_config("dev"), "platform:network.natStrategy", "none")
    config = mutate(config, "platform:network.interfaceEndpoints",
                    ["ec2", "ecr.api", "ecr.dkr", "sts", "logs", "eks-auth"])
    return evaluate_alone(write_stack(tmp_path_factory.mktemp("no-nat"), config), own_network)


def test_without_nat_private_subnets_have_no_default_route_but_endpoints(no_nat):
    assert no_nat.of_type(NAT) == []
    for subnet in _subnets(no_nat, "private"):
        assert _default_route(no_nat, _route_table_of(no_nat, subnet)) is None
    interface = [e for e in no_nat.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                 if e.inputs["vpcEndpointType"] == "Interface"]
    prefix = f"com.amazonaws.{no_nat.config.region}."
    assert sorted(e.inputs["serviceName"].removeprefix(prefix) for e in interface) == sorted(
        ["ec2", "ecr.api", "ecr.dkr", "sts", "logs", "eks-auth"])
    private_ids = sorted(s.id for s in _subnets(no_nat, "private"))
    for endpoint in interface:
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert sorted(endpoint.inputs["subnetIds"]) == private_ids
    (rule,) = [r for r in no_nat.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
               if no_nat.component_of(r).type == "platform:index:Network"]
    assert (rule.inputs["fromPort"], rule.inputs["toPort"]) == (443, 443)
    assert rule.inputs["cidrIpv4"] == no_nat.config.network.cidr


@pytest.mark.parametrize("prefix", range(16, 21))
@pytest.mark.parametrize("azs", [2, 3])
def test_subnet_layout_is_disjoint_for_every_allowed_size(prefix, azs):
    vpc = ipaddress.IPv4Network(f"10.0.0.0/{prefix}")
    layout = subnet_layout(str(vpc), azs)
    nets = [*layout.public, *layout.private, *layout.database]
    assert len(nets) == 3 * azs
    assert all(n.subnet_of(vpc) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
    # Private subnets get the room (pod IPs): a quarter of the VPC each.
    assert all(n.num_addresses == vpc.num_addresses // 4 for n in layout.private)


def test_adding_an_az_keeps_every_existing_subnet():
    two, three = subnet_layout("10.0.0.0/16", 2), subnet_layout("10.0.0.0/16", 3)
    for tier in ("public", "private", "database"):
        assert three.tier(tier)[:2] == two.tier(tier)


# -- the NAT instance (dev) -----------------------------------------------------------------


def test_dev_egress_is_a_nat_instance_behind_a_static_interface(evaluations):
    import base64

    from components.network import FCK_NAT_AMI_NAME, FCK_NAT_AMI_OWNER

    dev = evaluations["dev"]
    assert (FCK_NAT_AMI_OWNER, FCK_NAT_AMI_NAME) == ("568608671756", "fck-nat-al2023-*-arm64-ebs")
    (group,) = dev.of_type("aws:autoscaling/group:Group")
    (template,) = [t for t in dev.of_type("aws:ec2/launchTemplate:LaunchTemplate")
                   if t.name == "dev-nat-instance"]
    (interface,) = dev.of_type("aws:ec2/networkInterface:NetworkInterface")
    (address,) = dev.of_type("aws:ec2/eip:Eip")
    first_public = _subnets(dev, "public")[0]
    # One instance, replaced when it fails, in the first AZ, where its interface is.
    assert (group.inputs["minSize"], group.inputs["maxSize"], group.inputs["desiredCapacity"]) \
        == (1, 1, 1)
    assert group.inputs["vpcZoneIdentifiers"] == [first_public.id]
    assert interface.inputs["subnetId"] == first_public.id
    assert interface.inputs["sourceDestCheck"] is False
    # Hardened like the nodes: IMDSv2 with one hop, encrypted root volume, no SSH key, standard
    # CPU credits, Graviton.
    inputs = template.inputs
    assert inputs["metadataOptions"]["httpTokens"] == "required"
    assert inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert inputs["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    assert "keyName" not in inputs
    assert inputs["creditSpecification"] == {"cpuCredits": "standard"}
    assert inputs["instanceType"] == "t4g.nano"
    # At boot it attaches the interface the routes point at and takes the Elastic IP.
    script = base64.b64decode(inputs["userData"]).decode()
    assert f"eni_id={interface.id}" in script and f"eip_id={address.id}" in script
    assert "systemctl restart fck-nat.service" in script
    # Only the VPC may send through it.
    (group_sg,) = [g for g in dev.of_type("aws:ec2/securityGroup:SecurityGroup")
                   if g.name == "dev-nat-instance"]
    assert [rule["cidrBlocks"] for rule in group_sg.inputs["ingress"]] == [
        [_vpc(dev).inputs["cidrBlock"]]]
    # Managed through Session Manager; its own role may attach only its interface and address.
    attachments = [a for a in dev.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                   if a.name == "dev-nat-instance-ssm"]
    assert attachments and attachments[0].inputs["policyArn"].endswith(
        "AmazonSSMManagedInstanceCore")
    (policy,) = [p for p in dev.of_type("aws:iam/rolePolicy:RolePolicy")
                 if p.name == "dev-nat-instance"]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    attach = next(s for s in statements if s["Sid"] == "AttachTheStaticInterface")
    assert attach["Resource"][1].endswith(f"network-interface/{interface.id}")
    assert attach["Condition"] == {"StringEquals": {"aws:ResourceTag/Name": "dev-nat-instance"}}


@pytest.mark.parametrize(("stack", "key", "value", "expected"), [
    ("prod", "platform:network.natStrategy", "instance",
     "platform:network.natStrategy: 'instance': is for non-prod stacks"),
    ("dev", "platform:network.natInstanceType", "t3.nano",
     "platform:network.natInstanceType: 't3.nano': is not a Graviton type"),
])
def test_a_nat_instance_in_prod_or_of_an_x86_type_is_refused(tmp_path, capsys, stack, key,
                                                              value, expected):
    from tests.conftest import config_error

    path = write_stack(tmp_path, mutate(stack_config(stack), key, value))
    assert expected in config_error(path, capsys)


# What fck-nat's service calls at boot (AndrewGuenther/fck-nat service/fck-nat.sh at commit
# 193c58c24d02527cff563a5109d39b792ed6ef57, read 2026-12-07) when eni_id and eip_id are set:
# the action and the resource it acts on. "own-interface" is the instance's primary network
# interface (tagged by the launch template), "static-interface" the one the routes point at.
FCK_NAT_CALLS = [
    ("ec2:AssociateAddress", "elastic-ip"),
    ("ec2:AssociateAddress", "own-interface"),
    ("ec2:ModifyNetworkInterfaceAttribute", "own-interface"),  # --no-source-dest-check
    ("ec2:AttachNetworkInterface", "instance"),
    ("ec2:AttachNetworkInterface", "static-interface"),
]


def test_the_nat_instance_role_allows_every_call_fck_nat_makes(evaluations):
    """Evaluated by moto's IAM policy engine (action, resource and condition). Without
    ModifyNetworkInterfaceAttribute the service cannot turn off its interface's
    source/destination check and dev's nodes have no egress."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    dev = evaluations["dev"]
    (policy,) = [p for p in dev.of_type("aws:iam/rolePolicy:RolePolicy")
                 if p.name == "dev-nat-instance"]
    (interface,) = dev.of_type("aws:ec2/networkInterface:NetworkInterface")
    (address,) = dev.of_type("aws:ec2/eip:Eip")
    ec2 = "arn:aws:ec2:us-east-1:123456789012"
    resources = {"elastic-ip": f"{ec2}:elastic-ip/{address.id}",
                 "own-interface": f"{ec2}:network-interface/eni-0primary",
                 "static-interface": f"{ec2}:network-interface/{interface.id}",
                 "instance": f"{ec2}:instance/i-0nat"}
    engine = IAMPolicy(policy.inputs["policy"])
    tagged = {"aws:ResourceTag/Name": "dev-nat-instance"}
    for action, what in FCK_NAT_CALLS:
        assert engine.is_action_permitted(action, resources[what], None, tagged) \
            == PermissionResult.PERMITTED, (action, what)
        # ...and only on what carries the NAT instance's Name tag.
        assert engine.is_action_permitted(action, resources[what], None, {
            "aws:ResourceTag/Name": "someone-else"}) != PermissionResult.PERMITTED, (action, what)
