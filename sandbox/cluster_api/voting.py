"""``_cluster/voting_config_exclusions``: POST and DELETE, and the forms each version accepts.

* 7.0 to 7.7: ``POST _cluster/voting_config_exclusions/{node_name}`` only (``node_names`` and
  ``node_ids`` are unknown parameters there);
* 7.8 to 7.17: both (the path form deprecated);
* 8.0 and later: ``node_names`` / ``node_ids`` only (the path form is gone: no handler).
"""
from __future__ import annotations

from typing import Dict, List

from ..state import Request, Response, SandboxState
from ..units import version_tuple
from .common import ESError, _bool, _major, _need_master, _seconds, _wait


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


def _version(state: SandboxState) -> tuple:
    return version_tuple(state.es_version)[:2]


def post_by_params(state: SandboxState, req: Request) -> Response:
    if _version(state) < (7, 8):
        unknown = sorted(p for p in ("node_names", "node_ids") if p in req.params)
        if unknown:
            raise ESError(400, "illegal_argument_exception", "request [%s] contains unrecognized parameter%s: [%s]" % (
                req.path, "s" if len(unknown) > 1 else "", ", ".join(unknown)))
    return post_voting_exclusions(state, req)


def post_by_path(state: SandboxState, req: Request) -> Response:
    if _version(state) >= (8, 0):
        raise ESError(400, "illegal_argument_exception",
                      "no handler found for uri [%s] and method [POST]" % req.path)
    params = dict(req.params)
    params["node_names"] = req.parts["node_name"]
    return post_voting_exclusions(state, Request(req.method, req.path, "cluster.post_voting_config_exclusions",
                                                 req.parts, params, req.body, req.headers))


HANDLERS = {
    "cluster.post_voting_config_exclusions": post_by_params,
    "cluster.post_voting_config_exclusions_path": post_by_path,
    "cluster.delete_voting_config_exclusions": delete_voting_exclusions,
}
