"""Every unassigned copy is explained, with requests bounded by grouping (issue 15 item 3).

A cluster mid-upgrade where 25 indices' replicas wait for a node as new as their primary's: the gate
of the next node sees a yellow explained by the version skew only, asking the sandbox's Elasticsearch
one allocation explain per distinct situation instead of one per shard (and not stopping at 20).
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout import planner
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster
from ansible_collections.logstack.elk.plugins.module_utils.rollout.node import NodeReplacement
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import Options

from tests.sandbox_plugin import mini_scenario, wait_for

INDICES = 25
EXCLUDE = "cluster.routing.allocation.exclude._name"


class Counting(Cluster):
    """The rollout's Cluster, counting the allocation explain requests it sends."""

    explained = 0

    def explain(self, *args, **kwargs):
        self.explained += 1
        return super().explain(*args, **kwargs)


def test_25_version_skew_replicas_are_all_explained_with_one_request(sandbox_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    path = mini_scenario(tmp_path, "skew", [
        {"name": "es-master", "role": "master", "size": 3, "ami": "es-8.14"},
        {"name": "es-data", "role": "data", "size": 2, "ami": "es-8.14"},
        {"name": "es-new", "role": "data", "size": 1, "ami": "es-8.15"}], [])
    sbx = sandbox_factory(str(path))
    old = sorted(n["name"] for n in sbx.nodes().values() if n["version"] == "8.14.3" and "data" in n["roles"])
    # the primaries on the new node: the old ones excluded while the indices are created
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {EXCLUDE: ",".join(old)}})
    for i in range(INDICES):
        sbx.es.ok("PUT", "/logs-%02d" % i, {"settings": {"number_of_shards": 1, "number_of_replicas": 1}})
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {EXCLUDE: None}})
    wait_for(lambda: sbx.es.get("/_cluster/health")["unassigned_shards"] == INDICES, timeout=10,
             what="the replicas to stay unassigned")
    explain = sbx.es.ok("POST", "/_cluster/allocation/explain", {"index": "logs-24", "shard": 0, "primary": False})
    assert {d["decider"] for n in explain["node_allocation_decisions"] for d in n["deciders"]} == \
        {"node_version", "same_shard"}, explain  # the precondition: every replica is held by the version skew

    cluster = Counting(EsClient([sbx.sb.es_url], max_retries=0))
    aws = Aws(region="us-east-1", endpoint_url=sbx.sb.world.endpoint, max_attempts=2)
    opts = Options(asg_names=["es-master", "es-data", "es-new"])
    world = planner.World(cluster, aws, opts)
    cand = next(c for c in world.candidates() if c["node_name"] == old[0])
    step = NodeReplacement(cluster, aws, opts, cand["instance_id"], old[0], cand["node_id"], "es-data")
    refused = step._refusals()
    assert not [r for r in refused if r.startswith("green_or_version_skew_yellow")], refused
    assert cluster.explained == 1
    # what a failure message shows stays short: ten shards at most
    assert len(step.diagnose()["unassigned"]) == 10
