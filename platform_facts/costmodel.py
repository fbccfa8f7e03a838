"""The platform's one cost model: a priced line per resource, from its inputs and its region.

It reads resources in the shape the engine gives them (type token, name, camelCase inputs,
property dependencies), which is what the offline recording, CrossGuard and `pulumi preview
--json` all provide, so the budget policies, the review command and the stack outputs compute
the same figures. Prices come from `prices.json` beside this module: every entry names its source
page and the date it was read, under its region. Usage-based charges are separate lines that
state their assumption. A resource with no price rule, no price for its region or an input
unknown until apply is reported *unpriced*, never counted as zero; types that cost nothing
themselves are listed as free in the data file, with the line their cost (if any) is priced on.

All money is `decimal.Decimal`: a month is 730 hours, and totals match hand computation to the
cent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

try:  # CrossGuard hands policies proxies that raise on values unknown during preview
    from pulumi_policy.proxy import UnknownValueError as _PolicyUnknown
except ImportError:  # pragma: no cover - pulumi_policy is installed wherever this runs
    class _PolicyUnknown(Exception):  # type: ignore[no-redef]
        pass

PRICES_FILE = Path(__file__).with_name("prices.json")
CENT = Decimal("0.01")

# How the engine, CrossGuard and `pulumi preview --json` spell a value unknown until apply.
UNKNOWN_SENTINELS = frozenset({
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9", "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421", "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff", "030794c1-ac77-496b-92df-f27374a8bd58",
    "e48ece36-62e2-4504-bad9-02848725956a",
})


class _Unknown(Exception):
    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class _NoPrice(Exception):
    pass


class _RuntimeCreated(Exception):
    """The resource makes AWS create billable resources at run time that the plan cannot show."""


@dataclass(frozen=True)
class CostInput:
    """One resource, engine-shaped."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    component: str | None = None
    property_dependencies: Mapping[str, Sequence[str]] = field(default_factory=dict)
    custom: bool = True
    id: str | None = None  # the provider's id, where known (after apply)


@dataclass(frozen=True)
class CostLine:
    resource_type: str
    resource_name: str
    component: str | None
    item: str
    monthly_usd: Decimal | None
    key: str = ""  # stable within a resource ("gateway", "data", "nodes"): what diffs match on
    detail: str = ""
    assumption: str | None = None
    unpriced_reason: str | None = None
    # A charge by usage (GB processed, logs ingested, capacity units, CPU above baseline) at an
    # assumed amount, as opposed to one fixed by what the plan creates (a price assumed, such as
    # spot's, still makes a fixed line).
    usage: bool = False

    @property
    def priced(self) -> bool:
        return self.monthly_usd is not None

    @property
    def usage_based(self) -> bool:
        return self.usage

    def to_dict(self) -> dict[str, Any]:
        return {
            "resourceType": self.resource_type,
            "resourceName": self.resource_name,
            "component": self.component,
            "key": self.key,
            "item": self.item,
            "monthlyUsd": None if self.monthly_usd is None else str(money(self.monthly_usd)),
            "detail": self.detail,
            "assumption": self.assumption,
            "unpricedReason": self.unpriced_reason,
            "usage": self.usage,
        }


def money(value: Decimal) -> Decimal:
    """The one money rounding: to the cent, half up (every cost table, review and budget)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def apportion(amounts: Mapping[str, Decimal], total: Decimal) -> dict[str, Decimal]:
    """`amounts` to the cent so that they add up to `total` (their sum, rounded by `money`):
    each rounded down, then a cent more to those that lost the most (the largest remainder
    method; ties by name). Amounts are not negative."""
    floors = {k: v.quantize(CENT, rounding=ROUND_FLOOR) for k, v in amounts.items()}
    left = int((total - sum(floors.values(), Decimal(0))) / CENT)
    for key in sorted(amounts, key=lambda k: (floors[k] - amounts[k], k))[:max(left, 0)]:
        floors[key] += CENT
    return dict(sorted(floors.items()))


@dataclass
class CostReport:
    region: str
    lines: list[CostLine]
    free: list[tuple[str, str]]  # (type, name) of resources that cost nothing themselves

    @property
    def priced(self) -> list[CostLine]:
        return [line for line in self.lines if line.priced]

    @property
    def unpriced(self) -> list[CostLine]:
        return [line for line in self.lines if not line.priced]

    @property
    def total(self) -> Decimal:
        return money(sum((line.monthly_usd for line in self.priced), Decimal(0)))

    @property
    def fixed(self) -> Decimal:
        """What the plan costs whatever it is used for: every priced line but usage."""
        return money(sum((line.monthly_usd for line in self.priced if not line.usage),
                         Decimal(0)))

    @property
    def usage(self) -> Decimal:
        """The usage lines at the model's assumptions (total - fixed)."""
        return self.total - self.fixed

    def by_component(self) -> dict[str, Decimal]:
        """USD/month per component, to the cent, adding up to `total` exactly (`apportion`):
        rounded one by one, a table's rows could miss its total by a cent, and a change's
        components its total change."""
        totals: dict[str, Decimal] = {}
        for line in self.priced:
            key = line.component or "(stack)"
            totals[key] = totals.get(key, Decimal(0)) + line.monthly_usd
        return apportion(totals, self.total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "totalMonthlyUsd": str(self.total),
            "fixedMonthlyUsd": str(self.fixed),
            "usageMonthlyUsd": str(self.usage),
            "byComponent": {k: str(v) for k, v in self.by_component().items()},
            "lines": [line.to_dict() for line in self.lines],
            "unpricedCount": len(self.unpriced),
        }


def priced_both_ways(resources: Iterable[CostInput], region: str) -> dict[str, Any]:
    """The expected report's dict form with the ceiling's total beside it
    (`ceilingMonthlyUsd`): what the stack outputs and a real preview's cost carry."""
    resources = list(resources)
    report = estimate(resources, region).to_dict()
    report["ceilingMonthlyUsd"] = str(estimate(resources, region, ceiling=True).total)
    return report


@cache
def price_data() -> dict[str, Any]:
    return json.loads(PRICES_FILE.read_text(encoding="utf-8"))


