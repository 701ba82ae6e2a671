# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What happens to one node: the replacement as named, idempotent steps.

Each step first derives from the cluster and AWS whether its effect already
holds (exclusion set, instance terminating, node gone, replacement joined...)
and only acts when it does not, then waits for the effect with a timeout.
A run killed anywhere and started again therefore redoes nothing and
continues where the world is. ``reconcile`` clears what a crashed run left
behind for nodes that are already gone. The steps, their order per strategy and
what each waits for are in step_table.py.
"""
from __future__ import annotations

import time

from ansible_collections.logstack.elk.plugins.module_utils.aws import AwsError, tag_dict
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout import predicates as P
from ansible_collections.logstack.elk.plugins.module_utils.rollout import rebalance
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import is_data, is_master_eligible, shard_key
from ansible_collections.logstack.elk.plugins.module_utils.rollout.lock import now_iso
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import (
    LEAVING, SURGE_TAG, World, cluster_group_names)
from ansible_collections.logstack.elk.plugins.module_utils.rollout.step_table import (
    BY_NAME, DEFAULT_TIMEOUTS, timeout_key, waiting_for)

class StepFailed(Exception):
    """A step could not complete; ``message`` is the operator's sentence."""

    def __init__(self, message, step=None, node=None, diagnosis=None):
        super().__init__(message)
        self.message = message
        self.step = step
        self.node = node
        self.diagnosis = diagnosis or {}


class WaitTimeout(Exception):
    """A wait ran out of time; the message is the last thing seen."""


_NotYet = WaitTimeout


