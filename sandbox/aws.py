"""The AWS side of the sandbox: moto in server mode, provisioned from the scenario.

Everything is created through boto3 against the moto endpoint (as the
collection's modules will talk to it); the engine then reads moto's backends
directly to follow the instances (no API round trip per tick).
"""
from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import boto3
from moto.backends import get_backend
from moto.server import ThreadedMotoServer

from .scenario import Scenario

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER_TAG = "logstack:cluster"
ROLE_TAG = "logstack:role"
VERSION_TAG = "es_version"


def role_name(roles: List[str]) -> str:
    master = "master" in roles
    data = any(r.startswith("data") for r in roles)
    if master and data:
        return "mixed"
    if master:
        return "master"
    tiers = sorted(r for r in roles if r.startswith("data_") and r != "data_content")
    return "data" if "data" in roles or not tiers else tiers[0]


@dataclass
class AwsWorld:
    server: Any
    endpoint: str
    scenario: Scenario
    ami_ids: Dict[str, str] = field(default_factory=dict)  # AMI key -> ami-...
    launch_templates: Dict[str, str] = field(default_factory=dict)  # group -> lt-...
    subnets: Dict[str, str] = field(default_factory=dict)  # Availability Zone -> subnet-...
    initial_instances: Dict[str, List[str]] = field(default_factory=dict)  # group -> instance ids

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    @property
    def ec2(self) -> Any:
        return get_backend("ec2")[ACCOUNT][REGION]

    @property
    def autoscaling(self) -> Any:
        return get_backend("autoscaling")[ACCOUNT][REGION]

    def group_instances(self, group: str) -> List[Any]:
        """moto Instance objects currently in the group (any state)."""
        g = self.autoscaling.autoscaling_groups.get(group)
        if g is None:
            return []
        return [s.instance for s in list(g.instance_states)]

    def instance(self, instance_id: str) -> Optional[Any]:
        try:
            return self.ec2.get_instance(instance_id)
        except Exception:  # moto raises its own InvalidInstanceIdError
            return None

    def tags(self, resource_id: str) -> Dict[str, str]:
        return dict(self.ec2.tags.get(resource_id, {}))

    def current_template(self, group: str) -> Dict[str, Optional[str]]:
        """ImageId and es_version tag of the version the group launches now ($Latest)."""
        g = self.autoscaling.autoscaling_groups.get(group)
        lt = getattr(g, "ec2_launch_template", None) if g else None
        if lt is None:
            return {"image_id": None, "es_version": None}
        version = lt.get_version(getattr(g, "launch_template_version", None) or "$Latest")
        return {"image_id": version.data.get("ImageId"), "es_version": version.instance_tags.get(VERSION_TAG)}

    def stop(self) -> None:
        try:
            host, port = self.server.get_host_and_port()
        except Exception:  # never started: nothing to stop
            return
        stopper = threading.Thread(target=self._stop_quietly, daemon=True)
        stopper.start()
        # moto's server checks its shutdown flag only every 0.5 s (serve_forever's poll
        # interval); a connection wakes its select at once, so a test does not wait for it.
        while stopper.is_alive():
            try:
                socket.create_connection((host, port), timeout=0.5).close()
            except OSError:
                pass
            stopper.join(0.02)

    def _stop_quietly(self) -> None:
        try:
            self.server.stop()
        except Exception:  # already stopped; nothing to clean up
            pass


def _reset_backends() -> None:
    # moto keeps backends per process; a second sandbox in one process (tests)
    # must not see the first one's instances.
    for service in ("ec2", "autoscaling", "cloudwatch", "sns"):
        get_backend(service)[ACCOUNT].reset()


def start(scenario: Scenario) -> AwsWorld:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from . import lifecycle  # lifecycle hooks on termination, which moto lacks (sandbox/lifecycle.py)
    lifecycle.install()
    _reset_backends()
    # port 0: the server binds a free port itself (no probe-then-bind race with other processes)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    world = AwsWorld(server=server, endpoint=f"http://127.0.0.1:{port}", scenario=scenario)
    try:
        _provision(world)
    except Exception:
        world.stop()
        raise
    return world


def aws_env(world: AwsWorld, scenario: Scenario) -> Dict[str, str]:
    """What a playbook run needs in its environment to find moto and the scenario's groups."""
    return {
        "AWS_ENDPOINT_URL": world.endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # the value of the groups' logstack:cluster tag (inventories/sandbox reads it)
        "SANDBOX_CLUSTER_NAME": scenario.cluster_name,
    }


def _tags(d: Dict[str, str]) -> List[Dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in d.items()]


def _provision(world: AwsWorld) -> None:
    sc = world.scenario
    ec2 = world.client("ec2")
    asg = world.client("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=_tags({"Name": f"{sc.cluster_name}-vpc"}))
    # one subnet per Availability Zone (a..f); a group launches in its zone's subnet
    for n, letter in enumerate("abcdef"):
        world.subnets[f"{REGION}{letter}"] = ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.20.{16 * n}.0/20", AvailabilityZone=f"{REGION}{letter}")["Subnet"]["SubnetId"]
    for key, version in sc.amis.items():
        ami = ec2.register_image(Name=f"elasticsearch-{key}", Description=f"Elasticsearch {version}")["ImageId"]
        ec2.create_tags(Resources=[ami], Tags=_tags({VERSION_TAG: version, "Name": key}))
        world.ami_ids[key] = ami
    for group in sc.groups:
        version = sc.amis[group.ami]
        instance_tags = {VERSION_TAG: version, CLUSTER_TAG: sc.cluster_name, ROLE_TAG: role_name(group.roles)}
        lt = ec2.create_launch_template(
            LaunchTemplateName=f"{group.name}-lt",
            LaunchTemplateData={"ImageId": world.ami_ids[group.ami], "InstanceType": group.instance_type,
                                "TagSpecifications": [{"ResourceType": "instance", "Tags": _tags(instance_tags)}]},
        )["LaunchTemplate"]
        world.launch_templates[group.name] = lt["LaunchTemplateId"]
        asg.create_auto_scaling_group(
            AutoScalingGroupName=group.name, MinSize=group.size, MaxSize=group.size + 1,
            DesiredCapacity=group.size, VPCZoneIdentifier=world.subnets[group.zone],
            LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "$Latest"},
            Tags=[{"Key": CLUSTER_TAG, "Value": sc.cluster_name, "PropagateAtLaunch": True},
                  {"Key": ROLE_TAG, "Value": role_name(group.roles), "PropagateAtLaunch": True}],
        )
        world.initial_instances[group.name] = [i.id for i in world.group_instances(group.name)]


def roll_launch_templates(world: AwsWorld) -> None:
    """Create the "new version to roll to" for each group of ``roll_to``.

    Called once the cluster has formed, so every running instance is outdated;
    the groups launch ``$Latest``, so replacements get the new AMI.
    """
    sc = world.scenario
    ec2 = world.client("ec2")
    for group in sc.groups:
        key = sc.roll_to.get(group.name)
        if key is None:
            continue
        tags = {VERSION_TAG: sc.amis[key], CLUSTER_TAG: sc.cluster_name, ROLE_TAG: role_name(group.roles)}
        ec2.create_launch_template_version(
            LaunchTemplateId=world.launch_templates[group.name], SourceVersion="$Latest",
            VersionDescription=f"roll to {key}",
            LaunchTemplateData={"ImageId": world.ami_ids[key],
                                "TagSpecifications": [{"ResourceType": "instance", "Tags": _tags(tags)}]},
        )
