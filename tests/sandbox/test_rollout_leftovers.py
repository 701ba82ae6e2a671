"""Leftovers, budgets and quorum, tried adversarially (issue 15 item 10): the rollout's own code
(planner.preflight, NodeReplacement's steps, verify) against the sandbox's Elasticsearch API and its
moto, each case set up as an operator or a failure would leave the cluster and checked as a
precondition first."""
from __future__ import annotations

import os

import yaml

from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws, tag_dict
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout import planner, rebalance
from ansible_collections.logstack.elk.plugins.module_utils.rollout.base import Rollout
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster
from ansible_collections.logstack.elk.plugins.module_utils.rollout.diagnosing import StepFailed
from ansible_collections.logstack.elk.plugins.module_utils.rollout.node import NodeReplacement
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import SURGE_TAG, Options
from ansible_collections.logstack.elk.plugins.module_utils.rollout.verifying import verify

from tests.sandbox_plugin import SCENARIOS, wait_for


def variant(tmp_path, base="split.yml", **changes):
    """A scenario file: base with top-level keys, or "timing.x" / "groups.<name>.size" changed."""
    with open(os.path.join(SCENARIOS, base), encoding="utf-8") as fh:
        scenario = yaml.safe_load(fh)
    for key, value in changes.items():
        if key.startswith("timing_"):
            scenario["timing"][key[len("timing_"):]] = value
        elif key.startswith("size_"):
            group = key[len("size_"):].replace("_", "-")
            next(g for g in scenario["groups"] if g["name"] == group)["size"] = value
        else:
            scenario[key] = value
    path = tmp_path / ("variant-%s" % base)
    path.write_text(yaml.safe_dump(scenario))
    return str(path)


def clients(sbx, monkeypatch, **opts):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    cluster = Cluster(EsClient([sbx.sb.es_url], max_retries=0))
    aws = Aws(region="us-east-1", endpoint_url=sbx.sb.world.endpoint, max_attempts=2)
    groups = [g["AutoScalingGroupName"] for g in sbx.asg.describe_auto_scaling_groups()["AutoScalingGroups"]]
    return cluster, aws, groups, Options(asg_names=groups, **opts)


def step_for(sbx, cluster, aws, opts, name, group, **kw):
    node_id = sbx.node_by_name(name)[0]
    kw.setdefault("poll_interval", 0.2)
    return NodeReplacement(cluster, aws, opts, sbx.instance_of(name), name, node_id, group, **kw)


def group(sbx, name):
    return sbx.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def settled(sbx, nodes):
    return wait_for(lambda: len(sbx.nodes()) == nodes and sbx.es.get("/_cluster/health")["status"] == "green",
                    timeout=30, what="%d nodes, green" % nodes)


# (b) --------------------------------------------------------------------------------------------
def test_operator_allocation_filters_and_disabled_allocation_refused_at_preflight_and_reported_at_the_end(
        sandbox_factory, monkeypatch):
    sbx = sandbox_factory("split.yml")
    cluster, aws, _groups, opts = clients(sbx, monkeypatch)
    settled(sbx, 6)
    _world, plan, refused = planner.preflight(cluster, aws, opts)
    assert plan and not refused, refused  # the precondition: nothing else refuses
    data = sorted(n["name"] for n in sbx.nodes().values() if "data" in n["roles"])
    sbx.es.ok("PUT", "/_cluster/settings", {
        "transient": {"cluster.routing.allocation.exclude._ip": "10.9.9.9"},
        "persistent": {"cluster.routing.allocation.require.rack": "r1,r2",
                       "cluster.routing.allocation.include._host": "nohost",
                       "cluster.routing.allocation.exclude._id": sbx.node_by_name(data[0])[0],
                       "cluster.routing.allocation.enable": "primaries"}})
    _world, plan, refused = planner.preflight(cluster, aws, opts)
    text = "; ".join(refused)
    for setting in ("transient cluster.routing.allocation.exclude._ip=10.9.9.9",
                    "persistent cluster.routing.allocation.require.rack=r1,r2",
                    "persistent cluster.routing.allocation.include._host=nohost",
                    "persistent cluster.routing.allocation.exclude._id=%s" % sbx.node_by_name(data[0])[0],
                    "persistent cluster.routing.allocation.enable=primaries"):
        assert setting in text, refused
    # the final check reads all of them too
    problems = verify(Rollout(cluster, aws, opts, timeouts={"health": 1}, poll_interval=0.2))
    joined = "; ".join(problems)
    for setting in ("cluster.routing.allocation.exclude._id","cluster.routing.allocation.exclude._ip=10.9.9.9", "cluster.routing.allocation.require.rack",
                    "cluster.routing.allocation.include._host", "cluster.routing.allocation.enable=primaries"):
        assert setting in joined, problems


