"""Outdated detection and replacement order, on realistic GET _nodes / EC2 / launch template shapes."""
from rollout_shapes import cluster, shard

from ansible_collections.logstack.elk.plugins.module_utils.rollout import planner


def world(view, outdated, groups=None, excluded=()):
    """A World as planner.World builds it from Elasticsearch and AWS, without the servers."""
    w = object.__new__(planner.World)
    w.opts = planner.Options(version_tag="es_version")
    w.view = view
    view.excluded_names = list(excluded)
    w.groups = groups or [{"AutoScalingGroupName": "g", "DesiredCapacity": 6, "MaxSize": 7, "Tags": []}]
    w.mapping = {nid: "i-" + n["name"] for nid, n in view.nodes.items()}
    w.group_of = {iid: "g" for iid in w.mapping.values()}
    w.lifecycle = {iid: "InService" for iid in w.mapping.values()}
    w.instances = {}
    for nid, iid in w.mapping.items():
        old = view.nodes[nid]["name"] in outdated
        w.instances[iid] = {"InstanceId": iid, "ImageId": "ami-old" if old else "ami-new",
                            "Tags": [{"Key": "es_version", "Value": "8.14.3" if old else "8.15.0"}]}
    w.targets = {"g": {"image_id": "ami-new", "version": "8.15.0"}}
    w.unmapped, w.orphans = [], []
    return w


def names(plan):
    return [c["node_name"] for c in plan]


def test_data_nodes_first_then_masters_with_the_elected_master_last():
    plan = world(cluster(master="m2"), outdated={"m1", "m2", "m3", "d1", "d2", "d3"}).candidates()
    # data nodes quickest drain first: the most bytes one node's recovery limiter passes. d1 sends its
    # logs-1/0 primary to d3 (5000 through d1 and d3); d3's logs-1/1 replica comes from d2 to d1
    # (5000 each) and its 0-replica single/0 goes to d1 or d2 (1500 each): 6500; d2's replica of
    # logs-1/0 comes from d1 to d3 and its logs-1/1 primary goes to d1: d1 passes 10000.
    assert names(plan) == ["d1", "d3", "d2", "m1", "m3", "m2"]
    assert [c["drain_bytes"] for c in plan[:3]] == [5000, 6500, 10000]
    assert plan[-1]["elected_master"] and "replaced last" in plan[-1]["why"]
    assert [c["position"] for c in plan] == [1, 2, 3, 4, 5, 6]


def test_the_first_drain_is_the_one_whose_busiest_recovery_limiter_passes_least():
    # The demo's layout (sandbox/scenarios/demo.yml): each index's primary on one node, its replica on
    # the next (d1 -> d2 -> d3 -> d1), and a 0-replica index on d1. Draining d2 or d3 sends every byte
    # through one other node's limiter (it receives the primaries and sends the replicas' sources);
    # draining d1 splits its copies between d2 and d3. Counting bytes per node ("primary + 2 x replica
    # over the other nodes") ranked d2 first; the limiter count ranks d1 first, and it is quicker.
    extra = []
    pairs = [("d1", "d2")] * 3 + [("d2", "d3")] * 4 + [("d3", "d1")] * 3
    for num, (p_node, r_node) in enumerate(pairs):
        extra += [shard("logs-x", num, "p", "STARTED", p_node, 150), shard("logs-x", num, "r", "STARTED", r_node, 150)]
    extra.append(shard("metrics", 0, "p", "STARTED", "d1", 150))
    view = cluster()
    view.shards = extra
    plan = world(view, outdated={"d1", "d2", "d3"}).candidates()
    # d1: its primaries to d3 (450) and metrics to d2 or d3 (75 each) out of d1 (600); its replicas
    # of d3's primaries from d3 to d2 (450): d3 passes 450 + 450 + 75
    assert [(c["node_name"], c["drain_bytes"]) for c in plan] == [("d1", 975), ("d2", 1050), ("d3", 1050)]


def test_a_node_whose_primaries_are_many_drains_no_sooner_however_small():
    # A primary is copied out of the drained node itself, through its one recovery limiter; a replica
    # from its primary's node to a third, through two limiters of the others: a node holding mostly
    # primaries drains slowly, whatever its size.
    def plan_with(logs2_on_d1):
        other = "r" if logs2_on_d1 == "p" else "p"
        view = cluster(extra_shards=[shard("logs-2", 0, logs2_on_d1, "STARTED", "d1", 5000),
                                     shard("logs-2", 0, other, "STARTED", "d3", 5000)])
        return world(view, outdated={"d1", "d2", "d3"}).candidates()
    # d1 and d2 hold 10000 bytes each, d3 13000
    plan = plan_with("r")  # d1 5000 of primaries, d2 5000, d3 8000: d3 last, the name decides d1, d2
    assert names(plan) == ["d1", "d2", "d3"]
    # d1 10000 of primaries (of 10000): d1 sends both; d2's replica of logs-1/0 and its logs-1/1 primary
    # both pass d1 too (from it, to it); d3's copies pass d1 and d2 11500 bytes each
    plan = plan_with("p")
    assert names(plan) == ["d1", "d2", "d3"]
    assert [(c["primary_bytes"], c["drain_bytes"]) for c in plan] == [(10000, 10000), (5000, 10000), (3000, 11500)]


def test_tiers_frozen_cold_warm_hot():
    view = cluster()
    view.nodes["id-d1"]["roles"] = ["data_hot", "data_content"]
    view.nodes["id-d2"]["roles"] = ["data_frozen"]
    view.nodes["id-d3"]["roles"] = ["data_warm"]
    assert names(world(view, outdated={"d1", "d2", "d3"}).candidates()) == ["d2", "d3", "d1"]


def test_current_nodes_are_not_planned_and_reasons_are_given():
    plan = world(cluster(), outdated={"d2"}).candidates()
    assert names(plan) == ["d2"]
    assert "image ami-old != launch template image ami-new" in plan[0]["reasons"]
    assert any("es_version=8.14.3" in r for r in plan[0]["reasons"])
    assert world(cluster(), outdated=set()).candidates() == []


def test_a_node_left_half_done_by_a_crashed_run_is_continued_first():
    plan = world(cluster(), outdated={"d1", "d2", "m3"}, excluded=["m3"]).candidates()
    assert names(plan)[0] == "m3" and plan[0]["continuing"]


def test_expected_masters_follow_desired_capacity_of_master_groups():
    view = cluster()
    w = world(view, outdated=set(), groups=[
        {"AutoScalingGroupName": "masters", "DesiredCapacity": 3, "MaxSize": 3, "Tags": []},
        {"AutoScalingGroupName": "data", "DesiredCapacity": 3, "MaxSize": 3, "Tags": []}])
    w.group_of = {iid: ("masters" if iid.startswith("i-m") else "data") for iid in w.mapping.values()}
    assert w.expected_masters == 3 and w.expected_nodes == 6


def test_replica_count_of_each_index_from_cat_shards():
    assert planner.indices_replicas(cluster()) == {"logs-1": 1, "single": 0}
