"""See the plan before anything moves (issue 16 item 4): the plan (each node, version and AMI before
and after, bytes to move, estimated time, the rules checked) is printed before the first change, and
upgrade_confirm waits for a typed yes in a shell (a pseudo-terminal here, as an operator's). Without a
terminal (AWX) it needs upgrade_confirmed, the survey answer: tests/awx/test_runner_operator.py."""
import os
import re
import sys

import pexpect
import pytest
from upgrade_support import PLAYBOOK, ROOT, playbook

from tests.sandbox_plugin import Sandbox


@pytest.fixture(scope="module")
def sb(tmp_path_factory):
    box = Sandbox("small.yml", tmp_path_factory.mktemp("confirm"))
    yield box
    box.down()


def untouched(sb, locked=False):
    """Nothing changed; while the operator reads the plan the run holds its lock (bookkeeping, so no
    other run starts on what the plan shows) and nothing else."""
    held = [t for g in sb.groups() for t in g.get("Tags", []) if t["Key"] == "logstack:rollout-lock"]
    assert bool(held) == locked, held
    assert sb.es("/_cluster/settings")["persistent"] == {}
    assert sb.exclusions() == ([], [], [])
    assert sb.audit()["nodes_replaced"] == 0


def shell(sb, *args):
    env = dict(os.environ, **sb.env)
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    cmd = [PLAYBOOK, "-i", "inventories/sandbox", "-e", "upgrade_report_dir=%s" % os.path.join(sb.state, "reports")]
    return pexpect.spawn(os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), cmd + list(args),
                         cwd=ROOT, env=env, encoding="utf-8", timeout=300, dimensions=(50, 250))


def test_without_a_terminal_the_run_stops_after_the_plan_and_changes_nothing(sb):
    run = playbook(sb, "-e", "upgrade_confirm=true")
    assert run.rc != 0
    text = " ".join(run.output.split())
    assert text.index("Show the plan") < text.index("needs a confirmation of the plan above")
    assert 'the survey answer "Confirm the plan" = true (upgrade_confirmed); nothing was changed' in text
    untouched(sb)


def test_the_plan_is_printed_before_the_prompt_and_no_stops_the_run(sb):
    child = shell(sb, "-e", "upgrade_confirm=true")
    child.expect(r"Type yes to replace the 3 node\(s\) of sandbox above")
    before = child.before
    # the plan: each node with version and AMI before and after, bytes to move, estimate; the rules
    rows = re.findall(r"- '(\d) \| (node-\w+) \(i-\w+\) \| (\S+) (ami-\w+) -> (\S+) (ami-\w+) \| ([0-9.]+ \w+) to "
                      r"move, ~([0-9.]+) s", " ".join(before.split()))
    assert [r[0] for r in rows] == ["1", "2", "3"], before[-3000:]
    assert all(r[2] != r[4] and r[3] != r[5] for r in rows), rows
    assert "rules checked: cluster_not_red, nodes_mapped" in " ".join(before.split())
    untouched(sb, locked=True)  # nothing moved while the operator reads
    child.sendline("no")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus != 0
    assert "got no:" in " ".join(child.before.split())
    untouched(sb)


def test_yes_typed_at_the_prompt_runs_the_upgrade(sb):
    child = shell(sb, "-e", "upgrade_confirm=true")
    child.expect(r"Type yes to replace the 3 node\(s\) of sandbox above")
    untouched(sb, locked=True)
    child.sendline("yes")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before[-3000:]
    assert sb.audit()["nodes_replaced"] == 3
