"""Snapshot repositories and snapshots, and the deprecation info API, as Elasticsearch answers them.

Repositories of type ``fs`` (``settings.location`` required) and ``s3`` (``settings.bucket``
required); nothing is written anywhere. A snapshot runs for as long as copying every index's
primaries takes at the scenario's recovery rate (at least 0.3 s), IN_PROGRESS until then, then
SUCCESS; started while a primary is unassigned it FAILS (``partial`` false) or ends PARTIAL.
``wait_for_completion=true`` answers once it ends. Tests may set ``state.snapshot_clock_offset``
(seconds added to the wall clock the snapshots record) to make a snapshot look old.

``GET _migration/deprecations`` answers on Elasticsearch only (OpenSearch has no such API): the
cluster settings of REMOVED_NEXT_MAJOR as critical issues, plus ``state.deprecation_issues``
(tests put issues there as the API lists them: {"level", "message", "url", "details"}).
"""
from __future__ import annotations

import time
import uuid
from typing import Any, Dict, List

from ..state import Request, Response, SandboxState
from .cat import _cat
from .common import ESError, _bool, _need_master, _wait

# Settings removed in the next major (checked by Elasticsearch's deprecation API as critical).
REMOVED_NEXT_MAJOR = {
    7: ["cluster.routing.allocation.disk.include_relocations", "discovery.zen.minimum_master_nodes"],
    8: ["cluster.routing.allocation.disk.watermark.enable_for_single_data_node"],
}


def _repos(state: SandboxState) -> Dict[str, Dict[str, Any]]:
    if not hasattr(state, "snapshot_repositories"):
        state.snapshot_repositories = {}
        state.snapshots = {}
    return state.snapshot_repositories


def _wall_ms(state: SandboxState) -> int:
    return int((time.time() + getattr(state, "snapshot_clock_offset", 0.0)) * 1000)


def _repo(state: SandboxState, name: str) -> Dict[str, Any]:
    repo = _repos(state).get(name)
    if repo is None:
        raise ESError(404, "repository_missing_exception", f"[{name}] missing")
    return repo


def create_repository(state: SandboxState, req: Request) -> Response:
    _need_master(state, req)
    body = req.body or {}
    kind = body.get("type")
    settings = body.get("settings") or {}
    name = req.parts["repository"]
    if kind == "fs":
        if not settings.get("location"):
            raise ESError(500, "repository_exception", f"[{name}] missing location")
    elif kind == "s3":
        if not settings.get("bucket"):
            raise ESError(500, "repository_exception", f"[{name}] No bucket defined for s3 repository")
    else:
        raise ESError(500, "repository_exception", f"[{name}] repository type [{kind}] does not exist")
    _repos(state)[name] = {"type": kind, "settings": {k: str(v) for k, v in settings.items()}}
    state.snapshots.setdefault(name, {})
    return Response(200, {"acknowledged": True})


def get_repository(state: SandboxState, req: Request) -> Response:
    _need_master(state, req)
    repos = _repos(state)
    wanted = req.parts.get("repository")
    if wanted in (None, "_all", "*"):
        return Response(200, dict(repos))
    out = {}
    for name in wanted.split(","):
        out[name] = _repo(state, name)
    return Response(200, out)


def _duration(state: SandboxState, indices: List[str]) -> float:
    c = state.engine
    size = sum(c.shard_size(i, s) for i in indices for s in range(state.indices[i].number_of_shards))
    rate = float(getattr(c.scenario, "recovery_bytes_per_second", 0) or 0) or 40e6
    return max(0.3, size / rate)


def _current(state: SandboxState, snap: Dict[str, Any]) -> Dict[str, Any]:
    """The snapshot as of now: IN_PROGRESS until its end, then its outcome."""
    if snap["state"] == "IN_PROGRESS" and state.now() >= snap["_done_at"]:
        snap["state"] = snap["_outcome"]
        snap["end_time_in_millis"] = snap["start_time_in_millis"] + int(snap["_seconds"] * 1000)
    return snap


