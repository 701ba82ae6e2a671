"""What every cluster endpoint shares: the engine, waiting under the state's lock, the master
check, query flags, index and node expressions."""
from __future__ import annotations

import fnmatch
import threading
import time
from typing import Callable, List, Optional

from ..engine import Cluster
from ..es_api.errors import ESError
from ..model import Node
from ..state import Request, SandboxState
from ..units import time_param, version_tuple

__all__ = ["ESError", "_bool", "_cond", "_engine", "_index_names", "_major", "_need_master", "_seconds", "_wait",
           "resolve_nodes"]


def _engine(state: SandboxState) -> Cluster:
    return state.engine


def _major(state: SandboxState) -> int:
    return version_tuple(state.es_version)[0]


def _cond(state: SandboxState) -> threading.Condition:
    cond = getattr(state, "changed", None)
    if cond is None:
        cond = state.changed = threading.Condition(state.lock)
    return cond


def _seconds(value: Optional[str], default: float, name: str) -> float:
    """A request's time value in seconds; "-1" waits a year (as good as no limit here)."""
    try:
        seconds = time_param(value, default, name)
    except ValueError as exc:
        raise ESError(400, "illegal_argument_exception", str(exc)) from None
    return 365 * 86400.0 if seconds < 0 else seconds


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
