# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling replacement of Elasticsearch nodes on Auto Scaling Groups (docs/design.md).

step_table.py  the steps of one node: what each starts, waits for, its timeout; order per strategy
node.py        the node's steps (NodeReplacement); draining.py the drain step
base.py        Rollout: what every verb shares; waiting.py, diagnosing.py, reconciling.py
verifying.py   the final strict check
cluster.py     reads the cluster into one snapshot (View) and writes exclusions
predicates.py  every safety invariant as a named function returning a refusal
planner.py     which instances are outdated, in which order; preflight
rebalance.py   recovery slots of a drain, the rebalancing pause
lock.py        the Auto Scaling Group tag lock
spec.py        the modules' shared options and client set-up
"""
