"""Voting configuration exclusions by version, as Elasticsearch answers them.

* 7.0 to 7.7: ``POST _cluster/voting_config_exclusions/{node_name}`` only (``node_names`` and
  ``node_ids`` are unknown parameters there);
* 7.8 to 7.17: both (the path form deprecated);
* 8.0 and later: ``node_names`` / ``node_ids`` only (the path form is gone: no handler).
"""
from __future__ import annotations

from .cluster_api import ESError, post_voting_exclusions
from .state import Request, Response, SandboxState


def _version(state: SandboxState) -> tuple:
    return tuple(int(p) for p in str(state.es_version).split(".")[:2])


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


def install(state: SandboxState) -> None:
    state.register("cluster.post_voting_config_exclusions", post_by_params)
    state.register("cluster.post_voting_config_exclusions_path", post_by_path)
