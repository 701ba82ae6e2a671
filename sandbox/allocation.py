"""Shard allocation: deciders, what happens when a node leaves, placement, moves, rebalancing.

Decider names and explanation texts are Elasticsearch's own (8.x), so what
``_cluster/allocation/explain`` shows here reads like the real thing.
"""
from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from .model import epoch_ms as _ms
from .units import byte_size_text as byte_size
from .units import parse_byte_size, parse_seconds

if TYPE_CHECKING:  # pragma: no cover
    from .engine import Cluster
    from .model import Copy, Node

YES, NO, THROTTLE = "YES", "NO", "THROTTLE"
LIMIT_SETTING = "cluster.routing.allocation.node_concurrent_recoveries"


def _limit(cluster: "Cluster", which: str) -> int:
    raw = cluster.setting(f"cluster.routing.allocation.node_concurrent_{which}_recoveries",
                          cluster.setting(LIMIT_SETTING, 2))
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 2


# ---------------------------------------------------------------- filters
def _split(value: Any) -> List[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _node_values(node: "Node", attr: str) -> List[str]:
    if attr == "_name":
        return [node.name]
    if attr == "_ip":
        return [node.ip]
    if attr == "_host":
        return [node.host, node.ip]
    if attr == "_id":
        return [node.id]
    if attr == "_host_ip" or attr == "_publish_ip":
        return [node.ip]
    if attr == "_tier":
        return list(node.roles)
    v = node.attributes.get(attr)
    return [v] if v is not None else []


def _matches(node: "Node", attr: str, patterns: List[str]) -> bool:
    values = _node_values(node, attr)
    return any(fnmatch.fnmatchcase(v, p) for v in values for p in patterns)


def _filters(settings: Dict[str, Any], prefix: str) -> Dict[str, Dict[str, List[str]]]:
    out: Dict[str, Dict[str, List[str]]] = {"require": {}, "include": {}, "exclude": {}}
    for key, value in settings.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        kind, _, attr = rest.partition(".")
        if kind in out and attr and attr != "_tier_preference" and value not in (None, ""):
            vals = _split(value)
            if vals:
                out[kind][attr] = vals
    return out


def _describe(filters: Dict[str, List[str]]) -> str:
    return ",".join(f'{attr}:"{" OR ".join(vals)}"' for attr, vals in sorted(filters.items()))


def filter_decision(cluster: "Cluster", copy: "Copy", node: "Node") -> Tuple[str, str]:
    meta = cluster.state.indices.get(copy.index)
    index_settings = meta.settings if meta else {}
    for scope, settings, prefix in (
        ("index", index_settings, "index.routing.allocation."),
        ("cluster", cluster.settings_with_prefix("cluster.routing.allocation."), "cluster.routing.allocation."),
    ):
        f = _filters(settings, prefix)
        if f["require"] and not all(_matches(node, a, v) for a, v in f["require"].items()):
            return NO, (f"node does not match {scope} setting [{prefix}require] filters "
                        f"[{_describe(f['require'])}]")
        if f["include"] and not any(_matches(node, a, v) for a, v in f["include"].items()):
            return NO, (f"node does not match {scope} setting [{prefix}include] filters "
                        f"[{_describe(f['include'])}]")
        if f["exclude"] and any(_matches(node, a, v) for a, v in f["exclude"].items()):
            return NO, (f"node matches {scope} setting [{prefix}exclude] filters "
                        f"[{_describe(f['exclude'])}]")
    return YES, "node passes include/exclude/require filters"


# ------------------------------------------- awareness, data tiers, shards per node
AWARENESS = "cluster.routing.allocation.awareness.attributes"
FORCE = "cluster.routing.allocation.awareness.force."
TIER_PREFERENCE = "index.routing.allocation.include._tier_preference"


def _int_setting(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _counted_copies(cluster: "Cluster", copy: "Copy") -> List[str]:
    """Node ids the shard's copies count on for awareness: started and initializing copies where
    they are, a relocating copy at its target (it is going there), as AwarenessAllocationDecider."""
    out = []
    for c in cluster.shards[copy.index][copy.shard]:
        if c.state == "RELOCATING" and c.relocating_node_id:
            out.append(c.relocating_node_id)
        elif c.node_id and c.state in ("STARTED", "INITIALIZING"):
            out.append(c.node_id)
    return out


def awareness_decision(cluster: "Cluster", copy: "Copy", node: "Node", move_to_node: bool = True) -> Tuple[str, str]:
    """AwarenessAllocationDecider: with attributes set, at most ceil(copies / values) copies of a shard
    on nodes sharing one value; values are those of the cluster's nodes, plus the forced ones."""
    attrs = _split(cluster.setting(AWARENESS, "") or "")
    if not attrs:
        return YES, "allocation awareness is not enabled, set cluster setting [cluster.routing.allocation.awareness.attributes] to enable it"
    meta = cluster.state.indices.get(copy.index)
    copies = (meta.number_of_replicas if meta else 0) + 1
    for attr in attrs:
        value = node.attributes.get(attr)
        if value is None:
            return NO, (f"node does not contain the awareness attribute [{attr}]; required attributes cluster setting "
                        f"[{AWARENESS}={','.join(attrs)}]")
        seen = sorted({n.attributes[attr] for n in cluster.nodes.values() if n.is_data and attr in n.attributes})
        forced = _split(cluster.setting(FORCE + attr + ".values", "") or "")
        values = sorted(set(seen) | set(forced))
        count = 0
        for nid in _counted_copies(cluster, copy):
            holder = cluster.nodes.get(nid)
            if holder is not None and holder.attributes.get(attr) == value:
                count += 1
        if move_to_node:
            where = copy.relocating_node_id if copy.state == "RELOCATING" else copy.node_id
            if where != node.id:
                src = cluster.nodes.get(where) if where else None
                if src is not None and copy.state != "UNASSIGNED" and src.attributes.get(attr) == value:
                    count -= 1
                count += 1
        most = -(-copies // len(values))
        if count > most:
            forced_text = (f"[{', '.join(forced)}] from forced awareness cluster setting [{FORCE}{attr}.values]"
                           if forced else "no forced awareness")
            return NO, (f"there are [{copies}] copies of this shard and [{len(values)}] values for attribute [{attr}] "
                        f"([{', '.join(seen)}] from nodes in the cluster and {forced_text}) so there may be at most "
                        f"[{most}] copies of this shard allocated to nodes with each value, but (including this copy) "
                        f"there would be [{count}] copies allocated to nodes with [node.attr.{attr}: {value}]")
    return YES, "node meets all awareness attribute requirements"


def _has_tier(node: "Node", tier: str) -> bool:
    return tier in node.roles or "data" in node.roles


def tier_decision(cluster: "Cluster", copy: "Copy", node: "Node") -> Tuple[str, str]:
    """DataTierAllocationDecider: the first tier of the index's _tier_preference that has a node."""
    meta = cluster.state.indices.get(copy.index)
    pref = _split((meta.settings if meta else {}).get(TIER_PREFERENCE) or "")
    if not pref:
        return YES, "index has no tier preference"
    tier = next((t for t in pref if any(_has_tier(n, t) for n in cluster.nodes.values() if n.is_data)), None)
    if tier is None:
        return NO, (f"index has a preference for tiers [{','.join(pref)}], but no nodes for any of those tiers are "
                    "available in the cluster")
    if not _has_tier(node, tier):
        return NO, (f"index has a preference for tiers [{','.join(pref)}] and node does not meet the required "
                    f"[{tier}] tier")
    return YES, f"index has a preference for tiers [{','.join(pref)}] and node has tier [{tier}]"


def shards_limit_decision(cluster: "Cluster", copy: "Copy", node: "Node") -> Tuple[str, str]:
    """ShardsLimitAllocationDecider: index.routing.allocation.total_shards_per_node and the cluster's."""
    meta = cluster.state.indices.get(copy.index)
    index_limit = _int_setting((meta.settings if meta else {}).get("index.routing.allocation.total_shards_per_node", -1))
    cluster_limit = _int_setting(cluster.setting("cluster.routing.allocation.total_shards_per_node", -1))
    if index_limit < 0 and cluster_limit < 0:
        return YES, "total shard limits are disabled: [index: -1, cluster: -1] <= 0"
    on_node = [c for c in cluster.all_copies()
               if (c.node_id == node.id and c.state != "RELOCATING") or c.relocating_node_id == node.id]
    if cluster_limit >= 0 and len(on_node) >= cluster_limit:
        return NO, (f"too many shards [{len(on_node)}] allocated to this node, cluster setting "
                    f"[cluster.routing.allocation.total_shards_per_node={cluster_limit}]")
    of_index = sum(1 for c in on_node if c.index == copy.index)
    if index_limit >= 0 and of_index >= index_limit:
        return NO, (f"too many shards [{of_index}] allocated to this node for index [{copy.index}], index setting "
                    f"[index.routing.allocation.total_shards_per_node={index_limit}]")
    return YES, (f"the shard count [{of_index}] for this node is under the index limit [{index_limit}] and cluster "
                 f"level node limit [{cluster_limit}]")


# ------------------------------------------------------------------- disk
WATERMARKS = {"low": "85%", "high": "90%", "flood_stage": "95%"}  # Elasticsearch's defaults
WATERMARK_KEY = "cluster.routing.allocation.disk.watermark."


def parse_watermark(value: Any) -> Tuple[str, float]:
    """("ratio", used fraction) for "90%" / "0.9", ("bytes", minimum free bytes) for "10gb";
    ValueError with Elasticsearch's wording otherwise."""
    raw = str(value).strip().lower()
    try:
        if raw.endswith("%"):
            pct = float(raw[:-1])
            if 0 <= pct <= 100:
                return "ratio", pct / 100
        elif raw and raw.replace(".", "", 1).isdigit():
            ratio = float(raw)
            if 0 <= ratio <= 1:
                return "ratio", ratio
        elif parse_byte_size(raw) is not None:
            return "bytes", parse_byte_size(raw)
    except ValueError:
        pass
    raise ValueError(f"failed to parse value [{value}] as a watermark (a percentage, a ratio or a byte size)")


def watermark(cluster: "Cluster", level: str) -> Tuple[str, float, str]:
    """(kind, value, text as set) of the low/high/flood_stage watermark in force."""
    raw = cluster.setting(WATERMARK_KEY + level, WATERMARKS[level])
    try:
        kind, val = parse_watermark(raw)
    except ValueError:
        raw = WATERMARKS[level]
        kind, val = parse_watermark(raw)
    return kind, val, str(raw)


def min_free_bytes(cluster: "Cluster", level: str, total: float) -> float:
    kind, val, _ = watermark(cluster, level)
    return total * (1 - val) if kind == "ratio" else val


def _pct(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") + "%"


def disk_enabled(cluster: "Cluster") -> bool:
    return str(cluster.setting("cluster.routing.allocation.disk.threshold_enabled", "true")).lower() != "false"


def _disk_map(cluster: "Cluster") -> Dict[str, Tuple[float, float]]:
    """node id -> (bytes expected on it once its recoveries finish, bytes of copies moving away);
    cached per engine tick and cluster-state version."""
    key = (cluster.version, cluster._last_tick, len(cluster.state.indices))
    cached = getattr(cluster, "_disk_cache", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    out: Dict[str, List[float]] = {}
    for c in cluster.all_copies():
        size = float(cluster.shard_size(c.index, c.shard))
        if c.node_id and c.state != "UNASSIGNED":
            out.setdefault(c.node_id, [0.0, 0.0])[0] += size
            if c.state == "RELOCATING":
                out[c.node_id][1] += size
        if c.relocating_node_id:
            out.setdefault(c.relocating_node_id, [0.0, 0.0])[0] += size
    result = {k: (v[0], v[1]) for k, v in out.items()}
    cluster._disk_cache = (key, result)
    return result


def disk_decision(cluster: "Cluster", copy: "Copy", node: "Node") -> Tuple[str, str]:
    """The disk_threshold decider's canAllocate (Elasticsearch 8 texts): above the low
    watermark no replica or previously allocated primary; above the high watermark
    nothing; nothing that would take the node above the high watermark."""
    if not disk_enabled(cluster):
        return YES, "the disk threshold decider is disabled"
    total = float(node.disk_bytes)
    used = _disk_map(cluster).get(node.id, (0.0, 0.0))[0]
    free = total - used
    used_pct = 100.0 * used / total
    size = float(cluster.shard_size(copy.index, copy.shard))
    _, _, low_raw = watermark(cluster, "low")
    _, _, high_raw = watermark(cluster, "high")
    low_free, high_free = min_free_bytes(cluster, "low", total), min_free_bytes(cluster, "high", total)
    if free < low_free:
        if not copy.primary or copy.ever_started:
            return NO, (f"the node is above the low watermark cluster setting [{WATERMARK_KEY}low={low_raw}], "
                        f"having less than the minimum required [{byte_size(low_free)}] free space, actual free: "
                        f"[{byte_size(free)}], actual used: [{_pct(used_pct)}]")
        if free < high_free:
            return NO, (f"the node is above the high watermark cluster setting [{WATERMARK_KEY}high={high_raw}], "
                        f"having less than the minimum required [{byte_size(high_free)}] free space, actual free: "
                        f"[{byte_size(free)}], actual used: [{_pct(used_pct)}]")
    after = free - size
    if after < high_free:
        return NO, (f"allocating the shard to this node will bring the node above the high watermark cluster setting "
                    f"[{WATERMARK_KEY}high={high_raw}] and cause it to have less than the minimum required "
                    f"[{byte_size(high_free)}] of free space (free: [{byte_size(free)}], estimated shard size: "
                    f"[{byte_size(size)}])")
    return YES, (f"enough disk for shard on node, free: [{byte_size(free)}], used: [{_pct(used_pct)}], shard size: "
                 f"[{byte_size(size)}], free after allocating shard: [{byte_size(after)}]")


def disk_can_remain(cluster: "Cluster", copy: "Copy", node: "Node") -> Tuple[str, str]:
    if not disk_enabled(cluster):
        return YES, "the disk threshold decider is disabled"
    total = float(node.disk_bytes)
    expected, leaving = _disk_map(cluster).get(node.id, (0.0, 0.0))
    free = total - (expected - leaving)  # copies already moving away no longer count, as in ES
    high_free = min_free_bytes(cluster, "high", total)
    if free < high_free:
        _, _, high_raw = watermark(cluster, "high")
        return NO, (f"the shard cannot remain on this node because it is above the high watermark cluster setting "
                    f"[{WATERMARK_KEY}high={high_raw}] and there is less than the required [{byte_size(high_free)}] "
                    f"free space on node, actual free: [{byte_size(free)}], actual used: "
                    f"[{_pct(100.0 * (total - free) / total)}]")
    return YES, f"there is enough disk on this node for the shard to remain, free: [{byte_size(free)}]"


FLOOD_BLOCK = "index.blocks.read_only_allow_delete"


def apply_flood_stage(cluster: "Cluster") -> None:
    """Elasticsearch's disk monitor: every index with a copy on a node above the flood-stage
    watermark gets the read-only-allow-delete block; it is released once every node holding
    the index is below the high watermark again (ES >= 7.4). Only blocks set here are
    released (a block a client set stays)."""
    if not disk_enabled(cluster):
        return
    used = cluster.disk_used_map()
    flooded, below_high = set(), set()
    for n in cluster.nodes.values():
        if not n.is_data:
            continue
        free = n.disk_bytes - used.get(n.id, 0)
        if free < min_free_bytes(cluster, "flood_stage", n.disk_bytes):
            flooded.add(n.id)
        if free >= min_free_bytes(cluster, "high", n.disk_bytes):
            below_high.add(n.id)
    for name, groups in cluster.shards.items():
        meta = cluster.state.indices.get(name)
        if meta is None:
            continue
        holders = {c.node_id for copies in groups for c in copies if c.node_id} | \
                  {c.relocating_node_id for copies in groups for c in copies if c.relocating_node_id}
        if holders & flooded and not meta.read_only_allow_delete:
            meta.settings[FLOOD_BLOCK] = "true"
            meta.read_only_allow_delete = True
            cluster.flood_blocked.add(name)
            cluster.version += 1
            cluster.log("flood_stage", f"index [{name}] is read-only (allow delete): a node holding it is above the "
                        "flood-stage watermark", index=name)
        elif name in cluster.flood_blocked and not holders & flooded and holders <= below_high:
            cluster.flood_blocked.discard(name)
            if meta.read_only_allow_delete:
                meta.settings.pop(FLOOD_BLOCK, None)
                meta.read_only_allow_delete = False
                cluster.version += 1
                cluster.log("flood_stage", f"index [{name}] writable again: its nodes are below the high watermark",
                            index=name)


# --------------------------------------------------------------- deciders
def _copy_on(cluster: "Cluster", copy: "Copy", node: "Node") -> Optional["Copy"]:
    for other in cluster.shards[copy.index][copy.shard]:
        if other is copy:
            continue
        if other.node_id == node.id or other.relocating_node_id == node.id:
            return other
    return None


def _routing(cluster: "Cluster", c: "Copy") -> str:
    node = c.node_id or "null"
    return (f"[{c.index}][{c.shard}], node[{node}], [{'P' if c.primary else 'R'}], "
            f"s[{c.state}], a[id={c.allocation_id}]")


def primary_of(cluster: "Cluster", copy: "Copy") -> Optional["Copy"]:
    return next((c for c in cluster.shards[copy.index][copy.shard] if c.primary), None)


def relocation_source(cluster: "Cluster", copy: "Copy") -> Optional[str]:
    """The node a relocating copy's data comes from, as in ES: a primary copies from the node it
    leaves, a replica from the node of its active primary (IndicesClusterStateService
    findSourceNodeForPeerRecovery; RoutingNodes counts the outgoing recovery there too).
    None while the primary is not active: the recovery waits."""
    if copy.primary:
        return copy.node_id
    primary = primary_of(cluster, copy)
    if primary is None or primary.state not in ("STARTED", "RELOCATING"):
        return None
    return primary.node_id


def recoveries(cluster: "Cluster") -> Tuple[Dict[str, int], Dict[str, int]]:
    incoming: Dict[str, int] = {}
    outgoing: Dict[str, int] = {}
    for c in cluster.all_copies():
        if c.state == "INITIALIZING" and c.node_id and c.recovery_source:
            incoming[c.node_id] = incoming.get(c.node_id, 0) + 1
            outgoing[c.recovery_source] = outgoing.get(c.recovery_source, 0) + 1
        elif c.state == "RELOCATING" and c.relocating_node_id:
            incoming[c.relocating_node_id] = incoming.get(c.relocating_node_id, 0) + 1
            source = relocation_source(cluster, c)
            if source:
                outgoing[source] = outgoing.get(source, 0) + 1
    return incoming, outgoing


def deciders(cluster: "Cluster", copy: "Copy", node: "Node", moving: bool = False,
             rec: Optional[Tuple[Dict[str, int], Dict[str, int]]] = None) -> List[Dict[str, str]]:
    """Every decider's verdict on putting ``copy`` on ``node`` (ES debug mode order)."""
    out: List[Dict[str, str]] = []

    def add(name: str, decision: str, explanation: str) -> None:
        out.append({"decider": name, "decision": decision, "explanation": explanation})

    # replica_after_primary_active
    primary = primary_of(cluster, copy)
    if not copy.primary:
        if primary is None or primary.state not in ("STARTED", "RELOCATING"):
            add("replica_after_primary_active", NO, "primary shard for this replica is not yet active")
        else:
            add("replica_after_primary_active", YES, "primary shard for this replica is already active")
    # enable
    enable = str(cluster.setting("cluster.routing.allocation.enable", "all")).lower()
    new_primary = copy.primary and not copy.ever_started
    if enable == "none":
        add("enable", NO, "no allocations are allowed due to cluster setting [cluster.routing.allocation.enable=none]")
    elif enable == "new_primaries" and not new_primary:
        what = "non-new primary" if copy.primary else "replica"
        add("enable", NO, f"{what} allocations are forbidden due to cluster setting "
                          "[cluster.routing.allocation.enable=new_primaries]")
    elif enable == "primaries" and not copy.primary:
        add("enable", NO, "replica allocations are forbidden due to cluster setting "
                          "[cluster.routing.allocation.enable=primaries]")
    else:
        add("enable", YES, "all allocations are allowed")
    # node_version
    if copy.primary:
        if moving and copy.node_id in cluster.nodes and node.vt < cluster.nodes[copy.node_id].vt:
            src = cluster.nodes[copy.node_id]
            add("node_version", NO, f"cannot relocate primary shard from a node with version [{src.version}] "
                                    f"to a node with older version [{node.version}]")
        else:
            add("node_version", YES, "the primary shard is new or already existed on the node")
    else:
        pnode = cluster.nodes.get(primary.node_id) if primary is not None and primary.node_id else None
        if pnode is None:
            add("node_version", YES, "no active primary shard yet")
        elif node.vt < pnode.vt:
            add("node_version", NO, f"cannot allocate replica shard to a node with version [{node.version}] "
                                    f"since this is older than the primary version [{pnode.version}]")
        else:
            add("node_version", YES, f"can allocate replica shard to a node with version [{node.version}] "
                                     f"since this is equal-or-newer than the primary version [{pnode.version}]")
    # same_shard
    other = _copy_on(cluster, copy, node)
    if other is not None or (moving and copy.node_id == node.id):
        held = other if other is not None else copy
        add("same_shard", NO, "a copy of this shard is already allocated to this node "
                              f"[{_routing(cluster, held)}]")
    else:
        add("same_shard", YES, "this node does not hold a copy of this shard")
    # filter
    decision, text = filter_decision(cluster, copy, node)
    add("filter", decision, text)
    # filters of their own: data tiers, shards per node, awareness
    for name, decide in (("data_tier", tier_decision), ("shards_limit", shards_limit_decision),
                         ("awareness", awareness_decision)):
        decision, text = decide(cluster, copy, node)
        add(name, decision, text)
    # disk_threshold (a copy already on this node, i.e. a move onto itself, is for same_shard to refuse)
    decision, text = disk_decision(cluster, copy, node)
    add("disk_threshold", decision, text)
    # node_shutdown
    sd = cluster.shutdowns.get(node.id)
    if sd and sd["type"] in ("remove", "replace"):
        add("node_shutdown", NO, f"node [{node.id}] is preparing to be removed from the cluster")
    elif sd:
        add("node_shutdown", YES, f"node [{node.id}] is preparing to restart, but will remain in the cluster")
    else:
        add("node_shutdown", YES, "this node is not currently shutting down")
    # throttling. An unassigned primary recovers from its own store (empty for a new index): ES
    # counts only initial primary recoveries on the node against node_initial_primaries_recoveries,
    # not peer recoveries. The sandbox starts such primaries at once, so none is ever in progress.
    if copy.primary and copy.state == "UNASSIGNED":
        limit = cluster.setting("cluster.routing.allocation.node_initial_primaries_recoveries", 4)
        add("throttling", YES, f"below primary recovery limit of [{limit}]")
        return out
    incoming, outgoing = rec if rec is not None else recoveries(cluster)
    lim_in, lim_out = _limit(cluster, "incoming"), _limit(cluster, "outgoing")
    n_in = incoming.get(node.id, 0)
    # the node the data would come from: see relocation_source
    if moving:
        source = relocation_source(cluster, copy)
    else:
        source = primary.node_id if primary is not None and not copy.primary else None
    n_out = outgoing.get(source, 0) if source else 0
    if n_in >= lim_in:
        add("throttling", THROTTLE, f"reached the limit of incoming shard recoveries [{n_in}], cluster setting "
                                    f"[cluster.routing.allocation.node_concurrent_incoming_recoveries={lim_in}] "
                                    f"(can also be set via [{LIMIT_SETTING}])")
    elif source and n_out >= lim_out:
        add("throttling", THROTTLE, f"reached the limit of outgoing shard recoveries [{n_out}] on the node "
                                    f"[{source}] which holds the primary, cluster setting "
                                    f"[cluster.routing.allocation.node_concurrent_outgoing_recoveries={lim_out}] "
                                    f"(can also be set via [{LIMIT_SETTING}])")
    else:
        add("throttling", YES, f"below shard recovery limit of outgoing: [{n_out} < {lim_out}] "
                               f"incoming: [{n_in} < {lim_in}]")
    return out


def verdict(ds: List[Dict[str, str]]) -> str:
    decisions = {d["decision"] for d in ds}
    return NO if NO in decisions else THROTTLE if THROTTLE in decisions else YES


def can_remain(cluster: "Cluster", copy: "Copy", node: "Node") -> List[Dict[str, str]]:
    out = []
    decision, text = filter_decision(cluster, copy, node)
    out.append({"decider": "filter", "decision": decision, "explanation": text})
    decision, text = disk_can_remain(cluster, copy, node)
    out.append({"decider": "disk_threshold", "decision": decision, "explanation": text})
    sd = cluster.shutdowns.get(node.id)
    if sd and sd["type"] in ("remove", "replace"):
        out.append({"decider": "node_shutdown", "decision": NO,
                    "explanation": f"node [{node.id}] is preparing to be removed from the cluster"})
    else:
        out.append({"decider": "node_shutdown", "decision": YES,
                    "explanation": "this node is not currently shutting down"})
    return out


def data_nodes(cluster: "Cluster") -> List["Node"]:
    return sorted((n for n in cluster.nodes.values() if n.is_data), key=lambda n: n.name)


def shard_counts(cluster: "Cluster") -> Dict[str, int]:
    counts = {n.id: 0 for n in cluster.nodes.values() if n.is_data}
    for c in cluster.all_copies():
        if c.node_id in counts:
            counts[c.node_id] += 1
        if c.relocating_node_id in counts:
            counts[c.relocating_node_id] += 1
    return counts


# ----------------------------------------------------------- node departure
def node_left(cluster: "Cluster", node: "Node", now: float) -> None:
    sd = cluster.shutdowns.get(node.id)
    for index, groups in cluster.shards.items():
        for copies in groups:
            touched = False
            for c in copies:
                if c.relocating_node_id == node.id:  # target left: the relocation is cancelled
                    c.state, c.relocating_node_id, c.recovery_left = "STARTED", None, 0.0
            for c in copies:
                if c.node_id != node.id:
                    continue
                touched = True
                was_primary_active = c.primary and c.state in ("STARTED", "RELOCATING")
                _unassign(c, _left_reason(sd), now, f"node_left [{node.id}]")
                if c.primary:
                    # as RoutingNodes.activeReplicaWithHighestVersion: the started replica on the newest node
                    active = [r for r in copies if not r.primary and r.state in ("STARTED", "RELOCATING")
                              and r.node_id in cluster.nodes]
                    promoted = max(active, key=lambda r: cluster.nodes[r.node_id].vt, default=None)
                    if promoted is not None:
                        promoted.primary, c.primary = True, False
                        for r in copies:  # recoveries from the old primary start over from the new one
                            if r.state == "INITIALIZING" and r.recovery_source == node.id:
                                r.recovery_source = promoted.node_id
                                r.recovery_left = float(cluster.shard_size(index, r.shard))
                        cluster.log("replica_promoted", f"[{index}][{c.shard}] replica on "
                                    f"{cluster.node_name(promoted.node_id)} promoted to primary",
                                    index=index, shard=c.shard)
                    else:
                        for r in copies:
                            if not r.primary and r.state == "INITIALIZING":
                                _unassign(r, "PRIMARY_FAILED", now, "primary failed while replica initializing")
                        if was_primary_active and not any(x.node_id for x in copies):
                            _lose(cluster, index, c.shard)
                if not c.primary:
                    c.delayed_until = now + _left_delay(cluster, index, sd)
                    c.unassigned_at_ms = _ms()
            if touched:
                cluster.version += 1


def _left_reason(sd: Optional[Dict[str, Any]]) -> str:
    """NODE_RESTARTING when the node left with a restart shutdown record, else NODE_LEFT (remove and replace
    too), as Elasticsearch's AllocationService.disassociateDeadNodes."""
    return "NODE_RESTARTING" if sd and sd.get("type") == "restart" else "NODE_LEFT"


def _left_delay(cluster: "Cluster", index: str, sd: Optional[Dict[str, Any]]) -> float:
    """Seconds a replica of ``index`` left by a departed node waits, as Elasticsearch
    (UnassignedInfo.getRemainingDelay): the index's index.unassigned.node_left.delayed_timeout, also after a
    ``remove`` or ``replace`` shutdown record (a node leaving for good is waited for all the same: only
    that setting at 0 allocates at once); after a ``restart`` record the longer of it and the record's
    allocation_delay (5m by default)."""
    delay = delayed_timeout_seconds(cluster, index)
    if sd and sd.get("type") == "restart":
        delay = max(delay, _duration(sd.get("allocation_delay") or "5m"))
    return delay


def _duration(raw: Any) -> float:
    try:
        return parse_seconds(raw, "allocation_delay")
    except ValueError:
        return 300.0


def delayed_timeout_seconds(cluster: "Cluster", index: str) -> float:
    meta = cluster.state.indices.get(index)
    raw = (meta.settings.get("index.unassigned.node_left.delayed_timeout") if meta else None) \
        or cluster.scenario.delayed_timeout
    try:
        return parse_seconds(raw, "index.unassigned.node_left.delayed_timeout")
    except ValueError:
        return 60.0


def _unassign(c: "Copy", reason: str, now: float, details: str) -> None:
    c.node_id = None
    c.state = "UNASSIGNED"
    c.relocating_node_id = None
    c.recovery_left = 0.0
    c.recovery_source = None
    c.unassigned_reason = reason
    c.unassigned_at = now
    c.unassigned_at_ms = _ms()
    c.unassigned_details = details
    c.delayed_until = 0.0


def _lose(cluster: "Cluster", index: str, shard: int) -> None:
    meta = cluster.state.indices.get(index)
    lost = meta.doc_count(shard) if meta else 0
    docs = cluster.state.documents
    if docs is not None and hasattr(docs, "drop_shard"):
        docs.drop_shard(index, shard)
    elif meta is not None:
        meta.docs[shard] = {}
        meta.synthetic_docs[shard] = 0
    if meta is not None:
        meta.size_bytes[shard] = 0
    cluster.lost[(index, shard)] = lost
    cluster.log("shard_lost", f"[{index}][{shard}] has no copy left: {lost} documents lost", index=index,
                shard=shard, docs=lost)


# -------------------------------------------------------------- allocation
def _best(cluster: "Cluster", copy: "Copy", moving: bool, rec: Any, counts: Dict[str, int]) -> Tuple[Optional["Node"], bool]:
    """Where the copy goes now, as Elasticsearch's BalancedShardsAllocator, and whether some node was only
    throttled. A move (decideMove) takes the first YES node in weight order, passing throttled ones by.
    An unassigned copy (decideAllocateUnassigned) goes to the lowest-weight node among the YES and THROTTLE
    answers (a YES wins a tie): when that node is throttled the copy stays unassigned this round, though
    a heavier node says YES. Weight here: shard copies on the node (relocations counted at both ends)."""
    verdicts = [(node, verdict(deciders(cluster, copy, node, moving=moving, rec=rec))) for node in data_nodes(cluster)]
    throttled = any(v == THROTTLE for _, v in verdicts)
    if not moving:
        pick = _lowest_weight(verdicts, counts)
        return (pick[0] if pick is not None and pick[1] == YES else None), throttled
    best = None
    for node, v in verdicts:
        if v == YES and (best is None or counts[node.id] < counts[best.id]):
            best = node
    return best, throttled


def _lowest_weight(verdicts: List[Tuple["Node", str]], counts: Dict[str, int]) -> Optional[Tuple["Node", str]]:
    """(node, verdict) of the lowest-weight node among YES and THROTTLE answers, a YES winning a tie
    (then the node name); None when every node says NO."""
    able = [(n, v) for n, v in verdicts if v in (YES, THROTTLE)]
    return min(able, key=lambda nv: (counts.get(nv[0].id, 0), nv[1] != YES, nv[0].name), default=None)


def allocate(cluster: "Cluster", now: float) -> None:
    counts = shard_counts(cluster)
    # 1. unassigned copies: primaries first
    pending = [c for c in cluster.all_copies() if c.state == "UNASSIGNED"]
    pending.sort(key=lambda c: (not c.primary, c.index, c.shard))
    for c in pending:
        if (c.index, c.shard) in cluster.lost:
            continue
        if c.primary and c.ever_started:
            continue  # its data went with its node: only that node's return could bring it back
        if not c.primary and c.delayed_until > now:
            continue
        rec = recoveries(cluster)
        node, _ = _best(cluster, c, False, rec, counts)
        if node is None:
            continue
        size = cluster.shard_size(c.index, c.shard)
        c.node_id = node.id
        c.unassigned_reason = None
        c.unassigned_details = None
        counts[node.id] += 1
        if c.primary or size == 0:
            c.state = "STARTED"  # empty new primary (or empty replica): nothing to copy
            c.ever_started = True
            c.recovery_source = None
        else:
            c.state = "INITIALIZING"
            c.recovery_started = now
            c.recovery_left = float(size)
            c.recovery_source = primary_of(cluster, c).node_id
        cluster.version += 1
    # 2. copies that cannot remain where they are (exclusions, shutdown remove) move away
    for c in list(cluster.all_copies()):
        if c.state != "STARTED" or c.node_id not in cluster.nodes:
            continue
        node = cluster.nodes[c.node_id]
        if verdict(can_remain(cluster, c, node)) == YES:
            continue
        target, _ = _best(cluster, c, True, recoveries(cluster), counts)
        if target is not None:
            _relocate(cluster, c, target, counts)
    # 3. rebalance when everything is active (cluster.routing.allocation.allow_rebalance=indices_all_active)
    if str(cluster.setting("cluster.routing.rebalance.enable", "all")).lower() == "none":
        return
    if str(cluster.setting("cluster.routing.allocation.enable", "all")).lower() != "all":
        return
    if any(c.state != "STARTED" for c in cluster.all_copies()):
        return
    eligible = [n for n in data_nodes(cluster) if n.id not in cluster.shutdowns]
    if len(eligible) < 2:
        return
    for _ in range(2):  # cluster.routing.allocation.cluster_concurrent_rebalance default 2
        eligible.sort(key=lambda n: (counts[n.id], n.name))
        low, high = eligible[0], eligible[-1]
        if counts[high.id] - counts[low.id] < 2:
            return
        rec = recoveries(cluster)
        moved = False
        for c in sorted((c for c in cluster.all_copies() if c.node_id == high.id and c.state == "STARTED"),
                        key=lambda c: (c.primary, c.index, c.shard)):
            if verdict(can_remain(cluster, c, high)) != YES:
                continue
            if verdict(deciders(cluster, c, low, moving=True, rec=rec)) == YES:
                _relocate(cluster, c, low, counts)
                moved = True
                break
        if not moved:
            return


def _relocate(cluster: "Cluster", c: "Copy", target: "Node", counts: Dict[str, int]) -> None:
    size = cluster.shard_size(c.index, c.shard)
    c.state = "RELOCATING"
    c.recovery_started = cluster.state.now()
    c.relocating_node_id = target.id
    c.recovery_left = float(size)
    counts[target.id] = counts.get(target.id, 0) + 1
    cluster.version += 1
    if size == 0:
        recovery_done(cluster, c)


def cancel(cluster: "Cluster", index: str, shard: int, node: "Node", allow_primary: bool, apply: bool) -> str:
    """POST _cluster/reroute {"cancel": ...} as ES's CancelAllocationCommand: the copy of the shard on
    ``node`` is failed. On the target node of a relocation that cancels the relocation (the source
    copy stays started), allowed for a primary too; any other primary needs allow_primary.
    Returns what was done; raises ValueError with ES's message."""
    copies = cluster.shards.get(index, [])
    if shard < 0 or shard >= len(copies):
        raise ValueError(f"[cancel_allocation] can't cancel [{index}][{shard}], failed to find it on node {node.name}")
    target = next((c for c in copies[shard] if c.state == "RELOCATING" and c.relocating_node_id == node.id), None)
    if target is not None:
        if apply:
            target.state, target.relocating_node_id, target.recovery_left = "STARTED", None, 0.0
            cluster.version += 1
            cluster.log("relocation_cancelled", f"[{index}][{shard}] relocation to {node.name} cancelled "
                        f"(reroute cancel); the copy stays on {cluster.node_name(target.node_id)}",
                        index=index, shard=shard)
        return "relocation cancelled"
    here = next((c for c in copies[shard] if c.node_id == node.id), None)
    if here is None:
        raise ValueError(f"[cancel_allocation] can't cancel [{index}][{shard}], failed to find it on node {node.name}")
    if here.primary and not allow_primary:
        raise ValueError(f"[cancel_allocation] can't cancel [{index}][{shard}] on node {node.name}, shard is primary "
                         f"and {here.state.lower()}")
    if here.primary:
        raise NotImplementedError("the sandbox does not cancel a primary (allow_primary)")
    if apply:
        _unassign(here, "REROUTE_CANCELLED", cluster.state.now(), "reroute cancelled")
        cluster.version += 1
    return "copy failed"


def recovery_done(cluster: "Cluster", c: "Copy") -> None:
    if c.state == "RELOCATING":
        if c.node_id in cluster.nodes and c.relocating_node_id in cluster.nodes:
            counts_from = c.node_id
            c.node_id = c.relocating_node_id
            cluster.log("shard_relocated", f"[{c.index}][{c.shard}] moved from {cluster.node_name(counts_from)} "
                        f"to {cluster.node_name(c.node_id)}", index=c.index, shard=c.shard)
        c.relocating_node_id = None
    c.state = "STARTED"
    c.ever_started = True
    c.recovery_left = 0.0
    c.recovery_source = None
    cluster.version += 1


def bootstrap_place(cluster: "Cluster") -> None:
    """Place the scenario's indices as a cluster that has been running for a while:
    every copy STARTED, balanced, no two copies of a shard on one node."""
    nodes = data_nodes(cluster)
    counts = {n.id: 0 for n in nodes}
    for name, groups in sorted(cluster.shards.items()):
        for copies in groups:
            used: set = set()
            for c in copies:
                if c.state != "UNASSIGNED":
                    used.add(c.node_id)
                    continue
                options = [n for n in nodes if n.id not in used and filter_decision(cluster, c, n)[0] == "YES"
                           and tier_decision(cluster, c, n)[0] == "YES"]
                if not options:
                    continue
                n = min(options, key=lambda n: (counts[n.id], n.name))
                c.node_id, c.state, c.ever_started = n.id, "STARTED", True
                c.unassigned_reason = None
                counts[n.id] += 1
                used.add(n.id)
    cluster.version += 1


# ---------------------------------------------------------------- explain
def explain(cluster: "Cluster", copy: "Copy", include_yes: bool, es_major: int) -> Dict[str, Any]:
    now = cluster.state.now()
    rec = recoveries(cluster)
    counts = shard_counts(cluster)
    nodes = data_nodes(cluster)
    ranking = {n.id: i + 1 for i, n in enumerate(sorted(nodes, key=lambda n: (counts[n.id], n.name)))}

    def node_entry(node: "Node", ds: List[Dict[str, str]]) -> Dict[str, Any]:
        v = verdict(ds)
        shown = ds if include_yes else [d for d in ds if d["decision"] != YES]
        entry = {"node_id": node.id, "node_name": node.name, "transport_address": node.transport_address,
                 "node_attributes": dict(node.attributes),
                 "node_decision": {"YES": "yes", "NO": "no", "THROTTLE": "throttled"}[v],
                 "weight_ranking": ranking[node.id]}
        if es_major >= 8:  # a real 7.17 lists no roles here (tests/fixtures/recordings)
            entry["roles"] = list(node.roles)
        if shown:
            entry["deciders"] = shown
        return entry

    out: Dict[str, Any] = {"index": copy.index, "shard": copy.shard, "primary": copy.primary,
                           "current_state": copy.state.lower()}
    if copy.state == "UNASSIGNED":
        out["unassigned_info"] = {
            "reason": copy.unassigned_reason or "INDEX_CREATED",
            "at": _iso(copy.unassigned_at_ms or _ms()),
            "last_allocation_status": "no_valid_shard_copy" if copy.primary and copy.ever_started else "no_attempt",
        }
        if copy.unassigned_details:
            out["unassigned_info"]["details"] = copy.unassigned_details
        if copy.delayed_until > now and not copy.primary:
            out["unassigned_info"]["delayed"] = True
        decisions = [(n, deciders(cluster, copy, n, rec=rec)) for n in nodes]
        entries = [node_entry(n, ds) for n, ds in decisions]
        verdicts = [verdict(ds) for _, ds in decisions]
        if copy.primary and copy.ever_started:
            out["can_allocate"] = "no_valid_shard_copy"
            out["allocate_explanation"] = (
                "Elasticsearch can't allocate this shard because there are no copies of its data in the cluster. "
                "Elasticsearch will allocate this shard when a node holding a good copy of its data joins the "
                "cluster. If no such node is available, restore this index from a recent snapshot."
                if es_major >= 8 else
                "cannot allocate because a previous copy of the primary shard existed but can no longer be found "
                "on the nodes in the cluster")
        elif not copy.primary and copy.delayed_until > now:
            remaining = copy.delayed_until - now
            configured = remaining + (now - copy.unassigned_at)
            out["can_allocate"] = "allocation_delayed"
            out["allocate_explanation"] = (
                "The node containing this shard copy recently left the cluster. Elasticsearch is waiting for it "
                f"to return. If the node does not return, Elasticsearch will allocate this shard to another node "
                f"in [{remaining:.1f}s]. Please wait." if es_major >= 8 else
                f"cannot allocate because the cluster is still waiting {remaining:.1f}s for the departed node "
                "holding a replica to rejoin, despite being allowed to allocate the shard to at least one other node")
            out["configured_delay_in_millis"] = int(configured * 1000)
            out["remaining_delay_in_millis"] = int(remaining * 1000)
        elif _unassigned_verdict(decisions, counts) == YES:
            out["can_allocate"] = "yes"
            out["allocate_explanation"] = (
                "Elasticsearch can allocate the shard." if es_major >= 8 else "can allocate the shard")
        elif THROTTLE in verdicts:
            out["can_allocate"] = "throttled"
            out["allocate_explanation"] = (
                "Elasticsearch is currently busy with other activities. It expects to be able to allocate this "
                "shard when those activities finish. Please wait." if es_major >= 8 else
                "allocation temporarily throttled")
        else:
            out["can_allocate"] = "no"
            out["allocate_explanation"] = (
                "Elasticsearch isn't allowed to allocate this shard to any of the nodes in the cluster. Choose a "
                "node to which you expect this shard to be allocated, find this node in the node-by-node "
                "explanation, and address the reasons which prevent Elasticsearch from allocating this shard there."
                if es_major >= 8 else "cannot allocate because allocation is not permitted to any of the nodes")
        out["node_allocation_decisions"] = entries
        return out
    node = cluster.nodes.get(copy.node_id)
    if node is None:
        return out
    out["current_node"] = {"id": node.id, "name": node.name, "transport_address": node.transport_address,
                           "attributes": dict(node.attributes), "roles": list(node.roles),
                           "weight_ranking": ranking.get(node.id, 0)}
    if copy.state == "RELOCATING" and copy.relocating_node_id in cluster.nodes:
        out["relocating_node"] = {"id": copy.relocating_node_id,
                                  "name": cluster.node_name(copy.relocating_node_id)}
    remain = can_remain(cluster, copy, node)
    if verdict(remain) == YES:
        out["can_remain_on_current_node"] = "yes"
        out["can_rebalance_cluster"] = "yes"
        out["can_rebalance_to_other_node"] = "no"
        out["rebalance_explanation"] = (
            "Elasticsearch cannot rebalance this shard to another node since there is no node to which allocation "
            "is permitted which would improve the cluster balance. If you expect this shard to be rebalanced to "
            "another node, find this node in the node-by-node explanation and address the reasons which prevent "
            "Elasticsearch from rebalancing this shard there." if es_major >= 8 else
            "cannot rebalance as no target node exists that can both allocate this shard and improve the cluster balance")
        others = [n for n in nodes if n.id != node.id]
        out["node_allocation_decisions"] = [node_entry(n, deciders(cluster, copy, n, moving=True, rec=rec))
                                            for n in others]
        return out
    out["can_remain_on_current_node"] = "no"
    out["can_remain_decisions"] = [d for d in remain if d["decision"] != YES or include_yes]
    others = [n for n in nodes if n.id != node.id]
    decisions = [(n, deciders(cluster, copy, n, moving=True, rec=rec)) for n in others]
    verdicts = [verdict(ds) for _, ds in decisions]
    if copy.state == "RELOCATING" or YES in verdicts:
        out["can_move_to_other_node"] = "yes"
        out["move_explanation"] = ("This shard may not remain on its current node, but Elasticsearch can move it "
                                   "to another node." if es_major >= 8 else
                                   "can move the shard to another node")
    elif THROTTLE in verdicts:
        out["can_move_to_other_node"] = "throttled"
        out["move_explanation"] = ("Elasticsearch is currently busy with other activities. It expects to be able "
                                   "to move this shard when those activities finish. Please wait.")
    else:
        out["can_move_to_other_node"] = "no"
        out["move_explanation"] = (
            "This shard may not remain on its current node, but Elasticsearch isn't allowed to move it to another "
            "node. Choose a node to which you expect this shard to be allocated, find this node in the "
            "node-by-node explanation, and address the reasons which prevent Elasticsearch from allocating this "
            "shard there." if es_major >= 8 else
            "cannot move shard to another node, even though it is not allowed to remain on its current node")
    out["node_allocation_decisions"] = [node_entry(n, ds) for n, ds in decisions]
    return out


def _unassigned_verdict(decisions: List[Tuple["Node", List[Dict[str, str]]]], counts: Dict[str, int]) -> str:
    """What the allocator decides for an unassigned copy (see _best): the verdict of the lowest-weight node
    among the YES and THROTTLE answers, NO when there is none; explain says so ("throttled" though a
    heavier node says YES)."""
    pick = _lowest_weight([(n, verdict(ds)) for n, ds in decisions], counts)
    return pick[1] if pick is not None else NO


def version_skew_only(cluster: "Cluster", copy: "Copy") -> bool:
    """An unassigned replica blocked only because every eligible node is older than its primary."""
    if copy.primary or copy.state != "UNASSIGNED" or (copy.index, copy.shard) in cluster.lost:
        return False
    if copy.delayed_until > cluster.state.now():
        return False
    rec = recoveries(cluster)
    blocked_by_version = False
    for node in data_nodes(cluster):
        ds = deciders(cluster, copy, node, rec=rec)
        nos = {d["decider"] for d in ds if d["decision"] == NO}
        if not nos:
            return False  # some node could take it (maybe throttled): not a version-skew block
        if nos == {"node_version"}:
            blocked_by_version = True
        elif "node_version" not in nos and "same_shard" not in nos:
            return False
    return blocked_by_version


def _iso(ms: int) -> str:
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"
