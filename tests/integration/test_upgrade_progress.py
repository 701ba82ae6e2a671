"""Progress while a step waits (issue 16 item 5), under ansible-playbook against the sandbox: each
bounded wait of a drain prints bytes left, rate and ETA of its node while the node still holds
shards; the summary is one line per node with the detail in the report; --check says in words
what a run would reconcile first. The same under ansible-runner: tests/awx/test_runner_operator.py."""
import os
import re

import pytest
import yaml
from upgrade_support import playbook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROGRESS = re.compile(r"^progress: \[sandbox\] (\S+) \((i-\w+)\) drain: ([0-9.]+ [KMG]?B) left, ([0-9.]+ [KMG]?B)/s, "
                      r"ETA (\S+), waiting \S+ - ")


def slow_drain_scenario(path):
    """small.yml with 60 MB replicated indices: drains of a few seconds at the scenario's rate."""
    with open(os.path.join(ROOT, "sandbox", "scenarios", "small.yml")) as fh:
        scenario = yaml.safe_load(fh)
    for index in scenario["indices"]:
        if index["replicas"]:
            index["size"] = "60MB"
    path.write_text(yaml.safe_dump(scenario))
    return str(path)


@pytest.fixture
def sb(sandbox_process, tmp_path):
    return sandbox_process(slow_drain_scenario(tmp_path / "slow-drain.yml"))


def test_a_drain_prints_bytes_left_rate_and_eta_of_its_node_while_it_waits(sb):
    seen = []

    def progress_on_screen(box, out):
        lines = [line for line in out.splitlines() if line.startswith("progress: ")]
        if len(lines) > len(seen):
            match = PROGRESS.match(lines[-1])
            if match:
                held = [r for r in box.es("/_cat/shards?format=json")
                        if (r.get("node") or "").startswith(match.group(1))]
                seen.append((match.group(1), match.group(3), len(held)))
            else:
                seen.append((None, lines[-1], None))
        return False
    run = playbook(sb, "-e", "upgrade_wait_seconds=1", kill_when=progress_on_screen)
    assert run.rc == 0, run.output[-3000:]
    assert seen and all(node for node, _, _ in seen), seen
    # printed while the node still held shards (not after the step), with a measured rate and ETA
    assert [s for s in seen if s[2] > 0], seen
    assert any(PROGRESS.match(line) and not line.split("ETA ")[1].startswith("unknown")
               for line in run.output.splitlines()), run.output[-3000:]
    # the summary: one line per node, the detail in the report
    summary = run.summary()
    assert len(summary) == 3 + 2, summary
    assert all(re.match(r"^node-\w+: \S+ \(i-\w+\) -> \S+ \(i-\w+\), [0-9.]+ min, [0-9.]+ [KMG]?B moved, replaced$",
                        line) for line in summary[:3]), summary
    assert summary[-1].startswith("full detail: ") and summary[-1].endswith(".html (and .json)")
    assert len(run.report()["nodes"]) == 3


def test_check_mode_says_in_words_what_a_run_would_reconcile(sb):
    sb.es("/_cluster/settings", "PUT", {"persistent": {"cluster.routing.allocation.exclude._name": "node-gone"}})
    run = playbook(sb, "--check")
    assert run.rc == 0, run.output[-3000:]
    text = " ".join(run.output.split())
    assert "What a run would reconcile first" in text
    assert "would have removed allocation exclusion of node-gone (node gone)" in text
    assert "would take the lock (no run holds it)" in text
    assert sb.es("/_cluster/settings")["persistent"]  # check mode changed nothing
