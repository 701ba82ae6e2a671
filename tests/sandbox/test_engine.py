"""The sandbox's cluster engine, driven as the collection drives a real cluster:
boto3 against moto for AWS actions, the HTTP API for Elasticsearch.

Each test names the Elasticsearch behaviour it holds the sandbox to.
"""
from __future__ import annotations

import os
import time

from sandbox import allocation
from tests.sandbox_plugin import SCENARIOS, split_with, wait_for
from tests.sandbox.es_http import request


def _holder(sbx, index, shard=0, primary=True):
    row = next(r for r in sbx.shards(index) if int(r["shard"]) == shard and (r["prirep"] == "p") == primary)
    return row["node"]


def _replaced(sbx, victim, total=6):
    names = [n["name"] for n in sbx.nodes().values()]
    return victim not in names and len(names) == total


def _health(sbx):
    return sbx.es.get("/_cluster/health")


def test_terminating_the_only_holder_of_an_unreplicated_shard_loses_its_documents(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    holder = _holder(sbx, "single")
    before = sbx.audit()
    assert before["docs_lost"] == 0
    sbx.terminate(holder)

    wait_for(lambda: _health(sbx)["status"] == "red", what="red after losing the only copy")
    audit = sbx.audit()
    assert audit["docs_lost"] == 300
    assert audit["docs_expected"] == before["docs_expected"]
    explain = sbx.es.ok("POST", "/_cluster/allocation/explain", {"index": "single", "shard": 0, "primary": True})
    assert explain["can_allocate"] == "no_valid_shard_copy"
    assert sbx.es.get("/_cat/indices/single?format=json")[0]["health"] == "red"
    # The replacement instance joins, but an empty node cannot bring the data back.
    wait_for(lambda: _replaced(sbx, holder), what="replacement joined")
    assert _health(sbx)["status"] == "red"
    assert sbx.audit()["red_seconds"] > 0


def test_terminating_a_node_keeps_every_document_of_replicated_indices(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    single_holder = _holder(sbx, "single")
    victim = next(r["node"] for r in sbx.shards("logs-a") if r["node"] != single_holder)
    sbx.terminate(victim)

    wait_for(lambda: victim not in [n["name"] for n in sbx.nodes().values()], what="node left")
    assert _health(sbx)["status"] in ("yellow", "green")
    # delayed_timeout is 0s in this scenario: the replicas are rebuilt on the replacement
    wait_for(lambda: _replaced(sbx, victim), what="replacement joined")
    wait_for(lambda: sbx.es.call("GET", "/_cluster/health?wait_for_status=green&timeout=1s")[0] == 200,
             timeout=20, what="green again")
    audit = sbx.audit()
    assert audit["docs_lost"] == 0
    assert audit["red_seconds"] == 0
    assert audit["degraded_seconds"] > 0
    assert audit["max_nodes_out"] == 1
    assert audit["nodes_replaced"] == 1
    assert audit["shard_bytes_moved"] > 0
    counts = sbx.es.get("/_cat/indices/logs-a?format=json")
    assert counts[0]["docs.count"] == "1000"


def test_replica_is_promoted_when_the_primary_node_leaves(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    primary_node = _holder(sbx, "logs-a", 0, primary=True)
    replica_node = _holder(sbx, "logs-a", 0, primary=False)
    sbx.terminate(primary_node)

    def promoted():
        rows = [r for r in sbx.shards("logs-a") if int(r["shard"]) == 0 and r["prirep"] == "p"]
        return rows and rows[0]["node"] == replica_node and rows[0]["state"] == "STARTED"

    wait_for(promoted, what="replica promoted")
    assert sbx.es.get("/_cluster/health/logs-a")["status"] != "red"
    events = [e["event"] for e in sbx.sb.cluster.events]
    assert "replica_promoted" in events


def test_replica_is_refused_on_a_node_older_than_its_primary(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    old_nodes = [n["name"] for n in sbx.nodes().values() if "data" in n["roles"]]
    victim = next(n for n in old_nodes if n != _holder(sbx, "single"))
    sbx.terminate(victim)  # the group launches the 8.15 launch template version now
    new = wait_for(lambda: next((n for n in sbx.nodes().values()
                                 if n["version"] == "8.15.0" and "data" in n["roles"]), None), what="8.15 node")
    # Put a primary on the new node, then let its replica look for a home among 8.14 nodes.
    sbx.es.ok("PUT", "/fresh", {"settings": {"number_of_shards": 1, "number_of_replicas": 1,
                                             "index.routing.allocation.require._name": new["name"]}})
    wait_for(lambda: _holder(sbx, "fresh") == new["name"], what="primary on the new node")
    sbx.es.ok("PUT", "/fresh/_settings", {"index.routing.allocation.require._name": None})

    explain = sbx.es.ok("POST", "/_cluster/allocation/explain", {"index": "fresh", "shard": 0, "primary": False})
    assert explain["can_allocate"] == "no"
    by_node = {d["node_name"]: d for d in explain["node_allocation_decisions"]}
    for name, decision in by_node.items():
        deciders = {d["decider"]: d for d in decision["deciders"]}
        if name == new["name"]:
            assert "same_shard" in deciders
            continue
        assert deciders["node_version"]["decision"] == "NO"
        assert deciders["node_version"]["explanation"] == (
            "cannot allocate replica shard to a node with version [8.14.3] since this is older than the primary "
            "version [8.15.0]")
    assert _health(sbx)["status"] == "yellow"
    audit = wait_for(lambda: (a := sbx.audit())["degraded_seconds"] - a["degraded_seconds_excluding_version_skew"] > 0.3
                     and a, what="version-skew time counted apart")
    assert audit["docs_lost"] == 0


def test_the_cluster_has_no_master_for_a_moment_when_the_elected_master_leaves(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    master = sbx.master_name()
    sbx.terminate(master)
    status, body = wait_for(lambda: (r := sbx.es.call("GET", "/_cluster/health"))[0] == 503 and r, timeout=2,
                            what="no master")
    assert body["error"]["type"] == "master_not_discovered_exception"
    # with master_timeout the request waits for the election instead
    status, body = sbx.es.call("GET", "/_cluster/health?master_timeout=10s")
    assert status == 200
    new_master = sbx.master_name()
    assert new_master != master
    audit = sbx.audit()
    assert 0.5 < audit["no_master_seconds"] < 5
    assert audit["min_master_eligible_present"] == 2


def test_a_node_older_than_the_elected_master_cannot_join(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    older = sbx.sb.world.ami_ids["es-8.13"]
    lt = sbx.sb.world.launch_templates["es-data"]
    sbx.ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="$Latest",
                                           LaunchTemplateData={"ImageId": older})
    victim = next(n["name"] for n in sbx.nodes().values()
                  if "data" in n["roles"] and n["name"] != _holder(sbx, "single"))
    iid = sbx.terminate(victim)

    refused = wait_for(lambda: [e for e in sbx.sb.cluster.events if e["event"] == "join_refused"],
                       what="join refused")
    assert "older than the elected master" in refused[0]["message"]
    assert iid not in refused[0]["message"]  # it is the replacement that is refused
    assert len(sbx.nodes()) == 5
    assert sbx.audit()["max_nodes_out"] == 1


def test_allocation_exclusion_drains_a_node(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    victim = _holder(sbx, "single")
    sbx.es.ok("PUT", "/_cluster/settings",
              {"persistent": {"cluster.routing.allocation.exclude._name": victim}})
    wait_for(lambda: not [r for r in sbx.shards() if r["node"] and r["node"].startswith(victim)], timeout=20,
             what="node drained")
    assert _health(sbx)["status"] == "green"
    flat = sbx.es.get("/_cluster/settings?flat_settings=true")
    assert flat["persistent"] == {"cluster.routing.allocation.exclude._name": victim}
    nested = sbx.es.get("/_cluster/settings")
    assert nested["persistent"]["cluster"]["routing"]["allocation"]["exclude"]["_name"] == victim
    # a drained node can go without losing anything, even the 0-replica index
    sbx.terminate(victim)
    wait_for(lambda: _replaced(sbx, victim), what="replaced")
    assert sbx.audit()["docs_lost"] == 0
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.exclude._name": None}})
    assert sbx.es.get("/_cluster/settings")["persistent"] == {}


def test_allocation_enable_primaries_keeps_replicas_unassigned(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    sbx.es.ok("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.enable": "primaries"}})
    victim = next(r["node"] for r in sbx.shards("logs-a") if r["node"] != _holder(sbx, "single"))
    sbx.terminate(victim)
    wait_for(lambda: _replaced(sbx, victim), what="replacement joined")
    explain = sbx.es.ok("POST", "/_cluster/allocation/explain")
    assert explain["primary"] is False and explain["can_allocate"] == "no"
    texts = {d["explanation"] for n in explain["node_allocation_decisions"] for d in n.get("deciders", [])}
    assert "replica allocations are forbidden due to cluster setting [cluster.routing.allocation.enable=primaries]" \
        in texts
    status, _ = sbx.es.call("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.enable": "some"}})
    assert status == 400
    sbx.es.ok("PUT", "/_cluster/settings", {"transient": {"cluster.routing.allocation.enable": None}})
    wait_for(lambda: _health(sbx)["status"] == "green", timeout=20, what="green once replicas may allocate")


def test_voting_config_exclusion_removes_the_master_from_voting_and_it_abdicates(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    master = sbx.master_name()
    master_id, _ = sbx.node_by_name(master)
    status, _ = sbx.es.call("POST", f"/_cluster/voting_config_exclusions?node_names={master}&master_timeout=10s")
    assert status == 200
    state = sbx.es.call("GET", "/_cluster/state/metadata?master_timeout=10s")[1]
    coord = state["metadata"]["cluster_coordination"]
    assert master_id not in coord["last_committed_config"]
    assert coord["voting_config_exclusions"] == [{"node_id": master_id, "node_name": master}]
    assert sbx.es.call("GET", "/_cat/master?format=json&master_timeout=10s")[1][0]["node"] != master
    # both parameters, or neither, is a client error
    status, body = sbx.es.call("POST", "/_cluster/voting_config_exclusions")
    assert status == 400 and body["error"]["type"] == "illegal_argument_exception"
    # the excluded node is still in the cluster: waiting for its removal times out, not waiting clears
    sbx.es.ok("DELETE", "/_cluster/voting_config_exclusions?wait_for_removal=false")
    state = sbx.es.get("/_cluster/state/metadata")
    assert state["metadata"]["cluster_coordination"]["voting_config_exclusions"] == []


def test_losing_a_majority_of_the_voting_masters_makes_the_cluster_unavailable(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    masters = [n["name"] for n in sbx.nodes().values() if n["roles"] == ["master"]]
    sbx.terminate(masters[0], decrement=True)
    sbx.terminate(masters[1], decrement=True)
    wait_for(lambda: sbx.es.call("GET", "/_cluster/health")[0] == 503, timeout=2, what="master gone")
    # no master comes back: one voter of three is not a quorum
    status, body = sbx.es.call("GET", "/_cluster/health?master_timeout=1s")
    assert status == 503 and body["error"]["type"] == "master_not_discovered_exception"
    events = [e["event"] for e in sbx.sb.cluster.events]
    assert "quorum_lost" in events or "master_lost" in events
    assert sbx.sb.cluster.master_id is None
    assert sbx.audit()["min_master_eligible_present"] == 1


def test_node_shutdown_remove_drains_the_node_and_reports_complete(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    victim = _holder(sbx, "single")
    nid, _ = sbx.node_by_name(victim)
    sbx.es.ok("PUT", f"/_nodes/{nid}/shutdown", {"type": "remove", "reason": "rolling replacement"})
    first = sbx.es.get(f"/_nodes/{nid}/shutdown")["nodes"][0]
    assert first["type"] == "REMOVE" and first["status"] in ("IN_PROGRESS", "COMPLETE")
    done = wait_for(lambda: (s := sbx.es.get(f"/_nodes/{nid}/shutdown")["nodes"][0])["status"] == "COMPLETE" and s,
                    timeout=20, what="shutdown COMPLETE")
    assert done["shard_migration"]["shard_migrations_remaining"] == 0
    assert not [r for r in sbx.shards() if r["node"] and r["node"].startswith(victim)]
    status, body = sbx.es.call("PUT", f"/_nodes/{nid}/shutdown", {"type": "remove"})
    assert status == 400  # a reason is required
    sbx.es.ok("DELETE", f"/_nodes/{nid}/shutdown")
    status, body = sbx.es.call("DELETE", f"/_nodes/{nid}/shutdown")
    assert status == 404 and body["error"]["type"] == "resource_not_found_exception"
    assert sbx.es.get("/_nodes/shutdown") == {"nodes": []}


def test_health_waits_for_nodes_and_times_out_with_408(sandbox_factory):
    sbx = sandbox_factory("small.yml")
    status, body = sbx.es.call("GET", "/_cluster/health?wait_for_nodes=4&timeout=300ms")
    assert status == 408 and body["timed_out"] is True and body["number_of_nodes"] == 3
    status, body = sbx.es.call("GET", "/_cluster/health?wait_for_nodes=>=3&wait_for_status=green&timeout=1s")
    assert status == 200 and body["timed_out"] is False


def test_unknown_cluster_settings_are_rejected(sandbox_factory):
    sbx = sandbox_factory("small.yml")
    status, body = sbx.es.call("PUT", "/_cluster/settings", {"persistent": {"no.such.setting": 1}})
    assert status == 400
    assert body["error"]["reason"] == "persistent setting [no.such.setting], not recognized"



FAULTS = """
name: faults
cluster_name: faults
amis:
  old: {es_version: 8.14.3}
  new: {es_version: 8.15.0}
groups:
  - {name: es-nodes, role: mixed, size: 3, ami: old}
roll_to: {ami: new}
timing: {boot_to_join_seconds: 0.3, recovery_bytes_per_second: 20MB, no_master_seconds: 0.5, delayed_timeout: 0s}
indices:
  - {name: logs-a, primaries: 1, replicas: 1, docs: 100, size: 1MB}
writer: {every_seconds: 1, prefix: stream, shards: 1, replicas: 1, docs_per_second: 100}
faults:
%s
"""


def _faults_sandbox(sandbox_factory, tmp_path, faults):
    path = tmp_path / "faults.yml"
    path.write_text(FAULTS % faults)
    return sandbox_factory(str(path))


def test_es_unavailable_crash_and_the_continuous_writer_behave_as_declared(sandbox_factory, tmp_path):
    sbx = _faults_sandbox(sandbox_factory, tmp_path, """
  - {type: es_unavailable, at_seconds: 0, for_seconds: 1}
  - {type: crash, node: es-nodes/0, at_seconds: 1.5}""")
    status, body = sbx.es.call("GET", "/_cluster/health")
    assert status == 503
    wait_for(lambda: sbx.es.call("GET", "/_cluster/health")[0] == 200, timeout=5, what="API back")
    crashed = sbx.sb.world.initial_instances["es-nodes"][0]
    wait_for(lambda: crashed not in [n["attributes"]["aws_instance_id"] for n in sbx.nodes().values()],
             timeout=5, what="crashed node left")
    # the process died, the instance did not: EC2 still reports it running
    state = sbx.ec2.describe_instances(InstanceIds=[crashed])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "running"
    wait_for(lambda: len([i for i in sbx.es.get("/_cat/indices?format=json&master_timeout=5s")
                          if i["index"].startswith("stream-")]) >= 2, timeout=5, what="writer indices")
    audit = sbx.audit()
    assert audit["writer_docs_indexed"] > 100
    assert audit["docs_lost"] == 0 and audit["docs_expected"] == audit["docs_now"]
    assert audit["max_nodes_out"] == 1


def test_a_replacement_declared_never_to_join_stays_out_of_the_cluster(sandbox_factory, tmp_path):
    sbx = _faults_sandbox(sandbox_factory, tmp_path, "  - {type: never_join, group: es-nodes, nth_new_instance: 1}")
    victim = next(n["name"] for n in sbx.nodes().values() if n["name"] != sbx.master_name())
    sbx.terminate(victim)
    wait_for(lambda: victim not in [n["name"] for n in sbx.nodes().values()], what="victim left")
    group = sbx.asg.describe_auto_scaling_groups(AutoScalingGroupNames=["es-nodes"])["AutoScalingGroups"][0]
    assert len(group["Instances"]) == 3  # the ASG replaced it...
    time.sleep(1.0)  # ...well past boot_to_join_seconds
    assert len(sbx.nodes()) == 2  # ...but it never joined
    assert sbx.audit()["max_nodes_out"] == 1


def test_replicas_of_a_departed_node_wait_for_the_delayed_timeout(sandbox_factory, tmp_path):
    path = tmp_path / "delayed.yml"
    with open(os.path.join(SCENARIOS, "split.yml"), encoding="utf-8") as fh:
        text = fh.read()
    path.write_text(text.replace("delayed_timeout: 0s", "delayed_timeout: 2s"))
    sbx = sandbox_factory(str(path))
    victim = next(r["node"] for r in sbx.shards("logs-a") if r["node"] != _holder(sbx, "single"))
    sbx.terminate(victim)
    wait_for(lambda: _replaced(sbx, victim), what="replacement joined")
    health = _health(sbx)
    assert health["status"] == "yellow" and health["delayed_unassigned_shards"] >= 1
    explain = sbx.es.ok("POST", "/_cluster/allocation/explain")
    assert explain["can_allocate"] == "allocation_delayed"
    assert explain["unassigned_info"]["reason"] == "NODE_LEFT"
    assert 0 < explain["remaining_delay_in_millis"] <= 2000
    assert explain["allocate_explanation"].startswith(
        "The node containing this shard copy recently left the cluster. Elasticsearch is waiting for it to return.")
    wait_for(lambda: _health(sbx)["status"] == "green", timeout=10, what="allocated after the delay")


def test_the_node_shutdown_api_does_not_exist_before_7_15(sandbox_factory, tmp_path):
    path = tmp_path / "old.yml"
    path.write_text("""
amis: {a: {es_version: 7.10.2}}
es: {version: 7.10.2}
groups: [{name: es-nodes, role: mixed, size: 1, ami: a}]
""")
    sbx = sandbox_factory(str(path))
    nid = next(iter(sbx.nodes()))
    status, body = sbx.es.call("PUT", f"/_nodes/{nid}/shutdown", {"type": "remove", "reason": "r"})
    assert status == 400 and body == {"error": f"no handler found for uri [/_nodes/{nid}/shutdown] and method [PUT]"}
    assert sbx.audit()["unknown_requests"] == 1
    # and 7.x explanations read as 7.x wrote them
    status, body = sbx.es.call("POST", "/_cluster/allocation/explain")
    assert status == 400 and body["error"]["reason"].startswith("unable to find any unassigned shards to explain")


def test_voting_configuration_follows_elasticsearch_auto_shrink(sandbox_factory):
    sbx = sandbox_factory("split.yml")

    def config():
        coord = sbx.es.call("GET", "/_cluster/state/metadata?master_timeout=10s")[1]["metadata"]["cluster_coordination"]
        return sorted(coord["last_committed_config"])

    masters = {nid: n["name"] for nid, n in sbx.nodes().items() if n["roles"] == ["master"]}
    assert config() == sorted(masters)
    other = next(nid for nid, name in masters.items() if name != sbx.master_name())
    # excluding one of three leaves a configuration of the two others (not one)
    sbx.es.ok("POST", f"/_cluster/voting_config_exclusions?node_ids={other}")
    assert config() == sorted(nid for nid in masters if nid != other)
    sbx.es.ok("DELETE", "/_cluster/voting_config_exclusions?wait_for_removal=false")
    wait_for(lambda: config() == sorted(masters), what="back to three voters")
    # a voter that simply leaves stays in the configuration while fewer than 3 would remain...
    sbx.terminate(masters[other])
    wait_for(lambda: other not in [n for n in sbx.nodes()], what="voter left")
    assert other in config()
    # ...and is replaced by the new master-eligible node once it joins
    wait_for(lambda: len([n for n in sbx.nodes().values() if n["roles"] == ["master"]]) == 3, what="new master node")
    wait_for(lambda: other not in config() and len(config()) == 3, what="new voter")


def test_node_shutdown_is_stalled_when_a_shard_cannot_leave_the_node(sandbox_factory):
    sbx = sandbox_factory("split.yml")
    victim = _holder(sbx, "single")
    nid, _ = sbx.node_by_name(victim)
    sbx.es.ok("PUT", "/single/_settings", {"index.routing.allocation.require._name": victim})
    sbx.es.ok("PUT", f"/_nodes/{nid}/shutdown", {"type": "remove", "reason": "replace"})
    status = sbx.es.get(f"/_nodes/{nid}/shutdown")["nodes"][0]
    assert status["status"] == "STALLED"
    assert status["shard_migration"]["explanation"].startswith("shard [0] [primary] of index [single] cannot move")
    deciders = {d["decider"] for n in status["shard_migration"]["node_allocation_decision"]["node_allocation_decisions"]
                for d in n["deciders"]}
    assert "filter" in deciders
    # a restart-type shutdown needs no migration at all
    sbx.es.ok("PUT", f"/_nodes/{nid}/shutdown", {"type": "restart", "reason": "patch", "allocation_delay": "10m"})
    status = sbx.es.get(f"/_nodes/{nid}/shutdown")["nodes"][0]
    assert status["status"] == "COMPLETE" and status["type"] == "RESTART"


def test_health_refuses_a_wait_for_active_shards_that_is_not_a_count_as_a_bad_request(sandbox_factory):
    sbx = sandbox_factory("small.yml")
    for bad, reason in (("x", "cannot parse ActiveShardCount[x]"), ("-1", "shard count cannot be a negative value")):
        status, body = sbx.es.call("GET", f"/_cluster/health?wait_for_active_shards={bad}&timeout=1s")
        assert status == 400, body
        assert body["error"]["type"] == "illegal_argument_exception" and body["error"]["reason"] == reason
    assert sbx.es.call("GET", "/_cluster/health?wait_for_active_shards=all&timeout=1s")[0] == 200
    assert sbx.es.call("GET", "/_cluster/health?wait_for_active_shards=1&timeout=1s")[0] == 200
    assert sbx.audit()["internal_errors"] == 0


def test_recovery_bandwidth_caps_a_nodes_outgoing_traffic_as_well_as_its_incoming(sandbox_factory, tmp_path):
    # indices.recovery.max_bytes_per_sec limits a node's inbound and outbound recovery traffic: a node
    # draining to two others sends no faster than one recovery would.
    sbx = sandbox_factory(split_with(tmp_path, [{"name": "big", "primaries": 6, "replicas": 0, "docs": 600, "size": "6GB"}], "10MB"))
    victim = _holder(sbx, "big", shard=0)
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.exclude._name": victim}})
    cluster = sbx.sb.cluster
    victim_id = sbx.node_by_name(victim)[0]

    def outgoing():
        return [c for c in cluster.all_copies() if c.state == "RELOCATING" and c.node_id == victim_id]

    wait_for(lambda: len({c.relocating_node_id for c in outgoing()}) == 2, timeout=20,
             what="two recoveries from the drained node to two different nodes")
    with cluster.state.lock:  # the tick thread waits: one step of the engine, by hand
        copies = outgoing()
        assert len({c.relocating_node_id for c in copies}) == 2
        before = sum(c.recovery_left for c in copies)
        cluster._last_tick = max(c.recovery_started for c in copies) + 1e-3
        cluster._recover(1.0)
        moved = before - sum(c.recovery_left for c in copies)
    bandwidth = 10 * 1024 * 1024
    assert 0.99 * bandwidth <= moved <= 1.01 * bandwidth


def test_a_node_that_receives_and_sends_recoveries_shares_one_limit_between_them(sandbox_factory, tmp_path):
    # Elasticsearch has one recovery rate limiter per node (RecoverySettings.rateLimiter), paused on
    # by the chunks a node sends (RemoteRecoveryTargetHandler) and by those it receives
    # (PeerRecoveryTargetService): its inbound plus outbound recovery traffic stays under
    # indices.recovery.max_bytes_per_sec ("limits total inbound and outbound recovery traffic").
    sbx = sandbox_factory(split_with(tmp_path, [{"name": "a", "primaries": 1, "replicas": 0, "docs": 100, "size": "2GB"},
                                                {"name": "b", "primaries": 1, "replicas": 0, "docs": 100, "size": "2GB"}],
                                     "10MB"))
    x, y = _holder(sbx, "a"), _holder(sbx, "b")
    assert x != y  # placement on the node with the fewest shards
    z = next(n["name"] for n in sbx.nodes().values() if "data" in n["roles"] and n["name"] not in (x, y))
    # a moves x -> y while b moves y -> z: y receives one recovery and sends the other
    sbx.es.ok("PUT", "/a/_settings", {"index.routing.allocation.require._name": y})
    sbx.es.ok("PUT", "/b/_settings", {"index.routing.allocation.require._name": z})
    cluster = sbx.sb.cluster

    def moving():
        return [c for c in cluster.all_copies() if c.state == "RELOCATING"]

    wait_for(lambda: len(moving()) == 2, timeout=20, what="both relocations under way")
    with cluster.state.lock:  # one engine step by hand
        copies = moving()
        before = sum(c.recovery_left for c in copies)
        cluster._last_tick = max(c.recovery_started for c in copies) + 1e-3
        cluster._recover(1.0)
        moved = before - sum(c.recovery_left for c in copies)
    bandwidth = 10 * 1024 * 1024  # y's one limit, not one for each direction (that would be 2x)
    assert 0.99 * bandwidth <= moved <= 1.01 * bandwidth


def test_a_relocating_replica_copies_from_its_primarys_node_not_from_the_node_it_leaves(sandbox_factory, tmp_path):
    # ES recovers a replica from the active primary (IndicesClusterStateService
    # findSourceNodeForPeerRecovery) and counts the outgoing recovery on the primary's node, so
    # draining a node that holds replicas loads the primaries' nodes, not the drained one.
    sbx = sandbox_factory(split_with(tmp_path, [{"name": "r", "primaries": 1, "replicas": 1, "docs": 100, "size": "2GB"}], "10MB"))
    victim = _holder(sbx, "r", primary=False)
    primary_node = _holder(sbx, "r", primary=True)
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.exclude._name": victim}})
    cluster = sbx.sb.cluster
    victim_id, primary_id = sbx.node_by_name(victim)[0], sbx.node_by_name(primary_node)[0]

    def moving():
        return [c for c in cluster.all_copies() if c.state == "RELOCATING" and c.node_id == victim_id]

    wait_for(lambda: moving(), timeout=20, what="the replica relocating off the excluded node")
    with cluster.state.lock:
        incoming, outgoing = allocation.recoveries(cluster)
        assert outgoing.get(primary_id) == 1 and victim_id not in outgoing
        copy = moving()[0]
        assert allocation.relocation_source(cluster, copy) == primary_id
        # one engine step moves the primary node's share of bandwidth into the new copy
        before = copy.recovery_left
        cluster._last_tick = copy.recovery_started + 1e-3
        cluster._recover(1.0)
        assert 0.99 * 10 * 1024 * 1024 <= before - copy.recovery_left <= 1.01 * 10 * 1024 * 1024


def test_a_new_primary_is_not_throttled_by_peer_recoveries_into_its_node(sandbox_factory, tmp_path):
    # ES throttles an unassigned primary only on initial primary recoveries
    # (node_initial_primaries_recoveries), so a new index still gets its primary on a node
    # whose incoming recovery slots a drain has filled.
    sbx = sandbox_factory(split_with(tmp_path, [{"name": "big", "primaries": 1, "replicas": 0, "docs": 100, "size": "2GB"}], "10MB"))
    victim = _holder(sbx, "big")
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {
        "cluster.routing.allocation.node_concurrent_recoveries": 1,
        "cluster.routing.allocation.exclude._name": victim}})
    moving = wait_for(lambda: [r for r in sbx.shards("big") if r["state"] == "RELOCATING"], timeout=20,
                      what="the big shard relocating")
    target = moving[0]["node"].split("->")[-1].split()[-1]
    sbx.es.ok("PUT", "/fresh", {"settings": {"number_of_shards": 1, "number_of_replicas": 0,
                                             "index.routing.allocation.require._name": target}})
    rows = wait_for(lambda: [r for r in sbx.shards("fresh") if r["state"] == "STARTED"], timeout=5,
                    what="the new primary started on the node that is receiving the relocation")
    assert rows[0]["node"] == target
    assert [r["state"] for r in sbx.shards("big")] == ["RELOCATING"]  # its slot was still taken


def test_the_catch_up_recovery_of_a_version_blocked_replica_counts_as_version_skew(sandbox_factory):
    # A replica kept off older nodes by node_version recovers once a node new enough joins: that
    # copy is still missing because of the skew, and the audit files it under it, not as degradation.
    sbx = sandbox_factory("split.yml")
    data = [n["name"] for n in sbx.nodes().values() if "data" in n["roles"]]
    first = next(n for n in data if n != _holder(sbx, "single"))
    sbx.terminate(first)
    new = wait_for(lambda: next((n for n in sbx.nodes().values()
                                 if n["version"] == "8.15.0" and "data" in n["roles"]), None), what="8.15 node")
    wait_for(lambda: _health(sbx)["status"] == "green" or not _health(sbx)["unassigned_shards"],
             timeout=30, what="the cluster to settle after the first replacement")
    sbx.es.ok("PUT", "/fresh", {"settings": {"number_of_shards": 1, "number_of_replicas": 1,
                                             "index.routing.allocation.require._name": new["name"]}})
    wait_for(lambda: _holder(sbx, "fresh") == new["name"], what="primary on the new node")
    lines = [line for _ in range(500) for line in ({"index": {}}, {"msg": "x" * 2000})]
    status, out = request(sbx.sb.es_url, "POST", "/fresh/_bulk?refresh=true", ndjson=lines)
    assert status == 200 and not out["errors"], out
    sbx.es.ok("PUT", "/fresh/_settings", {"index.routing.allocation.require._name": None})
    wait_for(lambda: sbx.audit()["degraded_copy_seconds_by_reason"].get("UNASSIGNED:node_version", 0) > 0.3,
             what="the replica blocked by node_version")
    # a second new data node: the replica recovers onto it
    second = next(n for n in data if n not in (first, _holder(sbx, "single")))
    sbx.terminate(second)
    wait_for(lambda: all(r["state"] == "STARTED" for r in sbx.shards("fresh")), timeout=30,
             what="the replica started on the second new node")
    audit = sbx.audit()
    assert audit["degraded_copy_seconds_by_reason"].get("INITIALIZING:after_node_version", 0) > 0
    # (its time unassigned by the test's own allocation filter, at creation, is not version skew)
    assert not any(c.startswith("[fresh]") and "INITIALIZING" in c
                   for e in audit["degraded_episodes_excluding_version_skew"] for c in e["copies"]), \
        audit["degraded_episodes_excluding_version_skew"]


def test_recovery_bandwidth_is_shared_max_min_fairly_so_no_node_link_idles_needlessly():
    from sandbox.engine import fair_shares

    # S1 sends three copies (its limit splits three ways); S2 sends one to T, which also
    # receives one of S1's: T's limit is not wasted on S1's slow copy.
    links = [["T", "S1"], ["T2", "S1"], ["T3", "S1"], ["T", "S2"]]
    rates = fair_shares(links, [10.0] * 4, 1.0)
    assert [round(r, 3) for r in rates] == [0.333, 0.333, 0.333, 0.667]
    # a copy that needs less than its share leaves the rest to the others on its links
    assert fair_shares([["T", "S"], ["T2", "S"]], [10.0, 0.1], 1.0) == [0.9, 0.1]


def test_reroute_cancel_follows_elasticsearchs_cancel_allocation_command(sandbox_factory, tmp_path):
    # Cancelling on a relocation's target node cancels the relocation (a primary's too) and the
    # source copy stays; a started primary needs allow_primary; other commands are not implemented.
    sbx = sandbox_factory(split_with(tmp_path, [{"name": "big", "primaries": 1, "replicas": 1, "docs": 100, "size": "2GB"}], "10MB"))
    primary_node = _holder(sbx, "big", primary=True)
    status, body = sbx.es.call("POST", "/_cluster/reroute", {"commands": [{"cancel": {"index": "big", "shard": 0, "node": primary_node}}]})
    assert status == 400 and "shard is primary and started" in body["error"]["reason"], body
    status, body = sbx.es.call("POST", "/_cluster/reroute", {"commands": [{"move": {"index": "big", "shard": 0, "from_node": "a", "to_node": "b"}}]})
    assert status == 400 and "[move]" in body["error"]["reason"], body
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.exclude._name": primary_node}})
    row = wait_for(lambda: next((r for r in sbx.shards("big") if r["state"] == "RELOCATING"), None), timeout=20,
                   what="the primary relocating")
    target = row["node"].split("->")[-1].split()[-1]
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.exclude._name": None}})
    sbx.es.ok("POST", "/_cluster/reroute", {"commands": [{"cancel": {"index": "big", "shard": 0, "node": target}}]})
    rows = sbx.shards("big")
    assert sorted((r["prirep"], r["state"], r["node"]) for r in rows)[0] == ("p", "STARTED", primary_node), rows
    assert sbx.audit()["docs_lost"] == 0
