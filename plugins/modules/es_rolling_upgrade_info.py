#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: es_rolling_upgrade_info
short_description: Plan or verify a rolling replacement of Elasticsearch nodes (reads only)
version_added: 0.1.0
description:
  - The read-only actions of the rolling replacement of Elasticsearch nodes on EC2 Auto Scaling Groups;
    M(logstack.elk.es_rolling_upgrade) takes the lock and changes settings, M(logstack.elk.es_replace_node)
    replaces one node. The role C(logstack.elk.upgrade) chains them.
  - V(plan) finds the outdated nodes (instance ImageId and/or version tag against the group's launch
    template, or an explicit target), orders them (half-done nodes first, data tiers frozen, cold, warm, hot,
    data before master-eligible, the elected master last) and fails, with each rule's name and reason,
    when the cluster is red, a node or instance cannot be mapped, Launch/Terminate processes are suspended,
    the other data nodes lack disk headroom below the high watermark, strategy V(surge) has no room above
    the desired capacity, or strategy V(terminate) meets an index with 0 replicas.
  - V(plan) also refuses, naming the setting, on the operator's cluster allocation filters (exclude, include,
    require by any attribute, persistent or transient) and C(cluster.routing.allocation.enable) other than
    C(all); on a single master-eligible node under strategy V(drain) or V(terminate); on a version path no
    rolling upgrade supports (downgrade, another family, a major jump from below the minor Elastic or
    OpenSearch names) and, before a major upgrade, on critical C(_migration/deprecations) issues; and, when
    nodes are outdated, per O(snapshot).
  - V(verify) is the final strict check, waiting up to the health timeout for green, then requiring no
    allocation/voting exclusion, other allocation filter or disabled allocation, or shutdown record, no
    outdated node and every instance joined.
author:
  - logstack.elk maintainers (@logstack)
extends_documentation_fragment:
  - logstack.elk.es
  - logstack.elk.aws
  - logstack.elk.rollout
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
options:
  action:
    description: What to do.
    type: str
    required: true
    choices: [plan, verify]
  snapshot:
    description:
      - With V(plan) and outdated nodes, V(require) refuses unless a registered repository (O(snapshot_repository)
        or any) holds a snapshot in state C(SUCCESS) that ended less than O(snapshot_max_age) ago; V(take)
        checks that the repository to take one into exists (M(logstack.elk.es_rolling_upgrade) V(pause) takes
        it); V(skip) checks nothing.
    type: str
    choices: [require, take, skip]
    default: require
  snapshot_max_age:
    description: How old the newest successful snapshot may be for O(snapshot=require), as C(24h), C(90m), C(2d).
    type: str
    default: 24h
  snapshot_repository:
    description: The snapshot repository O(snapshot) looks at; every registered one when omitted.
    type: str
notes:
  - The node shutdown API is an Elasticsearch feature (7.15+); on OpenSearch and older Elasticsearch the
    allocation exclusion is used. OpenSearch's C(cluster_manager) role counts as master-eligible.
seealso:
  - module: logstack.elk.es_rolling_upgrade
  - module: logstack.elk.es_replace_node
"""

EXAMPLES = r"""
- name: Plan the rollout
  logstack.elk.es_rolling_upgrade_info:
    action: plan
    asg_tags: {"logstack:cluster": prod-logs}
    strategy: drain
  register: plan

- name: Final strict check
  logstack.elk.es_rolling_upgrade_info:
    action: verify
    asg_tags: {"logstack:cluster": prod-logs}
    timeouts: {health: 900}
"""

RETURN = r"""
plan:
  description: Outdated nodes in replacement order (V(plan)).
  returned: when action is plan
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
    drain_bytes: {description: Bytes its drain moves through the busiest recovery limiter., type: int}
    estimated_seconds:
      description: Its drain's time at C(indices.recovery.max_bytes_per_sec) (the time to boot a node not included).
      type: float
  sample: [{position: 1, node_name: data-a1b2c3, instance_id: i-0abc, why: "data node (data): ..."}]
