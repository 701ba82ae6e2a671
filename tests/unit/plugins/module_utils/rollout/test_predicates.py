"""Each safety invariant of docs/design.md is a named predicate; each has a test that it refuses and one that it allows."""
from rollout_shapes import candidate, cluster, explain_disk, explain_version_skew, shard

from ansible_collections.logstack.elk.plugins.module_utils.rollout import predicates as P


def ctx(view, name=None, remaining=(), **kw):
    cand = candidate(view, name) if name else None
    rem = [candidate(view, n) for n in remaining]
    if cand is not None:
        rem = [c if c["node_name"] != name else cand for c in rem] or [cand]
        cand = next(c for c in rem if c["node_name"] == name)
    kw.setdefault("expected_nodes", 6)
    kw.setdefault("expected_masters", 3)
    return P.Context(view, candidate=cand, remaining=rem, **kw)


def test_red_cluster_is_refused():
    assert "red" in P.cluster_not_red(ctx(cluster(status="red")))
    assert P.cluster_not_red(ctx(cluster(status="yellow"))) is None


def test_yellow_accepted_only_when_every_unassigned_copy_is_blocked_by_node_version():
    stuck = shard("logs-1", 0, "r", "UNASSIGNED", None)
    view = cluster(status="yellow", extra_shards=[stuck])
    skew = {("logs-1", "0"): explain_version_skew("logs-1", 0, ["d2", "d3"], "d1")}
    assert P.green_or_version_skew_yellow(ctx(view, explains=skew)) is None
    disk = {("logs-1", "0"): explain_disk("logs-1", 0, ["d2", "d3"])}
    assert "not explained by the version skew" in P.green_or_version_skew_yellow(ctx(view, explains=disk))
    # no explanation at all is not an excuse
    assert P.green_or_version_skew_yellow(ctx(view, explains={})) is not None


def test_yellow_never_accepted_while_shards_move():
    view = cluster(status="yellow", moving=1, extra_shards=[shard("logs-1", 0, "r", "UNASSIGNED", None)])
    skew = {("logs-1", "0"): explain_version_skew("logs-1", 0, ["d2", "d3"], "d1")}
    assert "initializing or relocating" in P.green_or_version_skew_yellow(ctx(view, explains=skew))


def test_node_refusing_for_version_and_shutdown_still_counts_as_version_skew():
    row = shard("logs-1", 0, "r", "UNASSIGNED", None)
    exp = explain_version_skew("logs-1", 0, ["d2", "d3"], "d1")
    exp["node_allocation_decisions"][0]["deciders"].append(
        {"decider": "node_shutdown", "decision": "NO", "explanation": "node [id-d2] is preparing to be removed"})
    assert P.unassigned_is_version_skew(row, exp)
    # a node refusing only because it is being drained could take the replica: not version skew
    exp["node_allocation_decisions"][0]["deciders"] = exp["node_allocation_decisions"][0]["deciders"][1:]
    assert not P.unassigned_is_version_skew(row, exp)


def test_node_holding_a_copy_that_also_refuses_for_another_reason_is_not_version_skew():
    # es_cluster_info and the rollout share this predicate: a filter on the primary's node (besides
    # same_shard) is a reason of its own, so neither reports nor proceeds on a version-skew yellow.
    row = shard("logs-1", 0, "r", "UNASSIGNED", None)
    exp = explain_version_skew("logs-1", 0, ["d2", "d3"], "d1")
    assert P.unassigned_is_version_skew(row, exp)
    exp["node_allocation_decisions"][-1]["deciders"].append(
        {"decider": "filter", "decision": "NO", "explanation": "node matches index setting [exclude._name:d1]"})
    assert not P.unassigned_is_version_skew(row, exp)


def test_unassigned_primary_is_never_version_skew():
    row = shard("logs-1", 0, "p", "UNASSIGNED", None)
    assert not P.unassigned_is_version_skew(row, explain_version_skew("logs-1", 0, ["d2"], "d1"))


