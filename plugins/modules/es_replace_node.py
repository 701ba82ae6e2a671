#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: es_replace_node
short_description: Replace one Elasticsearch node of an Auto Scaling Group, one named step at a time
version_added: 0.1.0
description:
  - Runs one step (or all steps) of the replacement of one outdated node. Every step derives from the
    cluster and AWS whether its effect already holds and acts only if not, so an interrupted run, rerun,
    continues where the world is.
  - "Steps per O(strategy): V(drain): prepare, drain, terminate, wait_left, wait_joined, lift, wait_healthy,
    hand_over. V(surge): surge, wait_joined, prepare, drain, terminate, wait_left, lift, wait_healthy.
    V(terminate): prepare, terminate, wait_left, wait_joined, lift, wait_healthy."
  - C(prepare) adds a voting configuration exclusion for a master-eligible node and waits until it is out of
    the voting configuration (another master elected if it was the elected one). C(drain) puts a node shutdown
    record (type C(remove)) or an allocation exclusion and waits until the node holds no shard (replicas that
    the C(node_version) decider keeps on it aside) with nothing unassigned or moving. C(terminate) calls
    TerminateInstanceInAutoScalingGroup (desired capacity kept, decremented with V(surge)) and refuses a
    node that is not drained. C(lift) removes the exclusions once the node is gone. C(wait_healthy) waits
    for green, or yellow where only C(node_version)-blocked replicas are unassigned and nothing moves.
  - C(hand_over) is the next node's step, run with that node's O(instance_id), O(node_name), O(node_id) and
    O(group) right after the previous node's C(wait_healthy). It takes the node out at once when every safety
    rule allows it now (no wait), so no time passes between two nodes. A data node's drain is started (its
    recovery slots reserved first); a master-eligible node without data goes through its C(prepare) and
    C(terminate) steps (a master holds no data, so its replacement's boot is all that is left). The node's own
    steps find it started and continue. Nothing is started when a rule refuses.
  - The table of steps (what each starts, waits for and its timeout key) is
    C(plugins/module_utils/rollout/step_table.py); C(docs/upgrade.md) lists it.
  - Before a node is first taken out, every safety rule (health, nodes out budget, all masters present, one
    master at a time, data before masters, tier order, elected master last, not a whole tier, no
    unreplicated primary with V(terminate)) must hold; the step waits for them up to C(timeouts.gate).
  - On a timeout the module fails naming the node, the step, the cluster health, unassigned shards with
    their deciders, and what it left in place.
author:
  - logstack.elk maintainers (@logstack)
extends_documentation_fragment:
  - logstack.elk.es
  - logstack.elk.aws
  - logstack.elk.rollout
attributes:
  check_mode:
    support: full
    description: Reports the step it would run and changes nothing.
options:
  instance_id:
    description: EC2 instance id of the node to replace.
    type: str
    required: true
  node_name:
    description: Elasticsearch node name of that instance (from the plan).
    type: str
    required: true
  node_id:
    description: Elasticsearch node id (from the plan).
    type: str
    required: true
  group:
    description: Auto Scaling Group of the instance.
    type: str
    required: true
  next_node:
    description:
      - The next node of the plan (its O(instance_id), O(node_name), O(node_id), O(group)). With O(step=all) and
        strategy V(drain), its V(hand_over) step runs after this node's last step, in the same call.
    type: dict
    suboptions:
      instance_id:
        description: EC2 instance id of the next node.
        type: str
        required: true
      node_name:
        description: Its Elasticsearch node name.
        type: str
        required: true
      node_id:
        description: Its Elasticsearch node id.
        type: str
        required: true
      group:
        description: Its Auto Scaling Group.
        type: str
        required: true
  step:
    description:
      - The step to run, or V(all) for every step of the strategy in order (V(hand_over) on O(next_node)).
    type: str
    required: true
    choices: [all, surge, prepare, drain, terminate, wait_left, wait_joined, lift, wait_healthy, hand_over]
  known_instance_ids:
    description: Instances of the group before this node's replacement, to name the new node in the result.
    type: list
    elements: str
    default: []
  run_id:
    description: Lock run id from M(logstack.elk.es_rolling_upgrade) V(lock); the step refuses if the run lost the lock.
    type: str
  lock_stale_seconds:
    description: Stale threshold of the lock, as in M(logstack.elk.es_rolling_upgrade).
    type: int
    default: 3600
  wait_seconds:
    description:
      - Return after at most this many seconds of waiting with RV(done) false and RV(progress) (bytes left, rate,
        ETA) instead of waiting up to the step's timeout in one call; loop the task with C(until) on RV(done), so
        the progress shows while the step waits. V(0) waits in one call. Not with O(step=all).
    type: float
    default: 0
  wait_since:
    description:
      - Epoch seconds the first call for this step started (the role passes C(now()), which Ansible templates
        once for all retries of a task), so the step's timeout counts from there across calls.
    type: float
seealso:
  - module: logstack.elk.es_rolling_upgrade
"""

EXAMPLES = r"""
- name: Drain one node
  logstack.elk.es_replace_node:
    asg_tags: {"logstack:cluster": prod-logs}
    instance_id: i-0123456789abcdef0
    node_name: data-89abcdef0
    node_id: 3vN0bTq2QeOwq6c5a8Jx2w
    group: prod-logs-data
    step: drain
    run_id: "{{ lock.run_id }}"
"""

RETURN = r"""
done:
  description: False when O(wait_seconds) ran out before the step was done (call again), else true.
  returned: always
  type: bool
progress:
  description:
    - When RV(done) is false, what the step waits for, with C(node), C(step), C(bytes_left) (on the node for a drain,
      still to copy by the active recoveries for a join or recovery), C(rate_bytes_per_second) and C(eta_seconds)
      measured over this call (null when nothing moved), C(waited_seconds), C(detail) and a one-line C(line).
  returned: when done is false
  type: dict
step:
  description: The step run (V(all) for every step).
  returned: always
  type: str
waiting_for:
  description: What the step waits for.
  returned: always
  type: str
timeline:
  description:
    - One entry per step run, with C(step), C(node), C(instance_id), C(started), C(seconds), C(changed),
      C(detail); a V(wait_joined) entry C(abandoned_instance_ids) when a launch lifecycle hook abandoned an
      instance meanwhile (Auto Scaling launched another, which the step waited for). A V(hand_over) entry names the node handed over to, says what was C(started) and is
      followed by the entries of the steps it ran for that node.
  returned: always
  type: list
  elements: dict
terminated_instance_ids:
  description: Instances this call terminated (this node's, and the next node's when its V(hand_over) ran its
    terminate step).
  returned: always
  type: list
  elements: str
new_nodes:
  description: Nodes that joined the group during the replacement (instance_id, node_name, node_id, version, image_id, zone (the instance's Availability Zone)).
  returned: always
  type: list
  elements: dict
next_node_started:
  description: What V(hand_over) started (empty when a rule refused or nothing applied).
  returned: when the V(hand_over) step ran
  type: str
group_instances_before:
  description: Instances of the group before the surge or terminate step.
  returned: when the step is surge or terminate and acted
  type: list
  elements: str
samples:
  description:
    - The cluster as this call read it, thinned to at least 2 s apart and at most 120 points, for the run report
      (M(logstack.elk.es_upgrade_report)); each with C(t) (epoch seconds), C(status), C(moving) and C(nodes)
      (node name to [shard copies, bytes]).
  returned: when the call reached the cluster
  type: list
  elements: dict
diagnosis:
  description: Health, unassigned shards with deciders, exclusions in place, when the step failed.
  returned: on failure
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.logstack.elk.plugins.module_utils.aws import AwsError
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.report import Sampler
from ansible_collections.logstack.elk.plugins.module_utils.rollout import progress
from ansible_collections.logstack.elk.plugins.module_utils.rollout.lock import GroupLock, LockError
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import P_Error, cluster_group_names
from ansible_collections.logstack.elk.plugins.module_utils.rollout.spec import (
    MODULE_KWARGS, argument_spec, clients, node_replacement)
from ansible_collections.logstack.elk.plugins.module_utils.rollout.step_table import (
    NAMES, STRATEGIES, waiting_for)
from ansible_collections.logstack.elk.plugins.module_utils.rollout.diagnosing import StepFailed

NODE_SPEC = dict(instance_id=dict(type="str", required=True), node_name=dict(type="str", required=True),
                 node_id=dict(type="str", required=True), group=dict(type="str", required=True))


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            step=dict(type="str", required=True, choices=["all"] + NAMES),
            known_instance_ids=dict(type="list", elements="str", default=[]),
            lock_stale_seconds=dict(type="int", default=3600),
            wait_seconds=dict(type="float", default=0),
            wait_since=dict(type="float"),
            next_node=dict(type="dict", options=NODE_SPEC),
            **NODE_SPEC),
        **MODULE_KWARGS)
    p = module.params
    order = STRATEGIES[p["strategy"]]
    # (step, node): with `all`, hand_over is the next node's and runs only when there is one.
    todo = [(s, p["next_node"] if s == "hand_over" else p) for s in order] if p["step"] == "all" else [(p["step"], p)]
    todo = [(s, n) for s, n in todo if n]
    result = dict(changed=False, done=True, step=p["step"], waiting_for="; ".join(waiting_for(s) for s, _n in todo),
                  timeline=[], terminated_instance_ids=[], new_nodes=[])
    if p["wait_seconds"] < 0 or (p["wait_seconds"] and p["step"] == "all"):
        module.fail_json(msg="wait_seconds must be 0 or more, and 0 with step all.", **result)
    if p["step"] != "all" and p["step"] not in order:
        module.fail_json(msg="Step %s is not part of strategy %s (steps: %s)." % (
            p["step"], p["strategy"], ", ".join(order)), **result)
    if module.check_mode:
        result["timeline"] = [{"step": s, "changed": False, "detail": "check mode: not run"} for s, _n in todo]
        module.exit_json(**result)
    try:
        cluster, aws, opts = clients(p)
        cluster.sampler = Sampler()
        result["samples"] = cluster.sampler.samples
        groups = cluster_group_names(aws, opts)
        lock = GroupLock(aws, groups, stale_seconds=p["lock_stale_seconds"]) if p["run_id"] else None
        nodes = {}
        for step, which in todo:
            if id(which) not in nodes:
                nodes[id(which)] = node_replacement(p, cluster, aws, opts, which, lock, p["run_id"],
                                                    known_instance_ids=p["known_instance_ids"] if which is p else None,
                                                    wait_bound=p["wait_seconds"], wait_since=p["wait_since"])
            node = nodes[id(which)]
            meter = progress.Meter(cluster, step, which["node_name"]) if p["wait_seconds"] else None
            try:
                entry = node.run(step)
            except progress.StillWaiting as exc:
                result.update(done=False, progress=meter.report(exc.node, exc.detail, p["wait_since"]))
                module.exit_json(**result)
            if entry.get("group_instances_before"):  # wait_joined of the same call names the new node
                node.known = node.known or set(entry["group_instances_before"])
            record(result, entry)
    except StepFailed as exc:
        module.fail_json(msg=exc.message, diagnosis=exc.diagnosis, **result)
    except LockError as exc:
        module.fail_json(msg=exc.message, **result)
    except (EsError, AwsError, P_Error) as exc:
        module.fail_json(msg="Node %s (%s): %s" % (p["node_name"], p["instance_id"], exc.message), **result)
    module.exit_json(**result)


def record(result, entry):
    """Add one step's entry (and the steps a hand-over ran, which follow it) to the result."""
    for e in [entry] + entry.pop("then", []):
        result["timeline"].append(e)
        result["changed"] = result["changed"] or e["changed"]
        result["terminated_instance_ids"].extend(e.get("terminated_instance_ids", []))
        result["new_nodes"].extend(e.get("new_nodes", []))
    if entry["step"] == "hand_over":
        result["next_node_started"] = entry["started"]
    elif entry.get("group_instances_before"):
        result["group_instances_before"] = entry["group_instances_before"]


if __name__ == "__main__":
    main()
