# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Can every copy on a node go somewhere else? The allocation deciders a drain meets, as plain Python.

Before a drain starts (preflight, and again right before the node is excluded) each copy the node
holds is placed, one after another, on another data node that Elasticsearch would accept it on:
``same_shard``; ``filter`` (``index.routing.allocation.{require,include,exclude}.*`` and the cluster's);
``data_tier`` (``_tier_preference`` and the tier roles); ``shards_limit`` (``total_shards_per_node``);
``awareness`` (plain and forced, Elasticsearch's ceil(copies / values) per value); ``disk_threshold``
(the target stays below the **low** watermark after the move: relocations stop there, not at the
high one; ``max_headroom`` caps a ratio watermark's free-space need on Elasticsearch 8.5+). Copies
already placed count for the next ones, so a node filling up or reaching its shard limit is seen.

A copy that cannot go anywhere but has another started copy on another node counts as drained,
as Elasticsearch's shutdown status counts it: the drain ends without it and the cluster is yellow
until the replacement joins. Preflight still refuses such a node (the drain would not keep every
shard's copies), naming the decider and the setting; at run time (the cluster changed since, e.g.
Auto Scaling started a replacement in another zone) the drain does not stall on it.
"""
from __future__ import annotations

import fnmatch
from collections import ChainMap

from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import (
    is_data, shard_bytes, shard_key, shard_nodes, split_list)
from ansible_collections.logstack.elk.plugins.module_utils.units import format_bytes, parse_bytes

AWARENESS = "cluster.routing.allocation.awareness.attributes"
FORCE = "cluster.routing.allocation.awareness.force.%s.values"
TIER_PREFERENCE = "index.routing.allocation.include._tier_preference"
TOTAL_INDEX = "index.routing.allocation.total_shards_per_node"
TOTAL_CLUSTER = "cluster.routing.allocation.total_shards_per_node"
LOW = "cluster.routing.allocation.disk.watermark.low"
LOW_HEADROOM = "cluster.routing.allocation.disk.watermark.low.max_headroom"
DISK_ENABLED = "cluster.routing.allocation.disk.threshold_enabled"
LOW_DEFAULT, HEADROOM_DEFAULT = "85%", "200gb"


class Inputs:
    """What the check reads: flat cluster settings (explicit ones in ``explicit``, defaults merged in
    ``settings``), index settings, node disks, and whether max_headroom applies (Elasticsearch 8.5+)."""

    def __init__(self, settings, explicit=None, index_settings=None, disk=None, headroom=True):
        self.settings = settings or {}
        self.explicit = explicit if explicit is not None else self.settings
        self.index_settings = index_settings or {}
        self.disk = disk or {}
        self.headroom = headroom


def read_inputs(cluster):
    """Three reads: cluster settings with defaults, the indices' allocation settings, node disks."""
    data = cluster.settings(defaults=True)
    explicit = dict(data.get("persistent") or {})
    explicit.update(data.get("transient") or {})
    merged = dict(data.get("defaults") or {})
    merged.update(explicit)
    es = cluster.es
    headroom = es.distribution == "elasticsearch" and es.version >= (8, 5, 0)
    return Inputs(merged, explicit, cluster.index_allocation_settings(), cluster.fs_stats(), headroom)


def _node_values(node_id, node, attr):
    if attr == "_name":
        return [node.get("name")]
    if attr == "_id":
        return [node_id]
    if attr in ("_ip", "_host_ip", "_publish_ip"):
        return [node.get("ip")]
    if attr == "_host":
        return [node.get("host"), node.get("ip")]
    if attr == "_tier":
        return list(node.get("roles") or [])
    value = (node.get("attributes") or {}).get(attr)
    return [value] if value is not None else []


def _filters(settings, prefix):
    """[(kind, attr, patterns, setting)] of require/include/exclude filters under prefix."""
    out = []
    for key, value in sorted(settings.items()):
        if not key.startswith(prefix) or value in (None, ""):
            continue
        kind, _, attr = key[len(prefix):].partition(".")
        if kind in ("require", "include", "exclude") and attr and attr != "_tier_preference":
            out.append((kind, attr, split_list(value), key))
    return out


def filter_refusal(node_id, node, index_rules, cluster_rules):
    """The setting (key=value) whose filter keeps the copy off this node, or None; the rules are
    _filters of the index's and of the cluster's settings."""
    for rules in (index_rules, cluster_rules):
        if not rules:
            continue
        for kind in ("require", "include", "exclude"):
            group = [r for r in rules if r[0] == kind]
            hits = [any(fnmatch.fnmatchcase(str(v), p) for v in _node_values(node_id, node, attr) if v is not None
                        for p in pats) for _k, attr, pats, _key in group]
            bad = None
            if kind == "require" and not all(hits):
                bad = group[hits.index(False)]
            elif kind == "include" and group and not any(hits):
                bad = group[0]
            elif kind == "exclude" and any(hits):
                bad = group[hits.index(True)]
            if bad:
                return "%s=%s" % (bad[3], ",".join(bad[2]))
    return None


def has_tier(node, tier):
    roles = node.get("roles") or []
    return tier in roles or "data" in roles


def preferred_tier(settings, nodes):
    """(the tiers of _tier_preference, the first one some data node has, or None); None without one."""
    pref = split_list(settings.get(TIER_PREFERENCE))
    if not pref:
        return None
    data_nodes = [n for n in nodes if is_data(n)]
    return pref, next((t for t in pref if any(has_tier(n, t) for n in data_nodes)), None)


def placement_refusal(node_id, node, settings, cluster_settings, nodes):
    """The setting (key=value) by which the filter or data_tier decider keeps every copy of an index with
    these flat ``settings`` off this node, or None. ``nodes``: every node entry (for the tier choice)."""
    bad = filter_refusal(node_id, node, _filters(settings, "index.routing.allocation."),
                         _filters(cluster_settings, "cluster.routing.allocation."))
    if bad:
        return bad
    tier = preferred_tier(settings, nodes)
    if tier is not None and (tier[1] is None or not has_tier(node, tier[1])):
        return "%s=%s" % (TIER_PREFERENCE, ",".join(tier[0]))
    return None


def min_free_low(inputs, total):
    """Bytes a node must keep free below the low watermark (ratio or absolute, with max_headroom)."""
    raw = str(inputs.settings.get(LOW) or LOW_DEFAULT).strip().lower()
    ratio = None
    if raw.endswith("%"):
        ratio = float(raw[:-1]) / 100.0
    else:
        absolute = parse_bytes(raw)
        if absolute is not None and not raw.replace(".", "", 1).isdigit():
            return float(absolute)
        ratio = float(raw)
    need = total * (1.0 - ratio)
    if inputs.headroom:
        head = inputs.explicit.get(LOW_HEADROOM)
        if head is None and LOW not in inputs.explicit:
            head = inputs.settings.get(LOW_HEADROOM) or HEADROOM_DEFAULT
        cap = parse_bytes(str(head)) if head not in (None, "", "-1") else None
        if cap is not None and cap >= 0:
            need = min(need, float(cap))
    return need


class Placement:
    """Greedy placement of one node's copies on the other data nodes (see the module docstring)."""

    def __init__(self, view, inputs, excluded_ids=(), replaced=()):
        self.view = view
        self.inputs = inputs
        self.excluded_ids = set(excluded_ids) | set(view.excluded_ids)
        # nodes an interrupted run is taking out: their replacements take copies by the time the
        # nodes checked here drain, so they count as targets
        self.replaced = set(replaced)
        # read once: the filters are checked for every copy on every target
        self.cluster_rules = _filters(inputs.settings, "cluster.routing.allocation.")
        self.index_rules = {}
        self.min_free = {}  # disk size -> bytes to keep free
        self.base = None  # see _base

    def _copies_of(self, key):
        index_settings = self.inputs.index_settings.get(key[0]) or {}
        if "index.number_of_replicas" in index_settings:
            try:
                return int(index_settings["index.number_of_replicas"]) + 1
            except (TypeError, ValueError):
                pass
        return sum(1 for r in self.view.shards if shard_key(r) == key)

    def check(self, node_id):
        """[{"row", "reasons": [(decider, why)], "elsewhere": bool}] for the copies on node_id that no other
        node takes."""
        view, inputs = self.view, self.inputs
        node = view.nodes.get(node_id) or {}
        name = node.get("name")
        targets = {i: n for i, n in view.nodes.items()
                   if i != node_id and is_data(n) and (i in self.replaced or (
                       i not in self.excluded_ids and i not in view.shutdowns
                       and n.get("name") not in view.excluded_names))}
        base_count, base_per_index, base_holders, started_at, rows_of = self._base()
        # this node's placements on top of the cluster as it is (copied, or written over: ChainMap)
        count, per_index, holders, added = dict(base_count), ChainMap({}, base_per_index), ChainMap({}, base_holders), {}
        pref_tiers = {}
        blocked = []
        rows = rows_of.get(name, [])
        for row in sorted(rows, key=lambda r: -shard_bytes(r)):
            key, size = shard_key(row), shard_bytes(row)
            index = row.get("index")
            settings = inputs.index_settings.get(index) or {}
            if index not in pref_tiers:
                pref_tiers[index] = self._preferred_tier(settings)
            best, reasons = None, []
            # the node with the fewest shards (then the most room) that takes it, as the balancer prefers;
            # every node's reason only when none does
            for tid in sorted(targets, key=lambda t: (count.get(t, 0), -self._room(t, added),
                                                      targets[t].get("name") or "")):
                why = self._refusal(tid, targets[tid], node_id, row, key, size, settings, pref_tiers[index],
                                    count, per_index, added, holders)
                if not why:
                    best = tid
                    break
                reasons.append((targets[tid].get("name"), why))
            if best is not None:
                count[best] = count.get(best, 0) + 1
                per_index[(best, index)] = per_index.get((best, index), 0) + 1
                added[best] = added.get(best, 0) + size
                holders[key] = (set(holders.get(key, ())) | {best}) - {node_id}
            else:
                blocked.append({"row": row, "reasons": reasons,
                                "elsewhere": bool(started_at.get(key, set()) - {name})})
        return blocked

    def _base(self):
        """Read once for every node checked: shard count per node, per (node, index), the nodes holding
        (or receiving) a copy of each shard, the nodes with a started copy, and each node's started rows
        (a copy already relocating has its target: not placed again)."""
        if self.base is None:
            by_name = {n.get("name"): i for i, n in self.view.nodes.items()}
            count, per_index, holders, started_at, rows_of = {}, {}, {}, {}, {}
            for row in self.view.shards:
                src, dst = shard_nodes(row)
                key = shard_key(row)
                for where in (src, dst):
                    nid = by_name.get(where)
                    if nid is None or nid in self.replaced:  # its copies leave it: its replacement is empty
                        continue
                    count[nid] = count.get(nid, 0) + 1
                    per_index[(nid, row.get("index"))] = per_index.get((nid, row.get("index")), 0) + 1
                    holders.setdefault(key, set()).add(nid)
                if src and row.get("state") in ("STARTED", "RELOCATING"):
                    started_at.setdefault(key, set()).add(src)
                if src and row.get("state") == "STARTED":
                    rows_of.setdefault(src, []).append(row)
            self.base = (count, per_index, holders, started_at, rows_of)
        return self.base

    def _preferred_tier(self, settings):
        return preferred_tier(settings, self.view.nodes.values())

    def _room(self, tid, added):
        total, available = self.inputs.disk.get(tid, (0, 0))
        return available - added.get(tid, 0) - self._min_free(total) if total else 0

    def _min_free(self, total):
        if total not in self.min_free:
            self.min_free[total] = min_free_low(self.inputs, total)
        return self.min_free[total]

    def _refusal(self, tid, target, source_id, row, key, size, settings, tier, count, per_index, added, holders):
        """(decider, the setting and why) keeping this copy off the target, or None."""
        inputs = self.inputs
        if tid in holders.get(key, set()):
            return "same_shard", "it holds another copy of the shard"
        index = row.get("index")
        if index not in self.index_rules:
            self.index_rules[index] = _filters(settings, "index.routing.allocation.")
        # a node an interrupted run is taking out stands for its replacement (a new id): the run's own
        # cluster exclusion of it does not apply (an operator's cluster filter is refused at preflight)
        bad = filter_refusal(tid, target, self.index_rules[index], [] if tid in self.replaced else self.cluster_rules)
        if bad:
            return "filter", bad
        if tier is not None:
            pref, chosen = tier
            if chosen is None or not has_tier(target, chosen):
                return "data_tier", "%s=%s and it is not a %s node" % (TIER_PREFERENCE, ",".join(pref),
                                                                        chosen or pref[0])
        limit = _int(settings.get(TOTAL_INDEX))
        if limit >= 0 and per_index.get((tid, row.get("index")), 0) >= limit:
            return "shards_limit", "%s=%d" % (TOTAL_INDEX, limit)
        limit = _int(inputs.settings.get(TOTAL_CLUSTER))
        if limit >= 0 and count.get(tid, 0) >= limit:
            return "shards_limit", "%s=%d" % (TOTAL_CLUSTER, limit)
        why = self._awareness(tid, target, source_id, key, holders)
        if why:
            return "awareness", why
        if str(inputs.settings.get(DISK_ENABLED, "true")).lower() != "false":
            if tid not in inputs.disk:
                return "disk_threshold", "no disk statistics for it"
            total, available = inputs.disk[tid]
            free_after = available - added.get(tid, 0) - size
            need = self._min_free(total)
            if free_after < need:
                return "disk_threshold", "%s=%s: %s free after the move, below the %s it must keep" % (
                    LOW, inputs.settings.get(LOW) or LOW_DEFAULT, format_bytes(max(0, free_after)),
                    format_bytes(need))
        return None

    def _awareness(self, tid, target, source_id, key, holders):
        attrs = split_list(self.inputs.settings.get(AWARENESS))
        if not attrs:
            return None
        nodes = self.view.nodes
        copies = self._copies_of(key)
        for attr in attrs:
            value = (target.get("attributes") or {}).get(attr)
            setting = "%s=%s" % (AWARENESS, ",".join(attrs))
            if value is None:
                return "%s and it has no node.attr.%s" % (setting, attr)
            seen = {(n.get("attributes") or {}).get(attr) for n in nodes.values() if is_data(n)} - {None}
            forced = split_list(self.inputs.settings.get(FORCE % attr))
            values = seen | set(forced)
            here = sum(1 for h in holders.get(key, set())
                       if h != source_id and (nodes.get(h, {}).get("attributes") or {}).get(attr) == value)
            most = -(-copies // len(values))
            if here + 1 > most:
                if forced:
                    setting += " with %s=%s" % (FORCE % attr, ",".join(forced))
                return "%s: at most %d of the shard's %d copies per %s, and %s already holds %d" % (
                    setting, most, copies, attr, value, here)
        return None


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def describe(blocked, node_name, limit=3):
    """One sentence: the copies of node_name that cannot go anywhere, each with the deciders and settings."""
    groups = {}
    for item in blocked:
        nos = [why for _node, why in item["reasons"]]
        reasons = sorted({"%s (%s)" % (d, w) for d, w in nos if d != "same_shard"})
        if not reasons:
            reasons = ["same_shard (every other data node holds a copy)"] if nos else ["no other data node"]
        groups.setdefault(tuple(reasons), []).append(item["row"])
    parts = []
    for reasons, rows in sorted(groups.items(), key=lambda g: -len(g[1]))[:limit]:
        shown = ", ".join("%s[%s]%s" % (r.get("index"), r.get("shard"), "p" if r.get("prirep") == "p" else "r")
                          for r in rows[:3])
        more = " and %d more" % (len(rows) - 3) if len(rows) > 3 else ""
        parts.append("%s%s: %s" % (shown, more, "; ".join(reasons[:3])))
    return "%d copies on %s have no other node to go to: %s" % (len(blocked), node_name, " | ".join(parts))


def refusal(blocked, node_name):
    """The preflight sentence for a node whose drain cannot empty it (None when it can)."""
    if not blocked:
        return None
    if any(not b["elsewhere"] for b in blocked):
        end = "the drain would wait until its timeout"
    else:
        end = "each has a started copy elsewhere, so the drain would end with them on it and the cluster " \
              "yellow until its replacement joins"
    return "%s; %s: use strategy surge (the replacement joins before the drain), or change the setting named" % (
        describe(blocked, node_name), end)
