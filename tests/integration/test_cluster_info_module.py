"""es_cluster_info run by Ansible itself (ad-hoc, JSON callback) against real peers:
osmem-server (OpenSearch), the sandbox's HTTP API (TLS, authentication) and moto."""
import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REGION = "eu-west-1"


def run_module(args, check=False, env=None, tmp_path=None):
    """Run the module with `ansible localhost -m`; returns (result dict, full output)."""
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "localhost", "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % sys.executable,
           "-m", "logstack.elk.es_cluster_info"]
    if args:
        cmd += ["-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    full_env = dict(env if env is not None else os.environ)
    full_env.update(ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                    ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    if tmp_path is not None:
        full_env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / "ansible-local")
        full_env["ANSIBLE_HOME"] = str(tmp_path / "ansible-home")
    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    try:
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise AssertionError("no JSON result from ansible:\n" + output[-3000:])
    return result, output


def assert_one_sentence_failure(result, output, starts_with):
    assert result.get("failed") is True, result
    message = result["msg"]
    assert message.startswith(starts_with), message
    assert "\n" not in message and message.endswith(".")
    assert "Traceback" not in output


# -- fixtures -----------------------------------------------------------------
@pytest.fixture(scope="module")
def osmem():
    from osmem_server import OsmemServer
    with OsmemServer.start(japanese=False) as server:
        server.request("PUT", "/logs-2024.11.01", {"settings": {"number_of_shards": 2, "number_of_replicas": 1}})
        yield server


def _ca_and_cert(tmp_path):
    def key():
        return ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cas = []
    for name in ("right-ca", "wrong-ca"):
        ca_key = key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ca = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
        path = tmp_path / ("%s.pem" % name)
        path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        cas.append((ca_key, ca, str(path)))
    ca_key, ca, _ = cas[0]
    server_key = key()
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca.subject).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp_path / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "server.key").write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return {"certfile": str(tmp_path / "server.pem"), "keyfile": str(tmp_path / "server.key")}, cas[0][2], cas[1][2]


