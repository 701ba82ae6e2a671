"""``_nodes`` info and ``_nodes/stats``."""
from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

from ..state import Request, Response, SandboxState
from .common import ESError, _engine, _major, resolve_nodes


NODE_INFO_METRICS = {"settings", "os", "process", "jvm", "thread_pool", "transport", "http", "plugins", "ingest",
                     "aggregations", "indices"}


def _split_node_metric(req: Request) -> Tuple[Optional[str], Optional[set]]:
    node_expr = req.parts.get("node_id")
    metric = req.parts.get("metric")
    if node_expr and metric is None and set(node_expr.split(",")) <= NODE_INFO_METRICS | {"_all"}:
        node_expr, metric = None, node_expr
    return node_expr, (None if metric in (None, "_all") else set(metric.split(",")))


def _nodes_response(c: Any, out: Dict[str, Any]) -> Response:
    """The envelope of every _nodes answer: how many nodes answered, the cluster's name, the nodes."""
    return Response(200, {"_nodes": {"total": len(out), "successful": len(out), "failed": 0},
                          "cluster_name": c.scenario.cluster_name, "nodes": out})


def nodes_info(state: SandboxState, req: Request) -> Response:
    c = _engine(state)
    node_expr, metrics = _split_node_metric(req)
    nodes = resolve_nodes(c, node_expr)
    out: Dict[str, Any] = {}
    for n in nodes:
        entry: Dict[str, Any] = {"name": n.name, "transport_address": n.transport_address, "host": n.host, "ip": n.ip,
                                 "version": n.version, "build_flavor": "default", "build_type": "tar",
                                 "build_hash": "sandbox", "total_indexing_buffer": 107374182, "roles": list(n.roles),
                                 "attributes": dict(n.attributes)}
        detail = {
            "settings": {"cluster": {"name": c.scenario.cluster_name}, "node": {"name": n.name, "attr": dict(n.attributes)},
                         "network": {"host": n.ip}},
            "os": {"name": "Linux", "arch": "amd64", "available_processors": 2, "allocated_processors": 2},
            "process": {"id": 1000 + abs(hash(n.id)) % 60000, "mlockall": False},
            "jvm": {"version": "21.0.2", "vm_name": "OpenJDK 64-Bit Server VM",
                    "mem": {"heap_max_in_bytes": 4294967296}},
            "transport": {"bound_address": [n.transport_address], "publish_address": n.transport_address},
            "http": {"bound_address": [f"{n.ip}:9200"], "publish_address": f"{n.ip}:9200",
                     "max_content_length_in_bytes": 104857600},
            "plugins": [], "ingest": {"processors": []},
        }
        for k, v in detail.items():
            if metrics is None or k in metrics:
                entry[k] = v
        out[n.id] = entry
    return _nodes_response(c, out)


NODE_STATS_METRICS = {  # Elasticsearch's; only indices, os, jvm and fs carry figures here
    "_all", "_none", "adaptive_selection", "allocations", "breaker", "discovery", "fs", "http", "indexing_pressure",
    "indices", "ingest", "jvm", "os", "process", "repositories", "script", "script_cache", "thread_pool", "transport"}


def nodes_stats(state: SandboxState, req: Request) -> Response:
    c = _engine(state)
    nodes = resolve_nodes(c, req.parts.get("node_id"))
    metric = req.parts.get("metric")
    if metric is not None:
        unknown = [m for m in metric.split(",") if m not in NODE_STATS_METRICS]
        if unknown:
            raise ESError(400, "illegal_argument_exception",
                          f"request [{req.path}] contains unrecognized metric: [{', '.join(unknown)}]")
    wanted = None if metric in (None, "_all") else set(metric.split(",")) - {"_none"}
    disk = c.disk_used_map()
    out: Dict[str, Any] = {}
    for n in nodes:
        docs = 0
        for cp in c.all_copies():
            if cp.node_id == n.id and cp.state in ("STARTED", "RELOCATING"):
                meta = state.indices.get(cp.index)
                if meta:
                    docs += meta.doc_count(cp.shard)
        used = disk.get(n.id, 0)  # what is on the disk now, a recovery in progress partly
        free = max(0, n.disk_bytes - used)
        entry: Dict[str, Any] = {"timestamp": int(time.time() * 1000), "name": n.name,
                                 "transport_address": n.transport_address, "host": n.host,
                                 # a string on 7.x (recorded from a real 7.17, tests/fixtures/recordings)
                                 "ip": n.ip if _major(state) < 8 else [f"{n.ip}:9300", "NONE"],
                                 "roles": list(n.roles),
                                 "attributes": dict(n.attributes)}
        metrics = {
            "indices": {"docs": {"count": docs, "deleted": 0}, "store": {"size_in_bytes": used}},
            "os": {"cpu": {"percent": 5}, "mem": {"used_percent": 60}},
            "jvm": {"mem": {"heap_used_percent": 40, "heap_max_in_bytes": 4294967296}},
            "fs": {"timestamp": entry["timestamp"],
                   "total": {"total_in_bytes": n.disk_bytes, "free_in_bytes": free, "available_in_bytes": free},
                   "data": [{"path": "/var/lib/elasticsearch", "mount": "/var/lib/elasticsearch (/dev/nvme1n1)",
                             "type": "xfs", "total_in_bytes": n.disk_bytes, "free_in_bytes": free,
                             "available_in_bytes": free}]},
        }
        for k, v in metrics.items():
            if wanted is None or k in wanted:
                entry[k] = v
        out[n.id] = entry
    return _nodes_response(c, out)
