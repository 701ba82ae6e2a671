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


def test_a_silent_lock_of_another_host_is_taken_over_by_heartbeat_age_naming_its_awx_job(groups):
    # AWX runs every job in a new container: the rerun of a killed job always comes from "another
    # host", so the heartbeat's age decides, not the host name.
    aws, names = groups
    put(aws, names, {"run": "old-run", "start": "2020-01-01T00:00:00Z", "beat": "2020-01-01T00:00:00Z",
                     "host": "automation-job-123-abcde", "pid": "77:1", "job": "123"})
    changed, note = lock(aws, names, hostname="automation-job-124-fghij").acquire("run-4", settle_seconds=0)
    assert changed and "took over the lock of run old-run" in note and "AWX job 123" in note
    assert "heartbeat is" in note and "upgrade_lock_stale_seconds" in note


def test_a_live_lock_of_another_host_refuses_with_the_run_id_to_break_it(groups, monkeypatch):
    aws, names = groups
    put(aws, names, {"run": "busy-run", "start": now_iso(), "beat": now_iso(),
                     "host": "automation-job-7-xyz", "pid": "77:1", "job": "7"})
    with pytest.raises(LockError) as err:
        lock(aws, names, hostname="automation-job-8-abc").acquire("run-4b", settle_seconds=0)
    assert "-e upgrade_break_lock=busy-run" in err.value.message and "AWX job 7" in err.value.message
    assert '"Break the lock of run" = busy-run' in err.value.message
    monkeypatch.setenv("JOB_ID", "8")
    changed, note = lock(aws, names).acquire("run-4b", break_lock="busy-run", settle_seconds=0)
    assert changed and "broke the lock" in note
    assert {h.get("job") for h in lock(aws, names).holders().values()} == {"8"}


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
