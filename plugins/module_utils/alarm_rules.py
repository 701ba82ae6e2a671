# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CloudWatch alarm definitions: the built-in ones and the checks every alarm must pass.

Plain Python (no Ansible import) so unit tests drive it directly; the filter
plugin ``logstack.elk.alarm_rules`` exposes it to the ``alarms`` role.

The check that matters: a *count* metric (one that CloudWatch receives as
"N events in this interval", such as ``BackendConnectionErrors``) must be
alarmed on its ``Sum``. Its ``Maximum`` or ``Average`` is the size of the
largest / mean single data point the load balancer published, so a steady
trickle of one error per data point stays at 1 for ever and an alarm with a
threshold above 1 never fires, however many errors there are per minute.
A *gauge* (``UnHealthyHostCount``, ``HealthyHostCount``, ``SurgeQueueLength``,
``Latency``) is the opposite: summing it over the samples of a period counts
the same unhealthy host once per sample, so ``Maximum`` (or ``Average``) is
the right statistic there, despite the "Count" in the name.
"""
from __future__ import annotations

import re

# Metrics published as event counts per interval, whose only meaningful
# statistic over a period is Sum. Names are those of AWS/ELB (Classic),
# AWS/ApplicationELB and AWS/NetworkELB; anything starting with HTTPCode_ is
# a count too (HTTPCode_Backend_5XX, HTTPCode_Target_5XX_Count, ...).
COUNT_METRICS = frozenset([
    # AWS/ELB (Classic Load Balancer)
    "BackendConnectionErrors",
    "RequestCount",
    "SpilloverCount",
    # AWS/ApplicationELB
    "TargetConnectionErrorCount",
    "RejectedConnectionCount",
    "NewConnectionCount",
    "ClientTLSNegotiationErrorCount",
    "TargetTLSNegotiationErrorCount",
    "ProcessedBytes",
    # AWS/NetworkELB
    "NewFlowCount",
    "NewFlowCount_TCP",
    "TCP_Client_Reset_Count",
    "TCP_ELB_Reset_Count",
    "TCP_Target_Reset_Count",
    "ProcessedPackets",
])
COUNT_METRIC_PREFIXES = ("HTTPCode_",)

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
COMPARISONS = ("GreaterThanOrEqualToThreshold", "GreaterThanThreshold",
               "LessThanThreshold", "LessThanOrEqualToThreshold")
TREAT_MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
_NAME_RE = re.compile(r"^[^\x00-\x1f]{1,255}$")

REQUIRED = ("name", "namespace", "metric_name", "statistic", "comparison", "threshold")
KNOWN_KEYS = frozenset(REQUIRED + (
    "dimensions", "period", "evaluation_periods", "treat_missing_data", "description",
    "unit", "state", "allow_non_sum_statistic", "count_metric",
))

DEFAULTS = {
    "dimensions": {},
    "period": 60,
    "evaluation_periods": 1,
    # ELB publishes error counts only when there is an error: no data means no error.
    "treat_missing_data": "notBreaching",
    "description": "",
    "unit": None,
    "state": "present",
}


class AlarmRuleError(ValueError):
    """The alarm list cannot be applied; the message says why, one line per alarm."""


def is_count_metric(alarm):
    """True when the alarm's metric is an event count (its period statistic must be Sum)."""
    declared = alarm.get("count_metric")
    if declared is not None:
        return bool(declared)
    name = str(alarm.get("metric_name", ""))
    return name in COUNT_METRICS or name.startswith(COUNT_METRIC_PREFIXES)


def _valid_period(value):
    # CloudWatch accepts 10, 30 and any multiple of 60 seconds.
    return value in (10, 30) or (value >= 60 and value % 60 == 0)


