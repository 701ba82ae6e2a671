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
