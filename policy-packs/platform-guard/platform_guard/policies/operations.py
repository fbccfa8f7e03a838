"""What makes a platform page people for nothing: alarms on resources that sleep on schedule."""

from __future__ import annotations

import json
from typing import Any

from pulumi_policy import StackValidationArgs

from platform_guard.policies._base import MANDATORY, MEDIUM, get, stack_policy, violation

SCHEDULE = "aws:scheduler/schedule:Schedule"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# Scheduler targets that put something to sleep, and the alarm dimension naming what sleeps.
SLEEPS = {
    "arn:aws:scheduler:::aws-sdk:rds:stopDBInstance": ("DbInstanceIdentifier",
                                                       "DBInstanceIdentifier"),
    "arn:aws:scheduler:::aws-sdk:eks:updateNodegroupConfig": ("ClusterName", "ClusterName"),
    "arn:aws:scheduler:::aws-sdk:autoscaling:updateAutoScalingGroup": (
        "AutoScalingGroupName", "AutoScalingGroupName"),
}
DISABLE = "arn:aws:scheduler:::aws-sdk:cloudwatch:disableAlarmActions"


def _payload(schedule: Any) -> dict[str, Any]:
    try:
        value = json.loads(str(get(schedule.props, "target", "input", default="{}")))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _asleep(schedule: Any) -> bool:
    """A stop: a database stopped, or a group sized to zero."""
    payload = _payload(schedule)
    sizes = [payload.get("DesiredCapacity"), (payload.get("ScalingConfig") or {}).get(
        "DesiredSize")]
    return "stopDBInstance" in str(get(schedule.props, "target", "arn")) or 0 in sizes


def _alarms_while_asleep(args: StackValidationArgs, config: dict[str, Any]):
    schedules = [r for r in args.resources if r.resource_type == SCHEDULE]
    sleeping: set[tuple[str, str]] = set()
    for schedule in schedules:
        kind = SLEEPS.get(str(get(schedule.props, "target", "arn")))
        if kind is not None and _asleep(schedule):
            value = _payload(schedule).get(kind[0])
            if value:
                sleeping.add((kind[1], str(value)))
    if not sleeping:
        return
    disabling = [s for s in schedules if str(get(s.props, "target", "arn")) == DISABLE]
    # By name, or (a name auto-named at apply) by the alarms the schedule's input was made of.
    quieted = {str(n) for s in disabling for n in _payload(s).get("AlarmNames") or ()}
    quieted_urns = {d.urn for s in disabling
                    for d in (getattr(s, "property_dependencies", None) or {}).get("target") or ()}
    for alarm in args.resources:
        if alarm.resource_type != METRIC_ALARM or not get(alarm.props, "alarmActions"):
            continue
        watched = {(str(k), str(v)) for k, v in (get(alarm.props, "dimensions") or {}).items()}
        if (not watched & sleeping or get(alarm.props, "name") in quieted
                or alarm.urn in quieted_urns):
            continue
        what = ", ".join(f"{k} {v}" for k, v in sorted(watched & sleeping))
        yield (violation(METRIC_ALARM, alarm.name,
                         f"watches {what}, which sleeps on schedule, and its actions stay on "
                         "while it does: it notifies every night",
                         "disable the alarm's actions at the stop and enable them after the "
                         "start (a scheduler disableAlarmActions/enableAlarmActions pair, as "
                         "OffHours does for the stack's alarms)"), alarm.urn)


alarms_quiet_while_asleep = stack_policy(
    "alarms-quiet-while-asleep",
    "An alarm on a resource that sleeps on schedule (a stopped database, a group at zero) has "
    "its actions off while it sleeps.",
    enforcement=MANDATORY, severity=MEDIUM, check=_alarms_while_asleep,
    remediation="Give OffHours the stack's alarms, or schedule disableAlarmActions at the stop "
                "and enableAlarmActions after the start.")

POLICIES = [alarms_quiet_while_asleep]
