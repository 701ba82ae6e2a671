"""docs/permissions.md: each playbook's IAM policy allows what the playbook calls, and the
rollout's policies nothing more. Static for the calls of plugins/module_utils (found in the code),
moto with IAM enforced for the roles built on amazon.aws / community.aws modules."""
import ast
import glob
import json
import os
import re
import subprocess
import urllib.request

import boto3
import pytest
from aws_support import ANSIBLE_PLAYBOOK, REGION, ROOT, PlaybookRun
from test_alarms_role import ENVIRONMENT
from test_elastalert_environment import HOST_CONFIG_KEY, _settings, network  # noqa: F401 (fixture)

DOC = os.path.join(ROOT, "docs", "permissions.md")


def policies():
    with open(DOC, encoding="utf-8") as fh:
        text = fh.read()
    found = re.findall(r"<!-- policy: (\S+) -->\s*```json\n(.*?)```", text, re.S)
    return {name: json.loads(body) for name, body in found}


def allowed_actions(policy):
    out = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        out |= set([actions] if isinstance(actions, str) else actions)
    return out


def calls_in_code():
    """(service, operation) of every Aws.call / Aws.paginate in plugins/ (literal arguments)."""
    found = set()
    for path in glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("call", "paginate") and len(node.args) >= 2
                    and all(isinstance(a, ast.Constant) for a in node.args[:2])
                    and node.args[0].value in ("autoscaling", "ec2", "sns", "cloudwatch", "iam", "sts")):
                found.add("%s:%s" % (node.args[0].value, node.args[1].value))
    return found


def test_every_playbook_has_a_policy():
    # upgrade_es.yml and the like are FQCN names of the hyphenated playbooks
    names = {os.path.basename(p).replace("_", "-") for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml"))}
    assert names <= set(policies()), names - set(policies())


def test_the_upgrade_policy_allows_each_aws_call_of_the_rollout_and_nothing_more():
    code = calls_in_code()
    assert "autoscaling:TerminateInstanceInAutoScalingGroup" in code  # the scan sees the calls
    # sns: the notification of roles/notify/tasks/main.yml (community.aws.sns), not module_utils
    notify = {"sns:ListTopics", "sns:Publish"}
    assert notify <= allowed_actions(policies()["upgrade-es.yml"]) and notify <= allowed_actions(
        policies()["reindex-es.yml"])
    upgrade = allowed_actions(policies()["upgrade-es.yml"]) - notify
    assert upgrade == code, "docs/permissions.md, upgrade-es.yml: missing %s, never called %s" % (
        sorted(code - upgrade), sorted(upgrade - code))
    info = allowed_actions(policies()["cluster-info.yml"])
    reads = {c for c in code if c.split(":")[1].startswith("Describe")}
    assert info == reads, (sorted(reads - info), sorted(info - reads))


def test_policy_statements_that_change_groups_are_limited_to_the_clusters_tag():
    for statement in policies()["upgrade-es.yml"]["Statement"]:
        if statement["Sid"] == "NotifyTheEnvironmentsTopic":
            assert statement["Resource"].endswith(":logstack-*-notifications")
        elif any(not a.split(":")[1].startswith("Describe") for a in statement["Action"]):
            assert "autoScalingGroupName/" in statement["Resource"]
            assert statement["Condition"]["StringEquals"]["autoscaling:ResourceTag/logstack:cluster"]


def _as_moto_sees_it(policy):
    # moto evaluates actions only: resources as "*", conditions dropped (reviewed by hand in the doc);
    # it names CloudWatch's actions by the endpoint prefix "monitoring".
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Resource": "*",
         "Action": s["Action"] + [a.replace("cloudwatch:", "monitoring:") for a in s["Action"] if a.startswith("cloudwatch:")]}
        for s in policy["Statement"]]}


def _reset_auth(moto_url, count):
    req = urllib.request.Request(moto_url + "/moto-api/reset-auth", data=str(count).encode(), method="POST",
                                 headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(req, timeout=10).read()


def _run_as(moto_url, tmp_path, key, playbook, group, group_vars, extra_vars=None):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True, exist_ok=True)
    (inventory / "hosts.ini").write_text("localhost ansible_connection=local\n")
    (inventory / "group_vars" / ("%s.yml" % group)).write_text(json.dumps(group_vars))
    env = dict(os.environ, AWS_ENDPOINT_URL=moto_url, AWS_ACCESS_KEY_ID=key["AccessKeyId"],
               AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"], AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    cmd = [ANSIBLE_PLAYBOOK, "-i", str(inventory), os.path.join(ROOT, "playbooks", playbook)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    return PlaybookRun(subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600))


@pytest.fixture
def user_with_policy(moto_url):
    """An IAM user holding only a playbook's documented policy; IAM enforced while the test runs."""
    iam = boto3.client("iam", endpoint_url=moto_url, region_name=REGION, aws_access_key_id="testing",
                       aws_secret_access_key="testing")

    def make(playbook):
        name = "ops-" + re.sub(r"[^a-z]", "-", playbook)
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="logstack",
                            PolicyDocument=json.dumps(_as_moto_sees_it(policies()[playbook])))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        _reset_auth(moto_url, 0)
        return key
    try:
        yield make
    finally:
        _reset_auth(moto_url, "inf")


def test_alarms_playbook_runs_with_only_its_documented_policy(moto_url, tmp_path, user_with_policy):
    key = user_with_policy("alarms.yml")
    run = _run_as(moto_url, tmp_path, key, "alarms.yml", "alarms", ENVIRONMENT)
    assert run.rc == 0, re.findall(r"not authorized to perform: [\w:]+|AccessDenied[^\"]*", run.output) or run.output[-3000:]
    assert run.changed > 0


def test_elastalert_environment_playbook_runs_with_only_its_documented_policy(moto_url, tmp_path, network,  # noqa: F811
                                                                               user_with_policy):
    key = user_with_policy("elastalert-environment.yml")
    run = _run_as(moto_url, tmp_path, key, "elastalert-environment.yml", "elastalert_environment",
                  _settings(network, elastalert_environment_name="iam"),
                  {"elastalert_environment_awx_host_config_key": HOST_CONFIG_KEY})
    assert run.rc == 0, re.findall(r"not authorized to perform: [\w:]+|AccessDenied[^\"]*", run.output) or run.output[-3000:]
