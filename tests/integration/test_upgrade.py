"""Rolling replacement end to end: ansible-playbook playbooks/upgrade-es.yml -i inventories/sandbox
against the sandbox (moto + the Elasticsearch cluster simulator), judged by the sandbox audit."""
import json
import os
import re
import socket
import time

import pytest
from ansible_collections.logstack.elk.plugins.module_utils.rollout.lock import proc_stat
from upgrade_support import TASK, assert_invariants, assert_only_version_skew_degradation, playbook

from tests.sandbox_plugin import Sandbox


def instance_ids(sb):
    return sorted(i["InstanceId"] for g in sb.groups() for i in g["Instances"])


def lock_tags(sb):
    return [t for g in sb.groups() for t in g.get("Tags", []) if t["Key"] == "logstack:rollout-lock"]


def test_full_upgrade_masters_last_then_second_run_changes_nothing(sandbox_process):
    sb = sandbox_process("split.yml")
    elected = sb.es("/_cluster/state/master_node")["master_node"]
    elected_name = sb.es("/_nodes")["nodes"][elected]["name"]
    # An operator's transient rebalancing value: paused for the run, then put back as it was.
    rebalance = "cluster.routing.rebalance.enable"
    sb.es("/_cluster/settings", "PUT", {"transient": {rebalance: "primaries"}})
    run = playbook(sb, "-e", "upgrade_task_per_step=false", "-v")
    assert run.rc == 0, run.output[-3000:]
    audit = sb.audit()
    assert_invariants(audit)
    assert_only_version_skew_degradation(audit)
    assert audit["nodes_replaced"] == 6
    # one visible task result per node, named after it
    assert run.output.count(TASK + "Replace the node (every step of the strategy) | ") == 6
    left = [e for e in sb.events() if e.get("event") in ("node_left", "left")]
    names = [e.get("node") or e.get("name") or e.get("node_name") for e in left]
    assert names, sb.events()[:5]
    assert all(n.startswith("data-") for n in names[:3]) and names[-1] == elected_name, names
    assert sb.exclusions() == ([], [], [])
    settings = sb.es("/_cluster/settings?flat_settings=true")
    assert settings.get("transient", {}).get(rebalance) == "primaries", settings
    assert rebalance not in settings.get("persistent", {}), settings
    assert not [k for k in settings.get("persistent", {}) if "concurrent" in k], settings
    # The console's summary is one line per node; the detail is in the run's report.
    summary = run.summary()
    assert len([line for line in summary if " -> " in line and line.endswith("replaced")]) == 6, summary
    report = run.report()
    assert len(report["terminated_instance_ids"]) == 6, report["terminated_instance_ids"]
    # Each node's call ran the next node's hand_over step (its drain, or for a master its prepare and
    # terminate steps): the hand-over that keeps data moving, or the next master booting, while
    # Ansible starts the next task. That step and the steps it ran are in the next node's own timeline.
    replaced = run.summary("Detail per node (with -v; the report holds it too)")["replaced"]
    assert len(replaced) == 6 and replaced[-1]["handed_over"] == ""  # the last has no next
    for prev, nxt in zip(replaced, replaced[1:]):
        what = prev["handed_over"]
        assert nxt["timeline"][0]["step"] == "hand_over" and nxt["timeline"][0]["detail"] == what, nxt["timeline"]
        if nxt["node_name"].startswith("master-"):
            assert what.startswith("voting configuration exclusion of %s took effect" % nxt["node_name"]), what
            assert "terminated through Auto Scaling" in what, what
            assert [e["step"] for e in nxt["timeline"][:3]] == ["hand_over", "prepare", "terminate"], nxt["timeline"]
            assert nxt["new_nodes"], nxt  # its replacement is reported though the hand-over terminated it
        else:
            assert what.startswith("node shutdown (remove) of %s started" % nxt["node_name"]), what

    again = playbook(sb, "-e", "upgrade_task_per_step=false")
    assert again.rc == 0, again.output[-3000:]
    assert again.recap()["changed"] == 0, again.output[-2000:]
    assert "0 outdated node(s)" in again.output
    assert "terminated instances: none" in again.output
    assert sb.audit()["nodes_replaced"] == 6


