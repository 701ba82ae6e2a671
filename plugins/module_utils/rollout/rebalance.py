# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rebalancing paused for the duration of a rollout; recovery slots freed for new replicas.

While a node drains, Elasticsearch would otherwise rebalance shards onto the node
that just joined, and the next drain moves them again: the data moves about
twice. With ``cluster.routing.rebalance.enable: none`` shards still move off an
excluded node and replicas are still allocated; only balancing moves stop.

A drain fills the recovery slots (node_concurrent_incoming/outgoing_recoveries) of
the nodes it copies from and to, and a replica of an index created meanwhile (a
daily or rollover index) waits for a slot, unassigned, for as long as a shard
copy takes: minutes on real shards (OpenSearch issue #491 describes the risk;
OpenSearch fixed it server-side with node_initial_replicas_recoveries, Elasticsearch
did not, elastic/elasticsearch#51025). A replica always copies from its primary's
node, so no fixed setting keeps a slot free. Two layers:

* ``reserve_slots`` at the start of a drain: both limits go up by the most slots
  the drain can hold on any one other node (``drain_slots``: copies that may land
  there, replicas whose primary is there), at most ``MAX_DRAIN_SLOTS``. Within that
  cap the drain can never take the operator's own slots, so a new replica is
  allocated the moment its primary starts. Bytes per second do not go up:
  ``indices.recovery.max_bytes_per_sec`` is one limiter per node, shared by every
  recovery through it.
* Above the cap, ``free_a_slot`` raises both limits by one more when the drain sees
  a throttled replica, and ``restore_slots`` puts them back to the reservation as
  soon as none waits (the drain takes raised slots too). At two above the
  reservation, ``cancel_a_relocation`` cancels the drain relocation that holds the
  slot the replica needs, the one least copied: Elasticsearch gives the freed slot
  to the unassigned replica first, the relocation's source copy stays started, and
  the relocation starts again later. At most ``MAX_CANCELS`` per drain of a node (counted in the
  rebalance tag, so across the step's calls): each cancel wastes what the relocation copied, and a
  burst of new indices would otherwise keep the drain from finishing.

Crash safety: the operator's values (persistent and transient, or "unset") are
written to a tag on the cluster's Auto Scaling Groups *before* any setting is
changed, and a tag already there (left by a killed run) is never overwritten.
So whichever run releases the lock restores what the operator had.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.aws import decode_tag, encode_tag, tag_dict
from ansible_collections.logstack.elk.plugins.module_utils.rollout import predicates as P
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import (
    is_data, shard_holders, shard_key, shard_nodes)

REBALANCE_TAG = "logstack:rollout-rebalance"
SETTING = "cluster.routing.rebalance.enable"
OUTGOING = "cluster.routing.allocation.node_concurrent_outgoing_recoveries"
INCOMING = "cluster.routing.allocation.node_concurrent_incoming_recoveries"
GENERIC = "cluster.routing.allocation.node_concurrent_recoveries"
# Short names keep the tag value well under the 256 characters a tag may hold.
SETTINGS = {"rebalance": SETTING, "outgoing": OUTGOING, "incoming": INCOMING}
SLOTS = ("outgoing", "incoming")
MAX_EXTRA_SLOTS = 2  # above the reservation, however many new indices a drain meets
# Reserved for a drain above the operator's limits at most: enough for a node's worth of shards
# on small clusters; a node with more relocates the rest within the operator's slots.
MAX_DRAIN_SLOTS = 16
UNSET = "unset"
# Drain relocations cancelled for new replicas, at most, per drain of a node: beyond, a throttled
# replica waits for one of the drain's copies to finish (minutes on real shards, once).
MAX_CANCELS = 4
CANCELS = "cancels"  # the rebalance tag's field: "<node id>:<count>", for the drain under way
HELD = "held"  # the rebalance tag's field: the node whose drain raises no limit any more (another node left)
SCOPES = ("persistent", "transient")


def current_values(cluster, data=None):
    """Our settings' values by "<short>.<scope>", from GET _cluster/settings (read unless given)."""
    data = cluster.settings() if data is None else data
    return {"%s.%s" % (short, scope): (data.get(scope) or {}).get(key)
            for short, key in SETTINGS.items() for scope in SCOPES}


def render(values):
    return encode_tag({k: UNSET if v is None else v for k, v in values.items()})


def parse(text):
    return _settings_of(decode_tag(text))


def _settings_of(fields):
    """The saved settings among the tag's fields (the drain's own fields, cancels and held, left out)."""
    return {k: None if v == UNSET else v for k, v in fields.items()
            if k.partition(".")[0] in SETTINGS and k.partition(".")[2] in SCOPES}


def _raw_tag(aws, group_names):
    """The rebalance tag's fields (settings and the drain's own), or None when no run wrote it."""
    for group in aws.find_groups(names=list(group_names)):
        value = tag_dict(group.get("Tags")).get(REBALANCE_TAG)
        if value:
            return decode_tag(value)
    return None


def saved(aws, group_names):
    """The saved operator values, or None when no run paused rebalancing."""
    fields = _raw_tag(aws, group_names)
    return None if fields is None else _settings_of(fields)


def _save(cluster, aws, group_names, now=None):
    """The operator's values, written to the tag first unless a run already did (now: the
    current values, when the caller has read them already)."""
    original = saved(aws, group_names)
    if original is None:
        original = now if now is not None else current_values(cluster)
        aws.put_group_tag(group_names, REBALANCE_TAG, render(original))
    return original


def _clear_transient(cluster, original, shorts):
    """A transient value overrides persistent: cleared for the run (it is in the tag)."""
    transient = {SETTINGS[s]: None for s in shorts if original.get("%s.transient" % s) is not None}
    if transient:
        cluster.es.put("/_cluster/settings", body={"transient": transient})


def pause(cluster, aws, group_names):
    """Save the operator's values (unless a crashed run already did) and pause rebalancing."""
    original = _save(cluster, aws, group_names)
    cluster.es.put("/_cluster/settings", body={"persistent": {SETTING: "none"}})
    _clear_transient(cluster, original, ["rebalance"])
    return "rebalancing paused for the run (operator's values saved: %s)" % render(original)


def _limit(values, short, generic):
    """The effective limit: transient over persistent, then the generic setting, then ES's default 2."""
    for value in (values.get("%s.transient" % short), values.get("%s.persistent" % short), generic, 2):
        try:
            return int(value)
        except (TypeError, ValueError):
            continue
    return 2


def _generic(data):
    return (data.get("transient") or {}).get(GENERIC) or (data.get("persistent") or {}).get(GENERIC)


def drain_slots(view, node_name, cap=MAX_DRAIN_SLOTS):
    """{"incoming": n, "outgoing": m}: the most recovery slots the drain of node_name can hold at once on
    any one node, each at most cap. A copy leaving the node lands on a data node that holds no copy of
    its shard (incoming there; a relocation already under way counts at its target only); a replica
    copies from its primary's node, a primary from the node itself (outgoing there: the node's own
    limit decides how much of its drain runs at once)."""
    holders, primary_at = shard_holders(view, with_targets=True)
    others = [n.get("name") for n in view.nodes.values() if is_data(n) and n.get("name") != node_name]
    incoming = dict.fromkeys(others, 0)
    outgoing = dict.fromkeys(others + [node_name], 0)
    for row in view.shards_on(node_name):
        src, dst = shard_nodes(row)
        if src != node_name or row.get("state") == "UNASSIGNED":
            continue
        key = shard_key(row)
        for name in ([dst] if dst else [n for n in others if n not in holders[key]]):
            if name in incoming:
                incoming[name] += 1
        source = node_name if row.get("prirep") == "p" else primary_at.get(key)
        if source in outgoing:
            outgoing[source] += 1
    return {"incoming": min(cap, max(incoming.values(), default=0)),
            "outgoing": min(cap, max(outgoing.values(), default=0))}


def _set_slots(cluster, aws, group_names, extra, at_most=None):
    """Both limits to the operator's plus extra[short] (at_most instead: only when below the operator's
    plus at_most[short], and then one up). The operator's values go to the tag first. Returns the body."""
    data = cluster.settings()
    now = current_values(cluster, data)
    generic = _generic(data)
    original = saved(aws, group_names) or now
    body = {}
    for short in SLOTS:
        base = _limit(original, short, generic)
        limit = _limit(now, short, generic)
        if at_most is None:
            if base + extra.get(short, 0) != limit:
                body[SETTINGS[short]] = str(base + extra.get(short, 0))
        elif limit < base + at_most.get(short, 0):
            body[SETTINGS[short]] = str(limit + 1)
    if body:
        _save(cluster, aws, group_names, now)
        cluster.es.put("/_cluster/settings", body={"persistent": body})
        _clear_transient(cluster, now, SLOTS)
    return body


def _describe(body):
    return ", ".join("%s=%s" % (k.rsplit(".", 1)[-1], v) for k, v in sorted(body.items()))


def reserve_slots(cluster, aws, group_names, extra):
    """The recovery limits at the operator's plus ``extra`` (from drain_slots) for a drain (a later call's
    count, with part of the drain done, is lower: so are the limits, and relocations under way go on);
    what was set, or None when they are there already."""
    if not any(extra.values()):
        return None
    return _describe(_set_slots(cluster, aws, group_names, extra)) or None


def free_a_slot(cluster, aws, group_names, reserved=None):
    """One more incoming and outgoing recovery slot per node (at most MAX_EXTRA_SLOTS over the
    operator's plus ``reserved``): the settings update makes Elasticsearch allocate unassigned copies
    before it starts more relocations. Returns what was done, or None when already at the cap."""
    reserved = reserved or {}
    body = _set_slots(cluster, aws, group_names, None,
                      at_most={s: reserved.get(s, 0) + MAX_EXTRA_SLOTS for s in SLOTS})
    return _describe(body) or None


def _put_back(cluster, original, shorts):
    """Write the saved values of these settings back (only those the tag holds: a tag written
    by an older version may lack one, and the run never changed that one)."""
    shorts = [s for s in shorts if "%s.persistent" % s in original or "%s.transient" % s in original]
    if shorts:
        cluster.es.put("/_cluster/settings", body={"persistent": {
            SETTINGS[s]: original.get("%s.persistent" % s) for s in shorts}})
    transient = {SETTINGS[s]: original["%s.transient" % s] for s in shorts
                 if original.get("%s.transient" % s) is not None}
    if transient:
        cluster.es.put("/_cluster/settings", body={"transient": transient})


def restore_slots(cluster, aws, group_names, reserved=None):
    """Put the recovery limits back to the operator's values, or to the drain's reservation when
    ``reserved`` (rebalancing stays paused); None when they were there already."""
    original = saved(aws, group_names)
    if original is None:
        return None
    if reserved and any(reserved.values()):
        body = _set_slots(cluster, aws, group_names, reserved)
        return ("recovery limits back to the drain's reservation (%s)" % _describe(body)) if body else None
    now = current_values(cluster)
    if all(now.get(k) == original.get(k) for k in original if k.partition(".")[0] in SLOTS):
        return None
    _put_back(cluster, original, SLOTS)
    return "recovery limits back to the operator's values"


def restore(cluster, aws, group_names):
    """Put back the saved values (unset stays unset) and drop the tag; None when nothing was paused."""
    original = saved(aws, group_names)
    if original is None:
        return None
    _put_back(cluster, original, list(SETTINGS))
    aws.delete_group_tag(group_names, REBALANCE_TAG)
    return "rebalancing and recovery limits restored to the operator's values (%s)" % render(original)


def _put_field(cluster, aws, group_names, name, value):
    """A field of the drain under way in the rebalance tag (the operator's values saved first when no run
    saved them yet); saved() leaves such fields out, so restore never mistakes one for a setting."""
    _save(cluster, aws, group_names)
    fields = _raw_tag(aws, group_names) or {}
    fields[name] = value
    aws.put_group_tag(list(group_names), REBALANCE_TAG, encode_tag(fields))


def cancels_done(aws, group_names, node_id):
    """Relocations cancelled so far for the drain of node_id (0 when none, or another node's drain)."""
    field = (_raw_tag(aws, group_names) or {}).get(CANCELS) or ""
    who, _sep, count = field.rpartition(":")
    return int(count) if who == node_id and count.isdigit() else 0


def count_cancel(cluster, aws, group_names, node_id):
    """One more cancel for the drain of node_id, counted in the rebalance tag (across the step's calls)."""
    _put_field(cluster, aws, group_names, CANCELS, "%s:%d" % (node_id, cancels_done(aws, group_names, node_id) + 1))


def limits_held(aws, group_names, node_id):
    """Does the drain of node_id keep to the operator's recovery limits (another node left during it)?"""
    return (_raw_tag(aws, group_names) or {}).get(HELD) == node_id


def hold_limits(cluster, aws, group_names, node_id):
    """From now on the drain of node_id raises no limit (the step's later calls read it); the limits go back
    to the operator's values now. What was put back, or None."""
    if not limits_held(aws, group_names, node_id):
        _put_field(cluster, aws, group_names, HELD, node_id)
    return restore_slots(cluster, aws, group_names)


def _blocker(explain):
    """("out", node id) when the primary's node has no outgoing slot, else ("in", node names
    without an incoming slot), from a throttled replica's allocation explanation. Elasticsearch
    allocates an unassigned copy only to the lowest-weight node among those answering YES or
    THROTTLE (the explanation's weight_ranking): when that one is throttled, a slot freed on
    another node does not help, so only it is named."""
    full = set()
    for node_name, text in P.concurrent_limit_throttles(explain):
        if "outgoing shard recoveries" in text and "on the node [" in text:
            return "out", text.split("on the node [", 1)[1].split("]", 1)[0]
        full.add(node_name)
    able = [d for d in (explain or {}).get("node_allocation_decisions") or []
            if d.get("node_decision") in ("yes", "throttled") and d.get("weight_ranking") is not None]
    best = min(able, key=lambda d: d["weight_ranking"], default=None)
    if best is not None and best.get("node_name") in full:
        return "in", {best["node_name"]}
    return "in", full


def cancel_a_relocation(cluster, view, node_name, explain):
    """Cancel the relocation off ``node_name`` (the node draining) that holds the recovery slot a
    throttled replica needs, the least copied one; what was cancelled, or None."""
    kind, where = _blocker(explain)
    if kind == "out":
        where = {(view.nodes.get(where) or {}).get("name", where)}
    targets = {}
    for row in view.shards_on(node_name):
        src, target = shard_nodes(row)
        if row.get("state") == "RELOCATING" and src == node_name and target:
            targets[shard_key(row)] = target
    best = None
    for rec in cluster.es.get("/_cat/recovery", params={"format": "json", "active_only": "true"}) or []:
        key = shard_key(rec)
        if targets.get(key) != rec.get("target_node") or rec.get("stage") == "done":
            continue
        if (rec.get("source_node") if kind == "out" else rec.get("target_node")) not in where:
            continue
        done = float(str(rec.get("bytes_percent") or "0").rstrip("%") or 0)
        if best is None or done < best[0]:
            best = (done, key, rec.get("target_node"))
    if best is None:
        return None
    done, (index, shard), target = best
    cluster.es.post("/_cluster/reroute", body={"commands": [{"cancel": {"index": index, "shard": int(shard),
                                                                        "node": target}}]})
    return "cancelled the relocation of [%s][%s] to %s (%.0f%% copied; it starts again later)" % (
        index, shard, target, done)
