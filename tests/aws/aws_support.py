"""What the moto-backed tests of tests/aws share besides their fixtures (conftest.py): paths and the
parsed result of a playbook run. A module of its own so a test imports it by a name no other
test folder's conftest shadows."""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "eu-west-1"
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


class PlaybookRun:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        self.stats = {}
        self.failures = []
        self.changed_tasks = []
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            return
        self.stats = data.get("stats", {})
        for play in data.get("plays", []):
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    if result.get("failed"):
                        self.failures.append(result.get("msg", ""))
                    if result.get("changed"):
                        self.changed_tasks.append(task["task"]["name"])

    @property
    def changed(self):
        return sum(host.get("changed", 0) for host in self.stats.values())