# (d) --------------------------------------------------------------------------------------------
def test_a_single_master_eligible_node_is_refused_by_drain_and_terminate_not_by_surge(
        sandbox_factory, tmp_path, monkeypatch):
    sbx = sandbox_factory(variant(tmp_path, size_es_master=1))
    settled(sbx, 4)
    masters = [n["name"] for n in sbx.nodes().values() if "master" in n["roles"]]
    assert len(masters) == 1
    for strategy in ("drain", "terminate"):
        cluster, aws, _groups, opts = clients(sbx, monkeypatch, strategy=strategy, accept_data_loss=True)
        _world, plan, refused = planner.preflight(cluster, aws, opts)
        assert any(r.startswith("single_master: %s is the cluster's only master-eligible node" % masters[0])
                   and "upgrade_strategy surge" in r for r in refused), (strategy, refused)
    cluster, aws, _groups, opts = clients(sbx, monkeypatch, strategy="surge")
    _world, plan, refused = planner.preflight(cluster, aws, opts)
    assert not [r for r in refused if r.startswith("single_master")], refused


# (c) --------------------------------------------------------------------------------------------
def test_the_budget_is_checked_right_before_termination_counting_a_node_that_failed_meanwhile(
        sandbox_factory, monkeypatch):
    sbx = sandbox_factory("split.yml")
    cluster, aws, _groups, opts = clients(sbx, monkeypatch)
    settled(sbx, 6)
    data = sorted(n["name"] for n in sbx.nodes().values() if "data" in n["roles"])
    # a master-eligible node that is not the elected master: its failure leaves every shard in place
    failing = sorted(n["name"] for n in sbx.nodes().values() if "master" in n["roles"] and n["name"] != sbx.master_name())[0]
    victim = data[0]
    step = step_for(sbx, cluster, aws, opts, victim, "es-data", timeouts={"drain": 60, "terminate": 2})
    step.run("drain")  # drained, within every rule
    failed_iid = sbx.instance_of(failing)
    sbx.ec2.stop_instances(InstanceIds=[failed_iid])  # a node leaves on its own
    wait_for(lambda: failing not in [n["name"] for n in sbx.nodes().values()], timeout=15, what="the node to leave")
    try:
        step.run("terminate")
        raise AssertionError("terminated %s with %s already out" % (victim, failing))
    except StepFailed as exc:
        assert "refusing to terminate" in exc.message and failed_iid in exc.message, exc.message
        assert "max_nodes_out 1" in exc.message, exc.message
    ids = [i["InstanceId"] for i in group(sbx, "es-data")["Instances"]]
    assert step.instance_id in ids and group(sbx, "es-data")["Instances"][ids.index(step.instance_id)][
        "LifecycleState"] == "InService"