class Rollout:
    """Shared machinery of the node steps and of reconcile."""

    def __init__(self, cluster, aws, opts, timeouts=None, poll_interval=5.0, drain_method="auto",
                 clock=time.monotonic, sleep=time.sleep, log=None):
        self.cluster = cluster
        self.es = cluster.es
        self.aws = aws
        self.opts = opts
        self.timeouts = dict(DEFAULT_TIMEOUTS, **{k: v for k, v in (timeouts or {}).items() if v is not None})
        self.poll = poll_interval
        self.drain_method = drain_method
        self.clock = clock
        self.sleep = sleep
        self.log = log or (lambda msg: None)

    # -- waiting ----------------------------------------------------------
    def wait(self, timeout, probe):
        """Poll probe() -> (done, detail) until done or timeout; returns (detail, seconds waited).

        A 503 (no master during an election) or a connection error is "not yet", not a failure.
        """
        start = self.clock()
        detail = None
        while True:
            try:
                done, detail = probe()
            except EsError as exc:
                if exc.status not in (None, 502, 503, 504):
                    raise
                done, detail = False, exc.message
            if done:
                return detail, self.clock() - start
            if self.clock() - start >= timeout:
                raise _NotYet(detail)
            self.sleep(self.poll)

    def use_shutdown_api(self):
        if self.drain_method == "exclusion":
            return False
        return self.es.has_shutdown_api()

    def explains(self, view, limit=20):
        out = {}
        for row in view.unassigned():
            key = shard_key(row)
            if key in out or len(out) >= limit:
                continue
            try:
                out[key] = self.cluster.explain(row.get("index"), row.get("shard"), row.get("prirep") == "p")
            except EsError as exc:
                out[key] = {"error": exc.message}
        return out

    def health_ok(self, view, world=None):
        """(ok, detail): green or version-skew yellow, and every expected node present."""
        explains = self.explains(view) if view.status != "green" else {}
        ctx = P.Context(view, explains=explains)
        reason = P.cluster_not_red(ctx) or P.green_or_version_skew_yellow(ctx)
        if reason:
            return False, reason
        if world is not None and world.expected_nodes > len(view.nodes):
            return False, "%d of %d expected nodes are in the cluster" % (len(view.nodes), world.expected_nodes)
        return True, "cluster %s, %d nodes" % (view.status, len(view.nodes))

    def settled(self, groups=None):
        """(ok, detail): every instance the groups keep has joined, no node of a leaving instance remains."""
        world = World(self.cluster, self.aws, self.opts)
        problems = []
        for group in world.groups:
            name = group["AutoScalingGroupName"]
            if groups and name not in groups:
                continue
            kept = [i for i in group.get("Instances") or [] if i.get("LifecycleState") not in LEAVING]
            if len(kept) < group["DesiredCapacity"]:
                problems.append("%s has %d of %d instances" % (name, len(kept), group["DesiredCapacity"]))
        if world.orphans:
            problems.append("instance(s) %s not in the cluster yet" % ", ".join(sorted(world.orphans)))
        if world.unmapped:
            problems.append("node(s) %s of no kept instance still in the cluster" % ", ".join(
                world.view.nodes[n].get("name", n) for n in world.unmapped))
        return (not problems), ("; ".join(problems) or "every instance joined"), world

    # -- diagnosis --------------------------------------------------------
    def diagnose(self):
        """What the cluster looks like and what is left in place, for failure messages."""
        out = {}
        try:
            view = self.cluster.view()
        except EsError as exc:
            return {"error": exc.message}
        out["health"] = view.status
        out["nodes"] = len(view.nodes)
        out["initializing_or_relocating"] = view.moving
        unassigned = []
        for (index, shard), exp in self.explains(view, limit=10).items():
            reasons = []
            for dec in exp.get("node_allocation_decisions") or []:
                for d in dec.get("deciders") or []:
                    if d.get("decision") == "NO":
                        reasons.append("%s on %s: %s" % (d.get("decider"), dec.get("node_name"), d.get("explanation")))
            unassigned.append({"shard": "%s[%s]" % (index, shard),
                               "explanation": exp.get("allocate_explanation") or exp.get("error"),
                               "deciders": reasons[:4]})
        out["unassigned"] = unassigned
        out["allocation_exclusions"] = view.excluded_names
        out["voting_exclusions"] = view.voting_excluded_names()
        out["shutdown_records"] = sorted(view.shutdowns)
        return out

    def left_in_place(self, diag):
        parts = []
        if diag.get("allocation_exclusions"):
            parts.append("allocation exclusion of %s (keeps shards off a node that is being replaced)"
                         % ", ".join(diag["allocation_exclusions"]))
        if diag.get("shutdown_records"):
            parts.append("node shutdown record(s) %s (same reason)" % ", ".join(diag["shutdown_records"]))
        if diag.get("voting_exclusions"):
            parts.append("voting exclusion of %s (keeps it from being elected while it is replaced)"
                         % ", ".join(diag["voting_exclusions"]))
        return parts

    def failure(self, step, node, what):
        diag = self.diagnose()
        unassigned = "; ".join("%s %s" % (u["shard"], " | ".join(u["deciders"][:2]) or u["explanation"] or "")
                               for u in diag.get("unassigned", [])[:5])
        left = self.left_in_place(diag) + ["the rollout lock (so no other run starts on a half-done cluster)"]
        message = ("Node %s, step %s: %s. Cluster is %s with %s node(s)%s. Left in place: %s. No other node was "
                   "touched; fix the cause and rerun the playbook to continue from here." % (
                       node, step, what, diag.get("health", "unreachable"), diag.get("nodes", "?"),
                       (", unassigned: " + unassigned) if unassigned else "", "; ".join(left)))
        return StepFailed(message, step=step, node=node, diagnosis=diag)

    # -- reconcile --------------------------------------------------------
    def reconcile(self, check_mode=False, settle=True):
        """Clear leftovers of nodes that are gone; wait for a half-done replacement to settle."""
        actions = []
        view = self.cluster.view()
        world = World(self.cluster, self.aws, self.opts)
        present = {n.get("name") for n in view.nodes.values()}
        stale = [n for n in view.excluded_names if n not in present]
        if stale:
            actions.append("removed allocation exclusion of %s (node gone)" % ", ".join(stale))
            if not check_mode:
                self.cluster.set_excluded_names([n for n in view.excluded_names if n in present])
        for node_id in sorted(view.shutdowns):
            if node_id not in view.nodes:
                actions.append("deleted the shutdown record of departed node %s" % node_id)
                if not check_mode:
                    self.cluster.delete_shutdown(node_id)
        voting = view.voting_excluded_names()
        if voting and not any(n in present for n in voting):
            actions.append("cleared voting exclusions of departed node(s) %s" % ", ".join(voting))
            if not check_mode:
                self.cluster.clear_voting_exclusions()
        for group in world.groups:
            iid, _before = world.surge_of(group)
            if iid and world.lifecycle.get(iid) in (None,) + LEAVING:
                actions.append("removed the surge marker of %s (instance %s gone)" % (
                    group["AutoScalingGroupName"], iid))
                if not check_mode:
                    self.aws.call("autoscaling", "DeleteTags", Tags=[{
                        "ResourceId": group["AutoScalingGroupName"], "ResourceType": "auto-scaling-group",
                        "Key": SURGE_TAG}])
        if check_mode or not (settle or actions):
            return actions, None
        try:
            detail, waited = self.wait(self.timeouts["join"], lambda: self.settled()[:2])
            if waited > 0:
                actions.append("waited %.0fs for a replacement of an earlier run to join" % waited)
            detail, waited = self.wait(self.timeouts["health"], lambda: self.health_ok(self.cluster.view()))
            if waited > 0:
                actions.append("waited %.0fs for the cluster to recover after an earlier run" % waited)
        except _NotYet as exc:
            raise self.failure("reconcile", "-", "the cluster did not settle within its timeout (%s)" % exc)
        return actions, detail


