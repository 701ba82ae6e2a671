"""Cluster-level Elasticsearch endpoints, registered by REST spec API name.

Handlers run under ``state.lock`` (the server takes it); handlers that wait
(health ``wait_for_*``, voting exclusions, ``master_timeout``) release it while
they sleep through ``state.changed`` (a Condition on that lock).

Without an elected master, these endpoints answer 503
``master_not_discovered_exception`` at once, unless the request passes
``master_timeout``: then they wait that long for a master first (as ES does).
"""
from __future__ import annotations

import fnmatch
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import allocation
from .engine import Cluster, Node
from .scenario import parse_seconds
from .state import Request, Response, SandboxState

try:
    from .es_api.errors import ESError
except ImportError:  # pragma: no cover - the HTTP half is always present in this repository
    class ESError(Exception):  # type: ignore[no-redef]
        def __init__(self, status: int, type_: str, reason: Optional[str], **extra: Any) -> None:
            super().__init__(reason)
            self.status, self.type, self.reason, self.extra = status, type_, reason, extra

        def body(self) -> Dict[str, Any]:
            root = {"type": self.type, "reason": self.reason}
            return {"error": {"root_cause": [root], **root}, "status": self.status}


STATUS_ORDER = {"green": 0, "yellow": 1, "red": 2}
ENABLE_VALUES = {"all", "primaries", "new_primaries", "none"}
KNOWN_SETTING_PREFIXES = (
    "cluster.", "indices.", "action.", "logger.", "search.", "xpack.", "ingest.", "network.breaker.",
    "script.", "transport.", "http.", "persistent_tasks.", "snapshot.", "thread_pool.", "discovery.",
)


# ----------------------------------------------------------------- helpers
def _engine(state: SandboxState) -> Cluster:
    return state.engine


def _major(state: SandboxState) -> int:
    return int(str(state.es_version).split(".")[0])


def _cond(state: SandboxState) -> threading.Condition:
    cond = getattr(state, "changed", None)
    if cond is None:
        cond = state.changed = threading.Condition(state.lock)
    return cond


def _seconds(value: Optional[str], default: float, name: str) -> float:
    if value is None or value == "":
        return default
    if value == "-1":
        return 365 * 86400.0
    try:
        return parse_seconds(value, name)
    except ValueError:
        raise ESError(400, "illegal_argument_exception",
                      f"failed to parse setting [{name}] with value [{value}] as a time value: "
                      "unit is missing or unrecognized") from None


def _wait(state: SandboxState, until: Callable[[], bool], timeout: float) -> bool:
    """Wait (lock released) until ``until()`` holds; False on timeout."""
    deadline = time.monotonic() + timeout
    cond = _cond(state)
    with state.lock:
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            cond.wait(min(0.05, left))
    return True


def _need_master(state: SandboxState, req: Request) -> Cluster:
    c = _engine(state)
    if c.master_id is None:
        timeout = req.params.get("master_timeout")
        if timeout is not None and _wait(state, lambda: c.master_id is not None,
                                         _seconds(timeout, 30.0, "master_timeout")):
            return c
        raise ESError(503, "master_not_discovered_exception", None)
    return c


def _bool(value: Optional[str], default: bool = False) -> bool:
    if value is None:
        return default
    return value in ("", "true")


