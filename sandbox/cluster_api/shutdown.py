"""The node shutdown API (``_nodes/<id>/shutdown``), from 7.15 on."""
from __future__ import annotations

import functools
import time
from typing import Any, Callable, Dict

from .. import allocation
from ..engine import Cluster
from ..state import Request, Response, SandboxState
from ..units import version_tuple
from .common import ESError, _need_master


def _shutdown_status(c: Cluster, nid: str, sd: Dict[str, Any]) -> Dict[str, Any]:
    entry = {"node_id": nid, "type": sd["type"].upper(), "reason": sd["reason"],
             "shutdown_startedmillis": sd["started_ms"]}
    if sd.get("allocation_delay"):
        entry["allocation_delay"] = sd["allocation_delay"]
    if sd.get("target_node_name"):
        entry["target_node_name"] = sd["target_node_name"]
    node = c.nodes.get(nid)
    if sd["type"] == "restart":
        mig = {"status": "COMPLETE", "shard_migrations_remaining": 0,
               "explanation": "no shard relocation is necessary for a node restart"}
    elif node is None:
        mig = {"status": "COMPLETE", "shard_migrations_remaining": 0,
               "explanation": "node is not part of the cluster"}
    else:
        held = [cp for cp in c.all_copies() if cp.node_id == nid]
        if not held:
            mig = {"status": "COMPLETE", "shard_migrations_remaining": 0}
        else:
            stuck, ignored = None, 0
            rec = allocation.recoveries(c)
            for cp in held:
                if cp.state == "RELOCATING":
                    continue
                others = [n for n in allocation.data_nodes(c) if n.id != nid]
                if not any(allocation.verdict(allocation.deciders(c, cp, n, moving=True, rec=rec)) != "NO"
                           for n in others):
                    # as TransportGetShutdownStatusAction: a copy that cannot move but is started on
                    # another node that stays does not hold the shutdown up
                    if any(o is not cp and o.state == "STARTED" and o.node_id != nid and o.node_id not in c.shutdowns
                           for o in c.shards[cp.index][cp.shard]):
                        ignored += 1
                        continue
                    stuck = cp
                    break
            if stuck is None and ignored == len(held):
                mig = {"status": "COMPLETE", "shard_migrations_remaining": 0,
                       "explanation": f"[{ignored}] shards cannot be moved away from this node but have at least one "
                                      "copy on another node in the cluster"}
            elif stuck is not None:
                mig = {"status": "STALLED", "shard_migrations_remaining": len(held),
                       "explanation": f"shard [{stuck.shard}] [{'primary' if stuck.primary else 'replica'}] of "
                                      f"index [{stuck.index}] cannot move, see [node_allocation_decision] for "
                                      "details or use the cluster allocation explain API",
                       "node_allocation_decision": allocation.explain(c, stuck, False, 8)}
            else:
                mig = {"status": "IN_PROGRESS", "shard_migrations_remaining": len(held)}
    entry["status"] = mig["status"]
    entry["shard_migration"] = mig
    entry["persistent_tasks"] = {"status": "COMPLETE"}
    entry["plugins"] = {"status": "COMPLETE"}
    return entry


Handler = Callable[[SandboxState, Request, Cluster], Response]


def _shutdown_api(handler: Handler) -> Callable[[SandboxState, Request], Response]:
    """The node shutdown API exists from 7.15 on (older versions know no such endpoint) and needs a
    master; the handler gets the cluster."""
    @functools.wraps(handler)
    def serve(state: SandboxState, req: Request) -> Response:
        if version_tuple(state.es_version)[:2] < (7, 15):
            state.unknown_requests.append(f"{req.method} {req.path}")
            return Response(400, {"error": f"no handler found for uri [{req.path}] and method [{req.method}]"})
        return handler(state, req, _need_master(state, req))
    return serve


@_shutdown_api
def shutdown_put(state: SandboxState, req: Request, c: Cluster) -> Response:
    nid = req.parts["node_id"]
    body = req.body if isinstance(req.body, dict) else {}
    stype = str(body.get("type", "")).lower()
    if stype not in ("restart", "remove", "replace", "sigterm"):
        raise ESError(400, "illegal_argument_exception",
                      f"unknown shutdown type [{body.get('type')}], must be one of [restart, remove, replace, sigterm]"
                      if body.get("type") else "shutdown type must be specified")
    if not body.get("reason"):
        raise ESError(400, "action_request_validation_exception",
                      "Validation Failed: 1: the reason for shutdown is required;")
    if stype == "replace" and not body.get("target_node_name"):
        raise ESError(400, "action_request_validation_exception",
                      "Validation Failed: 1: target node name is required for REPLACE type shutdowns;")
    if body.get("allocation_delay") and stype != "restart":
        raise ESError(400, "action_request_validation_exception",
                      "Validation Failed: 1: [allocation_delay] is only allowed for RESTART-type shutdown;")
    prev = c.shutdowns.get(nid)
    c.shutdowns[nid] = {"type": stype, "reason": str(body["reason"]), "allocation_delay": body.get("allocation_delay"),
                        "target_node_name": body.get("target_node_name"),
                        "started_ms": prev["started_ms"] if prev else int(time.time() * 1000)}
    c.version += 1
    c.log("shutdown", f"node shutdown [{stype}] registered for {c.node_name(nid)}: {body['reason']}", node_id=nid)
    return Response(200, {"acknowledged": True})


@_shutdown_api
def shutdown_get(state: SandboxState, req: Request, c: Cluster) -> Response:
    nid = req.parts.get("node_id")
    wanted = None if not nid or nid == "_all" else set(nid.split(","))
    nodes = [_shutdown_status(c, k, v) for k, v in sorted(c.shutdowns.items()) if wanted is None or k in wanted]
    return Response(200, {"nodes": nodes})


@_shutdown_api
def shutdown_delete(state: SandboxState, req: Request, c: Cluster) -> Response:
    nid = req.parts["node_id"]
    if nid not in c.shutdowns:
        raise ESError(404, "resource_not_found_exception", f"node [{nid}] is not currently shutting down")
    c.shutdowns.pop(nid)
    c.version += 1
    c.log("shutdown", f"node shutdown for {c.node_name(nid)} removed", node_id=nid)
    return Response(200, {"acknowledged": True})
