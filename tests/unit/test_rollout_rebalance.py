"""The operator's rebalancing / recovery settings survive the round trip through the ASG tag,
and the run keeps exactly one outgoing recovery slot free (never none)."""
from ansible_collections.logstack.elk.plugins.module_utils.rollout import rebalance


def test_saved_values_round_trip_through_the_tag_with_unset_kept_apart_from_set():
    values = {"rebalance.persistent": "primaries", "rebalance.transient": None,
              "outgoing.persistent": None, "outgoing.transient": "3"}
    text = rebalance.render(values)
    assert len(text) < 256  # an Auto Scaling tag value holds at most 256 characters
    assert rebalance.parse(text) == values


def test_tag_of_unknown_keys_is_ignored_not_restored():
    assert rebalance.parse("rebalance.persistent=all cluster.foo.persistent=x outgoing.bogus=1") == {
        "rebalance.persistent": "all"}


def test_run_keeps_one_outgoing_slot_free_but_never_blocks_recoveries():
    assert rebalance.outgoing_during_run({}) == 1  # Elasticsearch default 2
    assert rebalance.outgoing_during_run({"outgoing.persistent": "4"}) == 3
    assert rebalance.outgoing_during_run({"outgoing.persistent": "4", "outgoing.transient": "6"}) == 5
    assert rebalance.outgoing_during_run({"outgoing.persistent": "1"}) == 1
    assert rebalance.outgoing_during_run({"outgoing.persistent": "not-a-number"}) == 1
