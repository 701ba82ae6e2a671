"""Zones, tiers, filters and shard limits: preflight says which copies have nowhere to go before a drain
starts, and a drain does not wait for a copy Elasticsearch will not move while another copy is started.

The planner's own preflight (rollout/planner.py, rollout/placement.py) and the drain step against the
sandbox, whose allocation deciders (awareness plain and forced, data tiers, filters, shards per node)
decide where copies really go: each refusal checked here is also checked against the sandbox's own
allocation explain, so the planner and the simulated Elasticsearch agree.
"""
from __future__ import annotations

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout import planner
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster
from ansible_collections.logstack.elk.plugins.module_utils.rollout.node import NodeReplacement
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import Options

from tests.sandbox_plugin import mini_scenario, wait_for

ZONE = "aws_availability_zone"
AWARE = {"cluster.routing.allocation.awareness.attributes": ZONE}
FORCED = dict(AWARE, **{"cluster.routing.allocation.awareness.force.%s.values" % ZONE: "us-east-1a,us-east-1b"})


def scenario(tmp_path, data_groups, indices, name="zones"):
    """Three masters and the given data groups ({name, size, zone, roles?}); its path."""
    groups = [{"name": "es-master", "role": "master", "size": 3, "ami": "es-8.14"}]
    groups += [dict({"role": "data", "ami": "es-8.14"}, **g) for g in data_groups]
    return mini_scenario(tmp_path, name, groups, indices)


