"""Auto Scaling lifecycle hooks on termination, which moto (5.2) does not model: with a hook on
``autoscaling:EC2_INSTANCE_TERMINATING``, TerminateInstanceInAutoScalingGroup leaves the instance
running in ``Terminating:Wait`` (its node stays in the cluster) until ``CompleteLifecycleAction``
(which moto lacks: added here) or the hook's heartbeat timeout, then terminates it as moto does
(the default result of a terminating hook does not matter: the instance goes either way).

Installed once per process by sandbox/aws.py (class-level wrappers over moto's backend and response).
"""
from __future__ import annotations

import time
from typing import Any

from moto.autoscaling.models import AutoScalingBackend, TerminateInstanceActivity
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import EmptyResult

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
WAIT = "Terminating:Wait"
_installed = False


def _waiting(backend: Any) -> dict:
    if not hasattr(backend, "_terminating_wait"):
        backend._terminating_wait = {}
    return backend._terminating_wait


def _hook(backend: Any, group: str) -> Any:
    return next((h for h in backend.lifecycle_hooks.values()
                 if h.auto_scaling_group_name == group and h.lifecycle_transition == TERMINATING), None)


def _proceed(backend: Any, instance_id: str) -> None:
    _deadline, decrement = _waiting(backend).pop(instance_id)
    _ORIGINAL["terminate"](backend, instance_id, decrement)


def _expire(backend: Any) -> None:
    now = time.monotonic()
    for iid, (deadline, _decrement) in list(_waiting(backend).items()):
        if now >= deadline:
            _proceed(backend, iid)


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
    hook = _hook(backend, self._get_param("AutoScalingGroupName"))
    if hook is None or hook.name != self._get_param("LifecycleHookName") or instance_id not in _waiting(backend):
        from moto.autoscaling.exceptions import ValidationError
        raise ValidationError("No active Lifecycle Action found with instance ID %s" % instance_id)
    _proceed(backend, instance_id)
    return EmptyResult()


_ORIGINAL = {"terminate": AutoScalingBackend.terminate_instance,
             "describe": AutoScalingBackend.describe_auto_scaling_groups}


def install() -> None:
    global _installed
    if _installed:
        return
    AutoScalingBackend.terminate_instance = terminate_instance
    AutoScalingBackend.describe_auto_scaling_groups = describe_auto_scaling_groups
    AutoScalingResponse.complete_lifecycle_action = complete_lifecycle_action
    _installed = True
