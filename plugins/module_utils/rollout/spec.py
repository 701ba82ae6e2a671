# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec shared by es_rolling_upgrade and es_replace_node, and their client set-up."""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.aws import AWS_CONNECTION_SPEC, Aws
from ansible_collections.logstack.elk.plugins.module_utils.es_client import ES_CONNECTION_SPEC, EsClient
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster
from ansible_collections.logstack.elk.plugins.module_utils.rollout.planner import Options
from ansible_collections.logstack.elk.plugins.module_utils.rollout.step_table import TIMEOUT_KEYS
from ansible_collections.logstack.elk.plugins.module_utils.rollout.node import NodeReplacement


ROLLOUT_SPEC = dict(
    asg_names=dict(type="list", elements="str"),
    asg_tags=dict(type="dict"),
    version_tag=dict(type="str", default="es_version"),
    compare=dict(type="list", elements="str", choices=["image", "version"], default=["image", "version"]),
    target_image_id=dict(type="str"),
    target_version=dict(type="str"),
    node_attribute=dict(type="str", default="aws_instance_id"),
    strategy=dict(type="str", choices=["drain", "surge", "terminate"], default="drain"),
    accept_data_loss=dict(type="bool", default=False),
    max_nodes_out=dict(type="int", default=1),
    complete_lifecycle_actions=dict(type="bool", default=False),
    complete_launch_actions=dict(type="bool", default=False),
    drain_method=dict(type="str", choices=["auto", "shutdown", "exclusion"], default="auto"),
    timeouts=dict(type="dict", options={k: dict(type="int") for k in TIMEOUT_KEYS}),
    poll_interval=dict(type="float", default=5.0),
    run_id=dict(type="str"),
)


def argument_spec(**extra):
    spec = dict(ES_CONNECTION_SPEC)
    spec.update(AWS_CONNECTION_SPEC)
    spec.update(ROLLOUT_SPEC)
    spec.update(extra)
    return spec


MODULE_KWARGS = dict(required_one_of=[("asg_names", "asg_tags")], mutually_exclusive=[("asg_names", "asg_tags")],
                     supports_check_mode=True)


def clients(params):
    """(Cluster, Aws, Options) from module params."""
    es = EsClient.from_params(params)
    aws = Aws.from_params(params)
    return Cluster(es), aws, Options.from_params(params)


def timeouts(params):
    return {k: v for k, v in (params.get("timeouts") or {}).items() if v is not None}


def node_replacement(params, cluster, aws, opts, node, lock, run_id, **extra):
    """The NodeReplacement of node (instance_id, node_name, node_id, group: module params, the plan's
    entry or next_node) under the module's timeouts, poll interval and drain method."""
    return NodeReplacement(cluster, aws, opts, node["instance_id"], node["node_name"], node["node_id"], node["group"],
                           lock=lock, run_id=run_id, timeouts=timeouts(params), poll_interval=params["poll_interval"],
                           drain_method=params["drain_method"], **extra)
