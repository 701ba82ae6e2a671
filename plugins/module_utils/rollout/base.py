# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every step and the cluster-level actions share: clients, timeouts, and the verbs
waiting (waiting.py), diagnosing (diagnosing.py) and reconciling (reconciling.py)."""
from __future__ import annotations

import time

from ansible_collections.logstack.elk.plugins.module_utils.rollout.diagnosing import Diagnosing
from ansible_collections.logstack.elk.plugins.module_utils.rollout.reconciling import Reconciling
from ansible_collections.logstack.elk.plugins.module_utils.rollout.step_table import DEFAULT_TIMEOUTS
from ansible_collections.logstack.elk.plugins.module_utils.rollout.waiting import Waiting


class Rollout(Waiting, Diagnosing, Reconciling):
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
