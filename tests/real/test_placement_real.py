"""Placement, zones, grouped explains and node ids on real Elasticsearch and OpenSearch clusters (issue 15
items 1-4).

One real cluster of three nodes per family: a master-eligible data node on the old version in zone a
and one in zone b, and a data-only node on the new version already in zone b (Elasticsearch 7.16 /
7.17, OpenSearch 2.19 / 3.9; data-only: a newer elected master would keep the older nodes from
joining): the planner's preflight, its grouped allocation explains and the drain step run against the
server's own deciders (awareness, shards limit, node_version) and its ``exclude._id``; each refusal the
planner computes is checked against the real allocation explain.
"""
from __future__ import annotations

import time

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout import planner
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import EXCLUDE_ID, Cluster
from ansible_collections.logstack.elk.plugins.module_utils.rollout.node import NodeReplacement
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import Options

from tests.real.conftest import scenario
from tests.sandbox_plugin import wait_for

ZONE = "aws_availability_zone"
FORCED = {"cluster.routing.allocation.awareness.attributes": ZONE,
          "cluster.routing.allocation.awareness.force.%s.values" % ZONE: "us-east-1a,us-east-1b"}
SKEWED = 12


class Counting(Cluster):
    explained = 0

    def explain(self, *args, **kwargs):
        self.explained += 1
        return super().explain(*args, **kwargs)


def wait(predicate, what=""):
    """A real cluster's reaction: seconds, polled once a second."""
    return wait_for(predicate, timeout=180, interval=1, what=what)


def settle(sb):
    """Green with nothing moving (real Elasticsearch rebalances after indices go or awareness changes)."""
    def settled():
        h = sb.es("/_cluster/health")
        return h["status"] == "green" and not h["relocating_shards"] and not h["initializing_shards"]
    wait(settled, what="green with nothing moving")
    time.sleep(2)
    wait(settled, what="green with nothing moving")


def no_deciders(explain):
    return {d["decider"] for n in explain.get("node_allocation_decisions") or [] for d in n.get("deciders") or []
            if d["decision"] == "NO"}


VERSIONS = {"elasticsearch": ("7.16.3", "7.17.29"), "opensearch": ("2.19.6", "3.9.0")}