def _clean_env(tmp_path, **extra):
    """The environment minus anything AWS or ES: no credentials leak in from the host."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ES_"))}
    env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent",
               AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))
    env.update(extra)
    return env


# -- Elasticsearch only ----------------------------------------------------------
@pytest.mark.parametrize("check", [False, True])
def test_reads_an_opensearch_cluster_without_aws_and_changes_nothing(osmem, check, tmp_path):
    result, output = run_module({"es_url": osmem.url}, check=check, env=_clean_env(tmp_path), tmp_path=tmp_path)
    assert result["changed"] is False and not result.get("failed"), output[-2000:]
    assert result["cluster"]["distribution"] == "opensearch"
    assert result["health"]["status"] == "yellow"
    assert result["elected_master"] == "osmem-node"
    [node] = result["nodes"]
    assert node["master_eligible"] and node["data"] and node["elected_master"]
    assert node["instance_id"] is None and node["outdated"] is None
    assert node["shards"] == 2 and node["primaries"] == 2
    assert [(s["index"], s["shard"], s["primary"]) for s in result["unassigned_shards"]] == [
        ("logs-2024.11.01", 0, False), ("logs-2024.11.01", 1, False)]
    assert result["groups"] == [] and result["outdated_nodes"] == []
    assert result["summary"][0].startswith("opensearch ")
    # Reads only: the index is exactly as the fixture made it.
    assert osmem.request("GET", "/logs-2024.11.01/_settings")["logs-2024.11.01"]["settings"]["index"][
        "number_of_replicas"] == "1"


def test_es_url_falls_back_to_the_environment(osmem, tmp_path):
    result, output = run_module({}, env=_clean_env(tmp_path, ES_URL=osmem.url), tmp_path=tmp_path)
    assert result["cluster"]["name"] == "osmem", output[-2000:]


# -- failure modes: one sentence, no traceback -------------------------------------
def test_bad_url_fails_in_one_sentence(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result, output = run_module({"es_url": "http://127.0.0.1:%d" % port, "es_max_retries": 0},
                                env=_clean_env(tmp_path), tmp_path=tmp_path)
    assert_one_sentence_failure(result, output, "Cannot connect to Elasticsearch at http://127.0.0.1:%d "
                                                "(connection refused)" % port)


def test_url_without_scheme_fails_in_one_sentence(tmp_path):
    result, output = run_module({"es_url": "es.internal:9200"}, env=_clean_env(tmp_path), tmp_path=tmp_path)
    assert_one_sentence_failure(result, output, "Elasticsearch URL 'es.internal:9200' has no scheme")


def test_wrong_password_fails_in_one_sentence_and_never_shows_the_password(sandbox_http, tmp_path):
    url = sandbox_http(auth={"basic": {"user": "elastic", "password": "right-pass-123"}}).url
    result, output = run_module({"es_url": url, "es_username": "elastic", "es_password": "Wr0ng-pass-456"},
                                env=_clean_env(tmp_path), tmp_path=tmp_path)
    assert_one_sentence_failure(result, output, "Elasticsearch at %s refused the credentials (401" % url)
    assert "Wr0ng-pass-456" not in output


def test_wrong_api_key_fails_in_one_sentence(sandbox_http, tmp_path):
    url = sandbox_http(auth={"api_key": "id-1:right"}).url
    result, output = run_module({"es_url": url}, env=_clean_env(tmp_path, ES_API_KEY="id-1:not-the-key"),
                                tmp_path=tmp_path)
    assert_one_sentence_failure(result, output, "Elasticsearch at %s refused the credentials (401" % url)
    assert "not-the-key" not in output


def test_tls_mismatch_fails_in_one_sentence(sandbox_http, tmp_path):
    tls, right_ca, wrong_ca = _ca_and_cert(tmp_path)
    url = sandbox_http(tls=tls).url
    result, output = run_module({"es_url": url, "es_ca_file": wrong_ca, "es_max_retries": 0},
                                env=_clean_env(tmp_path), tmp_path=tmp_path)
    assert_one_sentence_failure(result, output, "TLS to %s failed (certificate verify failed)" % url)
    # With the right CA the TLS handshake and GET / succeed; this bare sandbox HTTP
    # server has no cluster engine, so the first cluster endpoint is what fails.
    result, output = run_module({"es_url": url, "es_ca_file": right_ca}, env=_clean_env(tmp_path), tmp_path=tmp_path)
    assert result["msg"].startswith("Elasticsearch answered GET /_cluster/health with 400"), result["msg"]


def test_missing_aws_credentials_fail_in_one_sentence(osmem, moto_url, tmp_path):
    result, output = run_module({"es_url": osmem.url, "region": REGION, "endpoint_url": moto_url,
                                 "asg_tags": {"logstack:cluster": "osmem"}}, env=_clean_env(tmp_path),
                                tmp_path=tmp_path)
    assert_one_sentence_failure(result, output, "No AWS credentials found for autoscaling DescribeAutoScalingGroups")


def test_unknown_group_name_fails_in_one_sentence(osmem, moto_url, tmp_path):
    env = _clean_env(tmp_path, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    result, output = run_module({"es_url": osmem.url, "region": REGION, "endpoint_url": moto_url,
                                 "asg_names": ["no-such-group"]}, env=env, tmp_path=tmp_path)
    assert_one_sentence_failure(result, output, "Auto Scaling Group(s) not found: no-such-group.")


def test_instances_that_run_no_node_are_reported(osmem, moto_url, tmp_path):
    # A group whose instances are not in the (osmem) cluster: the node is unmapped,
    # the instance has no node; nothing is called outdated without a mapping.
    asg = boto3.client("autoscaling", region_name=REGION, endpoint_url=moto_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2.create_launch_template(LaunchTemplateName="lt-orphans", LaunchTemplateData={
        "ImageId": "ami-12c6146b", "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": "es_version", "Value": "8.15.0"}]}]})
    asg.create_auto_scaling_group(AutoScalingGroupName="orphans", MinSize=1, MaxSize=1, DesiredCapacity=1,
                                  AvailabilityZones=[REGION + "a"],
                                  LaunchTemplate={"LaunchTemplateName": "lt-orphans", "Version": "$Latest"},
                                  Tags=[{"Key": "logstack:cluster", "Value": "orphans", "PropagateAtLaunch": True}])
    env = _clean_env(tmp_path, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    result, output = run_module({"es_url": osmem.url, "region": REGION, "endpoint_url": moto_url,
                                 "asg_tags": {"logstack:cluster": "orphans"}}, env=env, tmp_path=tmp_path)
    assert result["changed"] is False, output[-2000:]
    [group] = result["groups"]
    assert group["name"] == "orphans" and group["target"]["version"] == "8.15.0"
    assert group["target"]["image_id"] == "ami-12c6146b"
    assert result["instances_without_node"] == group["instances"] and len(group["instances"]) == 1
    assert result["unmapped_nodes"] == ["osmem-node"]
    assert result["outdated_nodes"] == []
