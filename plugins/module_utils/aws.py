# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""boto3 helpers: sessions with retries, clear errors, Auto Scaling lookups.

Every AWS call of the collection goes through :meth:`Aws.call` so that
throttling is retried by botocore (standard/adaptive mode) and any failure
reaches the operator as one sentence with the operation and the AWS error code.
"""
from __future__ import annotations

import contextlib
import os

try:
    import boto3
    import botocore.exceptions
    from botocore.config import Config

    HAS_BOTO3 = True
except ImportError:  # reported by the module
    HAS_BOTO3 = False

AWS_CONNECTION_SPEC = dict(
    region=dict(type="str", aliases=["aws_region"],
                fallback=(lambda: os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),)),
    profile=dict(type="str", aliases=["aws_profile"], fallback=(lambda: os.environ.get("AWS_PROFILE"),)),
    endpoint_url=dict(type="str", aliases=["aws_endpoint_url"],
                      fallback=(lambda: os.environ.get("AWS_ENDPOINT_URL"),)),
    aws_retry_mode=dict(type="str", default="adaptive", choices=["standard", "adaptive", "legacy"]),
    aws_max_attempts=dict(type="int", default=10),
)


class AwsError(Exception):
    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        self.code = code


class Aws:
    def __init__(self, region=None, profile=None, endpoint_url=None, retry_mode="adaptive", max_attempts=10):
        if not HAS_BOTO3:
            raise AwsError("The Python packages boto3 and botocore are required on the host running this "
                           "module: pip install -r requirements.txt.")
        try:
            self.session = boto3.session.Session(profile_name=profile, region_name=region)
        except botocore.exceptions.ProfileNotFound:
            raise AwsError("AWS profile %r is not configured (~/.aws/config): fix `profile` or AWS_PROFILE." % profile)
        if not self.session.region_name:
            raise AwsError("No AWS region: set `region` or AWS_REGION / AWS_DEFAULT_REGION.")
        self.endpoint_url = endpoint_url
        # total_max_attempts counts the first call too (botocore's "max_attempts" does not),
        # which is what aws_max_attempts documents.
        self.config = Config(retries={"mode": retry_mode, "total_max_attempts": max_attempts},
                             connect_timeout=10, read_timeout=60)
        self._clients = {}

    @classmethod
    def from_params(cls, params):
        return cls(region=params.get("region"), profile=params.get("profile"),
                   endpoint_url=params.get("endpoint_url"), retry_mode=params.get("aws_retry_mode", "adaptive"),
                   max_attempts=params.get("aws_max_attempts", 10))

    @property
    def region(self):
        return self.session.region_name

    def client(self, service):
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url,
                                                         config=self.config)
        return self._clients[service]

    def call(self, service, operation, **kwargs):
        """client(service).<operation>(**kwargs) with errors as one sentence."""
        method = getattr(self.client(service), _snake(operation))
        with _one_sentence(service, operation):
            return method(**kwargs)

    def paginate(self, service, operation, result_key, **kwargs):
        paginator = self.client(service).get_paginator(_snake(operation))
        out = []
        with _one_sentence(service, operation):
            for page in paginator.paginate(**kwargs):
                out.extend(page.get(result_key, []))
        return out

    # -- Auto Scaling ---------------------------------------------------
    def find_groups(self, names=None, tags=None):
        """Auto Scaling Groups by name, or by tags (all of key=value must match)."""
        if names:
            groups = self.paginate("autoscaling", "DescribeAutoScalingGroups", "AutoScalingGroups",
                                   AutoScalingGroupNames=list(names))
            missing = sorted(set(names) - {g["AutoScalingGroupName"] for g in groups})
            if missing:
                raise AwsError("Auto Scaling Group(s) not found: %s." % ", ".join(missing))
            return groups
        filters = [{"Name": "tag:%s" % k, "Values": [str(v)]} for k, v in (tags or {}).items()]
        if not filters:
            raise AwsError("Select the Auto Scaling Groups by name or by tags.")
        return self.paginate("autoscaling", "DescribeAutoScalingGroups", "AutoScalingGroups", Filters=filters)

    def put_group_tag(self, group_names, key, value):
        """Set one tag on Auto Scaling Groups (a name or a list), not propagated to instances."""
        names = [group_names] if isinstance(group_names, str) else list(group_names)
        self.call("autoscaling", "CreateOrUpdateTags", Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": key, "Value": value,
             "PropagateAtLaunch": False} for name in names])

    def delete_group_tag(self, group_names, key):
        names = [group_names] if isinstance(group_names, str) else list(group_names)
        self.call("autoscaling", "DeleteTags", Tags=[
            {"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": key} for name in names])

    def instances(self, instance_ids):
        if not instance_ids:
            return []
        reservations = self.paginate("ec2", "DescribeInstances", "Reservations", InstanceIds=list(instance_ids))
        return [i for r in reservations for i in r["Instances"]]

    def launch_template_target(self, group, version_tag=None):
        """What a new instance of the group gets: {image_id, version, launch_template_id, lt_version}.

        Resolved from the group's launch template (or mixed instances policy),
        `$Latest`/`$Default` included. The version comes from the template's
        instance tag specifications (`version_tag`), when there is one.
        """
        spec = group.get("LaunchTemplate") or (
            (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate", {}).get("LaunchTemplateSpecification"))
        if not spec:
            raise AwsError("Auto Scaling Group %s has no launch template (launch configurations are not "
                           "supported: migrate the group to a launch template)." % group["AutoScalingGroupName"])
        kwargs = {"Versions": [spec.get("Version") or "$Default"]}
        if spec.get("LaunchTemplateId"):
            kwargs["LaunchTemplateId"] = spec["LaunchTemplateId"]
        else:
            kwargs["LaunchTemplateName"] = spec["LaunchTemplateName"]
        versions = self.call("ec2", "DescribeLaunchTemplateVersions", **kwargs)["LaunchTemplateVersions"]
        if not versions:
            raise AwsError("Launch template of %s has no version %s." % (group["AutoScalingGroupName"],
                                                                       kwargs["Versions"][0]))
        data = versions[0].get("LaunchTemplateData", {})
        target = {
            "launch_template_id": versions[0].get("LaunchTemplateId"),
            "launch_template_version": versions[0].get("VersionNumber"),
            "image_id": data.get("ImageId"),
            "version": None,
        }
        if version_tag:
            for spec_tags in data.get("TagSpecifications", []):
                if spec_tags.get("ResourceType") == "instance":
                    for tag in spec_tags.get("Tags", []):
                        if tag["Key"] == version_tag:
                            target["version"] = tag["Value"]
        return target


@contextlib.contextmanager
def _one_sentence(service, operation):
    """Turn botocore's exceptions into an AwsError naming the operation and the AWS error code."""
    try:
        yield
    except botocore.exceptions.NoCredentialsError:
        raise AwsError("No AWS credentials found for %s %s: configure an instance profile, AWS_PROFILE, "
                       "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY." % (service, operation),
                       code="NoCredentials")
    except botocore.exceptions.ClientError as exc:
        err = exc.response.get("Error", {})
        raise AwsError("AWS %s %s failed: %s: %s" % (service, operation, err.get("Code"),
                                                      err.get("Message")), code=err.get("Code"))
    except botocore.exceptions.EndpointConnectionError as exc:
        raise AwsError("Cannot reach the AWS %s endpoint (%s): check region / endpoint_url." % (service, exc))
    except botocore.exceptions.BotoCoreError as exc:
        raise AwsError("AWS %s %s failed: %s" % (service, operation, exc))


def tag_dict(tags):
    return {t["Key"]: t["Value"] for t in tags or []}


def encode_tag(fields, keys=None):
    """A few fields in one tag value, "k=v k=v" (in the order of keys, else sorted; empty values left
    out): the rollout lock and the saved rebalance settings. Values hold no spaces."""
    return " ".join("%s=%s" % (k, fields[k]) for k in (keys or sorted(fields)) if fields.get(k) not in (None, ""))


def decode_tag(text):
    """The fields of encode_tag; a part without "=" is ignored."""
    out = {}
    for part in (text or "").split():
        key, sep, value = part.partition("=")
        if sep:
            out[key] = value
    return out


def _snake(name):
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