class NodeReplacement(Rollout):
    """The steps of one node, addressed by its (old) instance id."""

    def __init__(self, cluster, aws, opts, instance_id, node_name, node_id, group, lock=None, run_id=None,
                 known_instance_ids=None, **kwargs):
        super().__init__(cluster, aws, opts, **kwargs)
        self.instance_id = instance_id
        self.node_name = node_name
        self.node_id = node_id
        self.group_name = group
        self.lock = lock
        self.run_id = run_id
        self.known = set(known_instance_ids or [])
        self.master = None
        self.data = None
        self._beaten = False
        self.slots_raised = []  # recovery limits raised during this drain, for the step's detail
        # raised and not yet put back; None: not known yet (a killed run may have left them raised)
        self.slots_raised_now = None
        self.relocations_cancelled = []  # at the cap, for a replica still throttled
        self.reserved = {}  # recovery slots reserved for this drain above the operator's (rebalance.drain_slots)
        self._group_names = None

    # -- helpers ------------------------------------------------------------
    def label(self):
        return "%s (%s)" % (self.node_name, self.instance_id)

    def node_here(self, view):
        if self.node_id in view.nodes:
            return view.nodes[self.node_id]
        return view.node_by_name(self.node_name)[1]

    def group(self):
        return self.aws.find_groups(names=[self.group_name])[0]

    def cluster_groups(self):
        """The cluster's group names (where the run's tags live), read once per call."""
        if self._group_names is None:
            self._group_names = cluster_group_names(self.aws, self.opts)
        return self._group_names

    def instance_state(self):
        """(in_group, lifecycle, ec2 state)."""
        group = self.group()
        for inst in group.get("Instances") or []:
            if inst["InstanceId"] == self.instance_id:
                ec2 = self.aws.instances([self.instance_id])
                return True, inst.get("LifecycleState"), (ec2[0]["State"]["Name"] if ec2 else None)
        ec2 = self.aws.instances([self.instance_id]) if self.instance_id else []
        return False, None, (ec2[0]["State"]["Name"] if ec2 else None)

    def instance_gone(self):
        in_group, lifecycle, state = self.instance_state()
        return (not in_group) or lifecycle in LEAVING or state in ("shutting-down", "terminated", "stopping",
                                                                  "stopped")

    def roles(self, view):
        node = self.node_here(view)
        if node is not None:
            self.master = is_master_eligible(node)
            self.data = is_data(node)
        return self.master, self.data

    def continuing(self, view):
        """Did a run already start taking this node out? Then its gates were passed."""
        return (self.node_name in view.excluded_names or self.node_id in view.shutdowns
                or self.node_name in view.voting_excluded_names())

    def _refusals(self):
        """The TAKE_OUT rules that refuse this node now, re-planned from the world."""
        world = World(self.cluster, self.aws, self.opts)
        plan = world.candidates()
        cand = next((c for c in plan if c["instance_id"] == self.instance_id), None)
        if cand is None:
            raise StepFailed("Node %s is no longer outdated or no longer in the cluster: nothing to take out."
                             % self.label())
        explains = self.explains(world.view) if world.view.status != "green" else {}
        ctx = world.context(candidate=cand, remaining=plan, explains=explains)
        return P.refusals(P.TAKE_OUT, ctx)

    def gate(self):
        """Wait until every TAKE_OUT rule holds for this node."""
        def probe():
            refused = self._refusals()
            return (not refused), "; ".join(refused)
        try:
            return self.wait(self.timeouts["gate"], probe)
        except _NotYet as exc:
            raise self.failure("gate", self.label(), "the safety rules still refuse to take it out after %ss: %s"
                               % (self.timeouts["gate"], exc))

    def take_out_if_allowed(self):
        """Start taking this node out now, without waiting, if every TAKE_OUT rule allows it
        (strategy drain): the call that just replaced the previous node hands over, so the node's
        own steps find it started and continue. A data node's drain is started; a master-eligible
        node's prepare and terminate steps are run (a master holds no data, so its boot is all its
        replacement takes, and it starts here instead of after Ansible starts the next task).
        Returns {"started": what was done, "timeline": entries of the steps run}, or None."""
        if self.opts.strategy != "drain":
            return None
        view = self.cluster.view()
        master, data = self.roles(view)
        if self.node_here(view) is None or self.continuing(view):
            return None
        voting = master and self.es.has_voting_exclusions()
        if not voting and not data:
            return None
        try:
            if self._refusals():
                return None
        except StepFailed:
            return None  # no longer outdated: its own task says so
        if voting and not data:
            timeline = []
            try:
                for step in ("prepare", "terminate"):
                    timeline.append(self.run(step))
            except StepFailed as exc:  # its own call meets the same and fails with the diagnosis
                return {"started": "%s, then stopped (%s)" % (
                    "; ".join(e["detail"] for e in timeline) or "nothing", exc.message), "timeline": timeline}
            return {"started": "voting configuration exclusion of %s took effect; %s %s" % (
                self.node_name, self.node_name, timeline[-1]["detail"]), "timeline": timeline}
        if voting:
            self.cluster.add_voting_exclusion(self.node_name)
            return {"started": "voting configuration exclusion of %s added" % self.node_name, "timeline": []}
        _changed, reserved = self._start_drain(view, gate=False)
        return {"started": "%s of %s started%s" % (self._drain_how(), self.node_name,
                                                   " (recovery limits %s for it)" % reserved if reserved else ""),
                "timeline": []}

    def _exclude(self):
        if self.use_shutdown_api():
            self.cluster.put_shutdown(self.node_id, "logstack.elk rolling replacement run %s" % self.run_id)
        else:
            view = self.cluster.view()
            self.cluster.set_excluded_names(list(view.excluded_names) + [self.node_name])

    def _start_drain(self, view, gate=True):
        """Reserve the drain's recovery slots, then exclude the node unless a crashed run did:
        (changed, what was reserved or None). gate=False: the caller checked the rules already."""
        excluded = self.node_name in view.excluded_names or self.node_id in view.shutdowns
        if gate and not excluded and not self.continuing(view):
            self.gate()
        # Slots for the drain's copies on top of the operator's, before it starts: a replica of an
        # index created meanwhile then finds a slot at once (see rebalance).
        self.reserved = rebalance.drain_slots(view, self.node_name)
        reserved = rebalance.reserve_slots(self.cluster, self.aws, self.cluster_groups(), self.reserved)
        if reserved:
            self.log("%s: recovery limits %s for the drain" % (self.label(), reserved))
        if not excluded:
            self._exclude()
        return not excluded or bool(reserved), reserved

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
        note = self._free_slot_for(P.throttled_replicas(ctx, loose), view, explains) if free_slots else ""
        # Copies moving to or from this node count as held (shards_on). Rebalancing between
        # other nodes does not make terminating this one less safe, so it is not waited for.
        held = view.shards_on(self.node_name)
        stuck, other = [], []
        for row in held:
            if row.get("prirep") == "r" and row.get("state") == "STARTED" and self._stuck_replica(row):
                stuck.append(row)
            else:
                other.append(row)
        if stuck and view.moving:
            return False, "%d shard(s) initializing or relocating; the version-stuck replicas may yet move%s" % (
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
        return True, "holds no shard%s" % note

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
            cancelled = rebalance.cancel_a_relocation(self.cluster, view, self.node_name,
                                                      explains.get(shard_key(first)) or {})
            if cancelled:
                self.relocations_cancelled.append(cancelled)
                return "; recovery limits at the run's cap: %s for the throttled replica of %s" % (
                    cancelled, P.describe_shard(first))
            return "; recovery limits already raised as far as the run goes"
        self.slots_raised.append(raised)
        self.slots_raised_now = True
        return "; raised recovery limits to %s for the throttled replica of %s" % (
            raised, P.describe_shard(first))

    def _stuck_replica(self, row):
        try:
            exp = self.cluster.explain(row.get("index"), row.get("shard"), False, current_node=self.node_name)
        except EsError:
            return False
        if exp.get("can_move_to_other_node") not in ("no", "NO"):
            return False
        return P.unassigned_is_version_skew({"prirep": "r"}, exp)

    # -- steps --------------------------------------------------------------
    def run(self, step):
        if step not in BY_NAME:
            raise StepFailed("Unknown step %s." % step)
        if self.lock is not None and self.run_id:
            self.lock.check(self.run_id)
            # One heartbeat per module call is enough to tell a live run from a stale lock.
            if not self._beaten:
                self.lock.heartbeat(self.run_id)
                self._beaten = True
        started = now_iso()
        t0 = self.clock()
        changed, detail, extra = getattr(self, "step_" + step)()
        entry = {"step": step, "node": self.node_name, "instance_id": self.instance_id, "started": started,
                 "seconds": round(self.clock() - t0, 1), "changed": changed, "detail": detail}
        entry.update(extra or {})
        return entry

    def _wait_step(self, step, probe):
        timeout = self.timeouts[timeout_key(step)]
        try:
            return self.wait(timeout, probe)
        except _NotYet as exc:
            raise self.failure(step, self.label(), "gave up after %ss waiting for %s (last seen: %s)" % (
                timeout, waiting_for(step), exc))

    def step_surge(self):
        group = self.group()
        marker = tag_dict(group.get("Tags")).get(SURGE_TAG)
        if marker and marker.split(":", 1)[0] == self.instance_id:
            return False, "desired capacity already raised for this node (%s)" % marker, {}
        if marker:
            raise self.failure("surge", self.label(), "group %s carries the surge marker of another instance (%s)"
                               % (self.group_name, marker))
        if self.instance_gone():
            return False, "instance already gone", {}
        desired, maximum = group["DesiredCapacity"], group["MaxSize"]
        if desired + 1 > maximum:
            raise StepFailed("Node %s, step surge: group %s is at its maximum size (%d): strategy surge needs one "
                             "more instance; raise MaxSize or use strategy drain. Nothing was changed."
                             % (self.label(), self.group_name, maximum), step="surge", node=self.label())
        self.gate()
        # The marker first: a crash between the two calls is then seen and finished by the rerun.
        self.aws.call("autoscaling", "CreateOrUpdateTags", Tags=[{
            "ResourceId": self.group_name, "ResourceType": "auto-scaling-group", "Key": SURGE_TAG,
            "Value": "%s:%d" % (self.instance_id, desired), "PropagateAtLaunch": False}])
        self.aws.call("autoscaling", "SetDesiredCapacity", AutoScalingGroupName=self.group_name,
                      DesiredCapacity=desired + 1, HonorCooldown=False)
        return True, "desired capacity of %s %d -> %d" % (self.group_name, desired, desired + 1), {
            "group_instances_before": sorted(i["InstanceId"] for i in group.get("Instances") or [])}

    def step_prepare(self):
        view = self.cluster.view()
        master, _data = self.roles(view)
        if self.node_here(view) is None:
            return False, "node already left", {}
        if not master:
            return False, "not master-eligible", {}
        if not self.es.has_voting_exclusions():
            return False, "no voting configuration exclusions on this version", {}
        changed = False
        if self.node_name not in view.voting_excluded_names():
            self.gate()
            self.cluster.add_voting_exclusion(self.node_name)
            changed = True

        def probe():
            v = self.cluster.view()
            if self.node_here(v) is None:
                return True, "node already left"
            if v.master_id in (None, self.node_id):
                return False, "%s is still (or no node is) the elected master" % self.node_name
            if self.node_id in v.voting_config:
                return False, "%s is still in the voting configuration" % self.node_name
            return True, "out of the voting configuration; elected master is %s" % (
                v.nodes.get(v.master_id, {}).get("name", v.master_id))
        detail, _ = self._wait_step("prepare", probe)
        return changed, detail, {}

    def step_drain(self):
        view = self.cluster.view()
        _master, data = self.roles(view)
        if self.node_here(view) is None:
            return False, "node already left", {}
        if not data:
            return False, "holds no data (not a data node)", {}
        changed, _reserved = self._start_drain(view)
        detail, _ = self._wait_step("drain", self._drained)
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

    def step_terminate(self):
        if self.instance_gone():
            return False, "instance already terminating or terminated", {}
        strategy = self.opts.strategy
        view = self.cluster.view()
        if self.node_here(view) is not None:
            if strategy in ("drain", "surge"):
                # A master-only node holds nothing to drain. For a data node, an index created since
                # the drain step ended may have a replica unassigned for a moment: wait, then refuse.
                if self.roles(view)[1]:
                    try:
                        self.wait(self.timeouts["terminate"], lambda: self._drained(free_slots=False))
                    except _NotYet as exc:
                        raise self.failure("terminate", self.label(),
                                           "refusing to terminate a node that is not drained (%s)" % exc)
            elif not self.continuing(view):
                self.gate()
        group = self.group()
        before = sorted(i["InstanceId"] for i in group.get("Instances") or [])
        decrement = strategy == "surge"
        self.aws.call("autoscaling", "TerminateInstanceInAutoScalingGroup", InstanceId=self.instance_id,
                      ShouldDecrementDesiredCapacity=decrement)
        return True, "terminated through Auto Scaling (desired capacity %s)" % (
            "decremented" if decrement else "kept: the group launches a replacement"), {
            "terminated_instance_ids": [self.instance_id], "group_instances_before": before}

    def step_wait_left(self):
        def probe():
            view = self.cluster.view()
            if self.node_here(view) is None:
                return True, "left the cluster"
            return False, "%s still in the cluster" % self.node_name
        detail, _ = self._wait_step("wait_left", probe)
        return False, detail, {}

    def step_wait_joined(self):
        state = {}

        def probe():
            ok, detail, world = self.settled(groups=[self.group_name])
            state["world"] = world
            return ok, detail
        detail, _ = self._wait_step("wait_joined", probe)
        world = state["world"]
        new = []
        for nid, iid in world.mapping.items():
            if world.group_of.get(iid) == self.group_name and self.known and iid not in self.known:
                node = world.view.nodes[nid]
                new.append({"instance_id": iid, "node_name": node.get("name"), "node_id": nid,
                            "version": node.get("version"), "image_id": world.instances[iid].get("ImageId")})
        return False, detail, {"new_nodes": sorted(new, key=lambda n: n["instance_id"])}

    def step_lift(self):
        view = self.cluster.view()
        here = self.node_here(view) is not None
        done = []
        if self.node_name in view.excluded_names and not here:
            self.cluster.set_excluded_names([n for n in view.excluded_names if n != self.node_name])
            done.append("allocation exclusion")
        if self.node_id in view.shutdowns and not here:
            self.cluster.delete_shutdown(self.node_id)
            done.append("shutdown record")
        voting = view.voting_excluded_names()
        if self.node_name in voting and not here:
            present = {n.get("name") for n in view.nodes.values()}
            if not any(n in present for n in voting):
                self.cluster.clear_voting_exclusions()
                done.append("voting exclusion")
        group = self.group()
        marker = tag_dict(group.get("Tags")).get(SURGE_TAG)
        if marker and marker.split(":", 1)[0] == self.instance_id and self.instance_gone():
            self.aws.call("autoscaling", "DeleteTags", Tags=[{
                "ResourceId": self.group_name, "ResourceType": "auto-scaling-group", "Key": SURGE_TAG}])
            done.append("surge marker")
        if here:
            raise self.failure("lift", self.label(), "the node is still in the cluster; its exclusions stay")
        return bool(done), ("lifted " + ", ".join(done)) if done else "nothing to lift", {}

    def step_wait_healthy(self):
        def probe():
            world = World(self.cluster, self.aws, self.opts)
            return self.health_ok(world.view, world)
        detail, _ = self._wait_step("wait_healthy", probe)
        return False, detail, {}

    def step_hand_over(self):
        """This node is the next one of the plan: take it out at once if the rules allow (see
        take_out_if_allowed). The steps run so follow this entry in the timeline (``then``)."""
        try:
            handed = self.take_out_if_allowed() or {}
        except (EsError, AwsError) as exc:  # the node's own steps meet it and say so
            handed = {"started": "not started (%s)" % exc.message}
        started = handed.get("started", "")
        return bool(started), started or "nothing started (a rule refuses, or nothing to start)", {
            "started": started, "then": handed.get("timeline", [])}
