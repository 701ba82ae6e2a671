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
