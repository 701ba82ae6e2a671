# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draining: empty a node before its instance goes (node shutdown record or allocation exclusion),
with the drain's recovery slots reserved and a throttled replica of a new index given a slot
(see rebalance.py), and decide when it holds no shard."""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout import placement
from ansible_collections.logstack.elk.plugins.module_utils.rollout import predicates as P
from ansible_collections.logstack.elk.plugins.module_utils.rollout import rebalance
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import is_data, shard_key
from ansible_collections.logstack.elk.plugins.module_utils.rollout.diagnosing import StepFailed


class Draining:
    """Mixin of NodeReplacement (rollout/node.py): the drain step and what it needs."""

    def use_shutdown_api(self):
        if self.drain_method == "exclusion":
            return False
        return self.es.has_shutdown_api()

    def _exclude(self):
        if self.use_shutdown_api():
            self.cluster.put_shutdown(self.node_id, "logstack.elk rolling replacement run %s" % self.run_id)
        else:
            view = self.cluster.view()
            self.cluster.set_excluded_ids(list(view.excluded_ids) + [self.node_id])

    def _start_drain(self, view, gate=True):
        """Reserve the drain's recovery slots, then exclude the node unless a crashed run did:
        (changed, what was reserved or None). gate=False: the caller checked the rules already."""
        excluded = self.continuing(view, voting=False)
        if gate and not excluded and not self.continuing(view):
            self.gate()
        if not excluded:
            self._check_placement()
        # Slots for the drain's copies on top of the operator's, before it starts: a replica of an
        # index created meanwhile then finds a slot at once (see rebalance). None while copies of another
        # node that left are rebuilt (see _others_left).
        self.reserved = rebalance.drain_slots(view, self.node_name)
        if rebalance.limits_held(self.aws, self.cluster_groups(), self.node_id) or (
                view.unassigned() and self._others_left(view, self.explains(view))):
            self.reserved = dict.fromkeys(self.reserved, 0)
            self._held = True
        reserved = rebalance.reserve_slots(self.cluster, self.aws, self.cluster_groups(), self.reserved)
        if reserved:
            self.log("%s: recovery limits %s for the drain" % (self.label(), reserved))
        if not excluded:
            self._exclude()
        return not excluded or bool(reserved), reserved

    def _check_placement(self):
        """Refuse before excluding anything when a copy on the node has no other node to go to and no
        started copy elsewhere (the drain would wait until its timeout): the cluster may have changed
        since preflight, e.g. a replacement Auto Scaling started in another zone."""
        view = self.cluster.view()
        blocked = placement.Placement(view, placement.read_inputs(self.cluster)).check(self.node_id)
        alone = [b for b in blocked if not b["elsewhere"]]
        if alone:
            raise self.failure("drain", self.label(), "%s; nothing was excluded: change the setting named, or "
                               "use strategy surge or terminate" % placement.describe(alone, self.node_name))
        if blocked:
            self.log("%s: %s; each has a started copy elsewhere, so the drain ends without them" % (
                self.label(), placement.describe(blocked, self.node_name)))

    def _drain_how(self):
        return "node shutdown (remove)" if self.use_shutdown_api() else "allocation exclusion"

    def _drained(self, free_slots=True):
        """(done, detail): holds no shard but version-stuck replicas; nothing unassigned (skew aside) or moving.

        With free_slots, a replica that only recovery throttling keeps unassigned gets a slot (see
        rebalance.free_a_slot)."""
        view = self.cluster.view()
        if self.node_here(view) is None:
            return True, "node already left"
        explains = self.explains(view) if view.unassigned() else {}
        ctx = P.Context(view, explains=explains)
        loose = P.skew_blocked(ctx)
        gone = self._others_left(view, explains, loose) if free_slots else []
        if gone:
            note = self._limits_back_for(gone)
        elif self._held:
            note = "; recovery limits kept at the operator's values: another node left during this drain" \
                if free_slots else ""
        else:
            note = self._free_slot_for(P.throttled_replicas(ctx, loose), view, explains) if free_slots else ""
        # Copies moving to or from this node count as held (shards_on). Rebalancing between
        # other nodes does not make terminating this one less safe, so it is not waited for.
        held = view.shards_on(self.node_name)
        if any(r.get("state") != "STARTED" for r in held):  # still moving: ask nothing more yet
            return False, "%d shard copies still on %s (%s)%s" % (
                len(held), self.node_name, ", ".join(P.describe_shard(r) for r in held[:5]), note)
        stuck, kept, other = [], [], []
        started_at = {}  # shard key -> nodes with a started copy
        for r in view.shards:
            if r.get("state") == "STARTED" and r.get("node"):
                started_at.setdefault(shard_key(r), set()).add(r.get("node"))
        for row in held:
            why = self._stuck(row, started_at.get(shard_key(row), set()) - {self.node_name})
            (stuck if why == "version" else kept if why else other).append(row)
        if (stuck or kept) and view.moving:
            return False, "%d shard(s) initializing or relocating; the copies that cannot move may yet move%s" % (
                view.moving, note)
        if other:
            return False, "%d shard copies still on %s (%s)%s" % (
                len(other), self.node_name, ", ".join(P.describe_shard(r) for r in other[:5]), note)
        if loose:
            return False, "%d unassigned shard(s) not explained by the version skew (%s)%s" % (
                len(loose), ", ".join(P.describe_shard(r) for r in loose[:5]), note)
        if self.node_id in view.shutdowns and not stuck:
            status = view.shutdowns[self.node_id].get("status")
            if status not in ("COMPLETE", None):
                return False, "node shutdown status %s" % status
        note = " (%d replica(s) the node_version decider keeps on it)" % len(stuck) if stuck else ""
        if kept:
            note += "; %d copies that no other node takes have a started copy on another node, as Elasticsearch's " \
                "shutdown status counts them (%s): left on it, the cluster is yellow until its replacement joins" % (
                    len(kept), "; ".join(sorted(set(kept_reasons(self._kept_explains)))[:3]))
        return True, "holds no shard%s" % note

    def _others_left(self, view, explains, loose=None):
        """Ids of other nodes that left: data nodes seen earlier in this call and gone now, and nodes whose
        departure left copies unassigned (their explanations' ``node_left [<id>]``; Elasticsearch keeps them
        unassigned for index.unassigned.node_left.delayed_timeout, 1m by default). The version skew's
        unassigned replicas (a node replaced earlier leaves those) do not count."""
        seen = self._data_seen
        present = {nid: n.get("name", nid) for nid, n in view.nodes.items() if is_data(n)}
        self._data_seen = dict(seen, **present)
        out = {"%s (%s)" % (name, nid) for nid, name in seen.items() if nid not in present and nid != self.node_id}
        ctx = P.Context(view, explains=explains)
        for row in (P.skew_blocked(ctx) if loose is None else loose):
            info = (explains.get(shard_key(row)) or {}).get("unassigned_info") or {}
            details = info.get("details") or ""
            if info.get("reason") in ("NODE_LEFT", "NODE_RESTARTING") and details.startswith("node_left ["):
                nid = details[len("node_left ["):].split("]", 1)[0]
                if nid != self.node_id and not any(nid in o for o in out):
                    out.add(nid)
        return sorted(out)

    def _limits_back_for(self, gone):
        """Another node left during the drain: its copies are rebuilt within the operator's recovery limits
        (raised ones would let more recoveries run at once on a cluster already short of a node), so the
        drain's reservation and raises are put back now and not taken again while it lasts (the tag says
        so to the step's later calls)."""
        self.reserved = dict.fromkeys(self.reserved or ("incoming", "outgoing"), 0)
        back = rebalance.hold_limits(self.cluster, self.aws, self.cluster_groups(), self.node_id)
        self.slots_raised_now = False
        self._held = True
        return "; node(s) %s left the cluster during the drain: recovery limits %s the operator's values" % (
            ", ".join(gone), "back to" if back else "kept at")

    def _free_slot_for(self, throttled, view, explains):
        """A replica (of an index created during the drain, typically) waits for a recovery slot
        the drain holds (the drain has more copies to move than the reservation covers): raise the
        limits by one so Elasticsearch allocates it first. Once no replica waits, put them back to
        the reservation: the drain takes raised slots too, and relocations it started above it
        then finish without new ones taking their place, so the next new index finds the run's
        two extra slots available again."""
        if not throttled:
            if self.slots_raised_now is not False:
                rebalance.restore_slots(self.cluster, self.aws, self.cluster_groups(), self.reserved)
                self.slots_raised_now = False
            return ""
        first = throttled[0]
        raised = rebalance.free_a_slot(self.cluster, self.aws, self.cluster_groups(), self.reserved)
        if not raised:
            done = rebalance.cancels_done(self.aws, self.cluster_groups(), self.node_id)
            if done >= rebalance.MAX_CANCELS:
                return "; recovery limits at the run's cap and %d drain relocation(s) already cancelled (at most %d " \
                    "per drain): the replica of %s waits for one of the drain's copies to finish" % (
                        done, rebalance.MAX_CANCELS, P.describe_shard(first))
            cancelled = rebalance.cancel_a_relocation(self.cluster, view, self.node_name,
                                                      explains.get(shard_key(first)) or {})
            if cancelled:
                rebalance.count_cancel(self.cluster, self.aws, self.cluster_groups(), self.node_id)
                self.relocations_cancelled.append(cancelled)
                return "; recovery limits at the run's cap: %s for the throttled replica of %s" % (
                    cancelled, P.describe_shard(first))
            return "; recovery limits already raised as far as the run goes"
        self.slots_raised.append(raised)
        self.slots_raised_now = True
        return "; raised recovery limits to %s for the throttled replica of %s" % (
            raised, P.describe_shard(first))

    def _stuck(self, row, others):
        """Why a started copy on the node counts as drained though it is there: "version" (a replica only
        the version skew keeps here), "elsewhere" (no node takes it and another copy of its shard is
        started on another node: others, the nodes with one), or None (it still has to move)."""
        key = shard_key(row)
        if row.get("prirep") != "r" and not others:
            return None
        try:
            exp = self.cluster.explain(row.get("index"), row.get("shard"), row.get("prirep") == "p",
                                       current_node=self.node_name)
        except EsError:
            return None
        if exp.get("can_move_to_other_node") not in ("no", "NO"):
            return None
        if row.get("prirep") == "r" and P.unassigned_is_version_skew({"prirep": "r"}, exp):
            return "version"
        if others:
            self._kept_explains[key] = exp
            return "elsewhere"
        return None

    def step_drain(self):
        view = self.cluster.view()
        _master, data = self.roles(view)
        if self.node_here(view) is None:
            return False, "node already left", {}
        if not data:
            return False, "holds no data (not a data node)", {}
        changed, _reserved = self._start_drain(view)
        try:
            detail, _ = self._wait_step("drain", self._drained)
        except StepFailed:
            # the drain gave up: what it raised goes back now, not when a rerun unlocks
            rebalance.restore_slots(self.cluster, self.aws, self.cluster_groups())
            raise
        how = self._drain_how()
        if any(self.reserved.values()) or self.slots_raised:
            rebalance.restore_slots(self.cluster, self.aws, self.cluster_groups())
        if any(self.reserved.values()):
            detail += "; recovery limits were incoming +%d, outgoing +%d over the operator's for the drain, " \
                "now back" % (self.reserved["incoming"], self.reserved["outgoing"])
        if self.slots_raised:
            detail += "; raised %d more time(s) for replicas of new indices, each time put back" % (
                len(self.slots_raised))
        if self.relocations_cancelled:
            detail += "; %d relocation(s) cancelled to give such a replica a slot" % len(self.relocations_cancelled)
        return changed, "%s: %s" % (how, detail), {}


def kept_reasons(explains):
    """"decider on node" for each NO an explanation gives, same_shard aside."""
    for exp in explains.values():
        for dec in exp.get("node_allocation_decisions") or []:
            for d in dec.get("deciders") or []:
                if d.get("decision") == "NO" and d.get("decider") != "same_shard":
                    yield d.get("decider")