def test_delayed_replica_is_not_version_skew():
    exp = explain_version_skew("logs-1", 0, ["d2"], "d1")
    exp["unassigned_info"]["delayed"] = True
    assert not P.unassigned_is_version_skew(shard("logs-1", 0, "r", "UNASSIGNED", None), exp)


def test_nodes_out_budget_counts_missing_nodes():
    view = cluster()
    del view.nodes["id-d3"]
    assert "budget 1" in P.nodes_out_within_budget(ctx(view, "d1", expected_nodes=6))
    assert P.nodes_out_within_budget(ctx(view, "d1", expected_nodes=6, max_nodes_out=2)) is None
    assert P.nodes_out_within_budget(ctx(cluster(), "d1")) is None


def test_master_leaves_only_when_all_expected_masters_are_present():
    view = cluster()
    del view.nodes["id-m3"]
    assert "2 of the 3" in P.all_masters_present(ctx(view, "m2", expected_nodes=5))
    assert P.all_masters_present(ctx(cluster(), "m2")) is None


def test_one_master_at_a_time():
    view = cluster(voting_exclusions=["m3"])
    assert "m3" in P.one_master_at_a_time(ctx(view, "m2"))
    assert P.one_master_at_a_time(ctx(cluster(voting_exclusions=["m2"]), "m2")) is None


def test_data_nodes_before_master_eligible_nodes():
    view = cluster()
    assert "d2" in P.data_before_masters(ctx(view, "m2", remaining=["m2", "d2"]))
    assert P.data_before_masters(ctx(view, "m2", remaining=["m2", "m3"])) is None


def test_colder_tiers_first():
    view = cluster()
    view.nodes["id-d1"]["roles"] = ["data_warm"]
    view.nodes["id-d2"]["roles"] = ["data_hot", "data_content"]
    assert "d1" in P.tier_order(ctx(view, "d2", remaining=["d1", "d2"]))
    assert P.tier_order(ctx(view, "d1", remaining=["d1", "d2"])) is None


def test_elected_master_last():
    view = cluster(master="m1")
    assert "elected master" in P.elected_master_last(ctx(view, "m1", remaining=["m1", "m2"]))
    assert P.elected_master_last(ctx(view, "m1", remaining=["m1"])) is None
    assert P.elected_master_last(ctx(view, "m2", remaining=["m1", "m2"])) is None


def test_never_the_whole_tier():
    view = cluster()
    view.nodes["id-d1"]["roles"] = ["data_warm"]
    assert "last node of its data tier" in P.not_whole_tier(ctx(view, "d1"))
    assert P.not_whole_tier(ctx(view, "d1", strategy="surge")) is None
    assert P.not_whole_tier(ctx(cluster(), "d2")) is None


def test_terminate_strategy_refuses_to_kill_the_only_copy_of_a_shard():
    view = cluster()
    refused = P.no_unreplicated_primary(ctx(view, "d3", strategy="terminate"))
    assert "single[0]p" in refused
    assert P.no_unreplicated_primary(ctx(view, "d3", strategy="terminate", accept_data_loss=True)) is None
    assert P.no_unreplicated_primary(ctx(view, "d2", strategy="terminate")) is None
    assert P.no_unreplicated_primary(ctx(view, "d3", strategy="drain")) is None


def test_terminate_strategy_preflight_refuses_zero_replica_indices():
    refused = P.zero_replica_indices(ctx(cluster(), strategy="terminate", indices_replicas={"single": 0, "logs-1": 1}))
    assert "single" in refused and "logs-1" not in refused
    assert P.zero_replica_indices(ctx(cluster(), strategy="terminate", accept_data_loss=True,
                                      indices_replicas={"single": 0})) is None


def test_disk_headroom_below_the_high_watermark():
    view = cluster()  # d3 holds 5000 + 3000 bytes
    roomy = {"id-d1": (100000, 90000), "id-d2": (100000, 90000)}
    assert P.disk_headroom(ctx(view, "d3", disk=roomy, watermark="90%")) is None
    tight = {"id-d1": (100000, 13000), "id-d2": (100000, 13000)}  # 3000 bytes each below 90%
    refused = P.disk_headroom(ctx(view, "d3", disk=tight, watermark="90%"))
    assert "8000 bytes" in refused and "6000 bytes of room" in refused
    # absolute free-space watermark: 12000 bytes must stay free
    assert P.disk_headroom(ctx(view, "d3", disk=roomy, watermark="89000b")) is not None
    assert "no disk statistics" in P.disk_headroom(ctx(view, "d3", disk={}, watermark="90%"))


