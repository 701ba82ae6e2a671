# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Leftovers, budgets and quorum (docs/upgrade.md, "What a run leaves and checks").

* operator_allocation_settings: every cluster-level allocation filter (exclude/include/require
  by _name, _id, _ip, _host or any attribute, persistent and transient) and
  ``cluster.routing.allocation.enable`` other than ``all``; preflight refuses on them (naming
  the setting), the final check reports them.
* single_master: drain and terminate refuse a cluster with one master-eligible node.
* missing_nodes: the nodes already out, named, for the budget re-checked before each termination.
* blockers / decider_setting: what keeps a copy where it is, with the setting to change.
* delayed allocation: a node terminated for good is not waited for
  (``index.unassigned.node_left.delayed_timeout`` set to 0 on the indices it left, as Elasticsearch's
  documentation advises for a node that will not return, and reset once they recover).
"""
from __future__ import annotations

import re

from ansible_collections.logstack.elk.plugins.module_utils.aws import tag_dict
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError, index_path
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import (
    EXCLUDE_ID, EXCLUDE_NAME, is_master_eligible, shard_nodes, split_list)

FILTER = re.compile(r"^cluster\.routing\.allocation\.(exclude|include|require)\.(.+)$")
ENABLE = "cluster.routing.allocation.enable"
DELAYED = "index.unassigned.node_left.delayed_timeout"
# The value the run writes: told apart from an operator's own "0" when it is put back.
DELAYED_RUN_VALUE = "0ms"
DELAYED_TAG = "logstack:rollout-delayed"

# What to change when a decider says NO, for explanations that do not name the setting themselves.
DECIDER_SETTINGS = {
    "same_shard": "index.number_of_replicas (each copy needs a node of its own)",
    "filter": "cluster.routing.allocation.exclude/include/require.* or index.routing.allocation.*",
    "enable": ENABLE,
    "awareness": "cluster.routing.allocation.awareness.attributes / awareness.force.*",
    "disk_threshold": "cluster.routing.allocation.disk.watermark.low/high (or free disk)",
    "shards_limit": "index.routing.allocation.total_shards_per_node / cluster.routing.allocation.total_shards_per_node",
    "data_tier": "index.routing.allocation.include._tier_preference (or a node with that tier)",
    "max_retry": "index.allocation.max_retries (then POST _cluster/reroute?retry_failed=true)",
    "throttling": "cluster.routing.allocation.node_concurrent_recoveries",
    "node_version": "none: the copy's primary is on a newer node; replacing the older nodes allows it",
    "node_shutdown": "the node shutdown record (DELETE _nodes/<id>/shutdown)",
    "restore_in_progress": "none: the snapshot restore must finish",
}
SETTING_IN_TEXT = re.compile(r"\[((?:cluster|index)\.[A-Za-z0-9_.*\-]+)(?:=[^\]]*)?\]")


def operator_allocation_settings(data, own_names=(), own_ids=()):
    """["<scope> <key>=<value>", ...] for every allocation filter and a non-"all" allocation.enable in
    GET _cluster/settings (flat) data; names in own_names and ids in own_ids (the run's own exclusions
    of nodes it is replacing: by _id, or by _name from earlier versions) are not the operator's."""
    out = []
    for scope in ("persistent", "transient"):
        for key, value in sorted((data.get(scope) or {}).items()):
            if value in (None, "", []):
                continue
            if key == ENABLE and str(value).lower() != "all":
                out.append("%s %s=%s" % (scope, key, value))
                continue
            if not FILTER.match(key):
                continue
            values = split_list(value)
            if key == EXCLUDE_NAME:
                values = [v for v in values if v not in set(own_names)]
            elif key == EXCLUDE_ID:
                values = [v for v in values if v not in set(own_ids)]
            if values:
                out.append("%s %s=%s" % (scope, key, ",".join(values)))
    return out


def refuse_operator_settings(found):
    if not found:
        return []
    return ["operator_allocation_settings: %s %s set: a drain or a replacement may find no node for its "
            "copies and the final check cannot tell it from a leftover; remove %s (PUT _cluster/settings, "
            "the setting null in its scope; allocation.enable back to all), then rerun" % (
                "; ".join(found), "is" if len(found) == 1 else "are",
                "it" if len(found) == 1 else "them")]


def single_master(view, plan, strategy):
    """Refusal when drain/terminate would replace the only master-eligible node."""
    if strategy == "surge":
        return []
    masters = [n.get("name") for n in view.nodes.values() if is_master_eligible(n)]
    if len(masters) == 1 and any(c.get("master") for c in plan):
        return ["single_master: %s is the cluster's only master-eligible node; strategy %s would take the cluster's "
                "only master out (no master, no writes) until its replacement forms a new cluster state: use "
                "upgrade_strategy surge (the new master-eligible node joins first) or add master-eligible nodes"
                % (masters[0], strategy)]
    return []


