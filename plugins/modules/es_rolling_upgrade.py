#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: es_rolling_upgrade
short_description: Plan, lock, reconcile and verify a rolling replacement of Elasticsearch nodes
version_added: 0.1.0
description:
  - Cluster-level actions of the rolling replacement of Elasticsearch nodes that run on EC2 Auto Scaling
    Groups. The per-node work is M(logstack.elk.es_replace_node); C(playbooks/upgrade-es.yml) chains both.
  - V(reconcile) clears what an interrupted run left for nodes that are already gone (allocation
    exclusions, node shutdown records, voting configuration exclusions, surge markers) and waits until a
    replacement it left behind has joined and the cluster is healthy again.
  - V(preflight) finds the outdated nodes (instance ImageId and/or version tag against the group's launch
    template, or an explicit target), orders them (half-done nodes first, data tiers frozen, cold, warm, hot,
    data before master-eligible, the elected master last) and refuses, with each rule's name and reason,
    when the cluster is red, a node or instance cannot be mapped, Launch/Terminate processes are suspended,
    the other data nodes lack disk headroom below the high watermark, strategy V(surge) has no room above
    the desired capacity, or strategy V(terminate) meets an index with 0 replicas.
  - V(lock) takes the run lock, a tag on every group with the run id, start time and holder; a second run
    refuses. A lock whose holder process is gone from this host is taken over and reported; a lock silent for
    longer than O(lock_stale_seconds) is reported as stale with how to clear it. V(unlock) releases it.
  - V(pause), run after a successful V(preflight) (so a refused run changes nothing), sets C(cluster.routing.rebalance.enable) to C(none) for the run, so
    shards are not balanced onto a fresh node only to be moved again by the next drain, and
    C(cluster.routing.allocation.node_concurrent_outgoing_recoveries) to one less than its value (at least 1),
    so replicas of indices created during a drain find a free recovery slot. The operator's values are saved
    first in the group tag C(logstack:rollout-rebalance) (never overwritten by a rerun after a crash) and
    V(unlock) puts them back, an unset value as unset.
  - V(verify) is the final strict check, waiting up to the health timeout for green, then requiring no
    allocation/voting exclusion or shutdown record, no outdated node and every instance joined.
author:
  - logstack.elk maintainers (@logstack)
extends_documentation_fragment:
  - logstack.elk.es
  - logstack.elk.aws
attributes:
  check_mode:
    support: full
    description: V(preflight) and V(verify) only read; V(lock), V(unlock) and V(reconcile) report what they would do.
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [reconcile, preflight, lock, unlock, verify, pause]
  asg_names:
    description: Auto Scaling Groups of the cluster, by name. Exclusive with O(asg_tags).
    type: list
    elements: str
  asg_tags:
    description: Select the cluster's Auto Scaling Groups by tags (every key=value must match).
    type: dict
  version_tag:
    description: Instance tag holding the Elasticsearch version, compared with the launch template's instance tags.
    type: str
    default: es_version
  compare:
    description: What makes an instance outdated against its group's launch template.
    type: list
    elements: str
    choices: [image, version]
    default: [image, version]
  target_image_id:
    description: Explicit target AMI instead of the launch template's.
    type: str
  target_version:
    description: Explicit target value of O(version_tag) instead of the launch template's.
    type: str
  node_attribute:
    description: Node attribute naming the EC2 instance id, used when IPs do not match.
    type: str
    default: aws_instance_id
  strategy:
    description:
      - V(drain) moves a node's shards away before its instance is terminated (replacement launched by the group).
      - V(surge) adds one instance first, then drains and terminates the old one with the desired capacity decremented.
      - V(terminate) terminates first and lets replicas rebuild; refused with 0-replica indices unless O(accept_data_loss).
    type: str
    choices: [drain, surge, terminate]
    default: drain
  accept_data_loss:
    description: With strategy V(terminate), accept losing the documents of indices without replicas.
    type: bool
    default: false
  max_nodes_out:
    description: Most nodes of the expected cluster size allowed out at once, the one being replaced included.
    type: int
    default: 1
  drain_method:
    description:
      - How a node is emptied. V(auto) uses the node shutdown API (type C(remove)) on Elasticsearch 7.15+ and
        the allocation exclusion C(cluster.routing.allocation.exclude._name) elsewhere.
    type: str
    choices: [auto, shutdown, exclusion]
    default: auto
  timeouts:
    description: Seconds each wait may take; omitted keys keep their defaults.
    type: dict
    suboptions:
      gate: {description: Waiting for the safety rules to allow taking a node out (default 600)., type: int}
      master: {description: Waiting for a voting exclusion to take effect (default 120)., type: int}
      drain: {description: Waiting for a node to hold no shard (default 3600)., type: int}
      terminate: {description: Waiting for a termination (default 120)., type: int}
      leave: {description: Waiting for a node to leave (default 300)., type: int}
      join: {description: Waiting for replacements to join (default 900)., type: int}
      health: {description: Waiting for green or version-skew yellow (default 1800)., type: int}
  poll_interval:
    description: Seconds between two reads while waiting.
    type: float
    default: 5.0
  run_id:
    description: Identifier of this run, used by V(lock), V(unlock). Generated by V(lock) when omitted.
    type: str
  break_lock:
    description: Run id of a lock to break on V(lock) or V(unlock), after checking that run is really dead.
    type: str
  lock_stale_seconds:
    description: A lock whose heartbeat is older than this is reported as stale.
    type: int
    default: 3600
  pause_rebalance:
    description:
      - With V(pause), pause shard rebalancing and keep one outgoing recovery slot free for the run; V(unlock)
        restores the saved operator values
        whatever this option says, so a run started with it and continued without it still cleans up.
    type: bool
    default: true
  settle:
    description:
      - With V(reconcile), also wait until every instance of the groups has joined and the cluster is healthy.
      - Set it when an interrupted run is being continued (the lock was taken over); otherwise a group that
        is not settled is left to V(preflight), which refuses with the reason.
    type: bool
    default: true
