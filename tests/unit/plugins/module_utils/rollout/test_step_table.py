"""The step table (rollout/step_table.py) is the one list of steps: the module's choices, the docs'
list and the role's task order follow it."""
import os

import jinja2
import yaml

from ansible_collections.logstack.elk.plugins.module_utils.rollout import step_table as T
from ansible_collections.logstack.elk.plugins.module_utils.rollout.node import NodeReplacement
from ansible_collections.logstack.elk.plugins.modules import es_replace_node

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 5))
NODE_STEPS = os.path.join(ROOT, "roles", "upgrade", "tasks", "node-steps.yml")


def steps_the_tasks_run(strategy, next_node=True):
    """The `step` of every task of node-steps.yml whose `when` holds for the strategy, in file order."""
    env = jinja2.Environment()
    variables = {"upgrade_preflight": {"steps": list(T.STRATEGIES[strategy])},
                 "upgrade_next_node": {"instance_id": "i-2"} if next_node else {}}
    ran = []
    for task in yaml.safe_load(open(NODE_STEPS)):
        args = task.get("logstack.elk.es_replace_node")
        if args is None:
            continue
        assert task["name"].startswith("Step %s: " % args["step"]), task["name"]
        holds = env.compile_expression(task.get("when", "true"))(**variables)
        assert isinstance(holds, bool), task["when"]  # ansible-core 2.19 refuses any other conditional
        if holds:
            ran.append(args["step"])
    return ran


def test_role_tasks_follow_the_table_for_every_strategy():
    for strategy in T.STRATEGIES:
        assert steps_the_tasks_run(strategy) == list(T.STRATEGIES[strategy]), strategy


def test_hand_over_task_runs_only_when_there_is_a_next_node():
    assert steps_the_tasks_run("drain", next_node=False) == T.steps_of("drain", with_next=False)


def test_docs_list_is_the_table():
    doc = open(os.path.join(ROOT, "docs", "upgrade.md")).read()
    start = doc.index("\n", doc.index("<!-- steps: generated from")) + 1
    assert doc[start:doc.index("\n<!-- end of steps -->")] == T.markdown()


def test_module_choices_and_description_are_the_table():
    doc = yaml.safe_load(es_replace_node.DOCUMENTATION)
    assert doc["options"]["step"]["choices"] == ["all"] + T.NAMES
    described = " ".join(d for d in doc["description"] if d.startswith("Steps per"))
    for strategy, steps in T.STRATEGIES.items():
        assert "V(%s): %s." % (strategy, ", ".join(steps)) in described, strategy


def test_every_step_has_its_method_and_every_wait_a_timeout():
    for step in T.TABLE:
        assert callable(getattr(NodeReplacement, "step_" + step.name, None)), step.name
        assert step.timeout is None or step.timeout in T.DEFAULT_TIMEOUTS, step
    for steps in T.STRATEGIES.values():
        assert set(steps) <= set(T.NAMES)
