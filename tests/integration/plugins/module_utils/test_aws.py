"""AWS helpers against a real moto server (EC2 + Auto Scaling over HTTP)."""
import json
import os
import subprocess
import sys

import boto3
import pytest

from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws, AwsError, tag_dict

REGION = "eu-west-1"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
DUMMY_CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials and no shared config: nothing of the host's AWS setup leaks in."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in DUMMY_CREDS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def _client(moto_url, service):
    return boto3.client(service, region_name=REGION, endpoint_url=moto_url, **{
        "aws_access_key_id": "testing", "aws_secret_access_key": "testing"})


@pytest.fixture
def cluster(moto_url, aws_env, request):
    """A launch template with two versions (v1 image-a/8.15.0, v2 image-b/9.1.0) and two groups."""
    ec2, asg = _client(moto_url, "ec2"), _client(moto_url, "autoscaling")
    suffix = request.node.name.replace("[", "-").replace("]", "")[-40:]
    images = []
    for name in ("a", "b"):
        reservation = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
        source = reservation["Instances"][0]["InstanceId"]
        images.append(ec2.create_image(InstanceId=source, Name="es-%s-%s" % (name, suffix))["ImageId"])
        ec2.terminate_instances(InstanceIds=[source])

    def data(image, version):
        return {"ImageId": image, "InstanceType": "t3.medium", "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": "es_version", "Value": version}]}]}

    template = ec2.create_launch_template(LaunchTemplateName="lt-%s" % suffix,
                                          LaunchTemplateData=data(images[0], "8.15.0"))["LaunchTemplate"]
    ec2.create_launch_template_version(LaunchTemplateId=template["LaunchTemplateId"],
                                       LaunchTemplateData=data(images[1], "9.1.0"))
    groups = {}
    for role, version in (("data", "$Latest"), ("master", "$Default")):
        name = "%s-%s" % (role, suffix)
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=1, MaxSize=2, DesiredCapacity=1,
            AvailabilityZones=[REGION + "a"],
            LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": version},
            Tags=[{"Key": "logstack:cluster", "Value": suffix, "PropagateAtLaunch": True},
                  {"Key": "logstack:role", "Value": role, "PropagateAtLaunch": True}])
        groups[role] = name
    return {"suffix": suffix, "images": images, "groups": groups, "template": template}


def _aws(moto_url, **kwargs):
    kwargs.setdefault("region", REGION)
    return Aws(endpoint_url=moto_url, **kwargs)


def test_find_groups_by_name_returns_exactly_those(moto_url, cluster):
    found = _aws(moto_url).find_groups(names=[cluster["groups"]["data"]])
    assert [g["AutoScalingGroupName"] for g in found] == [cluster["groups"]["data"]]


def test_find_groups_by_name_names_the_missing_group(moto_url, cluster):
    with pytest.raises(AwsError, match="Auto Scaling Group\\(s\\) not found: nope-1."):
        _aws(moto_url).find_groups(names=[cluster["groups"]["data"], "nope-1"])


def test_find_groups_by_tags_needs_every_tag_to_match(moto_url, cluster):
    aws = _aws(moto_url)
    both = aws.find_groups(tags={"logstack:cluster": cluster["suffix"]})
    assert sorted(g["AutoScalingGroupName"] for g in both) == sorted(cluster["groups"].values())
    masters = aws.find_groups(tags={"logstack:cluster": cluster["suffix"], "logstack:role": "master"})
    assert [g["AutoScalingGroupName"] for g in masters] == [cluster["groups"]["master"]]
    assert aws.find_groups(tags={"logstack:cluster": "other-cluster"}) == []


def test_find_groups_without_selector_is_refused(moto_url, aws_env):
    with pytest.raises(AwsError, match="by name or by tags"):
        _aws(moto_url).find_groups()


def test_launch_template_target_resolves_latest_and_default(moto_url, cluster):
    aws = _aws(moto_url)
    by_role = {g["AutoScalingGroupName"]: g for g in aws.find_groups(tags={"logstack:cluster": cluster["suffix"]})}
    latest = aws.launch_template_target(by_role[cluster["groups"]["data"]], version_tag="es_version")
    default = aws.launch_template_target(by_role[cluster["groups"]["master"]], version_tag="es_version")
    assert (latest["image_id"], latest["version"], latest["launch_template_version"]) == \
        (cluster["images"][1], "9.1.0", 2)
    assert (default["image_id"], default["version"], default["launch_template_version"]) == \
        (cluster["images"][0], "8.15.0", 1)
    assert latest["launch_template_id"] == cluster["template"]["LaunchTemplateId"]
    # Without a version tag only the image is known.
    assert aws.launch_template_target(by_role[cluster["groups"]["data"]])["version"] is None