def test_check_mode_prints_the_ordered_plan_and_changes_nothing(sandbox_process):
    sb = sandbox_process("split.yml")
    before = instance_ids(sb)
    events_before = len(sb.events())
    run = playbook(sb, "--check")
    assert run.rc == 0, run.output[-3000:]
    plan = run.output[run.output.index("outdated node(s) in this order"):]
    order = [line.split("|")[1].strip() for line in plan.splitlines()
             if re.match(r"^- '[0-9]+ \|", line.strip())][:6]
    assert [n.split("-")[0] for n in order] == ["data"] * 3 + ["master"] * 3, plan[:2000]
    assert "elected master: replaced last" in plan
    audit = sb.audit()
    assert audit["nodes_replaced"] == 0 and audit["outdated_nodes_left"] == audit["outdated_nodes_at_start"]
    assert audit.get("mutating_requests", 0) == 0, audit.get("mutations")
    assert instance_ids(sb) == before
    assert sb.exclusions() == ([], [], [])
    assert lock_tags(sb) == []
    changes = ("node_left", "shutdown", "voting_exclusions", "settings", "voting_config")
    assert [e for e in sb.events()[events_before:] if e.get("event") in changes] == []


REFUSALS = {
    "red": "cluster_not_red: the cluster is red",
    "suspended": "scaling_processes_active: Auto Scaling processes are suspended on es-nodes (Terminate)",
    "headroom": "disk_headroom: its",
    "lock": "Another rollout holds the lock on es-nodes",
    "zero_replicas_terminate": "zero_replica_indices: index(es) single have 0 replicas",
}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    sb = Sandbox("small.yml", tmp_path_factory.mktemp("refusals"))
    yield sb
    sb.down()


def undo(sb, case):
    if case == "red":
        sb.es("/redidx", "DELETE")
    elif case == "suspended":
        sb.aws("autoscaling").resume_processes(AutoScalingGroupName="es-nodes", ScalingProcesses=["Terminate"])
    elif case == "headroom":
        sb.es("/_cluster/settings", "PUT", {"persistent": {
            "cluster.routing.allocation.disk.watermark.low": None,
            "cluster.routing.allocation.disk.watermark.high": None,
            "cluster.routing.allocation.disk.watermark.flood_stage": None}})
    elif case == "lock":
        sb.aws("autoscaling").delete_tags(Tags=[{"ResourceId": "es-nodes", "ResourceType": "auto-scaling-group",
                                                 "Key": "logstack:rollout-lock"}])


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unsafe_start_is_refused_before_any_change(small, case):
    try:
        refused_before_any_change(small, case)
    finally:
        undo(small, case)


def refused_before_any_change(sb, case):
    args = []
    if case == "red":
        sb.es("/redidx", "PUT", {"settings": {"index.routing.allocation.require._name": "nosuchnode",
                                              "number_of_replicas": 0}})
    elif case == "suspended":
        sb.aws("autoscaling").suspend_processes(AutoScalingGroupName="es-nodes", ScalingProcesses=["Terminate"])
    elif case == "headroom":
        # Every data node's disk (500 GiB in the sandbox) must keep 499.9995 GiB free: no room at all.
        sb.es("/_cluster/settings", "PUT", {"persistent": {
            "cluster.routing.allocation.disk.watermark.low": "499.9996gb",
            "cluster.routing.allocation.disk.watermark.high": "499.9995gb",
            "cluster.routing.allocation.disk.watermark.flood_stage": "499.9994gb"}})
    elif case == "lock":
        # A run in progress: fresh heartbeat, held by a live process of this host (us).
        me = "%d:%s" % (os.getpid(), proc_stat(os.getpid())[2])
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sb.aws("autoscaling").create_or_update_tags(Tags=[{
            "ResourceId": "es-nodes", "ResourceType": "auto-scaling-group", "Key": "logstack:rollout-lock",
            "Value": "run=other-run start=%s beat=%s host=%s pid=%s" % (stamp, stamp, socket.gethostname(), me),
            "PropagateAtLaunch": False}])
    elif case == "zero_replicas_terminate":
        args = ["-e", "upgrade_strategy=terminate"]
    time.sleep(1)  # the sandbox writes its event log asynchronously
    before = instance_ids(sb)
    events_before = len(sb.events())
    run = playbook(sb, *args)
    assert run.rc != 0
    assert REFUSALS[case] in run.output.replace("\n", " ").replace("  ", " "), run.output[-3000:]
    assert "Traceback" not in run.output
    assert instance_ids(sb) == before
    assert sb.exclusions() == ([], [], [])
    assert sb.audit()["nodes_replaced"] == 0 and sb.audit()["outdated_nodes_left"] == 3
    changes = ("node_left", "shutdown", "voting_exclusions", "settings", "voting_config")
    assert [e for e in sb.events()[events_before:] if e.get("event") in changes] == []
    if case != "lock":
        assert lock_tags(sb) == [], "a refused run leaves no lock"
    # The report of a refused run says so, with the reason.
    report = run.report()
    assert report["outcome"] == ("failed" if case == "lock" else "refused"), report["outcome"]
    reasons = " ".join(report["refusals"] + [report["failure"]["message"]])
    assert REFUSALS[case] in " ".join(reasons.split()), report
    assert report["nodes"] == [] and report["terminated_instance_ids"] == []
    if case != "lock":  # the plan's reads of the cluster (es_rolling_upgrade_info's samples) are its points
        assert report["health"] and report["health"][-1][1] == report["cluster_at_start"]["status"], report["health"]