def missing_nodes(world, except_instance=None):
    """Descriptions of what is out of the cluster now (except_instance's node aside): instances the
    groups keep that are not in the cluster, named with their state and address, and groups below
    their desired capacity. A node that left on its own (a failed instance) counts."""
    from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import LEAVING
    out = []
    for group in world.groups:
        name = group["AutoScalingGroupName"]
        kept = [i for i in group.get("Instances") or [] if i.get("LifecycleState") not in LEAVING]
        for inst in kept:
            iid = inst["InstanceId"]
            if iid == except_instance or iid in world.node_of:
                continue
            ec2 = world.instances.get(iid) or {}
            out.append("instance %s of %s (%s, %s, %s) is not in the cluster" % (
                iid, name, tag_dict(ec2.get("Tags")).get("Name") or "no Name tag",
                ec2.get("PrivateIpAddress") or "no address", (ec2.get("State") or {}).get("Name") or "unknown state"))
        short = group["DesiredCapacity"] - len(kept)
        if short > 0:
            out.append("%s has %d of its %d instances" % (name, len(kept), group["DesiredCapacity"]))
    return out


def budget_refusal(world, instance_id, node_name, max_nodes_out):
    """None, or why terminating instance_id now would take more nodes out than max_nodes_out."""
    missing = missing_nodes(world, except_instance=instance_id)
    if len(missing) + 1 > max_nodes_out:
        return ("%s would make %d node(s) out with max_nodes_out %d: %s" % (
            node_name, len(missing) + 1, max_nodes_out, "; ".join(missing)))
    return None


def decider_setting(decider, explanation):
    """The setting to change for a NO of decider: the one its explanation names, else the table's."""
    named = SETTING_IN_TEXT.findall(explanation or "")
    if named:
        return ", ".join(sorted(set(named)))
    return DECIDER_SETTINGS.get(decider, "see GET _cluster/allocation/explain")


def no_deciders(explain):
    """{decider: (setting, a node it refused on)} of the NO answers in an allocation explanation (can
    remain, and each other node's)."""
    out = {}
    decisions = list(explain.get("can_remain_decisions") or [])
    for dec in explain.get("node_allocation_decisions") or []:
        for d in dec.get("deciders") or []:
            decisions.append(dict(d, node_name=dec.get("node_name")))
    for d in decisions:
        if d.get("decision") == "NO" and d.get("decider") not in out:
            out[d.get("decider")] = (decider_setting(d.get("decider"), d.get("explanation")), d.get("node_name"))
    return out


def blockers(cluster, view, node_name, limit=10):
    """["index[shard]p|r: kept by <decider> (change <setting>)", ...] for the copies still on node_name
    that are not moving, from allocation explain with current_node (bounded)."""
    out = []
    seen = set()
    for row in view.shards_on(node_name):
        src, dst = shard_nodes(row)
        if src != node_name or dst or row.get("state") != "STARTED":
            continue
        key = (row.get("index"), str(row.get("shard")), row.get("prirep"))
        if key in seen:
            continue
        seen.add(key)
        if len(out) >= limit:
            break
        try:
            exp = cluster.explain(row.get("index"), row.get("shard"), row.get("prirep") == "p", current_node=node_name)
        except EsError as exc:
            out.append("%s[%s]%s: %s" % (key[0], key[1], key[2], exc.message))
            continue
        found = no_deciders(exp)
        if not found:
            continue
        out.append("%s[%s]%s: kept by %s" % (key[0], key[1], key[2], ", ".join(
            "%s (change %s)" % (decider, setting) for decider, (setting, _node) in sorted(found.items()))))
    return out


# -- delayed allocation of a node that will not come back -----------------------------
def delayed_indices(cluster, node_id=None):
    """Indices with a replica unassigned by a node leaving (node_id: that node) and delayed."""
    rows = [r for r in cluster.shards() if r.get("state") == "UNASSIGNED" and r.get("prirep") == "r"]
    out = set()
    for row in rows:
        if row.get("index") in out:
            continue
        try:
            exp = cluster.explain(row.get("index"), row.get("shard"), False)
        except EsError:
            continue
        info = exp.get("unassigned_info") or {}
        if node_id and node_id not in (info.get("details") or node_id):
            continue  # left by another node, which may come back
        if info.get("delayed") or exp.get("can_allocate") == "allocation_delayed":
            out.add(row.get("index"))
    return sorted(out)