def test_suspended_launch_or_terminate_is_refused():
    groups = [{"AutoScalingGroupName": "data", "SuspendedProcesses": [
        {"ProcessName": "Terminate", "SuspensionReason": "User suspended at 2024-11-05T10:00:00Z"}]},
        {"AutoScalingGroupName": "master", "SuspendedProcesses": [{"ProcessName": "AZRebalance"}]}]
    refused = P.scaling_processes_active(ctx(cluster(), groups=groups))
    assert "data (Terminate)" in refused and "master" not in refused


def test_unmapped_nodes_and_orphan_instances_are_refused():
    view = cluster()
    assert "d2" in P.nodes_mapped(ctx(view, unmapped_nodes=["id-d2"]))
    assert "i-0abc" in P.instances_in_cluster(ctx(view, orphan_instances=["i-0abc"]))
    assert P.nodes_mapped(ctx(view)) is None and P.instances_in_cluster(ctx(view)) is None


def test_surge_refused_at_max_size():
    groups = [{"AutoScalingGroupName": "data", "DesiredCapacity": 3, "MaxSize": 3, "_outdated": True}]
    assert "raise MaxSize" in P.surge_capacity(ctx(cluster(), strategy="surge", groups=groups))
    groups[0]["MaxSize"] = 4
    assert P.surge_capacity(ctx(cluster(), strategy="surge", groups=groups)) is None


def test_refusals_name_the_rule():
    out = P.refusals(P.TAKE_OUT, ctx(cluster(status="red"), "d1", remaining=["d1"]))
    assert out[0].startswith("cluster_not_red: ")


def _throttled(explanation):
    return {"can_allocate": "throttled", "node_allocation_decisions": [
        {"node_name": "d2", "node_decision": "throttled",
         "deciders": [{"decider": "throttling", "decision": "THROTTLE", "explanation": explanation}]}]}


def test_a_replica_throttled_by_the_concurrent_recovery_limits_is_one_a_drain_starves():
    view = cluster(extra_shards=[shard("new-1", 0, "r", "UNASSIGNED", None)])
    row = [r for r in view.unassigned() if r["index"] == "new-1"]
    es = _throttled("reached the limit of outgoing shard recoveries [2] on the node [x] which holds the primary, "
                    "cluster setting [cluster.routing.allocation.node_concurrent_outgoing_recoveries=2] "
                    "(can also be set via [cluster.routing.allocation.node_concurrent_recoveries])")
    assert P.throttled_replicas(P.Context(view, explains={("new-1", "0"): es}), row) == row
    # OpenSearch's own limit for a new index's replicas: raising node_concurrent_* would not help it
    opensearch = _throttled("reached the limit of incoming shard recoveries [4], cluster setting "
                            "[cluster.routing.allocation.node_initial_replicas_recoveries=4]")
    assert P.throttled_replicas(P.Context(view, explains={("new-1", "0"): opensearch}), row) == []
    # an unassigned replica that is not throttled at all
    no = {"can_allocate": "no", "node_allocation_decisions": []}
    assert P.throttled_replicas(P.Context(view, explains={("new-1", "0"): no}), row) == []


def test_index_version_counts_with_node_version_as_the_version_skew():
    # Elasticsearch 8.x+ also refuses a replica on a node that cannot read the primary's index version
    # (decider index_version); a replica only that keeps out is the version skew as well.
    row = shard("logs-1", 0, "r", "UNASSIGNED", None)
    exp = explain_version_skew("logs-1", 0, ["d2", "d3"], "d1")
    for decision in exp["node_allocation_decisions"][:-1]:
        decision["deciders"] = [{"decider": "index_version", "decision": "NO",
                                 "explanation": "cannot allocate replica shard to a node with an older index version"}]
    assert P.unassigned_is_version_skew(row, exp)
