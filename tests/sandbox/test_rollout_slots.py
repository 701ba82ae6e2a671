"""A drain does not starve the replica of an index created meanwhile.

The drain step's own code (steps.NodeReplacement, rollout.rebalance) against the sandbox's
Elasticsearch API and its moto: a drain fills the recovery slots, a new index's replica is
throttled (the precondition is checked, not assumed), the step raises the limits by one,
the replica starts, the next poll puts the operator's limits back, and they stay saved.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout import rebalance
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import Options
from ansible_collections.logstack.elk.plugins.module_utils.rollout.node import NodeReplacement

from tests.sandbox_plugin import split_with, wait_for

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
