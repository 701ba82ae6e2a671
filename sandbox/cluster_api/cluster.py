"""``_cluster/health``, ``_cluster/state`` and ``_cluster/pending_tasks``."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .. import allocation
from ..engine import Cluster
from ..model import Node
from ..state import Request, Response, SandboxState
from ..units import nest as _nest
from .common import ESError, _bool, _engine, _index_names, _major, _need_master, _seconds, _wait

STATUS_ORDER = {"green": 0, "yellow": 1, "red": 2}


# ------------------------------------------------------------------ health
def _health_body(state: SandboxState, c: Cluster, indices: Optional[List[str]], level: str) -> Dict[str, Any]:
    names = indices if indices is not None else sorted(c.shards)
    counts = dict(active_primary=0, active=0, relocating=0, initializing=0, unassigned=0, unassigned_primary=0,
                  delayed=0)
    now = state.now()
    per_index: Dict[str, Any] = {}
    status = "green"
    for name in names:
        groups = c.shards.get(name, [])
        ix = dict(active_primary=0, active=0, relocating=0, initializing=0, unassigned=0, unassigned_primary=0)
        shards_out: Dict[str, Any] = {}
        for copies in groups:
            sh = dict(active=0, relocating=0, initializing=0, unassigned=0, primary_active=False)
            for cp in copies:
                if cp.state in ("STARTED", "RELOCATING"):
                    ix["active"] += 1
                    sh["active"] += 1
                    if cp.primary:
                        ix["active_primary"] += 1
                        sh["primary_active"] = True
                    if cp.state == "RELOCATING":
                        ix["relocating"] += 1
                        sh["relocating"] += 1
                elif cp.state == "INITIALIZING":
                    ix["initializing"] += 1
                    sh["initializing"] += 1
                else:
                    ix["unassigned"] += 1
                    sh["unassigned"] += 1
                    if cp.primary:
                        ix["unassigned_primary"] += 1
                    if not cp.primary and cp.delayed_until > now:
                        counts["delayed"] += 1
            sstatus = "green" if sh["active"] == len(copies) else ("yellow" if sh["primary_active"] else "red")
            shards_out[str(copies[0].shard)] = {"status": sstatus, "primary_active": sh["primary_active"],
                                                "active_shards": sh["active"], "relocating_shards": sh["relocating"],
                                                "initializing_shards": sh["initializing"],
                                                "unassigned_shards": sh["unassigned"],
                                                "unassigned_primary_shards": 1 if not sh["primary_active"] and
                                                any(cp.primary and cp.state == "UNASSIGNED" for cp in copies) else 0}
        istatus = c.health_of_index(name)
        if STATUS_ORDER[istatus] > STATUS_ORDER[status]:
            status = istatus
        for k in ix:
            counts[k] += ix[k]
        meta = state.indices.get(name)
        entry = {"status": istatus, "number_of_shards": len(groups),
                 "number_of_replicas": meta.number_of_replicas if meta else 0,
                 "active_primary_shards": ix["active_primary"], "active_shards": ix["active"],
                 "relocating_shards": ix["relocating"], "initializing_shards": ix["initializing"],
                 "unassigned_shards": ix["unassigned"], "unassigned_primary_shards": ix["unassigned_primary"]}
        if level == "shards":
            entry["shards"] = shards_out
        per_index[name] = entry
    total = counts["active"] + counts["initializing"] + counts["unassigned"]
    body: Dict[str, Any] = {
        "cluster_name": c.scenario.cluster_name, "status": status, "timed_out": False,
        "number_of_nodes": len(c.nodes), "number_of_data_nodes": sum(1 for n in c.nodes.values() if n.is_data),
        "active_primary_shards": counts["active_primary"], "active_shards": counts["active"],
        "relocating_shards": counts["relocating"], "initializing_shards": counts["initializing"],
        "unassigned_shards": counts["unassigned"], "unassigned_primary_shards": counts["unassigned_primary"],
        "delayed_unassigned_shards": counts["delayed"], "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": 100.0 if total == 0 else round(100.0 * counts["active"] / total, 13),
    }
    if _major(state) < 8:
        body.pop("unassigned_primary_shards")
    if level in ("indices", "shards"):
        body["indices"] = per_index
    return body


def _nodes_ok(spec: str, n: int) -> bool:
    spec = spec.strip()
    for prefix, op in ((">=", lambda a, b: a >= b), ("<=", lambda a, b: a <= b), ("ge(", lambda a, b: a >= b),
                       ("le(", lambda a, b: a <= b), ("gt(", lambda a, b: a > b), ("lt(", lambda a, b: a < b),
                       (">", lambda a, b: a > b), ("<", lambda a, b: a < b)):
        if spec.startswith(prefix):
            return op(n, int(spec[len(prefix):].rstrip(")")))
    return n == int(spec)


def cluster_health(state: SandboxState, req: Request) -> Response:
    p = req.params
    c = _need_master(state, req) if not _bool(p.get("local")) else _engine(state)
    indices = _index_names(state, req.parts["index"]) if req.parts.get("index") else None
    level = p.get("level", "cluster")
    timeout = _seconds(p.get("timeout"), 30.0, "timeout")
    want_status = p.get("wait_for_status")
    if want_status is not None and want_status not in STATUS_ORDER:
        raise ESError(400, "illegal_argument_exception", f"unknown cluster health status [{want_status}]")
    want_nodes = p.get("wait_for_nodes")
    if want_nodes:
        try:
            _nodes_ok(want_nodes, 0)
        except ValueError:
            raise ESError(400, "illegal_argument_exception", f"cannot parse wait_for_nodes [{want_nodes}]") from None
    want_active = p.get("wait_for_active_shards")
    if want_active and want_active != "all":  # ES's ActiveShardCount.parseString
        try:
            if int(want_active) < 0:
                raise ESError(400, "illegal_argument_exception", "shard count cannot be a negative value")
        except ValueError:
            raise ESError(400, "illegal_argument_exception",
                          f"cannot parse ActiveShardCount[{want_active}]") from None
    no_reloc = _bool(p.get("wait_for_no_relocating_shards")) if "wait_for_no_relocating_shards" in p else False
    no_init = _bool(p.get("wait_for_no_initializing_shards")) if "wait_for_no_initializing_shards" in p else False

    def ok() -> bool:
        if c.master_id is None:
            return False
        b = _health_body(state, c, indices, "cluster")
        if want_status and STATUS_ORDER[b["status"]] > STATUS_ORDER[want_status]:
            return False
        if want_nodes and not _nodes_ok(want_nodes, b["number_of_nodes"]):
            return False
        if no_reloc and b["relocating_shards"]:
            return False
        if no_init and b["initializing_shards"]:
            return False
        if want_active:
            total = b["active_shards"] + b["initializing_shards"] + b["unassigned_shards"]
            need = total if want_active == "all" else int(want_active)
            if b["active_shards"] < need:
                return False
        return True

    waiting = bool(want_status or want_nodes or no_reloc or no_init or want_active)
    timed_out = waiting and not _wait(state, ok, timeout)
    if c.master_id is None:
        raise ESError(503, "master_not_discovered_exception", None)
    body = _health_body(state, c, indices, level)
    body["timed_out"] = timed_out
    return Response(408 if timed_out else 200, body)


# ------------------------------------------------------------------- state
def _node_brief(n: Node) -> Dict[str, Any]:
    return {"name": n.name, "ephemeral_id": n.ephemeral_id, "transport_address": n.transport_address,
            "external_id": n.name, "attributes": dict(n.attributes), "roles": list(n.roles), "version": n.version}


def _copy_routing(c: Cluster, cp: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {"state": cp.state, "primary": cp.primary, "node": cp.node_id,
                           "relocating_node": cp.relocating_node_id, "shard": cp.shard, "index": cp.index}
    if cp.state != "UNASSIGNED":
        out["allocation_id"] = {"id": cp.allocation_id}
    else:
        out["recovery_source"] = {"type": "EMPTY_STORE" if not cp.ever_started else "EXISTING_STORE"}
        out["unassigned_info"] = {"reason": cp.unassigned_reason or "INDEX_CREATED",
                                  "at": allocation._iso(cp.unassigned_at_ms), "delayed": cp.delayed_until > c.state.now(),
                                  "allocation_status": "no_attempt"}
        if cp.unassigned_details:
            out["unassigned_info"]["details"] = cp.unassigned_details
    return out


def cluster_state(state: SandboxState, req: Request) -> Response:
    p = req.params
    c = _engine(state) if _bool(p.get("local")) else _need_master(state, req)
    metrics = set((req.parts.get("metric") or "_all").split(","))
    allm = "_all" in metrics
    names = _index_names(state, req.parts.get("index"))
    body: Dict[str, Any] = {"cluster_name": c.scenario.cluster_name, "cluster_uuid": c.cluster_uuid}
    if allm or "version" in metrics:
        body["version"] = c.version
        body["state_uuid"] = f"{c.cluster_uuid[:8]}-{c.version}"
    if allm or "master_node" in metrics:
        body["master_node"] = c.master_id
    if allm or "blocks" in metrics:
        blocks: Dict[str, Any] = {}
        if c.master_id is None:
            blocks["global"] = {"2": {"description": "no master", "retryable": True, "disable_state_persistence": True,
                                      "levels": ["read", "write", "metadata_read", "metadata_write"]}}
        ib = {m.name: {"8": {"description": "index write (api)", "retryable": False, "levels": ["write"]}}
              for m in state.indices.values() if m.write_block}
        if ib:
            blocks["indices"] = ib
        body["blocks"] = blocks
    if allm or "nodes" in metrics:
        body["nodes"] = {n.id: _node_brief(n) for n in sorted(c.nodes.values(), key=lambda n: n.name)}
    if allm or "metadata" in metrics:
        excl = [{"node_id": e["node_id"], "node_name": e["node_name"]} for e in c.voting_exclusions]
        meta_ix = {}
        for name in names:
            m = state.indices[name]
            meta_ix[name] = {"version": 1, "state": "open",
                             "settings": _nest(dict(m.settings)) if not _bool(p.get("flat_settings"))
                             else dict(m.settings),
                             "mappings": m.mappings, "aliases": sorted(m.aliases),
                             "primary_terms": {str(s): 1 for s in range(m.number_of_shards)},
                             "in_sync_allocations": {str(s): [cp.allocation_id for cp in c.shards.get(name, [[]] * (s + 1))[s]
                                                              if cp.state != "UNASSIGNED"]
                                                     for s in range(m.number_of_shards)}}
        body["metadata"] = {
            "cluster_uuid": c.cluster_uuid, "cluster_uuid_committed": True,
            "cluster_coordination": {"term": c.term, "last_committed_config": list(c.voting_config),
                                     "last_accepted_config": list(c.voting_config),
                                     "voting_config_exclusions": excl},
            "templates": {}, "indices": meta_ix,
            "persistent_settings": dict(c.persistent) if _bool(p.get("flat_settings")) else _nest(c.persistent),
            "transient_settings": dict(c.transient) if _bool(p.get("flat_settings")) else _nest(c.transient),
        }
    if allm or "routing_table" in metrics:
        body["routing_table"] = {"indices": {
            name: {"shards": {str(i): [_copy_routing(c, cp) for cp in copies]
                              for i, copies in enumerate(c.shards.get(name, []))}} for name in names}}
    if allm or "routing_nodes" in metrics:
        per_node: Dict[str, List[Any]] = {nid: [] for nid in c.nodes}
        unassigned = []
        for name in names:
            for copies in c.shards.get(name, []):
                for cp in copies:
                    if cp.node_id in per_node:
                        per_node[cp.node_id].append(_copy_routing(c, cp))
                    elif cp.state == "UNASSIGNED":
                        unassigned.append(_copy_routing(c, cp))
        body["routing_nodes"] = {"unassigned": unassigned, "nodes": per_node}
    return Response(200, body)


def pending_tasks(state: SandboxState, req: Request) -> Response:
    _need_master(state, req)
    return Response(200, {"tasks": []})
