# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rebalancing paused for the duration of a rollout, the operator's value restored after.

While a node drains, Elasticsearch would otherwise rebalance shards onto the node
that just joined, and the next drain moves them again: the data moves about
twice. With ``cluster.routing.rebalance.enable: none`` shards still move off an
excluded node and replicas are still allocated; only balancing moves stop.

Crash safety: the operator's values (persistent and transient, or "unset") are
written to a tag on the cluster's Auto Scaling Groups *before* the setting is
changed, and a tag already there (left by a killed run) is never overwritten.
So whichever run releases the lock restores what the operator had.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.aws import tag_dict

REBALANCE_TAG = "logstack:rollout-rebalance"
SETTING = "cluster.routing.rebalance.enable"
OUTGOING = "cluster.routing.allocation.node_concurrent_outgoing_recoveries"
GENERIC = "cluster.routing.allocation.node_concurrent_recoveries"
# Short names keep the tag value well under the 256 characters a tag may hold.
SETTINGS = {"rebalance": SETTING, "outgoing": OUTGOING}
UNSET = "unset"
SCOPES = ("persistent", "transient")


def current_values(cluster):
    data = cluster.settings()
    return {"%s.%s" % (short, scope): (data.get(scope) or {}).get(key)
            for short, key in SETTINGS.items() for scope in SCOPES}


def render(values):
    return " ".join("%s=%s" % (k, UNSET if values.get(k) is None else values[k]) for k in sorted(values))


def parse(text):
    out = {}
    for part in (text or "").split():
        key, _, val = part.partition("=")
        if key.partition(".")[0] in SETTINGS and key.partition(".")[2] in SCOPES:
            out[key] = None if val == UNSET else val
    return out


def saved(aws, group_names):
    """The saved operator values, or None when no run paused rebalancing."""
    for group in aws.find_groups(names=list(group_names)):
        value = tag_dict(group.get("Tags")).get(REBALANCE_TAG)
        if value:
            return parse(value)
    return None


def outgoing_during_run(original):
    """One outgoing recovery slot fewer than the operator allows (at least one).

    The drain fills every outgoing slot of the draining node; replicas of indices created
    meanwhile (a daily or rollover index) then wait for a slot, unassigned. One slot of
    headroom lets them start at once; recovery bandwidth (indices.recovery.max_bytes_per_sec)
    is per node, so a drain with one recovery fewer moves data about as fast.
    """
    value = original.get("outgoing.transient") or original.get("outgoing.persistent")
    try:
        limit = int(value) if value is not None else None
    except ValueError:
        limit = None
    if limit is None:
        limit = 2  # Elasticsearch's default, also of node_concurrent_recoveries
    return max(1, limit - 1)


def pause(cluster, aws, group_names):
    """Save the operator's values (unless a crashed run already did), pause rebalancing, keep a recovery slot free."""
    original = saved(aws, group_names)
    if original is None:
        original = current_values(cluster)
        aws.call("autoscaling", "CreateOrUpdateTags", Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": REBALANCE_TAG,
             "Value": render(original), "PropagateAtLaunch": False} for name in group_names])
    # The generic limit is the default of the outgoing one; the run never changes it.
    current = cluster.settings()
    generic = (current.get("transient") or {}).get(GENERIC) or (current.get("persistent") or {}).get(GENERIC)
    if original.get("outgoing.persistent") is None and original.get("outgoing.transient") is None and generic:
        original = dict(original, **{"outgoing.persistent": generic})  # for the headroom figure only
    body = {"persistent": {SETTING: "none", OUTGOING: str(outgoing_during_run(original))}}
    cluster.es.put("/_cluster/settings", body=body)
    # A transient value overrides persistent: cleared for the run (it is in the tag).
    transient = {SETTINGS[k.partition(".")[0]]: None for k, v in original.items()
                 if k.endswith(".transient") and v is not None}
    if transient:
        cluster.es.put("/_cluster/settings", body={"transient": transient})
    return "rebalancing paused and %s set to %s for the run (operator's values saved: %s)" % (
        OUTGOING, body["persistent"][OUTGOING], render(original))


def restore(cluster, aws, group_names):
    """Put back the saved values (unset stays unset) and drop the tag; None when nothing was paused."""
    original = saved(aws, group_names)
    if original is None:
        return None
    persistent = {key: original.get("%s.persistent" % short) for short, key in SETTINGS.items()}
    cluster.es.put("/_cluster/settings", body={"persistent": persistent})
    transient = {key: original["%s.transient" % short] for short, key in SETTINGS.items()
                 if original.get("%s.transient" % short) is not None}
    if transient:
        cluster.es.put("/_cluster/settings", body={"transient": transient})
    aws.call("autoscaling", "DeleteTags", Tags=[
        {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": REBALANCE_TAG} for name in group_names])
    return "rebalancing and outgoing recoveries restored to the operator's values (%s)" % render(original)
