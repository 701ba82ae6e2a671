"""The replica promoted when a primary's node leaves is the one on the newest node (issue 15 item 8),
as Elasticsearch's RoutingNodes.activeReplicaWithHighestVersion picks it: a primary on an older node
could not send its operations to replicas on newer ones during a rolling upgrade."""
from __future__ import annotations

from tests.sandbox_plugin import mini_scenario, wait_for


def test_the_replica_on_the_newest_node_becomes_primary(sandbox_factory, tmp_path):
    path = mini_scenario(tmp_path, "promote", [
        {"name": "es-master", "role": "master", "size": 3, "ami": "es-8.14"},
        {"name": "es-data", "role": "data", "size": 3, "ami": "es-8.14"},
        {"name": "es-new", "role": "data", "size": 1, "ami": "es-8.15"}],
        # three copies of each shard over four data nodes
        [{"name": "logs", "primaries": 12, "replicas": 2, "docs": 1200, "size": "12MB"}], delayed_timeout="1h")
    sbx = sandbox_factory(str(path))
    nodes = sbx.nodes().values()
    newest = next(n["name"] for n in nodes if n["version"] == "8.15.0")
    old = sorted(n["name"] for n in nodes if n["version"] == "8.14.3" and "data" in n["roles"])
    rows = sbx.shards("logs")

    def choice_matters(victim):
        """Shards whose primary is on victim with a replica on the newest node and one on an older node."""
        out = set()
        for r in rows:
            if r["node"] == victim and r["prirep"] == "p":
                replicas = {x["node"] for x in rows if x["shard"] == r["shard"] and x["prirep"] == "r"}
                if newest in replicas and replicas & (set(old) - {victim}):
                    out.add(r["shard"])
        return out
    victim = max(old, key=lambda name: len(choice_matters(name)))
    lost = choice_matters(victim)
    assert len(lost) >= 2, rows  # the precondition
    sbx.terminate(victim)
    wait_for(lambda: victim not in [n["name"] for n in sbx.nodes().values()], timeout=20, what="the node to leave")
    primaries = {r["shard"]: r["node"] for r in sbx.shards("logs") if r["prirep"] == "p"}
    assert {primaries[s] for s in lost} == {newest}, (primaries, lost)
