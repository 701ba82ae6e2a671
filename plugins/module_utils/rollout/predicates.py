# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The safety invariants of docs/design.md as named predicates.

Each predicate takes a :class:`Context` and returns ``None`` when the rule
holds or one sentence saying why it refuses. The planner runs every rule of a
list over a candidate and reports ``"<rule>: <reason>"`` for each refusal, so
an operator reads "blocked by one_master_at_a_time: master-2 is already
voting-excluded" instead of a timeout. Nothing here talks to a server.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import (
    VERSION_DECIDERS, is_data, is_master_eligible, shard_bytes, shard_key, tier_rank, watermark_limit)

# The node already holds a copy of the shard.
SAME_SHARD = "same_shard"


class Context:
    """Everything a rule may look at; built by the planner and the steps."""

    def __init__(self, view, candidate=None, remaining=(), expected_nodes=0, expected_masters=0,
                 max_nodes_out=1, strategy="drain", accept_data_loss=False, explains=None,
                 disk=None, watermark="90%", groups=(), unmapped_nodes=(), orphan_instances=(),
                 instance_states=None, indices_replicas=None):
        self.view = view
        self.candidate = candidate  # planner entry: node_id, node_name, instance_id, group, ...
        self.remaining = list(remaining)  # planner entries still outdated, candidate included
        self.expected_nodes = expected_nodes
        self.expected_masters = expected_masters
        self.max_nodes_out = max_nodes_out
        self.strategy = strategy
        self.accept_data_loss = accept_data_loss
        self.explains = explains or {}  # (index, shard) -> allocation explain of its unassigned replica
        self.disk = disk or {}  # node id -> (total_bytes, available_bytes)
        self.watermark = watermark
        self.groups = list(groups)  # DescribeAutoScalingGroups entries
        self.unmapped_nodes = list(unmapped_nodes)
        self.orphan_instances = list(orphan_instances)
        self.instance_states = instance_states or {}
        self.indices_replicas = indices_replicas or {}  # index -> number_of_replicas

    @property
    def node(self):
        return self.view.nodes.get((self.candidate or {}).get("node_id")) or {}


# -- health -----------------------------------------------------------------
def unassigned_is_version_skew(row, explain):
    """True when this unassigned copy is a replica that only the version deciders (node_version,
    index_version) keep out.

    The one yellow a rolling upgrade may proceed on (docs/design.md), and what es_cluster_info reports
    as only_version_blocked_replicas_unassigned. Every node must refuse it (NO): with node_version
    among its reasons, whatever else refuses there (e.g. node_shutdown or the exclusion on the node
    being drained, which is older than the primary anyway), or with only same_shard (the node holds
    a copy already); at least one node refuses for the version.
    """
    if row.get("prirep") != "r" or not explain:
        return False
    if (explain.get("unassigned_info") or {}).get("delayed") or explain.get("can_allocate") == "allocation_delayed":
        return False
    decisions = explain.get("node_allocation_decisions") or []
    if not decisions:
        return False
    seen_version = False
    for decision in decisions:
        nos = {d.get("decider") for d in decision.get("deciders") or [] if d.get("decision") == "NO"}
        if nos & set(VERSION_DECIDERS):
            seen_version = True
        elif nos != {SAME_SHARD}:
            return False
    return seen_version


def skew_blocked(ctx):
    """Unassigned rows that are NOT explained by the version skew (empty: all are)."""
    return [r for r in ctx.view.unassigned()
            if not unassigned_is_version_skew(r, ctx.explains.get(shard_key(r)))]


def concurrent_limit_throttles(explain):
    """(node name, explanation) of each THROTTLE an allocation explanation gives on the
    node_concurrent_* recovery limits (the limits a drain fills). OpenSearch throttles a new
    index's replicas on their own limit, node_initial_replicas_recoveries, which a drain does not
    use: not these."""
    return [(dec.get("node_name"), d.get("explanation") or "")
            for dec in (explain or {}).get("node_allocation_decisions") or [] for d in dec.get("deciders") or []
            if d.get("decision") == "THROTTLE" and "node_concurrent_" in (d.get("explanation") or "")]


def throttled_replicas(ctx, rows):
    """The replicas among these unassigned rows that only the node_concurrent_* recovery limits
    keep unassigned (see concurrent_limit_throttles)."""
    out = []
    for r in rows:
        exp = ctx.explains.get(shard_key(r)) or {}
        if r.get("prirep") == "r" and exp.get("can_allocate") == "throttled" and concurrent_limit_throttles(exp):
            out.append(r)
    return out


def cluster_not_red(ctx):
    if ctx.view.status == "red":
        return "the cluster is red (%s unassigned shards, primaries among them)" % ctx.view.health.get(
            "unassigned_shards", "?")
    return None


