# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Auto Scaling processes suspended for a run (and lifecycle hooks holding an instance the run terminated, or
one Auto Scaling launched for it), so that Auto Scaling never terminates a node the run did not choose: ``AZRebalance`` (moves instances between zones by launching and terminating),
``ReplaceUnhealthy`` and ``HealthCheck`` (an instance whose node is drained, or a new instance still
booting, failing an ELB health check would be replaced). ``Launch`` and ``Terminate`` stay active:
the run needs them.

Crash safety, as the rebalance pause (rebalance.py): the processes the run is about to suspend
(those not suspended already, by the operator) are written to a tag on the group *before*
SuspendProcesses, and a tag already there is never overwritten; ``resume`` resumes exactly what
the tag names, so a process the operator had suspended stays suspended.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.aws import tag_dict

SUSPEND_TAG = "logstack:rollout-suspended"
PROCESSES = ("AZRebalance", "HealthCheck", "ReplaceUnhealthy")
# What SuspendProcesses accepts apart from Launch and Terminate (which a run needs).
CHOICES = ("AZRebalance", "HealthCheck", "ReplaceUnhealthy", "AlarmNotification", "ScheduledActions",
           "AddToLoadBalancer", "InstanceRefresh")
NONE = "none"  # the tag's value when the operator had suspended every one of them already
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
TERMINATING_WAIT = "Terminating:Wait"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
PENDING_WAIT = "Pending:Wait"


def suspend(aws, group_names, processes=PROCESSES):
    """Suspend the processes on each group for the run; what was suspended ("" when nothing)."""
    done = []
    for group in aws.find_groups(names=list(group_names)):
        name = group["AutoScalingGroupName"]
        saved = tag_dict(group.get("Tags")).get(SUSPEND_TAG)
        if saved is None:
            already = {p.get("ProcessName") for p in group.get("SuspendedProcesses") or []}
            ours = [p for p in processes if p not in already]
            aws.put_group_tag(name, SUSPEND_TAG, ",".join(ours) or NONE)
        else:
            ours = [p for p in saved.split(",") if p and p != NONE]
        if ours:
            aws.call("autoscaling", "SuspendProcesses", AutoScalingGroupName=name, ScalingProcesses=ours)
            done.append("%s on %s" % (", ".join(ours), name))
    return "; ".join(done)


def held_terminating(aws, group_name, instance_id, complete=False):
    """"" when the instance is not held by a terminating lifecycle hook; else what holds it, after
    completing the action (CONTINUE) when complete (upgrade_complete_lifecycle_actions)."""
    group = aws.find_groups(names=[group_name])[0]
    state = next((i.get("LifecycleState") for i in group.get("Instances") or [] if i["InstanceId"] == instance_id),
                 None)
    if state != TERMINATING_WAIT:
        return ""
    hooks = [h for h in aws.call("autoscaling", "DescribeLifecycleHooks", AutoScalingGroupName=group_name).get(
        "LifecycleHooks") or [] if h.get("LifecycleTransition") == TERMINATING]
    names = ", ".join("%s (heartbeat timeout %ss)" % (h["LifecycleHookName"], h.get("HeartbeatTimeout")) for h in hooks)
    if not complete:
        return ("instance %s is in %s, held by lifecycle hook %s: the hook's own action releases it, or set "
                "upgrade_complete_lifecycle_actions: true" % (instance_id, TERMINATING_WAIT, names or "?"))
    for hook in hooks:
        aws.call("autoscaling", "CompleteLifecycleAction", AutoScalingGroupName=group_name,
                 LifecycleHookName=hook["LifecycleHookName"], InstanceId=instance_id, LifecycleActionResult="CONTINUE")
    return "completed the lifecycle action of %s on %s (CONTINUE)" % (names, instance_id)


def _hooks(aws, group_name, transition):
    return [h for h in aws.call("autoscaling", "DescribeLifecycleHooks", AutoScalingGroupName=group_name).get(
        "LifecycleHooks") or [] if h.get("LifecycleTransition") == transition]


def held_launching(aws, group, joined, complete=False):
    """What holds the group's instances in Pending:Wait, one phrase per instance ([] when none: the hooks
    are read only then). Such an instance runs and its node may have joined, but at the hook's heartbeat
    timeout its default result decides: ABANDON terminates it (Auto Scaling launches another), so it is
    waited for until InService. complete (upgrade_complete_launch_lifecycle_actions): once its node joined
    (joined: instance ids whose node is in the cluster), complete the action (CONTINUE) on the operator's
    behalf."""
    name = group["AutoScalingGroupName"]
    pending = sorted(i["InstanceId"] for i in group.get("Instances") or [] if i.get("LifecycleState") == PENDING_WAIT)
    if not pending:
        return []
    hooks = _hooks(aws, name, LAUNCHING)
    names = ", ".join("%s (heartbeat timeout %ss, default result %s)" % (
        h["LifecycleHookName"], h.get("HeartbeatTimeout"), h.get("DefaultResult")) for h in hooks) or "?"
    out = []
    for iid in pending:
        if iid not in joined:
            out.append("instance %s is in %s, held by launch lifecycle hook %s; its node has not joined yet (its "
                       "bootstrap completes the action; at the timeout ABANDON terminates it and Auto Scaling "
                       "launches another)" % (iid, PENDING_WAIT, names))
        elif not complete:
            out.append("instance %s is in %s, held by launch lifecycle hook %s; its node has joined: its bootstrap "
                       "completes the action, or set upgrade_complete_launch_lifecycle_actions: true"
                       % (iid, PENDING_WAIT, names))
        else:
            for hook in hooks:
                aws.call("autoscaling", "CompleteLifecycleAction", AutoScalingGroupName=name,
                         LifecycleHookName=hook["LifecycleHookName"], InstanceId=iid, LifecycleActionResult="CONTINUE")
            out.append("completed the launch lifecycle action of %s on %s (CONTINUE): its node joined" % (names, iid))
    return out


def resume(aws, group_names):
    """Resume exactly what a run suspended (the tag) and drop the tag; what was resumed ("" when nothing)."""
    done = []
    for group in aws.find_groups(names=list(group_names)):
        name = group["AutoScalingGroupName"]
        saved = tag_dict(group.get("Tags")).get(SUSPEND_TAG)
        if saved is None:
            continue
        ours = [p for p in saved.split(",") if p and p != NONE]
        if ours:
            aws.call("autoscaling", "ResumeProcesses", AutoScalingGroupName=name, ScalingProcesses=ours)
            done.append("%s on %s" % (", ".join(ours), name))
        aws.delete_group_tag(name, SUSPEND_TAG)
    return "; ".join(done)
