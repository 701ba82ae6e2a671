"""Recordings of what the collection asks of Elasticsearch and what it gets back, per API.

A recording front sits between a command (ansible-playbook) and an ES URL, the simulator's or a
real cluster's, and keeps for each API (``METHOD api-name`` from the REST spec) the statuses seen,
the query parameters sent and the *shape* of each answer (keys and value types; maps keyed by
data such as node ids or index names folded into one ``<key>`` entry). ``sandbox/real/record.py``
records the real distributions into ``tests/fixtures/recordings/``; the conformance test records the
simulator running the same playbooks and compares (``compare``).
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qsl, urlsplit

from .audit import _api_of

# Maps whose keys are data (ids, names, settings), not schema: their entries are folded together.
DATA_KEYED = {"nodes", "indices", "aliases", "properties", "persistent", "transient", "defaults", "settings",
              "index", "mappings", "attributes", "shards", "tasks", "children", "metadata", "templates",
              "voting_config_exclusions", "routing", "allocation", "blocks", "cluster", "indexing_pressure"}
_DATA_KEY = re.compile(r"[0-9]|^\.|^[A-Za-z0-9_-]{20,24}$")


# Our own data inside answers (the reindex run's record in a mapping's _meta): not Elasticsearch's schema.
OPAQUE = {"_meta"}


def shape(value: Any, parent: str = "") -> Any:
    if parent in OPAQUE:
        return "opaque"
    if isinstance(value, dict):
        keys = list(value)
        if keys and (parent in DATA_KEYED or all(_DATA_KEY.search(k) for k in keys)):
            merged: Any = None
            for k, v in value.items():
                merged = merge(merged, shape(v, k if k in OPAQUE else "<key>"))
            return {"<key>": merged}
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        merged = None
        for v in value:
            merged = merge(merged, shape(v, parent))
        return [merged] if merged is not None else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return "str"


def merge(a: Any, b: Any) -> Any:
    """The union of two shapes (keys of both; a type seen as two kinds keeps the first)."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out.get(k), v)
        return out
    if isinstance(a, list) and isinstance(b, list):
        return [merge(a[0] if a else None, b[0] if b else None)] if (a or b) else []
    if a == "null":
        return b
    return a


def api_key(method: str, path: str) -> str:
    """``METHOD api-name`` plus the query parameters sent: other parameters, another answer
    (``filter_path``, ``level``, ``metric`` change the shape)."""
    bare = urlsplit(path).path
    params = sorted({k for k, _ in parse_qsl(urlsplit(path).query, keep_blank_values=True)})
    m = re.search(r"/_(?:stats|state)/([^/]+)", bare)  # the metric asked for shapes the answer too
    metric = f" [{m.group(1)}]" if m else ""
    return f"{method} {_api_of(method, bare) or bare}{metric}" + (f" ?{','.join(params)}" if params else "")


class Recorder:
    def __init__(self) -> None:
        self.apis: Dict[str, Dict[str, Any]] = {}

    def __call__(self, method: str, path: str, body: Optional[bytes], status: int, data: bytes) -> None:
        key = api_key(method, path)
        rec = self.apis.setdefault(key, {"statuses": {}, "params": [], "example": path.split("?")[0]})
        params = sorted({k for k, _ in parse_qsl(urlsplit(path).query, keep_blank_values=True)})
        rec["params"] = sorted(set(rec["params"]) | set(params))
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = "<text>"
        got = shape(parsed) if not isinstance(parsed, str) else "text"
        seen = rec["statuses"].get(str(status))
        rec["statuses"][str(status)] = merge(seen, got) if seen is not None else got

    def save(self, path: str, meta: Dict[str, Any]) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, "apis": dict(sorted(self.apis.items()))}, fh, indent=1, sort_keys=True)
            fh.write("\n")


def subset_diff(small: Any, big: Any, where: str = "") -> List[str]:
    """Where ``small``'s shape is not contained in ``big``'s (what the simulator says that the real one does not)."""
    if isinstance(small, dict) and isinstance(big, dict):
        out: List[str] = []
        for k, v in small.items():
            if k not in big:
                out.append(f"{where}.{k} missing")
            else:
                out.extend(subset_diff(v, big[k], f"{where}.{k}"))
        return out
    if isinstance(small, list) and isinstance(big, list):
        return subset_diff(small[0], big[0], where + "[]") if small and big else []
    if "null" in (small, big):
        return []
    return [] if small == big else [f"{where}: {small!r} vs {big!r}"]


def compare(sim: Dict[str, Any], real: Dict[str, Any]) -> List[str]:
    """Differences for the APIs both answered with the same status: status sets and sim-shape within real-shape."""
    out = []
    for key, s in sim["apis"].items():
        r = real["apis"].get(key)
        if r is None:
            continue
        for status, sim_shape in s["statuses"].items():
            if status not in r["statuses"]:
                if status.startswith("2") and any(x.startswith("2") for x in r["statuses"]):
                    out.append(f"{key}: status {status} where the real cluster answered {sorted(r['statuses'])}")
                continue
            out.extend(f"{key} {status}: {d}" for d in subset_diff(sim_shape, r["statuses"][status])
                       if ".logstack_reindex." not in d)  # the reindex run's own record, not ES's schema
    return out
