"""The operator's side under ansible-runner laid out as AWX runs a job (tests/awx/test_runner.py):
the progress of each drain (bytes left, rate, ETA) in the job's output while it waits; a survey
typo fails before anything changes; a failed job leaves no lock; the lock of a dead job (another
container, another host name) is taken over by its heartbeat's age; a live one refuses with the
run id the survey's "Break the lock of run" takes."""
import json
import os
import re
import subprocess
import sys

import boto3
import pytest
import yaml
from test_runner import ROOT, audit_nodes, awx_private_data_dir, run_job

from ansible_collections.logstack.elk.plugins.module_utils.rollout.lock import LOCK_TAG, now_iso, render
from tests.sandbox_plugin import Sandbox

pytestmark = pytest.mark.xdist_group("awx-operator")


def autoscaling(env):
    return boto3.client("autoscaling", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def lock_of(env):
    return [t["Value"] for g in autoscaling(env).describe_auto_scaling_groups()["AutoScalingGroups"]
            for t in g.get("Tags", []) if t["Key"] == LOCK_TAG]


def put_lock(env, holder):
    asg = autoscaling(env)
    names = [g["AutoScalingGroupName"] for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]]
    asg.create_or_update_tags(Tags=[{"ResourceId": n, "ResourceType": "auto-scaling-group", "Key": LOCK_TAG,
                                     "Value": render(holder), "PropagateAtLaunch": False} for n in names])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """The sandbox with small.yml's replicated indices at 60 MB: drains of a few seconds."""
    state = tmp_path_factory.mktemp("sandbox-state")
    with open(os.path.join(ROOT, "sandbox", "scenarios", "small.yml"), encoding="utf-8") as fh:
        scenario = yaml.safe_load(fh)
    for index in scenario["indices"]:
        if index["replicas"]:
            index["size"] = "60MB"
    sb = Sandbox(scenario, state)
    yield dict(sb.env, AWS_EC2_METADATA_DISABLED="true"), state
    sb.down()


@pytest.fixture(scope="module")
def layout(sandbox, tmp_path_factory):
    """One private data directory (project sync and inventory import take minutes); each job below
    gets its own survey answers and JOB_ID written into it, as AWX writes them for each job."""
    env, _ = sandbox
    return awx_private_data_dir(tmp_path_factory.mktemp("awx-operator"), "inventories/sandbox", extravars={},
                                envvars=env)


