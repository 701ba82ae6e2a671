"""Elasticsearch 8.x response shapes (as returned by GET _nodes, _cat/shards?format=json&bytes=b,
_cluster/health, _cluster/allocation/explain) for the rollout unit tests."""
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import View


def node(name, ip, roles, version="8.14.3", instance=None):
    return {"name": name, "transport_address": "%s:9300" % ip, "host": ip, "ip": ip, "version": version,
            "build_flavor": "default", "build_type": "tar", "roles": roles,
            "attributes": {"aws_instance_id": instance or "i-" + name, "xpack.installed": "true"}}


def shard(index, num, prirep, state, node_name, store=1000):
    return {"index": index, "shard": str(num), "prirep": prirep, "state": state, "docs": "10",
            "store": str(store) if state != "UNASSIGNED" else None, "ip": None, "node": node_name}


def health(status="green", relocating=0, initializing=0, unassigned=0, nodes=6):
    return {"cluster_name": "logs", "status": status, "timed_out": False, "number_of_nodes": nodes,
            "number_of_data_nodes": 3, "active_primary_shards": 11, "active_shards": 21,
            "relocating_shards": relocating, "initializing_shards": initializing, "unassigned_shards": unassigned,
            "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0, "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0, "active_shards_percent_as_number": 100.0}


def explain_version_skew(index, num, old_nodes, primary_node):
    """A replica the node_version decider keeps off older nodes (ES 8 explain output)."""
    decisions = []
    for name in old_nodes:
        decisions.append({"node_id": "id-" + name, "node_name": name, "transport_address": "10.0.0.9:9300",
                          "node_decision": "no", "weight_ranking": 1, "deciders": [{
                              "decider": "node_version", "decision": "NO",
                              "explanation": "cannot allocate replica shard to a node with version [8.14.3] since "
                                             "this is older than the primary version [8.15.0]"}]})
    decisions.append({"node_id": "id-" + primary_node, "node_name": primary_node,
                      "transport_address": "10.0.0.8:9300", "node_decision": "no", "weight_ranking": 2,
                      "deciders": [{"decider": "same_shard", "decision": "NO",
                                    "explanation": "a copy of this shard is already allocated to this node "
                                                   "[[%s][%s], node[id-%s], [P], s[STARTED], a[id=x]]"
                                                   % (index, num, primary_node)}]})
    return {"index": index, "shard": num, "primary": False, "current_state": "unassigned",
            "unassigned_info": {"reason": "NODE_LEFT", "at": "2024-11-05T10:00:00.000Z",
                                "details": "node_left [x]", "last_allocation_status": "no_attempt"},
            "can_allocate": "no",
            "allocate_explanation": "Elasticsearch isn't allowed to allocate this shard to any of the nodes in "
                                    "the cluster. Choose a node to which you expect this shard to be allocated, "
                                    "find this node in the node-by-node explanation, and address the reasons "
                                    "which prevent Elasticsearch from allocating this shard there.",
            "node_allocation_decisions": decisions}


def explain_disk(index, num, nodes):
    """A replica kept out by the disk watermark: a real problem, not the version skew."""
    exp = explain_version_skew(index, num, nodes, "data-x")
    for dec in exp["node_allocation_decisions"][:-1]:
        dec["deciders"] = [{"decider": "disk_threshold", "decision": "NO",
                            "explanation": "the node is above the high watermark cluster setting "
                                           "[cluster.routing.allocation.disk.watermark.high=90%]"}]
    return exp


def cluster(status="green", moving=0, extra_shards=(), excluded=(), voting_exclusions=(), master="m1",
            versions=None):
    """3 dedicated masters m1..m3 and 3 data nodes d1..d3, one replicated and one 0-replica index."""
    versions = versions or {}
    nodes = {}
    for i, name in enumerate(["m1", "m2", "m3"], 1):
        nodes["id-" + name] = node(name, "10.0.1.%d" % i, ["master"], versions.get(name, "8.14.3"))
    for i, name in enumerate(["d1", "d2", "d3"], 1):
        nodes["id-" + name] = node(name, "10.0.2.%d" % i, ["data", "data_content", "ingest"],
                                   versions.get(name, "8.14.3"))
    shards = [shard("logs-1", 0, "p", "STARTED", "d1", 5000), shard("logs-1", 0, "r", "STARTED", "d2", 5000),
              shard("logs-1", 1, "p", "STARTED", "d2", 5000), shard("logs-1", 1, "r", "STARTED", "d3", 5000),
              shard("single", 0, "p", "STARTED", "d3", 3000)]
    shards.extend(extra_shards)
    h = health(status, relocating=moving, unassigned=sum(1 for s in shards if s["state"] == "UNASSIGNED"))
    return View(health=h, nodes=nodes, shards=shards, master_id="id-" + master,
                voting_exclusions=[{"node_id": "id-" + n, "node_name": n} for n in voting_exclusions],
                voting_config={"id-m1", "id-m2", "id-m3"} - {"id-" + n for n in voting_exclusions},
                excluded_names=list(excluded), shutdowns={})


def candidate(view, name, **over):
    node_id = "id-" + name
    n = view.nodes[node_id]
    roles = n["roles"]
    from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import tier_rank
    out = {"node_id": node_id, "node_name": name, "instance_id": "i-" + name, "group": "g",
           "master": "master" in roles, "data": any(r.startswith("data") for r in roles),
           "tier": tier_rank(n), "elected_master": view.master_id == node_id, "continuing": False}
    out.update(over)
    return out
