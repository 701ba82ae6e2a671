# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Allocation explanations of every unassigned copy, one request per distinct situation.

A gate that proceeds on a version-skew yellow must have every unassigned copy explained: a cap
(the 21st replica "not explained") stalls it on a cluster of many indices. The deciders' answer for
an unassigned copy depends on its index's allocation settings and replica count, on whether it is a
primary, on where the shard's other copies are (same_shard, awareness) and on its primary's node
(the version skew): copies alike in all of these share one ``_cluster/allocation/explain``. Shard
sizes (disk) and the moment a copy became unassigned (delayed allocation) can still differ between
them; the gate re-reads on every poll, so an answer that changed is seen at the next one.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import shard_holders, shard_key


def situation(row, holders, primary_at, index_settings):
    key = shard_key(row)
    settings = index_settings.get(row.get("index"))
    # without the index's settings, its name keeps indices apart
    scope = tuple(sorted(settings.items())) if settings is not None else row.get("index")
    return scope, row.get("prirep"), primary_at.get(key), tuple(sorted(holders.get(key, ())))


def explain_unassigned(cluster, view, tolerate_errors=False):
    """{shard key: explanation} for every unassigned copy's shard; one request per situation.
    tolerate_errors: a failed explain becomes {"error": message} (diagnosis) instead of raising."""
    rows = view.unassigned()
    if not rows:
        return {}
    holders, primary_at = shard_holders(view, with_targets=True)
    try:
        index_settings = cluster.index_allocation_settings() if len({r.get("index") for r in rows}) > 1 else {}
    except EsError:
        index_settings = {}
    asked, out = {}, {}
    for row in rows:
        key = shard_key(row)
        if key in out:
            continue
        sit = situation(row, holders, primary_at, index_settings)
        if sit not in asked:
            try:
                asked[sit] = cluster.explain(row.get("index"), row.get("shard"), row.get("prirep") == "p")
            except EsError as exc:
                if not tolerate_errors:
                    raise
                asked[sit] = {"error": exc.message}
        out[key] = asked[sit]
    return out