# (e) and (a)'s message ------------------------------------------------------------------------
def test_a_drain_that_gives_up_names_the_decider_and_the_setting_and_everything_left_changed(
        sandbox_factory, monkeypatch):
    sbx = sandbox_factory("split.yml")
    cluster, aws, groups, opts = clients(sbx, monkeypatch)
    settled(sbx, 6)
    victim = next(r["node"] for r in sbx.shards("logs-a") if r["prirep"] == "p")
    # an operator pinned an index to the node
    sbx.es.ok("PUT", "/pinned", {"settings": {"number_of_shards": 1, "number_of_replicas": 0,
                                              "index.routing.allocation.require._name": victim}})
    wait_for(lambda: [r["state"] for r in sbx.shards("pinned")] == ["STARTED"], timeout=10, what="pinned to start")
    rebalance.pause(cluster, aws, groups)  # as the run's pause action leaves it
    step = step_for(sbx, cluster, aws, opts, victim, "es-data", timeouts={"drain": 3})
    try:
        step.run("drain")
        raise AssertionError("drained a node holding a pinned index")
    except StepFailed as exc:
        msg = exc.message
    assert "pinned[0]p: kept by" in msg and "filter" in msg, msg
    assert "index.routing.allocation.require" in msg, msg
    assert "rebalancing paused" in msg and rebalance.REBALANCE_TAG in msg, msg
    # the drain step's placement check (rollout/placement.py) refuses before it excludes anything;
    # a drain that excluded and then gave up would list the exclusion or shutdown record it leaves
    assert ("nothing was excluded" in msg or "node shutdown record" in msg
            or "allocation exclusion of %s" % victim in msg), msg


# (a) --------------------------------------------------------------------------------------------
def test_a_rerun_with_strategy_drain_undoes_the_raised_desired_capacity_of_an_interrupted_surge(
        sandbox_factory, monkeypatch):
    sbx = sandbox_factory("split.yml")
    cluster, aws, _groups, opts = clients(sbx, monkeypatch)
    settled(sbx, 6)
    victim = sorted(n["name"] for n in sbx.nodes().values() if "data" in n["roles"])[0]
    iid = sbx.instance_of(victim)
    before = group(sbx, "es-data")["DesiredCapacity"]
    # what an interrupted surge left: its marker, then the desired capacity raised
    aws.put_group_tag("es-data", SURGE_TAG, "%s:%d" % (iid, before))
    sbx.asg.set_desired_capacity(AutoScalingGroupName="es-data", DesiredCapacity=before + 1)
    settled(sbx, 7)
    step = step_for(sbx, cluster, aws, opts, victim, "es-data", timeouts={"drain": 60, "leave": 30, "join": 30})
    for name in ("drain", "terminate", "wait_left", "wait_joined", "lift"):
        step.run(name)
    g = group(sbx, "es-data")
    assert g["DesiredCapacity"] == before, g["DesiredCapacity"]
    assert SURGE_TAG not in tag_dict(g.get("Tags")), g.get("Tags")


# (f) --------------------------------------------------------------------------------------------
def test_terminate_does_not_sit_out_delayed_timeout_for_a_node_that_will_not_return(
        sandbox_factory, tmp_path, monkeypatch):
    sbx = sandbox_factory(variant(tmp_path, timing_delayed_timeout="10m"))
    cluster, aws, groups, opts = clients(sbx, monkeypatch, strategy="terminate", accept_data_loss=True)
    settled(sbx, 6)
    single = {r["node"] for r in sbx.shards("single")}  # a 0-replica index: its node would turn it red
    victim = next(r["node"] for r in sbx.shards("logs-a") if r["node"] not in single)
    step = step_for(sbx, cluster, aws, opts, victim, "es-data",
                    timeouts={"gate": 5, "terminate": 10, "leave": 30, "join": 30, "health": 15})
    for name in ("terminate", "wait_left"):
        step.run(name)
    step.run("wait_joined")
    entry = step.run("wait_healthy")  # within 15 s, not 10 minutes
    assert "reset on logs-a" in entry["detail"], entry
    # the operator's (unset) delayed_timeout is back, and the marker tag gone
    flat = sbx.es.get("/logs-a/_settings?flat_settings=true")["logs-a"]["settings"]
    assert "index.unassigned.node_left.delayed_timeout" not in flat, flat
    assert not any("logstack:rollout-delayed" in tag_dict(group(sbx, g).get("Tags")) for g in groups)
