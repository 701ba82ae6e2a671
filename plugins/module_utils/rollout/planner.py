# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which instances are outdated, in which order, and may we start.

Order (Elasticsearch's documented rolling-upgrade order, ECK's predicates):
nodes a crashed run left half-done first; then data nodes before
master-eligible nodes (a node older than the elected master cannot join);
data tiers frozen, cold, warm, hot, generic data; the elected master last.
Within a tier the node expected to drain fastest goes first: under ``drain`` the
first node's shards land on nodes that are replaced later and move again, while
every later drain moves about the same bytes whichever node went first. Each node
has one recovery rate limiter for what it sends and receives together, and the
slowest limiter sets the drain's time: ``drain_load`` is the most bytes one node's
limiter passes. A copy leaving the node lands on a node of its tier holding no copy
of its shard (spread evenly where several may take it); a primary is copied out of
the node itself, a replica from its primary's node.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.aws import tag_dict
from ansible_collections.logstack.elk.plugins.module_utils.node_map import map_nodes, outdated_reasons
from ansible_collections.logstack.elk.plugins.module_utils.rollout import leftovers
from ansible_collections.logstack.elk.plugins.module_utils.rollout import placement
from ansible_collections.logstack.elk.plugins.module_utils.rollout.explaining import explain_unassigned
from ansible_collections.logstack.elk.plugins.module_utils.rollout import predicates as P
from ansible_collections.logstack.elk.plugins.module_utils.rollout import versions
from ansible_collections.logstack.elk.plugins.module_utils.units import format_bytes
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import (
    is_data, is_master_eligible, shard_bytes, shard_holders, shard_key, shard_nodes, tier_rank, TIER_ORDER)

SURGE_TAG = "logstack:rollout-surge"
# Lifecycle states of an instance the group is getting rid of: not expected in the cluster.
LEAVING = ("Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated", "Detaching", "Detached")


class Options:
    def __init__(self, asg_names=None, asg_tags=None, version_tag="es_version", compare=("image", "version"),
                 target_image_id=None, target_version=None, node_attribute="aws_instance_id",
                 strategy="drain", accept_data_loss=False, max_nodes_out=1, complete_lifecycle_actions=False,
                 complete_launch_actions=False):
        self.asg_names = asg_names
        self.asg_tags = asg_tags
        self.version_tag = version_tag
        self.compare = tuple(compare)
        self.target_image_id = target_image_id
        self.target_version = target_version
        self.node_attribute = node_attribute
        self.strategy = strategy
        self.accept_data_loss = accept_data_loss
        self.max_nodes_out = max_nodes_out
        self.complete_lifecycle_actions = complete_lifecycle_actions
        self.complete_launch_actions = complete_launch_actions

    @classmethod
    def from_params(cls, params):
        return cls(asg_names=params.get("asg_names"), asg_tags=params.get("asg_tags"),
                   version_tag=params.get("version_tag"), compare=params.get("compare") or ("image", "version"),
                   target_image_id=params.get("target_image_id"), target_version=params.get("target_version"),
                   node_attribute=params.get("node_attribute") or "aws_instance_id",
                   strategy=params.get("strategy") or "drain",
                   accept_data_loss=bool(params.get("accept_data_loss")),
                   max_nodes_out=params.get("max_nodes_out") or 1,
                   complete_lifecycle_actions=bool(params.get("complete_lifecycle_actions")),
                   complete_launch_actions=bool(params.get("complete_launch_actions")))


def no_group_message(opts):
    """A selection that finds no group names the playbook variables that set it (role logstack.elk.upgrade)."""
    return ("No Auto Scaling Group has the tag(s) %s: set es_asg_tags (or es_asg_names) of this cluster in the "
            "inventory to its groups' tags." % ", ".join("%s=%s" % kv for kv in sorted((opts.asg_tags or {}).items())))


def cluster_group_names(aws, opts):
    """Names of the cluster's Auto Scaling Groups (found by name or by tags); none is an error, not an empty run."""
    names = [g["AutoScalingGroupName"] for g in aws.find_groups(names=opts.asg_names, tags=opts.asg_tags)]
    if not names:
        raise P_Error(no_group_message(opts))
    return names


