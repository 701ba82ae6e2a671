"""upgrade-es.yml on a small real Elasticsearch cluster (3 mixed nodes, 7.16.3 -> 7.17.29):
surge, the terminate strategy's refusal of a 0-replica index, a replacement that never joins,
cluster-info, and ansible-playbook killed mid-drain / mid-join then run again."""
import json
import re
import signal
import time

import pytest

from tests.integration.upgrade_support import assert_invariants, playbook
from tests.real.conftest import RealSandbox, scenario

TIMEOUTS = "@sandbox/real/timeouts.yml"


def instance_ids(sb):
    return sorted(i["InstanceId"] for g in sb.groups() for i in g["Instances"])


@pytest.fixture(scope="module")
def untouched(tmp_path_factory):
    """One real cluster for the runs that must change nothing (refusals, cluster-info). One of its
    instances boots 20 s after the others (fault slow_boot), as EC2 instances do: the two first form
    the cluster without it, and it must still join (the cluster-info test counts 3 nodes)."""
    spec = scenario("real-small.yml", writer=None,
                    faults=[{"type": "slow_boot", "node": "es-nodes/0", "for_seconds": 20}])
    sb = RealSandbox(spec, tmp_path_factory.mktemp("real-untouched"))
    yield sb
    sb.down()


def test_terminate_refuses_a_zero_replica_index_on_a_real_cluster_and_changes_nothing(untouched):
    sb = untouched
    before = instance_ids(sb)
    settings = sb.es("/_cluster/settings?flat_settings=true")
    run = playbook(sb, "-e", TIMEOUTS, "-e", "upgrade_strategy=terminate", timeout=600)
    assert run.rc != 0
    text = " ".join(run.output.split())
    assert "zero_replica_indices: index(es) metrics-2024.11 have 0 replicas" in text, run.output[-3000:]
    assert instance_ids(sb) == before
    assert sb.es("/_cluster/settings?flat_settings=true") == settings
    assert not [t for g in sb.groups() for t in g.get("Tags", []) if t["Key"].startswith("logstack:rollout")]
    audit = sb.audit()
    assert audit["nodes_replaced"] == 0 and audit["outdated_nodes_left"] == 3 and audit["docs_lost"] == 0


