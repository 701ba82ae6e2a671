"""es_cluster_info and playbooks/cluster-info.yml against the sandbox: a cluster whose
nodes follow EC2 instances in moto, presented as Elasticsearch 7.17 / 8.x / 9.x,
over HTTPS with its generated CA and authentication."""
import json
import os
import subprocess
import sys
import time

import boto3

import pytest
import yaml

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient, EsError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
from test_cluster_info_module import run_module  # noqa: E402  (same runner for both files)


def _scenario(replicated_only=False, **es):
    """sandbox/scenarios/small.yml with the Elasticsearch presentation the test asks for."""
    with open(os.path.join(ROOT, "sandbox", "scenarios", "small.yml"), encoding="utf-8") as fh:
        scenario = yaml.safe_load(fh)
    scenario.pop("writer", None)  # a quiet cluster: every count below is stable
    if replicated_only:  # for tests that terminate a node: no index may live on it alone
        scenario["indices"] = [i for i in scenario["indices"] if i.get("replicas", 1) > 0]
    scenario["es"] = dict(scenario.get("es") or {}, **es)
    return scenario


@pytest.fixture
def sandbox_up(sandbox_process):
    """A background sandbox of small.yml as the test asks; (environment for a module run, scenario)."""
    def up(replicated_only=False, **es):
        scenario = _scenario(replicated_only=replicated_only, **es)
        sb = sandbox_process(scenario)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ES_"))}
        env.update(sb.env, AWS_EC2_METADATA_DISABLED="true")
        return env, scenario

    return up


