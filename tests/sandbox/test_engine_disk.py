"""Disk space in the sandbox's cluster: per-node disks from the scenario, `_nodes/stats/fs`,
the watermark settings and Elasticsearch's `disk_threshold` decider.

`disk-tight.yml`: three data nodes of 100MB, each holding two 32MB copies (64%); two nodes
cannot take a third node's copies without going above the 90% high watermark.
"""
from __future__ import annotations

import pytest

from sandbox.scenario import ScenarioError, parse
from tests.sandbox_plugin import wait_for

MB = 1024 ** 2


def _data_nodes(sbx):
    return {nid: n for nid, n in sbx.nodes().items() if "data" in n["roles"]}


def test_nodes_stats_fs_reports_the_group_disk_size_and_the_bytes_of_the_shards_each_node_holds(sandbox_factory):
    sbx = sandbox_factory("disk-tight.yml")
    held = {}
    for row in sbx.es.get("/_cat/shards?format=json&bytes=b&h=node,store,state"):
        assert row["state"] == "STARTED"
        held[row["node"]] = held.get(row["node"], 0) + int(row["store"])
    stats = sbx.es.get("/_nodes/stats/fs")["nodes"]
    data = _data_nodes(sbx)
    assert set(data) <= set(stats)
    for nid, node in data.items():
        fs = stats[nid]["fs"]["total"]
        assert fs["total_in_bytes"] == 100 * MB
        assert fs["free_in_bytes"] == fs["available_in_bytes"] == 100 * MB - held[node["name"]]
        assert held[node["name"]] == 64 * MB
        # the {metric} path part selects what is returned, as in Elasticsearch
        assert "indices" not in stats[nid] and "jvm" not in stats[nid]
    everything = sbx.es.get("/_nodes/stats")["nodes"]
    assert {"fs", "indices", "jvm", "os"} <= set(next(iter(everything.values())))
    only_jvm = sbx.es.get("/_nodes/stats/jvm")["nodes"]
    assert all("fs" not in n and "jvm" in n for n in only_jvm.values())
    status, body = sbx.es.call("GET", "/_nodes/stats/fs,disk")
    assert status == 400 and body["error"]["reason"] == \
        "request [/_nodes/stats/fs,disk] contains unrecognized metric: [disk]"


def test_cluster_settings_defaults_include_the_disk_watermarks_flat_and_nested(sandbox_factory):
    sbx = sandbox_factory("small.yml")
    flat = sbx.es.get("/_cluster/settings?flat_settings=true&include_defaults=true")["defaults"]
    assert flat["cluster.routing.allocation.disk.watermark.low"] == "85%"
    assert flat["cluster.routing.allocation.disk.watermark.high"] == "90%"
    assert flat["cluster.routing.allocation.disk.watermark.flood_stage"] == "95%"
    assert flat["cluster.routing.allocation.disk.threshold_enabled"] == "true"
    nested = sbx.es.get("/_cluster/settings?include_defaults=true")["defaults"]
    assert nested["cluster"]["routing"]["allocation"]["disk"]["watermark"] == \
        {"low": "85%", "high": "90%", "flood_stage": "95%"}
    assert "defaults" not in sbx.es.get("/_cluster/settings")


def test_a_watermark_that_is_neither_a_percentage_nor_a_size_is_refused(sandbox_factory):
    sbx = sandbox_factory("small.yml")
    status, body = sbx.es.call("PUT", "/_cluster/settings",
                               {"persistent": {"cluster.routing.allocation.disk.watermark.high": "lots"}})
    assert status == 400
    assert body["error"]["type"] == "illegal_argument_exception"
    assert "cluster.routing.allocation.disk.watermark.high" in body["error"]["reason"]
    for ok in ("92%", "0.92", "5mb"):
        sbx.es.ok("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.disk.watermark.high": ok}})
    # out of order (low above high) is refused whole, and nothing of it applied
    sbx.es.ok("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.disk.watermark.high": "92%"}})
    status, body = sbx.es.call("PUT", "/_cluster/settings", {"transient": {
        "cluster.routing.allocation.disk.watermark.low": "93%", "cluster.routing.allocation.enable": "none"}})
    assert status == 400, body
    assert body["error"]["reason"] == "low disk watermark [93%] more than high disk watermark [92%]"
    assert sbx.es.get("/_cluster/settings?flat_settings=true")["transient"] == \
        {"cluster.routing.allocation.disk.watermark.high": "92%"}
    status, body = sbx.es.call("PUT", "/_cluster/settings",
                               {"transient": {"cluster.routing.allocation.disk.threshold_enabled": "maybe"}})
    assert status == 400 and body["error"]["type"] == "illegal_argument_exception"
    sbx.es.ok("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.disk.threshold_enabled": False}})