class _Context:
    def __init__(self, region: str, resources: Sequence[CostInput], ceiling: bool = False):
        data = price_data()
        self.region = region
        # The ceiling: every node group and Auto Scaling group at its maxSize, a database's
        # storage at its autoscaling maximum, and what scales with the nodes scaled with them.
        self.ceiling = ceiling
        self.hours = Decimal(data["hoursPerMonth"])
        self.prices = data["regions"].get(region)
        self.assumptions = data["assumptions"]
        self.resources = resources
        self.by_urn = {r.urn: r for r in resources if r.urn}
        self.by_id = {r.id: r for r in resources if r.id}
        # Off-hours schedules (components/schedule.py) by the resource they act on.
        self.schedules: dict[str, list[CostInput]] = {}
        self.all_schedules = [r for r in resources if r.type == "aws:scheduler/schedule:Schedule"]
        for resource in self.all_schedules:
            for urn in resource.property_dependencies.get("target", ()):
                self.schedules.setdefault(urn, []).append(resource)
        self.public_nat_gateways = sum(
            1 for r in resources if r.type == "aws:ec2/natGateway:NatGateway"
            and _get(r.props, "connectivityType", default="public") != "private")
        # The AZs the VPC's subnets are in (traffic between them is billed).
        self.zones = len({str(_get(r.props, "availabilityZone", default="")) for r in resources
                          if r.type == "aws:ec2/subnet:Subnet"} - {""})
        # Subnets the load balancer controller places internet-facing load balancers in.
        self.public_subnets = sum(
            1 for r in resources if r.type == "aws:ec2/subnet:Subnet"
            and (_tags(r.props).get("kubernetes.io/role/elb") == "1"))

    def load_factor(self) -> Decimal:
        """How much more traffic the stack serves at the ceiling: its nodes running at maxSize
        over its nodes running as expected (the autoscaler adds nodes as the load grows); 1 for
        the expected figure."""
        if not self.ceiling:
            return Decimal(1)
        self.ceiling = False
        try:
            expected = _running_nodes(self)
        finally:
            self.ceiling = True
        return _running_nodes(self) / expected if expected else Decimal(1)

    def assumed_rate(self) -> Decimal | None:
        """The requests a second the stack's services serve, as its X-Ray group states it
        (platform:observability.traces.assumedRequestsPerSecond), or None."""
        for r in self.resources:
            if r.type == "aws:xray/group:Group":
                rate = _tags(r.props).get(_TRAFFIC_TAG)
                if rate is not None:
                    return Decimal(str(rate))
        return None

    def related(self, r: CostInput, prop: str, type_token: str, id_value: Any) -> CostInput | None:
        """The resource `r` takes `prop` from: by property dependency (previews, CrossGuard),
        else by its id (after apply, when only values are known)."""
        for urn in r.property_dependencies.get(prop, ()):
            other = self.by_urn.get(urn)
            if other is not None and other.type == type_token:
                return other
        other = self.by_id.get(id_value) if isinstance(id_value, str) else None
        return other if other is not None and other.type == type_token else None

    def price(self, key: str) -> Decimal:
        if self.prices is None:
            raise _NoPrice(f"prices.json has no prices for region {self.region}")
        entry = self.prices.get(key)
        if entry is None:
            raise _NoPrice(f"prices.json has no price '{key}' for {self.region}")
        return Decimal(entry["usd"])

    def assume(self, key: str) -> Any:
        return self.assumptions[key]["value"]

    def assumption_text(self, *keys: str) -> str:
        return " ".join(self.assumptions[key]["why"] for key in keys)


def _get(props: Mapping[str, Any], *path: str, default: Any = None) -> Any:
    """A nested input, `default` when absent; raises _Unknown for a value unknown until apply."""
    node: Any = props
    walked = []
    for key in path:
        walked.append(key)
        try:
            if isinstance(node, Mapping):
                if key not in node:
                    return default
                node = node[key]
            elif isinstance(node, Sequence) and not isinstance(node, str) and key.isdigit():
                index = int(key)
                if index >= len(node):
                    return default
                node = node[index]
            else:
                return default
        except _PolicyUnknown:
            raise _Unknown(".".join(walked)) from None
        if isinstance(node, str) and node in UNKNOWN_SENTINELS:
            raise _Unknown(".".join(walked))
    _all_known(node, ".".join(walked))
    return default if node is None else node


def _tags(props: Mapping[str, Any]) -> Mapping[str, Any]:
    """A resource's tags as a map (sdk_types.tag_map); none while they are unknown."""
    from platform_facts.sdk_types import tag_map

    try:
        return tag_map(props.get("tags"))
    except _PolicyUnknown:
        return {}


def _all_known(value: Any, where: str) -> None:
    """Raise _Unknown if any part of a list or map is unknown until apply."""
    try:
        if isinstance(value, str):
            if value in UNKNOWN_SENTINELS:
                raise _Unknown(where)
        elif isinstance(value, Mapping):
            for key in value:
                _all_known(value[key], where)
        elif isinstance(value, Sequence):
            for item in value:
                _all_known(item, where)
    except _PolicyUnknown:
        raise _Unknown(where) from None


_DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def _cron_minutes(expression: str) -> list[int] | None:
    """Minutes of the week an EventBridge Scheduler `cron(m h ? * days *)` fires at, for the
    shape the off-hours schedules use (days `*`, a list, or ranges of MON..SUN); None for any
    other expression."""
    match = re.fullmatch(r"cron\((\d{1,2}) (\d{1,2}) \? \* ([A-Z,*-]+) \*\)", expression.strip())
    if match is None:
        return None
    minute, hour, days_field = int(match.group(1)), int(match.group(2)), match.group(3)
    days: set[int] = set()
    for part in days_field.split(","):
        if part == "*":
            days |= set(range(7))
        elif "-" in part:
            first, last = part.split("-")
            if first not in _DAYS or last not in _DAYS:
                return None
            days |= set(range(_DAYS.index(first), _DAYS.index(last) + 1))
        elif part in _DAYS:
            days.add(_DAYS.index(part))
        else:
            return None
    return sorted(day * 1440 + hour * 60 + minute for day in days)


def running_fraction(start: str, stop: str) -> Decimal | None:
    """The share of the week between each start and the next stop, or None when either
    expression is not one the model reads."""
    starts, stops = _cron_minutes(start), _cron_minutes(stop)
    if not starts or not stops:
        return None
    events = sorted([(m, True) for m in starts] + [(m, False) for m in stops])
    week = 7 * 1440
    running = events[-1][1]  # the state the week starts in: the last event's, a week earlier
    on, previous = 0, 0
    for minute, turns_on in events:
        if running:
            on += minute - previous
        running, previous = turns_on, minute
    if running:
        on += week - previous
    return Decimal(on) / Decimal(week)


def _schedules_naming(r: CostInput, ctx: _Context) -> list[CostInput]:
    """Schedules whose target input names `r` (where no property dependency links them, as in
    the program's own estimate): a node group by its id `<cluster>:<node group>`, a database by
    its identifier."""
    found = []
    for schedule in ctx.all_schedules:
        try:
            payload = json.loads(str(_get(schedule.props, "target", "input", default="{}")))
        except (_Unknown, ValueError):
            continue
        if not isinstance(payload, dict):
            continue
        if r.type == "aws:eks/nodeGroup:NodeGroup" and r.id == (
                f"{payload.get('ClusterName')}:{payload.get('NodegroupName')}"):
            found.append(schedule)
        elif r.type == "aws:autoscaling/group:Group" and payload.get("AutoScalingGroupName") \
                and payload.get("AutoScalingGroupName") == r.id:
            found.append(schedule)
        elif r.type == "aws:rds/instance:Instance" and payload.get("DbInstanceIdentifier") and (
                payload.get("DbInstanceIdentifier") == _get(r.props, "identifier", default=None)):
            found.append(schedule)
    return found


def _scheduled(r: CostInput, ctx: _Context) -> tuple[Decimal, str] | None:
    """(share of the week it runs, how it reads) for a resource an off-hours pair of schedules
    stops and starts; None when none does."""
    found = {"stop": None, "start": None}
    for schedule in ctx.schedules.get(r.urn) or _schedules_naming(r, ctx):
        description = str(_get(schedule.props, "description", default=""))
        for action in found:
            if description.startswith(f"off-hours: {action}"):
                found[action] = str(_get(schedule.props, "scheduleExpression", default=""))
    if not (found["start"] and found["stop"]):
        return None
    fraction = running_fraction(found["start"], found["stop"])
    if fraction is None:
        return None
    hours = (fraction * 168).quantize(Decimal("0.1")).normalize()
    return fraction, f" x {fraction.quantize(Decimal('0.0001'))} (runs {hours:f} of 168 h a week)"


