"""Auto Scaling processes suspended for a run and resumed exactly (rollout/scaling.py, lock.finish),
against moto's Auto Scaling API (SuspendProcesses / ResumeProcesses / DescribeAutoScalingGroups)."""
import boto3
import pytest
from test_lock import groups, moto_url  # noqa: F401 (fixtures: the shared moto, two empty groups)

from ansible_collections.logstack.elk.plugins.module_utils.aws import tag_dict
from ansible_collections.logstack.elk.plugins.module_utils.rollout import scaling
from ansible_collections.logstack.elk.plugins.module_utils.rollout.lock import GroupLock, finish


@pytest.fixture
def scaling_groups(groups, moto_url):  # noqa: F811 (test_lock's fixtures, used as such)
    """test_lock's two empty groups, with a boto3 Auto Scaling client to look at them directly."""
    aws, names = groups
    return aws, boto3.client("autoscaling", region_name="us-east-1", endpoint_url=moto_url), names


def suspended(asg, name):
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return sorted(p["ProcessName"] for p in group.get("SuspendedProcesses") or []), tag_dict(group.get("Tags"))


def test_the_run_suspends_what_was_active_and_resumes_exactly_that_also_after_a_crash(scaling_groups):
    aws, asg, names = scaling_groups
    # the operator keeps HealthCheck suspended on the data group
    asg.suspend_processes(AutoScalingGroupName=names[1], ScalingProcesses=["HealthCheck"])
    done = scaling.suspend(aws, names)
    assert "AZRebalance, HealthCheck, ReplaceUnhealthy on %s" % names[0] in done, done
    assert "AZRebalance, ReplaceUnhealthy on %s" % names[1] in done, done
    procs, tags = suspended(asg, names[1])
    assert procs == ["AZRebalance", "HealthCheck", "ReplaceUnhealthy"]
    assert tags[scaling.SUSPEND_TAG] == "AZRebalance,ReplaceUnhealthy"  # written before suspending
    # a crashed run's rerun suspends again: the tag is not overwritten with "nothing of ours"
    scaling.suspend(aws, names)
    assert suspended(asg, names[1])[1][scaling.SUSPEND_TAG] == "AZRebalance,ReplaceUnhealthy"
    # the lock's release resumes exactly what the run suspended, and drops the tags
    lock = GroupLock(aws, names)
    lock.acquire("run-1", settle_seconds=0)
    released, restored = finish(None, aws, names, lock, "run-1")
    assert sorted(released) == sorted(names)
    assert "Auto Scaling processes resumed" in restored, restored
    assert suspended(asg, names[0]) == ([], {})
    assert suspended(asg, names[1]) == (["HealthCheck"], {})  # the operator's stays


def test_nothing_to_suspend_is_remembered_too(scaling_groups):
    aws, asg, names = scaling_groups
    for name in names:
        asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=list(scaling.PROCESSES))
    assert scaling.suspend(aws, names) == ""
    assert suspended(asg, names[0])[1][scaling.SUSPEND_TAG] == scaling.NONE
    assert scaling.resume(aws, names) == ""
    assert suspended(asg, names[0]) == (sorted(scaling.PROCESSES), {})
