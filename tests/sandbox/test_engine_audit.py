"""What the audit lets a test assert beyond the cluster's health, and how to make a cluster
red on purpose (index allocation filters), as a test of a refusal needs."""
from __future__ import annotations

from tests.sandbox_plugin import wait_for

MB = 1024 ** 2


def test_audit_counts_requests_that_change_something_and_not_reads_sent_with_post(sandbox_factory):
    sbx = sandbox_factory("small.yml")
    assert sbx.audit()["mutating_requests"] == 0  # the sandbox's own set-up is not counted
    # What a check-mode run may do: reads, including those Elasticsearch takes as POST.
    sbx.es.get("/_cluster/health")
    sbx.es.get("/_cat/shards?format=json")
    sbx.es.ok("POST", "/logs-a/_search", {"size": 0, "query": {"match_all": {}}})
    sbx.es.ok("POST", "/logs-a/_count", {"query": {"match_all": {}}})
    sbx.es.ok("POST", "/_cluster/allocation/explain", {"index": "logs-a", "shard": 0, "primary": True,
                                                       "current_node": sbx.shards("logs-a")[0]["node"]})
    sbx.es.ok("POST", "/logs-a/_refresh")
    audit = sbx.audit()
    assert audit["mutating_requests"] == 0, audit["mutations"]
    assert audit["mutations"] == []
    # What it must not do: any change, refused or not.
    sbx.es.ok("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.enable": "primaries"}})
    assert sbx.es.call("DELETE", "/no-such-index")[0] == 404
    sbx.es.ok("POST", "/_cluster/voting_config_exclusions?node_names=" + sbx.master_name() + "&timeout=5s")
    audit = sbx.audit()
    assert audit["mutating_requests"] == 3
    assert audit["mutations"][0] == "PUT /_cluster/settings -> 200"
    assert audit["mutations"][1] == "DELETE /no-such-index -> 404"
    assert audit["mutations"][2].startswith("POST /_cluster/voting_config_exclusions -> ")


def test_an_index_required_on_a_node_that_does_not_exist_is_red_until_the_filter_goes(sandbox_factory):
    sbx = sandbox_factory("small.yml")
    sbx.es.ok("PUT", "/held", {"settings": {"index.routing.allocation.require._name": "nosuchnode",
                                             "index.number_of_replicas": 0}})
    health = sbx.es.get("/_cluster/health")
    assert health["status"] == "red"
    assert health["unassigned_primary_shards"] == 1
    explain = sbx.es.ok("POST", "/_cluster/allocation/explain", {"index": "held", "shard": 0, "primary": True})
    assert explain["can_allocate"] == "no"
    assert explain["unassigned_info"]["reason"] == "INDEX_CREATED"
    for entry in explain["node_allocation_decisions"]:
        assert [d["decider"] for d in entry["deciders"]] == ["filter"]
        assert entry["deciders"][0]["explanation"] == \
            'node does not match index setting [index.routing.allocation.require] filters [_name:"nosuchnode"]'
    # exclude-everything is red too, and reads the same way through nested settings
    sbx.es.ok("PUT", "/shunned", {"settings": {"index": {"routing": {"allocation": {"exclude": {"_name": "*"}}}}}})
    assert sbx.es.get("/_cluster/health/shunned")["status"] == "red"
    wait_for(lambda: sbx.audit()["red_seconds"] > 0, what="the audit to count red time")
    # Lifting the filter lets the primary start: the cluster is red by setting, not broken.
    sbx.es.ok("PUT", "/held/_settings", {"index.routing.allocation.require._name": None})
    sbx.es.ok("DELETE", "/shunned")
    wait_for(lambda: sbx.es.get("/_cluster/health")["status"] == "green", what="green once the filter is gone")
    assert sbx.audit()["docs_lost"] == 0


def test_the_lower_bound_counts_each_outdated_node_once_and_one_election(sandbox_factory):
    # split.yml: 6 outdated nodes booting in 0.5 s, 9 MB of shard copies (logs-a 2 x 2 MB twice,
    # single 1 MB) at 20 MB/s, and the elected master among them: one election of 1 s.
    sbx = sandbox_factory("split.yml")
    audit = sbx.audit()
    assert audit["outdated_nodes_at_start"] == 6
    assert audit["lower_bound_seconds"] == round(6 * 0.5 + 9 * MB / (20 * MB) + 1.0, 2)