class World:
    """The cluster and its groups, read once."""

    def __init__(self, cluster, aws, opts):
        self.opts = opts
        self.view = cluster.view()
        self.groups = aws.find_groups(names=opts.asg_names, tags=opts.asg_tags)
        if not self.groups:
            raise P_Error(no_group_message(opts))
        self.group_of = {}
        self.lifecycle = {}
        for group in self.groups:
            for inst in group.get("Instances") or []:
                self.group_of[inst["InstanceId"]] = group["AutoScalingGroupName"]
                self.lifecycle[inst["InstanceId"]] = inst.get("LifecycleState")
        self.instances = {i["InstanceId"]: i for i in aws.instances(sorted(self.group_of))}
        self.targets = {}
        for group in self.groups:
            target = aws.launch_template_target(group, version_tag=opts.version_tag)
            if opts.target_image_id:
                target["image_id"] = opts.target_image_id
            if opts.target_version:
                target["version"] = opts.target_version
            self.targets[group["AutoScalingGroupName"]] = target
        # Only instances the group keeps are expected in the cluster.
        live = [i for iid, i in self.instances.items()
                if self.lifecycle.get(iid) not in LEAVING and i.get("State", {}).get("Name") in ("pending", "running")]
        self.mapping, self.unmapped, self.orphans = map_nodes(self.view.nodes, live, opts.node_attribute)
        self.node_of = {iid: nid for nid, iid in self.mapping.items()}

    def group(self, name):
        for g in self.groups:
            if g["AutoScalingGroupName"] == name:
                return g
        return None

    def surge_of(self, group):
        """(instance id, desired before) recorded by a surge in progress on this group."""
        value = tag_dict(group.get("Tags")).get(SURGE_TAG)
        if not value or ":" not in value:
            return None, None
        iid, before = value.split(":", 1)
        return iid, int(before)

    @property
    def expected_nodes(self):
        return sum(g["DesiredCapacity"] for g in self.groups)

    @property
    def expected_masters(self):
        total = 0
        for group in self.groups:
            names = [self.view.nodes[n] for n, i in self.mapping.items() if self.group_of.get(i) == group["AutoScalingGroupName"]]
            if any(is_master_eligible(n) for n in names):
                total += group["DesiredCapacity"]
        return total

    def explains(self, cluster):
        """Allocation explanations of every unassigned copy (rollout/explaining.py)."""
        return explain_unassigned(cluster, self.view)

    def candidates(self):
        """Outdated nodes, each a plain dict, in replacement order."""
        out = []
        excluded = set(self.view.excluded_ids) | set(self.view.voting_excluded_ids())
        legacy = set(self.view.excluded_names)  # exclude._name of a run of an earlier version
        surging = {self.surge_of(g)[0] for g in self.groups}
        held = {}  # node name -> (bytes, primary bytes)
        for row in self.view.shards:
            name = shard_nodes(row)[0]  # while relocating: counted on the source
            if name:
                total, primary = held.get(name, (0, 0))
                size = shard_bytes(row)
                held[name] = (total + size, primary + (size if row.get("prirep") == "p" else 0))
        holders = shard_holders(self.view)  # once, for every candidate's drain_load
        tiers = {}
        for node in self.view.nodes.values():
            if is_data(node):
                tiers.setdefault(tier_rank(node), []).append(node.get("name"))
        for node_id, iid in self.mapping.items():
            inst = self.instances[iid]
            group = self.group_of[iid]
            reasons = outdated_reasons(inst, self.targets[group], self.opts.version_tag, self.opts.compare)
            if not reasons:
                continue
            node = self.view.nodes[node_id]
            total, primary = held.get(node.get("name"), (0, 0))
            out.append({
                "node_id": node_id,
                "node_name": node.get("name"),
                "instance_id": iid,
                "group": group,
                "roles": sorted(node.get("roles") or []),
                "master": is_master_eligible(node),
                "data": is_data(node),
                "tier": tier_rank(node),
                "elected_master": node_id == self.view.master_id,
                "version": node.get("version"),
                "shard_bytes": total,
                "primary_bytes": primary,
                "drain_bytes": drain_load(self.view, node.get("name"), tiers.get(tier_rank(node), []), holders),
                "image_id": inst.get("ImageId"),
                "target_image_id": self.targets[group].get("image_id"),
                "target_version": self.targets[group].get("version"),
                "reasons": reasons,
                "continuing": (node_id in excluded or node.get("name") in legacy or node_id in self.view.shutdowns
                               or iid in surging),
            })
        out.sort(key=order_key)
        for pos, cand in enumerate(out, 1):
            cand["position"] = pos
            cand["why"] = why(cand)
        return out

    def context(self, candidate=None, remaining=(), explains=None, disk=None, watermark="90%",
                indices_replicas=None):
        return P.Context(self.view, candidate=candidate, remaining=remaining, expected_nodes=self.expected_nodes,
                         expected_masters=self.expected_masters, max_nodes_out=self.opts.max_nodes_out,
                         strategy=self.opts.strategy, accept_data_loss=self.opts.accept_data_loss,
                         explains=explains, disk=disk, watermark=watermark, groups=self.groups,
                         unmapped_nodes=self.unmapped, orphan_instances=self.orphans,
                         indices_replicas=indices_replicas)


