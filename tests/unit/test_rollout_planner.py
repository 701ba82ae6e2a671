"""Outdated detection and replacement order, on realistic GET _nodes / EC2 / launch template shapes."""
from test_rollout_shapes import cluster, shard

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
    # data nodes quickest drain first, max(primary bytes, (primary + 2 x replica bytes) / 2 other
    # data nodes): d1 max(5000, 5000 / 2), d3 max(3000, (3000 + 10000) / 2), d2 max(5000, 15000 / 2)
    assert names(plan) == ["d1", "d3", "d2", "m1", "m3", "m2"]
    assert [c["drain_bytes"] for c in plan[:3]] == [5000, 6500, 7500]
    assert plan[-1]["elected_master"] and "replaced last" in plan[-1]["why"]
    assert [c["position"] for c in plan] == [1, 2, 3, 4, 5, 6]


def test_a_node_whose_primaries_are_many_drains_later_however_small():
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
    plan = plan_with("p")  # d1 10000 of primaries (of 10000), d2 5000, d3 3000 (of 13000: 23000 / 2 others)
    assert names(plan) == ["d2", "d1", "d3"]
    assert [(c["primary_bytes"], c["drain_bytes"]) for c in plan] == [(5000, 7500), (10000, 10000), (3000, 11500)]


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
