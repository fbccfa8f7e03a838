"""`Network`: the VPC every other component lives in.

Per AZ a public, a private and a database subnet; an internet gateway; NAT as configured
(`none`, `single`, `one-per-az`); route tables; VPC flow logs to CloudWatch; an S3 gateway
endpoint (free, and it keeps image-layer pulls off the NAT); interface endpoints on request;
the subnet tags the AWS Load Balancer Controller discovers subnets by; the default security
group emptied.

Subnet layout (derived with `ipaddress`, never string arithmetic), for a VPC of prefix /P:

* the VPC is cut in four quarters (/P+2); quarters 0-2 are the private subnets of AZs 0-2
  (EKS gives every pod a VPC address, so private subnets get the room);
* quarter 3 is cut in eight (/P+5): blocks 0-2 are the public subnets, 4-6 the database subnets,
  3 and 7 are spare.

Each AZ keeps its blocks whether the VPC spans 2 or 3 AZs, so going from 2 to 3 AZs adds subnets
and replaces none.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import pulumi
import pulumi_aws as aws
from pydantic import AfterValidator, Field, model_validator

from components import iam
from components.args import (
    AnyCidr,
    ArgsModel,
    EndpointService,
    InstanceType,
    Invalid,
    LogRetention,
    instance_architecture,
)
from components.tagging import PlatformComponent

# fck-nat's images (AndrewGuenther/fck-nat; its publisher's account, from its docs) on Amazon
# Linux 2023, arm64.
FCK_NAT_AMI_OWNER = "568608671756"
FCK_NAT_AMI_NAME = "fck-nat-al2023-*-arm64-ebs"
NAT_INSTANCE_VOLUME_GIB = 8


def nat_instance_user_data(interface_id: str, allocation_id: str) -> str:
    """fck-nat's configuration (/etc/fck-nat.conf, fck-nat docs/configuration.md): the static
    interface to attach and the Elastic IP to take; then its service restarts with it."""
    return ("#!/bin/sh\n"
            ": > /etc/fck-nat.conf\n"
            f"echo 'eni_id={interface_id}' >> /etc/fck-nat.conf\n"
            f"echo 'eip_id={allocation_id}' >> /etc/fck-nat.conf\n"
            "systemctl restart fck-nat.service\n")


# -- arguments ----------------------------------------------------------------------------------

# What the nodes in private subnets need when there is no NAT gateway: image pulls from ECR
# (plus the S3 gateway endpoint, always created), EC2 and STS for the kubelet and IRSA,
# CloudWatch Logs, and EKS Pod Identity.
# https://docs.aws.amazon.com/eks/latest/userguide/private-clusters.html (read 2026-11-21)
NODE_REQUIRED_INTERFACE_ENDPOINTS = ("ec2", "ecr.api", "ecr.dkr", "sts", "logs", "eks-auth")


_PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
VPC_PREFIX_MIN, VPC_PREFIX_MAX = 16, 20


def _vpc_cidr(value: str) -> str:
    try:
        net = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(
            f"not an IPv4 network in CIDR notation with its host bits zero ({exc}); "
            f"allowed: e.g. 10.20.0.0/16"
        ) from None
    if not any(net.subnet_of(r) for r in _PRIVATE_RANGES):
        raise ValueError(
            "not inside a private range; allowed: a network inside 10.0.0.0/8, 172.16.0.0/12 or "
            "192.168.0.0/16"
        )
    if not VPC_PREFIX_MIN <= net.prefixlen <= VPC_PREFIX_MAX:
        raise ValueError(
            f"prefix /{net.prefixlen} is out of range; allowed: /{VPC_PREFIX_MIN} (largest a VPC "
            f"can be) to /{VPC_PREFIX_MAX} (smallest that leaves each AZ's private subnet room "
            f"for EKS pod IPs)"
        )
    return str(net)


VpcCidr = Annotated[str, AfterValidator(_vpc_cidr)]


class FlowLogs(ArgsModel):
    """VPC flow logs, delivered to a CloudWatch log group (`platform:network.flowLogs`)."""

    enabled: bool = Field(
        True, description="Record VPC flow logs. On by default: they are the network's audit trail."
    )
    retention_days: LogRetention = Field(
        description="Days CloudWatch keeps the flow logs. One of CloudWatch's allowed values."
    )
    traffic_type: Literal["ALL", "ACCEPT", "REJECT"] = Field(
        "ALL", description="Which traffic to record."
    )
    max_aggregation_interval: Literal[60, 600] = Field(
        600, description="Seconds over which a flow is aggregated into one record (60 or 600)."
    )


class NetworkArgs(ArgsModel):
    """The VPC (`platform:network`)."""

    cidr: VpcCidr = Field(
        description="IPv4 CIDR of the VPC, private range, /16 to /20. Subnets are carved from it: "
        "per AZ a private subnet of a quarter of the VPC, and public and database subnets of a "
        "thirty-second each."
    )
    az_count: Literal[2, 3] = Field(
        description="How many availability zones to span (the first ones `getAvailabilityZones` "
        "returns)."
    )
    load_balancer_az_count: Literal[2, 3] | None = Field(
        None, description="How many of the AZs' public subnets internet-facing load balancers "
        "use (the first ones; the `kubernetes.io/role/elb` tag): an ALB needs two and bills a "
        "public IPv4 address in each ($3.65/month); its targets stay in every AZ (an ALB's "
        "cross-zone traffic is free). Default: every AZ.")
    nat_strategy: Literal["none", "instance", "single", "one-per-az"] = Field(
        description="Egress for private subnets: `single` NAT gateway (one AZ's failure cuts "
        "egress), `one-per-az` (highly available), `instance` (a NAT instance, fck-nat on a "
        "Graviton type in an Auto Scaling group of one, behind a static interface the routes "
        "point at; about a tenth of a gateway's price, no per-GB charge, a few minutes without "
        "egress when it is replaced; not for prod) or `none` (no default route; the nodes reach "
        "AWS through interface endpoints)."
    )
    nat_instance_type: InstanceType = Field(
        "t4g.nano", description="Instance type of the NAT instance (natStrategy `instance`): "
        "Graviton, as the fck-nat image is arm64; a t4g.nano forwards up to 5 Gbps in bursts.",
    )
    interface_endpoints: tuple[EndpointService, ...] = Field(
        (),
        description="AWS services to reach through interface VPC endpoints (short names such as "
        "`ecr.api`). Required when natStrategy is `none`: "
        + ", ".join(f"`{e}`" for e in NODE_REQUIRED_INTERFACE_ENDPOINTS)
        + ". Each costs an hourly fee per AZ.",
    )
    flow_logs: FlowLogs = Field(description="VPC flow logs.")
    avoid_cidrs: tuple[AnyCidr, ...] = Field(
        (),
        description="Networks the VPC must not overlap: the other environments' VPCs, offices, "
        "VPNs, peered VPCs. Overlap makes peering and VPN routing impossible later, so it is "
        "refused now.",
    )

    @model_validator(mode="after")
    def _no_overlap(self) -> NetworkArgs:
        vpc = ipaddress.IPv4Network(self.cidr)
        for other in self.avoid_cidrs:
            if vpc.overlaps(ipaddress.IPv4Network(other)):
                raise Invalid("cidr", self.cidr,
                           f"overlaps {other} listed in avoidCidrs; allowed: a network that "
                           f"overlaps none of {', '.join(self.avoid_cidrs)}")
        return self

    @model_validator(mode="after")
    def _nat_instance_is_graviton(self) -> NetworkArgs:
        if instance_architecture(self.nat_instance_type) != "arm64":
            raise Invalid("natInstanceType", self.nat_instance_type,
                          "is not a Graviton type; allowed: an arm64 type, e.g. t4g.nano (the "
                          "fck-nat image is arm64)")
        return self

    @model_validator(mode="after")
    def _egress_is_possible(self) -> NetworkArgs:
        endpoints = list(self.interface_endpoints)
        if len(set(endpoints)) != len(endpoints):
            raise Invalid("interfaceEndpoints", endpoints,
                       "lists a service twice; allowed: each service once")
        if self.nat_strategy == "none":
            missing = [e for e in NODE_REQUIRED_INTERFACE_ENDPOINTS if e not in endpoints]
            if missing:
                raise Invalid(
                    "interfaceEndpoints", endpoints,
                    "natStrategy 'none' leaves private subnets without internet egress, so the "
                    f"nodes need these interface endpoints; missing: {', '.join(missing)}",
                )
        return self


TIERS = ("public", "private", "database")
MAX_AZS = 3


@dataclass(frozen=True)
class SubnetLayout:
    public: tuple[ipaddress.IPv4Network, ...]
    private: tuple[ipaddress.IPv4Network, ...]
    database: tuple[ipaddress.IPv4Network, ...]

    def tier(self, name: str) -> tuple[ipaddress.IPv4Network, ...]:
        return getattr(self, name)


def subnet_layout(vpc_cidr: str, az_count: int) -> SubnetLayout:
    """The subnets of each tier, one per AZ, carved from `vpc_cidr` (see the module docstring)."""
    if not 1 <= az_count <= MAX_AZS:
        raise ValueError(f"az_count must be 1..{MAX_AZS}, got {az_count}")
    vpc = ipaddress.IPv4Network(vpc_cidr)
    quarters = list(vpc.subnets(prefixlen_diff=2))
    small = list(quarters[3].subnets(prefixlen_diff=3))
    return SubnetLayout(
        public=tuple(small[0:az_count]),
        private=tuple(quarters[0:az_count]),
        database=tuple(small[4 : 4 + az_count]),
    )


@dataclass(frozen=True)
class NetworkRef:
    """What the other components need of a network: ids and address ranges, never the `Network`
    itself, so a cluster or database can be built in a VPC this program did not make (the unit
    tests build them from hand-made references)."""

    vpc_id: pulumi.Input[str]
    vpc_cidr: pulumi.Input[str]
    private_subnet_ids: Sequence[pulumi.Input[str]]  # nodes and pods, one per AZ
    database_subnet_ids: Sequence[pulumi.Input[str]]
    # The AZ of each private subnet, in the same order: zonal node groups (one per AZ) need
    # them; a network given by ids only, without them, cannot have zonal node groups.
    private_subnet_zones: Sequence[str] = ()
    public_cidrs: Sequence[str] = ()  # where the load balancers are (team network policies)
    database_cidrs: Sequence[str] = ()


class Network(PlatformComponent):
    """The VPC, its subnets, routing, NAT, endpoints and flow logs."""

    service = "network"
    type_token = "platform:index:Network"

    def __init__(
        self,
        name: str,
        config: NetworkArgs,
        region: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(name, opts)
        invoke = pulumi.InvokeOptions(parent=self)

        zones = aws.get_availability_zones(
            state="available",
            # Regular zones only: no Local Zones or Wavelength zones, which EKS does not use.
            filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status",
                                                        values=["opt-in-not-required"])],
            opts=invoke,
        )
        if len(zones.names) < config.az_count:
            raise pulumi.RunError(
                f"region {region} offers {len(zones.names)} availability zones "
                f"({', '.join(zones.names)}); platform:network.azCount asks for {config.az_count}"
            )
        self.availability_zones: list[str] = sorted(zones.names)[: config.az_count]
        self.layout = subnet_layout(config.cidr, config.az_count)

        self._vpc(name, config)
        self._subnets(name, config)
        self._public_routing(name)
        self._nat(name, config, region)
        self._private_and_database_routing(name)
        self._s3_endpoint(name, region)
        vpc_opts = pulumi.ResourceOptions(parent=self.vpc)

        self.interface_endpoints: dict[str, aws.ec2.VpcEndpoint] = {}
        if config.interface_endpoints:
            self._interface_endpoints(name, config, region, vpc_opts)

        self.flow_log_group: aws.cloudwatch.LogGroup | None = None
        if config.flow_logs.enabled:
            self._flow_logs(name, config, vpc_opts)

        self.register_outputs({
            "vpcId": self.vpc.id,
            "availabilityZones": self.availability_zones,
            **{f"{tier}SubnetIds": self.subnet_ids(tier) for tier in TIERS},
        })

    # -- the constructor's steps, in order -------------------------------------------

    def _vpc(self, name: str, config: NetworkArgs) -> None:
        """The VPC, its default security group locked down, the internet gateway."""
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=config.cidr,
            # Both are needed for the EKS private endpoint and interface endpoints' private DNS.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": f"{name}-vpc"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        vpc_opts = pulumi.ResourceOptions(parent=self.vpc)

        # Adopting the default security group strips all its rules: nothing can use it by accident.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            tags={"Name": f"{name}-default-locked-down"},
            opts=vpc_opts,
        )

        self.internet_gateway = aws.ec2.InternetGateway(
            f"{name}-igw", vpc_id=self.vpc.id, tags={"Name": f"{name}-igw"}, opts=vpc_opts
        )

    def _subnets(self, name: str, config: NetworkArgs) -> None:
        vpc_opts = pulumi.ResourceOptions(parent=self.vpc)
        # Subnets. The role tags are how the AWS Load Balancer Controller picks subnets for
        # internet-facing and internal load balancers.
        tier_tags = {
            "public": {"kubernetes.io/role/elb": "1"},
            "private": {"kubernetes.io/role/internal-elb": "1"},
            "database": {},
        }
        self.subnets: dict[str, list[aws.ec2.Subnet]] = {tier: [] for tier in TIERS}
        balanced = config.load_balancer_az_count or len(self.availability_zones)
        for tier in TIERS:
            for index, (az, cidr) in enumerate(zip(self.availability_zones,
                                                   self.layout.tier(tier), strict=True)):
                role = tier_tags[tier] if tier != "public" or index < balanced else {}
                self.subnets[tier].append(aws.ec2.Subnet(
                    f"{name}-{tier}-{az}",
                    vpc_id=self.vpc.id,
                    cidr_block=str(cidr),
                    availability_zone=az,
                    # Nothing gets a public IPv4 address by accident (they cost money, too):
                    # load balancers and NAT gateways get theirs explicitly.
                    map_public_ip_on_launch=False,
                    tags={"Name": f"{name}-{tier}-{az}", "tier": tier, **role},
                    opts=vpc_opts,
                ))

    def _public_routing(self, name: str) -> None:
        vpc_opts = pulumi.ResourceOptions(parent=self.vpc)
        # Public routing: one table, default route to the internet gateway.
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt", vpc_id=self.vpc.id, tags={"Name": f"{name}-public"}, opts=vpc_opts
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=self.internet_gateway.id,
            opts=pulumi.ResourceOptions(parent=public_rt),
        )
        self._associate(name, "public", public_rt, self.subnets["public"])

    def _nat(self, name: str, config: NetworkArgs, region: str) -> None:
        vpc_opts = pulumi.ResourceOptions(parent=self.vpc)
        # NAT gateways: in the public subnet of the first AZ (single) or of every AZ.
        nat_azs = {"none": 0, "instance": 0, "single": 1,
                   "one-per-az": config.az_count}[config.nat_strategy]
        self.nat_gateways: list[aws.ec2.NatGateway] = []
        self.nat_public_ips: list[pulumi.Output[str]] = []
        for index in range(nat_azs):
            az = self.availability_zones[index]
            eip = aws.ec2.Eip(f"{name}-nat-{az}", domain="vpc",
                              tags={"Name": f"{name}-nat-{az}"}, opts=vpc_opts)
            self.nat_gateways.append(aws.ec2.NatGateway(
                f"{name}-nat-{az}",
                allocation_id=eip.id,
                subnet_id=self.subnets["public"][index].id,
                connectivity_type="public",
                tags={"Name": f"{name}-nat-{az}"},
                # A NAT gateway needs the internet gateway attached before it can work.
                opts=pulumi.ResourceOptions(parent=self.vpc, depends_on=[self.internet_gateway]),
            ))
            self.nat_public_ips.append(eip.public_ip)

        self.nat_instance_interface: aws.ec2.NetworkInterface | None = None
        self.nat_instance_group: aws.autoscaling.Group | None = None
        if config.nat_strategy == "instance":
            self._nat_instance(name, config, region)

    def _private_and_database_routing(self, name: str) -> None:
        vpc_opts = pulumi.ResourceOptions(parent=self.vpc)
        # Private routing: one table per AZ, whatever the NAT strategy, so changing the strategy
        # changes routes and never re-associates subnets.
        self.private_route_tables: list[aws.ec2.RouteTable] = []
        for index, (az, subnet) in enumerate(
            zip(self.availability_zones, self.subnets["private"], strict=True)
        ):
            rt = aws.ec2.RouteTable(f"{name}-private-{az}-rt", vpc_id=self.vpc.id,
                                    tags={"Name": f"{name}-private-{az}"}, opts=vpc_opts)
            # Out through this AZ's gateway (or the first's), or the NAT instance's interface.
            target: dict[str, pulumi.Output[str]] = {}
            if self.nat_gateways:
                nat = self.nat_gateways[index if len(self.nat_gateways) > 1 else 0]
                target = {"nat_gateway_id": nat.id}
            elif self.nat_instance_interface is not None:
                target = {"network_interface_id": self.nat_instance_interface.id}
            if target:
                aws.ec2.Route(f"{name}-private-{az}-default", route_table_id=rt.id,
                              destination_cidr_block="0.0.0.0/0",
                              opts=pulumi.ResourceOptions(parent=rt), **target)
            self._associate(name, f"private-{az}", rt, [subnet])
            self.private_route_tables.append(rt)

        # Database routing: no route out of the VPC at all.
        database_rt = aws.ec2.RouteTable(f"{name}-database-rt", vpc_id=self.vpc.id,
                                         tags={"Name": f"{name}-database"}, opts=vpc_opts)
        self._associate(name, "database", database_rt, self.subnets["database"])
        self.database_route_table = database_rt

    def _s3_endpoint(self, name: str, region: str) -> None:
        database_rt = self.database_route_table
        vpc_opts = pulumi.ResourceOptions(parent=self.vpc)
        # S3 gateway endpoint: free, and ECR image layers come from S3.
        self.s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in self.private_route_tables] + [database_rt.id],
            tags={"Name": f"{name}-s3"},
            opts=vpc_opts,
        )

    @property
    def ref(self) -> NetworkRef:
        """This network as the other components take it."""
        return NetworkRef(
            vpc_id=self.vpc.id, vpc_cidr=self.vpc.cidr_block,
            private_subnet_ids=[s.id for s in self.subnets["private"]],
            private_subnet_zones=list(self.availability_zones),
            database_subnet_ids=[s.id for s in self.subnets["database"]],
            public_cidrs=[str(c) for c in self.layout.public],
            database_cidrs=[str(c) for c in self.layout.database])

    def subnet_ids(self, tier: str) -> pulumi.Output[list[str]]:
        return pulumi.Output.all(*[s.id for s in self.subnets[tier]])

    def _nat_instance(self, name: str, config: NetworkArgs, region: str) -> None:
        """A NAT instance the fck-nat way (AndrewGuenther/fck-nat, its AMI from its publisher's
        account): an Auto Scaling group of one in the first public subnet, which replaces a
        failed instance; a static interface (source/destination check off) the private routes
        point at, which each new instance attaches at boot, and the Elastic IP it takes, so the
        egress address never changes. No SSH: Session Manager only. IMDSv2, encrypted root
        volume, standard CPU credits."""
        az, subnet = self.availability_zones[0], self.subnets["public"][0]
        vpc_opts = pulumi.ResourceOptions(parent=self.vpc)
        invoke = pulumi.InvokeOptions(parent=self)
        account = aws.get_caller_identity(opts=invoke).account_id
        partition = aws.get_partition(opts=invoke).partition
        image = aws.ec2.get_ami(
            most_recent=True, owners=[FCK_NAT_AMI_OWNER],
            filters=[aws.ec2.GetAmiFilterArgs(name="name", values=[FCK_NAT_AMI_NAME]),
                     aws.ec2.GetAmiFilterArgs(name="architecture", values=["arm64"])],
            opts=invoke)
        group = aws.ec2.SecurityGroup(
            f"{name}-nat-instance", vpc_id=self.vpc.id,
            description="NAT instance: forwards what the VPC sends out",
            ingress=[aws.ec2.SecurityGroupIngressArgs(
                protocol="-1", from_port=0, to_port=0, cidr_blocks=[config.cidr],
                description="everything from inside the VPC")],
            egress=[aws.ec2.SecurityGroupEgressArgs(
                protocol="-1", from_port=0, to_port=0, cidr_blocks=["0.0.0.0/0"],
                description="out to the internet")],
            tags={"Name": f"{name}-nat-instance"}, opts=vpc_opts)
        self.nat_instance_interface = aws.ec2.NetworkInterface(
            f"{name}-nat-instance", subnet_id=subnet.id, security_groups=[group.id],
            source_dest_check=False, description=f"{name} NAT instance: the routes' target",
            tags={"Name": f"{name}-nat-instance"}, opts=vpc_opts)
        name_tag = f"{name}-nat-instance"
        # The address a NAT gateway here had (same resource: the egress address stays), tagged
        # for the instance's role, which may take only what carries its Name tag.
        address = aws.ec2.Eip(f"{name}-nat-{az}", domain="vpc", tags={"Name": name_tag},
                              opts=vpc_opts)
        self.nat_public_ips.append(address.public_ip)
        role = aws.iam.Role(
            f"{name}-nat-instance", description="NAT instance (fck-nat)",
            assume_role_policy=iam.to_json(iam.plain_service_trust("ec2.amazonaws.com")),
            opts=pulumi.ResourceOptions(parent=self))
        aws.iam.RolePolicyAttachment(
            f"{name}-nat-instance-ssm", role=role.name,
            policy_arn=f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
            opts=pulumi.ResourceOptions(parent=role))
        aws.iam.RolePolicy(
            f"{name}-nat-instance", role=role.id,
            policy=pulumi.Output.all(self.nat_instance_interface.id, address.allocation_id).apply(
                lambda ids: iam.to_json(iam.nat_instance(partition, region, account, ids[0],
                                                         ids[1], name_tag))),
            opts=pulumi.ResourceOptions(parent=role))
        profile = aws.iam.InstanceProfile(f"{name}-nat-instance", role=role.name,
                                          opts=pulumi.ResourceOptions(parent=role))
        user_data = pulumi.Output.all(self.nat_instance_interface.id, address.allocation_id).apply(
            lambda ids: base64.b64encode(nat_instance_user_data(ids[0], ids[1]).encode()).decode())
        template = aws.ec2.LaunchTemplate(
            f"{name}-nat-instance",
            description=f"{name} NAT instance (fck-nat)",
            image_id=image.id,
            instance_type=config.nat_instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            # Its own public address until it takes the Elastic IP (it calls the EC2 API first).
            network_interfaces=[aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                device_index=0, associate_public_ip_address="true",
                security_groups=[group.id], delete_on_termination="true")],
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=NAT_INSTANCE_VOLUME_GIB, volume_type="gp3", encrypted="true",
                    delete_on_termination="true"))],
            credit_specification=aws.ec2.LaunchTemplateCreditSpecificationArgs(
                cpu_credits="standard"),
            user_data=user_data,
            update_default_version=True,
            tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(
                resource_type=kind, tags={"Name": name_tag})
                for kind in ("instance", "volume", "network-interface")],
            opts=vpc_opts)
        self.nat_instance_group = aws.autoscaling.Group(
            f"{name}-nat-instance",
            min_size=1, max_size=1, desired_capacity=1,
            vpc_zone_identifiers=[subnet.id],
            health_check_type="EC2",
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)),
            # A new image or type replaces the instance (egress pauses for a few minutes).
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling", preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=0)),
            opts=pulumi.ResourceOptions(parent=self.vpc, depends_on=[self.internet_gateway]))

    def _associate(self, name: str, label: str, table: aws.ec2.RouteTable,
                   subnets: list[aws.ec2.Subnet]) -> None:
        for index, subnet in enumerate(subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-{label}-{index}",
                subnet_id=subnet.id,
                route_table_id=table.id,
                opts=pulumi.ResourceOptions(parent=table),
            )

    def _interface_endpoints(self, name: str, config: NetworkArgs, region: str,
                             opts: pulumi.ResourceOptions) -> None:
        sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=self.vpc.id,
            description="HTTPS from inside the VPC to the AWS interface endpoints",
            tags={"Name": f"{name}-endpoints"},
            opts=opts,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-https",
            security_group_id=sg.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=config.cidr,
            description="HTTPS from the VPC",
            opts=pulumi.ResourceOptions(parent=sg),
        )
        for service in config.interface_endpoints:
            self.interface_endpoints[service] = aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in self.subnets["private"]],
                security_group_ids=[sg.id],
                tags={"Name": f"{name}-{service}"},
                opts=opts,
            )

    def _flow_logs(self, name: str, config: NetworkArgs, opts: pulumi.ResourceOptions) -> None:
        flow = config.flow_logs
        invoke = pulumi.InvokeOptions(parent=self)
        account = aws.get_caller_identity(opts=invoke).account_id
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs", retention_in_days=flow.retention_days, opts=opts
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            description="Lets VPC Flow Logs deliver to the VPC's flow-log group",
            assume_role_policy=iam.to_json(
                iam.service_trust("vpc-flow-logs.amazonaws.com", account)),
            opts=opts,
        )
        aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=log_group.arn.apply(
                lambda arn: iam.to_json(iam.flow_logs_delivery(arn))),
            opts=pulumi.ResourceOptions(parent=role),
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=self.vpc.id,
            traffic_type=flow.traffic_type,
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=flow.max_aggregation_interval,
            tags={"Name": f"{name}-flow-log"},
            opts=opts,
        )
        self.flow_log_group = log_group