def _hourly(ctx: _Context, key: str, count: Decimal | int = 1) -> tuple[Decimal, str]:
    unit = ctx.price(key)
    return unit * ctx.hours * Decimal(count), f"{count} x {ctx.hours} h x ${unit}"


@dataclass(frozen=True)
class _Item:
    key: str
    item: str
    amount: Decimal
    detail: str
    assumption: str | None = None
    usage: bool = False


Rule = Callable[[CostInput, _Context], list[_Item]]
_RULES: dict[str, Rule] = {}


def _rule(*types: str):
    def register(fn: Rule) -> Rule:
        for type_token in types:
            _RULES[type_token] = fn
        return fn
    return register


@_rule("aws:eks/cluster:Cluster")
def _eks(r: CostInput, ctx: _Context):
    # AWS enrols a cluster in extended support unless the policy says STANDARD.
    support = _get(r.props, "upgradePolicy", "supportType", default="EXTENDED")
    amount, detail = _hourly(ctx, f"eks.cluster.{support.lower()}")
    return [_Item("control-plane", f"EKS control plane ({support.lower()} support)", amount,
                  detail)]


def _group_size(r: CostInput, ctx: _Context) -> int:
    """How many instances a node group or Auto Scaling group runs: its desired size, or its
    maxSize at the ceiling."""
    if r.type == "aws:eks/nodeGroup:NodeGroup":
        key = "maxSize" if ctx.ceiling else "desiredSize"
        return int(_get(r.props, "scalingConfig", key, default=0))
    if ctx.ceiling:
        return int(_get(r.props, "maxSize", default=0))
    return int(_get(r.props, "desiredCapacity", default=None) or _get(r.props, "minSize",
                                                                     default=0))


def _db_storage(r: CostInput, ctx: _Context) -> int:
    """A database's storage in GiB: allocated, or at the ceiling its autoscaling maximum."""
    size = int(_get(r.props, "allocatedStorage", default=20))
    if ctx.ceiling:
        size = max(size, int(_get(r.props, "maxAllocatedStorage", default=0) or 0))
    return size


@_rule("aws:eks/nodeGroup:NodeGroup")
def _node_group(r: CostInput, ctx: _Context):
    count = _group_size(r, ctx)
    types = _get(r.props, "instanceTypes", default=["t3.medium"])  # EKS's default type
    instance_type = str(types[0])
    capacity = _get(r.props, "capacityType", default="ON_DEMAND")
    amount, detail = _hourly(ctx, f"ec2.{instance_type}", count)
    assumption = None
    if capacity == "SPOT":
        fraction = Decimal(ctx.assume("spotPriceFraction"))
        amount, detail = amount * fraction, f"{detail} x {fraction} (spot)"
        assumption = ctx.assumption_text("spotPriceFraction")
    scheduled = _scheduled(r, ctx)
    if scheduled is not None:
        amount, detail = amount * scheduled[0], detail + scheduled[1]
    priced_as = f" (priced as {instance_type})" if len(types) > 1 else ""
    lines = [_Item("nodes",
                   f"{count} x {instance_type} {capacity.lower().replace('_', '-')} nodes"
                   f"{priced_as}", amount, detail, assumption)]
    size, volume_type = _root_volume(r, ctx)
    lines.append(_root_volumes(r, ctx, count, size, volume_type, scheduled, "root volumes"))
    surplus = _surplus_credits(r, ctx, instance_type, count)
    return lines + ([surplus] if surplus else []) + _cross_az(ctx, count, scheduled)


def _cross_az(ctx: _Context, count: int, scheduled: tuple[Decimal, str] | None) -> list[_Item]:
    """Traffic the nodes send across AZs (the share that leaves their AZ), while they run."""
    if ctx.zones < 2 or not count:
        return []
    running = Decimal(count) * (scheduled[0] if scheduled is not None else 1)
    crossing = Decimal(ctx.zones - 1) / ctx.zones
    gb = running * Decimal(ctx.assume("crossAzGbPerNodeMonth")) * crossing
    unit = ctx.price("datatransfer.interaz")
    shown = running.quantize(Decimal("0.01")).normalize()
    return [_Item("cross-az", f"traffic across AZs from {shown:f} nodes ({money(gb)} GB)",
                  gb * unit, f"{shown:f} nodes x {ctx.assume('crossAzGbPerNodeMonth')} GB x "
                  f"{ctx.zones - 1}/{ctx.zones} x ${unit}",
                  ctx.assumption_text("crossAzGbPerNodeMonth"), usage=True)]


def _surplus_credits(r: CostInput, ctx: _Context, instance_type: str,
                     count: int, template: CostInput | None = None) -> _Item | None:
    """Burstable types in unlimited mode are billed for CPU above their baseline; in standard
    mode they are throttled to it instead. The mode EC2 applies: the launch template's, if the
    template names the instance type itself (the provider sends a template's credit
    specification only then: terraform-provider-aws expandRequestLaunchTemplateData), else the
    family's default in the plan (aws.ec2.DefaultCreditSpecification), else unlimited (what
    T4g/T3 launch as by default)."""
    family = instance_type.split(".", 1)[0]
    if not family.startswith("t"):
        return None
    template = template or _launch_template(r, ctx)
    mode = None
    if template is not None and _get(template.props, "instanceType"):
        mode = _get(template.props, "creditSpecification", "cpuCredits")
    if mode is None:
        defaults = [_get(d.props, "cpuCredits") for d in ctx.resources
                    if d.type == "aws:ec2/defaultCreditSpecification:DefaultCreditSpecification"
                    and _get(d.props, "instanceFamily") == family]
        mode = defaults[0] if defaults else "unlimited"
    if mode != "unlimited":
        return None
    from platform_facts.capacity import data as capacity_data

    shape = capacity_data()["instanceTypes"].get(instance_type)
    if shape is None:
        raise _NoPrice(f"capacity.json does not know {instance_type}'s vCPUs (surplus credits)")
    fraction = Decimal(ctx.assume("burstableSurplusFraction"))
    vcpus = count * shape["vcpu"]
    unit = ctx.price(f"ec2.{family}.surplus")
    return _Item("cpu-surplus", f"CPU above baseline, unlimited mode ({vcpus} vCPUs x "
                 f"{fraction})", vcpus * fraction * ctx.hours * unit,
                 f"{vcpus} vCPU x {fraction} x {ctx.hours} h x ${unit}",
                 ctx.assumption_text("burstableSurplusFraction"), usage=True)


def _launch_template(r: CostInput, ctx: _Context) -> CostInput | None:
    """The launch template a node group or an Auto Scaling group launches from: by property
    dependency (previews, CrossGuard), else by the id it names (after apply)."""
    linked = r.property_dependencies.get("launchTemplate")
    return ctx.related(r, "launchTemplate", "aws:ec2/launchTemplate:LaunchTemplate",
                       None if linked else _get(r.props, "launchTemplate", "id"))


