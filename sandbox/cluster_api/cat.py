"""The ``_cat`` tables of the cluster half (nodes, shards, health, master, allocation, recovery)."""
from __future__ import annotations

import time
from typing import List

from .. import allocation
from ..es_api.cat import cat_table as _cat
from ..state import Request, Response, SandboxState
from ..units import cat_bytes as _fmt_bytes
from .cluster import _health_body
from .common import _bool, _engine, _index_names, _need_master, resolve_nodes


def _role_letters(roles: List[str]) -> str:
    letters = {"data": "d", "data_cold": "c", "data_content": "s", "data_frozen": "f", "data_hot": "h",
               "data_warm": "w", "ingest": "i", "master": "m", "ml": "l", "remote_cluster_client": "r",
               "transform": "t", "voting_only": "v"}
    return "".join(sorted(letters[r] for r in roles if r in letters)) or "-"


def cat_nodes(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    full = _bool(req.params.get("full_id"))
    rows = []
    for n in sorted(c.nodes.values(), key=lambda n: n.name):
        rows.append({"id": n.id if full else n.id[:4], "ip": n.ip, "heap.percent": 40, "ram.percent": 60, "cpu": 5,
                     "load_1m": "0.10", "load_5m": "0.10", "load_15m": "0.10", "node.role": _role_letters(n.roles),
                     "master": "*" if n.id == c.master_id else "-", "name": n.name, "version": n.version,
                     "port": 9300, "http_address": f"{n.ip}:9200", "uptime": f"{int(state.now() - n.joined_at)}s"})
    cols = [("id", "nodeId"), ("ip", "i"), ("heap.percent", "hp"), ("ram.percent", "rp"), ("cpu", "cpu"),
            ("load_1m", "l"), ("load_5m", "l"), ("load_15m", "l"), ("node.role", "r"), ("master", "m"),
            ("name", "n"), ("version", "v"), ("port", "po"), ("http_address", "http"), ("uptime", "u")]
    return _cat(req, cols, ["ip", "heap.percent", "ram.percent", "cpu", "load_1m", "load_5m", "load_15m",
                            "node.role", "master", "name"], rows)


def cat_shards(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    names = _index_names(state, req.parts.get("index"))
    unit = req.params.get("bytes")
    rows = []
    for name in names:
        meta = state.indices.get(name)
        for copies in c.shards.get(name, []):
            for cp in sorted(copies, key=lambda x: not x.primary):
                node = c.nodes.get(cp.node_id) if cp.node_id else None
                assigned = cp.state != "UNASSIGNED"
                node_col = node.name if node else None
                if cp.state == "RELOCATING" and cp.relocating_node_id in c.nodes:
                    tgt = c.nodes[cp.relocating_node_id]
                    node_col = f"{node.name} -> {tgt.ip} {tgt.id} {tgt.name}"
                rows.append({"index": name, "shard": cp.shard, "prirep": "p" if cp.primary else "r",
                             "state": cp.state,
                             "docs": meta.doc_count(cp.shard) if (meta and assigned) else None,
                             "store": _fmt_bytes(c.shard_size(name, cp.shard), unit) if assigned else None,
                             "ip": node.ip if node else None, "id": node.id if node else None, "node": node_col,
                             "unassigned.reason": cp.unassigned_reason if not assigned else None,
                             "unassigned.at": allocation._iso(cp.unassigned_at_ms) if not assigned else None,
                             "unassigned.details": cp.unassigned_details if not assigned else None})
    cols = [("index", "i"), ("shard", "s"), ("prirep", "p"), ("state", "st"), ("docs", "d"), ("store", "sto"),
            ("ip", "ip"), ("id", "id"), ("node", "n"), ("unassigned.reason", "ur"), ("unassigned.at", "ua"),
            ("unassigned.details", "ud")]
    return _cat(req, cols, ["index", "shard", "prirep", "state", "docs", "store", "ip", "node"], rows)


def cat_health(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    b = _health_body(state, c, None, "cluster")
    now = time.time()
    row = {"epoch": int(now), "timestamp": time.strftime("%H:%M:%S", time.gmtime(now)), "cluster": b["cluster_name"],
           "status": b["status"], "node.total": b["number_of_nodes"], "node.data": b["number_of_data_nodes"],
           "shards": b["active_shards"], "pri": b["active_primary_shards"], "relo": b["relocating_shards"],
           "init": b["initializing_shards"], "unassign": b["unassigned_shards"],
           "unassign.pri": b.get("unassigned_primary_shards", 0), "pending_tasks": 0, "max_task_wait_time": "-",
           "active_shards_percent": f"{b['active_shards_percent_as_number']:.1f}%"}
    cols = [(k, k) for k in row]
    default = [k for k in row if k != "unassign.pri"]
    if not _bool(req.params.get("ts"), True):
        default = [k for k in default if k not in ("epoch", "timestamp")]
    return _cat(req, cols, default, [row])


def cat_master(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    m = c.nodes[c.master_id]
    return _cat(req, [("id", "id"), ("host", "h"), ("ip", "ip"), ("node", "n")], ["id", "host", "ip", "node"],
                [{"id": m.id, "host": m.host, "ip": m.ip, "node": m.name}])


def cat_allocation(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    unit = req.params.get("bytes")
    rows = []
    disk = c.disk_used_map()
    for n in resolve_nodes(c, req.parts.get("node_id")):
        if not n.is_data:
            continue
        total = n.disk_bytes
        held = [cp for cp in c.all_copies() if cp.node_id == n.id]
        used = disk.get(n.id, 0)
        rows.append({"shards": len(held), "disk.indices": _fmt_bytes(used, unit), "disk.used": _fmt_bytes(used, unit),
                     "disk.avail": _fmt_bytes(total - used, unit), "disk.total": _fmt_bytes(total, unit),
                     "disk.percent": int(100 * used / total), "host": n.host, "ip": n.ip, "node": n.name,
                     "node.role": _role_letters(n.roles)})
    unassigned = sum(1 for cp in c.all_copies() if cp.state == "UNASSIGNED")
    if unassigned:
        rows.append({"shards": unassigned, "node": "UNASSIGNED"})
    cols = [(k, k) for k in ("shards", "disk.indices", "disk.used", "disk.avail", "disk.total", "disk.percent",
                             "host", "ip", "node", "node.role")]
    return _cat(req, cols, [k for k, _ in cols], rows)


def cat_recovery(state: SandboxState, req: Request) -> Response:
    c = _engine(state)
    names = _index_names(state, req.parts.get("index"))
    rows = []
    for name in names:
        for copies in c.shards.get(name, []):
            for cp in copies:
                moving = cp.state in ("INITIALIZING", "RELOCATING")
                if not moving and (cp.state != "STARTED" or _bool(req.params.get("active_only"))):
                    continue
                size = c.shard_size(name, cp.shard)
                done = size - cp.recovery_left if moving else size
                # a relocating replica copies from its primary's node (allocation.relocation_source)
                src = cp.recovery_source if cp.state == "INITIALIZING" else (
                    allocation.relocation_source(c, cp) if moving else None)
                tgt = cp.relocating_node_id if cp.state == "RELOCATING" else cp.node_id
                rows.append({"index": name, "shard": cp.shard, "time": "0s",
                             "type": "peer" if src else "existing_store", "stage": "index" if moving else "done",
                             "source_node": c.node_name(src) if src else "n/a", "target_node": c.node_name(tgt),
                             "bytes_total": size, "bytes_percent": f"{(100.0 * done / size) if size else 100.0:.1f}%"})
    cols = [(k, k) for k in ("index", "shard", "time", "type", "stage", "source_node", "target_node", "bytes_total",
                             "bytes_percent")]
    return _cat(req, cols, [k for k, _ in cols], rows)
