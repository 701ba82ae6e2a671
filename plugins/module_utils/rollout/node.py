# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What happens to one node: the replacement as named, idempotent steps.

Each step first derives from the cluster and AWS whether its effect already
holds (exclusion set, instance terminating, node gone, replacement joined...)
and only acts when it does not, then waits for the effect with a timeout.
A run killed anywhere and started again therefore redoes nothing and
continues where the world is. The steps, their order per strategy and what
each waits for are in step_table.py; the drain step is in draining.py, the
waits, diagnosis and reconcile every step shares in base.py's Rollout.
"""
from __future__ import annotations

import time

from ansible_collections.logstack.elk.plugins.module_utils.aws import AwsError, tag_dict
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout import leftovers
from ansible_collections.logstack.elk.plugins.module_utils.rollout import predicates as P
from ansible_collections.logstack.elk.plugins.module_utils.rollout import scaling
from ansible_collections.logstack.elk.plugins.module_utils.rollout.base import Rollout
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import is_data, is_master_eligible
from ansible_collections.logstack.elk.plugins.module_utils.rollout.diagnosing import StepFailed
from ansible_collections.logstack.elk.plugins.module_utils.rollout.draining import Draining
from ansible_collections.logstack.elk.plugins.module_utils.rollout.lock import now_iso
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import (
    LEAVING, SURGE_TAG, World, cluster_group_names)
from ansible_collections.logstack.elk.plugins.module_utils.rollout.progress import StillWaiting
from ansible_collections.logstack.elk.plugins.module_utils.rollout.step_table import BY_NAME, timeout_key, waiting_for
from ansible_collections.logstack.elk.plugins.module_utils.rollout.waiting import WaitTimeout


class NodeReplacement(Draining, Rollout):
    """The steps of one node, addressed by its (old) instance id."""

    def __init__(self, cluster, aws, opts, instance_id, node_name, node_id, group, lock=None, run_id=None,
                 known_instance_ids=None, wait_bound=None, wait_since=None, **kwargs):
        super().__init__(cluster, aws, opts, **kwargs)
        # A wait returns (StillWaiting) after wait_bound seconds; the step's timeout counts from
        # wait_since, the first of the role's calls for this step (rollout/progress.py).
        self.wait_bound = wait_bound or None
        self.wait_since = wait_since or None
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
        self._kept_explains = {}  # shard key -> explain of a copy no node takes, started elsewhere (draining)
        self._held = False  # another node left during this drain: the operator's recovery limits (draining)
        self._data_seen = {}  # data node id -> name, seen during this call (draining: another node leaving)
        self._group_names = None

    # -- helpers ------------------------------------------------------------
    def label(self):
        return "%s (%s)" % (self.node_name, self.instance_id)

    def node_here(self, view):
        """This node as the cluster lists it, found by its id (or its instance): never by name, which a
        replacement may carry too (EC2 reuses private IPs; the default node name is the host name)."""
        if self.node_id in view.nodes:
            return view.nodes[self.node_id]
        for node in view.nodes.values():
            if self.instance_id and (node.get("attributes") or {}).get(self.opts.node_attribute) == self.instance_id:
                return node
        return None

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

    def continuing(self, view, voting=True):
        """Did a run already start taking this node out? Then its gates were passed. By id; by name
        only for the exclude._name of a run of an earlier version, while this node is here."""
        legacy = self.node_name in view.excluded_names and self.node_here(view) is not None
        return (self.node_id in view.excluded_ids or legacy or self.node_id in view.shutdowns
                or (voting and self.node_id in view.voting_excluded_ids()))

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
        except WaitTimeout as exc:
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
        try:
            _changed, reserved = self._start_drain(view, gate=False)
        except StepFailed as exc:  # a copy with nowhere to go: the node's own drain step says so
            return {"started": "", "timeline": [], "refused": exc.message}
        return {"started": "%s of %s started%s" % (self._drain_how(), self.node_name,
                                                   " (recovery limits %s for it)" % reserved if reserved else ""),
                "timeline": []}

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
        spent = max(0.0, time.time() - self.wait_since) if self.wait_since else 0.0
        bound = timeout - spent if not self.wait_bound else min(self.wait_bound, timeout - spent)
        try:
            return self.wait(max(bound, 0.0), probe)
        except WaitTimeout as exc:
            if spent + bound < timeout:
                raise StillWaiting(step, self.label(), str(exc))
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
        self.aws.put_group_tag(self.group_name, SURGE_TAG, "%s:%d" % (self.instance_id, desired))
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
        if self.node_id not in view.voting_excluded_ids():
            self.gate()
            # A slow reconfiguration (timeout_exception) is waited for below, within the step's timeout.
            self.cluster.add_voting_exclusion(self.node_name, budget=self.timeouts["master"])
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
                    except WaitTimeout as exc:
                        raise self.failure("terminate", self.label(),
                                           "refusing to terminate a node that is not drained (%s)" % exc)
            elif not self.continuing(view):
                self.gate()
        self._within_budget()
        group = self.group()
        before = sorted(i["InstanceId"] for i in group.get("Instances") or [])
        # A surge, of this run or an interrupted one of any strategy, raised the desired capacity for this
        # instance: it goes with it, so no strategy leaves the group one instance larger.
        marker = tag_dict(group.get("Tags")).get(SURGE_TAG)
        decrement = strategy == "surge" or bool(marker and marker.split(":", 1)[0] == self.instance_id)
        self.aws.call("autoscaling", "TerminateInstanceInAutoScalingGroup", InstanceId=self.instance_id,
                      ShouldDecrementDesiredCapacity=decrement)
        return True, "terminated through Auto Scaling (desired capacity %s)" % (
            "decremented" if decrement else "kept: the group launches a replacement"), {
            "terminated_instance_ids": [self.instance_id], "group_instances_before": before}

    def _within_budget(self):
        """Right before a termination: the nodes already out (a failed instance included) plus this one
        stay within max_nodes_out; waits up to the terminate timeout, then refuses naming them."""
        def probe():
            world = World(self.cluster, self.aws, self.opts)
            reason = leftovers.budget_refusal(world, self.instance_id, self.node_name, self.opts.max_nodes_out)
            return reason is None, reason or "within the budget"
        try:
            self.wait(self.timeouts["terminate"], probe)
        except WaitTimeout as exc:
            raise self.failure("terminate", self.label(), "refusing to terminate: terminating %s (nodes_out_budget)"
                               % exc)

    def step_wait_left(self):
        def probe():
            view = self.cluster.view()
            if self.node_here(view) is None:
                return True, "left the cluster"
            held = scaling.held_terminating(self.aws, self.group_name, self.instance_id,
                                            complete=self.opts.complete_lifecycle_actions)
            return False, "%s still in the cluster%s" % (self.node_name, "; " + held if held else "")
        detail, _ = self._wait_step("wait_left", probe)
        # It will not come back: its replicas are allocated now, not after delayed_timeout.
        skipped = leftovers.skip_delay(self.cluster, self.aws, self.cluster_groups(), self.node_id)
        if skipped:
            detail += "; %s=%s on %s (the node will not return), reset once healthy" % (
                leftovers.DELAYED, leftovers.DELAYED_RUN_VALUE, ", ".join(skipped))
        return bool(skipped), detail, {}

    def step_wait_joined(self):
        state = {"pending": set(), "abandoned": set()}

        def probe():
            ok, detail, world = self.settled(groups=[self.group_name], complete=self.opts.complete_launch_actions)
            state["world"] = world
            return ok, detail + self._abandoned_note(world, state)
        detail, _ = self._wait_step("wait_joined", probe)
        world = state["world"]
        new = []
        for nid, iid in world.mapping.items():
            if world.group_of.get(iid) == self.group_name and self.known and iid not in self.known:
                node = world.view.nodes[nid]
                new.append({"instance_id": iid, "node_name": node.get("name"), "node_id": nid,
                            "version": node.get("version"), "image_id": world.instances[iid].get("ImageId"),
                            "zone": zone_of(world.instances[iid])})
        detail += self._zone_note(new)
        extra = {"new_nodes": sorted(new, key=lambda n: n["instance_id"])}
        if state["abandoned"]:
            extra["abandoned_instance_ids"] = sorted(state["abandoned"])
        return False, detail, extra

    def _abandoned_note(self, world, state):
        """An instance seen in Pending:Wait that left the group without going InService was abandoned by
        its launch lifecycle hook (ABANDON at the heartbeat timeout): said, with what Auto Scaling launched
        in its place, which the wait then follows like any instance of the group."""
        group = world.group(self.group_name) or {}
        now = {i["InstanceId"]: i.get("LifecycleState") for i in group.get("Instances") or []}
        state["abandoned"] |= {iid for iid in state["pending"] if iid not in now}
        state["pending"] = (state["pending"] & set(now)) | {i for i, s in now.items() if s == scaling.PENDING_WAIT}
        if not state["abandoned"]:
            return ""
        launched = sorted(i for i in now if self.known and i not in self.known)
        return "; %s abandoned by its launch lifecycle hook (terminated, never InService)%s" % (
            ", ".join(sorted(state["abandoned"])),
            ": Auto Scaling launched %s in its place" % ", ".join(launched) if launched else "")

    def _zone_note(self, new):
        """Auto Scaling may start the replacement in another zone (a zone out of capacity, changed subnets):
        said here; the next drain's placement check (draining.py) then sees the zones as they are."""
        old = self.aws.instances([self.instance_id]) if self.instance_id else []
        before = zone_of(old[0]) if old else None
        moved = [n for n in new if before and n["zone"] and n["zone"] != before]
        if not moved:
            return ""
        return "; replacement %s in %s, not %s like the replaced node: with allocation awareness on the zone, " \
            "shards follow the zones as they are now" % (
                ", ".join("%s (%s)" % (n["node_name"], n["instance_id"]) for n in moved),
                ", ".join(sorted({n["zone"] for n in moved})), before)

    def step_lift(self):
        view = self.cluster.view()
        here = self.node_here(view) is not None
        done = []
        if self.node_id in view.excluded_ids and not here:
            self.cluster.set_excluded_ids([n for n in view.excluded_ids if n != self.node_id])
            done.append("allocation exclusion")
        if self.node_name in view.excluded_names and not here:  # set by a run of an earlier version
            self.cluster.set_excluded_names([n for n in view.excluded_names if n != self.node_name])
            done.append("allocation exclusion by name")
        if self.node_id in view.shutdowns and not here:
            self.cluster.delete_shutdown(self.node_id)
            done.append("shutdown record")
        if self.node_id in view.voting_excluded_ids() and not here and not view.voting_excluded_present():
            self.cluster.clear_voting_exclusions()
            done.append("voting exclusion")
        group = self.group()
        marker = tag_dict(group.get("Tags")).get(SURGE_TAG)
        if marker and marker.split(":", 1)[0] == self.instance_id and self.instance_gone():
            self.aws.delete_group_tag(self.group_name, SURGE_TAG)
            done.append("surge marker")
        if here:
            raise self.failure("lift", self.label(), "the node is still in the cluster; its exclusions stay")
        return bool(done), ("lifted " + ", ".join(done)) if done else "nothing to lift", {}

    def step_wait_healthy(self):
        def probe():
            world = World(self.cluster, self.aws, self.opts)
            return self.health_ok(world.view, world)
        detail, _ = self._wait_step("wait_healthy", probe)
        reset = leftovers.reset_delay(self.cluster, self.aws, self.cluster_groups())
        if reset:
            detail += "; %s reset on %s" % (leftovers.DELAYED, ", ".join(reset))
        return bool(reset), detail, {}

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


def zone_of(instance):
    return (instance.get("Placement") or {}).get("AvailabilityZone")


def start_first(first, node):
    """Start the first planned node's drain now (preflight's start_first) if it is a data node without
    the master role, not under way, and every rule allows it; what was started, or "".
    node: its NodeReplacement."""
    if node.opts.strategy != "drain" or first["master"] or not first["data"] or first["continuing"]:
        return ""
    return (node.take_out_if_allowed() or {}).get("started", "")