def _template_volume(template: CostInput) -> tuple[int, str] | None:
    """(GiB, type) of the root volume a launch template sets, if it sets one."""
    size = _get(template.props, "blockDeviceMappings", "0", "ebs", "volumeSize")
    if size is None:
        return None
    kind = _get(template.props, "blockDeviceMappings", "0", "ebs", "volumeType", default="gp3")
    return int(size), str(kind)


def _root_volumes(r: CostInput, ctx: _Context, count: int, size: int, kind: str,
                  scheduled: tuple[Decimal, str] | None, noun: str) -> _Item:
    """The instances' root volumes: EBS bills a volume for the hours it exists, and one that
    is deleted with its instance (deleteOnTermination, as EKS's and the platform's templates
    set) exists only while the schedule keeps the instance up."""
    unit = ctx.price(f"ebs.{kind}")
    amount, detail = unit * size * count, f"{count} x {size} GiB x ${unit}"
    template = _launch_template(r, ctx)
    deleted = (template is None or _template_volume(template) is None or str(_get(
        template.props, "blockDeviceMappings", "0", "ebs", "deleteOnTermination",
        default="true")).lower() == "true")
    if scheduled is not None and deleted:
        amount, detail = amount * scheduled[0], detail + scheduled[1]
    return _Item("root-volumes", f"{count} x {size} GiB {kind} {noun}", amount, detail)


def _root_volume(r: CostInput, ctx: _Context) -> tuple[int, str]:
    template = _launch_template(r, ctx)
    volume = _template_volume(template) if template is not None else None
    return volume or (int(_get(r.props, "diskSize", default=20)), "gp3")  # EKS's default


@_rule("aws:autoscaling/group:Group")
def _auto_scaling_group(r: CostInput, ctx: _Context):
    """An Auto Scaling group's instances (the NAT instance): its desired count of the launch
    template's type, their root volumes, and CPU above baseline in unlimited mode."""
    count = _group_size(r, ctx)
    template = _launch_template(r, ctx)
    if template is None:
        raise _Unknown("launchTemplate")
    instance_type = str(_get(template.props, "instanceType"))
    amount, detail = _hourly(ctx, f"ec2.{instance_type}", count)
    scheduled = _scheduled(r, ctx)
    if scheduled is not None:
        amount, detail = amount * scheduled[0], detail + scheduled[1]
    items = [_Item("instances", f"{count} x {instance_type} instance", amount, detail)]
    volume = _template_volume(template)
    if volume is not None:
        size, kind = volume
        items.append(_root_volumes(r, ctx, count, size, kind, scheduled, "root volume"))
    surplus = _surplus_credits(r, ctx, instance_type, count, template)
    return items + ([surplus] if surplus else [])


@_rule("aws:ec2/natGateway:NatGateway")
def _nat(r: CostInput, ctx: _Context):
    subnet_id = None if r.property_dependencies.get("subnetId") else _get(r.props, "subnetId")
    subnet = ctx.related(r, "subnetId", "aws:ec2/subnet:Subnet", subnet_id)
    zone = _get(subnet.props, "availabilityZone") if subnet is not None else None
    where = f" in {zone}" if zone else ""
    amount, detail = _hourly(ctx, "natgateway.hour")
    if _get(r.props, "connectivityType", default="public") == "private":
        return [_Item("gateway", f"private NAT gateway{where}", amount, detail)]
    # The VPC's egress is what it is however many gateways carry it: each gets its share.
    gateways = max(1, ctx.public_nat_gateways)
    gb = Decimal(ctx.assume("natGbPerMonth")) / gateways
    unit = ctx.price("natgateway.data")
    shown = f"{gb:f}" if gb == gb.to_integral_value() else f"{money(gb)}"
    share = f"{shown} GB" if gateways == 1 else f"{shown} GB, 1/{gateways} of the VPC's"
    return [_Item("gateway", f"NAT gateway{where}", amount, detail),
            _Item("data", f"NAT data processing{where} ({share})", gb * unit,
                  f"{shown} GB x ${unit}", ctx.assumption_text("natGbPerMonth"), usage=True)]


@_rule("aws:ec2/eip:Eip")
def _eip(r: CostInput, ctx: _Context):
    amount, detail = _hourly(ctx, "publicipv4.hour")
    return [_Item("address", "public IPv4 address", amount, detail)]


@_rule("aws:ec2/vpcEndpoint:VpcEndpoint")
def _endpoint(r: CostInput, ctx: _Context):
    if _get(r.props, "vpcEndpointType", default="Gateway") != "Interface":
        return []  # gateway endpoints (S3, DynamoDB) are free
    azs = len(_get(r.props, "subnetIds", default=[]) or [1])
    service = str(_get(r.props, "serviceName", default="")).rsplit(".", 1)[-1]
    amount, detail = _hourly(ctx, "vpcendpoint.interface.hour", azs)
    return [_Item("endpoint", f"interface endpoint {service} in {azs} AZs", amount, detail)]


@_rule("aws:rds/instance:Instance")
def _rds(r: CostInput, ctx: _Context):
    instance_class = _get(r.props, "instanceClass")
    multi_az = bool(_get(r.props, "multiAz", default=False))
    copies = 2 if multi_az else 1
    amount, detail = _hourly(ctx, f"rds.{instance_class}", copies)
    scheduled = _scheduled(r, ctx)
    if scheduled is not None:  # a stopped instance bills its storage only
        amount, detail = amount * scheduled[0], detail + scheduled[1]
    az = "multi-AZ" if multi_az else "single-AZ"
    storage_type = _get(r.props, "storageType", default="gp2")  # RDS's default
    size = _db_storage(r, ctx)
    unit = ctx.price(f"rds.storage.{storage_type}.{az.lower()}")
    return [
        _Item("instance", f"RDS {instance_class} {az}", amount, detail),
        _Item("storage", f"RDS {size} GiB {storage_type} storage ({az})", unit * size,
              f"{size} GiB x ${unit}"),
    ]


@_rule("aws:ebs/volume:Volume")
def _volume(r: CostInput, ctx: _Context):
    kind = _get(r.props, "type", default="gp2")
    size = int(_get(r.props, "size", default=1))
    unit = ctx.price(f"ebs.{kind}")
    return [_Item("volume", f"{size} GiB {kind} volume", unit * size, f"{size} GiB x ${unit}")]


# The year a stack's keys were created (platform:createdYear), tagged on each KMS key by the
# program; a key without it is priced as created this year.
CREATED_YEAR_TAG = "platform.example.org/created-year"


def this_year() -> int:
    import datetime

    return datetime.date.today().year


