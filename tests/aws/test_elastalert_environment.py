"""playbooks/elastalert-environment.yml against a moto server."""
import base64
import subprocess

import pytest

HOST_CONFIG_KEY = "4f1c2d9e-test-host-config-key"


@pytest.fixture(scope="module")
def network(aws):
    ec2 = aws("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
    image = ec2.register_image(Name="al2023-docker", Architecture="x86_64", RootDeviceName="/dev/xvda",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}])
    return {"vpc": vpc, "subnets": subnets, "ami": image["ImageId"]}


def _settings(network, **overrides):
    settings = {
        "elastalert_environment_name": "staging",
        "elastalert_environment_vpc_id": network["vpc"],
        "elastalert_environment_subnet_ids": network["subnets"],
        "elastalert_environment_ami_id": network["ami"],
        "elastalert_environment_ingress_rules": [
            {"proto": "tcp", "ports": [22], "cidr_ip": "10.0.0.0/16", "rule_desc": "AWX"}],
        "elastalert_environment_tags": {"Team": "observability"},
        "elastalert_environment_awx_url": "https://awx.example.com/",
        "elastalert_environment_awx_job_template_id": 17,
        "elastalert_environment_callback_attempts": 3,
        "elastalert_environment_callback_delay": 1,
    }
    settings.update(overrides)
    return settings


def _user_data(aws, name):
    data = aws("ec2").describe_launch_template_versions(LaunchTemplateName=name, Versions=["$Latest"])
    version = data["LaunchTemplateVersions"][0]
    return version, base64.b64decode(version["LaunchTemplateData"]["UserData"]).decode()


def test_environment_creates_one_instance_group_whose_user_data_calls_the_awx_callback_and_heals_to_a_new_ami(
        run_playbook, aws, network):
    # The key is a secret: it comes as an extra variable (AWX credential / vault), not group_vars.
    secret = {"elastalert_environment_awx_host_config_key": HOST_CONFIG_KEY}
    first = run_playbook("elastalert-environment.yml", "elastalert_environment", _settings(network), secret)
    assert first.rc == 0, first.output
    assert HOST_CONFIG_KEY not in first.output

    name = "logstack-staging-elastalert"
    group = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 1, 1)
    assert group["LaunchTemplate"]["LaunchTemplateName"] == name
    assert len(group["Instances"]) == 1
    assert sorted(group["VPCZoneIdentifier"].split(",")) == sorted(network["subnets"])
    group_tags = {t["Key"]: t["Value"] for t in group["Tags"]}
    assert group_tags["environment"] == "staging" and group_tags["logstack:role"] == "elastalert"

    version, user_data = _user_data(aws, name)
    data = version["LaunchTemplateData"]
    assert data["ImageId"] == network["ami"]
    # The module resolves the profile name to its ARN.
    assert data["IamInstanceProfile"]["Arn"].endswith(":instance-profile/" + name)
    sg = aws("ec2").describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"][0]
    assert data["SecurityGroupIds"] == [sg["GroupId"]]
    assert sg["IpPermissions"][0]["FromPort"] == 22
    instance_tags = {t["Key"]: t["Value"] for spec in data["TagSpecifications"]
                     if spec["ResourceType"] == "instance" for t in spec["Tags"]}
    # The tags inventories/<env>/aws_ec2.yml filters and groups on (environment, logstack:role).
    assert instance_tags == {"Name": name, "environment": "staging", "logstack:role": "elastalert",
                             "managed-by": "logstack.elk", "Team": "observability"}
    assert aws("iam").get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"][0]["RoleName"] == name

    assert "callback_url=https://awx.example.com/api/v2/job_templates/17/callback/" in user_data
    assert "host_config_key=%s" % HOST_CONFIG_KEY in user_data
    assert '--data "host_config_key=${host_config_key}" "${callback_url}"' in user_data
    assert "for attempt in $(seq 1 3)" in user_data
    subprocess.run(["bash", "-n"], input=user_data, text=True, check=True)

    second = run_playbook("elastalert-environment.yml", "elastalert_environment", _settings(network), secret)
    assert second.rc == 0, second.output
    assert second.changed_tasks == []

    # A new AMI makes a new template version; the group follows $Latest, so the next
    # replacement boots it.
    image = aws("ec2").register_image(Name="al2023-docker-2", Architecture="x86_64", RootDeviceName="/dev/xvda",
                                      BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}])
    third = run_playbook("elastalert-environment.yml", "elastalert_environment",
                         _settings(network, elastalert_environment_ami_id=image["ImageId"]), secret)
    assert third.rc == 0, third.output
    version, _ = _user_data(aws, name)
    assert (version["VersionNumber"], version["LaunchTemplateData"]["ImageId"]) == (2, image["ImageId"])
    group = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "$Latest"


def test_ansible_pull_bootstrap_renders_a_pull_of_the_repository_instead_of_the_callback(run_playbook, aws, network):
    settings = _settings(network, elastalert_environment_name="scratch", elastalert_bootstrap="ansible-pull",
                         elastalert_environment_pull_repo="https://git.example.com/ops/logstack-elk.git",
                         elastalert_environment_pull_version="v1.2.0",
                         elastalert_environment_pull_vault_password_parameter="/logstack/scratch/vault")
    run = run_playbook("elastalert-environment.yml", "elastalert_environment", settings)
    assert run.rc == 0, run.output
    _, user_data = _user_data(aws, "logstack-scratch-elastalert")
    assert "callback" not in user_data
    assert "repo=https://git.example.com/ops/logstack-elk.git" in user_data
    assert 'ansible-pull --url "${repo}" --checkout "${version}"' in user_data
    assert "playbooks/deploy-elastalert.yml" in user_data
    assert "inventories/scratch/group_vars" in user_data
    assert "--name /logstack/scratch/vault" in user_data
    subprocess.run(["bash", "-n"], input=user_data, text=True, check=True)


def test_callback_bootstrap_without_host_config_key_is_refused_before_creating_anything(run_playbook, aws, network):
    run = run_playbook("elastalert-environment.yml", "elastalert_environment",
                       _settings(network, elastalert_environment_name="production"))
    assert run.rc != 0
    assert "elastalert_environment_awx_host_config_key" in " ".join(run.failures)
    groups = aws("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["logstack-production-elastalert"])["AutoScalingGroups"]
    assert groups == []


def test_check_mode_on_a_new_environment_creates_nothing(run_playbook, aws, network):
    secret = {"elastalert_environment_awx_host_config_key": HOST_CONFIG_KEY}
    run = run_playbook("elastalert-environment.yml", "elastalert_environment",
                       _settings(network, elastalert_environment_name="preview"), secret, check=True)
    assert run.rc == 0, run.output
    assert "would be created" in run.output
    assert aws("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["logstack-preview-elastalert"])["AutoScalingGroups"] == []
    assert aws("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["logstack-preview-elastalert"]}])["SecurityGroups"] == []