def job(layout, env, monkeypatch, extravars, job_id, playbook="playbooks/upgrade-es.yml"):
    envvars = yaml.safe_load((layout / "env" / "envvars").read_text())
    envvars["JOB_ID"] = str(job_id)  # AWX sets it in every job's environment
    (layout / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    (layout / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    runner, events, failed = run_job(layout, playbook, monkeypatch)
    return runner, events, " ".join(" ".join(str(m) for m in failed).split())


def test_a_job_needing_confirmation_stops_after_the_plan_without_the_survey_answer(sandbox, layout, monkeypatch):
    env, state = sandbox
    runner, events, failed = job(layout, env, monkeypatch, {"upgrade_confirm": True}, 38)
    assert runner.status == "failed"
    assert 'the survey answer "Confirm the plan" = true (upgrade_confirmed); nothing was changed' in failed
    tasks = [e["event_data"].get("task", "") for e in events if e["event"] == "runner_on_ok"]
    assert "Show the plan" in tasks
    assert lock_of(env) == []
    assert all(n == 0 for n in [json.loads(subprocess.run(
        [sys.executable, "-m", "sandbox", "audit", "--state", str(state)], cwd=ROOT, capture_output=True, text=True,
        check=True).stdout.strip().splitlines()[-1])["nodes_replaced"]])


def test_the_job_output_shows_each_drains_progress_while_it_waits(sandbox, layout, monkeypatch):
    env, state = sandbox
    # upgrade_confirm on, confirmed by the survey answer: the job runs
    runner, events, failed = job(layout, env, monkeypatch, {"upgrade_wait_seconds": 1, "upgrade_confirm": True,
                                                             "upgrade_confirmed": "true"}, 39)
    assert (runner.status, failed) == ("successful", "")
    progress = re.compile(r"progress: \[sandbox\] (node-\w+) \(i-\w+\) drain: [0-9.]+ [KMG]?B left, ")
    drains = {}  # node -> (event counter of its first progress line, counter of its drain task's result)
    for e in events:
        match = progress.search(e.get("stdout") or "")
        if match:
            drains.setdefault(match.group(1), [e["counter"], None])
        task = e.get("event_data", {}).get("task", "")
        if e["event"] == "runner_on_ok" and task.startswith("Step drain: "):
            node = task.split("| ", 1)[1].split(" (", 1)[0]
            if node in drains:
                drains[node][1] = e["counter"]
    assert drains, runner.stdout.read()[-3000:]
    # each progress line is an event of the job's output before its drain finished: shown while it waits
    assert all(first < done for first, done in drains.values()), drains
    assert [e for e in events if e["event"] == "runner_retry"]
    report = [e for e in events if e["event"] == "playbook_on_stats"][-1]["event_data"]["artifact_data"]
    assert len(report["upgrade_reports"]["sandbox"]["summary"]) == audit_nodes(state)


def test_a_survey_typo_fails_the_job_before_anything_changes(sandbox, layout, monkeypatch):
    env, state = sandbox
    runner, events, failed = job(layout, env, monkeypatch, {"upgrade_stratgy": "surge"}, 40)
    assert runner.status == "failed"
    assert "Unknown variable(s) upgrade_stratgy" in failed
    assert not [e for e in events if e["event"] == "runner_on_ok"
                and "Take the rollout lock" in e["event_data"].get("task", "")]
    assert lock_of(env) == []


def test_a_job_that_cannot_reach_elasticsearch_leaves_no_lock(sandbox, layout, monkeypatch):
    env, _ = sandbox
    runner, _, failed = job(layout, env, monkeypatch, {"es_url": "http://127.0.0.1:1", "es_max_retries": 0}, 41)
    assert runner.status == "failed" and "Cannot connect to Elasticsearch at http://127.0.0.1:1" in failed
    assert lock_of(env) == []


def test_a_live_lock_refuses_with_its_run_id_and_the_survey_answer_breaks_it(sandbox, layout, monkeypatch):
    env, state = sandbox
    put_lock(env, {"run": "20261204T101010Z-aaaaaa", "start": now_iso(), "beat": now_iso(),
                   "host": "automation-job-42-x1y2z", "pid": "9:1", "job": "42"})
    runner, _, failed = job(layout, env, monkeypatch, {}, 43)
    assert runner.status == "failed"
    assert "Another rollout holds the lock" in failed and "AWX job 42" in failed
    assert '"Break the lock of run" = 20261204T101010Z-aaaaaa' in failed
    runner, events, failed = job(layout, env, monkeypatch,
                                 {"upgrade_break_lock": "20261204T101010Z-aaaaaa"}, 44)
    assert (runner.status, failed) == ("successful", "")
    assert "broke the lock of run 20261204T101010Z-aaaaaa" in runner.stdout.read()
    assert lock_of(env) == []


def test_the_lock_of_a_dead_job_in_another_container_is_taken_over_by_heartbeat_age(sandbox, layout,
                                                                                     monkeypatch):
    env, _ = sandbox
    put_lock(env, {"run": "20261204T090000Z-bbbbbb", "start": "2020-12-04T09:00:00Z",
                   "beat": "2020-12-04T09:00:10Z", "host": "automation-job-45-k3j4h", "pid": "9:1", "job": "45"})
    runner, _, failed = job(layout, env, monkeypatch, {"upgrade_lock_stale_seconds": 600}, 46)
    assert (runner.status, failed) == ("successful", "")
    out = " ".join(runner.stdout.read().split())
    assert "took over the lock of run 20261204T090000Z-bbbbbb" in out and "AWX job 45" in out
    assert lock_of(env) == []
