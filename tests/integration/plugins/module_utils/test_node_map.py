"""Node <-> instance mapping and outdated detection, over instances a real moto server launched.

The node entries have the shape GET _nodes gives (ip, host, transport_address,
http.publish_address, attributes); the sandbox integration test
(tests/integration/test_cluster_info_sandbox.py) checks the same against nodes
the sandbox derives from its EC2 instances.
"""
import boto3
import pytest

from ansible_collections.logstack.elk.plugins.module_utils.node_map import map_nodes, node_ips, outdated_reasons

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def instances(moto_url):
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    launched = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=4, MaxCount=4,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "es_version", "Value": "8.15.0"}]}])
    ids = [i["InstanceId"] for i in launched["Instances"]]
    described = [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
    return sorted(described, key=lambda i: ids.index(i["InstanceId"]))


def es_node(name, ip, attributes=None, http_ip=None):
    """A GET _nodes entry as Elasticsearch 8 reports it."""
    return {"name": name, "ip": ip, "host": ip, "transport_address": "%s:9300" % ip,
            "http": {"publish_address": "%s:9200" % (http_ip or ip)}, "version": "8.15.0",
            "roles": ["data", "master"], "attributes": attributes or {}}


def test_node_ips_reads_every_address_form():
    node = {"ip": "10.0.0.1", "host": "10.0.0.1", "transport_address": "10.0.0.2:9300",
            "http": {"publish_address": "es-1.internal/10.0.0.3:9200"}}
    assert node_ips(node) == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
    assert node_ips({"http": {"publish_address": "es-1.internal/10.0.0.3:9200"}}) == {"10.0.0.3"}


def test_nodes_map_to_instances_by_private_ip(instances):
    nodes = {"n%d" % i: es_node("es-%d" % i, inst["PrivateIpAddress"]) for i, inst in enumerate(instances)}
    mapping, unmapped, orphans = map_nodes(nodes, instances)
    assert mapping == {"n%d" % i: inst["InstanceId"] for i, inst in enumerate(instances)}
    assert unmapped == [] and orphans == []


def test_instance_id_attribute_is_the_fallback_when_the_ip_differs(instances):
    # A node behind a second interface publishes an IP EC2 does not list as private IP.
    nodes = {"n0": es_node("es-0", "192.168.77.1", {"aws_instance_id": instances[0]["InstanceId"]})}
    mapping, unmapped, orphans = map_nodes(nodes, instances)
    assert mapping == {"n0": instances[0]["InstanceId"]}
    assert sorted(orphans) == sorted(i["InstanceId"] for i in instances[1:])


def test_custom_attribute_name(instances):
    nodes = {"n0": es_node("es-0", "192.168.77.1", {"ec2_id": instances[1]["InstanceId"]})}
    assert map_nodes(nodes, instances, attribute="ec2_id")[0] == {"n0": instances[1]["InstanceId"]}
    assert map_nodes(nodes, instances)[1] == ["n0"]


@pytest.mark.parametrize("form", ["dns", "short", "id"])
def test_node_name_is_the_last_fallback(instances, form):
    inst = instances[2]
    name = {"dns": inst["PrivateDnsName"], "short": inst["PrivateDnsName"].split(".")[0],
            "id": inst["InstanceId"]}[form]
    nodes = {"n2": es_node(name, "192.168.77.2")}
    assert map_nodes(nodes, instances)[0] == {"n2": inst["InstanceId"]}


def test_a_node_matching_nothing_is_reported_unmapped_and_its_instance_orphaned(instances):
    nodes = {"n0": es_node("es-0", instances[0]["PrivateIpAddress"]), "stray": es_node("stray", "192.168.77.9")}
    mapping, unmapped, orphans = map_nodes(nodes, instances)
    assert mapping == {"n0": instances[0]["InstanceId"]}
    assert unmapped == ["stray"]
    assert sorted(orphans) == sorted(i["InstanceId"] for i in instances[1:])


def test_outdated_by_image_and_by_version_tag(instances):
    inst = instances[0]
    current = {"image_id": inst["ImageId"], "version": "8.15.0"}
    assert outdated_reasons(inst, current, "es_version") == []
    new_image = {"image_id": "ami-0newimage", "version": "8.15.0"}
    assert outdated_reasons(inst, new_image, "es_version") == [
        "image %s != launch template image ami-0newimage" % inst["ImageId"]]
    new_version = {"image_id": inst["ImageId"], "version": "9.1.0"}
    assert outdated_reasons(inst, new_version, "es_version") == ["tag es_version=8.15.0 != launch template 9.1.0"]
    # Comparing only what the operator asked for.
    assert outdated_reasons(inst, new_image, "es_version", compare=("version",)) == []
    assert outdated_reasons(inst, new_version, "es_version", compare=("image",)) == []
    # No version in the launch template: the tag cannot make the instance outdated.
    assert outdated_reasons(inst, {"image_id": inst["ImageId"], "version": None}, "es_version") == []