def _nest(flat: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key in sorted(flat):
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = node[p] = {}
            node = nxt
        node[parts[-1]] = flat[key]
    return out


def _flatten(obj: Any, prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                out.update(_flatten(v, key))
            else:
                out[key] = v
    return out


def _index_names(state: SandboxState, expr: Optional[str]) -> List[str]:
    names = sorted(state.indices)
    if not expr or expr in ("_all", "*"):
        return names
    out: List[str] = []
    for pat in expr.split(","):
        pat = pat.strip()
        hits = [n for n in names if fnmatch.fnmatchcase(n, pat)]
        for meta in state.indices.values():  # aliases
            if pat in meta.aliases and meta.name not in hits:
                hits.append(meta.name)
        if not hits and not any(ch in pat for ch in "*?"):
            raise ESError(404, "index_not_found_exception", f"no such index [{pat}]", resource__type="index_or_alias",
                          resource__id=pat, index_uuid="_na_", index=pat)
        out += [h for h in hits if h not in out]
    return out


def resolve_nodes(c: Cluster, expr: Optional[str]) -> List[Node]:
    """ES node specification: _all, _local, _master, ids, names, IPs, wildcards, role:true."""
    nodes = sorted(c.nodes.values(), key=lambda n: n.name)
    if not expr or expr == "_all":
        return nodes
    chosen: List[Node] = []
    for part in expr.split(","):
        part = part.strip()
        if part in ("_local", "_master"):
            hit = [c.nodes[c.master_id]] if c.master_id in c.nodes else nodes[:1]
        elif ":" in part:
            role, _, val = part.partition(":")
            want = val == "true"
            hit = [n for n in nodes if ((role == "data" and n.is_data) or role in n.roles) == want]
        else:
            hit = [n for n in nodes if fnmatch.fnmatchcase(n.id, part) or fnmatch.fnmatchcase(n.name, part)
                   or n.ip == part or n.host == part]
        chosen += [n for n in hit if n not in chosen]
    return chosen


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


# ---------------------------------------------------------------- settings
def _validate_setting(scope: str, key: str, value: Any) -> None:
    if not key.startswith(KNOWN_SETTING_PREFIXES):
        raise ESError(400, "illegal_argument_exception", f"{scope} setting [{key}], not recognized")
    if value is None:
        return
    if key in ("cluster.routing.allocation.enable", "cluster.routing.rebalance.enable"):
        allowed = ENABLE_VALUES if key.endswith("allocation.enable") else {"all", "primaries", "replicas", "none"}
        if str(value).lower() not in allowed:
            raise ESError(400, "illegal_argument_exception",
                          f"Illegal {'allocation' if 'allocation' in key else 'rebalance'}.enable value [{value}]")
    if key == "cluster.routing.allocation.disk.threshold_enabled" and _setting_value(value) not in ("true", "false"):
        raise ESError(400, "illegal_argument_exception",
                      f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
    if key.startswith(allocation.WATERMARK_KEY) and key[len(allocation.WATERMARK_KEY):] in allocation.WATERMARKS:
        try:
            allocation.parse_watermark(value)
        except ValueError:
            raise ESError(400, "illegal_argument_exception",
                          f"failed to parse setting [{key}] with value [{value}] as a size in bytes: "
                          "unit is missing or unrecognized") from None
    if key.endswith("node_concurrent_recoveries") or key.endswith("_incoming_recoveries") or \
            key.endswith("_outgoing_recoveries"):
        try:
            if int(value) < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise ESError(400, "illegal_argument_exception",
                          f"Failed to parse value [{value}] for setting [{key}] must be >= 0") from None


def _check_watermark_order(c: Cluster, changes: Dict[str, Dict[str, Any]]) -> None:
    """Elasticsearch refuses watermarks out of order (low <= high <= flood_stage in usage;
    as minimum free sizes the other way round), judged on the settings as they would be."""
    after: Dict[str, Any] = {}
    for scope, store in (("persistent", c.persistent), ("transient", c.transient)):
        merged = dict(store)
        for k, v in changes.get(scope, {}).items():
            for key in [x for x in merged if fnmatch.fnmatchcase(x, k)] if v is None else []:
                merged.pop(key)
            if v is not None:
                merged[k] = _setting_value(v)
        after.update({k: v for k, v in merged.items() if k.startswith(allocation.WATERMARK_KEY)})
    levels = {}
    for level, default in allocation.WATERMARKS.items():
        raw = after.get(allocation.WATERMARK_KEY + level, default)
        levels[level] = (raw, *allocation.parse_watermark(raw))
    for lower, upper, what in (("low", "high", "low disk watermark [{}] {} high disk watermark [{}]"),
                               ("high", "flood_stage", "high disk watermark [{}] {} flood stage disk watermark [{}]")):
        (raw_a, kind_a, a), (raw_b, kind_b, b) = levels[lower], levels[upper]
        if kind_a != kind_b:
            continue  # a percentage against a size depends on the disk: ES checks it per node
        if kind_a == "ratio" and a > b:
            raise ESError(400, "illegal_argument_exception", what.format(raw_a, "more than", raw_b))
        if kind_a == "bytes" and a < b:
            raise ESError(400, "illegal_argument_exception", what.format(raw_a, "less than", raw_b))


def _setting_value(v: Any) -> Any:
    if isinstance(v, list):
        return [str(x) for x in v]
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def cluster_put_settings(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    body = req.body if isinstance(req.body, dict) else {}
    unknown = sorted(set(body) - {"persistent", "transient"})
    if unknown:
        raise ESError(400, "x_content_parse_exception", f"[1:2] [cluster_update_settings_request] unknown field [{unknown[0]}]")
    if not body.get("persistent") and not body.get("transient"):
        raise ESError(400, "action_request_validation_exception",
                      "Validation Failed: 1: no settings to update;")
    changes = {}
    for scope in ("persistent", "transient"):
        flat = _flatten(body.get(scope) or {})
        for k, v in flat.items():
            _validate_setting(scope, k, v)
        changes[scope] = flat
    _check_watermark_order(c, changes)
    applied: Dict[str, Dict[str, Any]] = {"persistent": {}, "transient": {}}
    for scope, flat in changes.items():
        store = c.persistent if scope == "persistent" else c.transient
        for k, v in flat.items():
            if v is None:
                for key in [x for x in store if fnmatch.fnmatchcase(x, k)]:
                    store.pop(key)
            else:
                store[k] = _setting_value(v)
                applied[scope][k] = store[k]
    c.version += 1
    c.log("settings", f"cluster settings updated: {changes}")
    flat_out = _bool(req.params.get("flat_settings"))
    return Response(200, {"acknowledged": True,
                          "persistent": applied["persistent"] if flat_out else _nest(applied["persistent"]),
                          "transient": applied["transient"] if flat_out else _nest(applied["transient"])})


DEFAULT_SETTINGS = {
    "cluster.routing.allocation.enable": "all",
    "cluster.routing.rebalance.enable": "all",
    "cluster.routing.allocation.node_concurrent_recoveries": "2",
    "cluster.routing.allocation.cluster_concurrent_rebalance": "2",
    "cluster.routing.allocation.allow_rebalance": "indices_all_active",
    "cluster.max_voting_config_exclusions": "10",
    "cluster.auto_shrink_voting_configuration": "true",
    "indices.recovery.max_bytes_per_sec": "40mb",
    "cluster.routing.allocation.disk.threshold_enabled": "true",
    **{allocation.WATERMARK_KEY + level: value for level, value in allocation.WATERMARKS.items()},
}


def cluster_get_settings(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    flat = _bool(req.params.get("flat_settings"))
    body: Dict[str, Any] = {"persistent": dict(c.persistent) if flat else _nest(c.persistent),
                            "transient": dict(c.transient) if flat else _nest(c.transient)}
    if _bool(req.params.get("include_defaults")):
        d = {"cluster.name": c.scenario.cluster_name, **DEFAULT_SETTINGS}
        body["defaults"] = d if flat else _nest(d)
    return Response(200, body)


# --------------------------------------------------------- allocation explain
def allocation_explain(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    p = req.params
    body = req.body if isinstance(req.body, dict) else {}
    index = body.get("index", p.get("index"))
    shard = body.get("shard", p.get("shard"))
    primary = body.get("primary", p.get("primary"))
    current_node = body.get("current_node", p.get("current_node"))
    include_yes = _bool(p.get("include_yes_decisions"))
    major = _major(state)
    if index is None and shard is None and primary is None:
        pending = sorted((cp for cp in c.all_copies() if cp.state == "UNASSIGNED"),
                         key=lambda cp: (not cp.primary, cp.index, cp.shard))
        if not pending:
            reason = ("No shard was specified in the request which means the response should explain a "
                      "randomly-chosen unassigned shard, but there are no unassigned shards in this cluster. "
                      "To explain the allocation of an assigned shard you must specify the target shard in "
                      "the request." if major >= 8 else
                      "unable to find any unassigned shards to explain [ClusterAllocationExplainRequest"
                      "[useAnyUnassignedShard=true,includeYesDecisions?=false]")
            raise ESError(400, "illegal_argument_exception", reason)
        return Response(200, allocation.explain(c, pending[0], include_yes, major))
    if index is None or shard is None or primary is None:
        raise ESError(400, "illegal_argument_exception",
                      "Must specify all of [index, shard, primary], or none of them")
    if index not in c.shards:
        metas = [m for m in state.indices.values() if index in m.aliases]
        if len(metas) != 1:
            raise ESError(404, "index_not_found_exception", f"no such index [{index}]", resource__type="index_or_alias",
                          resource__id=index, index_uuid="_na_", index=index)
        index = metas[0].name
    try:
        shard = int(shard)
    except (TypeError, ValueError):
        raise ESError(400, "illegal_argument_exception", f"[shard] must be a number, not [{shard}]") from None
    primary = primary if isinstance(primary, bool) else str(primary).lower() == "true"
    groups = c.shards[index]
    if shard < 0 or shard >= len(groups):
        raise ESError(400, "illegal_argument_exception",
                      f"No shard was found for the explain API request [index={index}, shard={shard}, "
                      f"primary={str(primary).lower()}]")
    copies = [cp for cp in groups[shard] if cp.primary == primary]
    if current_node:
        node = next((n for n in c.nodes.values() if current_node in (n.id, n.name)), None)
        if node is None:
            raise ESError(400, "illegal_argument_exception", f"unable to find node with id or name [{current_node}]")
        copies = [cp for cp in copies if cp.node_id == node.id]
        if not copies:
            raise ESError(400, "illegal_argument_exception",
                          f"unable to find a shard assigned to node [{current_node}] for [{index}][{shard}]")
    copies.sort(key=lambda cp: cp.state != "UNASSIGNED")
    if not copies:
        raise ESError(400, "illegal_argument_exception",
                      f"unable to find any shards to explain [index={index}, shard={shard}, primary={primary}]")
    return Response(200, allocation.explain(c, copies[0], include_yes, major))


def cluster_reroute(state: SandboxState, req: Request) -> Response:
    """Reroute; of the commands only ``cancel`` (ES's CancelAllocationCommand) is implemented."""
    c = _need_master(state, req)
    dry = _bool(req.params.get("dry_run"))
    for command in (req.body or {}).get("commands") or []:
        if not isinstance(command, dict) or len(command) != 1:
            raise ESError(400, "parsing_exception", "malformed allocation command")
        (name, args), = command.items()
        if name != "cancel":
            raise ESError(400, "illegal_argument_exception",
                          f"the sandbox implements only the [cancel] reroute command, not [{name}]")
        nodes = resolve_nodes(c, str(args.get("node") or ""))
        if len(nodes) != 1 or not args.get("node"):
            raise ESError(400, "illegal_argument_exception", f"failed to resolve [{args.get('node')}], no matching nodes")
        try:
            allocation.cancel(c, str(args.get("index")), int(args.get("shard", -1)), nodes[0],
                              bool(args.get("allow_primary")), apply=not dry)
        except (ValueError, NotImplementedError) as exc:
            raise ESError(400, "illegal_argument_exception", str(exc))
    if not dry:
        allocation.allocate(c, state.now())
    return Response(200, {"acknowledged": True})


def pending_tasks(state: SandboxState, req: Request) -> Response:
    _need_master(state, req)
    return Response(200, {"tasks": []})


# ------------------------------------------------------- voting exclusions
def post_voting_exclusions(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    names, ids = req.params.get("node_names"), req.params.get("node_ids")
    if bool(names) == bool(ids):
        raise ESError(400, "illegal_argument_exception",
                      "You must set [node_names] or [node_ids] but not both")
    add: List[Dict[str, str]] = []
    if names:
        for name in [x.strip() for x in names.split(",") if x.strip()]:
            n = next((n for n in c.nodes.values() if n.name == name), None)
            add.append({"node_id": n.id if n else "_absent_", "node_name": name})
    else:
        for nid in [x.strip() for x in ids.split(",") if x.strip()]:
            n = c.nodes.get(nid)
            add.append({"node_id": nid, "node_name": n.name if n else "_absent_"})
    existing = {(e["node_id"], e["node_name"]) for e in c.voting_exclusions}
    fresh = [e for e in add if (e["node_id"], e["node_name"]) not in existing]
    limit = int(c.setting("cluster.max_voting_config_exclusions", 10))
    if len(c.voting_exclusions) + len(fresh) > limit:
        raise ESError(400, "illegal_argument_exception",
                      f"add voting config exclusions request for nodes would add [{len(fresh)}] exclusions to the "
                      f"existing [{len(c.voting_exclusions)}] which would exceed the maximum of [{limit}] set by "
                      "[cluster.max_voting_config_exclusions]")
    c.voting_exclusions.extend(fresh)
    c.version += 1
    c.log("voting_exclusions", f"voting config exclusions added: {[e['node_name'] for e in fresh]}")
    timeout = _seconds(req.params.get("timeout"), 30.0, "timeout")
    targets = {e["node_id"] for e in add if e["node_id"] != "_absent_"}

    def applied() -> bool:
        return not (targets & set(c.voting_config))

    if not _wait(state, applied, timeout):
        listed = ", ".join(f"{{{e['node_id']}}}{{{e['node_name']}}}" for e in add)
        raise ESError(_timeout_status(state), "timeout_exception",
                      f"timed out waiting for voting config exclusions [{listed}] to take effect")
    return Response(200, "")


def _timeout_status(state: SandboxState) -> int:
    """The HTTP status of Elasticsearch's ElasticsearchTimeoutException (a voting exclusion that did not take
    effect within ``timeout``: the exclusion stays): no status of its own, so 500, until 9.0 made it 429
    (elastic/elasticsearch#116026). Never 408, which only cluster health's own wait answers."""
    return 429 if _major(state) >= 9 else 500


def delete_voting_exclusions(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    wait = _bool(req.params.get("wait_for_removal"), True)
    if wait:
        def gone() -> bool:
            ids = {e["node_id"] for e in c.voting_exclusions}
            names = {e["node_name"] for e in c.voting_exclusions}
            return not any(n.id in ids or n.name in names for n in c.nodes.values())

        if not _wait(state, gone, 30.0):
            listed = ", ".join(f"{{{e['node_id']}}}{{{e['node_name']}}}" for e in c.voting_exclusions)
            raise ESError(_timeout_status(state), "timeout_exception",
                          "timed out waiting for removal of nodes; if nodes should not be removed, set "
                          f"waitForRemoval to false. [{listed}]")
    if c.voting_exclusions:
        c.log("voting_exclusions", "voting config exclusions cleared")
    c.voting_exclusions = []
    c.version += 1
    return Response(200, "")


# ---------------------------------------------------------------- shutdown
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


def _no_shutdown_api(state: SandboxState, req: Request) -> Optional[Response]:
    """The node shutdown API exists from 7.15 on; older versions know no such endpoint."""
    if tuple(int(p) for p in str(state.es_version).split(".")[:2]) >= (7, 15):
        return None
    state.unknown_requests.append(f"{req.method} {req.path}")
    return Response(400, {"error": f"no handler found for uri [{req.path}] and method [{req.method}]"})


def shutdown_put(state: SandboxState, req: Request) -> Response:
    refused = _no_shutdown_api(state, req)
    if refused:
        return refused
    c = _need_master(state, req)
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


def shutdown_get(state: SandboxState, req: Request) -> Response:
    refused = _no_shutdown_api(state, req)
    if refused:
        return refused
    c = _need_master(state, req)
    nid = req.parts.get("node_id")
    wanted = None if not nid or nid == "_all" else set(nid.split(","))
    nodes = [_shutdown_status(c, k, v) for k, v in sorted(c.shutdowns.items()) if wanted is None or k in wanted]
    return Response(200, {"nodes": nodes})


def shutdown_delete(state: SandboxState, req: Request) -> Response:
    refused = _no_shutdown_api(state, req)
    if refused:
        return refused
    c = _need_master(state, req)
    nid = req.parts["node_id"]
    if nid not in c.shutdowns:
        raise ESError(404, "resource_not_found_exception", f"node [{nid}] is not currently shutting down")
    c.shutdowns.pop(nid)
    c.version += 1
    c.log("shutdown", f"node shutdown for {c.node_name(nid)} removed", node_id=nid)
    return Response(200, {"acknowledged": True})


# -------------------------------------------------------------------- nodes
NODE_INFO_METRICS = {"settings", "os", "process", "jvm", "thread_pool", "transport", "http", "plugins", "ingest",
                     "aggregations", "indices"}


def _split_node_metric(req: Request) -> Tuple[Optional[str], Optional[set]]:
    node_expr = req.parts.get("node_id")
    metric = req.parts.get("metric")
    if node_expr and metric is None and set(node_expr.split(",")) <= NODE_INFO_METRICS | {"_all"}:
        node_expr, metric = None, node_expr
    return node_expr, (None if metric in (None, "_all") else set(metric.split(",")))


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
    return Response(200, {"_nodes": {"total": len(out), "successful": len(out), "failed": 0},
                          "cluster_name": c.scenario.cluster_name, "nodes": out})


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
    return Response(200, {"_nodes": {"total": len(out), "successful": len(out), "failed": 0},
                          "cluster_name": c.scenario.cluster_name, "nodes": out})


# ---------------------------------------------------------------------- cat
def _fmt_bytes(n: float, unit: Optional[str]) -> str:
    if unit:
        div = {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "tb": 1024 ** 4}.get(unit.lower(), 1)
        return str(int(n // div))
    for suffix, div in (("tb", 1024 ** 4), ("gb", 1024 ** 3), ("mb", 1024 ** 2), ("kb", 1024)):
        if n >= div:
            return f"{n / div:.1f}{suffix}"
    return f"{int(n)}b"


def _cat(req: Request, columns: List[Tuple[str, str]], default: List[str], rows: List[Dict[str, Any]]) -> Response:
    """columns: (name, alias) pairs; rows keyed by name. Handles h, v, s, format, help."""
    p = req.params
    alias = {a: n for n, a in columns}
    known = [n for n, _ in columns]
    if _bool(p.get("help")):
        return Response(200, "".join(f"{n} | {a} |\n" for n, a in columns))
    if p.get("h"):
        chosen = []
        for h in p["h"].split(","):
            h = h.strip()
            name = h if h in known else alias.get(h)
            if name is None:
                matches = [k for k in known if fnmatch.fnmatchcase(k, h)]
                chosen += matches
                if not matches:
                    raise ESError(400, "illegal_argument_exception", f"header [{h}] is not in the table")
            else:
                chosen.append(name)
    else:
        chosen = default
    if p.get("s"):
        for key in reversed(p["s"].split(",")):
            name, _, order = key.partition(":")
            name = name if name in known else alias.get(name, name)
            rows.sort(key=lambda r: (r.get(name) is None, _sortable(r.get(name))), reverse=order == "desc")
    fmt = p.get("format", "text")
    if fmt == "json":
        return Response(200, [{k: (None if r.get(k) is None else str(r.get(k))) for k in chosen} for r in rows])
    table = [[("" if r.get(k) is None else str(r.get(k))) for k in chosen] for r in rows]
    if _bool(p.get("v")):
        table.insert(0, list(chosen))
    if not table:
        return Response(200, "")
    widths = [max(len(row[i]) for row in table) for i in range(len(chosen))]
    lines = [" ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    return Response(200, "\n".join(lines) + "\n")


def _sortable(v: Any) -> Any:
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))


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


def cat_indices(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    unit = req.params.get("bytes")
    rows = []
    for name in _index_names(state, req.parts.get("index")):
        m = state.indices[name]
        total = sum(c.shard_size(name, s) for s in range(m.number_of_shards))
        active_copies = sum(1 for cp in c.all_copies() if cp.index == name and cp.state in ("STARTED", "RELOCATING"))
        health = c.health_of_index(name)
        if req.params.get("health") and req.params["health"] != health:
            continue
        rows.append({"health": health, "status": "open", "index": name, "uuid": m.uuid, "pri": m.number_of_shards,
                     "rep": m.number_of_replicas, "docs.count": m.doc_count(), "docs.deleted": 0,
                     "store.size": _fmt_bytes(total * max(1, active_copies) / max(1, m.number_of_shards), unit),
                     "pri.store.size": _fmt_bytes(total, unit),
                     "creation.date": m.creation_date_ms})
    cols = [("health", "h"), ("status", "s"), ("index", "i"), ("uuid", "id"), ("pri", "p"), ("rep", "r"),
            ("docs.count", "dc"), ("docs.deleted", "dd"), ("store.size", "ss"), ("pri.store.size", "pri.store.size"),
            ("creation.date", "cd")]
    return _cat(req, cols, [k for k, _ in cols if k != "creation.date"], rows)


HANDLERS = {
    "cluster.health": cluster_health,
    "cluster.state": cluster_state,
    "cluster.get_settings": cluster_get_settings,
    "cluster.put_settings": cluster_put_settings,
    "cluster.allocation_explain": allocation_explain,
    "cluster.reroute": cluster_reroute,
    "cluster.pending_tasks": pending_tasks,
    "cluster.post_voting_config_exclusions": post_voting_exclusions,
    "cluster.delete_voting_config_exclusions": delete_voting_exclusions,
    "shutdown.put_node": shutdown_put,
    "shutdown.get_node": shutdown_get,
    "shutdown.delete_node": shutdown_delete,
    "nodes.info": nodes_info,
    "nodes.stats": nodes_stats,
    "cat.nodes": cat_nodes,
    "cat.shards": cat_shards,
    "cat.health": cat_health,
    "cat.master": cat_master,
    "cat.allocation": cat_allocation,
    "cat.recovery": cat_recovery,
}
# Index-level cat output lives here too unless the documents half serves it.
OPTIONAL_HANDLERS = {"cat.indices": cat_indices}


def install(state: SandboxState) -> None:
    for api, handler in HANDLERS.items():
        state.register(api, handler)
    for api, handler in OPTIONAL_HANDLERS.items():
        if api not in state.handlers:
            state.register(api, handler)
    from . import snapshots  # snapshot and deprecation APIs (sandbox/snapshots.py)
    snapshots.install(state)
    from . import voting_versions  # the voting exclusion forms per version (sandbox/voting_versions.py)
    voting_versions.install(state)
    _cond(state)