def test_cluster_info_maps_every_real_node_to_its_instance_and_reports_it_outdated(untouched):
    sb = untouched
    import os
    import subprocess
    import sys

    from tests.integration.upgrade_support import ROOT
    env = dict(os.environ, **sb.env, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                          "playbooks/cluster-info.yml", "-i", "inventories/sandbox"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    text = " ".join(out.stdout.split())  # the YAML callback folds long lines
    assert "elasticsearch 7.16.3 logs-real-small: green, 3 nodes (3 data)" in text, text[-3000:]
    assert text.count("asg=es-nodes") == 3 and text.count("OUTDATED(image") == 3, text[-3000:]
    assert "nodes without an instance: none" in text, text[-3000:]
    late = [e for e in sb.events() if e["event"] == "fault"]
    assert len(late) == 1 and "boots 20s after the others" in late[0]["message"], late
    for node in sb.es("/_nodes?filter_path=nodes.*.name")["nodes"].values():
        assert node["name"] in text.split("outdated nodes:")[1], text[-3000:]
    assert sb.audit()["mutating_requests"] == 0


def test_surge_on_a_real_cluster_never_has_a_node_fewer(real_sandbox):
    sb = real_sandbox("real-small.yml")
    run = playbook(sb, "-e", TIMEOUTS, "-e", "upgrade_strategy=surge", "-e", "upgrade_task_per_step=false",
                   timeout=1200)
    assert run.rc == 0, run.output[-4000:]
    audit = sb.audit()
    assert_invariants(audit)
    assert audit["max_nodes_out"] == 0, audit
    assert audit["nodes_replaced"] == 3 and audit["versions_after"] == ["7.17.29"], audit
    group = sb.groups()[0]
    assert group["DesiredCapacity"] == 3 and len(group["Instances"]) == 3
    assert not [t for t in group.get("Tags", []) if t["Key"].startswith("logstack:rollout")]


def test_a_real_replacement_that_never_joins_fails_the_run_and_no_other_node_is_touched(real_sandbox):
    spec = scenario("real-small.yml", faults=[{"type": "never_join", "group": "es-nodes", "nth_new_instance": 1}])
    sb = real_sandbox(spec)
    before = set(instance_ids(sb))
    run = playbook(sb, "-e", TIMEOUTS, "-e", json.dumps({"upgrade_timeouts": {"join": 30}}),
                   "-e", "upgrade_task_per_step=false", timeout=900)
    assert run.rc != 0
    text = " ".join(run.output.split())
    assert "step wait_joined: gave up after 30s waiting for every instance of the group to join" in text, \
        run.output[-3000:]
    assert len(before - set(instance_ids(sb))) == 1, "exactly one instance terminated"
    audit = sb.audit()
    assert audit["docs_lost"] == 0 and audit["red_seconds"] == 0, audit
    assert audit["outdated_nodes_left"] == 2, audit


def excluding_and_relocating(sb, _out):
    settings = sb.es("/_cluster/settings?flat_settings=true")
    excluded = any(k.startswith("cluster.routing.allocation.exclude") and v
                   for scope in settings.values() for k, v in scope.items())
    return excluded and sb.es("/_cluster/health")["relocating_shards"] > 0


def waiting_for_join(sb, _out):
    if instance_ids(sb) == sb.initial or sb.es("/_cluster/health")["number_of_nodes"] >= 3:
        return False
    time.sleep(1)
    return True


def test_kill_9_of_ansible_mid_drain_and_mid_join_on_a_real_cluster_then_a_rerun_finishes(real_sandbox):
    """Two interruptions on one real cluster: SIGKILL while a node drains, rerun; SIGKILL while its
    replacement boots, rerun; the last rerun finishes with every invariant."""
    sb = real_sandbox("real-small.yml")
    for point in (excluding_and_relocating, waiting_for_join):
        sb.initial = instance_ids(sb)
        run = playbook(sb, "-e", TIMEOUTS, "-e", "upgrade_task_per_step=false", kill_when=point,
                       sig=signal.SIGKILL, timeout=900)
        assert run.killed, "the run ended before reaching %s: %s" % (point.__name__, run.output[-2000:])
        assert_invariants(sb.audit(), complete=False)
    rerun = playbook(sb, "-e", TIMEOUTS, "-e", "upgrade_task_per_step=false", timeout=1200)
    assert rerun.rc == 0, rerun.output[-4000:]
    assert "took over the lock of run" in rerun.output
    audit = sb.audit()
    assert_invariants(audit)
    assert audit["nodes_replaced"] == 3 and audit["versions_after"] == ["7.17.29"], audit
    assert sb.exclusions() == ([], [])
    tags = [t["Key"] for g in sb.groups() for t in g.get("Tags", [])]
    assert not [t for t in tags if t.startswith("logstack:rollout")], tags


def test_a_real_node_that_crashes_stops_the_run_and_after_its_instance_is_replaced_the_plan_goes_on(real_sandbox):
    """The real engine's crash fault: the Elasticsearch process of an initial instance is SIGKILLed as the
    run is about to start, its instance stays running (as on EC2). The run refuses to take any node out
    while an instance of the group has no node; no acknowledged document is lost (every index has a
    replica) and the cluster is never red. The operator terminates the crashed instance, the group
    launches a replacement from the new launch template, and the run's plan then takes the two nodes
    left, refusing nothing. (A rerun from a partly replaced group finishing with every invariant is shown
    by the kill -9 test, on the same versions: not run twice.)"""
    spec = scenario("real-small.yml",
                    indices=[{"name": "logs-2024.11.01", "primaries": 2, "replicas": 1, "docs": 2000, "size": "4MB"},
                             {"name": "logs-2024.11.02", "primaries": 2, "replicas": 1, "docs": 2000, "size": "4MB"}],
                    faults=[{"type": "crash", "node": "es-nodes/1", "at_seconds": 0}])
    sb = real_sandbox(spec)
    wait = time.monotonic() + 120
    while sb.es("/_cluster/health")["number_of_nodes"] != 2:
        assert time.monotonic() < wait, "the crashed node never left the cluster"
        time.sleep(1)
    # the sandbox writes its events to events.jsonl from time to time: the crash may not be there yet
    crashed = []
    while not crashed and time.monotonic() < wait + 60:
        crashed = [e["instance_id"] for e in sb.events() if e["event"] == "fault"]
        time.sleep(0 if crashed else 1)
    assert len(crashed) == 1, sb.events()
    ec2 = sb.aws("ec2").describe_instances(InstanceIds=crashed)["Reservations"][0]["Instances"][0]
    assert ec2["State"]["Name"] == "running"  # the process died, not the instance
    before = instance_ids(sb)

    refused = playbook(sb, "-e", TIMEOUTS, "-e", "upgrade_task_per_step=false", timeout=600)
    assert refused.rc != 0
    text = " ".join(refused.output.split())
    assert "instance(s) %s of the groups are not in the cluster" % crashed[0] in text, refused.output[-3000:]
    assert instance_ids(sb) == before
    audit = sb.audit()
    assert audit["docs_lost"] == 0 and audit["red_seconds"] == 0 and audit["writer_docs_indexed"] > 0, audit

    # the operator's fix: terminate the instance whose node is gone; the group replaces it
    sb.aws("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=crashed[0],
                                                                   ShouldDecrementDesiredCapacity=False)
    wait = time.monotonic() + 600
    while sb.es("/_cluster/health")["number_of_nodes"] != 3 or crashed[0] in instance_ids(sb):
        assert time.monotonic() < wait, "the crashed instance's replacement never joined"
        time.sleep(2)
    check = playbook(sb, "-e", TIMEOUTS, "--check", timeout=600)
    assert check.rc == 0, check.output[-4000:]
    plan = check.output[check.output.index("outdated node(s) in this order"):]
    # "- '1 | node-46eb49 (i-...) | 7.16.3 ami-... -> 7.17.29 ..."
    order = [line.split("|")[1].split()[0] for line in plan.splitlines() if re.match(r"^- '[0-9]+ \|", line.strip())]
    versions = {n["name"]: n["version"] for n in sb.es("/_nodes")["nodes"].values()}
    assert sorted(order) == sorted(n for n, v in versions.items() if v == "7.16.3") and len(order) == 2, plan[:2000]
    audit = sb.audit()
    assert_invariants(audit, complete=False)
    assert audit["outdated_nodes_left"] == 2 and audit["docs_lost"] == 0, audit
