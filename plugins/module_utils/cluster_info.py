# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report of es_cluster_info: the cluster and its Auto Scaling Groups, read only.

The cluster is read through rollout/cluster.py's Cluster (the rollout's reader) and judged
with rollout/predicates.py (the rollout's definition of the version-skew yellow), so this
report and the rollout's decisions never disagree. Nothing here changes the cluster.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.aws import tag_dict
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import (
    Cluster, is_data, is_master_eligible, split_list)
from ansible_collections.logstack.elk.plugins.module_utils.rollout.predicates import unassigned_is_version_skew
from ansible_collections.logstack.elk.plugins.module_utils.node_map import (
    DEFAULT_INSTANCE_ATTRIBUTE,
    map_nodes,
    outdated_reasons,
)

ALLOCATION_FILTERS = ("_name", "_ip", "_host", "_id")


def allocation_exclusions(settings):
    """Allocation exclusions in force: {"_name": [...], "_ip": [...], ...} (empty lists omitted)."""
    out = {}
    for attr in ALLOCATION_FILTERS:
        value = settings.get("cluster.routing.allocation.exclude.%s" % attr)
        names = split_list(value)
        if names:
            out[attr] = names
    return out


# -- nodes and shards ---------------------------------------------------------
def shards_per_node(shards, nodes):
    """{node name: {"total", "primaries", "initializing", "relocating"}} for every node, zeros included."""
    out = {n.get("name", nid): {"total": 0, "primaries": 0, "initializing": 0, "relocating": 0}
           for nid, n in nodes.items()}
    for shard in shards:
        node = shard.get("node")
        if not node:
            continue
        # A relocating copy reads "source -> ip target_id target_name": it counts on the source.
        name = node.split(" -> ")[0].strip()
        counts = out.setdefault(name, {"total": 0, "primaries": 0, "initializing": 0, "relocating": 0})
        counts["total"] += 1
        if shard.get("prirep") == "p":
            counts["primaries"] += 1
        if shard.get("state") == "INITIALIZING":
            counts["initializing"] += 1
        elif shard.get("state") == "RELOCATING":
            counts["relocating"] += 1
    return out


def unassigned_shards(shards):
    """[{index, shard, primary}] of every UNASSIGNED copy, primaries first."""
    out = []
    for shard in shards:
        if shard.get("state") == "UNASSIGNED":
            out.append({"index": shard.get("index"), "shard": int(shard.get("shard", 0)),
                        "primary": shard.get("prirep") == "p"})
    return sorted(out, key=lambda s: (not s["primary"], s["index"] or "", s["shard"]))


def summarize_explanation(answer):
    """Why a copy is unassigned, from an allocation/explain answer.

    Returns {reason, can_allocate, explanation, deciders, blocked_by} where
    ``deciders`` lists every NO/THROTTLE decision per node and ``blocked_by``
    the sorted decider names (e.g. ["node_version", "same_shard"]).
    """
    info = answer.get("unassigned_info") or {}
    deciders = []
    for decision in answer.get("node_allocation_decisions") or []:
        for decider in decision.get("deciders") or []:
            if decider.get("decision") in ("NO", "THROTTLE"):
                deciders.append({
                    "node": decision.get("node_name") or decision.get("node_id"),
                    "decider": decider.get("decider"),
                    "decision": decider.get("decision"),
                    "explanation": decider.get("explanation"),
                })
    return {
        "reason": info.get("reason"),
        "details": info.get("details"),
        "can_allocate": answer.get("can_allocate"),
        "explanation": answer.get("allocate_explanation"),
        "deciders": deciders,
        "blocked_by": sorted({d["decider"] for d in deciders if d["decider"]}),
    }


def explain_unassigned(cluster, unassigned, limit=50):
    """Attach summarize_explanation() to the first ``limit`` unassigned copies (the rest get None);
    returns (entries, whether every copy is a version-skew replica: predicates.unassigned_is_version_skew).

    A server without the explain API (some OpenSearch-compatible servers) or a
    shard that vanished meanwhile gets ``explain_error`` instead of failing the read.
    """
    out = []
    skew = True
    unsupported = None
    for number, copy in enumerate(unassigned):
        entry = dict(copy, allocation=None, explain_error=unsupported)
        answer = None
        if number < limit and unsupported is None:
            try:
                answer = cluster.explain(copy["index"], copy["shard"], copy["primary"])
                entry["allocation"] = summarize_explanation(answer)
            except EsError as exc:
                if exc.status not in (400, 404, 405):
                    raise
                entry["explain_error"] = exc.message
                if "no handler found" in exc.message:
                    unsupported = exc.message  # the same answer for every other copy: ask once
        skew = skew and unassigned_is_version_skew({"prirep": "p" if copy["primary"] else "r"}, answer)
        out.append(entry)
    return out, skew and bool(out)


def describe_node(node_id, node, elected_master_id):
    roles = sorted(node.get("roles") or [])
    return {
        "id": node_id,
        "name": node.get("name"),
        "version": node.get("version"),
        "ip": node.get("ip") or node.get("host"),
        "roles": roles,
        "master_eligible": is_master_eligible(node),
        "data": is_data(node),
        "elected_master": node_id == elected_master_id,
        "attributes": dict(node.get("attributes") or {}),
        "instance_id": None,
        "asg": None,
        "outdated": None,
        "outdated_reasons": [],
    }


# -- AWS ----------------------------------------------------------------------
def describe_groups(aws, groups, version_tag=None):
    """[{name, min_size, max_size, desired_capacity, suspended_processes, target, instances}] per group."""
    out = []
    for group in groups:
        out.append({
            "name": group["AutoScalingGroupName"],
            "min_size": group.get("MinSize"),
            "max_size": group.get("MaxSize"),
            "desired_capacity": group.get("DesiredCapacity"),
            "suspended_processes": sorted(p.get("ProcessName") for p in group.get("SuspendedProcesses") or []),
            "tags": tag_dict(group.get("Tags")),
            "target": aws.launch_template_target(group, version_tag=version_tag),
            "instances": [i["InstanceId"] for i in group.get("Instances") or []],
        })
    return out


def attach_instances(node_list, nodes, groups, instances, version_tag=None,
                     attribute=DEFAULT_INSTANCE_ATTRIBUTE, compare=("image", "version")):
    """Fill instance_id / asg / outdated on ``node_list``; return (unmapped node names, instances without node).

    ``groups`` comes from describe_groups, ``instances`` from Aws.instances.
    """
    live = [i for i in instances if (i.get("State") or {}).get("Name") not in ("terminated", "shutting-down")]
    mapping, unmapped, orphans = map_nodes(nodes, live, attribute=attribute)
    by_id = {i["InstanceId"]: i for i in live}
    group_of = {iid: g for g in groups for iid in g["instances"]}
    for entry in node_list:
        instance_id = mapping.get(entry["id"])
        if not instance_id:
            continue
        instance = by_id[instance_id]
        group = group_of.get(instance_id)
        entry["instance_id"] = instance_id
        entry["instance_state"] = (instance.get("State") or {}).get("Name")
        entry["image_id"] = instance.get("ImageId")
        entry["version_tag"] = tag_dict(instance.get("Tags")).get(version_tag) if version_tag else None
        entry["asg"] = group["name"] if group else None
        if group:
            entry["outdated_reasons"] = outdated_reasons(instance, group["target"], version_tag, compare)
            entry["outdated"] = bool(entry["outdated_reasons"])
    names = {nid: n.get("name", nid) for nid, n in nodes.items()}
    return sorted(names[n] for n in unmapped), sorted(orphans)


# -- everything ---------------------------------------------------------------
def gather(es, aws=None, asg_names=None, asg_tags=None, version_tag=None,
           attribute=DEFAULT_INSTANCE_ATTRIBUTE, compare=("image", "version"), explain_limit=50):
    """The whole es_cluster_info result (without ``changed``).

    ``aws`` is optional: with no groups selected the result is Elasticsearch-only.
    """
    cluster = Cluster(es)
    info = es.info()
    health = cluster.health()
    nodes = cluster.nodes()
    elected = cluster.elected_master()
    shards = cluster.shards()
    settings = cluster.effective_settings()
    node_list = sorted((describe_node(nid, node, elected) for nid, node in nodes.items()),
                       key=lambda n: (n["master_eligible"], n["name"] or ""))
    per_node = shards_per_node(shards, nodes)
    for entry in node_list:
        entry["shards"] = per_node.get(entry["name"], {}).get("total", 0)
        entry["primaries"] = per_node.get(entry["name"], {}).get("primaries", 0)
    unassigned, skew_only = explain_unassigned(cluster, unassigned_shards(shards), limit=explain_limit)
    result = {
        "cluster": {
            "name": info.get("cluster_name"),
            "uuid": info.get("cluster_uuid"),
            "version": (info.get("version") or {}).get("number"),
            "distribution": es.distribution,
        },
        "health": health,
        "elected_master": next((n["name"] for n in node_list if n["elected_master"]), None),
        "nodes": node_list,
        "shards_per_node": per_node,
        "unassigned_shards": unassigned,
        "only_version_blocked_replicas_unassigned": skew_only,
        "voting_config_exclusions": cluster.voting_config_exclusions(),
        "allocation_exclusions": allocation_exclusions(settings),
        "allocation_enable": settings.get("cluster.routing.allocation.enable", "all"),
        "groups": [],
        "unmapped_nodes": [],
        "instances_without_node": [],
        "outdated_nodes": [],
    }
    if aws is not None and (asg_names or asg_tags):
        groups = describe_groups(aws, aws.find_groups(names=asg_names, tags=asg_tags), version_tag)
        instances = aws.instances([iid for g in groups for iid in g["instances"]])
        unmapped, orphans = attach_instances(node_list, nodes, groups, instances, version_tag, attribute, compare)
        result.update(groups=groups, unmapped_nodes=unmapped, instances_without_node=orphans,
                      outdated_nodes=[n["name"] for n in node_list if n["outdated"]])
    return result


# The role letters of GET _cat/nodes (node.role column).
_ROLE_LETTERS = {"data_cold": "c", "data": "d", "data_frozen": "f", "data_hot": "h", "ingest": "i", "ml": "l",
                 "master": "m", "cluster_manager": "m", "remote_cluster_client": "r", "data_content": "s",
                 "transform": "t", "voting_only": "v", "data_warm": "w"}


def role_letters(roles):
    """Roles as _cat/nodes abbreviates them ("dm", "hiw", "-" for a coordinating-only node)."""
    return "".join(sorted({_ROLE_LETTERS.get(r, "?") for r in roles})) or "-"


def summary_lines(result):
    """Human-readable lines for playbooks/cluster-info.yml (also returned by the module as ``summary``)."""
    health = result["health"]
    cluster = result["cluster"]
    lines = ["%s %s %s: %s, %d nodes (%d data), elected master %s" % (
        cluster["distribution"], cluster["version"], cluster["name"], health.get("status"),
        health.get("number_of_nodes", 0), health.get("number_of_data_nodes", 0),
        result["elected_master"] or "NONE")]
    lines.append("shards: %s active (%s primaries), %s relocating, %s initializing, %s unassigned" % (
        health.get("active_shards"), health.get("active_primary_shards"), health.get("relocating_shards"),
        health.get("initializing_shards"), health.get("unassigned_shards")))
    for node in result["nodes"]:
        flags = []
        if node["elected_master"]:
            flags.append("*elected master*")
        if node["outdated"]:
            # "image ami-1 != ..." / "tag es_version=8.14.3 != ..." -> "image", "tag es_version=8.14.3"
            flags.append("OUTDATED(%s)" % ", ".join(r.split(" != ")[0] for r in node["outdated_reasons"]))
        elif node["outdated"] is False:
            flags.append("current")
        lines.append("node %s %s %s roles=%s shards=%d instance=%s asg=%s%s" % (
            node["name"], node["version"], node["ip"], role_letters(node["roles"]), node["shards"],
            node["instance_id"] or "-", node["asg"] or "-", (" " + " ".join(flags)) if flags else ""))
    for copy in result["unassigned_shards"]:
        allocation = copy["allocation"] or {}
        lines.append("unassigned %s[%d] %s: %s blocked by %s" % (
            copy["index"], copy["shard"], "primary" if copy["primary"] else "replica",
            allocation.get("reason") or "?", ",".join(allocation.get("blocked_by") or []) or "-"))
    if result["voting_config_exclusions"]:
        lines.append("voting config exclusions: %s" % ", ".join(
            e.get("node_name") or e.get("node_id") for e in result["voting_config_exclusions"]))
    for attr, values in sorted(result["allocation_exclusions"].items()):
        lines.append("allocation exclude.%s: %s" % (attr, ",".join(values)))
    if result["allocation_enable"] != "all":
        lines.append("cluster.routing.allocation.enable: %s" % result["allocation_enable"])
    for group in result["groups"]:
        target = group["target"]
        lines.append("asg %s desired=%s image=%s version=%s suspended=%s" % (
            group["name"], group["desired_capacity"], target.get("image_id"), target.get("version") or "-",
            ",".join(group["suspended_processes"]) or "-"))
    if result["unmapped_nodes"]:
        lines.append("nodes without an instance: %s" % ", ".join(result["unmapped_nodes"]))
    if result["instances_without_node"]:
        lines.append("instances without a node: %s" % ", ".join(result["instances_without_node"]))
    return lines
