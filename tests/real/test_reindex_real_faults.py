"""A data node of a real 3-node Elasticsearch 7.17 crashes (SIGKILL of its JVM, its disk kept) at a point
of a copy_back or swap run: no document is lost, and the run, or a rerun, finishes or rolls back cleanly.
The crashed node is the one holding the primary of the index the run works on at that point (after
clone_final: the clone's primary, on the node of its source's primary). The sandbox's version of this
sweep, at ten points, is tests/integration/test_reindex_crash.py."""
import os
import signal
import time

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.reindex import COPY_BACK_STEPS, SWAP_STEPS, Reindexer
from tests.integration.test_reindex_osmem import DAYS, DOCS, assert_reindexed, ids, options, seed, settle

NAME = "logstash-" + DAYS[0]
TEMP = NAME + "-r"


def crash_node_holding(es, index):
    """SIGKILL the JVM of the node holding the primary of ``index``'s shard 0 (a process the sandbox
    started for this test); returns the node's name."""
    rows = es.get("/_cat/shards/%s" % index, params={"format": "json", "h": "shard,prirep,state,node"})
    name = next(r["node"] for r in rows if r["prirep"] == "p" and r["shard"] == "0" and r["node"])
    nodes = es.get("/_nodes/%s/process" % name)["nodes"]
    pid = int(next(iter(nodes.values()))["process"]["id"])
    os.kill(pid, signal.SIGKILL)
    return name


def wait_nodes(es, count, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = es.call("GET", "/_cluster/health", params={"wait_for_nodes": str(count), "timeout": "2s"},
                               allow=(408, 502, 503))
        if status == 200:
            return
        time.sleep(0.5)
    raise AssertionError("the cluster did not settle at %d nodes" % count)


@pytest.mark.parametrize("mode,point", [("copy_back", "clone_final"), ("swap", "replicate_temp")])
def test_a_data_node_crash_on_a_real_cluster_loses_no_document_and_a_rerun_finishes(real_sandbox, mode, point):
    sb = real_sandbox("real-reindex.yml")
    es = EsClient([sb.env["ES_URL"]], max_retries=2)
    seed(es, days=DAYS[:1])
    # Replicas of the crashed node's shards are rebuilt at once, not after the default minute.
    template = es.get("/_index_template/logstash")["index_templates"][0]["index_template"]
    template["template"]["settings"]["index.unassigned.node_left.delayed_timeout"] = "0s"
    es.put("/_index_template/logstash", template)
    es.put("/%s/_settings" % NAME, {"index.unassigned.node_left.delayed_timeout": "0s"})
    first = Reindexer(es, options(mode=mode, timeout=300))
    steps = COPY_BACK_STEPS if mode == "copy_back" else SWAP_STEPS
    for step in steps[:steps.index(point) + 1]:
        assert first.step(NAME) == step
    crashed = crash_node_holding(es, NAME if point == "clone_final" else TEMP)
    wait_nodes(es, 2)
    outcomes = settle(es, mode, timeout=300)  # the run goes on, fails and rolls back, or a rerun finishes
    assert outcomes[-1] is None, "crash of %s after %s: %s" % (crashed, point, outcomes)
    assert ids(es, NAME) == sorted(str(i) for i in range(DOCS))
    assert_reindexed(es, NAME, mode=mode)
    # (the cluster may be red: seed's archive-logs has no replica and its node may be the crashed one)
    health = es.get("/_cluster/health/" + NAME)
    assert health["status"] == "green" and health["number_of_nodes"] == 2, health