def alarm_problems(alarms):
    """Return a list of one-sentence problems with ``alarms`` (empty when all can be applied)."""
    problems = []
    if not isinstance(alarms, list):
        return ["The alarm list must be a list of mappings, got %s." % type(alarms).__name__]
    seen = set()
    for index, alarm in enumerate(alarms):
        if not isinstance(alarm, dict):
            problems.append("Alarm #%d must be a mapping, got %s." % (index, type(alarm).__name__))
            continue
        label = "Alarm %r" % alarm["name"] if alarm.get("name") else "Alarm #%d" % index
        unknown = sorted(set(alarm) - KNOWN_KEYS)
        if unknown:
            problems.append("%s has unknown keys %s (known: %s)." % (label, ", ".join(unknown), ", ".join(sorted(KNOWN_KEYS))))
        if alarm.get("state", "present") == "absent":
            # Only the name is needed to delete an alarm.
            if not alarm.get("name"):
                problems.append("%s has state absent but no name." % label)
            continue
        missing = [key for key in REQUIRED if alarm.get(key) in (None, "")]
        if missing:
            problems.append("%s lacks %s." % (label, ", ".join(missing)))
            continue
        name = str(alarm["name"])
        if not _NAME_RE.match(name):
            problems.append("%s: the name must be 1 to 255 printable characters." % label)
        if name in seen:
            problems.append("%s is defined twice; alarm names must be unique." % label)
        seen.add(name)
        statistic = alarm["statistic"]
        if statistic not in STATISTICS:
            problems.append("%s: statistic %r is not one of %s." % (label, statistic, ", ".join(STATISTICS)))
        elif is_count_metric(alarm) and statistic != "Sum" and not alarm.get("allow_non_sum_statistic", False):
            problems.append(
                "%s: %s is a count metric (events per interval); its %s is the size of a single data point, "
                "so a steady trickle of errors never crosses the threshold. Use statistic Sum, or set "
                "allow_non_sum_statistic: true on this alarm if %s is really meant."
                % (label, alarm["metric_name"], statistic, statistic))
        if alarm["comparison"] not in COMPARISONS:
            problems.append("%s: comparison %r is not one of %s." % (label, alarm["comparison"], ", ".join(COMPARISONS)))
        try:
            float(alarm["threshold"])
        except (TypeError, ValueError):
            problems.append("%s: threshold %r is not a number." % (label, alarm["threshold"]))
        period = alarm.get("period", DEFAULTS["period"])
        if not isinstance(period, int) or isinstance(period, bool) or not _valid_period(period):
            problems.append("%s: period %r must be 10, 30 or a multiple of 60 seconds." % (label, period))
        periods = alarm.get("evaluation_periods", DEFAULTS["evaluation_periods"])
        if not isinstance(periods, int) or isinstance(periods, bool) or periods < 1:
            problems.append("%s: evaluation_periods %r must be a whole number >= 1." % (label, periods))
        tmd = alarm.get("treat_missing_data", DEFAULTS["treat_missing_data"])
        if tmd not in TREAT_MISSING_DATA:
            problems.append("%s: treat_missing_data %r is not one of %s." % (label, tmd, ", ".join(TREAT_MISSING_DATA)))
        dims = alarm.get("dimensions", {})
        if not isinstance(dims, dict):
            problems.append("%s: dimensions must be a mapping of name to value." % label)
        if alarm.get("state", "present") not in ("present", "absent"):
            problems.append("%s: state must be present or absent." % label)
    return problems


def alarm_definitions(alarms, alarm_actions=None, ok_actions=None):
    """Return ``alarms`` with defaults filled in and the actions set, ready for cloudwatch_metric_alarm.

    Raises AlarmRuleError (every problem, one per line) when any alarm is refused.
    """
    problems = alarm_problems(alarms)
    if problems:
        raise AlarmRuleError("\n".join(problems))
    result = []
    for alarm in alarms:
        item = dict(DEFAULTS)
        item.update({k: v for k, v in alarm.items() if k not in ("allow_non_sum_statistic", "count_metric")})
        if item["state"] == "present":
            item["threshold"] = float(item["threshold"])
            item["dimensions"] = {str(k): str(v) for k, v in (item["dimensions"] or {}).items()}
            item["alarm_actions"] = list(alarm_actions or [])
            item["ok_actions"] = list(ok_actions or [])
        result.append(item)
    return result