def skip_delay(cluster, aws, group_names, node_id=None):
    """Allocate the copies of a node terminated for good now, not after delayed_timeout: the indices
    with delayed replicas that do not set the timeout themselves get it at 0 (marked as the run's,
    and the group tag says so first, so whichever run releases the lock resets it). Returns the
    indices changed."""
    indices = delayed_indices(cluster, node_id)
    if not indices:
        return []
    current = cluster.es.get("/%s/_settings/%s" % (index_path(*indices), DELAYED), params={"flat_settings": True})
    own = [i for i in indices if (((current.get(i) or {}).get("settings") or {}).get(DELAYED)) in (None,)]
    if not own:
        return []
    aws.put_group_tag(group_names, DELAYED_TAG, DELAYED_RUN_VALUE)
    cluster.es.put("/%s/_settings" % index_path(*own), body={"index": {"unassigned.node_left.delayed_timeout":
                                                                       DELAYED_RUN_VALUE}})
    return own


def reset_delay(cluster, aws, group_names):
    """Put the run's delayed_timeout back to unset (the operator's default) and drop the tag; the indices
    reset, [] when the tag says the run set none."""
    groups = aws.find_groups(names=list(group_names))
    if not any(tag_dict(g.get("Tags")).get(DELAYED_TAG) for g in groups):
        return []
    data = cluster.es.get("/_all/_settings/%s" % DELAYED, params={"flat_settings": True}) or {}
    ours = sorted(i for i, v in data.items() if ((v or {}).get("settings") or {}).get(DELAYED) == DELAYED_RUN_VALUE)
    if ours:
        cluster.es.put("/%s/_settings" % index_path(*ours), body={"index": {"unassigned.node_left.delayed_timeout":
                                                                            None}})
    aws.delete_group_tag(list(group_names), DELAYED_TAG)
    return ours


def left_changed(aws, opts):
    """What the run's group tags say it left changed in Auto Scaling and the cluster settings (for a
    failure message): raised desired capacity, paused rebalancing / raised recovery limits, delayed
    allocation, suspended processes."""
    from ansible_collections.logstack.elk.plugins.module_utils.rollout import rebalance, scaling
    from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import SURGE_TAG
    try:
        groups = aws.find_groups(names=opts.asg_names, tags=opts.asg_tags)
    except Exception:  # the failure message must not fail on AWS
        return []
    out, cluster_wide = [], {}
    for group in groups:
        name, tags = group["AutoScalingGroupName"], tag_dict(group.get("Tags"))
        if tags.get(SURGE_TAG):
            iid, _sep, before = tags[SURGE_TAG].partition(":")
            out.append("desired capacity of %s raised from %s for the surge of %s (%s tag)" % (
                name, before, iid, SURGE_TAG))
        if tags.get(scaling.SUSPEND_TAG, scaling.NONE) != scaling.NONE:
            out.append("Auto Scaling processes %s suspended on %s (%s tag)" % (
                tags[scaling.SUSPEND_TAG], name, scaling.SUSPEND_TAG))
        # the cluster's settings: one entry whatever the number of groups carrying the tag
        paused = "rebalancing paused and recovery limits possibly raised (the operator's values are saved in " \
            "the %s tag)" % rebalance.REBALANCE_TAG
        delayed = "%s=%s on indices a terminated node left (%s tag)" % (DELAYED, DELAYED_RUN_VALUE, DELAYED_TAG)
        for tag, what in ((rebalance.REBALANCE_TAG, paused), (DELAYED_TAG, delayed)):
            if tags.get(tag):
                cluster_wide.setdefault(what, []).append(name)
    out.extend("%s on %s" % (what, ", ".join(names)) for what, names in cluster_wide.items())
    return out


def preflight_refusals(cluster, world, plan, opts):
    """The refusals of this module at preflight: operator allocation settings, single master."""
    from ansible_collections.logstack.elk.plugins.module_utils.rollout import rebalance  # imports this module
    present = {n.get("name") for n in world.view.nodes.values()}
    present_ids = set(world.view.nodes)
    own = {n for n in world.view.excluded_names if n not in present}  # reconcile removes those
    own_ids = {i for i in world.view.excluded_ids if i not in present_ids}
    # An exclusion of a node the plan continues is the interrupted run's own only while that run's
    # rebalance pause is still on the groups (set before its first exclusion, removed at its end);
    # without it, nothing of ours is in flight and every filter is the operator's.
    if any(rebalance.REBALANCE_TAG in tag_dict(g.get("Tags")) for g in world.groups):
        own |= {c["node_name"] for c in plan if c["continuing"]}
        own_ids |= {c.get("node_id") for c in plan if c["continuing"]}
    found = operator_allocation_settings(cluster.settings(), own_names=own, own_ids=own_ids)
    return refuse_operator_settings(found) + single_master(world.view, plan, opts.strategy)
