"""upgrade-es.yml on real clusters: Elasticsearch 7.16.3 -> 7.17.29 and OpenSearch 2.19.6 -> 3.9.0.

A real mixed-version rolling upgrade, 3 dedicated masters + 3 data nodes, a continuous writer, indices
with replicas and one with none, recovery throttled to 2 MB/s per node so each drain takes seconds.
"""
import pytest

from tests.integration.upgrade_support import assert_invariants, playbook
from tests.real.conftest import scenario

# Real nodes boot in seconds, not the sandbox's tenths: the inventory's timeouts are for the simulator.
REAL_TIMEOUTS = "@sandbox/real/timeouts.yml"


def assert_nothing_left(sb, before_settings):
    allocation, voting = sb.exclusions()
    assert allocation == [] and voting == [], (allocation, voting)
    settings = sb.es("/_cluster/settings?flat_settings=true")
    assert settings == before_settings, (before_settings, settings)  # recovery limits, rebalance: as they were
    tags = [t["Key"] for g in sb.groups() for t in g.get("Tags", [])]
    assert not [t for t in tags if t.startswith("logstack:rollout")], tags  # lock and saved settings gone


@pytest.mark.parametrize("name", ["real-es7.yml", "real-opensearch.yml"])
def test_drain_replaces_every_real_node_one_at_a_time_without_losing_a_document(real_sandbox, name):
    sb = real_sandbox(name)
    before = sb.es("/_cluster/settings?flat_settings=true")
    # -v: the detail per node (the exclusions each drain set). Elasticsearch: a task per step, as the demo
    # runs; OpenSearch: one module call per node, the same steps without Ansible's per-task overhead.
    per_step = "true" if "es7" in name else "false"
    run = playbook(sb, "-e", REAL_TIMEOUTS, "-e", "upgrade_strategy=drain", "-e", "upgrade_task_per_step=" + per_step,
                   "-v", timeout=1200)
    assert run.rc == 0, run.output[-4000:]
    audit = sb.audit()
    assert audit["engine"] == "real", audit
    assert_invariants(audit)
    assert audit["nodes_replaced"] == 6, audit
    old, new = ("7.16.3", "7.17.29") if "es7" in name else ("2.19.6", "3.9.0")
    assert audit["versions_before"] == [old] and audit["versions_after"] == [new], audit
    assert audit["writer_docs_indexed"] > 0 and audit["docs_now"] >= audit["docs_expected"], audit
    assert audit["shard_bytes_moved"] > 0, audit
    # the only yellow a drain may cause is the version skew's (replicas kept off older nodes)
    assert audit["red_seconds"] == 0, audit
    assert_nothing_left(sb, before)
    if "es7" in name:
        # drain_method auto asked the cluster: a 7.17 without x-pack has no node shutdown API
        assert not [m for m in audit["mutations"] if "/shutdown" in m], audit["mutations"]
        assert "allocation exclusion" in run.output
