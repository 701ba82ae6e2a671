"""The operator's rebalancing / recovery settings survive the round trip through the ASG tag.
(Raising and restoring the recovery limits: tests/sandbox/test_rollout_slots.py.)"""
from ansible_collections.logstack.elk.plugins.module_utils.rollout import rebalance


def test_saved_values_round_trip_through_the_tag_with_unset_kept_apart_from_set():
    values = {"rebalance.persistent": "primaries", "rebalance.transient": None,
              "outgoing.persistent": None, "outgoing.transient": "3",
              "incoming.persistent": "4", "incoming.transient": None}
    text = rebalance.render(values)
    assert len(text) < 256  # an Auto Scaling tag value holds at most 256 characters
    assert rebalance.parse(text) == values


def test_tag_of_unknown_keys_is_ignored_not_restored():
    assert rebalance.parse("rebalance.persistent=all cluster.foo.persistent=x outgoing.bogus=1") == {
        "rebalance.persistent": "all"}


def test_drain_slots_count_what_the_drain_can_hold_on_one_node_and_stop_at_the_cap():
    from rollout_shapes import cluster, shard
    # d2 holds: logs-1/0 r (primary d1), logs-1/1 p relocating to d1, logs-2/0 r (primary d1),
    # logs-2/1 r (primary d3). A copy can only land where its shard has no copy; a replica copies
    # from its primary's node.
    view = cluster(extra_shards=[shard("logs-2", 0, "p", "STARTED", "d1"), shard("logs-2", 0, "r", "STARTED", "d2"),
                                 shard("logs-2", 1, "p", "STARTED", "d3"), shard("logs-2", 1, "r", "STARTED", "d2"),
                                 shard("logs-3", 0, "r", "UNASSIGNED", None)])
    for row in view.shards:
        if (row["index"], row["shard"], row["prirep"]) == ("logs-1", "1", "p"):
            row.update(state="RELOCATING", node="d2 -> 10.0.2.1 id-d1 d1")
    # incoming: d1 <- logs-1/1 (under way), logs-2/1; d3 <- logs-1/0, logs-2/0. outgoing: d1 for two
    # replicas (d2 sends its one primary itself)
    assert rebalance.drain_slots(view, "d2") == {"incoming": 2, "outgoing": 2}
    assert rebalance.drain_slots(view, "d2", cap=1) == {"incoming": 1, "outgoing": 1}
    # d3 holds logs-1/1 r (primary relocating d2 -> d1: its holders are d2 and d1), logs-2/1 p and
    # single/0 p: d1 may take both primaries (incoming 2), and d3 sends both itself (outgoing 2)
    assert rebalance.drain_slots(view, "d3") == {"incoming": 2, "outgoing": 2}
    # a node with nothing on it reserves nothing
    assert rebalance.drain_slots(view, "m1") == {"incoming": 0, "outgoing": 0}
