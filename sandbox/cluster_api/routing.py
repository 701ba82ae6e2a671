"""``_cluster/allocation/explain`` and ``_cluster/reroute`` (the ``cancel`` command), over ``allocation.py``."""
from __future__ import annotations

from .. import allocation
from ..state import Request, Response, SandboxState
from .common import ESError, _bool, _major, _need_master, resolve_nodes


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
