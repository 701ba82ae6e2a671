"""Reading Elasticsearch's answers the way the rollout needs them."""
import pytest
from rollout_shapes import cluster, shard

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import (
    shard_nodes, split_list, tier_rank, watermark_limit)


def test_relocating_copy_counts_on_both_nodes():
    # _cat/shards writes "<source> -> <ip> <target id> <target name>" for a relocating copy
    row = shard("logs-1", 0, "p", "RELOCATING", "d1 -> 10.0.2.3 id-d3xyz d3")
    assert shard_nodes(row) == ("d1", "d3")
    view = cluster(extra_shards=[row])
    assert row in view.shards_on("d1") and row in view.shards_on("d3")


def test_watermarks_as_percent_ratio_or_free_bytes():
    assert watermark_limit("90%", 1000) == 900
    assert watermark_limit("0.85", 1000) == 850
    assert watermark_limit("1kb", 10240) == 10240 - 1024
    assert watermark_limit("2gb", 10 * 1024 ** 3) == 8 * 1024 ** 3
    with pytest.raises(EsError):
        watermark_limit("lots", 1000)


def test_exclusion_lists_are_comma_separated():
    assert split_list("a, b,,c") == ["a", "b", "c"]
    assert split_list(None) == [] and split_list(["x", " "]) == ["x"]


def test_tier_rank_uses_the_coldest_tier_a_node_serves():
    assert tier_rank({"roles": ["data_frozen"]}) < tier_rank({"roles": ["data_cold"]}) < \
        tier_rank({"roles": ["data_warm"]}) < tier_rank({"roles": ["data_hot", "data_content"]})
    assert tier_rank({"roles": ["data_hot", "data_cold"]}) == tier_rank({"roles": ["data_cold"]})
