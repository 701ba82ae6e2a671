"""Snapshots (issue 15 item 5) and voting exclusions (item 9) on real Elasticsearch 7.17 and OpenSearch
2.19: the rollout's own code (rollout/snapshots.py, rollout/voting.py through Cluster,
rollout/versions.py) against 3 mixed nodes without x-pack (each node's path.repo is the same
directory, so an fs repository works as on a shared mount). The cluster is test_reindex_real.py's
(``shared_real``): the test empties it first (as each reindex test does) and removes what it registers."""
import pytest

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout import snapshots, versions
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster
from tests.real.test_reindex_real import emptied, plain

INDEX = "snap-logs"


@pytest.mark.parametrize("family", ["elasticsearch", "opensearch"])
def test_snapshot_require_take_and_voting_exclusions_on_a_real_cluster(shared_real, monkeypatch, family):
    sb = emptied(shared_real(plain(family)), monkeypatch)
    cluster = Cluster(EsClient([sb.env["ES_URL"]], max_retries=1, timeout=30))
    for repo in sb.es("/_snapshot"):  # none of the other tests on this cluster registers one
        sb.es("/_snapshot/" + repo, "DELETE")
    sb.es("/" + INDEX, "PUT", {"settings": {"number_of_shards": 2, "number_of_replicas": 1}})
    sb.es("/%s/_doc/1?refresh=true" % INDEX, "PUT", {"message": "kept"})

    # item 5: nothing registered, then an fs repository (relative to path.repo) with no snapshot
    refused = snapshots.refusals(cluster, "require")
    assert len(refused) == 1 and "no snapshot repository is registered" in refused[0], refused
    sb.es("/_snapshot/backups", "PUT", {"type": "fs", "settings": {"location": "backups-%s" % family}})
    try:
        refused = snapshots.refusals(cluster, "require")
        assert "there is none" in refused[0], refused
        taken = snapshots.take(cluster, None, "real-run-1", timeout=300, poll=1)
        assert taken == {"repository": "backups", "snapshot": "logstack-rollout-real-run-1", "state": "SUCCESS"}, taken
        snap = sb.es("/_snapshot/backups/logstack-rollout-real-run-1")["snapshots"][0]
        assert snap["state"] == "SUCCESS" and INDEX in snap["indices"], snap
        assert snapshots.refusals(cluster, "require") == []
        assert snapshots.refusals(cluster, "require", max_age="0s", now=snap["end_time_in_millis"] / 1000.0 + 60)
    finally:
        sb.es("/_snapshot/backups", "DELETE")  # unregistered; its files stay in this cluster's path.repo

    # item 6: no _migration/deprecations here (no x-pack; OpenSearch has none): not asked, no error
    assert versions.critical_deprecations(cluster) == []

    # item 9: node_names (7.8+, and OpenSearch); the server-side timeout stays below the client's
    master = sb.es("/_cluster/state/master_node")["master_node"]
    nodes = sb.es("/_nodes")["nodes"]
    other = sorted(n["name"] for nid, n in nodes.items() if nid != master)[0]
    try:
        assert cluster.add_voting_exclusion(other) is True
        state = sb.es("/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
        coordination = state["metadata"]["cluster_coordination"]
        assert [e["node_name"] for e in coordination["voting_config_exclusions"]] == [other]
        assert not [nid for nid, n in nodes.items()
                    if n["name"] == other and nid in coordination["last_committed_config"]]
    finally:
        cluster.clear_voting_exclusions()
    state = sb.es("/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
    assert state["metadata"]["cluster_coordination"]["voting_config_exclusions"] == []