@pytest.fixture
def rollout(sandbox_factory, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    def start(path, strategy="drain"):
        sbx = sandbox_factory(path)
        cluster = Cluster(EsClient([sbx.sb.es_url], max_retries=0))
        aws = Aws(region="us-east-1", endpoint_url=sbx.sb.world.endpoint, max_attempts=2)
        groups = [g["AutoScalingGroupName"] for g in sbx.asg.describe_auto_scaling_groups()["AutoScalingGroups"]]
        return sbx, cluster, aws, Options(asg_names=groups, strategy=strategy)
    return start


def data_node_in(sbx, zone):
    return sorted(n["name"] for n in sbx.nodes().values()
                  if "data" in n["roles"] and n["attributes"][ZONE] == zone)


def placement_refusals(refused):
    return [r for r in refused if r.startswith("placement:")]


def explain_move(sbx, index, shard, primary, node_name):
    """The sandbox's own verdict on moving that copy off node_name (with a shutdown record on it)."""
    return sbx.es.ok("POST", "/_cluster/allocation/explain",
                     {"index": index, "shard": shard, "primary": primary, "current_node": node_name})


@pytest.mark.parametrize("settings", [AWARE, FORCED], ids=["plain", "forced"])
def test_awareness_keeps_a_zones_copies_in_it_and_preflight_says_so_naming_the_setting(rollout, tmp_path, settings):
    # zone a has one data node, zone b two; one replica: with awareness on the zone, at most one copy
    # of a shard per zone, so the copies of zone a's node can go nowhere while it is in the cluster.
    sbx, cluster, aws, opts = rollout(scenario(tmp_path, [
        {"name": "es-data-a", "size": 1, "zone": "us-east-1a"},
        {"name": "es-data-b", "size": 2, "zone": "us-east-1b"}],
        [{"name": "logs", "primaries": 2, "replicas": 1, "docs": 100, "size": "2MB"}]))
    _world, _plan, refused = planner.preflight(cluster, aws, opts)
    assert not placement_refusals(refused), refused  # without awareness every copy has somewhere to go

    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": settings})
    _world, plan, refused = planner.preflight(cluster, aws, opts)
    (lone,) = data_node_in(sbx, "us-east-1a")
    mine = [r for r in placement_refusals(refused) if " on %s have" % lone in r]
    assert len(mine) == 1, refused
    assert "awareness (cluster.routing.allocation.awareness.attributes=aws_availability_zone" in mine[0]
    assert ("force.aws_availability_zone.values=us-east-1a,us-east-1b" in mine[0]) == (settings is FORCED)
    assert "use strategy surge" in mine[0]
    # the two nodes of zone b can each hand their copies to the other node of their zone
    assert not [r for r in placement_refusals(refused) if lone not in r], refused

    # the sandbox's Elasticsearch agrees: the awareness decider refuses the other node of zone b
    row = next(r for r in sbx.shards("logs") if r["node"] == lone)
    sbx.es.ok("PUT", "/_nodes/%s/shutdown" % sbx.node_by_name(lone)[0], {"type": "remove", "reason": "test"})
    verdict = explain_move(sbx, "logs", int(row["shard"]), row["prirep"] == "p", lone)
    assert verdict["can_move_to_other_node"] == "no", verdict
    deciders = {d["decider"] for n in verdict["node_allocation_decisions"] for d in n.get("deciders", [])
                if d["decision"] == "NO"}
    assert deciders == {"awareness", "same_shard"}, verdict


def test_one_data_node_per_zone_with_forced_awareness_is_refused_at_preflight(rollout, tmp_path):
    sbx, cluster, aws, opts = rollout(scenario(tmp_path, [
        {"name": "es-data-a", "size": 1, "zone": "us-east-1a"},
        {"name": "es-data-b", "size": 1, "zone": "us-east-1b"}],
        [{"name": "logs", "primaries": 2, "replicas": 1, "docs": 100, "size": "2MB"}]))
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": FORCED})
    _world, plan, refused = planner.preflight(cluster, aws, opts)
    found = placement_refusals(refused)
    assert len(found) == 2 and all("use strategy surge" in r and "started copy elsewhere" in r for r in found), refused
    _world, _plan, refused = planner.preflight(cluster, aws, Options(asg_names=opts.asg_names, strategy="surge"))
    assert not placement_refusals(refused), refused


def test_tier_preference_filters_and_shard_limits_are_read_per_index(rollout, tmp_path):
    sbx, cluster, aws, opts = rollout(scenario(tmp_path, [
        {"name": "es-warm", "size": 2, "zone": "us-east-1a", "roles": ["data_warm"]},
        {"name": "es-hot", "size": 2, "zone": "us-east-1b", "roles": ["data_content", "data_hot"]}],
        [{"name": "warm", "primaries": 1, "replicas": 1, "docs": 10, "size": "1MB",
          "settings": {"index.routing.allocation.include._tier_preference": "data_warm,data_hot"}},
         {"name": "hot", "primaries": 2, "replicas": 0, "docs": 10, "size": "1MB",
          "settings": {"index.routing.allocation.include._tier_preference": "data_hot"}}]))
    # the warm index's two copies fill the warm tier: neither warm node can be drained
    _world, _plan, refused = planner.preflight(cluster, aws, opts)
    warm = [r for r in placement_refusals(refused) if "warm[0]" in r]
    assert len(warm) == 2 and all("data_tier (index.routing.allocation.include._tier_preference=data_warm,data_hot"
                                  in r for r in warm), refused
    assert not [r for r in placement_refusals(refused) if ": hot[" in r], refused
    # one shard per hot node for the hot index: its other node is full
    sbx.es.ok("PUT", "/hot/_settings", {"index.routing.allocation.total_shards_per_node": 1})
    _world, _plan, refused = planner.preflight(cluster, aws, opts)
    hot = [r for r in placement_refusals(refused) if "hot[" in r]
    assert len(hot) == 2 and all("shards_limit (index.routing.allocation.total_shards_per_node=1)" in r
                                 for r in hot), refused
    assert all("the drain would wait until its timeout" in r for r in hot)  # 0 replicas: no copy elsewhere
    # a filter keeping the index off one hot node: the other hot node's copy has nowhere to go
    sbx.es.ok("PUT", "/hot/_settings", {"index.routing.allocation.total_shards_per_node": None})
    avoid = sorted(n["name"] for n in sbx.nodes().values() if "data_hot" in n["roles"])[0]
    sbx.es.ok("PUT", "/hot/_settings", {"index.routing.allocation.exclude._name": avoid})
    wait_for(lambda: all(r["node"] != avoid and r["state"] == "STARTED" for r in sbx.shards("hot")), timeout=20,
             what="hot to leave " + avoid)
    _world, _plan, refused = planner.preflight(cluster, aws, opts)
    hot = [r for r in placement_refusals(refused) if "hot[" in r]
    assert len(hot) == 1 and "filter (index.routing.allocation.exclude._name=%s)" % avoid in hot[0], "\n".join(refused)


def test_the_low_watermark_after_the_move_decides_not_the_high_one(rollout, tmp_path):
    # 3 data nodes of 100 MB, two 30 MB copies each: the drained node's copies fit below the high
    # watermark (90%) of the two others (30 MB each) but take them above the low one (65%).
    sbx, cluster, aws, opts = rollout(scenario(tmp_path, [
        {"name": "es-data", "size": 3, "zone": "us-east-1a", "disk_bytes": "100MB"}],
        [{"name": "big", "primaries": 3, "replicas": 1, "docs": 10, "size": "90MB"}]))
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {
        "cluster.routing.allocation.disk.watermark.low": "65%", "cluster.routing.allocation.disk.watermark.high": "90%"}})
    _world, _plan, refused = planner.preflight(cluster, aws, opts)
    disk = [r for r in placement_refusals(refused) if "disk_threshold" in r]
    assert disk and "cluster.routing.allocation.disk.watermark.low=65%" in disk[0], refused
    assert not [r for r in refused if r.startswith("disk_headroom")], refused  # the high watermark alone passes


