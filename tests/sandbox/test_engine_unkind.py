"""Behaviours the sandbox once made kinder than Elasticsearch (issue 15 item 8), now as Elasticsearch has
them: delayed allocation after a node shutdown record, the allocator's choice among YES and THROTTLE
answers, and the answer to a voting exclusion that does not take effect in time. Each test names the
Elasticsearch code or documentation it holds the sandbox to."""
from __future__ import annotations

import os
import time

from tests.sandbox_plugin import SCENARIOS, split_with, wait_for

GENERIC = "cluster.routing.allocation.node_concurrent_recoveries"


def _delayed(sandbox_factory, tmp_path, seconds):
    path = tmp_path / "delayed.yml"
    with open(os.path.join(SCENARIOS, "split.yml"), encoding="utf-8") as fh:
        path.write_text(fh.read().replace("delayed_timeout: 0s", "delayed_timeout: %s" % seconds))
    return sandbox_factory(str(path))


def _leave_with_a_shutdown_record(sbx, record):
    """A data node holding copies of logs-a (not the unreplicated index) leaves with a shutdown record on it;
    nothing moves meanwhile (allocation disabled), so its copies are still there when it goes. The
    explanation of one of them once unassigned."""
    victim = next(r["node"] for r in sbx.shards("logs-a")
                  if r["node"] not in [s["node"] for s in sbx.shards("single")])
    shard = next(int(r["shard"]) for r in sbx.shards("logs-a") if r["node"] == victim)
    nid, _ = sbx.node_by_name(victim)
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.enable": "none"}})
    sbx.es.ok("PUT", "/_nodes/%s/shutdown" % nid, record)
    sbx.terminate(victim)
    wait_for(lambda: victim not in [n["name"] for n in sbx.nodes().values()], what="the node to leave")
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.enable": None}})
    return sbx.es.ok("POST", "/_cluster/allocation/explain", {"index": "logs-a", "shard": shard, "primary": False})


def test_a_node_leaving_with_a_remove_record_leaves_its_replicas_delayed(sandbox_factory, tmp_path):
    # AllocationService.disassociateDeadNodes: a remove (or replace) record is no known restart, so the
    # copies are NODE_LEFT, delayed by index.unassigned.node_left.delayed_timeout like any departure
    sbx = _delayed(sandbox_factory, tmp_path, "30s")
    explain = _leave_with_a_shutdown_record(sbx, {"type": "remove", "reason": "replaced"})
    assert explain["can_allocate"] == "allocation_delayed", explain
    assert explain["unassigned_info"]["reason"] == "NODE_LEFT"
    assert abs(explain["configured_delay_in_millis"] - 30000) < 100, explain


def test_a_node_leaving_with_a_restart_record_waits_the_longer_of_the_two_delays(sandbox_factory, tmp_path):
    # UnassignedInfo.getRemainingDelay: NODE_RESTARTING, max(index delayed_timeout, allocation_delay)
    sbx = _delayed(sandbox_factory, tmp_path, "30s")
    explain = _leave_with_a_shutdown_record(sbx, {"type": "restart", "reason": "patch", "allocation_delay": "1s"})
    assert explain["can_allocate"] == "allocation_delayed", explain
    assert explain["unassigned_info"]["reason"] == "NODE_RESTARTING"
    assert abs(explain["configured_delay_in_millis"] - 30000) < 100, explain


def test_a_throttled_lowest_weight_node_keeps_a_replica_unassigned_though_another_says_yes(sandbox_factory, tmp_path):
    # BalancedShardsAllocator.decideAllocateUnassigned: the lowest-weight node among YES and THROTTLE answers;
    # THROTTLE there leaves the copy unassigned this round (a move, decideMove, passes throttled nodes by)
    sbx = sandbox_factory(split_with(
        tmp_path, [{"name": "big", "primaries": 1, "replicas": 0, "docs": 100, "size": "1GB"}], "10MB"))
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {GENERIC: "1"}})
    data = sorted(n["name"] for n in sbx.nodes().values() if "data" in n["roles"])
    source = sbx.shards("big")[0]["node"]
    target, home = [n for n in data if n != source]
    # three empty shards make `source` the heaviest node; big then relocates (slowly) into `target`
    sbx.es.ok("PUT", "/pad", {"settings": {"number_of_shards": 3, "number_of_replicas": 0,
                                           "index.routing.allocation.require._name": source}})
    sbx.es.ok("PUT", "/big/_settings", {"index.routing.allocation.require._name": target})
    wait_for(lambda: sbx.shards("big")[0]["state"] == "RELOCATING", what="big to relocate into %s" % target)
    # a replica (its primary on `home`, which sends nothing) whose lowest-weight candidate is `target`
    # (1 copy, its one incoming slot taken): THROTTLE; `source` (4 copies) says YES
    sbx.es.ok("PUT", "/fresh", {"settings": {"number_of_shards": 1, "number_of_replicas": 0,
                                             "index.routing.allocation.require._name": home}})
    sbx.es.ok("PUT", "/fresh/_settings", {"index.routing.allocation.require._name": None,
                                          "index.number_of_replicas": 1})
    time.sleep(0.5)  # several allocation rounds
    replica = next(r for r in sbx.shards("fresh") if r["prirep"] == "r")
    assert replica["state"] == "UNASSIGNED", sbx.shards("fresh")
    explain = sbx.es.ok("POST", "/_cluster/allocation/explain", {"index": "fresh", "shard": 0, "primary": False})
    decisions = {d["node_name"]: d["node_decision"] for d in explain["node_allocation_decisions"]}
    assert decisions[target] == "throttled" and decisions[source] == "yes", decisions
    assert explain["can_allocate"] == "throttled", explain
    # a slot on the lowest-weight node: the replica goes there, not to the YES node it passed by
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {GENERIC: "2"}})
    row = wait_for(lambda: next((r for r in sbx.shards("fresh") if r["prirep"] == "r" and r["node"]), None),
                   what="the replica to be allocated")
    assert row["node"] == target, row


def test_a_voting_exclusion_that_does_not_take_effect_in_time_is_answered_as_elasticsearch_does(sandbox_factory):
    # TransportAddVotingConfigExclusionsAction: ElasticsearchTimeoutException (no status of its own: 500
    # before 9.0), "timed out waiting for voting config exclusions [{id}{name}] to take effect"; the
    # exclusion stays in the cluster state
    sbx = sandbox_factory("split.yml")
    master = next(n for n in sbx.nodes().values() if "master" in n["roles"] and n["name"] != sbx.master_name())
    nid = next(i for i, n in sbx.nodes().items() if n["name"] == master["name"])
    status, body = sbx.es.call("POST", "/_cluster/voting_config_exclusions?node_names=%s&timeout=0s" % master["name"])
    assert status == 500, (status, body)
    assert body["error"]["type"] == "timeout_exception" and body["status"] == 500, body
    assert body["error"]["reason"] == "timed out waiting for voting config exclusions [{%s}{%s}] to take effect" % (
        nid, master["name"]), body
    state = sbx.es.get("/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
    excluded = state["metadata"]["cluster_coordination"]["voting_config_exclusions"]
    assert excluded == [{"node_id": nid, "node_name": master["name"]}], excluded
