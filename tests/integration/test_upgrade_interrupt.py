"""Killing ansible-playbook at several points of a rolling replacement, then running it again,
finishes the upgrade with every invariant holding (state is read from the world, not memory)."""
import signal
import time

import pytest
from upgrade_support import TASK, assert_invariants, playbook

SCENARIO = "upgrade-replicated.yml"  # 3 mixed nodes, ~3 s drains, 3 s boot


@pytest.fixture
def sb(sandbox_process):
    box = sandbox_process(SCENARIO)
    box.initial = {i["InstanceId"] for g in box.groups() for i in g["Instances"]}
    return box


def terminated(sb):
    return {i["InstanceId"] for g in sb.groups() for i in g["Instances"]} != sb.initial


def during_drain(sb, _out):
    return bool(sb.es("/_nodes/shutdown")["nodes"]) and sb.es("/_cluster/health")["relocating_shards"] > 0


def right_after_terminate(sb, _out):
    return terminated(sb)


def waiting_for_join(sb, _out):
    if not terminated(sb) or sb.es("/_cluster/health")["number_of_nodes"] >= 3:
        return False
    time.sleep(1)  # well inside the 3 s boot
    return True


def waiting_for_green(sb, _out):
    health = sb.es("/_cluster/health")
    return terminated(sb) and health["number_of_nodes"] == 3 and health["status"] == "yellow"


REBALANCE = "cluster.routing.rebalance.enable"
OUTGOING = "cluster.routing.allocation.node_concurrent_outgoing_recoveries"


def rebalance_settings(sb, key=REBALANCE):
    settings = sb.es("/_cluster/settings?flat_settings=true")
    return {scope: settings.get(scope, {}).get(key) for scope in ("persistent", "transient")}


def finish_and_check(sb, args):
    rerun = playbook(sb, *args)
    assert rerun.rc == 0, rerun.output[-4000:]
    assert "took over the lock of run" in rerun.output
    audit = sb.audit()
    assert_invariants(audit)
    assert audit["nodes_replaced"] == 3, audit
    assert sb.exclusions() == ([], [], [])
    tags = [t["Key"] for g in sb.groups() for t in g.get("Tags", [])]
    assert "logstack:rollout-lock" not in tags and "logstack:rollout-surge" not in tags
    assert "logstack:rollout-rebalance" not in tags
    return rerun


@pytest.mark.parametrize("point,args,sig", [
    (during_drain, [], signal.SIGKILL),  # one task per step, as in production
    (right_after_terminate, ["-e", "upgrade_task_per_step=false"], signal.SIGKILL),
    (waiting_for_join, ["-e", "upgrade_task_per_step=false"], signal.SIGTERM),
    (waiting_for_green, ["-e", "upgrade_strategy=terminate", "-e", "upgrade_task_per_step=false"], signal.SIGKILL),
], ids=["during_drain", "right_after_terminate", "waiting_for_join", "waiting_for_green"])
def test_rerun_after_kill_finishes_the_upgrade_with_every_invariant(sb, point, args, sig):
    if point is waiting_for_green:
        # Replicas of a departed node wait 6 s before they are rebuilt (ES default 1m): the replacement
        # has joined (3 s boot) while the cluster is still yellow, so the run is waiting for green.
        sb.es("/_all/_settings", "PUT", {"index.unassigned.node_left.delayed_timeout": "6s"})
    # The operator's rebalancing setting: one case with a persistent value, the others unset.
    original = {"persistent": "replicas" if point is during_drain else None, "transient": None}
    if original["persistent"]:
        sb.es("/_cluster/settings", "PUT", {"persistent": {REBALANCE: original["persistent"]}})
    first = playbook(sb, *args, kill_when=point, sig=sig)
    assert first.killed, "the run ended before reaching the point: " + first.output[-2000:]
    assert first.rc != 0
    # Killed mid-run: rebalancing is paused and the operator's value is kept on the groups.
    assert rebalance_settings(sb)["persistent"] == "none"
    assert all(any(t["Key"] == "logstack:rollout-rebalance" for t in g.get("Tags", [])) for g in sb.groups())
    if not args:  # one task per step: the output names the node and each step it went through
        assert TASK + "Step prepare: voting exclusion, wait for it to take effect | node-" in first.output
    assert_invariants(sb.audit(), complete=False)
    finish_and_check(sb, args)
    # The rerun saw the tag, not the paused value, and put the operator's value back (unset as unset).
    assert rebalance_settings(sb) == original
    assert rebalance_settings(sb, OUTGOING) == {"persistent": None, "transient": None}