notes:
  - The node shutdown API and voting configuration exclusions are Elasticsearch features; on OpenSearch
    the allocation exclusion is used and voting exclusions are skipped.
seealso:
  - module: logstack.elk.es_replace_node
"""

EXAMPLES = r"""
- name: Plan the rollout (check mode prints the same plan)
  logstack.elk.es_rolling_upgrade:
    action: preflight
    asg_tags: {"logstack:cluster": prod-logs}
    strategy: drain
  register: preflight

- name: Take the lock
  logstack.elk.es_rolling_upgrade:
    action: lock
    asg_tags: {"logstack:cluster": prod-logs}
  register: lock

- name: Final strict check
  logstack.elk.es_rolling_upgrade:
    action: verify
    asg_tags: {"logstack:cluster": prod-logs}
    timeouts: {health: 900}
"""

RETURN = r"""
plan:
  description: Outdated nodes in replacement order (V(preflight), V(verify)).
  returned: when action is preflight or verify
  type: list
  elements: dict
  contains:
    position: {description: 1-based order., type: int}
    node_name: {description: Elasticsearch node name., type: str}
    node_id: {description: Elasticsearch node id., type: str}
    instance_id: {description: EC2 instance id., type: str}
    group: {description: Auto Scaling Group., type: str}
    roles: {description: Node roles., type: list, elements: str}
    master: {description: Master-eligible., type: bool}
    data: {description: Holds data., type: bool}
    elected_master: {description: Currently the elected master., type: bool}
    version: {description: Elasticsearch version of the node., type: str}
    image_id: {description: AMI of the instance., type: str}
    target_image_id: {description: AMI of the launch template., type: str}
    target_version: {description: Version tag of the launch template., type: str}
    reasons: {description: Why it is outdated., type: list, elements: str}
    continuing: {description: Left half-done by an earlier run., type: bool}
    why: {description: Why it is at this position., type: str}
  sample: [{position: 1, node_name: data-a1b2c3, instance_id: i-0abc, why: "data node (data): ..."}]
refusals:
  description: "Refusals as C(rule: reason), empty when the run may start."
  returned: when action is preflight or verify
  type: list
  elements: str
cluster:
  description: Health status and node count seen.
  returned: when action is preflight, verify or reconcile
  type: dict
run_id:
  description: The run's lock id.
  returned: when action is lock, unlock or pause
  type: str
lock_note:
  description: Set when a dead run's lock was taken over or broken.
  returned: when action is lock
  type: str
rebalance:
  description: What V(pause) or V(unlock) did to the rebalancing and outgoing recovery settings, empty when nothing.
  returned: when action is pause or unlock
  type: str
actions:
  description: What V(reconcile) did (or would do in check mode).
  returned: when action is reconcile
  type: list
  elements: str
groups:
  description: Auto Scaling Groups of the cluster.
  returned: when action is preflight
  type: list
  elements: str
problems:
  description: Why V(verify) failed.
  returned: when action is verify
  type: list
  elements: str
