"""Lifecycle hooks (issue 15 item 7): the instance the run terminated stays in Terminating:Wait with its
node in the cluster, and an instance Auto Scaling launched stays in Pending:Wait (sandbox/lifecycle.py adds
to moto what it lacks); the steps name the hook, wait, or complete the action when configured."""
from __future__ import annotations

import threading

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.rollout.diagnosing import StepFailed

from tests.sandbox_plugin import wait_for
from tests.sandbox.test_rollout_leftovers import clients, group, settled, step_for


def test_an_instance_held_by_a_terminating_hook_is_named_or_released_when_configured(sandbox_factory, monkeypatch):
    sbx = sandbox_factory("split.yml")
    settled(sbx, 6)
    sbx.asg.put_lifecycle_hook(LifecycleHookName="drain-logs", AutoScalingGroupName="es-data",
                               LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING", HeartbeatTimeout=3600,
                               DefaultResult="CONTINUE")
    victim = sorted(n["name"] for n in sbx.nodes().values() if "data" in n["roles"])[0]
    cluster, aws, _groups, opts = clients(sbx, monkeypatch)
    step = step_for(sbx, cluster, aws, opts, victim, "es-data", timeouts={"drain": 60, "leave": 2})
    step.run("drain")
    step.run("terminate")
    states = {i["InstanceId"]: i["LifecycleState"] for i in group(sbx, "es-data")["Instances"]}
    assert states[step.instance_id] == "Terminating:Wait", states  # the precondition: the hook holds it
    with pytest.raises(StepFailed) as err:
        step.run("wait_left")
    assert "held by lifecycle hook drain-logs (heartbeat timeout 3600s)" in err.value.message, err.value.message
    assert "upgrade_complete_lifecycle_actions: true" in err.value.message
    _c, _a, _g, opts = clients(sbx, monkeypatch, complete_lifecycle_actions=True)
    step = step_for(sbx, cluster, aws, opts, victim, "es-data", timeouts={"leave": 30})
    entry = step.run("wait_left")
    assert entry["detail"].startswith("left the cluster"), entry
    assert step.instance_id not in [i["InstanceId"] for i in group(sbx, "es-data")["Instances"]]


# Launching hooks: an instance Auto Scaling launches for the run sits in Pending:Wait (sandbox/lifecycle.py
# models it, moto does not); wait_joined names the hook, waits, follows a replacement launched after an
# ABANDON, and completes the action only when configured.
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"


def _surged(sbx, monkeypatch, heartbeat, result, **opts):
    settled(sbx, 6)
    sbx.asg.put_lifecycle_hook(LifecycleHookName="boot-check", AutoScalingGroupName="es-data",
                               LifecycleTransition=LAUNCHING, HeartbeatTimeout=heartbeat, DefaultResult=result)
    victim = sorted(n["name"] for n in sbx.nodes().values() if "data" in n["roles"])[0]
    cluster, aws, _groups, options = clients(sbx, monkeypatch, strategy="surge", **opts)
    step = step_for(sbx, cluster, aws, options, victim, "es-data", timeouts={"join": 3, "gate": 30})
    before = step.run("surge")["group_instances_before"]
    step.known = set(before)
    return cluster, aws, victim, before


def _states(sbx):
    return {i["InstanceId"]: i["LifecycleState"] for i in group(sbx, "es-data")["Instances"]}


def test_a_launch_held_in_pending_wait_is_waited_for_and_completed_only_when_configured(sandbox_factory, monkeypatch):
    sbx = sandbox_factory("split.yml")
    cluster, aws, victim, before = _surged(sbx, monkeypatch, 3600, "ABANDON")
    new = [i for i in _states(sbx) if i not in before]
    assert [_states(sbx)[i] for i in new] == ["Pending:Wait"], (new, _states(sbx))  # the precondition: the hook holds it
    wait_for(lambda: any(n.get("attributes", {}).get("aws_instance_id") == new[0] for n in sbx.nodes().values()),
             timeout=10, what="the new instance's node to join while held")
    _c, _a, _g, opts = clients(sbx, monkeypatch, strategy="surge")
    step = step_for(sbx, cluster, aws, opts, victim, "es-data", timeouts={"join": 2}, known_instance_ids=before)
    with pytest.raises(StepFailed) as err:
        step.run("wait_joined")
    message = err.value.message
    assert "held by launch lifecycle hook boot-check (heartbeat timeout 3600s, default result ABANDON)" in message, message
    assert "its node has joined" in message and "upgrade_complete_launch_lifecycle_actions: true" in message, message
    assert _states(sbx)[new[0]] == "Pending:Wait"  # the run did not complete it on the operator's behalf

    _c, _a, _g, opts = clients(sbx, monkeypatch, strategy="surge", complete_launch_actions=True)
    step = step_for(sbx, cluster, aws, opts, victim, "es-data", timeouts={"join": 10}, known_instance_ids=before)
    entry = step.run("wait_joined")
    assert _states(sbx)[new[0]] == "InService", _states(sbx)
    assert [n["instance_id"] for n in entry["new_nodes"]] == new, entry


def test_a_launch_the_hook_abandons_is_followed_to_the_instance_launched_in_its_place(sandbox_factory, monkeypatch):
    sbx = sandbox_factory("split.yml")
    cluster, aws, victim, before = _surged(sbx, monkeypatch, 2, "ABANDON")
    first = [i for i in _states(sbx) if i not in before]
    assert [_states(sbx)[i] for i in first] == ["Pending:Wait"], _states(sbx)

    def operator_fixes_the_bootstrap():
        # once the first launch is abandoned, the next one goes InService at its heartbeat timeout
        wait_for(lambda: first[0] not in _states(sbx), timeout=20, what="the first launch to be abandoned")
        sbx.asg.put_lifecycle_hook(LifecycleHookName="boot-check", AutoScalingGroupName="es-data",
                                   LifecycleTransition=LAUNCHING, HeartbeatTimeout=2, DefaultResult="CONTINUE")
    fixer = threading.Thread(target=operator_fixes_the_bootstrap, daemon=True)
    fixer.start()
    _c, _a, _g, opts = clients(sbx, monkeypatch, strategy="surge")
    step = step_for(sbx, cluster, aws, opts, victim, "es-data", timeouts={"join": 30}, known_instance_ids=before)
    entry = step.run("wait_joined")
    fixer.join(5)
    assert entry["abandoned_instance_ids"] == first, entry
    second = [n["instance_id"] for n in entry["new_nodes"]]
    assert len(second) == 1 and second[0] not in first + before, entry
    assert "%s abandoned by its launch lifecycle hook" % first[0] in entry["detail"], entry["detail"]
    assert "Auto Scaling launched %s in its place" % second[0] in entry["detail"], entry["detail"]
    assert _states(sbx)[second[0]] == "InService"
