# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps of one node's replacement: the one table everything else reads.

es_replace_node's step choices and the order of its ``step: all``, each wait's timeout key and
its "gave up waiting for ..." sentence, the list in docs/upgrade.md and the task order of
roles/upgrade/tasks/node-steps.yml all come from TABLE and STRATEGIES;
tests/unit/plugins/module_utils/rollout/test_step_table.py checks the docs and the tasks
against them. A new step is one row here, one ``step_<name>`` method (rollout/node.py) and
its task.
"""
from __future__ import annotations

from collections import namedtuple

# name; what it starts (changes); what it then waits for; the key of `timeouts` bounding that
# wait (None: it does not wait); whose step it is ("node", or "next": the next node of the plan).
Step = namedtuple("Step", ["name", "start", "waits_for", "timeout", "node"])

TABLE = (
    Step("surge", "a surge marker tag on the group, then its desired capacity raised by one",
         "the group's desired capacity raised by one", "join", "node"),
    Step("prepare", "a voting configuration exclusion (master-eligible node)",
         "the voting configuration exclusion to take effect (another master elected if needed)", "master", "node"),
    Step("drain", "the drain's recovery slots reserved, then a node shutdown record or an allocation exclusion",
         "the node to hold no shard, with nothing unassigned or moving", "drain", "node"),
    Step("terminate", "TerminateInstanceInAutoScalingGroup (refused for a node that is not drained)",
         "the instance to be terminated through Auto Scaling", "terminate", "node"),
    Step("wait_left", "nothing", "the node to leave the cluster", "leave", "node"),
    Step("wait_joined", "nothing", "every instance of the group to join the cluster", "join", "node"),
    Step("lift", "the replaced node's exclusions, shutdown record and surge marker removed",
         "exclusions of the replaced node to be lifted", "gate", "node"),
    Step("wait_healthy", "nothing",
         "green, or yellow with only node_version-blocked replicas and nothing moving", "health", "node"),
    Step("hand_over", "the next node taken out at once if every safety rule allows it now: a data node's drain "
         "started, a master-eligible node without data through its prepare and terminate steps",
         "nothing (a refusing rule leaves the node to its own steps, which wait at the gate)", None, "next"),
)
BY_NAME = {s.name: s for s in TABLE}
NAMES = [s.name for s in TABLE]

# The order of the steps per strategy.
STRATEGIES = {
    "drain": ("prepare", "drain", "terminate", "wait_left", "wait_joined", "lift", "wait_healthy", "hand_over"),
    "surge": ("surge", "wait_joined", "prepare", "drain", "terminate", "wait_left", "lift", "wait_healthy"),
    "terminate": ("prepare", "terminate", "wait_left", "wait_joined", "lift", "wait_healthy"),
}

# Seconds per timeout key; `timeouts` of the modules and `upgrade_timeouts` override single keys.
# "gate" bounds the wait for the safety rules before a node is first taken out.
DEFAULT_TIMEOUTS = {"gate": 600, "master": 120, "drain": 3600, "terminate": 120, "leave": 300,
                    "join": 900, "health": 1800}
TIMEOUT_KEYS = tuple(DEFAULT_TIMEOUTS)


def steps_of(strategy, with_next=True):
    """The strategy's steps in order; without with_next, only the node's own (no hand_over)."""
    return [s for s in STRATEGIES[strategy] if with_next or BY_NAME[s].node == "node"]


def waiting_for(step):
    return BY_NAME[step].waits_for


def timeout_key(step):
    return BY_NAME[step].timeout


def markdown():
    """The steps section of docs/upgrade.md (checked by the step table test)."""
    lines = ["```"]
    width = max(len(s) for s in STRATEGIES) + 1
    for strategy, steps in STRATEGIES.items():
        lines.append("%s %s" % ((strategy + ":").ljust(width), ", ".join(steps)))
    lines += ["```", "", "| step | starts | then waits for | timeout key |", "|---|---|---|---|"]
    for s in TABLE:
        lines.append("| `%s`%s | %s | %s | %s |" % (
            s.name, " (next node)" if s.node == "next" else "", s.start, s.waits_for,
            "`%s`" % s.timeout if s.timeout else "-"))
    return "\n".join(lines)
