"""The run lock, a tag on the Auto Scaling Groups, against moto's Auto Scaling API."""
import os
import socket
import subprocess
import uuid

import boto3
import pytest

from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws
from ansible_collections.logstack.elk.plugins.module_utils.rollout.lock import (
    LOCK_TAG, GroupLock, LockError, holder_process, now_iso, process_alive, render)


@pytest.fixture(scope="module")
def moto_url(moto_url):
    """The shared moto server (tests/conftest.py), with the dummy credentials boto3 needs."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    return moto_url


@pytest.fixture
def groups(moto_url):
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_url)
    asg = boto3.client("autoscaling", region_name="us-east-1", endpoint_url=moto_url)
    suffix = uuid.uuid4().hex[:8]
    ec2.create_launch_template(LaunchTemplateName="lt-" + suffix,
                               LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    names = ["masters-" + suffix, "data-" + suffix]
    for name in names:
        asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=1, DesiredCapacity=0,
                                      LaunchTemplate={"LaunchTemplateName": "lt-" + suffix, "Version": "$Latest"},
                                      AvailabilityZones=["us-east-1a"])
    return Aws(region="us-east-1", endpoint_url=moto_url, max_attempts=2), names


def put(aws, names, holder):
    aws.call("autoscaling", "CreateOrUpdateTags", Tags=[
        {"ResourceId": n, "ResourceType": "auto-scaling-group", "Key": LOCK_TAG, "Value": render(holder),
         "PropagateAtLaunch": False} for n in names])


def lock(aws, names, **kw):
    kw.setdefault("stale_seconds", 3600)
    return GroupLock(aws, names, **kw)


def test_lock_is_a_tag_on_every_group_and_a_second_run_refuses(groups):
    aws, names = groups
    first = lock(aws, names)
    assert first.acquire("run-1", settle_seconds=0) == (True, None)
    assert {h["run"] for h in first.holders().values()} == {"run-1"}
    assert first.acquire("run-1", settle_seconds=0)[0] is False  # idempotent for the holder
    with pytest.raises(LockError) as err:
        lock(aws, names).acquire("run-2", settle_seconds=0)
    assert "Another rollout holds the lock" in err.value.message and "run run-1" in err.value.message


def test_lock_of_a_process_gone_from_this_host_is_taken_over_and_reported(groups):
    aws, names = groups
    proc = subprocess.Popen(["true"])
    proc.wait()
    put(aws, names, {"run": "crashed", "start": now_iso(), "beat": now_iso(), "host": socket.gethostname(),
                     "pid": "%d:12345" % proc.pid})
    changed, note = lock(aws, names).acquire("run-3", settle_seconds=0)
    assert changed and "took over the lock of run crashed" in note


def test_silent_lock_from_elsewhere_is_reported_stale_with_how_to_clear_it(groups):
    aws, names = groups
    put(aws, names, {"run": "old-run", "start": "2020-01-01T00:00:00Z", "beat": "2020-01-01T00:00:00Z",
                     "host": "awx-job-123", "pid": "77:1"})
    with pytest.raises(LockError) as err:
        lock(aws, names).acquire("run-4", settle_seconds=0)
    assert "probably stale" in err.value.message and "-e upgrade_break_lock=old-run" in err.value.message
    changed, note = lock(aws, names).acquire("run-4", break_lock="old-run", settle_seconds=0)
    assert changed and "broke the lock" in note


def test_a_run_that_lost_its_lock_stops(groups):
    aws, names = groups
    mine = lock(aws, names)
    mine.acquire("run-5", settle_seconds=0)
    mine.check("run-5")
    put(aws, names[:1], {"run": "intruder", "start": now_iso(), "host": "elsewhere"})
    with pytest.raises(LockError) as err:
        mine.check("run-5")
    assert "no longer holds the rollout lock" in err.value.message


def test_release_only_removes_our_own_lock(groups):
    aws, names = groups
    lock(aws, names).acquire("run-6", settle_seconds=0)
    assert lock(aws, names).release("someone-else") == []
    assert sorted(lock(aws, names).release("run-6")) == sorted(names)
    assert all(not h for h in lock(aws, names).holders().values())


def test_process_liveness_uses_pid_and_start_time():
    me = "%d:%s" % (os.getpid(), open("/proc/%d/stat" % os.getpid()).read().rsplit(")", 1)[1].split()[19])
    assert process_alive(me) is True
    assert process_alive("%d:0" % os.getpid()) is False  # same pid, other start time: a reused pid
    assert process_alive(None) is None
    assert holder_process() is None  # pytest is not ansible-playbook
