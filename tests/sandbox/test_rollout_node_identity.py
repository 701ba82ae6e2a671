"""A replacement that comes up with the departed node's name (issue 15 item 4).

EC2 reuses private IPs and Elasticsearch's default node name is the host name, so a replacement can
carry the name of the node it replaces. The sandbox's reuse_names gives it that name; the node's
steps (rollout/node.py, draining.py) against the sandbox must tell the two apart by node id and
instance id: the drain excludes by _id, the replacement is not taken for the departed node, and
nothing is left excluded afterwards.
"""
from __future__ import annotations

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout import planner
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster
from ansible_collections.logstack.elk.plugins.module_utils.rollout.node import NodeReplacement
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import Options

from tests.sandbox_plugin import mini_scenario, wait_for


@pytest.mark.parametrize("drain_method", ["exclusion", "auto"])
def test_a_replacement_with_the_departed_nodes_name_is_a_new_node(sandbox_factory, tmp_path, monkeypatch,
                                                                   drain_method):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    path = mini_scenario(tmp_path, "names", [
        {"name": "es-master", "role": "master", "size": 3, "ami": "es-8.14"},
        {"name": "es-data", "role": "data", "size": 3, "ami": "es-8.14", "reuse_names": True}],
        [{"name": "logs", "primaries": 3, "replicas": 1, "docs": 300, "size": "3MB"}])
    sbx = sandbox_factory(str(path))
    cluster = Cluster(EsClient([sbx.sb.es_url], max_retries=0))
    aws = Aws(region="us-east-1", endpoint_url=sbx.sb.world.endpoint, max_attempts=2)
    opts = Options(asg_names=["es-master", "es-data"])
    world = planner.World(cluster, aws, opts)
    cand = world.candidates()[0]
    step = NodeReplacement(cluster, aws, opts, cand["instance_id"], cand["node_name"], cand["node_id"], "es-data",
                           known_instance_ids=sorted(world.group_of), poll_interval=0.2, drain_method=drain_method,
                           timeouts={"drain": 60, "join": 60, "leave": 60, "health": 60, "gate": 60})
    entries = [step.run(name) for name in ("drain", "terminate", "wait_left", "wait_joined")]
    if drain_method == "exclusion":
        assert "allocation exclusion" in entries[0]["detail"]
    (new,) = entries[-1]["new_nodes"]
    assert new["node_name"] == cand["node_name"] and new["node_id"] != cand["node_id"], new  # the name came back
    lifted = step.run("lift")
    assert lifted["detail"].startswith("lifted") or lifted["detail"] == "nothing to lift", lifted
    step.run("wait_healthy")
    settings = sbx.es.get("/_cluster/settings?flat_settings=true")
    assert not [k for scope in settings.values() for k, v in scope.items() if "exclude" in k and v], settings
    assert not sbx.es.get("/_nodes/shutdown")["nodes"]
    # the replacement takes shards again (nothing holds it out under the old name)
    sbx.es.ok("PUT", "/more", {"settings": {"number_of_shards": 6, "number_of_replicas": 0}})
    wait_for(lambda: any(r["node"] == new["node_name"] and r["state"] == "STARTED" for r in sbx.shards("more")),
             timeout=20, what="a shard on the replacement")
