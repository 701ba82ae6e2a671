# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Elasticsearch reads and writes of the rollout.

Everything the planner and the steps decide on is read here into a
:class:`View`, a plain snapshot of the cluster: a rerun after a crash sees the
same world the crashed run left (exclusions, shutdown records, voting
exclusions) and continues from it.
"""
from __future__ import annotations

import re

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout import voting
from ansible_collections.logstack.elk.plugins.module_utils.units import parse_bytes, parse_version

EXCLUDE_NAME = "cluster.routing.allocation.exclude._name"
# The run excludes a node by id: a replacement may come back with the departed node's name (EC2 reuses
# private IPs and the default node name is the host name), and a name exclusion would then hold it.
EXCLUDE_ID = "cluster.routing.allocation.exclude._id"
WATERMARK_HIGH = "cluster.routing.allocation.disk.watermark.high"
TIER_ORDER = ("data_frozen", "data_cold", "data_warm", "data_hot", "data_content", "data")
# What each poll reads, and only that (issue 15 item 11): bytes per poll do not grow with the indices'
# mappings or the nodes' settings and plugins.
NODE_FIELDS = ",".join("nodes.*." + f for f in ("name", "roles", "version", "ip", "host", "transport_address",
                                                "http.publish_address", "attributes"))
SHARD_COLUMNS = "index,shard,prirep,state,node,store"
VERSION_DECIDER = "node_version"
# The deciders of the version skew: node_version, and index_version (Elasticsearch 8.x+: a replica on
# a node that cannot read the index version its primary's node wrote).
VERSION_DECIDERS = ("node_version", "index_version")


class View:
    """One consistent-enough read of the cluster."""

    def __init__(self, health, nodes, shards, master_id, voting_exclusions, voting_config,
                 excluded_names, shutdowns, excluded_ids=()):
        self.health = health
        self.nodes = nodes  # id -> GET _nodes entry
        self.shards = shards  # _cat/shards rows
        self.master_id = master_id
        self.voting_exclusions = voting_exclusions  # [{node_id, node_name}]
        self.voting_config = voting_config  # set of node ids
        self.excluded_names = excluded_names  # allocation exclude._name entries
        self.shutdowns = shutdowns  # node id -> shutdown record
        self.excluded_ids = list(excluded_ids)  # allocation exclude._id entries (what the run sets)

    # -- nodes ------------------------------------------------------------
    def node_by_name(self, name):
        for node_id, node in self.nodes.items():
            if node.get("name") == name:
                return node_id, node
        return None, None

    @property
    def status(self):
        return self.health.get("status")

    @property
    def moving(self):
        return int(self.health.get("relocating_shards", 0)) + int(self.health.get("initializing_shards", 0))

    def master_eligible_ids(self):
        return [i for i, n in self.nodes.items() if is_master_eligible(n)]

    # -- shards -----------------------------------------------------------
    def shards_on(self, node_name):
        """Copies held by a node: started, initializing, or relocating to or from it."""
        out = []
        for row in self.shards:
            src, dst = shard_nodes(row)
            if node_name in (src, dst):
                out.append(row)
        return out

    def unassigned(self):
        return [r for r in self.shards if r.get("state") == "UNASSIGNED"]

    def voting_excluded_ids(self):
        """Node ids of the voting exclusions (an exclusion by the name of an absent node has none)."""
        return sorted({e.get("node_id") for e in self.voting_exclusions if e.get("node_id") not in (None, "_absent_")})

    def voting_excluded_present(self):
        """Whether a node the voting exclusions name is in the cluster (by id; by name for an absent one)."""
        names = {n.get("name") for n in self.nodes.values()}
        return any(e.get("node_id") in self.nodes or (e.get("node_id") in (None, "_absent_") and e.get("node_name")
                                                       in names) for e in self.voting_exclusions)

    def voting_excluded_names(self):
        return sorted({e.get("node_name") for e in self.voting_exclusions if e.get("node_name")})


def shard_nodes(row):
    """(node, relocation target) of a _cat/shards row; ES writes "a -> ip id b" while relocating."""
    node = row.get("node") or ""
    if "->" in node:
        src, rest = node.split("->", 1)
        parts = rest.split()
        return src.strip(), parts[-1] if parts else None
    return node or None, None


def shard_key(row):
    """(index, shard number as text): what a shard's copies, rows and explanations share."""
    return row.get("index"), str(row.get("shard"))