def test_replacement_that_never_joins_fails_within_its_timeout_and_no_other_node_is_touched(sandbox_process):
    sb = sandbox_process("upgrade-nojoin.yml")
    before = set(instance_ids(sb))
    run = playbook(sb, "-e", json.dumps({"upgrade_timeouts": {"join": 8}, "upgrade_task_per_step": False}))
    assert run.rc != 0
    text = run.output.replace("\n", " ")
    assert "step wait_joined: gave up after 8s waiting for every instance of the group to join" in " ".join(text.split())
    assert "Left in place:" in text and "the rollout lock" in text
    assert run.seconds < 90
    gone = before - set(instance_ids(sb))
    assert len(gone) == 1, "exactly one instance terminated"
    # The failed run's report: the node it stopped at, why, and what it terminated.
    report = run.report()
    assert report["outcome"] == "failed" and "gave up after 8s" in report["failure"]["message"]
    assert report["terminated_instance_ids"] == sorted(gone)
    assert [n["outcome"] for n in report["nodes"]] == ["failed"]
    assert report["nodes"][0]["old_instance_id"] in gone
    assert [e["step"] for e in report["nodes"][0]["timeline"]][-1] == "wait_left"
    audit = sb.audit()
    assert audit["docs_lost"] == 0 and audit["red_seconds"] == 0
    assert audit["outdated_nodes_left"] == audit["outdated_nodes_at_start"] - 1


def test_surge_adds_a_node_first_and_restores_the_group_size(sandbox_process):
    sb = sandbox_process("small.yml")
    run = playbook(sb, "-e", "upgrade_strategy=surge", "-e", "upgrade_task_per_step=false")
    assert run.rc == 0, run.output[-3000:]
    audit = sb.audit()
    assert_invariants(audit)
    assert_only_version_skew_degradation(audit)
    assert audit["max_nodes_out"] == 0, "surge never has a node fewer than the group's size"
    group = sb.groups()[0]
    assert group["DesiredCapacity"] == 3 and len(group["Instances"]) == 3
    assert not [t for t in group.get("Tags", []) if t["Key"].startswith("logstack:rollout")]


def test_terminate_strategy_loses_no_document_of_replicated_indices(sandbox_process):
    sb = sandbox_process("upgrade-replicated.yml")
    run = playbook(sb, "-e", "upgrade_strategy=terminate", "-e", "upgrade_task_per_step=false")
    assert run.rc == 0, run.output[-3000:]
    assert_invariants(sb.audit())


def test_second_run_started_during_a_run_refuses_and_the_first_finishes(sandbox_process):
    sb = sandbox_process("small.yml")
    second = {}

    def start_second_once_locked(box, _out):
        if not second and lock_tags(box) and box.audit()["nodes_replaced"] >= 1:
            second["run"] = playbook(box, "-e", "upgrade_task_per_step=false")
        return False
    first = playbook(sb, "-e", "upgrade_task_per_step=false", kill_when=start_second_once_locked)
    assert second, "the first run finished before the second could start"
    refused = second["run"]
    assert refused.rc != 0
    assert "Another rollout holds the lock on es-nodes" in " ".join(refused.output.split())
    assert "Preflight" not in refused.output  # refused at the lock, before anything else
    assert first.rc == 0, first.output[-3000:]
    audit = sb.audit()
    assert_invariants(audit)
    assert audit["nodes_replaced"] == 3
    assert lock_tags(sb) == []


