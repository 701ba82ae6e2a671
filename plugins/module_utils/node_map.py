# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which EC2 instance is which Elasticsearch node, and is it outdated.

Matching order, most to least reliable: the node's transport/publish IP is the
instance's private IP; a node attribute naming the instance id
(``node.attr.aws_instance_id``, set by many bootstrap scripts); the node name
equal to the instance's private DNS name, its short host name, or its id.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.aws import tag_dict

DEFAULT_INSTANCE_ATTRIBUTE = "aws_instance_id"


def node_ips(node):
    """Every IP an entry of GET _nodes reports for the node."""
    ips = set()
    for key in ("ip", "host"):
        if node.get(key):
            ips.add(node[key])
    for section in ("transport_address", "http_address"):
        addr = node.get(section) or (node.get("http") or {}).get("publish_address")
        if addr:
            ips.add(addr.rsplit(":", 1)[0].split("/")[-1])
    return ips


def map_nodes(nodes, instances, attribute=DEFAULT_INSTANCE_ATTRIBUTE):
    """Map nodes (GET _nodes "nodes" dict: id -> node) to instances (EC2 dicts).

    Returns (node_to_instance, unmapped_node_ids, instances_without_node) where
    node_to_instance maps node id -> instance id.
    """
    by_ip, by_id, by_name = {}, {}, {}
    for inst in instances:
        by_id[inst["InstanceId"]] = inst
        if inst.get("PrivateIpAddress"):
            by_ip[inst["PrivateIpAddress"]] = inst
        for name in (inst.get("PrivateDnsName"), tag_dict(inst.get("Tags")).get("Name")):
            if name:
                by_name[name] = inst
                by_name[name.split(".")[0]] = inst
    mapping, unmapped = {}, []
    for node_id, node in nodes.items():
        inst = None
        for ip in node_ips(node):
            inst = inst or by_ip.get(ip)
        if inst is None:
            attr = (node.get("attributes") or {}).get(attribute)
            inst = by_id.get(attr) if attr else None
        if inst is None:
            name = node.get("name", "")
            inst = by_name.get(name) or by_name.get(name.split(".")[0]) or by_id.get(name)
        if inst is None:
            unmapped.append(node_id)
        else:
            mapping[node_id] = inst["InstanceId"]
    taken = set(mapping.values())
    orphans = [i["InstanceId"] for i in instances if i["InstanceId"] not in taken]
    return mapping, unmapped, orphans


def outdated_reasons(instance, target, version_tag=None, compare=("image", "version")):
    """Why an instance is behind its group's launch template ([] when current).

    moto (and some real setups) report the launch template version of an
    instance unreliably, so only the ImageId and the version tag are compared.
    """
    reasons = []
    if "image" in compare and target.get("image_id") and instance.get("ImageId") != target["image_id"]:
        reasons.append("image %s != launch template image %s" % (instance.get("ImageId"), target["image_id"]))
    if "version" in compare and version_tag and target.get("version"):
        have = tag_dict(instance.get("Tags")).get(version_tag)
        if have != target["version"]:
            reasons.append("tag %s=%s != launch template %s" % (version_tag, have, target["version"]))
    return reasons
