# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rolling replacement of Elasticsearch nodes on Auto Scaling Groups.

cluster.py    reads the cluster into one snapshot (View) and writes exclusions
predicates.py every safety invariant as a named function returning a refusal
planner.py    which instances are outdated, in which order; preflight
steps.py      the per-node replacement as named idempotent steps
lock.py       the Auto Scaling Group tag lock
"""
