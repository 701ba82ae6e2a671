"""Helpers of the rolling-upgrade integration tests: ansible-playbook runs against a background
sandbox (``Sandbox`` and the ``sandbox_process`` fixture of tests/sandbox_plugin.py) that can be
killed at a chosen moment, and the audit's safety invariants.

Every test gets its own sandbox process (its own moto and Elasticsearch ports, its own
state directory), so the tests run in parallel (pytest-xdist) without sharing anything.
"""
import json
import os
import signal
import subprocess
import sys
import time

import yaml

from ansible_collections.logstack.elk.plugins.module_utils.rollout.lock import proc_stat
from tests.sandbox_plugin import ROOT

PLAYBOOK = "playbooks/upgrade-es.yml"
# Ansible names a role's tasks "<role> : <task>" in its output.
TASK = "TASK [logstack.elk.upgrade : "


class Run:
    def __init__(self, rc, output, seconds, killed, report_dir=None):
        self.rc = rc
        self.output = output
        self.seconds = seconds
        self.killed = killed
        self.report_dir = report_dir

    def report(self):
        """The JSON report this run wrote (logstack.elk.es_upgrade_report)."""
        names = sorted(n for n in os.listdir(self.report_dir) if n.endswith(".json"))
        assert len(names) == 1, names
        with open(os.path.join(self.report_dir, names[0])) as handle:
            return json.load(handle)

    def recap(self):
        """{'ok': n, 'changed': n, 'failed': n, ...} of the PLAY RECAP line."""
        for line in self.output.splitlines():
            if line.startswith("sandbox ") and "ok=" in line:
                return {k: int(v) for k, v in (p.split("=") for p in line.split()[2:])}
        return {}

    def summary(self, task="Summary"):
        """The message of the Summary task (or another debug task; the YAML stdout callback prints it as YAML)."""
        lines = self.output.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith(TASK + task + "]"))
        end = next(i for i, line in enumerate(lines) if i > start and line.startswith(("TASK [", "PLAY RECAP")))
        return yaml.safe_load("\n".join(lines[start + 2:end]))["msg"]


def playbook(sb, *args, kill_when=None, sig=signal.SIGKILL, timeout=400, extra_env=None, play=PLAYBOOK,
             inventory="inventories/sandbox"):
    """Run the upgrade playbook (or play) against sb; kill its process group once kill_when(sb, output) is true."""
    env = dict(os.environ, **sb.env)
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"  # the log must show the current task when kill_when looks at it
    env.update(extra_env or {})
    log = os.path.join(sb.state, "playbook-%d.log" % time.monotonic_ns())
    # each run's report in a folder of its own, not in the checkout
    report_dir = os.path.join(sb.state, "reports-%d" % time.monotonic_ns())
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), play, "-i", inventory]
    if play == PLAYBOOK:
        cmd += ["-e", "upgrade_report_dir=%s" % report_dir]
    cmd += list(args)
    start = time.monotonic()
    killed = False
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        while proc.poll() is None:
            if time.monotonic() - start > timeout:
                kill_run(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AssertionError("ansible-playbook did not finish in %ss:\n%s" % (timeout, open(log).read()[-4000:]))
            if kill_when is not None and not killed:
                try:
                    hit = kill_when(sb, open(log).read())
                except Exception:  # the cluster may be between states (503 during an election)
                    hit = False
                if hit:
                    kill_run(proc.pid, sig)
                    killed = True
            time.sleep(0.2)
    with open(log) as handle:
        output = handle.read()
    return Run(proc.returncode, output, time.monotonic() - start, killed, report_dir)


def _descendants(pid):
    children = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        stat = proc_stat(int(entry))
        if stat:
            children.setdefault(stat[1], []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_run(pid, sig):
    """Signal ansible-playbook's process group; SIGKILL also every process under it. Its task workers
    call setsid, so SIGKILL of the group alone leaves the running module alive (still holding the
    rollout lock): a killed run here is the whole run gone, as when its machine or container dies.
    Waits until the killed processes are gone."""
    if sig != signal.SIGKILL:  # a signal ansible handles (SIGTERM, SIGINT): the run stops itself
        os.killpg(pid, sig)
        return
    victims = _descendants(pid)
    os.killpg(pid, sig)
    for victim in victims:
        try:
            os.kill(victim, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any((proc_stat(v) or ("X",))[0] not in ("Z", "X")
                                              for v in victims):
        time.sleep(0.1)


def assert_invariants(audit, complete=True):
    """The safety invariants of docs/design.md, as the sandbox audit measures them."""
    assert audit["docs_lost"] == 0, audit
    assert audit["red_seconds"] == 0, audit
    assert audit["max_nodes_out"] <= 1, audit
    assert audit["min_master_eligible_present"] >= 2, audit
    assert audit["unknown_requests"] == 0, audit
    if complete:
        assert audit["outdated_nodes_left"] == 0, audit
        assert audit["status"] == "green", audit


def assert_only_version_skew_degradation(audit):
    """drain / surge: no wanted copy missing except replicas the node_version decider keeps off older
    nodes, and the catch-up recovery of such a replica once a newer node can take it."""
    reasons = audit["degraded_copy_seconds_by_reason"]
    assert set(reasons) <= {"UNASSIGNED:node_version", "INITIALIZING:after_node_version"}, audit
    assert audit["degraded_seconds_excluding_version_skew"] == 0, audit