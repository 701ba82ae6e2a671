"""Auto Scaling lifecycle hooks on termination, which moto (5.2) does not model: with a hook on
``autoscaling:EC2_INSTANCE_TERMINATING``, TerminateInstanceInAutoScalingGroup leaves the instance
running in ``Terminating:Wait`` (its node stays in the cluster) until ``CompleteLifecycleAction``
(which moto lacks: added here) or the hook's heartbeat timeout, then terminates it as moto does
(the default result of a terminating hook does not matter: the instance goes either way).

Launching hooks the same way: with a hook on ``autoscaling:EC2_INSTANCE_LAUNCHING``, an instance
Auto Scaling launches is ``Pending:Wait`` (it runs: its node boots and may join) until
``CompleteLifecycleAction`` or the heartbeat timeout; then ``CONTINUE`` puts it ``InService`` and
``ABANDON`` terminates it, and Auto Scaling launches another (held by the hook again). An instance
in ``Pending:Wait`` counts towards the desired capacity, as in AWS.

Installed once per process by sandbox/aws.py (class-level wrappers over moto's backend and response).
"""
from __future__ import annotations

import time
from typing import Any

from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, TerminateInstanceActivity
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import EmptyResult

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
WAIT = "Terminating:Wait"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
PENDING_WAIT = "Pending:Wait"
_installed = False


def _waiting(backend: Any) -> dict:
    if not hasattr(backend, "_terminating_wait"):
        backend._terminating_wait = {}
    return backend._terminating_wait


def _hook(backend: Any, group: str, transition: str = TERMINATING) -> Any:
    return next((h for h in backend.lifecycle_hooks.values()
                 if h.auto_scaling_group_name == group and h.lifecycle_transition == transition), None)


def _pending(backend: Any) -> dict:
    """instance id -> (deadline, group) of the instances a launching hook holds in Pending:Wait; the
    deadline is set at launch (heartbeat timeout), the result is the hook's default result then."""
    if not hasattr(backend, "_pending_wait"):
        backend._pending_wait = {}
    return backend._pending_wait


def _launched(backend: Any, instance_id: str, result: str) -> None:
    """The launching hook's action ends: CONTINUE puts the instance InService, ABANDON terminates it
    (moto's own termination: the group launches a replacement)."""
    _pending(backend).pop(instance_id, None)
    state = next((s for g in backend.autoscaling_groups.values() for s in g.instance_states
                  if s.instance.id == instance_id), None)
    if state is None:
        return
    if result == "CONTINUE":
        state.lifecycle_state = "InService"
    else:
        _ORIGINAL["terminate"](backend, instance_id, False)


def replace_instances(self: Any, count_needed: int, propagated_tags: dict) -> None:
    before = {s.instance.id for s in self.instance_states}
    _ORIGINAL["replace"](self, count_needed, propagated_tags)
    backend = self.autoscaling_backend
    hook = _hook(backend, self.name, LAUNCHING)
    if hook is None:
        return
    for state in self.instance_states:
        if state.instance.id not in before:
            state.lifecycle_state = PENDING_WAIT
            _pending(backend)[state.instance.id] = (time.monotonic() + hook.heartbeat_timeout, self.name)


def active_instances(self: Any) -> list:
    """InService and Pending:Wait: AWS counts a held launch towards the desired capacity."""
    return [s for s in self.instance_states if s.lifecycle_state in ("InService", PENDING_WAIT)]


def _proceed(backend: Any, instance_id: str) -> None:
    _deadline, decrement = _waiting(backend).pop(instance_id)
    _ORIGINAL["terminate"](backend, instance_id, decrement)


def _expire(backend: Any) -> None:
    now = time.monotonic()
    for iid, (deadline, _decrement) in list(_waiting(backend).items()):
        if now >= deadline:
            _proceed(backend, iid)
    for iid, (deadline, group) in list(_pending(backend).items()):
        if now >= deadline:
            hook = _hook(backend, group, LAUNCHING)
            _launched(backend, iid, hook.default_result if hook is not None else "ABANDON")


def terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
    _expire(self)
    state = next((s for g in self.autoscaling_groups.values() for s in g.instance_states
                  if s.instance.id == instance_id), None)
    if state is None or instance_id in _waiting(self):
        return _ORIGINAL["terminate"](self, instance_id, should_decrement)
    group = state.instance.autoscaling_group
    hook = _hook(self, group.name)
    if hook is None:
        return _ORIGINAL["terminate"](self, instance_id, should_decrement)
    state.lifecycle_state = WAIT
    _waiting(self)[instance_id] = (time.monotonic() + hook.heartbeat_timeout, should_decrement)
    return TerminateInstanceActivity(state.instance, group.desired_capacity)


def describe_auto_scaling_groups(self: Any, *args: Any, **kwargs: Any) -> Any:
    _expire(self)
    return _ORIGINAL["describe"](self, *args, **kwargs)


def complete_lifecycle_action(self: Any) -> Any:
    backend = self.autoscaling_backend
    instance_id = self._get_param("InstanceId")
    if instance_id in _pending(backend):
        held = _hook(backend, _pending(backend)[instance_id][1], LAUNCHING)
        if held is None or held.name != self._get_param("LifecycleHookName"):
            from moto.autoscaling.exceptions import ValidationError
            raise ValidationError("No active Lifecycle Action found with instance ID %s" % instance_id)
        _launched(backend, instance_id, self._get_param("LifecycleActionResult") or "ABANDON")
        return EmptyResult()
    hook = _hook(backend, self._get_param("AutoScalingGroupName"))
    if hook is None or hook.name != self._get_param("LifecycleHookName") or instance_id not in _waiting(backend):
        from moto.autoscaling.exceptions import ValidationError
        raise ValidationError("No active Lifecycle Action found with instance ID %s" % instance_id)
    _proceed(backend, instance_id)
    return EmptyResult()


_ORIGINAL = {"terminate": AutoScalingBackend.terminate_instance,
             "describe": AutoScalingBackend.describe_auto_scaling_groups,
             "replace": FakeAutoScalingGroup.replace_autoscaling_group_instances}


def install() -> None:
    global _installed
    if _installed:
        return
    AutoScalingBackend.terminate_instance = terminate_instance
    AutoScalingBackend.describe_auto_scaling_groups = describe_auto_scaling_groups
    AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace_instances
    FakeAutoScalingGroup.active_instances = active_instances
    _installed = True