class P_Error(Exception):
    def __init__(self, message):
        super().__init__(message)
        self.message = message


def drain_load(view, node_name, peers, holders=None):
    """The most bytes one node's recovery limiter passes while node_name drains onto peers (the data
    nodes of its tier); 0 for a node holding nothing. holders: shard_holders(view), when known."""
    holders, primary_at = holders or shard_holders(view)
    load = {}
    for row in view.shards:
        if shard_nodes(row)[0] != node_name:
            continue
        key, size = shard_key(row), shard_bytes(row)
        targets = [n for n in peers if n != node_name and n not in holders[key]]
        if not targets:
            continue  # no node can take it (it stays: the version skew, or the drain waits)
        source = node_name if row.get("prirep") == "p" else primary_at.get(key, node_name)
        load[source] = load.get(source, 0) + size
        for target in targets:
            load[target] = load.get(target, 0) + size / len(targets)
    return int(max(load.values(), default=0))


def order_key(cand):
    # Within a tier: the quickest drain first (see the module docstring), then the fewest bytes.
    return (not cand["continuing"], cand["master"], cand["elected_master"], cand["tier"],
            cand.get("drain_bytes", 0), cand.get("shard_bytes", 0), cand["node_name"] or "")


def why(cand):
    if cand["continuing"]:
        return "left half-done by an earlier run: continued first"
    if cand["elected_master"]:
        return "elected master: replaced last"
    if cand["master"]:
        return "master-eligible: after every data node"
    tiers = [r for r in cand["roles"] if r in TIER_ORDER] or ["data"]
    return "data node (%s, %s, %s of primaries): data tiers frozen, cold, warm, hot first, quickest drain " \
        "first, before master-eligible nodes" % (", ".join(tiers), format_bytes(cand.get("shard_bytes", 0)),
                                                  format_bytes(cand.get("primary_bytes", 0)))


def preflight(cluster, aws, opts, disk_check=True):
    """(world, plan, refusals). Reads only."""
    world = World(cluster, aws, opts)
    plan = world.candidates()
    outdated_groups = {c["group"] for c in plan}
    for group in world.groups:
        group["_outdated"] = group["AutoScalingGroupName"] in outdated_groups
        group["_surging"] = world.surge_of(group)[0] is not None
    explains = world.explains(cluster) if world.view.status != "green" else {}
    replicas = indices_replicas(world.view) if opts.strategy == "terminate" else {}
    ctx = world.context(explains=explains, indices_replicas=replicas)
    refused = P.refusals(P.PREFLIGHT, ctx)
    refused.extend(leftovers.preflight_refusals(cluster, world, plan, opts))
    refused.extend(versions.refusals(cluster, world, plan))
    if disk_check and opts.strategy != "surge" and any(c["data"] for c in plan):
        disk = cluster.fs_stats()
        watermark = cluster.watermark_high()
        for cand in plan:
            if cand["continuing"]:
                continue  # its shards are already moving off
            nctx = world.context(candidate=cand, remaining=plan, disk=disk, watermark=watermark)
            refused.extend("%s (%s)" % (r, cand["node_name"]) for r in P.refusals(P.PREFLIGHT_NODE, nctx))
    refused.extend(placement_refusals(cluster, world, plan, opts))
    return world, plan, refused


def placement_refusals(cluster, world, plan, opts):
    """Under strategy drain, each outdated data node's copies must all have another node to go to
    (rollout/placement.py); surge adds the node first and terminate moves nothing."""
    todo = [c for c in plan if c["data"] and not c["continuing"]]
    if opts.strategy != "drain" or not todo:
        return []
    check = placement.Placement(world.view, placement.read_inputs(cluster),
                                replaced=[c["node_id"] for c in plan if c["continuing"]])
    out = []
    for cand in todo:
        why = placement.refusal(check.check(cand["node_id"]), cand["node_name"])
        if why:
            out.append("placement: %s" % why)
    return out


def indices_replicas(view):
    """index -> replicas configured, from the copies _cat/shards lists."""
    count = {}
    for row in view.shards:
        if row.get("shard") in (0, "0"):
            count.setdefault(row.get("index"), 0)
            if row.get("prirep") == "r":
                count[row.get("index")] += 1
    return count