@_rule("aws:kms/key:Key")
def _kms(r: CostInput, ctx: _Context):
    unit = ctx.price("kms.key")
    if not _get(r.props, "enableKeyRotation", default=False):
        return [_Item("key", "KMS key", unit, f"1 key x ${unit}")]
    # The first and second rotation of a key's material each add to its monthly price; later
    # ones do not: priced for the key's age, with the steady state it reaches.
    created = _tags(r.props).get(CREATED_YEAR_TAG)
    now = this_year()
    year = max(1, now - int(created) + 1) if str(created or "").isdigit() else 1
    stated = (f"created {created}" if str(created or "").isdigit()
              else "created this year (platform:createdYear not stated)")
    period = int(_get(r.props, "rotationPeriodInDays", default=365))
    rotations = min(2, (year - 1) * 365 // period)
    steady = 2
    rotation = ctx.price("kms.rotation")
    return [_Item("key", f"KMS key, rotation every {period} days ({stated}: year {year}, "
                  f"{rotations} billed rotations; ${money(unit + rotation * steady)} once "
                  f"{steady} are)", unit + rotation * rotations,
                  f"1 key x ${unit} + {rotations} x ${rotation}",
                  ctx.assumption_text("kmsKeyAge"))]


@_rule("aws:secretsmanager/secret:Secret")
def _secret(r: CostInput, ctx: _Context):
    unit = ctx.price("secretsmanager.secret")
    return [_Item("secret", "Secrets Manager secret", unit, f"1 secret x ${unit}")]


@_rule("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm(r: CostInput, ctx: _Context):
    unit = ctx.price("cloudwatch.alarm")
    return [_Item("alarm", "CloudWatch alarm", unit, f"1 alarm x ${unit}")]


# The node log agent's groups (components/logs.py: /platform/<env>/containers and .../nodes):
# what they take in grows with the nodes, not per group.
_PER_NODE_LOGS = re.compile(r"^/platform/[^/]+/(containers|nodes)$")


def _log_kind(r: CostInput) -> str:
    name = f"{r.name} {_get(r.props, 'name', default='')}"
    per_node = _PER_NODE_LOGS.match(str(_get(r.props, "name", default="")))
    if per_node:
        return per_node.group(1)
    if "/aws/eks/" in name:
        return "eks-control-plane"
    if "/aws/rds/" in name:
        return "rds-upgrade" if name.endswith("/upgrade") else "rds"
    if "flow-log" in name:
        return "flow-logs"
    return "other"


def _running_nodes(ctx: _Context) -> Decimal:
    """The stack's nodes averaged over the week: each node group's desired size (its maxSize at
    the ceiling), times the share of the week it runs when off-hours schedules stop it."""
    total = Decimal(0)
    for group in ctx.resources:
        if group.type == "aws:eks/nodeGroup:NodeGroup":
            count = Decimal(_group_size(group, ctx))
            scheduled = _scheduled(group, ctx)
            total += count * (scheduled[0] if scheduled is not None else 1)
    return total


def _awake(ctx: _Context) -> Decimal:
    """The share of the week the cluster's nodes (and so its in-cluster controllers) run: the
    running nodes over the nodes the groups hold when up; 1 without off-hours schedules."""
    held = running = Decimal(0)
    for group in ctx.resources:
        if group.type == "aws:eks/nodeGroup:NodeGroup":
            count = Decimal(_group_size(group, ctx))
            scheduled = _scheduled(group, ctx)
            held += count
            running += count * (scheduled[0] if scheduled is not None else 1)
    return running / held if held else Decimal(1)


_GATEKEEPER_CONSTRAINTS = "kubernetes:constraints.gatekeeper.sh/"


def _audited_kinds(ctx: _Context) -> tuple[int, int] | None:
    """(kinds Gatekeeper's audit lists, its interval in seconds), or None without Gatekeeper.
    With auditMatchKindOnly it lists the kinds its constraints match, else every kind."""
    release = next((r for r in ctx.resources if r.type == "kubernetes:helm.sh/v3:Release"
                    and _chart_name(r.props) == "gatekeeper"), None)
    if release is None:
        return None
    values = _get(release.props, "values", default={}) or {}
    interval = int(_get(values, "auditInterval", default=60) or 60)  # the chart's default
    if not _get(values, "auditMatchKindOnly", default=False):
        return int(ctx.assume("controlPlaneAudit")["allKinds"]), interval
    kinds = set()
    for constraint in ctx.resources:
        if constraint.type.startswith(_GATEKEEPER_CONSTRAINTS):
            for match in _get(constraint.props, "spec", "match", "kinds", default=[]) or []:
                for group in _get(match, "apiGroups", default=[""]) or [""]:
                    kinds |= {(group, k) for k in _get(match, "kinds", default=[]) or []}
    return len(kinds), interval


def _control_plane_gb(ctx: _Context) -> tuple[Decimal, str]:
    """What the EKS control plane logs in a month, from what the platform asks of the API
    server: every request is one audit event (the api and authenticator logs are a small
    fraction beside it). Requests: Gatekeeper's audit lists each audited kind every interval;
    each leader-elected controller renews its lease; each node's kubelet renews its lease and
    reports status; the rest of the controllers' and users' requests at a stated rate. The
    in-cluster part runs only while the nodes do."""
    facts = ctx.assume("controlPlaneAudit")
    awake = _awake(ctx)
    charts = [_chart_name(r.props) for r in ctx.resources
              if r.type == "kubernetes:helm.sh/v3:Release"]
    addons = [str(_get(r.props, "addonName", default="")) for r in ctx.resources
              if r.type == "aws:eks/addon:Addon"]
    per_workload = facts["leasesPerWorkload"]
    leases = sum(int(per_workload.get(name, 0)) for name in [*charts, *addons])
    audited = _audited_kinds(ctx)
    lists = Decimal(audited[0]) / audited[1] if audited else Decimal(0)
    nodes = _running_nodes(ctx)
    in_cluster = (lists + leases * Decimal(facts["leaseRenewalsPerSecond"])
                  + Decimal(facts["otherRequestsPerSecond"])) * awake
    per_second = in_cluster + nodes * Decimal(facts["nodeRequestsPerSecond"]) + Decimal(
        facts["controlPlaneRequestsPerSecond"])
    gb = per_second * ctx.hours * 3600 * Decimal(facts["bytesPerEvent"]) / 10 ** 9
    kinds = f"{audited[0]} kinds every {audited[1]} s" if audited else "no Gatekeeper"
    return gb, (f"{per_second.quantize(Decimal('0.01'))} requests/s: audit of {kinds}, "
                f"{leases} leases, {nodes.quantize(Decimal('0.01')).normalize():f} nodes")


@_rule("aws:cloudwatch/logGroup:LogGroup")
def _log_group(r: CostInput, ctx: _Context):
    kind = _log_kind(r)
    retention = _get(r.props, "retentionInDays", default=0) or 3653  # 0/absent: never expires
    months = min(Decimal(int(retention)) / 30, Decimal(12))
    if kind in ctx.assume("logIngestGbPerNodeMonth"):
        nodes = _running_nodes(ctx).quantize(Decimal("0.01")).normalize()
        per_node = Decimal(ctx.assume("logIngestGbPerNodeMonth")[kind])
        gb = per_node * nodes
        return _ingested_and_stored(
            kind, gb, f"{money(gb)} GB from {nodes:f} nodes",
            f"{per_node} GB x {nodes:f} nodes", months, ctx,
            ctx.assumption_text("logIngestGbPerNodeMonth"))
    if kind == "eks-control-plane":
        gb, reasoning = _control_plane_gb(ctx)
        return _ingested_and_stored(kind, gb, f"{money(gb)} GB: {reasoning}", f"{money(gb)} GB",
                                    months, ctx, ctx.assumption_text("controlPlaneAudit"))
    gb = Decimal(ctx.assume("logIngestGbPerMonth")[kind])
    what, detail = f"{gb} GB", f"{gb} GB"
    awake = _awake(ctx) if kind == "flow-logs" else Decimal(1)
    if awake < 1:  # the VPC's traffic stops while off-hours has its instances down
        gb = gb * awake
        what = f"{money(gb)} GB while the nodes run"
        detail = f"{detail} x {awake.quantize(Decimal('0.0001'))}"
    return _ingested_and_stored(kind, gb, what, detail, months, ctx,
                                ctx.assumption_text("logIngestGbPerMonth"))


def _ingested_and_stored(kind: str, gb: Decimal, what: str, detail: str, months: Decimal,
                         ctx: _Context, why: str | None) -> list[_Item]:
    """A log group's two usage lines: `gb` ingested a month (`what`, `detail` without the
    price) and what its retention keeps of it."""
    ingest, storage = ctx.price("logs.ingest"), ctx.price("logs.storage")
    stored = gb * months
    return [
        _Item("ingestion", f"log ingestion ({kind}, {what})", gb * ingest,
              f"{detail} x ${ingest}", why, usage=True),
        _Item("storage", f"log storage ({kind}, {money(stored)} GB retained)", stored * storage,
              f"{money(gb)} GB x {money(months)} months x ${storage}", why, usage=True),
    ]


# components/traces.py: the environment's X-Ray group carries what the gateway keeps and the
# traffic the stack assumes (the group itself is free).
_SAMPLING_TAG = "platform.example.org/sampling-percent"
_TRAFFIC_TAG = "platform.example.org/assumed-requests-per-second"


@_rule("aws:xray/group:Group")
def _xray_group(r: CostInput, ctx: _Context):
    tags = _tags(r.props)
    if _SAMPLING_TAG not in tags or _TRAFFIC_TAG not in tags:
        return []  # a group of someone else's traces: nothing this stack records through it
    percent, rate = Decimal(str(tags[_SAMPLING_TAG])), Decimal(str(tags[_TRAFFIC_TAG]))
    rate = (rate * ctx.load_factor()).quantize(Decimal("0.01")).normalize()
    traces = rate * ctx.hours * 3600 * percent / 100
    unit = ctx.price("xray.trace.recorded")
    return [_Item("traces", f"X-Ray traces recorded ({percent:f}% of an assumed {rate:f} "
                  f"requests/s: {money(traces / 1_000_000)} M a month)", traces * unit,
                  f"{rate:f}/s x {ctx.hours} h x 3600 x {percent:f}% x ${unit}",
                  "The stack's platform:observability.traces.assumedRequestsPerSecond (the "
                  "services' requests in all, averaged over the month) and samplingPercent; "
                  "the free tier (100,000 traces a month) is not subtracted.", usage=True)]


@_rule("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
def _load_balancer(r: CostInput, ctx: _Context):
    kind = _get(r.props, "loadBalancerType", default="application")
    amount, detail = _hourly(ctx, f"elb.{kind}.hour")
    units = Decimal(ctx.assume("loadBalancerCapacityUnitsPerHour"))
    capacity, capacity_detail = _hourly(ctx, f"elb.{kind}.lcu", units)
    return [_Item("hourly", f"{kind} load balancer", amount, detail),
            _Item("capacity", f"{kind} load balancer capacity units", capacity,
                  capacity_detail, ctx.assumption_text("loadBalancerCapacityUnitsPerHour"),
                  usage=True)]


@_rule("aws:fis/experimentTemplate:ExperimentTemplate")
def _fis(r: CostInput, ctx: _Context):
    """Nothing until a person runs it; each run is billed per action-minute."""
    actions = len(_get(r.props, "actions", default=[]) or [])
    runs = Decimal(ctx.assume("fisRunsPerMonth"))
    minutes = Decimal(ctx.assume("fisActionMinutesPerRun"))
    unit = ctx.price("fis.action.minute")
    return [_Item("runs", f"FIS experiment runs ({runs:f} a month, {actions} action(s) of "
                  f"{minutes:f} min)", runs * actions * minutes * unit,
                  f"{runs:f} x {actions} x {minutes:f} min x ${unit}",
                  ctx.assumption_text("fisRunsPerMonth"), usage=True)]


@_rule("aws:ec2/instance:Instance")
def _instance(r: CostInput, ctx: _Context):
    instance_type = _get(r.props, "instanceType")
    amount, detail = _hourly(ctx, f"ec2.{instance_type}")
    return [_Item("instance", f"EC2 {instance_type}", amount, detail)]


def _chart_name(props: Any) -> str:
    """The chart a Release installs: `charts/vault-0.34.1.tgz` (a vendored archive, as the
    platform installs them) or a repository chart name (`vault`) -> `vault`."""
    chart = str(_get(props, "chart", default="")).rsplit("/", 1)[-1]
    if not chart.endswith(".tgz"):
        return chart
    chart = chart.removesuffix(".tgz")
    version = str(_get(props, "version", default=""))
    if version and chart.endswith(f"-{version}"):
        return chart.removesuffix(f"-{version}")
    return re.sub(r"-\d+\.\d+\.\d+[^/]*$", "", chart)


@_rule("kubernetes:elbv2.k8s.aws/v1beta1:IngressClassParams")
def _shared_load_balancer(r: CostInput, ctx: _Context):
    """The load balancer controller's ALB for an IngressClassParams with a group: every
    Ingress of its class joins that one ALB (the platform's shared one: the ingress admission
    policy keeps team Ingresses on it and refuses Services that would make load balancers of
    their own, in prod; where it only warns, dev, such a Service would add one this estimate
    does not show). It exists from the first Ingress on, in every public subnet when
    internet-facing (a public IPv4 address each)."""
    group = _get(r.props, "spec", "group", "name")
    if not group:
        raise _RuntimeCreated(
            "an IngressClassParams without a group gives every Ingress of its class a load "
            "balancer of its own at run time, which the plan does not bound (an ALB is about "
            "$16.43/month plus capacity units)")
    scheme = str(_get(r.props, "spec", "scheme", default="internal"))  # the controller's default
    amount, detail = _hourly(ctx, "elb.application.hour")
    units = Decimal(ctx.assume("loadBalancerCapacityUnitsPerHour")) * ctx.load_factor()
    capacity, capacity_detail = _hourly(ctx, "elb.application.lcu", units)
    items = [
        _Item("alb", f"shared ALB '{group}' ({scheme}), made at run time", amount, detail),
        _Item("alb-capacity", f"shared ALB '{group}' capacity units", capacity,
              capacity_detail, ctx.assumption_text("loadBalancerCapacityUnitsPerHour"),
              usage=True),
    ]
    if scheme == "internet-facing" and ctx.public_subnets:
        addresses, address_detail = _hourly(ctx, "publicipv4.hour", ctx.public_subnets)
        items.append(_Item("alb-addresses", f"shared ALB '{group}': {ctx.public_subnets} public "
                           "IPv4 addresses (one per public subnet)", addresses, address_detail))
    rate = ctx.assumed_rate()
    if scheme == "internet-facing" and rate is not None:
        rate = (rate * ctx.load_factor()).quantize(Decimal("0.01")).normalize()
        per_request = Decimal(ctx.assume("internetEgressKbPerRequest"))
        gb = rate * ctx.hours * 3600 * per_request / 10 ** 6
        unit = ctx.price("datatransfer.internet")
        items.append(_Item("egress", f"shared ALB '{group}': responses to the internet "
                           f"({rate:f} requests/s x {per_request} KB: {money(gb)} GB)", gb * unit,
                           f"{money(gb)} GB x ${unit}",
                           ctx.assumption_text("internetEgressKbPerRequest"), usage=True))
    return items


_QUANTITY = {"Gi": 1, "Ti": 1024, "Mi": Decimal(1) / 1024}


def _gib(quantity: Any) -> Decimal:
    text = str(quantity)
    for suffix, factor in _QUANTITY.items():
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * Decimal(factor)
    return Decimal(text) / (1024 ** 3)  # plain bytes


def _claim(spec: Any) -> tuple[Decimal, str] | None:
    """(GiB, storage class) of a volumeClaimTemplate in chart values, if any."""
    claim = _get(spec, "volumeClaimTemplate", "spec")
    if not claim:
        return None
    size = _get(claim, "resources", "requests", "storage")
    return (_gib(size), str(_get(claim, "storageClassName", default="gp3"))) if size else None


@dataclass(frozen=True)
class _Volumes:
    """EBS volumes a chart's StatefulSets claim: `replicas` x `size` GiB of `storage_class`."""

    key: str
    label: str
    replicas: int
    size: Decimal
    storage_class: str


def _chart_volumes(r: CostInput) -> list[_Volumes]:
    """The volumes a Helm release's charts claim, from its values: kube-prometheus-stack's
    operator (Prometheus, Alertmanager) and the vault chart's servers (raft data, audit log)."""
    values = _get(r.props, "values", default={})
    chart = _chart_name(r.props)
    found = []
    if chart == "kube-prometheus-stack":
        for key, label, spec_path in (
            ("prometheus-volumes", "Prometheus", ("prometheus", "prometheusSpec")),
            ("alertmanager-volumes", "Alertmanager", ("alertmanager", "alertmanagerSpec")),
        ):
            spec = _get(values, *spec_path, default={})
            claim = _claim(_get(spec, "storageSpec" if label == "Prometheus" else "storage"))
            if claim is not None:
                found.append(_Volumes(key, label, int(_get(spec, "replicas", default=1)),
                                      *claim))
    elif chart == "vault":
        server = _get(values, "server", default={})
        replicas = int(_get(server, "ha", "replicas", default=1))
        for key, label, values_key in (("vault-data", "Vault raft data", "dataStorage"),
                                       ("vault-audit", "Vault audit log", "auditStorage")):
            storage = _get(server, values_key, default={})
            if storage.get("enabled", values_key == "dataStorage"):
                found.append(_Volumes(key, label, replicas,
                                      _gib(storage.get("size", "10Gi")),
                                      storage.get("storageClass") or "gp2"))
    return found


@_rule("kubernetes:helm.sh/v3:Release")
def _release(r: CostInput, ctx: _Context):
    """EBS volumes the release's charts claim (other in-cluster software runs on the priced
    nodes)."""
    items = []
    for v in _chart_volumes(r):
        unit = ctx.price("ebs.gp3" if v.storage_class == "gp3" else "ebs.gp2")
        items.append(_Item(v.key, f"{v.label}: {v.replicas} x {v.size:g} GiB {v.storage_class} "
                           "volumes", unit * v.size * v.replicas,
                           f"{v.replicas} x {v.size:g} GiB x ${unit}"))
    return items


# The tag the platform's gp3 StorageClass writes on each volume: its claim's namespace
# (components/cluster.py, components/backup.py); a backup selection names the namespace.
_NAMESPACE_CONDITION = "aws:ResourceTag/platform.example.org/namespace"


def _stored_backup_gb(ctx: _Context, size_gb: Decimal, retention_days: int) -> Decimal:
    """What `retention_days` of daily incremental backups of `size_gb` occupy: a first full
    copy of the used blocks, then each day's changes."""
    return size_gb * (Decimal(ctx.assume("backupUsedFraction"))
                      + Decimal(ctx.assume("backupDailyChangeFraction")) * retention_days)


def _backup_plan(r: CostInput, ctx: _Context) -> tuple[int, list[int]]:
    """(days a recovery point is kept, days each copy is kept) of the selection's plan."""
    plan = ctx.related(r, "planId", "aws:backup/plan:Plan", r.props.get("planId"))
    if plan is None:
        raise _NoPrice("the selection's backup plan is not in the plan")
    # Only the retentions are read: the vaults' names and ARNs are unknown in a preview.
    (rule, *_) = plan.props.get("rules") or [{}]
    keep = int(_get(rule, "lifecycle", "deleteAfter", default=0) or 0)
    copies = [int(_get(c, "lifecycle", "deleteAfter", default=0) or 0)
              for c in (rule.get("copyActions") if isinstance(rule, Mapping) else None) or []]
    if not keep or not all(copies):
        raise _NoPrice("a backup rule without a retention (kept forever) cannot be priced")
    return keep, copies


@_rule("aws:backup/selection:Selection")
def _backup_selection(r: CostInput, ctx: _Context):
    """Daily EBS snapshots of one namespace's volumes (their sizes from the charts that claim
    them), in the stack's region and each copy region, and the copies' transfer."""
    namespaces = {_get(e, "value") for c in _get(r.props, "conditions", default=[]) or []
                  for e in _get(c, "stringEquals", default=[]) or []
                  if _get(e, "key") == _NAMESPACE_CONDITION}
    if len(namespaces) != 1:
        raise _NoPrice("a backup selection the cost model can size names one namespace "
                       f"({_NAMESPACE_CONDITION})")
    (namespace,) = namespaces
    volumes = [v for rel in ctx.resources if rel.type == "kubernetes:helm.sh/v3:Release"
               and _get(rel.props, "namespace") == namespace for v in _chart_volumes(rel)]
    size = sum((v.size * v.replicas for v in volumes), Decimal(0))
    keep, copies = _backup_plan(r, ctx)
    unit = ctx.price("ebs.snapshot")
    what = f"{namespace} volumes ({size:g} GiB)"
    assumption = ctx.assumption_text("backupUsedFraction", "backupDailyChangeFraction")
    stored = _stored_backup_gb(ctx, size, keep)
    items = [_Item("snapshots", f"daily snapshots of the {what}, {keep} days", stored * unit,
                   f"{money(stored)} GB x ${unit}", assumption, usage=True)]
    transfer = ctx.price("datatransfer.interregion")
    for index, copy_keep in enumerate(copies):
        copied = _stored_backup_gb(ctx, size, copy_keep)
        monthly = size * Decimal(ctx.assume("backupDailyChangeFraction")) * 30
        items += [
            _Item(f"copy-{index}", f"copies of the {what} in the copy region, {copy_keep} days",
                  copied * unit, f"{money(copied)} GB x ${unit}", assumption, usage=True),
            _Item(f"copy-{index}-transfer", f"daily changes of the {namespace} volumes copied "
                  "across regions",
                  monthly * transfer, f"{money(monthly)} GB x ${transfer}", assumption,
                  usage=True)]
    return items


@_rule("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
def _rds_backup_replication(r: CostInput, ctx: _Context):
    """The database's automated backups (snapshots and transaction logs) kept in a second
    region: its backup storage there (no free allowance: no instance there) and the transfer."""
    arn = r.props.get("sourceDbInstanceArn")
    source = ctx.related(r, "sourceDbInstanceArn", "aws:rds/instance:Instance", arn)
    if source is None and isinstance(arn, str) and ":db:" in arn:  # after apply: by its ARN
        identifier = arn.rsplit(":db:", 1)[1]
        source = next((o for o in ctx.resources if o.type == "aws:rds/instance:Instance"
                       and o.props.get("identifier") == identifier), None)
    if source is None:
        raise _NoPrice("the replicated database instance is not in the plan")
    size = Decimal(_db_storage(source, ctx))
    keep = int(_get(r.props, "retentionPeriod", default=7))
    stored = _stored_backup_gb(ctx, size, keep)
    unit, transfer = ctx.price("rds.backup.storage"), ctx.price("datatransfer.interregion")
    monthly = size * Decimal(ctx.assume("backupDailyChangeFraction")) * 30
    assumption = ctx.assumption_text("backupUsedFraction", "backupDailyChangeFraction")
    return [
        _Item("storage", f"database backups replicated to the copy region ({size:g} GiB, "
              f"{keep} days of point-in-time recovery)", stored * unit,
              f"{money(stored)} GB x ${unit}", assumption, usage=True),
        _Item("transfer", "cross-region transfer of the database's backups", monthly * transfer,
              f"{money(monthly)} GB x ${transfer}", assumption, usage=True)]


# Types whose inputs another type's rule reads through the context (launch templates for node
# groups, subnets' tags, off-hours schedules, backup plans, Helm releases' volumes, ...).
_READ_BY_OTHERS = frozenset({
    "aws:ec2/launchTemplate:LaunchTemplate", "aws:ec2/subnet:Subnet",
    "aws:ec2/natGateway:NatGateway", "aws:scheduler/schedule:Schedule", "aws:backup/plan:Plan",
    "kubernetes:helm.sh/v3:Release", "aws:rds/instance:Instance", "aws:eks/addon:Addon",
    "aws:ec2/defaultCreditSpecification:DefaultCreditSpecification"})


def reads_inputs(type_token: str) -> bool:
    """Whether pricing a stack reads this type's inputs (its own rule, or another's); the
    others are priced by their type alone (free, or unpriced), so a caller that must resolve
    inputs at a cost (the program's own report, components/cost_outputs.py) may skip them."""
    return (type_token in _RULES or type_token in _READ_BY_OTHERS
            or type_token.startswith(_GATEKEEPER_CONSTRAINTS))


def _free(r: CostInput) -> bool:
    free = price_data()["free"]
    package = r.type.split(":", 1)[0]
    return r.type in free["types"] or package in free["packages"]


def _plan_order(r: CostInput) -> tuple[str, str, str]:
    return (r.urn, r.type, r.name)


def estimate(resources: Iterable[CostInput], region: str, ceiling: bool = False) -> CostReport:
    """Price every resource; see the module docstring for what lines mean. `ceiling`: the
    most the plan can cost as planned (every node group and Auto Scaling group at its maxSize,
    databases' storage at its autoscaling maximum, per-node usage scaled with them), the same
    rules and prices as the expected figure.

    The same resources in any order give the same report: they are priced in URN order (a
    plan's order varies from run to run where a program registers resources in parallel, and
    sums of Decimals in another order differ in their last digits)."""
    resources = sorted(resources, key=_plan_order)
    ctx = _Context(region, resources, ceiling)
    lines: list[CostLine] = []
    free: list[tuple[str, str]] = []
    for r in resources:
        if not r.custom:
            continue  # components are groupings, not billable resources
        rule = _RULES.get(r.type)
        try:
            if rule is None:
                if _free(r):
                    free.append((r.type, r.name))
                else:
                    lines.append(CostLine(
                        r.type, r.name, r.component, "no price rule", None, key="unpriced",
                        unpriced_reason=f"the cost model has no rule for {r.type}"))
                continue
            items = rule(r, ctx)
            if not items:
                free.append((r.type, r.name))
            for item in items:
                lines.append(CostLine(r.type, r.name, r.component, item.item, item.amount,
                                      item.key, item.detail, item.assumption,
                                      usage=item.usage))
        except _Unknown as unknown:
            lines.append(CostLine(r.type, r.name, r.component, "unknown until apply", None,
                                  key="unpriced",
                                  unpriced_reason=f"{unknown.what} is unknown until apply"))
        except _RuntimeCreated as runtime:
            lines.append(CostLine(r.type, r.name, r.component, "created at run time", None,
                                  key="runtime", unpriced_reason=str(runtime)))
        except _NoPrice as missing:
            lines.append(CostLine(r.type, r.name, r.component, "no price", None,
                                  key="unpriced", unpriced_reason=str(missing)))
    return CostReport(region=region, lines=lines, free=free)


# -- the ceiling, node group by node group ----------------------------------------------------

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
POOL_LABEL = "node-group"  # the label every node of a configured node group carries


@dataclass(frozen=True)
class PoolCeiling:
    """A configured node group (its label `node-group`; one EKS node group per AZ when zonal)
    at the ceiling: its maxSize over its EKS node groups, its desired size, and what one more
    node adds to the stack's ceiling (the node, its root volume, and the usage that scales
    with nodes, at the same prices)."""

    pool: str
    groups: tuple[str, ...]
    max_size: int
    desired_size: int
    per_node_usd: Decimal

    def largest_max(self, over: Decimal) -> int:
        """The largest maxSize that takes `over` off the ceiling (at least desiredSize)."""
        if over <= 0:
            return self.max_size
        import math

        nodes = math.ceil(over / self.per_node_usd) if self.per_node_usd > 0 else self.max_size
        return max(self.desired_size, self.max_size - nodes)


def _with_max(r: CostInput, delta: int) -> CostInput:
    scaling = dict(_get(r.props, "scalingConfig", default={}) or {})
    scaling["maxSize"] = int(scaling.get("maxSize", 0)) + delta
    return CostInput(r.type, r.name, {**dict(r.props), "scalingConfig": scaling}, r.urn,
                     r.component, r.property_dependencies, r.custom, r.id)


def node_pools(resources: Iterable[CostInput], region: str) -> list[PoolCeiling]:
    """Every configured node group of the plan that can grow (maxSize above its desired size),
    with the price of one more node at the ceiling: the ceiling with one of its EKS node
    groups one node larger, minus the ceiling (the model is linear in nodes)."""
    resources = sorted(resources, key=_plan_order)
    ceiling = estimate(resources, region, ceiling=True).total
    pools: dict[str, list[int]] = {}
    for index, r in enumerate(resources):
        if r.type == NODE_GROUP and r.custom:
            try:
                pool = str(_get(r.props, "labels", POOL_LABEL, default=None) or r.name)
                _get(r.props, "scalingConfig")
            except _Unknown:
                continue
            pools.setdefault(pool, []).append(index)
    found = []
    for pool, indices in pools.items():
        sizes = [_get(resources[i].props, "scalingConfig", default={}) or {} for i in indices]
        grown = list(resources)
        grown[indices[0]] = _with_max(resources[indices[0]], 1)
        per_node = estimate(grown, region, ceiling=True).total - ceiling
        found.append(PoolCeiling(
            pool, tuple(resources[i].name for i in indices),
            sum(int(s.get("maxSize", 0)) for s in sizes),
            sum(int(s.get("desiredSize", 0)) for s in sizes), per_node))
    return sorted(found, key=lambda p: p.pool)
