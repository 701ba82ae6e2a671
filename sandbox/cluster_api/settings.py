"""``_cluster/settings``: GET (``flat_settings``, ``include_defaults``) and PUT (validation, resets)."""
from __future__ import annotations

import fnmatch
from typing import Any, Dict

from .. import allocation
from ..engine import Cluster
from ..state import Request, Response, SandboxState
from ..units import flatten as _flatten
from ..units import nest as _nest
from .common import ESError, _bool, _need_master

ENABLE_VALUES = {"all", "primaries", "new_primaries", "none"}
KNOWN_SETTING_PREFIXES = (
    "cluster.", "indices.", "action.", "logger.", "search.", "xpack.", "ingest.", "network.breaker.",
    "script.", "transport.", "http.", "persistent_tasks.", "snapshot.", "thread_pool.", "discovery.",
)



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
