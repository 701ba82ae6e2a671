# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifying: the final strict check of a run (es_rolling_upgrade_info action verify)."""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.rollout import leftovers
from ansible_collections.logstack.elk.plugins.module_utils.rollout.waiting import WaitTimeout


def verify(rollout):
    """Problems left (empty: none): green within the health timeout, nothing left excluded, nothing
    outdated, every instance joined."""
    problems = []
    cluster = rollout.cluster

    def green():
        view = cluster.view()
        return view.status == "green" and not view.moving, "cluster is %s" % view.status
    try:
        rollout.wait(rollout.timeouts["health"], green)
    except WaitTimeout as exc:
        problems.append("not green after %ss (%s)" % (rollout.timeouts["health"], exc))
    ok, detail, world = rollout.settled()
    if not ok:
        problems.append(detail)
    view = world.view
    if view.excluded_names:
        problems.append("allocation exclusions left: %s" % ", ".join(view.excluded_names))
    if view.excluded_ids:
        problems.append("allocation exclusions by node id left: %s" % ", ".join(view.excluded_ids))
    if view.voting_exclusions:
        problems.append("voting exclusions left: %s" % ", ".join(view.voting_excluded_names()))
    if view.shutdowns:
        problems.append("node shutdown records left: %s" % ", ".join(sorted(view.shutdowns)))
    others = leftovers.operator_allocation_settings(cluster.settings(), own_names=view.excluded_names)
    if others:
        problems.append("allocation settings left: %s" % "; ".join(others))
    outdated = world.candidates()
    if outdated:
        problems.append("outdated nodes left: %s" % ", ".join(c["node_name"] for c in outdated))
    return problems
