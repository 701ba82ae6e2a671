# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of a wait that lasts: bytes left, rate and ETA per node.

Ansible cannot stream from a module, so a long wait (a drain, a recovery) is cut into bounded
calls (es_replace_node's wait_seconds): a call that runs out of its bound before the step is done
raises StillWaiting, the module returns done=false with the progress measured over the call, and
the role's task loops (until/retries), so the terminal and AWX's job output get one line per call
(callback plugin logstack.elk.progress). The step's own timeout still counts from the first call
(wait_since), so a step never waits longer in pieces than it would in one call.
"""
from __future__ import annotations

import time

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import shard_bytes
from ansible_collections.logstack.elk.plugins.module_utils.units import format_bytes as human_bytes


class StillWaiting(Exception):
    """A bounded wait ran out of its bound before the step's timeout: not a failure, call again."""

    def __init__(self, step, node, detail):
        super().__init__(detail)
        self.step = step
        self.node = node
        self.detail = detail


def bytes_left(cluster, step, node_name):
    """Bytes the step still waits for: a drain, what is on the node; a join or recovery, what the
    active recoveries still have to copy. None when nothing can be measured."""
    try:
        if step == "drain":
            return sum(shard_bytes(row) for row in cluster.view().shards_on(node_name))
        rows = cluster.es.get("/_cat/recovery", params={"format": "json", "bytes": "b", "active_only": "true"})
    except EsError:
        return None
    left = 0
    for row in rows or []:
        try:
            total = int(row.get("bytes_total") or 0)
            done = float(str(row.get("bytes_percent") or "0").rstrip("%")) / 100.0
        except (TypeError, ValueError):
            continue
        left += int(total * (1.0 - done))
    return left


def clock_text(seconds):
    seconds = int(round(seconds))
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60) if seconds >= 3600 else \
        "%d:%02d" % (seconds // 60, seconds % 60)


def measure(before, after, seconds, waited_total=None):
    """{bytes_left, rate_bytes_per_second, eta_seconds} from two readings `seconds` apart."""
    out = {"bytes_left": after, "rate_bytes_per_second": None, "eta_seconds": None}
    if before is not None and after is not None and seconds > 0:
        rate = max(0.0, (before - after) / seconds)
        out["rate_bytes_per_second"] = round(rate, 1)
        if rate > 0:
            out["eta_seconds"] = round(after / rate, 1)
    if waited_total is not None:
        out["waited_seconds"] = round(waited_total, 1)
    return out


def line(node, step, progress, detail):
    """One line for the console: "node-3 (i-0ab) drain: 1.2 GB left, 40.0 MB/s, ETA 0:31 - <detail>"."""
    parts = []
    if progress.get("bytes_left") is not None:
        parts.append("%s left" % human_bytes(progress["bytes_left"]))
    if progress.get("rate_bytes_per_second") is not None:
        parts.append("%s/s" % human_bytes(progress["rate_bytes_per_second"]))
    parts.append("ETA %s" % clock_text(progress["eta_seconds"]) if progress.get("eta_seconds") is not None
                 else "ETA unknown")
    if progress.get("waited_seconds") is not None:
        parts.append("waiting %s" % clock_text(progress["waited_seconds"]))
    return "%s %s: %s - %s" % (node, step, ", ".join(parts), detail)


class Meter:
    """Reads bytes left at the start of a call and again when its bound runs out."""

    def __init__(self, cluster, step, node_name, clock=time.monotonic):
        self.cluster, self.step, self.node_name, self.clock = cluster, step, node_name, clock
        self.t0 = clock()
        self.before = bytes_left(cluster, step, node_name) if step in PROGRESS_STEPS else None

    def report(self, node_label, detail, wait_since=None):
        after = bytes_left(self.cluster, self.step, self.node_name) if self.step in PROGRESS_STEPS else None
        progress = measure(self.before, after, self.clock() - self.t0,
                           time.time() - wait_since if wait_since else None)
        progress.update(node=node_label, step=self.step, detail=detail)
        progress["line"] = line(node_label, self.step, progress, detail)
        return progress


# The steps whose wait moves data: a drain empties the node, the joins and wait_healthy recover copies.
PROGRESS_STEPS = ("drain", "wait_joined", "wait_healthy")