def test_no_copy_goes_to_a_node_it_would_take_above_the_high_watermark(sandbox_factory):
    sbx = sandbox_factory("disk-tight.yml")
    victim = next(n["name"] for n in _data_nodes(sbx).values())
    sbx.terminate(victim, decrement=True)  # no replacement: the two others must take its copies
    wait_for(lambda: sum(r["state"] == "UNASSIGNED" for r in sbx.shards("logs-a")) == 2, what="copies unassigned")
    unassigned = next(r for r in sbx.shards("logs-a") if r["state"] == "UNASSIGNED")
    explain = sbx.es.ok("POST", "/_cluster/allocation/explain",
                        {"index": "logs-a", "shard": int(unassigned["shard"]), "primary": False})
    assert explain["can_allocate"] == "no"
    for entry in explain["node_allocation_decisions"]:
        disk = [d for d in entry["deciders"] if d["decider"] == "disk_threshold"]
        if disk:  # the node without a copy of this shard: only the disk stops it
            assert disk[0]["decision"] == "NO"
            assert disk[0]["explanation"].startswith(
                "allocating the shard to this node will bring the node above the high watermark cluster setting "
                "[cluster.routing.allocation.disk.watermark.high=90%]")
    assert any(d["decider"] == "disk_threshold" for e in explain["node_allocation_decisions"]
               for d in e.get("deciders", []))
    assert sbx.es.get("/_cluster/health")["status"] == "yellow"
    # Raising the watermark lets them in: the decider reads the setting in force.
    sbx.es.ok("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.disk.watermark.high": "99%",
                                                          "cluster.routing.allocation.disk.watermark.flood_stage": "99%"}})
    wait_for(lambda: sbx.es.call("GET", "/_cluster/health?wait_for_status=green&timeout=1s")[0] == 200,
             timeout=15, what="green once the watermark allows it")
    stats = sbx.es.get("/_nodes/stats/fs")["nodes"]
    assert sorted(n["fs"]["total"]["free_in_bytes"] for n in stats.values() if n["fs"]["total"]["total_in_bytes"]
                  == 100 * MB) == [4 * MB, 4 * MB]
    assert sbx.audit()["docs_lost"] == 0


def test_a_node_shutdown_stalls_when_no_other_node_has_disk_for_its_only_copies(sandbox_factory):
    """As Elasticsearch's shutdown status: copies no node has disk for but started on another node do
    not hold a remove up (COMPLETE); an only copy with nowhere to go does (STALLED)."""
    sbx = sandbox_factory("disk-tight.yml")
    nid = next(iter(_data_nodes(sbx)))
    sbx.es.ok("PUT", f"/_nodes/{nid}/shutdown", {"type": "remove", "reason": "rolling replacement"})
    status = wait_for(lambda: (s := sbx.es.get(f"/_nodes/{nid}/shutdown")["nodes"][0])["status"] == "COMPLETE" and s,
                      what="shutdown COMPLETE")
    assert status["shard_migration"]["explanation"] == ("[2] shards cannot be moved away from this node but have at "
                                                        "least one copy on another node in the cluster")
    assert len([r for r in sbx.shards("logs-a") if r["node"] == status["node_id"] or r["state"] == "STARTED"]) == 6
    sbx.es.ok("DELETE", f"/_nodes/{nid}/shutdown")
    # one copy per shard (32 MB per node of 100 MB), and a high watermark at 50%: a move would take
    # the target to 64%
    sbx.es.ok("PUT", "/logs-a/_settings", {"index.number_of_replicas": 0})
    sbx.es.ok("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.disk.watermark.low": "45%",
                                                          "cluster.routing.allocation.disk.watermark.high": "50%"}})
    wait_for(lambda: len(sbx.shards("logs-a")) == 3, what="the replicas gone")
    held = [r["node"] for r in sbx.shards("logs-a")]
    nid = sbx.node_by_name(held[0])[0]
    sbx.es.ok("PUT", f"/_nodes/{nid}/shutdown", {"type": "remove", "reason": "rolling replacement"})
    status = wait_for(lambda: (s := sbx.es.get(f"/_nodes/{nid}/shutdown")["nodes"][0])["status"] == "STALLED" and s,
                      what="shutdown STALLED")
    assert status["shard_migration"]["shard_migrations_remaining"] == held.count(held[0])
    decisions = status["shard_migration"]["node_allocation_decision"]["node_allocation_decisions"]
    assert any(d["decider"] == "disk_threshold" and d["decision"] == "NO"
               for entry in decisions for d in entry.get("deciders", []))
    assert sbx.es.get("/_cluster/health")["relocating_shards"] == 0


