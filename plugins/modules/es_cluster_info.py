#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: es_cluster_info
short_description: Read the state of an Elasticsearch cluster and of the EC2 Auto Scaling Groups behind it
version_added: 0.1.0
description:
  - Reads cluster health, every node (roles, version, IP), the elected master, shards per node,
    unassigned shard copies with the reason and the allocation deciders that keep them unassigned
    (from C(_cluster/allocation/explain)), voting configuration exclusions and the allocation
    exclusions in force.
  - When Auto Scaling Groups are selected (O(asg_names) or O(asg_tags)), maps every node to its
    EC2 instance (private IP, then the node attribute O(node_attribute), then the node name)
    and tells whether the instance is outdated against its group's launch template (image id
    and the version tag O(version_tag)). The launch template version that EC2 reports on
    instances is not used because it is unreliable (moto reports it wrongly).
  - Never changes anything. Works against Elasticsearch 7.17, 8.x, 9.x and OpenSearch.
author:
  - logstack.elk maintainers (@logstack)
extends_documentation_fragment:
  - logstack.elk.es
  - logstack.elk.aws
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing to diff; the module changes nothing.
options:
  asg_names:
    description:
      - Names of the Auto Scaling Groups whose instances run the cluster's nodes.
      - Mutually exclusive with O(asg_tags). With neither, the result holds Elasticsearch data only.
    type: list
    elements: str
  asg_tags:
    description:
      - "Select the Auto Scaling Groups carrying all of these tags, for example
        C({\"logstack:cluster\": \"logs-prod\"})."
    type: dict
  version_tag:
    description:
      - Instance tag holding the Elasticsearch version of an instance, compared with the same tag
        in the launch template's instance tag specifications.
    type: str
    default: es_version
  compare:
    description:
      - What makes an instance outdated against its group's launch template (as in M(logstack.elk.es_rolling_upgrade)).
    aliases: [outdated_by]
    type: list
    elements: str
    choices: [image, version]
    default: [image, version]
  node_attribute:
    description:
      - Node attribute (C(node.attr.<name>)) holding the EC2 instance id, used when the node's IP
        matches no instance (as in M(logstack.elk.es_rolling_upgrade)).
    aliases: [instance_attribute]
    type: str
    default: aws_instance_id
  explain_limit:
    description:
      - At most this many unassigned shard copies are explained (one request each).
    type: int
    default: 50
notes:
  - The AWS options are used only when O(asg_names) or O(asg_tags) is given.
seealso:
  - name: Cluster allocation explain API
    description: Where the decider names of RV(unassigned_shards) come from.
    link: https://www.elastic.co/guide/en/elasticsearch/reference/current/cluster-allocation-explain.html
"""

EXAMPLES = r"""
- name: Read the cluster only
  logstack.elk.es_cluster_info:
    es_url: https://es.internal:9200
    es_username: ops
    es_password: "{{ lookup('ansible.builtin.env', 'ES_PASSWORD') }}"
    es_ca_file: /etc/pki/es-ca.pem
  register: info

- name: Read the cluster and the groups tagged for it
  logstack.elk.es_cluster_info:
    es_url: "{{ es_url }}"
    es_api_key: "{{ lookup('ansible.builtin.env', 'ES_API_KEY') }}"
    region: eu-west-1
    asg_tags:
      logstack:cluster: logs-prod
  register: info

- name: Fail when a node runs an outdated image
  ansible.builtin.assert:
    that: info.outdated_nodes | length == 0
    fail_msg: "Outdated: {{ info.outdated_nodes | join(', ') }}"

- name: Print the summary
  ansible.builtin.debug:
    msg: "{{ info.summary }}"
"""

RETURN = r"""
cluster:
  description: Identity of the cluster.
  returned: always
  type: dict
  sample: {"name": "logs-prod", "uuid": "x5Tf", "version": "8.15.0", "distribution": "elasticsearch"}
health:
  description: The answer of C(GET _cluster/health).
  returned: always
  type: dict
  sample: {"status": "green", "number_of_nodes": 5, "unassigned_shards": 0}
elected_master:
  description: Name of the elected master node, null while there is none.
  returned: always
  type: str
  sample: es-master-1
nodes:
  description: Every node, data nodes first, master-eligible nodes last.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Node id.
      type: str
    name:
      description: Node name.
      type: str
    version:
      description: Elasticsearch version of the node.
      type: str
    ip:
      description: IP the node publishes.
      type: str
    roles:
      description: Node roles, sorted.
      type: list
      elements: str
    master_eligible:
      description: Whether the node has the C(master) (or OpenSearch C(cluster_manager)) role.
      type: bool
    data:
      description: Whether the node holds data (any C(data*) role).
      type: bool
    elected_master:
      description: Whether this node is the elected master.
      type: bool
    attributes:
      description: Node attributes (C(node.attr.*)).
      type: dict
    shards:
      description: Shard copies on the node (a relocating copy counts on its source).
      type: int
    primaries:
      description: Primary copies on the node.
      type: int
    instance_id:
      description: EC2 instance of the node; null without AWS groups or when unmapped.
      type: str
    instance_state:
      description: EC2 state of the instance.
      type: str
      returned: when the node is mapped to an instance
    image_id:
      description: AMI of the instance.
      type: str
      returned: when the node is mapped to an instance
    version_tag:
      description: Value of the instance's O(version_tag) tag.
      type: str
      returned: when the node is mapped to an instance
    asg:
      description: Auto Scaling Group of the instance.
      type: str
    outdated:
      description: Whether the instance differs from its group's launch template; null when unknown.
      type: bool
    outdated_reasons:
      description: Why the instance is outdated, one sentence each.
      type: list
      elements: str
shards_per_node:
  description: Per node name, counts of shard copies (total, primaries, initializing, relocating).
  returned: always
  type: dict
  sample: {"es-data-1": {"total": 12, "primaries": 6, "initializing": 0, "relocating": 1}}
unassigned_shards:
  description: Every unassigned shard copy, primaries first, with why it is unassigned.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: Index name.
      type: str
    shard:
      description: Shard number.
      type: int
    primary:
      description: Whether the copy is the primary.
      type: bool
    allocation:
      description:
        - Summary of C(_cluster/allocation/explain) (null beyond O(explain_limit)) with keys
          C(reason) (unassigned_info reason such as C(NODE_LEFT)), C(details), C(can_allocate),
          C(explanation), C(deciders) (every NO/THROTTLE decision with node, decider, decision,
          explanation) and C(blocked_by) (sorted decider names such as C(node_version)).
      type: dict
    explain_error:
      description: Why the copy could not be explained (the server has no explain API, the shard vanished).
      type: str
only_version_blocked_replicas_unassigned:
  description:
    - True when shards are unassigned and every one is a replica that every node refuses only
      because of the C(node_version) decider (a replica cannot go to a node older than its
      primary), apart from C(same_shard) on nodes that already hold a copy. This is the one
      yellow a rolling upgrade may proceed on, when nothing is initializing or relocating.
  returned: always
  type: bool
voting_config_exclusions:
  description: Voting configuration exclusions (Elasticsearch 7+), each with C(node_id) and C(node_name).
  returned: always
  type: list
  elements: dict
allocation_exclusions:
  description: C(cluster.routing.allocation.exclude.*) in force, per attribute (C(_name), C(_ip), C(_host), C(_id)).
  returned: always
  type: dict
  sample: {"_name": ["es-data-3"]}
allocation_enable:
  description: Value of C(cluster.routing.allocation.enable) (C(all) when unset).
  returned: always
  type: str
groups:
  description: The selected Auto Scaling Groups with sizes, suspended processes, instances and launch template target.
  returned: always
  type: list
  elements: dict
  sample:
    - name: logs-prod-data
      desired_capacity: 3
      min_size: 3
      max_size: 4
      suspended_processes: []
      instances: [i-0abc]
      tags: {"logstack:cluster": "logs-prod"}
      target: {"image_id": "ami-0123", "version": "8.15.0", "launch_template_id": "lt-0abc",
               "launch_template_version": 4}
outdated_nodes:
  description: Names of the nodes whose instance is outdated.
  returned: always
  type: list
  elements: str
unmapped_nodes:
  description: Names of nodes that match no instance of the selected groups.
  returned: always
  type: list
  elements: str
instances_without_node:
  description: Running instances of the selected groups that no node matches (booting, or not joined).
  returned: always
  type: list
  elements: str
summary:
  description: Human-readable lines describing all of the above.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.logstack.elk.plugins.module_utils.aws import AWS_CONNECTION_SPEC, Aws, AwsError
from ansible_collections.logstack.elk.plugins.module_utils.cluster_info import gather, summary_lines
from ansible_collections.logstack.elk.plugins.module_utils.es_client import ES_CONNECTION_SPEC, EsClient, EsError


def main():
    argument_spec = dict(ES_CONNECTION_SPEC)
    argument_spec.update(AWS_CONNECTION_SPEC)
    argument_spec.update(
        asg_names=dict(type="list", elements="str"),
        asg_tags=dict(type="dict"),
        version_tag=dict(type="str", default="es_version"),
        compare=dict(type="list", elements="str", choices=["image", "version"], default=["image", "version"],
                     aliases=["outdated_by"]),
        node_attribute=dict(type="str", default="aws_instance_id", aliases=["instance_attribute"]),
        explain_limit=dict(type="int", default=50),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("asg_names", "asg_tags")])
    params = module.params
    try:
        es = EsClient.from_params(params)
        aws = Aws.from_params(params) if (params["asg_names"] or params["asg_tags"]) else None
        result = gather(es, aws=aws, asg_names=params["asg_names"], asg_tags=params["asg_tags"],
                        version_tag=params["version_tag"], attribute=params["node_attribute"],
                        compare=tuple(params["compare"]), explain_limit=params["explain_limit"])
    except (EsError, AwsError) as exc:
        module.fail_json(msg=exc.message)
    module.exit_json(changed=False, summary=summary_lines(result), **result)


if __name__ == "__main__":
    main()
