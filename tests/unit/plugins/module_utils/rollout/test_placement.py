"""The low watermark a drain's targets must stay below, with max_headroom (Elasticsearch 8.5+)."""
import pytest

from ansible_collections.logstack.elk.plugins.module_utils.rollout import placement

TB, GB = 1024 ** 4, 1024 ** 3


def need(settings, explicit, headroom=True):
    return placement.min_free_low(placement.Inputs(settings, explicit, headroom=headroom), 10 * TB)


def test_a_large_disk_keeps_200gb_free_under_the_default_low_watermark_on_8_5_and_later():
    assert need({}, {}) == 200 * GB
    # defaults as GET _cluster/settings?include_defaults shows them on 8.x
    assert need({"cluster.routing.allocation.disk.watermark.low": "85%",
                 "cluster.routing.allocation.disk.watermark.low.max_headroom": "200gb"}, {}) == 200 * GB
    # before 8.5 (and OpenSearch) the ratio alone: 15% of 10 TB
    assert need({}, {}, headroom=False) == pytest.approx(0.15 * 10 * TB)


def test_an_explicit_low_watermark_has_no_default_headroom_but_an_explicit_one_counts():
    low = {"cluster.routing.allocation.disk.watermark.low": "80%"}
    assert need(low, low) == pytest.approx(0.2 * 10 * TB)
    both = dict(low, **{"cluster.routing.allocation.disk.watermark.low.max_headroom": "100gb"})
    assert need(both, both) == 100 * GB
    free = {"cluster.routing.allocation.disk.watermark.low": "50gb"}
    assert need(free, free) == 50 * GB  # an absolute free-space watermark is what it says


# -- which nodes may hold an index at all (the reindex disk check counts only those) --------------

NODES = {"h1": {"name": "hot-1", "roles": ["data_hot", "data_content"], "attributes": {"box": "fast"}},
         "w1": {"name": "warm-1", "roles": ["data_warm"], "attributes": {"box": "slow"}},
         "m1": {"name": "master-1", "roles": ["master"]}}


def refusals(settings, cluster=None):
    return {NODES[i]["name"]: placement.placement_refusal(i, NODES[i], settings, cluster or {}, NODES.values())
            for i in ("h1", "w1")}


def test_the_first_tier_of_the_preference_that_exists_takes_the_index():
    warm_first = {"index.routing.allocation.include._tier_preference": "data_cold,data_warm,data_hot"}
    assert refusals(warm_first) == {"hot-1": "index.routing.allocation.include._tier_preference="
                                             "data_cold,data_warm,data_hot", "warm-1": None}
    assert refusals({}) == {"hot-1": None, "warm-1": None}


def test_index_and_cluster_allocation_filters_keep_an_index_off_nodes():
    assert refusals({"index.routing.allocation.require.box": "fast"}) == {
        "hot-1": None, "warm-1": "index.routing.allocation.require.box=fast"}
    assert refusals({}, {"cluster.routing.allocation.exclude._name": "hot-*",
                         "cluster.routing.allocation.disk.watermark.low": "85%"}) == {
        "hot-1": "cluster.routing.allocation.exclude._name=hot-*", "warm-1": None}