def test_group_without_launch_template_is_explained(moto_url, aws_env):
    group = {"AutoScalingGroupName": "legacy", "LaunchConfigurationName": "lc-1"}
    with pytest.raises(AwsError, match="legacy has no launch template"):
        _aws(moto_url).launch_template_target(group)


def test_instances_of_a_group_carry_the_propagated_tags(moto_url, cluster):
    aws = _aws(moto_url)
    group = aws.find_groups(names=[cluster["groups"]["data"]])[0]
    ids = [i["InstanceId"] for i in group["Instances"]]
    instances = aws.instances(ids)
    assert [i["InstanceId"] for i in instances] == ids
    assert tag_dict(instances[0]["Tags"])["logstack:role"] == "data"
    assert aws.instances([]) == []


def test_client_error_is_one_sentence_with_operation_and_code(moto_url, aws_env):
    with pytest.raises(AwsError) as err:
        _aws(moto_url).instances(["i-00000000000000000"])
    assert err.value.code == "InvalidInstanceID.NotFound"
    assert err.value.message.startswith("AWS ec2 DescribeInstances failed: InvalidInstanceID.NotFound:")


def test_retry_configuration_reaches_botocore(moto_url, aws_env):
    aws = _aws(moto_url, retry_mode="standard", max_attempts=4)
    retries = aws.client("ec2").meta.config.retries
    assert retries["mode"] == "standard" and retries["total_max_attempts"] == 4
    assert _aws(moto_url).client("autoscaling").meta.config.retries["mode"] == "adaptive"
    assert aws.client("ec2").meta.endpoint_url == moto_url


def test_region_comes_from_the_environment(moto_url, aws_env, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-southeast-2")
    assert Aws(endpoint_url=moto_url).region == "ap-southeast-2"


def test_missing_region_is_one_sentence(aws_env):
    with pytest.raises(AwsError, match="^No AWS region: set `region` or AWS_REGION / AWS_DEFAULT_REGION.$"):
        Aws()


def test_profile_gives_region_and_credentials(moto_url, aws_env, monkeypatch, cluster):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (aws_env / "config").write_text("[profile logstack-test]\nregion = %s\n" % REGION)
    (aws_env / "credentials").write_text("[logstack-test]\naws_access_key_id = testing\n"
                                         "aws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_env / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws_env / "credentials"))
    aws = Aws(profile="logstack-test", endpoint_url=moto_url)
    assert aws.region == REGION
    assert aws.find_groups(names=[cluster["groups"]["data"]])


def test_unknown_profile_is_one_sentence(aws_env):
    with pytest.raises(AwsError, match="AWS profile 'nobody' is not configured"):
        Aws(profile="nobody", region=REGION)


def test_missing_credentials_is_one_sentence(moto_url, tmp_path):
    # A child process with an empty environment: no keys, no files, no instance metadata.
    code = ("import json, sys; sys.path.insert(0, %r)\n"
            "from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws, AwsError\n"
            "try:\n"
            "    Aws(region=%r, endpoint_url=%r).find_groups(names=['x'])\n"
            "except AwsError as e:\n"
            "    print(json.dumps([e.code, e.message]))\n") % (os.path.join(ROOT, ".collections"), REGION, moto_url)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
           "AWS_CONFIG_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    code_, message = json.loads(out.stdout)
    assert code_ == "NoCredentials"
    assert message == ("No AWS credentials found for autoscaling DescribeAutoScalingGroups: configure an instance "
                       "profile, AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.")


def test_unreachable_endpoint_is_one_sentence(aws_env):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    aws = Aws(region=REGION, endpoint_url="http://127.0.0.1:%d" % port, max_attempts=1)
    with pytest.raises(AwsError, match="^Cannot reach the AWS autoscaling endpoint"):
        aws.find_groups(names=["x"])
