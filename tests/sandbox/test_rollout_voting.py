"""Voting configuration exclusions across versions (issue 15 item 9): the rollout's request
(rollout/voting.py through Cluster.add_voting_exclusion and the prepare step) against the sandbox
presenting Elasticsearch 7.7 (path form only), 8.x (node_names only) and a slow reconfiguration."""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster

from tests.sandbox.test_rollout_leftovers import clients, settled, step_for, variant


def excluded(sbx):
    state = sbx.es.get("/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
    return [e["node_name"] for e in state["metadata"]["cluster_coordination"]["voting_config_exclusions"]]


def a_master(sbx, elected=False):
    return sorted(n["name"] for n in sbx.nodes().values()
                  if "master" in n["roles"] and (n["name"] == sbx.master_name()) == elected)[0]


def test_elasticsearch_7_7_takes_the_node_in_the_path_and_8_refuses_that_form(sandbox_factory, tmp_path):
    old = sandbox_factory(variant(tmp_path, es={"version": "7.7.1"},
                                  amis={"es-7.6": {"es_version": "7.6.2"}, "es-7.7": {"es_version": "7.7.1"}},
                                  groups=[{"name": "es-master", "role": "master", "size": 3, "ami": "es-7.6"},
                                          {"name": "es-data", "role": "data", "size": 3, "ami": "es-7.6"}],
                                  roll_to={"ami": "es-7.7"}))
    settled(old, 6)
    name = a_master(old)
    # the precondition: 7.7 has no node_names parameter
    status, body = old.es.call("POST", "/_cluster/voting_config_exclusions?node_names=%s" % name)
    assert status == 400 and "unrecognized parameter" in body["error"]["reason"], body
    assert Cluster(EsClient([old.sb.es_url], max_retries=0)).add_voting_exclusion(name) is True
    assert excluded(old) == [name]


def test_elasticsearch_8_takes_node_names_and_has_no_path_form(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    settled(sbx, 6)
    name = a_master(sbx)
    status, body = sbx.es.call("POST", "/_cluster/voting_config_exclusions/%s" % name)
    assert status == 400 and "no handler found" in body["error"]["reason"], body
    assert Cluster(EsClient([sbx.sb.es_url], max_retries=0)).add_voting_exclusion(name) is True
    assert excluded(sbx) == [name]


def test_the_server_side_timeout_stays_below_the_clients():
    from ansible_collections.logstack.elk.plugins.module_utils.rollout import voting
    assert voting.server_timeout(30) == 25
    assert voting.server_timeout(30, budget=10) == 10
    assert voting.server_timeout(4) == 2
    assert all(voting.server_timeout(t) < t for t in (2, 3, 5, 6, 7, 30, 120))


def test_a_slow_reconfiguration_is_waited_for_within_the_prepare_steps_budget(sandbox_factory, tmp_path, monkeypatch):
    # excluding the elected master: it abdicates, and a new one is elected only after 5 s without a master,
    # longer than the request may wait (the client's read timeout is 4 s, so the server's is 2 s)
    sbx = sandbox_factory(variant(tmp_path, timing_no_master_seconds=5))
    cluster, aws, _groups, opts = clients(sbx, monkeypatch, compare=["version"])
    cluster.es = EsClient([sbx.sb.es_url], max_retries=0, timeout=4)
    settled(sbx, 6)
    elected = a_master(sbx, elected=True)
    # every other node counts as upgraded (its version tag), so the rules let the elected master go now
    others = [sbx.instance_of(n["name"]) for n in sbx.nodes().values() if n["name"] != elected]
    sbx.ec2.create_tags(Resources=others, Tags=[{"Key": "es_version", "Value": "8.15.0"}])
    step = step_for(sbx, cluster, aws, opts, elected, "es-master", timeouts={"gate": 10, "master": 30})
    step.es = cluster.es
    entry = step.run("prepare")
    assert entry["changed"] and "out of the voting configuration" in entry["detail"], entry
    assert sbx.master_name() != elected and excluded(sbx) == [elected]