def _until(read, done, timeout=120):
    """read() until done(value), tolerating the 503s of a cluster electing a master."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        try:
            value = read()
        except EsError as exc:
            if exc.status != 503:
                raise
        else:
            if done(value):
                return value
        time.sleep(0.3)
    return value


def _es(env):
    return EsClient(env["ES_URL"].split(","), username=env.get("ES_USERNAME"), password=env.get("ES_PASSWORD"),
                    api_key=env.get("ES_API_KEY"), ca_file=env.get("ES_CA_FILE"))


@pytest.mark.parametrize("version, https, auth", [
    ("7.17.25", True, "basic"),
    ("8.15.0", False, "none"),
    ("9.1.0", True, "api_key"),
])
def test_every_node_is_mapped_to_its_instance_and_found_outdated(sandbox_up, tmp_path, version, https, auth):
    env, scenario = sandbox_up(version=version, https=https, auth=auth)
    assert env["ES_URL"].startswith("https://" if https else "http://")
    result, output = run_module({"asg_tags": {"logstack:cluster": scenario["cluster_name"]}}, env=env,
                                tmp_path=tmp_path)
    assert result.get("failed") is not True, result.get("msg") or output[-2000:]
    assert result["changed"] is False
    assert result["cluster"]["version"] == version
    health = result["health"]
    nodes = result["nodes"]
    assert len(nodes) == 3 and all(n["master_eligible"] and n["data"] for n in nodes)
    # The sandbox rolled the launch template to the new AMI once the cluster formed.
    assert all(n["instance_id"] and n["asg"] == "es-nodes" and n["outdated"] for n in nodes)
    assert all(n["version_tag"] == "8.14.3" and n["version"] == "8.14.3" for n in nodes)
    assert sorted(result["outdated_nodes"]) == sorted(n["name"] for n in nodes)
    assert result["unmapped_nodes"] == [] and result["instances_without_node"] == []
    [group] = result["groups"]
    assert group["target"]["version"] == "8.15.0" and sorted(group["instances"]) == sorted(
        n["instance_id"] for n in nodes)
    assert [n["name"] for n in nodes if n["elected_master"]] == [result["elected_master"]]
    assert sum(n["shards"] for n in nodes) == health["active_shards"]
    assert sum(n["primaries"] for n in nodes) == health["active_primary_shards"]
    assert result["voting_config_exclusions"] == [] and result["allocation_exclusions"] == {}


def test_wrong_credentials_and_wrong_ca_against_the_sandbox(sandbox_up, tmp_path):
    env, _ = sandbox_up(version="8.15.0", https=True, auth="basic")
    bad_password = dict(env, ES_PASSWORD="definitely-wrong")
    result, output = run_module({}, env=bad_password, tmp_path=tmp_path)
    assert result["msg"].startswith("Elasticsearch at %s refused the credentials (401" % env["ES_URL"])
    assert "definitely-wrong" not in output and "Traceback" not in output
    no_ca = {k: v for k, v in env.items() if k != "ES_CA_FILE"}
    result, output = run_module({}, env=no_ca, tmp_path=tmp_path)
    assert result["msg"].startswith("TLS to %s failed (certificate verify failed)" % env["ES_URL"])
    assert "Traceback" not in output


def test_exclusions_and_unassigned_copies_are_reported_with_their_deciders(sandbox_up, tmp_path):
    env, scenario = sandbox_up(version="8.15.0")
    es = _es(env)
    node_names = sorted(n["name"] for n in es.get("/_nodes")["nodes"].values())
    es.put("/_cluster/settings", body={"transient": {"cluster.routing.allocation.exclude._name": node_names[0]}})
    es.post("/_cluster/voting_config_exclusions", params={"node_names": node_names[1]})
    # Three copies of one shard more than three nodes can hold: same_shard keeps the extra one out.
    es.put("/logs-b/_settings", body={"index": {"number_of_replicas": 3}})
    try:
        result, output = run_module({}, env=env, tmp_path=tmp_path)
        assert result.get("failed") is not True, result.get("msg") or output[-2000:]
        assert result["allocation_exclusions"] == {"_name": [node_names[0]]}
        assert [e["node_name"] for e in result["voting_config_exclusions"]] == [node_names[1]]
        unassigned = [u for u in result["unassigned_shards"] if u["index"] == "logs-b"]
        assert unassigned and all(not u["primary"] for u in unassigned)
        for copy in unassigned:
            assert "same_shard" in copy["allocation"]["blocked_by"], copy
            assert copy["allocation"]["reason"] in ("REPLICA_ADDED", "INDEX_CREATED")
        assert result["only_version_blocked_replicas_unassigned"] is False
        assert any(line.startswith("allocation exclude._name: %s" % node_names[0]) for line in result["summary"])
    finally:
        es.put("/_cluster/settings", body={"transient": {"cluster.routing.allocation.exclude._name": None}})
        es.delete("/_cluster/voting_config_exclusions", params={"wait_for_removal": "false"})


def test_replica_kept_off_older_nodes_is_the_version_blocked_yellow(sandbox_up, tmp_path):
    env, scenario = sandbox_up(version="8.15.0", replicated_only=True)
    es = _es(env)
    asg = boto3.client("autoscaling", region_name=env["AWS_REGION"], endpoint_url=env["AWS_ENDPOINT_URL"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    [group] = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
    # Auto Scaling replaces the instance from the rolled launch template: an 8.15.0 node joins.
    asg.terminate_instance_in_auto_scaling_group(InstanceId=group["Instances"][0]["InstanceId"],
                                                 ShouldDecrementDesiredCapacity=False)
    # The terminated node may have been the elected master: ride out the no-master window (503).
    versions = _until(lambda: sorted(n["version"] for n in es.get("/_nodes")["nodes"].values()),
                      lambda v: v == ["8.14.3", "8.14.3", "8.15.0"])
    assert versions == ["8.14.3", "8.14.3", "8.15.0"]
    _until(lambda: es.get("/_cluster/health"),
           lambda h: h["status"] == "green" and not h["relocating_shards"] and not h["initializing_shards"])
    # A primary on the new node (pinned there, then the pin lifted): its replica may not go to an older node.
    new_node = next(n["name"] for n in es.get("/_nodes")["nodes"].values() if n["version"] == "8.15.0")
    es.put("/fresh", body={"settings": {"number_of_shards": 1, "number_of_replicas": 1,
                                        "index.routing.allocation.require._name": new_node}})
    # wait_for_status, not wait_for_active_shards: the latter counts active shards of every index.
    health = es.get("/_cluster/health/fresh", params={"wait_for_status": "yellow", "timeout": "30s"})
    assert health["status"] == "yellow", health
    es.put("/fresh/_settings", body={"index.routing.allocation.require._name": None})
    placed = {s["prirep"]: s for s in es.get("/_cat/shards/fresh", params={"format": "json"})}
    assert placed["p"]["node"] == new_node and placed["r"]["state"] == "UNASSIGNED"
    result, output = run_module({"asg_tags": {"logstack:cluster": scenario["cluster_name"]}}, env=env,
                                tmp_path=tmp_path)
    assert result.get("failed") is not True, result.get("msg") or output[-2000:]
    assert result["health"]["status"] == "yellow"
    [copy] = result["unassigned_shards"]
    assert (copy["index"], copy["primary"]) == ("fresh", False)
    assert copy["allocation"]["blocked_by"] == ["node_version", "same_shard"]
    assert any("older than the primary version [8.15.0]" in d["explanation"] for d in copy["allocation"]["deciders"])
    assert result["only_version_blocked_replicas_unassigned"] is True
    # The replacement runs the launch template's image: current; the other two are not.
    current = [n["name"] for n in result["nodes"] if n["outdated"] is False]
    assert current == [new_node] and len(result["outdated_nodes"]) == 2
    # Any other reason to stay unassigned (here an allocation filter) is not the version-skew yellow.
    es.put("/fresh/_settings", body={"index": {"routing": {"allocation": {"exclude": {"_name": new_node}}}}})
    result, output = run_module({}, env=env, tmp_path=tmp_path)
    assert result["only_version_blocked_replicas_unassigned"] is False, result["unassigned_shards"]


def test_cluster_info_playbook_prints_the_summary_and_a_clean_audit():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ES_"))}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               PATH=BIN + os.pathsep + env.get("PATH", ""))
    env.pop("SANDBOX_CLUSTER_NAME", None)  # the sandbox exports it (its groups' logstack:cluster tag)
    proc = subprocess.run([sys.executable, "-m", "sandbox", "run", "--scenario", "sandbox/scenarios/demo.yml", "--",
                           "ansible-playbook", "playbooks/cluster-info.yml", "-i", "inventories/sandbox"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The YAML callback folds long lines: compare with whitespace collapsed.
    out = " ".join(proc.stdout.split())
    assert "elasticsearch 8.15.0 logs-demo: green, 6 nodes (3 data), elected master master-" in out
    assert "outdated nodes: data-" in out and "nodes without an instance: none" in out
    assert out.count("asg=es-data OUTDATED(image") == 3 and "asg es-master desired=3" in out
    audit = json.loads(proc.stdout.strip().splitlines()[-1])
    assert audit["docs_lost"] == 0 and audit["unknown_requests"] == 0
    assert audit["nodes_replaced"] == 0  # it only reads