def green_or_version_skew_yellow(ctx):
    """Green; or yellow where every unassigned copy is a node_version-blocked replica and nothing moves."""
    status = ctx.view.status
    if status == "green":
        return None
    if status != "yellow":
        return "the cluster is %s" % status
    if ctx.view.moving:
        return "the cluster is yellow with %s shards initializing or relocating" % ctx.view.moving
    others = skew_blocked(ctx)
    if others:
        return "the cluster is yellow and %d unassigned shard(s) are not explained by the version skew (%s)" % (
            len(others), ", ".join(describe_shard(r) for r in others[:5]))
    return None


# -- membership --------------------------------------------------------------
def nodes_out_within_budget(ctx):
    missing = max(0, ctx.expected_nodes - len(ctx.view.nodes))
    if missing + 1 > ctx.max_nodes_out:
        return ("%d node(s) of the expected %d are not in the cluster; taking %s out would make %d out "
                "(budget %d)" % (missing, ctx.expected_nodes, ctx.candidate["node_name"], missing + 1,
                                 ctx.max_nodes_out))
    return None


def all_masters_present(ctx):
    if not ctx.candidate.get("master"):
        return None
    present = len(ctx.view.master_eligible_ids())
    if present < ctx.expected_masters:
        return "only %d of the %d expected master-eligible nodes are in the cluster" % (
            present, ctx.expected_masters)
    return None


def one_master_at_a_time(ctx):
    if not ctx.candidate.get("master"):
        return None
    others = sorted({e.get("node_name") or e.get("node_id") for e in ctx.view.voting_exclusions
                     if e.get("node_id") != ctx.candidate["node_id"]})
    if others:
        return "master-eligible node(s) %s are already voting-excluded" % ", ".join(others)
    return None


def data_before_masters(ctx):
    cand = ctx.candidate
    if not cand.get("master") or cand.get("data"):
        return None
    pending = [c["node_name"] for c in ctx.remaining if not c.get("master") and c is not cand]
    if pending:
        return "data nodes %s are still outdated and go before master-eligible nodes" % ", ".join(pending)
    return None


def tier_order(ctx):
    cand = ctx.candidate
    if not cand.get("data") or cand.get("master"):
        return None
    earlier = [c["node_name"] for c in ctx.remaining
               if c is not cand and c.get("data") and not c.get("master") and c["tier"] < cand["tier"]]
    if earlier:
        return "nodes of a colder tier (%s) go first" % ", ".join(earlier)
    return None


def elected_master_last(ctx):
    cand = ctx.candidate
    if not cand.get("master") or ctx.view.master_id != cand.get("node_id"):
        return None
    others = [c["node_name"] for c in ctx.remaining if c is not cand and c.get("master")]
    if others:
        return "%s is the elected master and master-eligible nodes %s are still outdated" % (
            cand["node_name"], ", ".join(others))
    return None


def not_whole_tier(ctx):
    cand = ctx.candidate
    if not cand.get("data") or ctx.strategy == "surge":
        return None
    node = ctx.node
    peers = [i for i, n in ctx.view.nodes.items()
             if i != cand["node_id"] and is_data(n) and tier_rank(n) == tier_rank(node)
             and n.get("name") not in ctx.view.excluded_names and i not in ctx.view.excluded_ids]
    if not peers:
        return "%s is the last node of its data tier" % cand["node_name"]
    return None


# -- data safety ---------------------------------------------------------------
def unreplicated_primaries(ctx):
    """Primaries on the candidate with no started replica elsewhere (they die with the node)."""
    name = ctx.candidate["node_name"]
    started = {}
    for row in ctx.view.shards:
        if row.get("prirep") == "r" and row.get("state") == "STARTED" and row.get("node") != name:
            started[shard_key(row)] = started.get(shard_key(row), 0) + 1
    return [r for r in ctx.view.shards_on(name) if r.get("prirep") == "p" and not started.get(shard_key(r))]


def no_unreplicated_primary(ctx):
    """terminate strategy: never kill the only copy of a shard unless the operator accepted the loss."""
    if ctx.strategy != "terminate" or ctx.accept_data_loss:
        return None
    lost = unreplicated_primaries(ctx)
    if lost:
        return ("%s holds the only copy of %s; terminating it first would lose those documents "
                "(use strategy drain, or accept_data_loss: true)" % (
                    ctx.candidate["node_name"], ", ".join(describe_shard(r) for r in lost[:5])))
    return None


def zero_replica_indices(ctx):
    """terminate strategy preflight: an index with 0 replicas loses documents when its node dies."""
    if ctx.strategy != "terminate" or ctx.accept_data_loss:
        return None
    zero = sorted(i for i, n in ctx.indices_replicas.items() if int(n) == 0)
    if zero:
        return ("index(es) %s have 0 replicas: strategy terminate would lose their documents on the "
                "terminated nodes (use strategy drain, or set accept_data_loss: true)" % ", ".join(zero[:10]))
    return None


