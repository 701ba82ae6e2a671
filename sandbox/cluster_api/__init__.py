"""The cluster half's Elasticsearch endpoints, registered by REST spec API name, one module per
API family:

* ``cluster``: ``_cluster/health``, ``_cluster/state``, ``_cluster/pending_tasks``;
* ``settings``: ``_cluster/settings``;
* ``routing``: ``_cluster/allocation/explain``, ``_cluster/reroute``;
* ``voting``: ``_cluster/voting_config_exclusions`` in each version's forms;
* ``shutdown``: ``_nodes/<id>/shutdown``;
* ``nodes``: ``_nodes``, ``_nodes/stats``;
* ``cat``: ``_cat/nodes|shards|health|master|allocation|recovery`` (``_cat/indices`` is the
  documents half's);
* ``snapshots``: ``_snapshot``, ``_cat/snapshots``, ``_migration/deprecations``.

They read and change the engine (``state.engine``, ``sandbox/engine.py``). Handlers run under
``state.lock`` (the server takes it); handlers that wait (health ``wait_for_*``, voting
exclusions, ``master_timeout``) release it while they sleep through ``state.changed`` (a
Condition on that lock). Without an elected master, these endpoints answer 503
``master_not_discovered_exception`` at once, unless the request passes ``master_timeout``: then
they wait that long for a master first (as ES does).
"""
from __future__ import annotations

from ..state import SandboxState
from . import cat, cluster, nodes, routing, settings, shutdown, snapshots, voting
from .common import _cond

HANDLERS = {
    "cluster.health": cluster.cluster_health,
    "cluster.state": cluster.cluster_state,
    "cluster.pending_tasks": cluster.pending_tasks,
    "cluster.get_settings": settings.cluster_get_settings,
    "cluster.put_settings": settings.cluster_put_settings,
    "cluster.allocation_explain": routing.allocation_explain,
    "cluster.reroute": routing.cluster_reroute,
    **voting.HANDLERS,
    "shutdown.put_node": shutdown.shutdown_put,
    "shutdown.get_node": shutdown.shutdown_get,
    "shutdown.delete_node": shutdown.shutdown_delete,
    "nodes.info": nodes.nodes_info,
    "nodes.stats": nodes.nodes_stats,
    "cat.nodes": cat.cat_nodes,
    "cat.shards": cat.cat_shards,
    "cat.health": cat.cat_health,
    "cat.master": cat.cat_master,
    "cat.allocation": cat.cat_allocation,
    "cat.recovery": cat.cat_recovery,
}


def install(state: SandboxState) -> None:
    for api, handler in HANDLERS.items():
        state.register(api, handler)
    snapshots.install(state)
    _cond(state)