@pytest.mark.parametrize("family", ["elasticsearch", "opensearch"])
def test_placement_explains_and_node_ids_on_a_real_cluster(real_sandbox, monkeypatch, family):
    old, new = VERSIONS[family]
    spec = scenario("real-small.yml", cluster_name="logs-real-placement", writer=None,
                    real={"distribution": family, "heap": "256m", "node_settings": scenario(
                        "real-small.yml")["real"]["node_settings"]},
                    amis={"old": {"es_version": old}, "new": {"es_version": new}}, roll_to={"ami": "new"},
                    groups=[{"name": "es-a", "role": "mixed", "size": 1, "ami": "old", "zone": "us-east-1a"},
                            {"name": "es-b", "role": "mixed", "size": 1, "ami": "old", "zone": "us-east-1b"},
                            {"name": "es-new", "role": "data", "size": 1, "ami": "new", "zone": "us-east-1b"}],
                    # kept off the new node until formed: a primary placed there at random would leave its
                    # replica unassignable on the old nodes (node_version) and the cluster never green
                    indices=[{"name": "logs", "primaries": 2, "replicas": 1, "docs": 200, "size": "1MB",
                              "settings": {"index.routing.allocation.exclude._name": "data-*"}}])
    spec["name"] = "real-placement-" + family
    sb = real_sandbox(spec)
    sb.es("/logs/_settings", "PUT", {"index.routing.allocation.exclude._name": None})
    settle(sb)  # copies rebalance onto the new node: a relocating copy is on two nodes for a moment
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    cluster = Counting(EsClient([sb.env["ES_URL"]], max_retries=1))
    aws = Aws(region=sb.env["AWS_REGION"], endpoint_url=sb.env["AWS_ENDPOINT_URL"], max_attempts=2)
    opts = Options(asg_names=["es-a", "es-b", "es-new"])
    nodes = sb.es("/_nodes")["nodes"]
    by_zone = {}
    for nid, n in nodes.items():
        by_zone.setdefault((n["attributes"][ZONE], n["version"]), []).append((nid, n["name"]))
    (a_id, a_name), = by_zone[("us-east-1a", old)]
    (b_id, b_name), = by_zone[("us-east-1b", old)]
    (new_id, new_name), = by_zone[("us-east-1b", new)]

    # 1. nothing in the way: no placement refusal
    _world, plan, refused = planner.preflight(cluster, aws, opts)
    assert {c["node_name"] for c in plan} == {a_name, b_name}
    assert not [r for r in refused if r.startswith("placement:")], refused

    # 2. (item 3) replicas of many indices held by the version skew: one explain for all of them
    for i in range(SKEWED):
        sb.es("/skew-%02d" % i, "PUT", {"settings": {"number_of_shards": 1, "number_of_replicas": 1,
                                                     "index.routing.allocation.require._name": new_name}})
    wait(lambda: sb.es("/_cluster/health")["active_primary_shards"] >= SKEWED + 2, what="the skew primaries")
    sb.es("/skew-*/_settings", "PUT", {"index.routing.allocation.require._name": None})
    wait(lambda: sb.es("/_cluster/health")["unassigned_shards"] == SKEWED and
         not sb.es("/_cluster/health")["relocating_shards"], what="the skew replicas unassigned")
    exp = sb.es("/_cluster/allocation/explain", "POST", {"index": "skew-00", "shard": 0, "primary": False})
    assert no_deciders(exp) == {"node_version", "same_shard"}, exp
    world = planner.World(cluster, aws, opts)
    cand = next(c for c in world.candidates() if c["node_name"] == a_name)
    step = NodeReplacement(cluster, aws, opts, cand["instance_id"], a_name, a_id, "es-a")
    cluster.explained = 0
    refused = step._refusals()
    assert not [r for r in refused if r.startswith("green_or_version_skew_yellow")], refused
    assert cluster.explained == 1
    sb.es("/skew-*", "DELETE")
    settle(sb)

    # 3. (items 1, 2) forced awareness on the zone: zone a's only node can hand nothing to zone b
    sb.es("/_cluster/settings", "PUT", {"persistent": FORCED})
    settle(sb)
    _world, _plan, refused = planner.preflight(cluster, aws, opts)
    mine = [r for r in refused if r.startswith("placement:") and " on %s have" % a_name in r]
    assert len(mine) == 1 and "awareness (cluster.routing.allocation.awareness.attributes=aws_availability_zone" \
        in mine[0] and "use strategy surge" in mine[0], refused
    assert not [r for r in refused if r.startswith("placement:") and b_name in r], refused
    # (item 4) the drain excludes by _id; real Elasticsearch's awareness keeps the copies, and the drain
    # ends on them because each is started in zone b
    step = NodeReplacement(cluster, aws, opts, cand["instance_id"], a_name, a_id, "es-a", poll_interval=1,
                           drain_method="exclusion", timeouts={"drain": 120, "gate": 120})
    # (the gate's elected_master_last may refuse zone a's node: the drain itself is what is shown here)
    step._start_drain(cluster.view(), gate=False)
    detail, _waited = step.wait(120, step._drained)
    settings = sb.es("/_cluster/settings?flat_settings=true")["persistent"]
    assert settings.get(EXCLUDE_ID) == a_id, settings
    assert "have a started copy on another node" in detail and "awareness" in detail, detail
    row = next(r for r in sb.es("/_cat/shards/logs?format=json") if r["node"] == a_name)
    exp = sb.es("/_cluster/allocation/explain", "POST",
                {"index": "logs", "shard": int(row["shard"]), "primary": row["prirep"] == "p", "current_node": a_name})
    assert exp["can_move_to_other_node"] == "no" and "awareness" in no_deciders(exp), exp
    sb.es("/_cluster/settings", "PUT", {"persistent": dict({k: None for k in FORCED}, **{EXCLUDE_ID: None})})
    settle(sb)

    # 4. (item 2) one shard per node for an index without replicas: no node can take another
    sb.es("/solo", "PUT", {"settings": {"number_of_shards": 3, "number_of_replicas": 0,
                                        "index.routing.allocation.total_shards_per_node": 1}})
    settle(sb)
    _world, _plan, refused = planner.preflight(cluster, aws, opts)
    limits = [r for r in refused if "shards_limit (index.routing.allocation.total_shards_per_node=1)" in r]
    assert len(limits) == 2 and all("the drain would wait until its timeout" in r for r in limits), refused
    sb.es("/_cluster/settings", "PUT", {"persistent": {EXCLUDE_ID: b_id}})
    row = next(r for r in sb.es("/_cat/shards/solo?format=json") if r["node"] == b_name)
    exp = sb.es("/_cluster/allocation/explain", "POST",
                {"index": "solo", "shard": int(row["shard"]), "primary": True, "current_node": b_name})
    assert exp["can_move_to_other_node"] == "no" and "shards_limit" in no_deciders(exp), exp
    sb.es("/_cluster/settings", "PUT", {"persistent": {EXCLUDE_ID: None}})
