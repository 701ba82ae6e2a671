"""A drain does not starve the replica of an index created meanwhile.

The drain step's own code (steps.NodeReplacement, rollout.rebalance) against the sandbox's
Elasticsearch API and its moto: a drain fills the recovery slots, a new index's replica is
throttled (the precondition is checked, not assumed), the step raises the limits by one,
the replica starts, the next poll puts the operator's limits back, and they stay saved.
"""
from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout import rebalance
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster
from ansible_collections.logstack.elk.plugins.module_utils.rollout.diagnosing import StepFailed
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import Options
from ansible_collections.logstack.elk.plugins.module_utils.rollout.node import NodeReplacement

from tests.sandbox_plugin import SCENARIOS, split_with, wait_for

GENERIC = "cluster.routing.allocation.node_concurrent_recoveries"


def _before_a_drain(sandbox_factory, tmp_path, monkeypatch):
    """Three 1 GB shards with a replica each at 10 MB/s (a drain lasts minutes, the test seconds); the
    operator allows one recovery per node. Returns (sbx, cluster, aws, groups, victim, node_id, step)."""
    sbx = sandbox_factory(split_with(
        tmp_path, [{"name": "big", "primaries": 3, "replicas": 1, "docs": 300, "size": "3GB"}], "10MB"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    cluster = Cluster(EsClient([sbx.sb.es_url], max_retries=0))
    aws = Aws(region="us-east-1", endpoint_url=sbx.sb.world.endpoint, max_attempts=2)
    groups = [g["AutoScalingGroupName"] for g in sbx.asg.describe_auto_scaling_groups()["AutoScalingGroups"]]
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {GENERIC: "1"}})
    victim = next(r["node"] for r in sbx.shards("big") if r["prirep"] == "p")
    node_id = sbx.node_by_name(victim)[0]
    step = NodeReplacement(cluster, aws, Options(asg_names=groups), sbx.instance_of(victim), victim, node_id,
                           "es-data", poll_interval=0.2)
    return sbx, cluster, aws, groups, victim, node_id, step