"""

import secrets
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.logstack.elk.plugins.module_utils.aws import AwsError
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout import planner
from ansible_collections.logstack.elk.plugins.module_utils.rollout import rebalance
from ansible_collections.logstack.elk.plugins.module_utils.rollout.lock import GroupLock, LockError
from ansible_collections.logstack.elk.plugins.module_utils.rollout.spec import MODULE_KWARGS, argument_spec, clients, timeouts
from ansible_collections.logstack.elk.plugins.module_utils.rollout.steps import Rollout, StepFailed, WaitTimeout


def new_run_id():
    return "%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), secrets.token_hex(3))


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(
            action=dict(type="str", required=True, choices=["reconcile", "preflight", "lock", "unlock", "verify", "pause"]),
            break_lock=dict(type="str"),
            lock_stale_seconds=dict(type="int", default=3600),
            settle=dict(type="bool", default=True),
            pause_rebalance=dict(type="bool", default=True),
        ),
        **MODULE_KWARGS)
    p = module.params
    action = p["action"]
    try:
        cluster, aws, opts = clients(p)
        if action in ("lock", "unlock", "pause"):
            names = [g["AutoScalingGroupName"] for g in aws.find_groups(names=opts.asg_names, tags=opts.asg_tags)]
            lock = GroupLock(aws, names, stale_seconds=p["lock_stale_seconds"])
            run_id = p["run_id"] or new_run_id()
            if action == "pause":
                if module.check_mode or not p["pause_rebalance"]:
                    module.exit_json(changed=False, run_id=run_id, rebalance="")
                lock.check(run_id)
                module.exit_json(changed=True, run_id=run_id, rebalance=rebalance.pause(cluster, aws, names))
            if action == "lock":
                if module.check_mode:
                    holders = {n: h for n, h in lock.holders().items() if h}
                    module.exit_json(changed=not holders, run_id=run_id,
                                     lock_note="would take the lock" if not holders else "held: %s" % holders)
                changed, note = lock.acquire(run_id, break_lock=p["break_lock"])
                module.exit_json(changed=changed, run_id=run_id, lock_note=note or "", groups=names)
            if module.check_mode:
                module.exit_json(changed=False, run_id=run_id)
            # Restore before releasing: a crash in between leaves the lock, so the rerun restores.
            restored = rebalance.restore(cluster, aws, names) or ""
            released = lock.release(p["break_lock"] or run_id)
            module.exit_json(changed=bool(released), run_id=run_id, groups=released, rebalance=restored)

        rollout = Rollout(cluster, aws, opts, timeouts=timeouts(p), poll_interval=p["poll_interval"],
                          drain_method=p["drain_method"])
        if action == "reconcile":
            actions, detail = rollout.reconcile(check_mode=module.check_mode, settle=p["settle"])
            module.exit_json(changed=bool(actions), actions=actions, cluster={"detail": detail})

        if action == "preflight":
            world, plan, refused = planner.preflight(cluster, aws, opts)
            result = dict(changed=False, plan=plan, refusals=refused,
                          groups=[g["AutoScalingGroupName"] for g in world.groups],
                          cluster={"status": world.view.status, "nodes": len(world.view.nodes),
                                   "elected_master": world.view.nodes.get(world.view.master_id, {}).get("name")})
            if refused:
                module.fail_json(msg="Preflight refused, nothing was changed: %s." % "; ".join(refused), **result)
            module.exit_json(**result)

        # verify: the final strict check.
        problems = verify(rollout, cluster, aws, opts)
        view = cluster.view()
        result = dict(changed=False, cluster={"status": view.status, "nodes": len(view.nodes)})
        if problems:
            module.fail_json(msg="Final check failed: %s." % "; ".join(problems), problems=problems, **result)
        module.exit_json(problems=[], **result)
    except StepFailed as exc:
        module.fail_json(msg=exc.message, diagnosis=exc.diagnosis)
    except LockError as exc:
        module.fail_json(msg=exc.message, holder=exc.holder or {})
    except (EsError, AwsError, planner.P_Error) as exc:
        module.fail_json(msg=exc.message)


def verify(rollout, cluster, aws, opts):
    """Green within the health timeout, nothing left excluded, nothing outdated, every instance joined."""
    problems = []

    def green():
        view = cluster.view()
        return view.status == "green" and not view.moving, "cluster is %s" % view.status
    try:
        rollout.wait(rollout.timeouts["health"], green)
    except WaitTimeout as exc:
        problems.append("not green after %ss (%s)" % (rollout.timeouts["health"], exc))
    ok, detail, world = rollout.settled()
    if not ok:
        problems.append(detail)
    view = world.view
    if view.excluded_names:
        problems.append("allocation exclusions left: %s" % ", ".join(view.excluded_names))
    if view.voting_exclusions:
        problems.append("voting exclusions left: %s" % ", ".join(view.voting_excluded_names()))
    if view.shutdowns:
        problems.append("node shutdown records left: %s" % ", ".join(sorted(view.shutdowns)))
    outdated = world.candidates()
    if outdated:
        problems.append("outdated nodes left: %s" % ", ".join(c["node_name"] for c in outdated))
    return problems


if __name__ == "__main__":
    main()
