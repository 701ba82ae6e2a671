# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Waiting: poll a probe until it holds or its timeout runs out; the two things every step ends
up waiting for (a healthy cluster, every instance of the groups joined)."""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout import predicates as P
from ansible_collections.logstack.elk.plugins.module_utils.rollout import scaling
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import LEAVING, World


class WaitTimeout(Exception):
    """A wait ran out of time; the message is the last thing seen."""


class Waiting:
    """Mixin of Rollout (rollout/base.py): needs clock, sleep, poll, cluster, aws, opts, explains."""

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
                raise WaitTimeout(detail)
            self.sleep(self.poll)

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

    def settled(self, groups=None, complete=False):
        """(ok, detail, world): every instance the groups keep has joined and is out of a launch lifecycle
        hook's Pending:Wait, no node of a leaving instance remains. complete: complete the launch action of
        an instance whose node joined (upgrade_complete_launch_lifecycle_actions; steps only, never a check)."""
        world = World(self.cluster, self.aws, self.opts)
        problems = []
        joined = set(world.mapping.values())
        for group in world.groups:
            name = group["AutoScalingGroupName"]
            if groups and name not in groups:
                continue
            kept = [i for i in group.get("Instances") or [] if i.get("LifecycleState") not in LEAVING]
            if len(kept) < group["DesiredCapacity"]:
                problems.append("%s has %d of %d instances" % (name, len(kept), group["DesiredCapacity"]))
            problems.extend(scaling.held_launching(self.aws, group, joined, complete=complete))
        if world.orphans:
            problems.append("instance(s) %s not in the cluster yet" % ", ".join(sorted(world.orphans)))
        if world.unmapped:
            problems.append("node(s) %s of no kept instance still in the cluster" % ", ".join(
                world.view.nodes[n].get("name", n) for n in world.unmapped))
        return (not problems), ("; ".join(problems) or "every instance joined"), world
