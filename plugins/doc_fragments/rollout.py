# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Options of module_utils/rollout/spec.py ROLLOUT_SPEC, shared by es_rolling_upgrade and es_replace_node.
    DOCUMENTATION = r"""
options:
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
  complete_lifecycle_actions:
    description:
      - When an instance the run terminated is held in C(Terminating:Wait) by a lifecycle hook of its group (on
        C(autoscaling:EC2_INSTANCE_TERMINATING)), complete the action (C(CONTINUE)) so it terminates now;
        otherwise the run waits for the hook's own action or heartbeat timeout (within C(timeouts.leave)).
    type: bool
    default: false
  complete_launch_actions:
    description:
      - When an instance Auto Scaling launched for the run is held in C(Pending:Wait) by a lifecycle hook of its
        group (on C(autoscaling:EC2_INSTANCE_LAUNCHING)), complete the action (C(CONTINUE)) once its node has
        joined the cluster; otherwise the run waits for the instance's own bootstrap to complete it (within
        C(timeouts.join)). An instance the hook abandons is terminated and Auto Scaling launches another, which
        the run then waits for.
    type: bool
    default: false
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
"""
