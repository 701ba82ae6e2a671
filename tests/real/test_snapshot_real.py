"""Snapshots (issue 15 item 5) and voting exclusions (item 9) on a real Elasticsearch cluster:
the rollout's own code (rollout/snapshots.py, rollout/voting.py through Cluster, rollout/versions.py)
against real-small (3 mixed nodes, Elasticsearch 7.16.3 without x-pack; each node's path.repo is
the same directory, so an fs repository works as on a shared mount)."""
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout import snapshots, versions
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster


def test_snapshot_require_take_and_voting_exclusions_on_real_elasticsearch(real_sandbox):
    sb = real_sandbox("real-small.yml")
    cluster = Cluster(EsClient([sb.env["ES_URL"]], max_retries=1, timeout=30))

    # item 5: nothing registered, then an fs repository (relative to path.repo) with no snapshot
    refused = snapshots.refusals(cluster, "require")
    assert len(refused) == 1 and "no snapshot repository is registered" in refused[0], refused
    sb.es("/_snapshot/backups", "PUT", {"type": "fs", "settings": {"location": "backups"}})
    refused = snapshots.refusals(cluster, "require")
    assert "there is none" in refused[0], refused
    taken = snapshots.take(cluster, None, "real-run-1", timeout=300, poll=1)
    assert taken == {"repository": "backups", "snapshot": "logstack-rollout-real-run-1", "state": "SUCCESS"}, taken
    snap = sb.es("/_snapshot/backups/logstack-rollout-real-run-1")["snapshots"][0]
    assert snap["state"] == "SUCCESS" and "logs-2024.11.01" in snap["indices"], snap
    assert snapshots.refusals(cluster, "require") == []
    assert snapshots.refusals(cluster, "require", max_age="0s", now=snap["end_time_in_millis"] / 1000.0 + 60)

    # item 6: this build has no _migration/deprecations (no x-pack): not asked, no error
    assert versions.critical_deprecations(cluster) == []

    # item 9: 7.16 takes node_names; the server-side timeout stays below the client's (30 s -> 25 s)
    master = sb.es("/_cluster/state/master_node")["master_node"]
    nodes = sb.es("/_nodes")["nodes"]
    other = sorted(n["name"] for nid, n in nodes.items() if nid != master)[0]
    assert cluster.add_voting_exclusion(other) is True
    state = sb.es("/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
    coordination = state["metadata"]["cluster_coordination"]
    assert [e["node_name"] for e in coordination["voting_config_exclusions"]] == [other]
    assert not [nid for nid, n in nodes.items() if n["name"] == other and nid in coordination["last_committed_config"]]
    cluster.clear_voting_exclusions()
    state = sb.es("/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
    assert state["metadata"]["cluster_coordination"]["voting_config_exclusions"] == []