def create_snapshot(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    repo_name, name = req.parts["repository"], req.parts["snapshot"]
    _repo(state, repo_name)
    snaps = state.snapshots[repo_name]
    if name != name.lower() or name.startswith("_") or "," in name:
        raise ESError(400, "invalid_snapshot_name_exception",
                      f"[{repo_name}:{name}] Invalid snapshot name [{name}], must be lowercase")
    if name in snaps:
        raise ESError(400, "invalid_snapshot_name_exception",
                      f"[{repo_name}:{name}] Invalid snapshot name [{name}], snapshot with the same name already exists")
    running = [s for r in state.snapshots.values() for s in r.values() if _current(state, s)["state"] == "IN_PROGRESS"]
    if running:
        raise ESError(503, "concurrent_snapshot_execution_exception",
                      f"[{repo_name}:{name}] a snapshot is already running")
    body = req.body or {}
    indices = sorted(state.indices)
    red = [i for i in indices if c.health_of_index(i) == "red"]
    partial = bool(body.get("partial", False))
    if red and not partial:
        raise ESError(500, "snapshot_exception",
                      f"[{repo_name}:{name}] Indices don't have primary shards {red}")
    seconds = _duration(state, indices)
    shards = sum(state.indices[i].number_of_shards for i in indices)
    snap = {"snapshot": name, "uuid": uuid.uuid4().hex[:22], "repository": repo_name, "version": state.es_version,
            "indices": indices, "data_streams": [], "include_global_state": body.get("include_global_state", True),
            "state": "IN_PROGRESS", "start_time_in_millis": _wall_ms(state), "end_time_in_millis": 0,
            "failures": [], "shards": {"total": shards, "failed": 0, "successful": shards},
            "_done_at": state.now() + seconds, "_seconds": seconds, "_outcome": "PARTIAL" if red else "SUCCESS"}
    snaps[name] = snap
    if _bool(req.params.get("wait_for_completion")):
        _wait(state, lambda: _current(state, snap)["state"] != "IN_PROGRESS", seconds + 5)
        return Response(200, {"snapshot": _public(snap)})
    return Response(200, {"accepted": True})


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + ".%03dZ" % (ms % 1000)


def _public(snap: Dict[str, Any]) -> Dict[str, Any]:
    out = {k: v for k, v in snap.items() if not k.startswith("_")}
    out["start_time"] = _iso(snap["start_time_in_millis"])
    if snap["end_time_in_millis"]:
        out["end_time"] = _iso(snap["end_time_in_millis"])
        out["duration_in_millis"] = snap["end_time_in_millis"] - snap["start_time_in_millis"]
    else:
        out.pop("end_time_in_millis")
    return out


def _select(state: SandboxState, repo_name: str, wanted: str, ignore_unavailable: bool) -> List[Dict[str, Any]]:
    snaps = state.snapshots[repo_name]
    if wanted in ("_all", "*"):
        return [_current(state, s) for s in snaps.values()]
    out = []
    for name in wanted.split(","):
        if name in snaps:
            out.append(_current(state, snaps[name]))
        elif not ignore_unavailable:
            raise ESError(404, "snapshot_missing_exception", f"[{repo_name}:{name}] is missing")
    return out


def get_snapshot(state: SandboxState, req: Request) -> Response:
    _need_master(state, req)
    repo_name = req.parts["repository"]
    _repo(state, repo_name)
    snaps = _select(state, repo_name, req.parts["snapshot"], _bool(req.params.get("ignore_unavailable")))
    snaps.sort(key=lambda s: s["start_time_in_millis"])
    return Response(200, {"snapshots": [_public(s) for s in snaps], "total": len(snaps), "remaining": 0})


def snapshot_status(state: SandboxState, req: Request) -> Response:
    _need_master(state, req)
    repo_name, wanted = req.parts.get("repository"), req.parts.get("snapshot")
    if wanted is None:
        repos = [repo_name] if repo_name else list(_repos(state))
        snaps = [_current(state, s) for r in repos for s in state.snapshots.get(r, {}).values()]
        snaps = [s for s in snaps if s["state"] == "IN_PROGRESS"]
    else:
        _repo(state, repo_name)
        snaps = _select(state, repo_name, wanted, _bool(req.params.get("ignore_unavailable")))
    out = []
    for s in snaps:
        total = s["shards"]["total"]
        done = total if s["state"] != "IN_PROGRESS" else 0
        out.append({"snapshot": s["snapshot"], "repository": s["repository"], "uuid": s["uuid"],
                    "state": s["state"], "include_global_state": s["include_global_state"],
                    "shards_stats": {"initializing": 0, "started": total - done, "finalizing": 0, "done": done,
                                     "failed": 0, "total": total}})
    return Response(200, {"snapshots": out})


def cat_snapshots(state: SandboxState, req: Request) -> Response:
    _need_master(state, req)
    repo_name = req.parts.get("repository")
    repos = [repo_name] if repo_name else list(_repos(state))
    rows = []
    for name in repos:
        _repo(state, name)
        for s in sorted(state.snapshots[name].values(), key=lambda s: s["start_time_in_millis"]):
            s = _current(state, s)
            end = s["end_time_in_millis"]
            rows.append({"id": s["snapshot"], "repository": name, "status": s["state"],
                         "start_epoch": str(s["start_time_in_millis"] // 1000),
                         "start_time": _iso(s["start_time_in_millis"])[11:19],
                         "end_epoch": str(end // 1000) if end else "0", "end_time": _iso(end)[11:19] if end else "",
                         "duration": "%.1fs" % ((end - s["start_time_in_millis"]) / 1000.0) if end else "",
                         "indices": str(len(s["indices"])), "successful_shards": str(s["shards"]["successful"]),
                         "failed_shards": "0", "total_shards": str(s["shards"]["total"]), "reason": ""})
    cols = [("id", "snapshot"), ("repository", "re"), ("status", "s"), ("start_epoch", "ste"),
            ("start_time", "sti"), ("end_epoch", "ete"), ("end_time", "eti"), ("duration", "dur"),
            ("indices", "i"), ("successful_shards", "ss"), ("failed_shards", "fs"), ("total_shards", "ts"),
            ("reason", "r")]
    return _cat(req, cols, [k for k, _ in cols if k != "repository"], rows)


def deprecations(state: SandboxState, req: Request) -> Response:
    c = _need_master(state, req)
    if getattr(state, "distribution", "elasticsearch") == "opensearch":
        raise ESError(400, "illegal_argument_exception", "no handler found for uri [/_migration/deprecations]")
    major = int(str(state.es_version).split(".")[0])
    cluster_settings = []
    for key in REMOVED_NEXT_MAJOR.get(major, []):
        if c.setting(key, None) is not None:
            cluster_settings.append({"level": "critical", "message": f"Setting [{key}] is removed in {major + 1}.0",
                                     "url": "https://www.elastic.co/guide/en/elasticsearch/reference/current/"
                                            "migrating-%d.0.html" % (major + 1),
                                     "details": f"Remove [{key}] from the cluster settings.",
                                     "resolve_during_rolling_upgrade": False})
    cluster_settings.extend(getattr(state, "deprecation_issues", []))
    return Response(200, {"cluster_settings": cluster_settings, "node_settings": [], "index_settings": {},
                          "ml_settings": [], "data_streams": {}, "templates": {}, "ilm_policies": {}})


HANDLERS = {
    "snapshot.create_repository": create_repository,
    "snapshot.get_repository": get_repository,
    "snapshot.create": create_snapshot,
    "snapshot.get": get_snapshot,
    "snapshot.status": snapshot_status,
    "cat.snapshots": cat_snapshots,
    "migration.deprecations": deprecations,
}


def install(state: SandboxState) -> None:
    _repos(state)
    for api, handler in HANDLERS.items():
        state.register(api, handler)
