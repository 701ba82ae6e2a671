# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconciling: clear what a crashed run left for nodes that are gone (exclusions, shutdown
records, voting exclusions, surge markers) and wait for a half-done replacement to settle."""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import LEAVING, SURGE_TAG, World
from ansible_collections.logstack.elk.plugins.module_utils.rollout.waiting import WaitTimeout


class Reconciling:
    """Mixin of Rollout (rollout/base.py)."""

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
        gone = [i for i in view.excluded_ids if i not in view.nodes]
        if gone:
            actions.append("removed allocation exclusion of departed node id(s) %s" % ", ".join(gone))
            if not check_mode:
                self.cluster.set_excluded_ids([i for i in view.excluded_ids if i in view.nodes])
        for node_id in sorted(view.shutdowns):
            if node_id not in view.nodes:
                actions.append("deleted the shutdown record of departed node %s" % node_id)
                if not check_mode:
                    self.cluster.delete_shutdown(node_id)
        voting = view.voting_excluded_names()
        if voting and not view.voting_excluded_present():
            actions.append("cleared voting exclusions of departed node(s) %s" % ", ".join(voting))
            if not check_mode:
                self.cluster.clear_voting_exclusions()
        for group in world.groups:
            iid, _before = world.surge_of(group)
            if iid and world.lifecycle.get(iid) in (None,) + LEAVING:
                actions.append("removed the surge marker of %s (instance %s gone)" % (
                    group["AutoScalingGroupName"], iid))
                if not check_mode:
                    self.aws.delete_group_tag(group["AutoScalingGroupName"], SURGE_TAG)
        if check_mode or not (settle or actions):
            return actions, None
        try:
            detail, waited = self.wait(self.timeouts["join"], lambda: self.settled(
                complete=self.opts.complete_launch_actions)[:2])
            if waited > 0:
                actions.append("waited %.0fs for a replacement of an earlier run to join" % waited)
            detail, waited = self.wait(self.timeouts["health"], lambda: self.health_ok(self.cluster.view()))
            if waited > 0:
                actions.append("waited %.0fs for the cluster to recover after an earlier run" % waited)
        except WaitTimeout as exc:
            raise self.failure("reconcile", "-", "the cluster did not settle within its timeout (%s)" % exc)
        return actions, detail
