"""A moto server per test module and a helper that runs our playbooks against it."""
import json
import os
import subprocess

import boto3
import pytest

from aws_support import ANSIBLE_PLAYBOOK, REGION, ROOT, PlaybookRun


@pytest.fixture(scope="module")
def aws(moto_url):
    """boto3 clients on the moto server: aws('ec2').describe_...()."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name=REGION)
    return lambda service: session.client(service, endpoint_url=moto_url)


@pytest.fixture
def run_playbook(moto_url, tmp_path):
    """Run playbooks/<name> against moto with an inventory holding group_vars/<group>.yml."""
    def run(playbook, group, group_vars, extra_vars=None, check=False):
        inventory = tmp_path / "inventory"
        (inventory / "group_vars").mkdir(parents=True, exist_ok=True)
        (inventory / "hosts.ini").write_text("localhost ansible_connection=local\n")
        (inventory / "group_vars" / ("%s.yml" % group)).write_text(json.dumps(group_vars))
        env = dict(os.environ)
        env.update({
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        })
        env.pop("AWS_URL", None)
        cmd = [ANSIBLE_PLAYBOOK, "-i", str(inventory), os.path.join(ROOT, "playbooks", playbook)]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if check:
            cmd.append("--check")
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        return PlaybookRun(proc)
    return run