def test_drain_with_a_writer_never_loses_a_copy_and_no_replica_of_a_new_index_waits(sandbox_process):
    # The demo cluster: a continuous writer creates an index every 20 s, some while a data node
    # drains. Elasticsearch counts a new replica against the same recovery limits as the drain's
    # relocations; the drain step reserves slots for the drain's copies on top of the operator's
    # (docs/upgrade.md), so such a replica is allocated at once: nothing is degraded but the
    # replicas the node_version decider keeps off older nodes.
    sb = sandbox_process("demo.yml")
    run = playbook(sb, "-e", "upgrade_task_per_step=false", "-v")  # -v: the detail per node
    assert run.rc == 0, run.output[-3000:]
    audit = sb.audit()
    assert_invariants(audit)
    assert audit["writer_docs_indexed"] > 0
    assert audit["degraded_seconds_excluding_version_skew"] == 0, audit["degraded_episodes_excluding_version_skew"]
    assert set(audit["degraded_copy_seconds_by_reason"]) <= {"UNASSIGNED:node_version",
                                                              "INITIALIZING:after_node_version"}, audit
    assert "recovery limits were incoming +" in " ".join(run.output.split())  # the YAML callback folds lines


def test_the_console_names_the_step_that_waits_while_it_waits(sandbox_process, tmp_path):
    # One cluster: the play runs linear, and display_skipped_hosts = True (ansible.cfg) prints a task's
    # banner when it starts, so during a drain the screen's last banner is "Step drain". Under each
    # bounded call's retry line comes the progress line (callback logstack.elk.progress). Several
    # clusters run free, where the banner comes with the result: the retry and progress lines name
    # the step there (test_upgrade_many_clusters.py).
    import yaml
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "sandbox", "scenarios", "small.yml")) as fh:
        scenario = yaml.safe_load(fh)
    for index in scenario["indices"]:
        if index["replicas"]:
            index["size"] = "60MB"  # drains of a few seconds at the scenario's 20 MB/s
    path = tmp_path / "slow-drain.yml"
    path.write_text(yaml.safe_dump(scenario))
    sb = sandbox_process(str(path))
    seen = []

    def drain_on_screen(box, out):
        last = [line for line in out.splitlines() if line.startswith(TASK)][-1:]
        if last and last[0].startswith(TASK + "Step drain: "):
            node = last[0].split("| ", 1)[1].split(" (", 1)[0]
            held = [r for r in box.es("/_cat/shards?format=json") if (r.get("node") or "").startswith(node)]
            seen.append((node, len(held)))
        return False
    run = playbook(sb, kill_when=drain_on_screen)
    assert run.rc == 0, run.output[-3000:]
    moving = [node for node, held in seen if held > 0]
    assert moving, "no drain was seen on screen while it moved shards: %s" % seen
    # the progress line says how much is left on that node, and which copies
    progress = [line for line in run.output.splitlines() if line.startswith("progress: [sandbox] %s " % moving[0])]
    assert [line for line in progress if " drain: " in line and " left" in line], run.output[-3000:]


def test_start_finish_and_failure_are_published_to_the_environments_topic(sandbox_process):
    from notify_support import subscribe
    sb = sandbox_process("small.yml")
    received = subscribe(sb.aws, "logstack-sandbox-notifications")
    run = playbook(sb, "-e", "upgrade_task_per_step=false", "-e", "notify_sns_topic=logstack-sandbox-notifications")
    assert run.rc == 0, run.output[-3000:]
    got = received()
    assert [(m["job"], m["event"], m["cluster"]) for m in got] == [("upgrade", "started", "sandbox"),
                                                                   ("upgrade", "finished", "sandbox")], got
    assert got[0]["subject"] == "[started] upgrade of sandbox" and "3 node(s) to replace" in got[0]["message"]
    assert "replaced" in got[1]["message"] and "report: " in got[1]["message"]
    # A run that fails (another run's lock) says so, with the reason.
    sb.aws("autoscaling").create_or_update_tags(Tags=[{
        "ResourceId": "es-nodes", "ResourceType": "auto-scaling-group", "Key": "logstack:rollout-lock",
        "Value": "run=other-run start=%s beat=%s host=elsewhere pid=1:1" % (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
        "PropagateAtLaunch": False}])
    failed = playbook(sb, "-e", "notify_sns_topic=logstack-sandbox-notifications")
    assert failed.rc != 0
    got = received()
    assert [m["event"] for m in got] == ["failed"] and "holds the lock" in " ".join(got[0]["message"].split()), got
    # No topic set: nothing published, and a topic that does not exist is a warning, not a failure.
    sb.aws("autoscaling").delete_tags(Tags=[{"ResourceId": "es-nodes", "ResourceType": "auto-scaling-group",
                                             "Key": "logstack:rollout-lock"}])
    quiet = playbook(sb, "-e", "notify_sns_topic=no-such-topic")
    assert quiet.rc == 0 and "Not notified (no-such-topic)" in quiet.output, quiet.output[-3000:]
    assert received() == []
