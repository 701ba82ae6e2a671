"""Our playbooks under ansible-runner (the engine AWX uses), with the private data directory
laid out as an AWX job gets it:

  project/                  the project as AWX's project sync checks it out (git-tracked files)
  requirements_collections/ what project sync installs from collections/requirements.yml
  inventory/hosts           the inventory AWX imported from the project's inventories/<env>/,
                            handed to the job as a script printing JSON
  env/extravars             survey answers and credential-injected extra variables
  env/envvars               credential-injected environment (AWS, Elasticsearch)

Differences from a real AWX job, because nothing here reaches the internet: project sync
would install logstack.elk from git and amazon.aws etc. from Galaxy; here logstack.elk is
installed with ansible-galaxy from the project copy and the others come from the
execution environment's stand-in, this virtualenv (the `ansible` package bundles them).
"""
import json
import os
import shutil
import stat
import subprocess
import sys

import ansible_runner
import boto3
import pytest
import yaml

from tests.sandbox_plugin import Sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
SCENARIO = os.path.join(ROOT, "sandbox", "scenarios", "small.yml")


def _project_files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and os.path.isfile(os.path.join(ROOT, f))]


def _clean_env():
    # The job must see only what AWX would give it: no checkout config, no stray credentials.
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("ANSIBLE_", "AWS_", "ES_", "SANDBOX_"))}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """`python -m sandbox up` with the small scenario; yields its environment and state dir."""
    state = tmp_path_factory.mktemp("sandbox-state")
    sb = Sandbox(SCENARIO, state)
    yield dict(sb.env, AWS_EC2_METADATA_DISABLED="true"), state
    sb.down()


def _audit(state):
    proc = subprocess.run([sys.executable, "-m", "sandbox", "audit", "--state", str(state)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def audit_nodes(state):
    return _audit(state)["nodes"]


def awx_private_data_dir(base, inventory_dir, extravars, envvars):
    """Lay out a private data directory the way an AWX job gets it (see the module docstring)."""
    pdd = base / "pdd"
    project = pdd / "project"
    for rel in _project_files():
        dest = project / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(ROOT, rel), dest)
    assert (project / "collections" / "requirements.yml").is_file()

    collections = pdd / "requirements_collections"
    env = dict(_clean_env(), ANSIBLE_CONFIG=str(project / "ansible.cfg"))
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", str(project),
                    "--no-deps", "--force", "-p", str(collections)],
                   cwd=str(base), env=env, check=True, capture_output=True, timeout=300)

    # AWX imports the inventory source into its database and hands the job a script.
    exported = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", str(project / inventory_dir),
                               "--list", "--export"],
                              cwd=str(project), env=env, check=True, capture_output=True, text=True, timeout=120).stdout
    (pdd / "inventory").mkdir()
    script = pdd / "inventory" / "hosts"
    script.write_text("#!%s\nimport sys\nsys.stdout.write(%r)\n" % (sys.executable, exported))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)

    (pdd / "env").mkdir()
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    envvars = dict(envvars, ANSIBLE_COLLECTIONS_PATH=str(collections), PATH=BIN + os.pathsep + os.environ["PATH"])
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    return pdd


def run_job(pdd, playbook, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("ANSIBLE_", "AWS_", "ES_", "SANDBOX_")):
            monkeypatch.delenv(name)
    runner = ansible_runner.run(private_data_dir=str(pdd), playbook=playbook, quiet=True, timeout=600)
    events = list(runner.events)
    failed = [e["event_data"].get("res", {}).get("msg") for e in events if e["event"] == "runner_on_failed"]
    return runner, events, failed


def test_upgrade_playbook_runs_under_ansible_runner_from_an_awx_project_layout(sandbox, tmp_path, monkeypatch):
    env, state = sandbox
    pdd = awx_private_data_dir(tmp_path, "inventories/sandbox",
                               extravars={"upgrade_strategy": "drain", "upgrade_max_nodes_out": 1},
                               envvars=env)
    runner, events, failed = run_job(pdd, "playbooks/upgrade-es.yml", monkeypatch)
    assert (runner.status, runner.rc, failed) == ("successful", 0, [])
    stats = [e for e in events if e["event"] == "playbook_on_stats"][-1]["event_data"]
    assert stats["failures"] == {} and stats["dark"] == {}
    assert "sandbox" in stats["changed"]
    # AWX keeps set_stats as the job's artifacts: the short summary and where the report is.
    report = stats["artifact_data"]["upgrade_reports"]["sandbox"]
    assert report["outcome"] == "succeeded" and len(report["summary"]) == audit_nodes(state)
    assert report["html"].startswith(str(pdd / "project" / "reports")) and os.path.isfile(report["html"])
    # The playbook ran from the project copy, its role from the logstack.elk that project sync installed.
    task_paths = {e["event_data"].get("task_path", "") for e in events if e["event"] == "runner_on_ok"}
    assert any(p.startswith(str(pdd / "project" / "playbooks")) for p in task_paths)
    role_files = {p for p in task_paths if "/roles/upgrade/" in p}
    assert role_files and all(p.startswith(str(pdd / "requirements_collections")) for p in role_files)
    audit = _audit(state)
    assert audit["outdated_nodes_left"] == 0
    assert audit["nodes_replaced"] == audit["nodes"]
    assert audit["docs_lost"] == 0 and audit["unknown_requests"] == 0
    assert audit["max_nodes_out"] <= 1


def test_elastalert_environment_playbook_runs_under_ansible_runner_against_the_sandbox_aws(sandbox, tmp_path,
                                                                                          monkeypatch):
    env, _ = sandbox
    ec2 = boto3.client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    image = ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    key = "runner-host-config-key"
    extravars = {
        "elastalert_environment_name": "sandbox",
        "elastalert_environment_vpc_id": vpc,
        "elastalert_environment_subnet_ids": subnets[:1],
        "elastalert_environment_ami_id": image,
        "elastalert_environment_awx_url": "https://awx.example.com",
        "elastalert_environment_awx_job_template_id": 42,
        # What the "logstack AWX callback key" credential type injects (awx/configure.yml).
        "elastalert_environment_awx_host_config_key": key,
    }
    pdd = awx_private_data_dir(tmp_path, "inventories/sandbox", extravars=extravars, envvars=env)
    runner, events, failed = run_job(pdd, "playbooks/elastalert-environment.yml", monkeypatch)
    assert (runner.status, runner.rc, failed) == ("successful", 0, [])
    role_paths = {e["event_data"].get("task_path", "") for e in events
                  if e["event"] == "runner_on_ok" and e["event_data"].get("role") == "elastalert_environment"}
    # The role came from the collection project sync installed, not from this checkout.
    role_files = {p for p in role_paths if "/roles/" in p}
    assert role_files and all(p.startswith(str(pdd / "requirements_collections")) for p in role_files)
    # The secret reached AWS but not the job's output (what AWX stores and shows).
    assert key not in runner.stdout.read()
    autoscaling = boto3.client("autoscaling", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                               aws_access_key_id="testing", aws_secret_access_key="testing")
    group = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=["logstack-sandbox-elastalert"])["AutoScalingGroups"][0]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (1, 1, 1)