def builtin_group_alarms(groups, prefix):
    """An alarm per Auto Scaling Group whose in-service instances fall below its minimum.

    ``groups`` is a list of ``{"name": <group name>, "role": <elastalert|...>}`` with optional
    ``min_in_service`` (default 1) and ``evaluation_periods`` (minutes, default 10: longer than a
    replacement takes to boot). It needs the group's metrics collection on (the
    elastalert_environment role turns it on): a self-healing group that cannot heal (AMI gone,
    no capacity, broken launch template) otherwise goes unnoticed.
    """
    alarms = []
    for group in groups or []:
        if not isinstance(group, dict) or not group.get("name"):
            raise AlarmRuleError("Each Auto Scaling Group needs a name, got %r." % (group,))
        role = group.get("role") or group["name"]
        alarms.append({
            "name": "%s-%s-in-service" % (prefix, role),
            "namespace": "AWS/AutoScaling",
            "metric_name": "GroupInServiceInstances",
            # A gauge: Minimum over the period is "was it ever short of instances".
            "statistic": "Minimum",
            "comparison": "LessThanThreshold",
            "threshold": int(group.get("min_in_service", 1)),
            "period": 60,
            "evaluation_periods": int(group.get("evaluation_periods", 10)),
            "dimensions": {"AutoScalingGroupName": group["name"]},
            # Metrics stop when the group has nothing to report: that is breaching here.
            "treat_missing_data": "breaching",
            "description": "The Auto Scaling Group %s has had fewer than %s instance(s) in service for %s minutes."
                           % (group["name"], int(group.get("min_in_service", 1)), int(group.get("evaluation_periods", 10))),
        })
    return alarms


def builtin_alarms(load_balancers, prefix):
    """The built-in alarms for each Classic Load Balancer in ``load_balancers``.

    ``load_balancers`` is a list of ``{"name": <ELB name>, "role": <elasticsearch|logstash|...>}``
    with optional ``unhealthy_hosts`` / ``backend_connection_errors`` booleans (default true) and
    ``unhealthy_evaluation_periods`` (default 2, so one failed health check during a deploy
    does not page anyone).
    """
    alarms = []
    for lb in load_balancers or []:
        if not isinstance(lb, dict) or not lb.get("name"):
            raise AlarmRuleError("Each load balancer needs a name, got %r." % (lb,))
        role = lb.get("role") or lb["name"]
        dims = {"LoadBalancerName": lb["name"]}
        if lb.get("unhealthy_hosts", True):
            alarms.append({
                "name": "%s-%s-unhealthy-hosts" % (prefix, role),
                "namespace": "AWS/ELB",
                "metric_name": "UnHealthyHostCount",
                # A gauge: Maximum over the period is "were any hosts unhealthy"; Sum would
                # count the same host once per sample.
                "statistic": "Maximum",
                "comparison": "GreaterThanThreshold",
                "threshold": 0,
                "period": 60,
                "evaluation_periods": int(lb.get("unhealthy_evaluation_periods", 2)),
                "dimensions": dims,
                "treat_missing_data": "notBreaching",
                "description": "Hosts behind the %s load balancer %s fail their health check." % (role, lb["name"]),
            })
        if lb.get("backend_connection_errors", True):
            alarms.append({
                "name": "%s-%s-backend-connection-errors" % (prefix, role),
                "namespace": "AWS/ELB",
                "metric_name": "BackendConnectionErrors",
                # A count: Sum over the period is the number of failed connections.
                "statistic": "Sum",
                "comparison": "GreaterThanThreshold",
                "threshold": 0,
                "period": 60,
                "evaluation_periods": 1,
                "dimensions": dims,
                "treat_missing_data": "notBreaching",
                "description": ("The %s load balancer %s cannot connect to its backends: a dead TCP input "
                                "while HTTP health checks still pass." % (role, lb["name"])),
            })
    return alarms
