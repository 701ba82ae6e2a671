# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run lock kept as a tag on every Auto Scaling Group of the cluster.

The tag lives with the groups it protects, so two operators, or AWX and a
laptop, see the same lock. Its value names the run, when it started, and the
process holding it (host, pid and the pid's start time, so a reused pid is not
mistaken for the holder) plus a heartbeat refreshed by every step.

A lock is taken over without asking only when its holder is provably gone: a
process of this host that no longer exists (a killed ``ansible-playbook``), or a
heartbeat older than ``stale_seconds`` whatever the host. The host name cannot
decide alone: AWX runs every job in a new container with a new host name, so a
rerun of a failed AWX job always comes from "another host". A live run beats at
every module call, and the role bounds each wait (upgrade_wait_seconds) so no
call lasts long: a silent holder is a dead one. The holder also names its AWX
job (``JOB_ID``, which AWX sets in every job's environment) so the refusal and
the takeover note say which job held it. Any other lock refuses, naming the
run id to break it with (``upgrade_break_lock``, an AWX survey answer).
"""
from __future__ import annotations

import os
import secrets
import socket
import time
from datetime import datetime, timezone

from ansible_collections.logstack.elk.plugins.module_utils.aws import decode_tag, encode_tag, tag_dict
from ansible_collections.logstack.elk.plugins.module_utils.rollout import leftovers, rebalance, scaling

LOCK_TAG = "logstack:rollout-lock"


class LockError(Exception):
    def __init__(self, message, holder=None):
        super().__init__(message)
        self.message = message
        self.holder = holder


def now_iso(clock=time.time):
    return datetime.fromtimestamp(clock(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value):
    return decode_tag(value)


def render(holder):
    return encode_tag(holder, ("run", "start", "beat", "host", "pid", "job"))


def job_id(environ=None):
    """The AWX (or ansible-runner) job this process runs in, or None in a shell."""
    environ = os.environ if environ is None else environ
    return environ.get("JOB_ID") or environ.get("AWX_JOB_ID") or None


def age_seconds(iso, clock=time.time):
    try:
        then = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None
    return clock() - then


def proc_stat(pid):
    """(state, ppid, start time) of a process from /proc/<pid>/stat, or None (gone, or not Linux).
    The command name may hold spaces and parentheses: the fields are read after its last ")".
    (The test helpers' kill_run reads process trees with it too.)"""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1]), fields[19]
    except (OSError, IndexError, ValueError):
        return None


def _proc_start(pid):
    stat = proc_stat(pid)
    return stat[2] if stat else None


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def holder_process():
    """"pid:starttime" of the outermost ansible-playbook (or ansible-runner) process above us.

    Ansible runs each task in a forked worker that is also named ansible-playbook and exits
    after the task, so the lock must name the topmost one: it lives as long as the run.
    """
    found = None
    pid = os.getppid()
    for _ in range(16):
        if pid <= 1:
            break
        cmd = _cmdline(pid)
        if "ansible-playbook" in cmd or "ansible-runner" in cmd:
            found = pid
        elif found:
            break
        stat = proc_stat(pid)
        if not stat:
            break
        pid = stat[1]
    return "%d:%s" % (found, _proc_start(found)) if found else None


def process_alive(pid_token):
    """True/False when we can tell on this host, None when we cannot. A zombie is dead."""
    if not pid_token or ":" not in pid_token:
        return None
    pid, start = pid_token.split(":", 1)
    try:
        pid = int(pid)
    except ValueError:
        return None
    stat = proc_stat(pid)
    return stat is not None and stat[2] == start and stat[0] not in ("Z", "X")


class GroupLock:
    def __init__(self, aws, group_names, stale_seconds=3600, clock=time.time, hostname=None):
        self.aws = aws
        self.group_names = list(group_names)
        self.stale_seconds = stale_seconds
        self.clock = clock
        self.hostname = hostname or socket.gethostname()

    def holders(self):
        groups = self.aws.find_groups(names=self.group_names)
        return {g["AutoScalingGroupName"]: parse(tag_dict(g.get("Tags")).get(LOCK_TAG)) for g in groups}

    def _write(self, holder):
        self.aws.put_group_tag(self.group_names, LOCK_TAG, render(holder))

    def describe(self, holder):
        return "run %s started %s by %spid %s on %s (last heartbeat %s)" % (
            holder.get("run"), holder.get("start"), "AWX job %s, " % holder["job"] if holder.get("job") else "",
            (holder.get("pid") or "?").split(":")[0], holder.get("host"), holder.get("beat") or holder.get("start"))

    def verdict(self, holder):
        """(verdict, why): 'dead' (provably gone: its process is gone from this host, or its heartbeat is
        older than stale_seconds, wherever it ran) or 'live'."""
        if holder.get("host") == self.hostname and process_alive(holder.get("pid")) is False:
            return "dead", "that process no longer exists on this host"
        age = age_seconds(holder.get("beat") or holder.get("start"), self.clock)
        if age is not None and age > self.stale_seconds:
            return "dead", "its heartbeat is %ds old, more than upgrade_lock_stale_seconds (%ss)" % (
                age, self.stale_seconds)
        return "live", ""

    def acquire(self, run_id, break_lock=None, settle_seconds=1.0, sleep=time.sleep):
        """Take the lock for run_id. Returns (changed, note)."""
        note = None
        for name, holder in self.holders().items():
            if not holder or holder.get("run") == run_id:
                continue
            verdict, why = self.verdict(holder)
            if break_lock and break_lock == holder.get("run"):
                note = "broke the lock of %s as asked (break_lock)" % self.describe(holder)
            elif verdict == "dead":
                note = ("took over the lock of %s: %s (an interrupted run); its leftovers are reconciled first"
                        % (self.describe(holder), why))
            else:
                raise LockError(
                    "Another rollout holds the lock on %s: %s. Wait for it to finish; if that run is gone (its "
                    "heartbeat is refreshed at every step, so a dead one is taken over once it is older than %ss), "
                    "break it now with -e upgrade_break_lock=%s (in AWX: the survey answer \"Break the lock of "
                    "run\" = %s)." % (name, self.describe(holder), self.stale_seconds, holder.get("run"),
                                        holder.get("run")), holder)
        current = self.holders()
        if all(h.get("run") == run_id for h in current.values()):
            self.heartbeat(run_id)
            return False, note
        stamp = now_iso(self.clock)
        self._write({"run": run_id, "start": stamp, "beat": stamp, "host": self.hostname,
                     "pid": holder_process(), "job": job_id()})
        # Tags are last-writer-wins: re-read after a pause so two runs racing agree on one winner.
        sleep(settle_seconds)
        for name, holder in self.holders().items():
            if holder.get("run") != run_id:
                raise LockError("Another rollout took the lock on %s at the same moment: %s." % (
                    name, self.describe(holder)), holder)
        return True, note

    def check(self, run_id):
        """Raise unless run_id holds the lock on every group (someone may have broken it)."""
        for name, holder in self.holders().items():
            if holder.get("run") != run_id:
                raise LockError("This run (%s) no longer holds the rollout lock on %s (%s): stopping before "
                                "touching anything." % (run_id, name, self.describe(holder) if holder else "no lock"),
                                holder)

    def heartbeat(self, run_id):
        holders = self.holders()
        first = next(iter(holders.values()), {})
        holder = dict(first, run=run_id, beat=now_iso(self.clock), host=self.hostname,
                      pid=holder_process() or first.get("pid"), job=job_id() or first.get("job"))
        holder.setdefault("start", holder["beat"])
        self._write(holder)

    def release(self, run_id=None, force=False):
        """Delete the tag where run_id (or anyone, with force) holds it. Returns the groups released."""
        released = []
        for name, holder in self.holders().items():
            if holder and (force or holder.get("run") == run_id):
                self.aws.delete_group_tag(name, LOCK_TAG)
                released.append(name)
        return released


def finish(cluster, aws, group_names, lock, run_id):
    """Restore the operator's settings (rebalance.restore), then release the lock: a crash in between
    leaves the lock, so the rerun restores. Returns (groups released, what was restored or "")."""
    restored = [rebalance.restore(cluster, aws, group_names) or ""]
    # what else a run (this or an interrupted one) changed: see leftovers.left_changed
    resumed = scaling.resume(aws, group_names)
    if resumed:
        restored.append("Auto Scaling processes resumed: %s" % resumed)
    reset = leftovers.reset_delay(cluster, aws, group_names)
    if reset:
        restored.append("%s reset on %s" % (leftovers.DELAYED, ", ".join(reset)))
    return lock.release(run_id), "; ".join(r for r in restored if r)


def new_run_id():
    return "%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), secrets.token_hex(3))
