"""`python -m sandbox`: run / up / audit / env / down as a user (or make demo) calls them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = os.path.join(ROOT, "sandbox", "scenarios")

SMALL = os.path.join(SCENARIOS, "small.yml")


def sandbox_cmd(*args, timeout=90, env=None):
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = ROOT + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "sandbox", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=ROOT)


CHECK = (
    "import os, sys, json, urllib.request, boto3\n"
    "h = json.load(urllib.request.urlopen(os.environ['ES_URL'] + '/_cluster/health'))\n"
    "groups = boto3.client('autoscaling').describe_auto_scaling_groups()['AutoScalingGroups']\n"
    "print('HEALTH', h['status'], h['number_of_nodes'], [g['AutoScalingGroupName'] for g in groups])\n"
    "sys.exit(int(sys.argv[1]))\n"
)


def test_run_points_the_command_at_the_sandbox_passes_its_exit_status_and_ends_with_the_audit(tmp_path):
    state = tmp_path / "state"
    proc = sandbox_cmd("run", "--scenario", SMALL, "--state", str(state), "--",
                       sys.executable, "-c", CHECK, "7")
    assert proc.returncode == 7, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "HEALTH green 3 ['es-nodes']" in lines
    audit = json.loads(lines[-1])
    assert audit["docs_lost"] == 0 and audit["unknown_requests"] == 0
    assert audit["docs_expected"] == 1800 and audit["request_count"] >= 1
    assert audit["mutating_requests"] == 0 and audit["mutations"] == []  # the command only read
    assert json.loads((state / "audit.json").read_text()) == audit
    events = [json.loads(x)["event"] for x in (state / "events.jsonl").read_text().splitlines()]
    assert "master_elected" in events and "cluster_formed" in events


def test_run_rejects_a_bad_scenario_with_one_sentence(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("amis: {a: {es_version: 8.15.0}}\ngroups: [{name: g, role: leader, size: 1, ami: a}]\n")
    proc = sandbox_cmd("run", "--scenario", str(bad), "--", "true")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("sandbox: groups[0].role must be master, data or mixed (or give 'roles'), "
                                   "not 'leader'")
    assert "Traceback" not in proc.stderr


def test_up_audit_env_down_round_trip_serves_several_commands_against_one_cluster(tmp_path):
    state = tmp_path / "bg"
    up = sandbox_cmd("up", "--scenario", SMALL, "--state", str(state))
    assert up.returncode == 0, up.stderr + (state / "sandbox.log").read_text()
    try:
        info = json.loads(up.stdout.strip().splitlines()[-1])
        health = json.load(urllib.request.urlopen(info["es_url"] + "/_cluster/health"))
        assert health["status"] == "green" and health["number_of_nodes"] == 3

        again = sandbox_cmd("up", "--scenario", SMALL, "--state", str(state))
        assert again.returncode == 2 and "already running" in again.stderr

        env = sandbox_cmd("env", "--state", str(state))
        exports = dict(line[len("export "):].split("=", 1) for line in env.stdout.splitlines())
        assert exports["ES_URL"] == info["es_url"]
        assert exports["AWS_ENDPOINT_URL"] == info["aws_endpoint"]
        assert exports["AWS_REGION"] == "us-east-1" and exports["AWS_ACCESS_KEY_ID"] == "testing"

        urllib.request.urlopen(info["es_url"] + "/_cat/nodes").read()
        audit = json.loads(sandbox_cmd("audit", "--state", str(state)).stdout)
        assert audit["request_count"] >= 2 and audit["nodes"] == 3
    finally:
        down = sandbox_cmd("down", "--state", str(state))
    assert down.returncode == 0, down.stderr
    final = json.loads(down.stdout)
    assert final["docs_lost"] == 0
    assert not (state / "sandbox.json").exists()
    with pytest.raises(OSError):
        urllib.request.urlopen(info["es_url"] + "/", timeout=2)


TLS_SCENARIO = """
name: tls
cluster_name: tls
es: {version: 7.17.22, https: true, auth: %s}
amis: {a: {es_version: 7.17.22}}
groups: [{name: es-nodes, role: mixed, size: 1, ami: a}]
indices: [{name: one, primaries: 1, replicas: 0, docs: 10, size: 1KB}]
"""

TLS_CHECK = (
    "import os, ssl, base64, json, urllib.request, urllib.error\n"
    "ctx = ssl.create_default_context(cafile=os.environ['ES_CA_FILE'])\n"
    "url = os.environ['ES_URL'] + '/_cluster/health'\n"
    "assert url.startswith('https://')\n"
    "try:\n"
    "    urllib.request.urlopen(url, context=ctx)\n"
    "    raise SystemExit('unauthenticated request was accepted')\n"
    "except urllib.error.HTTPError as e:\n"
    "    assert e.code == 401, e.code\n"
    "if 'ES_API_KEY' in os.environ:\n"
    "    auth = 'ApiKey ' + os.environ['ES_API_KEY']\n"
    "else:\n"
    "    auth = 'Basic ' + base64.b64encode((os.environ['ES_USERNAME'] + ':' + os.environ['ES_PASSWORD']).encode()).decode()\n"
    "req = urllib.request.Request(url, headers={'Authorization': auth})\n"
    "print('STATUS', json.load(urllib.request.urlopen(req, context=ctx))['status'])\n"
    "try:\n"
    "    urllib.request.urlopen(req, context=ssl.create_default_context())\n"
    "    raise SystemExit('an unknown CA was trusted')\n"
    "except urllib.error.URLError as e:\n"
    "    assert 'CERTIFICATE_VERIFY_FAILED' in str(e), e\n"
)


@pytest.mark.parametrize("auth", ["basic", "api_key"])
def test_run_serves_https_with_a_generated_ca_and_credentials_in_the_environment(tmp_path, auth):
    scenario = tmp_path / "tls.yml"
    scenario.write_text(TLS_SCENARIO % auth)
    proc = sandbox_cmd("run", "--scenario", str(scenario), "--state", str(tmp_path / "st"), "--",
                       sys.executable, "-c", TLS_CHECK)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "STATUS green" in proc.stdout
    info = (tmp_path / "st" / "sandbox.json")
    assert oct(info.stat().st_mode & 0o777) == "0o600"


def test_help_describes_each_command_and_each_option():
    top = sandbox_cmd("--help")
    assert top.returncode == 0
    listed = {}
    for line in top.stdout.split("positional arguments:")[1].splitlines()[2:]:
        words = line.split(None, 1)
        if line.startswith("    ") and not line.startswith("      ") and words:
            listed[words[0]] = words[1] if len(words) > 1 else ""
    assert set(listed) == {"run", "up", "audit", "env", "down"}, top.stdout  # serve is internal
    assert all(len(text) > 10 for text in listed.values()), listed
    assert "SUPPRESS" not in top.stdout
    for command in listed:
        sub = sandbox_cmd(command, "--help")
        assert sub.returncode == 0
        options = sub.stdout.split("options:")[1]
        assert "--state STATE" in options and "state directory" in options, sub.stdout
        if command in ("run", "up"):
            assert "scenario file" in options, sub.stdout