steps:
  description: The steps of one node under O(strategy), in order (M(logstack.elk.es_replace_node)'s O(logstack.elk.es_replace_node#module:step)).
  returned: when action is plan
  type: list
  elements: str
rules:
  description: The names of the safety rules the plan checked (a refusal names the one that refused).
  returned: when action is plan
  type: list
  elements: str
refusals:
  description: "Refusals as C(rule: reason), empty when the run may start."
  returned: when action is plan
  type: list
  elements: str
cluster:
  description: Health status and node count seen (and the elected master with V(plan)).
  returned: always
  type: dict
groups:
  description: Auto Scaling Groups of the cluster.
  returned: when action is plan
  type: list
  elements: str
samples:
  description:
    - The cluster as this call read it (thinned, see M(logstack.elk.es_replace_node)'s RV(logstack.elk.es_replace_node#module:samples)),
      for the run report (M(logstack.elk.es_upgrade_report)).
  returned: when the call reached the cluster
  type: list
  elements: dict
problems:
  description: Why V(verify) failed.
  returned: when action is verify
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.logstack.elk.plugins.module_utils.aws import AwsError
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.report import Sampler
from ansible_collections.logstack.elk.plugins.module_utils.rollout import planner, snapshots
from ansible_collections.logstack.elk.plugins.module_utils.rollout import predicates as P
from ansible_collections.logstack.elk.plugins.module_utils.rollout.base import Rollout
from ansible_collections.logstack.elk.plugins.module_utils.rollout.diagnosing import StepFailed
from ansible_collections.logstack.elk.plugins.module_utils.rollout.spec import (
    MODULE_KWARGS, argument_spec, clients, timeouts)
from ansible_collections.logstack.elk.plugins.module_utils.rollout.step_table import STRATEGIES
from ansible_collections.logstack.elk.plugins.module_utils.rollout.verifying import verify
from ansible_collections.logstack.elk.plugins.module_utils.units import parse_bytes


def main():
    spec = argument_spec(action=dict(type="str", required=True, choices=["plan", "verify"]),
                         snapshot=dict(type="str", choices=["require", "take", "skip"], default="require"),
                         snapshot_max_age=dict(type="str", default=snapshots.DEFAULT_MAX_AGE),
                         snapshot_repository=dict(type="str"))
    del spec["run_id"]  # no lock: these actions only read
    module = AnsibleModule(argument_spec=spec, **MODULE_KWARGS)
    p = module.params
    try:
        cluster, aws, opts = clients(p)
        cluster.sampler = Sampler()  # the plan's and the final check's views, for the run report
        if p["action"] == "plan":
            world, plan, refused = planner.preflight(cluster, aws, opts)
            if plan:
                refused.extend(snapshots.refusals(cluster, p["snapshot"], p["snapshot_max_age"],
                                                  p["snapshot_repository"]))
            view = world.view
            estimate(cluster, plan)
            result = dict(changed=False, plan=plan, refusals=refused, steps=list(STRATEGIES[opts.strategy]),
                          rules=[name for name, _f in P.PREFLIGHT + P.PREFLIGHT_NODE],
                          groups=planner.cluster_group_names(aws, opts), samples=cluster.sampler.samples,
                          cluster={"status": view.status, "nodes": len(view.nodes),
                                   "elected_master": view.nodes.get(view.master_id, {}).get("name")})
            if refused:
                module.fail_json(msg="Preflight refused, nothing was changed: %s." % "; ".join(refused), **result)
            module.exit_json(**result)
        problems = verify(Rollout(cluster, aws, opts, timeouts=timeouts(p), poll_interval=p["poll_interval"],
                                  drain_method=p["drain_method"]))
        view = cluster.view()
        result = dict(changed=False, problems=problems, cluster={"status": view.status, "nodes": len(view.nodes)},
                      samples=cluster.sampler.samples)
        if problems:
            module.fail_json(msg="Final check failed: %s." % "; ".join(problems), **result)
        module.exit_json(**result)
    except StepFailed as exc:
        module.fail_json(msg=exc.message, diagnosis=exc.diagnosis)
    except (EsError, AwsError, planner.P_Error) as exc:
        module.fail_json(msg=exc.message)


def estimate(cluster, plan):
    """Each node's drain time at the recovery limit (one limiter per node, rollout/rebalance.py)."""
    try:
        data = cluster.settings(defaults=True)
    except EsError:
        return
    merged = dict(data.get("defaults") or {}, **(data.get("persistent") or {}))
    merged.update(data.get("transient") or {})
    rate = parse_bytes(merged.get("indices.recovery.max_bytes_per_sec", "40mb")) or 0
    for node in plan:
        node["estimated_seconds"] = round(node.get("drain_bytes", 0) / float(rate), 1) if rate else None


if __name__ == "__main__":
    main()