def disk_headroom(ctx):
    """The other data nodes can take the candidate's shards and stay below the high watermark."""
    cand = ctx.candidate
    if not cand.get("data") or ctx.strategy == "surge":
        return None
    need = sum(shard_bytes(r) for r in ctx.view.shards_on(cand["node_name"]))
    if need == 0:
        return None
    room = 0
    for node_id, node in ctx.view.nodes.items():
        if node_id == cand["node_id"] or not is_data(node) or node.get("name") in ctx.view.excluded_names \
                or node_id in ctx.view.excluded_ids:
            continue
        if node_id not in ctx.disk:
            return "no disk statistics for data node %s" % node.get("name")
        total, available = ctx.disk[node_id]
        room += max(0, watermark_limit(ctx.watermark, total) - (total - available))
    if need > room:
        return ("its %d bytes of shards do not fit on the other data nodes below the high disk watermark "
                "%s (%d bytes of room)" % (need, ctx.watermark, room))
    return None


# -- preflight (whole cluster) -------------------------------------------------
def nodes_mapped(ctx):
    if ctx.unmapped_nodes:
        names = [ctx.view.nodes.get(i, {}).get("name", i) for i in ctx.unmapped_nodes]
        if len(names) >= len(ctx.view.nodes):
            # Not one node mapped: the selection names another cluster's groups (or none of this one's).
            return ("no node of the cluster (%s) matches an instance of the selected groups: es_asg_tags (or "
                    "es_asg_names) of this cluster in the inventory selects other groups; fix it" % ", ".join(names))
        return "node(s) %s match no instance of the groups (by IP, aws_instance_id or name)" % ", ".join(names)
    return None


def instances_in_cluster(ctx):
    if ctx.orphan_instances:
        return "instance(s) %s of the groups are not in the cluster" % ", ".join(ctx.orphan_instances)
    return None


def scaling_processes_active(ctx):
    bad = []
    for group in ctx.groups:
        names = {p.get("ProcessName") for p in group.get("SuspendedProcesses") or []}
        stuck = sorted(names & {"Launch", "Terminate"})
        if stuck:
            bad.append("%s (%s)" % (group["AutoScalingGroupName"], ", ".join(stuck)))
    if bad:
        return "Auto Scaling processes are suspended on %s: resume them first" % "; ".join(bad)
    return None


def surge_capacity(ctx):
    if ctx.strategy != "surge":
        return None
    full = ["%s (desired %s = max %s)" % (g["AutoScalingGroupName"], g["DesiredCapacity"], g["MaxSize"])
            for g in ctx.groups
            if g.get("_outdated") and g["DesiredCapacity"] + 1 > g["MaxSize"]
            and not g.get("_surging")]
    if full:
        return "strategy surge needs one instance above the desired capacity, but %s: raise MaxSize by one " \
               "or use strategy drain" % "; ".join(full)
    return None


# Run before anything is changed (cluster-wide).
PREFLIGHT = [
    ("cluster_not_red", cluster_not_red),
    ("nodes_mapped", nodes_mapped),
    ("instances_in_cluster", instances_in_cluster),
    ("scaling_processes_active", scaling_processes_active),
    ("surge_capacity", surge_capacity),
    ("zero_replica_indices", zero_replica_indices),
]
# Run per outdated node in preflight (disk) and before the node is taken out.
PREFLIGHT_NODE = [
    ("disk_headroom", disk_headroom),
]
# Run immediately before a node is taken out of the cluster (first disruptive action on it).
TAKE_OUT = [
    ("cluster_not_red", cluster_not_red),
    ("green_or_version_skew_yellow", green_or_version_skew_yellow),
    ("nodes_out_within_budget", nodes_out_within_budget),
    ("all_masters_present", all_masters_present),
    ("one_master_at_a_time", one_master_at_a_time),
    ("data_before_masters", data_before_masters),
    ("tier_order", tier_order),
    ("elected_master_last", elected_master_last),
    ("not_whole_tier", not_whole_tier),
    ("no_unreplicated_primary", no_unreplicated_primary),
]


def refusals(rules, ctx):
    """["rule: reason", ...] for every rule of the list that refuses."""
    out = []
    for name, rule in rules:
        reason = rule(ctx)
        if reason:
            out.append("%s: %s" % (name, reason))
    return out


def describe_shard(row):
    return "%s[%s]%s" % (row.get("index"), row.get("shard"), "p" if row.get("prirep") == "p" else "r")


__all__ = ["Context", "PREFLIGHT", "PREFLIGHT_NODE", "TAKE_OUT", "refusals", "unassigned_is_version_skew",
           "is_master_eligible"]
