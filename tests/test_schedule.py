"""Off-hours: dev's nodes and database sleep outside working hours (EventBridge Scheduler), and
the cost model prices them for the hours they run."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from platform_facts.costmodel import running_fraction
from tests.conftest import DELETE, config_error, mutate, stack_config, write_stack

SCHEDULE = "aws:scheduler/schedule:Schedule"


@pytest.mark.parametrize(("start", "stop", "expected"), [
    ("cron(0 8 ? * MON,TUE,WED,THU,FRI *)", "cron(0 18 ? * MON,TUE,WED,THU,FRI *)",
     Decimal(50) / 168),
    ("cron(0 8 ? * MON-FRI *)", "cron(0 18 ? * MON-FRI *)", Decimal(50) / 168),
    ("cron(0 0 ? * * *)", "cron(0 12 ? * * *)", Decimal("0.5")),
    ("cron(30 7 ? * SAT *)", "cron(30 9 ? * SAT *)", Decimal(2) / 168),
    # Started once a week, stopped every evening: on from Monday 08:00 to Monday 18:00 only.
    ("cron(0 8 ? * MON *)", "cron(0 18 ? * MON-FRI *)", Decimal(10) / 168),
])
def test_the_running_share_of_the_week(start, stop, expected):
    assert running_fraction(start, stop) == expected


def test_an_expression_the_model_does_not_read_prices_the_full_month():
    assert running_fraction("rate(12 hours)", "cron(0 18 ? * MON-FRI *)") is None
    assert running_fraction("cron(0 8 ? * FUNDAY *)", "cron(0 18 ? * MON *)") is None


def test_dev_sleeps_outside_working_hours(evaluations):
    dev = evaluations["dev"]
    schedules = {s.name: s for s in dev.of_type(SCHEDULE)}
    assert sorted(schedules) == ["dev-alarms-start", "dev-alarms-stop",
                                 "dev-database-start", "dev-database-stop",
                                 "dev-nat-instance-start", "dev-nat-instance-stop",
                                 "dev-system-us-east-1a-start", "dev-system-us-east-1a-stop",
                                 "dev-system-us-east-1b-start", "dev-system-us-east-1b-stop"]
    for name, schedule in schedules.items():
        assert schedule.inputs["scheduleExpressionTimezone"] == "UTC"
        assert schedule.inputs["description"].startswith(
            "off-hours: stop" if name.endswith("stop") else "off-hours: start")
    groups = dev.of_type("aws:eks/nodeGroup:NodeGroup")
    assert len(groups) == 2  # zonal: one per AZ, each woken to its own sizes
    for group in groups:
        stop = schedules[f"{group.name}-stop"].inputs
        start = schedules[f"{group.name}-start"].inputs
        assert stop["scheduleExpression"] == "cron(0 18 ? * MON,TUE,WED,THU,FRI *)"
        assert start["scheduleExpression"] == "cron(0 8 ? * MON,TUE,WED,THU,FRI *)"
        sizes = group.inputs["scalingConfig"]
        assert json.loads(stop["target"]["input"]) == {
            "ClusterName": group.inputs["clusterName"],
            "NodegroupName": group.outputs["nodeGroupName"],
            "ScalingConfig": {"MinSize": 0, "DesiredSize": 0, "MaxSize": sizes["maxSize"]}}
        assert json.loads(start["target"]["input"])["ScalingConfig"] == {
            "MinSize": sizes["minSize"], "DesiredSize": sizes["desiredSize"],
            "MaxSize": sizes["maxSize"]}
        assert stop["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:eks:updateNodegroupConfig"
    database = schedules["dev-database-stop"].inputs["target"]
    assert database["arn"] == "arn:aws:scheduler:::aws-sdk:rds:stopDBInstance"
    assert json.loads(database["input"]) == {"DbInstanceIdentifier": "platform-dev"}
    # Its role: trusted by the scheduler for this account only, allowed these actions only.
    role = dev.one("aws:iam/role:Role", "dev-off-hours")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"]
    policy = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy", "dev-off-hours").inputs["policy"])
    actions = sorted(a for s in policy["Statement"] for a in (
        s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))
    assert actions == ["autoscaling:UpdateAutoScalingGroup", "cloudwatch:DisableAlarmActions",
                       "cloudwatch:EnableAlarmActions", "eks:UpdateNodegroupConfig",
                       "rds:StartDBInstance", "rds:StopDBInstance"]
    (nat,) = dev.of_type("aws:autoscaling/group:Group")
    assert json.loads(schedules["dev-nat-instance-stop"].inputs["target"]["input"]) == {
        "AutoScalingGroupName": nat.outputs["name"], "MinSize": 0, "MaxSize": 0,
        "DesiredCapacity": 0}
    assert policy["Statement"][0]["Resource"] == [g.outputs["arn"] for g in groups]
    # Prod never sleeps.
    assert not evaluations["prod"].of_type(SCHEDULE)


def test_the_nodes_and_database_are_priced_for_the_hours_they_run(evaluations):
    from platformctl.pricing import cost_report

    lines = {(line.resource_name, line.key): line for line in cost_report(evaluations["dev"]).lines}
    nodes = [lines[(f"dev-system-{zone}", "nodes")] for zone in ("us-east-1a", "us-east-1b")]
    database = lines[("dev-postgres", "instance")]
    assert all("runs 50 of 168 h a week" in n.detail for n in nodes)
    assert "runs 50 of 168 h a week" in database.detail
    # 2 x 730 h x $0.0336 x 0.35 (spot) x 50/168 ; 730 h x $0.016 x 50/168
    assert (round(sum(n.monthly_usd for n in nodes), 2), round(database.monthly_usd, 2)) == (
        Decimal("5.11"), Decimal("3.48"))
    # Storage and volumes bill while asleep.
    assert "runs" not in lines[("dev-postgres", "storage")].detail


@pytest.mark.parametrize(("stack", "key", "value", "expected"), [
    ("dev", "platform:offHours.stop", "08:00",
     "platform:offHours.stop: '08:00': is not after start (08:00), so the stack would never run"),
    ("dev", "platform:offHours.days", [],
     "platform:offHours.days: []: names no day, so the stack would never run"),
    ("dev", "platform:offHours.timezone", "Mars/Olympus",
     "platform:offHours.timezone: 'Mars/Olympus': is not an IANA time zone"),
    ("dev", "platform:offHours.start", "8am",
     "platform:offHours.start: '8am': does not match; allowed: hh:mm, 00:00 to 23:59"),
    ("prod", "platform:offHours", {"days": ["MON"], "start": "08:00", "stop": "18:00"},
     "platform:offHours: 'set': puts production to sleep"),
])
def test_a_schedule_that_never_runs_or_a_sleeping_prod_is_refused(tmp_path, capsys, stack, key,
                                                                    value, expected):
    path = write_stack(tmp_path, mutate(stack_config(stack), key, value))
    assert expected in config_error(path, capsys)


def test_a_dev_stack_can_stay_awake(tmp_path):
    from platformctl.harness import evaluate
    from tests.conftest import REPO

    config = mutate(stack_config("dev"), "platform:offHours", {"enabled": False})
    evaluation = evaluate(write_stack(tmp_path, config), project_dir=REPO)
    assert not evaluation.of_type(SCHEDULE)
    # Removing the key keeps the preset's schedule.
    assert mutate(stack_config("dev"), "platform:offHours", DELETE) == stack_config("dev")


def test_the_database_windows_of_a_sleeping_stack_fall_in_working_hours(evaluations):
    """RDS takes no automated backup of a stopped instance and defers maintenance: dev's windows
    are inside its working hours, and the instance gets them."""
    from components.database import window_minutes

    dev = evaluations["dev"]
    hours, db = dev.config.off_hours, dev.config.database
    assert hours.holds(window_minutes(db.backup_window), every_day=True)
    assert hours.holds(window_minutes(db.maintenance_window), every_day=False)
    (instance,) = dev.of_type("aws:rds/instance:Instance")
    assert (instance.inputs["backupWindow"], instance.inputs["maintenanceWindow"]) == (
        "08:30-09:00", "wed:17:00-wed:17:30")


@pytest.mark.parametrize(("changes", "refused"), [
    # The windows of before: 03:00 and Sunday, while the instance is stopped.
    ({"platform:database.backupWindow": "03:00-04:00"}, "database.backupWindow: '03:00-04:00'"),
    ({"platform:database.maintenanceWindow": "sun:04:30-sun:05:30"},
     "database.maintenanceWindow: 'sun:04:30-sun:05:30'"),
    # Just outside either end of 08:00-18:00.
    ({"platform:database.backupWindow": "07:45-08:15"}, "database.backupWindow"),
    ({"platform:database.maintenanceWindow": "fri:17:45-fri:18:15"}, "database.maintenanceWindow"),
    ({"platform:database.maintenanceWindow": "sat:10:00-sat:10:30"}, "database.maintenanceWindow"),
    # Just inside.
    ({"platform:database.backupWindow": "08:00-08:30",
      "platform:database.maintenanceWindow": "fri:17:30-fri:18:00"}, None),
    # Europe/Berlin 08:00-18:00 is 07:00-17:00 UTC in winter and 06:00-16:00 in summer: a
    # window must hold in both.
    ({"platform:offHours.timezone": "Europe/Berlin",
      "platform:database.backupWindow": "06:30-07:00"}, "database.backupWindow"),
    ({"platform:offHours.timezone": "Europe/Berlin",
      "platform:database.backupWindow": "07:00-07:30",
      "platform:database.maintenanceWindow": "wed:15:30-wed:16:00"}, None),
    ({"platform:offHours.timezone": "Europe/Berlin",
      "platform:database.backupWindow": "07:00-07:30",
      "platform:database.maintenanceWindow": "wed:16:00-wed:16:30"}, "database.maintenanceWindow"),
    # Awake: any window.
    ({"platform:offHours.enabled": False,
      "platform:database.backupWindow": "03:00-04:00"}, None),
])
def test_database_windows_while_the_stack_sleeps_are_refused(tmp_path, capsys, changes, refused):
    from stacks import config as config_model

    config = stack_config("dev")
    for key, value in changes.items():
        config = mutate(config, key, value)
    path = write_stack(tmp_path, config)
    if refused is None:
        raw = {k.removeprefix("platform:"): v for k, v in config.items()
               if k.startswith("platform:")}
        raw["organizationBudgetMonthlyUsd"] = 500
        config_model.build(raw, config["aws:region"], str(path))  # no error
    else:
        err = config_error(path, capsys)
        assert refused in err and "RDS" in err, err


def test_the_alarms_are_quiet_while_the_stack_sleeps(evaluations):
    """Asleep, pods wait on no nodes and the database reports nothing: every alarm's actions are
    off from the stop until 30 minutes after the start, and the database's alarms do not treat
    its silence as breaching (or each morning would report it recovered)."""
    dev = evaluations["dev"]
    alarms = dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    schedules = {s.name: s.inputs for s in dev.of_type(SCHEDULE)}
    quiet, loud = schedules["dev-alarms-stop"], schedules["dev-alarms-start"]
    assert quiet["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:cloudwatch:disableAlarmActions"
    assert loud["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:cloudwatch:enableAlarmActions"
    names = sorted(a.outputs["name"] for a in alarms)
    assert len(names) == 4
    assert json.loads(quiet["target"]["input"]) == json.loads(loud["target"]["input"]) == {
        "AlarmNames": names}
    assert quiet["scheduleExpression"] == "cron(0 18 ? * MON,TUE,WED,THU,FRI *)"
    assert loud["scheduleExpression"] == "cron(30 8 ? * MON,TUE,WED,THU,FRI *)"
    policy = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy", "dev-off-hours").inputs["policy"])
    (statement,) = [s for s in policy["Statement"] if s["Sid"] == "QuietTheAlarmsWhileAsleep"]
    assert statement["Resource"] == sorted(a.outputs["arn"] for a in alarms)
    for alarm in alarms:
        if "database" in alarm.name:
            assert alarm.inputs["treatMissingData"] == "notBreaching", alarm.name
    # Prod is awake: a paging alarm there treats silence as an outage.
    storage = evaluations["prod"].one("aws:cloudwatch/metricAlarm:MetricAlarm",
                                      "prod-database-storage-low")
    assert storage.inputs["treatMissingData"] == "breaching"