def shard_holders(view, with_targets=False):
    """({shard key: names of the nodes holding a copy (with_targets: and relocation targets)},
    {shard key: the name of its primary's node}) from _cat/shards."""
    holders, primary_at = {}, {}
    for row in view.shards:
        src, dst = shard_nodes(row)
        if not src:
            continue
        key = shard_key(row)
        holders.setdefault(key, set()).update([src, dst] if with_targets and dst else [src])
        if row.get("prirep") == "p":
            primary_at[key] = src
    return holders, primary_at


def is_master_eligible(node):
    # OpenSearch 2+ names the role cluster_manager (GET _nodes), 1.x and Elasticsearch master
    return bool({"master", "cluster_manager"} & set(node.get("roles") or []))


def is_data(node):
    return any(r == "data" or r.startswith("data_") for r in node.get("roles") or [])


def tier_rank(node):
    """Elasticsearch's documented upgrade order: frozen, cold, warm, hot, then generic data."""
    roles = node.get("roles") or []
    ranks = [TIER_ORDER.index(r) for r in roles if r in TIER_ORDER]
    return min(ranks) if ranks else len(TIER_ORDER)


def node_version(node):
    return parse_version(node.get("version", "0"))


class Cluster:
    """Reads and writes on top of an EsClient."""

    def __init__(self, es):
        self.es = es
        self.sampler = None  # called with every view read (report.Sampler: the run report's points)

    # -- reads ------------------------------------------------------------
    # The one reader of the cluster: the rollout's View and es_cluster_info (cluster_info.gather).
    def health(self):
        return self.es.get("/_cluster/health")

    def nodes(self):
        """GET _nodes: node id -> node entry (name, roles, version, ip, attributes, ...)."""
        return self.es.get("/_nodes", params={"filter_path": NODE_FIELDS}).get("nodes", {})

    def shards(self):
        """Every shard copy: GET _cat/shards?format=json (index, shard, prirep, state, node, store in bytes)."""
        shards = self.es.get("/_cat/shards", params={"format": "json", "bytes": "b", "h": SHARD_COLUMNS})
        return shards if isinstance(shards, list) else []

    def elected_master(self):
        """Node id of the elected master, or None while there is none."""
        return self.es.get("/_cluster/state/master_node").get("master_node")

    def voting_config_exclusions(self):
        """[{node_id, node_name}] from the cluster state (Elasticsearch 7+ only; [] otherwise)."""
        if not self.es.has_voting_exclusions():
            return []
        data = self.es.get("/_cluster/state/metadata", params={"filter_path": "metadata.cluster_coordination"})
        return list(((data.get("metadata") or {}).get("cluster_coordination") or {}).get("voting_config_exclusions")
                    or [])

    def view(self):
        health, nodes, shards, settings = self.health(), self.nodes(), self.shards(), self.settings()
        # the elected master and the voting configuration, not the whole metadata (every mapping)
        state = self.es.get("/_cluster/state/master_node,metadata",
                            params={"filter_path": "master_node,metadata.cluster_coordination"})
        coord = (state.get("metadata") or {}).get("cluster_coordination") or {}
        view = View(health=health, nodes=nodes, shards=shards, master_id=state.get("master_node"),
                    voting_exclusions=coord.get("voting_config_exclusions") or [],
                    voting_config=set(coord.get("last_committed_config") or []),
                    excluded_names=self.excluded_names(data=settings), shutdowns=self.shutdowns(),
                    excluded_ids=self.excluded_ids(data=settings))
        if self.sampler is not None:
            self.sampler(view)
        return view

    def settings(self, defaults=False):
        """GET _cluster/settings flat: {"persistent": {...}, "transient": {...}[, "defaults": {...}]}."""
        params = {"flat_settings": True}
        if defaults:
            params["include_defaults"] = True
        return self.es.get("/_cluster/settings", params=params)

    def effective_settings(self):
        """Flat persistent and transient settings merged (transient wins, as in Elasticsearch)."""
        data = self.settings()
        merged = dict(data.get("persistent") or {})
        merged.update(data.get("transient") or {})
        return merged

    def excluded_names(self, key=EXCLUDE_NAME, data=None):
        data = self.settings() if data is None else data
        # transient wins over persistent in Elasticsearch; either can hold a leftover.
        names = set()
        for scope in ("persistent", "transient"):
            value = (data.get(scope) or {}).get(key)
            names.update(split_list(value))
        return sorted(names)

    def excluded_ids(self, data=None):
        return self.excluded_names(EXCLUDE_ID, data)

    def shutdowns(self):
        if not self.es.has_shutdown_api():
            return {}
        data = self.es.get("/_nodes/shutdown")
        return {rec.get("node_id"): rec for rec in data.get("nodes", [])}

    def explain(self, index, shard, primary, current_node=None):
        body = {"index": index, "shard": int(shard), "primary": bool(primary)}
        if current_node:
            body["current_node"] = current_node
        return self.es.post("/_cluster/allocation/explain", body=body)

    def index_allocation_settings(self):
        """index -> its flat replica count and allocation settings (filters, tiers, shards per node)."""
        data = self.es.get("/_settings/index.number_of_replicas,index.routing.allocation.*",
                           params={"flat_settings": True})
        return {name: (entry or {}).get("settings") or {} for name, entry in (data or {}).items()}

    def watermark_high(self):
        data = self.settings(defaults=True)
        for scope in ("transient", "persistent", "defaults"):
            value = (data.get(scope) or {}).get(WATERMARK_HIGH)
            if value:
                return value
        return "90%"

    def fs_stats(self):
        """node id -> (total_bytes, available_bytes)."""
        data = self.es.get("/_nodes/stats/fs")
        out = {}
        for node_id, node in (data.get("nodes") or {}).items():
            total = ((node.get("fs") or {}).get("total")) or {}
            if "total_in_bytes" in total:
                out[node_id] = (int(total["total_in_bytes"]),
                                int(total.get("available_in_bytes", total.get("free_in_bytes", 0))))
        return out

    # -- writes -----------------------------------------------------------
    def set_excluded_names(self, names, key=EXCLUDE_NAME):
        """Persistent, so a crashed run's exclusion stays visible to the rerun."""
        value = ",".join(sorted(set(names))) or None
        self.es.put("/_cluster/settings", body={"persistent": {key: value}})
        # A transient value would override ours; a leftover one is cleared with it.
        current = self.settings()
        if (current.get("transient") or {}).get(key) is not None:
            self.es.put("/_cluster/settings", body={"transient": {key: None}})

    def set_excluded_ids(self, ids):
        self.set_excluded_names(ids, key=EXCLUDE_ID)

    def put_shutdown(self, node_id, reason):
        self.es.put("/_nodes/%s/shutdown" % node_id, body={"type": "remove", "reason": reason})

    def delete_shutdown(self, node_id):
        self.es.delete("/_nodes/%s/shutdown" % node_id, allow=(404,))

    def add_voting_exclusion(self, node_name, budget=None):
        """True when it took effect within the request; False: in place, still taking effect (voting.py)."""
        return voting.add_exclusion(self.es, node_name, budget)

    def clear_voting_exclusions(self):
        self.es.delete("/_cluster/voting_config_exclusions", params={"wait_for_removal": False})


def split_list(value):
    if not value:
        return []
    if isinstance(value, list):
        return [v.strip() for v in value if v and v.strip()]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def watermark_limit(value, total_bytes):
    """Bytes a node may fill before the watermark: "90%", "0.9" or an absolute free-space "50gb"."""
    text = str(value).strip().lower()
    if text.endswith("%"):
        return int(total_bytes * float(text[:-1]) / 100.0)
    free = parse_bytes(text)
    if free is not None:
        return total_bytes - free
    try:
        ratio = float(text)
    except ValueError:
        raise EsError("Cannot read the disk watermark %r." % value)
    return int(total_bytes * ratio)


def shard_bytes(row):
    try:
        return int(row.get("store") or 0)
    except (TypeError, ValueError):
        return 0
