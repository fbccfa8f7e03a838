"""`OffHours`: a non-prod environment that sleeps outside working hours.

EventBridge Scheduler (universal targets, no code to run) scales each node group to zero at the
end of the working day and back to its configured size at the start, and stops and starts the
database the same way. The EKS control plane, the NAT and the volumes keep running and billing;
the nodes and the database instance bill for the hours they run, and the cost model prices them
at that fraction of the week (it reads these schedules from the plan).

What sleeps: every pod (the platform's own too: Vault, Prometheus and Argo CD come back with the
nodes; Vault unseals itself through KMS), and the database (RDS starts a stopped instance by itself
after seven days, which a weekly schedule never reaches). A `pulumi up` while it sleeps sets the
node groups' minimum back, waking the nodes: run it in working hours.
"""

from __future__ import annotations

import datetime
import functools
import json
import zoneinfo
from collections.abc import Sequence
from typing import Annotated, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator, model_validator

from components import iam
from components.args import ArgsModel, Invalid, pattern
from components.tagging import PlatformComponent

Day = Literal["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
DAYS: tuple[str, ...] = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
# The schedules' descriptions start with these: what the cost model reads to pair them.
STOP, START = "off-hours: stop", "off-hours: start"
# Minutes from the start until the stack's alarms act again: nodes join in ~3-5 minutes, the
# database starts in ~5-10; the unschedulable-pods alarm looks back 15 minutes.
WAKE_MINUTES = 30
Clock = Annotated[str, pattern(r"([01]\d|2[0-3]):[0-5]\d", "hh:mm, 00:00 to 23:59, e.g. 08:00")]


@functools.cache
def _time_zones() -> frozenset[str]:
    """The IANA zones this machine knows (read once: the listing walks the zone database,
    4 ms a stack file)."""
    return frozenset(zoneinfo.available_timezones())


def _minutes(clock: str) -> int:
    """Minutes since midnight of an hh:mm clock."""
    hour, minute = clock.split(":")
    return int(hour) * 60 + int(minute)


class OffHoursArgs(ArgsModel):
    """Working hours of a non-prod stack (`platform:offHours`): outside them its nodes are scaled
    to zero and its database is stopped. Not for a prod-preset stack."""

    enabled: bool = Field(True, description="Put the stack to sleep outside these hours; "
                          "`false` keeps it running around the clock.")
    days: tuple[Day, ...] = Field(description="Days the stack runs, e.g. "
                                  "[MON, TUE, WED, THU, FRI].")
    start: Clock = Field(description="When the stack starts on those days (hh:mm, local time).")
    stop: Clock = Field(description="When it stops on those days (hh:mm, local time, after "
                        "`start`).")
    timezone: str = Field("UTC", description="IANA time zone of `start` and `stop`, e.g. "
                          "Europe/Berlin.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value not in _time_zones():
            raise ValueError("is not an IANA time zone; allowed: e.g. UTC, Europe/Berlin, "
                             "America/New_York")
        return value

    @model_validator(mode="after")
    def _turns_on(self) -> OffHoursArgs:
        if not self.days:
            raise Invalid("days", [], "names no day, so the stack would never run; allowed: one "
                          "or more of " + ", ".join(DAYS))
        if len(set(self.days)) != len(self.days):
            raise Invalid("days", list(self.days), "lists a day twice; allowed: each day once")
        if self.stop <= self.start:
            raise Invalid("stop", self.stop,
                          f"is not after start ({self.start}), so the stack would never run (or "
                          "run overnight, which is not supported); allowed: a time after start "
                          "on the same day")
        return self

    def cron(self, clock: str) -> str:
        hour, minute = clock.split(":")
        days = ",".join(d for d in DAYS if d in self.days)
        return f"cron({int(minute)} {int(hour)} ? * {days} *)"

    @property
    def alarms_back(self) -> str:
        """When the alarms' actions come back on: WAKE_MINUTES after the start (the nodes are
        up and the pods placed by then), or at the stop if the day is shorter."""
        back = min(_minutes(self.start) + WAKE_MINUTES, _minutes(self.stop))
        return f"{back // 60:02d}:{back % 60:02d}"

    def awake_utc(self) -> list[tuple[int, int]]:
        """When the stack runs, as UTC minute ranges of the week (Monday 00:00 = 0), the same
        in winter and in summer time: a range that daylight saving time moves is cut to what
        both offsets share."""
        zone = zoneinfo.ZoneInfo(self.timezone)
        offsets = {int(datetime.datetime(2026, month, 15, 12, tzinfo=zone).utcoffset()
                       .total_seconds() // 60) for month in (1, 7)}
        ranges = []
        for day in self.days:
            local = DAYS.index(day) * 1440
            starts = [local + _minutes(self.start) - o for o in offsets]
            stops = [local + _minutes(self.stop) - o for o in offsets]
            start, stop = max(starts), min(stops)
            if start < stop:
                ranges.append((start % (7 * 1440), start % (7 * 1440) + stop - start))
        return ranges

    def holds(self, window: list[tuple[int, int]], every_day: bool) -> bool:
        """Whether a window (UTC minute ranges of the week, as components.database's
        window_minutes gives them) falls while the stack is awake, in winter and in summer time:
        with `every_day` (a daily window), one occurrence within each day's awake hours;
        otherwise (a weekly window), all of it within awake hours."""
        week = 7 * 1440

        def inside(start: int, stop: int, a: int, b: int) -> bool:
            return any(a <= start + shift and stop + shift <= b for shift in (0, week, -week))

        awake = self.awake_utc()
        if every_day:
            return all(any(inside(s, e, a, b) for s, e in window) for a, b in awake)
        return all(any(inside(s, e, a, b) for a, b in awake) for s, e in window)

    @property
    def hours_per_week(self) -> float:
        return len(self.days) * (_minutes(self.stop) - _minutes(self.start)) / 60


class OffHours(PlatformComponent):
    """The schedules that put a non-prod stack's nodes and database to sleep."""

    service = "cost"
    type_token = "platform:index:OffHours"

    def __init__(self, name: str, args: OffHoursArgs, cluster_name: pulumi.Input[str],
                 node_groups: Sequence[tuple[str, aws.eks.NodeGroup, int, int, int]],
                 database: aws.rds.Instance,
                 nat_instance: aws.autoscaling.Group | None = None,
                 alarms: Sequence[aws.cloudwatch.MetricAlarm] = (),
                 opts: pulumi.ResourceOptions | None = None):
        """`node_groups`: each node group (its resource name, the resource) with its configured
        minimum, desired and maximum size, which the morning restores; `nat_instance`: the NAT
        instance's group of one, which sleeps too (nothing in the private subnets runs);
        `alarms`: the stack's CloudWatch alarms, whose actions are off while it sleeps (pods
        pending on no nodes and a stopped database are the schedule, not an incident) and back
        on WAKE_MINUTES after the start, once the nodes have taken the pods again."""
        super().__init__(name, opts)
        invoke = pulumi.InvokeOptions(parent=self)
        account = aws.get_caller_identity(opts=invoke).account_id
        role = aws.iam.Role(
            f"{name}-off-hours", description="EventBridge Scheduler: off-hours of the stack",
            assume_role_policy=iam.to_json(iam.service_trust("scheduler.amazonaws.com", account)),
            opts=pulumi.ResourceOptions(parent=self))
        aws.iam.RolePolicy(
            f"{name}-off-hours", role=role.id,
            policy=pulumi.Output.all(
                database.arn, nat_instance.arn if nat_instance is not None else None,
                pulumi.Output.all(*(a.arn for a in alarms)),
                *(g.arn for _, g, *_ in node_groups)).apply(
                lambda arns: iam.to_json(iam.off_hours(arns[0], arns[3:], arns[1], arns[2]))),
            opts=pulumi.ResourceOptions(parent=role))
        child = pulumi.ResourceOptions(parent=self, depends_on=[role])

        def schedule(resource_name: str, action: str, when: str, arn: str,
                     payload: pulumi.Input[str]) -> None:
            aws.scheduler.Schedule(
                resource_name,
                description=f"{action} ({args.timezone})",
                schedule_expression=args.cron(when),
                schedule_expression_timezone=args.timezone,
                flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
                target=aws.scheduler.ScheduleTargetArgs(
                    arn=arn, role_arn=role.arn, input=payload,
                    retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                        maximum_retry_attempts=3, maximum_event_age_in_seconds=3600)),
                opts=child)

        update = "arn:aws:scheduler:::aws-sdk:eks:updateNodegroupConfig"
        for group_name, group, minimum, desired, maximum in node_groups:
            for action, when, size in ((STOP, args.stop, (0, 0)),
                                       (START, args.start, (minimum, desired))):
                payload = pulumi.Output.all(cluster_name, group.node_group_name).apply(
                    lambda n, size=size, maximum=maximum: json.dumps({
                        "ClusterName": n[0], "NodegroupName": n[1], "ScalingConfig": {
                            "MinSize": size[0], "DesiredSize": size[1],
                            "MaxSize": maximum}}))
                schedule(f"{group_name}-{action.split(': ')[1]}", action, when, update, payload)
        if nat_instance is not None:
            for action, when, size in ((STOP, args.stop, 0), (START, args.start, 1)):
                schedule(f"{name}-nat-instance-{action.split(': ')[1]}", action, when,
                         "arn:aws:scheduler:::aws-sdk:autoscaling:updateAutoScalingGroup",
                         nat_instance.name.apply(lambda n, size=size: json.dumps({
                             "AutoScalingGroupName": n, "MinSize": size, "MaxSize": size,
                             "DesiredCapacity": size})))
        for action, when, api in ((STOP, args.stop, "stopDBInstance"),
                                  (START, args.start, "startDBInstance")):
            schedule(f"{name}-database-{action.split(': ')[1]}", action, when,
                     f"arn:aws:scheduler:::aws-sdk:rds:{api}",
                     database.identifier.apply(
                         lambda i: json.dumps({"DbInstanceIdentifier": i})))
        if alarms:
            names = pulumi.Output.all(*(a.name for a in alarms)).apply(
                lambda n: json.dumps({"AlarmNames": sorted(n)}))
            for action, when, api in ((STOP, args.stop, "disableAlarmActions"),
                                      (START, args.alarms_back, "enableAlarmActions")):
                schedule(f"{name}-alarms-{action.split(': ')[1]}", action, when,
                         f"arn:aws:scheduler:::aws-sdk:cloudwatch:{api}", names)
        self.register_outputs({"hoursPerWeek": args.hours_per_week})
