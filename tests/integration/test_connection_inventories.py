"""Per-environment inventories: the amazon.aws.aws_ec2 configs against a moto server,
the connection variables of each environment, and no secret in clear."""
import glob
import json
import os
import re
import subprocess
import sys

import boto3
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
REAL_ENVS = ("ci", "staging", "production", "scratch")
CLUSTERS = {"ci": "logs-ci", "staging": "logs-staging", "production": "logs-prod", "scratch": "logs-scratch"}


def ansible_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ES_"))}
    env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", HOME=str(tmp_path),
               AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent",
               AWS_EC2_METADATA_DISABLED="true", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
               ANSIBLE_INVENTORY_UNPARSED_FAILED="true", ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="true")
    env.update(extra)
    return env


def unsafe(value):
    """ansible-inventory marks values from AWS as unsafe: {"__ansible_unsafe": value}."""
    return value.get("__ansible_unsafe", value) if isinstance(value, dict) else value


def load(path):
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def moto_with_instances(moto_url):
    url = moto_url
    launched = {}
    for env_name in REAL_ENVS:
        region = load(os.path.join(ROOT, "inventories", env_name, "aws_ec2.yml"))["regions"][0]
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=url,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        for role in ("es-data", "es-master"):
            tags = [{"Key": "environment", "Value": env_name}, {"Key": "logstack:role", "Value": role},
                    {"Key": "logstack:cluster", "Value": CLUSTERS[env_name]},
                    {"Key": "Name", "Value": "%s-%s-1" % (env_name, role)}]
            reply = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                      TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
            launched["%s-%s-1" % (env_name, role)] = reply["Instances"][0]
    return url, launched


@pytest.mark.parametrize("env_name", REAL_ENVS)
def test_aws_ec2_inventory_lists_only_the_environments_instances_grouped_by_role(moto_with_instances, tmp_path,
                                                                                  env_name):
    url, launched = moto_with_instances
    env = ansible_env(tmp_path, AWS_URL=url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    proc = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", "inventories/%s" % env_name, "--list"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    inventory = json.loads(proc.stdout)
    ec2_hosts = set(inventory["aws_ec2"]["hosts"])
    assert ec2_hosts == {"%s-es-data-1" % env_name, "%s-es-master-1" % env_name}
    assert inventory["role_es_data"]["hosts"] == ["%s-es-data-1" % env_name]
    assert inventory["role_es_master"]["hosts"] == ["%s-es-master-1" % env_name]
    assert set(inventory["cluster_" + CLUSTERS[env_name].replace("-", "_")]["hosts"]) == ec2_hosts
    hostvars = inventory["_meta"]["hostvars"]["%s-es-data-1" % env_name]
    instance = launched["%s-es-data-1" % env_name]
    assert unsafe(hostvars["ansible_host"]) == instance["PrivateIpAddress"]
    assert unsafe(hostvars["ec2_instance_id"]) == instance["InstanceId"]
    # The logical cluster host stays apart from the EC2 hosts.
    assert inventory["es_clusters"]["hosts"] == [CLUSTERS[env_name]]


def test_inventory_without_aws_credentials_fails_instead_of_listing_nothing(moto_with_instances, tmp_path):
    url, _ = moto_with_instances
    proc = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", "inventories/ci", "--list"], cwd=ROOT,
                          env=ansible_env(tmp_path, AWS_URL=url), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "credentials" in proc.stderr.lower()


def _connection(env_name):
    merged = {}
    for part in ("all", "es_clusters"):
        merged.update(load(os.path.join(ROOT, "inventories", env_name, "group_vars", part, "connection.yml")))
    return merged


REQUIRED = {"es_url", "es_username", "es_password", "es_api_key", "es_ca_file", "es_validate_certs", "es_timeout",
            "es_max_retries", "aws_region", "aws_endpoint_url", "es_cluster_name", "es_asg_tags", "es_version_tag"}


@pytest.mark.parametrize("env_name", REAL_ENVS + ("sandbox",))
def test_every_environment_defines_the_whole_connection_and_verifies_tls(env_name):
    conn = _connection(env_name)
    assert REQUIRED <= set(conn), REQUIRED - set(conn)
    assert conn["es_validate_certs"] is True
    assert conn["es_asg_tags"] == {"logstack:cluster": "{{ es_cluster_name }}"}


def test_environments_differ_where_they_should():
    conns = {name: _connection(name) for name in REAL_ENVS}
    urls = {name: c["es_url"] for name, c in conns.items()}
    assert len(set(urls.values())) == len(REAL_ENVS)
    # Production waits and retries longer than the throw-away scratch environment.
    assert conns["production"]["es_timeout"] > conns["scratch"]["es_timeout"]
    assert conns["production"]["es_max_retries"] > conns["scratch"]["es_max_retries"]
    for name in REAL_ENVS:
        filters = load(os.path.join(ROOT, "inventories", name, "aws_ec2.yml"))["filters"]
        assert filters["tag:environment"] == name


SECRET_KEY = re.compile(r"(password|passwd|secret|api_key|token|private_key)", re.I)
SAFE_VALUE = re.compile(r"lookup\('ansible\.builtin\.env', '[A-Z_]+'\)|^\$ANSIBLE_VAULT|vault_")


def _walk(data, path=()):
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk(value, path + (str(key),))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _walk(value, path + (str(i),))
    else:
        yield path, data


def test_no_secret_is_written_in_clear_in_any_inventory():
    checked = 0
    files = glob.glob(os.path.join(ROOT, "inventories", "**", "*.yml"), recursive=True)
    for path in files:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if text.startswith("$ANSIBLE_VAULT"):
            continue  # a vault-encrypted file is the documented way to keep secrets in the repo
        for keys, value in _walk(yaml.safe_load(text)):
            if keys and SECRET_KEY.search(keys[-1]) and value not in (None, ""):
                checked += 1
                assert SAFE_VALUE.search(str(value)), "%s: %s holds a value in clear" % (path, ".".join(keys))
    assert checked >= 2 * len(REAL_ENVS)


def test_sandbox_inventory_takes_everything_from_the_sandbox_environment(tmp_path):
    env = ansible_env(tmp_path, ES_URL="https://127.0.0.1:45678", ES_CA_FILE="/tmp/sandbox-ca.pem",
                      ES_USERNAME="elastic", ES_PASSWORD="from-env", AWS_ENDPOINT_URL="http://127.0.0.1:45679",
                      AWS_REGION="eu-west-1", SANDBOX_CLUSTER_NAME="logs-demo")
    expr = ("{{ {'url': es_url, 'ca': es_ca_file, 'user': es_username, 'aws': aws_endpoint_url, "
            "'region': aws_region, 'tags': es_asg_tags, 'password_set': es_password == 'from-env'} | to_json }}")
    proc = subprocess.run([os.path.join(BIN, "ansible"), "es_clusters", "-i", "inventories/sandbox",
                           "-m", "ansible.builtin.debug", "-a", "msg=" + expr], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rendered = yaml.safe_load(proc.stdout.split("=>", 1)[1])["msg"]
    rendered = json.loads(rendered) if isinstance(rendered, str) else rendered
    assert rendered == {"url": "https://127.0.0.1:45678", "ca": "/tmp/sandbox-ca.pem", "user": "elastic",
                        "aws": "http://127.0.0.1:45679", "region": "eu-west-1",
                        "tags": {"logstack:cluster": "logs-demo"}, "password_set": True}