def _drain_meets_a_new_index(sandbox_factory, tmp_path, monkeypatch):
    """A drain under way without the step's reservation (a node with more copies than the reservation
    covers behaves so), then a new index whose replica only throttling keeps unassigned: the
    precondition is checked, not assumed."""
    sbx, cluster, aws, groups, victim, node_id, step = _before_a_drain(sandbox_factory, tmp_path, monkeypatch)
    cluster.put_shutdown(node_id, "test drain")
    wait_for(lambda: any(r["state"] == "RELOCATING" for r in sbx.shards("big")), timeout=20, what="the drain to start")
    sbx.es.ok("PUT", "/fresh", {"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    explain = sbx.es.ok("POST", "/_cluster/allocation/explain", {"index": "fresh", "shard": 0, "primary": False})
    assert explain["can_allocate"] == "throttled", explain
    return sbx, cluster, aws, groups, victim, node_id, step


def test_the_drain_reserves_slots_so_a_replica_of_a_new_index_never_waits(sandbox_factory, tmp_path, monkeypatch):
    sbx, cluster, aws, groups, victim, node_id, step = _before_a_drain(sandbox_factory, tmp_path, monkeypatch)
    on_victim = [r for r in sbx.shards("big") if r["node"] == victim]

    changed, reserved = step._start_drain(cluster.view())
    assert changed and reserved, reserved
    # every copy on the node moves at once, and the operator's one slot per node stays free
    wait_for(lambda: sum(r["state"] == "RELOCATING" for r in sbx.shards("big")) == len(on_victim), timeout=10,
             what="all the node's copies to relocate at once")
    sbx.es.ok("PUT", "/fresh", {"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    wait_for(lambda: all(r["state"] == "STARTED" for r in sbx.shards("fresh")) and len(sbx.shards("fresh")) == 2,
             timeout=5, what="the new index's copies to start")
    audit = sbx.audit()
    assert audit["degraded_seconds_excluding_version_skew"] == 0, audit["degraded_episodes_excluding_version_skew"]
    assert any(r["state"] == "RELOCATING" for r in sbx.shards("big"))  # the drain still under way
    # the operator's values were saved before anything changed, and come back at the drain's end
    assert rebalance.saved(aws, groups)["incoming.persistent"] is None
    assert rebalance.restore_slots(cluster, aws, groups) == "recovery limits back to the operator's values"
    assert sbx.es.get("/_cluster/settings?flat_settings=true")["persistent"] == {GENERIC: "1"}


def test_a_throttled_replica_of_a_new_index_gets_a_slot_and_the_limits_come_back(sandbox_factory, tmp_path,
                                                                                 monkeypatch):
    # The operator allows one recovery per node (see the helper); the run must put exactly that back.
    sbx, cluster, aws, groups, victim, node_id, step = _drain_meets_a_new_index(sandbox_factory, tmp_path, monkeypatch)

    done, detail = step._drained()
    assert not done
    assert "raised recovery limits to node_concurrent_incoming_recoveries=2, node_concurrent_outgoing_recoveries=2" in detail, detail
    assert "fresh" in detail
    wait_for(lambda: all(r["state"] == "STARTED" for r in sbx.shards("fresh")), timeout=5,
             what="the new replica to start once a slot is free")
    assert any(r["state"] == "RELOCATING" for r in sbx.shards("big"))  # the drain goes on meanwhile
    # No replica waits any more: the next poll puts the operator's limit back at once (the drain
    # takes raised slots too; kept raised, it would hold them and the next new index would wait).
    done, detail = step._drained()
    assert not done and "raised" not in detail, detail
    assert sbx.es.get("/_cluster/settings?flat_settings=true")["persistent"] == {GENERIC: "1"}
    # A run killed while they were raised: the rerun's drain puts them back at its first poll.
    assert rebalance.free_a_slot(cluster, aws, groups) is not None
    rerun = NodeReplacement(cluster, aws, Options(asg_names=groups), sbx.instance_of(victim), victim, node_id,
                            "es-data", poll_interval=0.2)
    assert not rerun._drained()[0]
    assert sbx.es.get("/_cluster/settings?flat_settings=true")["persistent"] == {GENERIC: "1"}

    # The operator's values were saved before anything changed; the cap holds.
    assert rebalance.saved(aws, groups) == {
        "%s.%s" % (short, scope): None for short in rebalance.SETTINGS for scope in rebalance.SCOPES}
    assert rebalance.free_a_slot(cluster, aws, groups) is not None  # +1
    assert rebalance.free_a_slot(cluster, aws, groups) is not None  # +2
    assert rebalance.free_a_slot(cluster, aws, groups) is None  # never more than two above the operator's

    assert rebalance.restore_slots(cluster, aws, groups) == "recovery limits back to the operator's values"
    persistent = sbx.es.get("/_cluster/settings?flat_settings=true")["persistent"]
    assert persistent == {GENERIC: "1"}
    assert rebalance.restore(cluster, aws, groups).startswith("rebalancing and recovery limits restored")
    assert rebalance.saved(aws, groups) is None


def test_at_the_cap_the_drain_relocation_holding_the_slot_is_cancelled_and_no_copy_is_lost(sandbox_factory, tmp_path,
                                                                                           monkeypatch):
    # With no raise left (cap 0 here, two in a run), the step cancels the drain relocation that
    # holds the slot the new replica needs: ES gives the freed slot to the unassigned replica first,
    # and the relocation's source copy stays started (ES's CancelAllocationCommand on the target).
    monkeypatch.setattr(rebalance, "MAX_EXTRA_SLOTS", 0)
    sbx, cluster, aws, groups, victim, node_id, step = _drain_meets_a_new_index(sandbox_factory, tmp_path, monkeypatch)
    before = {(r["shard"], r["prirep"]) for r in sbx.shards("big") if r["state"] in ("STARTED", "RELOCATING")}

    done, detail = step._drained()
    assert not done and "cancelled the relocation of [big][" in detail and "fresh" in detail, detail
    wait_for(lambda: all(r["state"] == "STARTED" for r in sbx.shards("fresh")), timeout=5,
             what="the new replica to start in the freed slot")
    # every copy of big that was active is still active: the cancelled relocation's source stays
    after = {(r["shard"], r["prirep"]) for r in sbx.shards("big") if r["state"] in ("STARTED", "RELOCATING")}
    assert after == before
    assert any(e["event"] == "relocation_cancelled" for e in sbx.sb.cluster.events)
    assert sbx.audit()["docs_lost"] == 0
    # and the drain picks the relocation up again once a slot is free
    wait_for(lambda: any(r["state"] == "RELOCATING" for r in sbx.shards("big")), timeout=10,
             what="the drain to go on")


def _throttled(sbx, index):
    return sbx.es.ok("POST", "/_cluster/allocation/explain",
                     {"index": index, "shard": 0, "primary": False})["can_allocate"] == "throttled"


def test_relocation_cancels_are_bounded_per_drain_across_the_steps_calls(sandbox_factory, tmp_path, monkeypatch):
    # At the cap, each cancel wastes what the relocation copied; a burst of new indices must not keep
    # the drain from finishing: at most MAX_CANCELS per drain, counted in the rebalance tag.
    monkeypatch.setattr(rebalance, "MAX_EXTRA_SLOTS", 0)
    monkeypatch.setattr(rebalance, "MAX_CANCELS", 1)
    sbx, cluster, aws, groups, victim, node_id, step = _drain_meets_a_new_index(sandbox_factory, tmp_path, monkeypatch)
    done, detail = step._drained()
    assert not done and "cancelled the relocation of [big][" in detail, detail
    wait_for(lambda: all(r["state"] == "STARTED" for r in sbx.shards("fresh")), timeout=5, what="the first replica")
    sbx.es.ok("PUT", "/fresh2", {"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    wait_for(lambda: _throttled(sbx, "fresh2"), timeout=10, what="the next new replica to be throttled")
    # the step's next call (a new module call) reads the count
    rerun = NodeReplacement(cluster, aws, Options(asg_names=groups), sbx.instance_of(victim), victim, node_id,
                            "es-data", poll_interval=0.2)
    done, detail = rerun._drained()
    assert not done and "1 drain relocation(s) already cancelled (at most 1 per drain)" in detail, detail
    assert "fresh2" in detail
    assert sum(e["event"] == "relocation_cancelled" for e in sbx.sb.cluster.events) == 1
    assert rebalance.restore(cluster, aws, groups).startswith("rebalancing and recovery limits restored")
    assert sbx.es.get("/_cluster/settings?flat_settings=true")["persistent"] == {GENERIC: "1"}


def test_raised_limits_go_back_when_another_node_leaves_mid_drain_and_stay_back(sandbox_factory, tmp_path,
                                                                                 monkeypatch):
    # The reservation is for the drain's copies; a node failing meanwhile has its copies rebuilt within the
    # operator's limits (Elasticsearch keeps them unassigned for delayed_timeout first, 1m by default).
    sbx, cluster, aws, groups, victim, node_id, step = _before_a_drain(sandbox_factory, tmp_path, monkeypatch)
    sbx.es.ok("PUT", "/big/_settings", {"index.unassigned.node_left.delayed_timeout": "1m"})
    _changed, reserved = step._start_drain(cluster.view())
    assert reserved and sbx.es.get("/_cluster/settings?flat_settings=true")["persistent"] != {GENERIC: "1"}
    other = next(n["name"] for n in sbx.nodes().values() if "data" in n["roles"] and n["name"] != victim)
    sbx.terminate(other)
    wait_for(lambda: other not in [n["name"] for n in sbx.nodes().values()], what="the other node to leave")
    done, detail = step._drained()
    assert not done and "left the cluster during the drain: recovery limits back to the operator's values" in detail, \
        detail
    assert sbx.es.get("/_cluster/settings?flat_settings=true")["persistent"] == {GENERIC: "1"}
    # the step's next call does not reserve again while this drain lasts
    rerun = NodeReplacement(cluster, aws, Options(asg_names=groups), sbx.instance_of(victim), victim, node_id,
                            "es-data", poll_interval=0.2)
    rerun._start_drain(cluster.view())
    done, detail = rerun._drained()
    assert not done and "operator's values" in detail, detail
    assert sbx.es.get("/_cluster/settings?flat_settings=true")["persistent"] == {GENERIC: "1"}


def test_a_drain_that_gives_up_puts_its_raised_limits_back_at_once(sandbox_factory, tmp_path, monkeypatch):
    sbx, cluster, aws, groups, victim, node_id, _step = _before_a_drain(sandbox_factory, tmp_path, monkeypatch)
    step = NodeReplacement(cluster, aws, Options(asg_names=groups), sbx.instance_of(victim), victim, node_id,
                           "es-data", poll_interval=0.2, timeouts={"drain": 1})
    with pytest.raises(StepFailed) as err:
        step.run("drain")  # 3 GB at 10 MB/s: not in a second
    assert "step drain" in err.value.message and step.reserved and any(step.reserved.values())
    assert sbx.es.get("/_cluster/settings?flat_settings=true")["persistent"] == {GENERIC: "1"}
    assert rebalance.saved(aws, groups) is not None  # the operator's values stay saved for the unlock


def test_at_the_cap_the_relocation_cancelled_is_the_one_into_the_node_elasticsearch_would_pick(sandbox_factory,
                                                                                              tmp_path, monkeypatch):
    # Elasticsearch allocates an unassigned replica only to the lowest-weight node answering YES or THROTTLE;
    # when two nodes are throttled, freeing a slot on the heavier one leaves the replica waiting.
    with open(os.path.join(SCENARIOS, "split.yml"), encoding="utf-8") as fh:
        scenario = yaml.safe_load(fh)
    pin = {"index.routing.allocation.require.aws_availability_zone": "us-east-1a"}
    scenario["groups"] = [{"name": "es-master", "role": "master", "size": 3, "ami": "es-8.14"},
                          {"name": "es-data-v", "role": "data", "size": 1, "ami": "es-8.14", "zone": "us-east-1a"},
                          {"name": "es-data", "role": "data", "size": 3, "ami": "es-8.14", "zone": "us-east-1b"}]
    scenario["indices"] = [{"name": n, "primaries": 1, "replicas": 0, "docs": 100, "size": "1GB", "settings": pin}
                           for n in ("big1", "big2")]
    scenario["timing"]["recovery_bytes_per_second"] = "50MB"
    path = tmp_path / "four-data.yml"
    path.write_text(yaml.safe_dump(scenario))
    sbx = sandbox_factory(str(path))
    cluster = Cluster(EsClient([sbx.sb.es_url], max_retries=0))
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {
        "cluster.routing.allocation.node_concurrent_incoming_recoveries": "1",
        "cluster.routing.allocation.node_concurrent_outgoing_recoveries": "5"}})
    victim = sbx.shards("big1")[0]["node"]
    assert sbx.shards("big2")[0]["node"] == victim
    light, heavy, home = sorted(n["name"] for n in sbx.nodes().values() if "data" in n["roles"] and n["name"] != victim)
    unpin = {"index.routing.allocation.require.aws_availability_zone": None}

    def copied(index):
        rows = sbx.es.get("/_cat/recovery/%s?format=json&active_only=true" % index)
        return float(rows[0]["bytes_percent"].rstrip("%")) if rows else 0.0
    # big1 relocates into `light` first, big2 into `heavy` later (so it is the least copied); `heavy` also
    # holds an empty shard: `light` is the lowest-weight node, each with its one incoming slot taken
    sbx.es.ok("PUT", "/big1/_settings", dict(unpin, **{"index.routing.allocation.require._name": light}))
    wait_for(lambda: copied("big1") >= 5, what="big1 to be partly copied")
    sbx.es.ok("PUT", "/pad", {"settings": {"number_of_shards": 1, "number_of_replicas": 0,
                                           "index.routing.allocation.require._name": heavy}})
    sbx.es.ok("PUT", "/big2/_settings", dict(unpin, **{"index.routing.allocation.require._name": heavy}))
    wait_for(lambda: sbx.shards("big2")[0]["state"] == "RELOCATING", what="big2 to relocate")
    sbx.es.ok("PUT", "/fresh", {"settings": {"number_of_shards": 1, "number_of_replicas": 0,
                                             "index.routing.allocation.require._name": home}})
    sbx.es.ok("PUT", "/fresh/_settings", {"index.routing.allocation.require._name": None,
                                          "index.number_of_replicas": 1})
    explain = sbx.es.ok("POST", "/_cluster/allocation/explain", {"index": "fresh", "shard": 0, "primary": False})
    decisions = {d["node_name"]: d["node_decision"] for d in explain["node_allocation_decisions"]}
    assert explain["can_allocate"] == "throttled" and decisions[light] == decisions[heavy] == "throttled", decisions
    assert copied("big2") < copied("big1")  # the precondition: the least copied relocation is the useless one

    cancelled = rebalance.cancel_a_relocation(cluster, cluster.view(), victim, explain)
    assert cancelled and cancelled.startswith("cancelled the relocation of [big1][0] to %s" % light), cancelled
    row = wait_for(lambda: next((r for r in sbx.shards("fresh") if r["prirep"] == "r" and r["node"]), None),
                   what="the replica to be allocated in the freed slot")
    assert row["node"] == light, row