def test_a_replacement_auto_scaling_starts_in_another_zone_is_said(rollout, tmp_path):
    """Zone a's group is moved to zone c (the operator changed its subnets, or zone a ran out of
    capacity): its replacement joins in us-east-1c, and the step says so with both zones."""
    sbx, cluster, aws, opts = rollout(scenario(tmp_path, [
        {"name": "es-data-a", "size": 1, "zone": "us-east-1a"},
        {"name": "es-data-b", "size": 2, "zone": "us-east-1b"}],
        [{"name": "logs", "primaries": 2, "replicas": 1, "docs": 100, "size": "2MB"}]))
    world = planner.World(cluster, aws, opts)
    (lone,) = data_node_in(sbx, "us-east-1a")
    cand = next(c for c in world.candidates() if c["node_name"] == lone)
    sbx.asg.update_auto_scaling_group(AutoScalingGroupName="es-data-a",
                                      VPCZoneIdentifier=sbx.sb.world.subnets["us-east-1c"])
    step = NodeReplacement(cluster, aws, opts, cand["instance_id"], lone, cand["node_id"], "es-data-a",
                           known_instance_ids=sorted(world.group_of), poll_interval=0.2,
                           timeouts={"drain": 60, "join": 60})
    for name in ("drain", "terminate", "wait_left", "wait_joined"):
        entry = step.run(name)
    assert "in us-east-1c, not us-east-1a" in entry["detail"], entry
    assert [n["zone"] for n in entry["new_nodes"]] == ["us-east-1c"]
    assert data_node_in(sbx, "us-east-1c")


def test_a_drain_ends_on_copies_that_cannot_move_but_are_started_elsewhere(rollout, tmp_path):
    """Forced awareness keeps zone a's copies in zone a (as after a replacement in another zone, when
    preflight has passed): every copy of the node has a started copy in zone b, so the drain ends, as
    Elasticsearch's shutdown status does, instead of waiting until its timeout."""
    sbx, cluster, aws, opts = rollout(scenario(tmp_path, [
        {"name": "es-data-a", "size": 1, "zone": "us-east-1a"},
        {"name": "es-data-b", "size": 2, "zone": "us-east-1b"}],
        [{"name": "logs", "primaries": 2, "replicas": 1, "docs": 100, "size": "2MB"}]))
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": FORCED})
    world = planner.World(cluster, aws, opts)
    (lone,) = data_node_in(sbx, "us-east-1a")
    cand = next(c for c in world.candidates() if c["node_name"] == lone)
    held = [r for r in sbx.shards("logs") if r["node"] == lone]
    step = NodeReplacement(cluster, aws, opts, cand["instance_id"], lone, cand["node_id"], "es-data-a",
                           poll_interval=0.2, timeouts={"drain": 20, "gate": 20})
    entry = step.run("drain")
    assert "%d copies that no other node takes have a started copy on another node" % len(held) in entry["detail"]
    assert "awareness" in entry["detail"], entry
    assert [r for r in sbx.shards("logs") if r["node"] == lone] == held  # nothing moved: nowhere to go


def test_a_drain_whose_copies_have_nowhere_to_go_and_no_other_copy_fails_before_excluding(rollout, tmp_path):
    """The cluster changed after preflight: a copy with no replica cannot leave the node, so the drain
    step refuses at once, naming the decider and the setting, and excludes nothing."""
    sbx, cluster, aws, opts = rollout(scenario(tmp_path, [
        {"name": "es-data", "size": 2, "zone": "us-east-1a"}],
        [{"name": "solo", "primaries": 2, "replicas": 0, "docs": 10, "size": "1MB"}]))
    world = planner.World(cluster, aws, opts)
    victim = next(r["node"] for r in sbx.shards("solo"))
    sbx.es.ok("PUT", "/solo/_settings", {"index.routing.allocation.total_shards_per_node": 1})
    cand = next(c for c in world.candidates() if c["node_name"] == victim)
    step = NodeReplacement(cluster, aws, opts, cand["instance_id"], victim, cand["node_id"], "es-data",
                           poll_interval=0.2, timeouts={"drain": 20, "gate": 20})
    with pytest.raises(Exception) as err:
        step.run("drain")
    assert "shards_limit (index.routing.allocation.total_shards_per_node=1)" in str(err.value), err.value
    assert not sbx.es.get("/_nodes/shutdown")["nodes"]
