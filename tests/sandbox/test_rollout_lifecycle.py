"""A terminating lifecycle hook (issue 15 item 7): the instance the run terminated stays in
Terminating:Wait with its node in the cluster (sandbox/lifecycle.py adds to moto what it lacks);
wait_left names the hook, or completes the action when configured."""
from __future__ import annotations

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.rollout.diagnosing import StepFailed

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