def test_copies_cannot_remain_on_a_node_above_the_high_watermark(sandbox_factory):
    sbx = sandbox_factory("disk-tight.yml")
    sbx.es.ok("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.disk.watermark.low": "55%",
                                                          "cluster.routing.allocation.disk.watermark.high": "60%"}})
    explain = sbx.es.ok("POST", "/_cluster/allocation/explain", {"index": "logs-a", "shard": 0, "primary": True,
                                                                  "current_node": sbx.shards("logs-a")[0]["node"]})
    assert explain["can_remain_on_current_node"] == "no"
    remain = {d["decider"]: d for d in explain["can_remain_decisions"]}
    assert remain["disk_threshold"]["explanation"].startswith(
        "the shard cannot remain on this node because it is above the high watermark cluster setting "
        "[cluster.routing.allocation.disk.watermark.high=60%]")
    # every data node is above it, so nothing can take the copy either
    assert explain["can_move_to_other_node"] == "no"


def test_indices_on_a_node_above_the_flood_stage_are_read_only_until_it_is_below_the_high_watermark(sandbox_factory):
    sbx = sandbox_factory("disk-tight.yml")  # data nodes at 64%
    assert sbx.es.call("PUT", "/logs-a/_doc/1", {"n": 1})[0] in (200, 201)
    lowered = {f"cluster.routing.allocation.disk.watermark.{k}": v
               for k, v in (("low", "50%"), ("high", "55%"), ("flood_stage", "60%"))}
    sbx.es.ok("PUT", "/_cluster/settings", {"transient": lowered})
    wait_for(lambda: sbx.es.call("PUT", "/logs-a/_doc/2", {"n": 2})[0] == 429, what="flood-stage block")
    status, body = sbx.es.call("PUT", "/logs-a/_doc/3", {"n": 3})
    assert body["error"]["type"] == "cluster_block_exception"
    settings = sbx.es.get("/logs-a/_settings?flat_settings=true")["logs-a"]["settings"]
    assert settings["index.blocks.read_only_allow_delete"] == "true"
    sbx.es.ok("PUT", "/_cluster/settings", {"transient": {k: None for k in lowered}})
    wait_for(lambda: sbx.es.call("PUT", "/logs-a/_doc/4", {"n": 4})[0] in (200, 201), what="block released")
    settings = sbx.es.get("/logs-a/_settings?flat_settings=true")["logs-a"]["settings"]
    assert "index.blocks.read_only_allow_delete" not in settings


def test_a_group_disk_size_must_be_a_positive_size():
    base = {"amis": {"a": {"es_version": "8.15.0"}},
            "groups": [{"name": "g", "role": "mixed", "size": 1, "ami": "a"}]}
    assert parse(base).groups[0].disk_bytes >= 100 * 1024 ** 3  # large unless a scenario is about disk
    base["groups"][0]["disk_bytes"] = "2GB"
    assert parse(base).groups[0].disk_bytes == 2 * 1024 ** 3
    for bad in (0, "lots"):
        base["groups"][0]["disk_bytes"] = bad
        with pytest.raises(ScenarioError, match=r"groups\[0\]\.disk_bytes"):
            parse(base)
