"""End to end: playbooks/deploy-elastalert.yml on this machine's Docker, ElastAlert 2 in its
container querying osmem-server, alerts posted to a local receiver (see conftest.py)."""
from __future__ import annotations

import glob
import os
import re
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SPIKE = "http_5xx_spike.yaml"


def _edit(path, old, new):
    with open(path) as f:
        text = f.read()
    assert old in text
    with open(path, "w") as f:
        f.write(text.replace(old, new))


def test_spike_alert_reaches_receiver_with_environment_tokens(elastalert_deployment):
    d = elastalert_deployment
    body = d.receiver.wait_for(lambda b: b.get("summary") == "HTTP 5xx spike")
    assert body is not None, "no spike alert within 90 s; container log:\n" + subprocess.run(
        ["docker", "logs", "--tail", "40", d.name], capture_output=True, text=True).stderr
    # The ci environment's values, from inventories/ci/group_vars/elastalert.yml.
    with open(os.path.join(ROOT, "inventories", "ci", "group_vars", "elastalert.yml")) as f:
        ci = yaml.safe_load(f)["elastalert_rule_tokens"]
    assert body["environment"] == "ci"
    assert body["kibana_url"] == ci["KIBANA_URL"] + "/app/discover"
    with open(os.path.join(d.base_dir, "rules", SPIKE)) as f:
        rendered = yaml.safe_load(f)
    assert rendered["name"] == "[ci] HTTP 5xx spike"
    assert rendered["num_events"] == ci["HTTP_5XX_MIN_EVENTS"]
    assert rendered["timeframe"] == {"minutes": ci["HTTP_5XX_TIMEFRAME_MINUTES"]}
    assert rendered["http_post2_url"] == d.receiver.url


def test_container_runs_non_root_with_sigint_and_read_only_mounts(elastalert_deployment):
    info = elastalert_deployment.inspect()
    assert info["running"]
    assert info["stop_signal"] == "SIGINT"
    assert info["user"] == "1000:1000"
    assert {m["Destination"]: m["RW"] for m in info["mounts"]} == {
        "/opt/elastalert/config.yaml": False, "/opt/elastalert/rules": False, "/opt/elastalert/certs": False}
    config = os.path.join(elastalert_deployment.base_dir, "config.yaml")
    st = os.stat(config)
    assert (oct(st.st_mode & 0o777), st.st_uid) == ("0o600", 1000)


def test_changed_rule_template_is_hot_reloaded_without_restart(elastalert_deployment):
    d = elastalert_deployment
    before = d.inspect()
    _edit(os.path.join(d.rules_src, SPIKE), 'summary: "HTTP 5xx spike"', 'summary: "HTTP 5xx spike (v2)"')
    _edit(os.path.join(d.rules_src, SPIKE), 'name: "[@@ENV_NAME@@] HTTP 5xx spike"',
          'name: "[@@ENV_NAME@@] HTTP 5xx spike v2"')
    rc, out = d.deploy()
    assert rc == 0, out[-3000:]
    after = d.inspect()
    assert (after["id"], after["started"]) == (before["id"], before["started"]), "container was restarted"
    # ElastAlert picked the changed file up by itself: the renamed rule alerts.
    body = d.receiver.wait_for(lambda b: b.get("summary") == "HTTP 5xx spike (v2)")
    assert body is not None, "the changed rule never alerted"


def test_changed_config_restarts_container(elastalert_deployment):
    d = elastalert_deployment
    before = d.inspect()
    d.vars["elastalert_alert_time_limit"] = {"hours": 12}  # kept for later deploys in this module
    rc, out = d.deploy()
    assert rc == 0, out[-3000:]
    after = d.inspect()
    assert after["running"]
    assert after["started"] != before["started"]
    with open(os.path.join(d.base_dir, "config.yaml")) as f:
        assert yaml.safe_load(f)["alert_time_limit"] == {"hours": 12}


def test_check_mode_reports_a_rule_change_without_writing_it(elastalert_deployment):
    d = elastalert_deployment
    before_files, before_container = d.rules_snapshot(), d.inspect()
    flatline = os.path.join(d.rules_src, "log_source_flatline.yaml")
    with open(flatline) as f:
        original = f.read()
    try:
        _edit(flatline, "use_count_query: true", "use_count_query: true\n# check-mode change")
        rc, out = d.deploy("--check")
    finally:
        with open(flatline, "w") as f:
            f.write(original)
    assert rc == 0, out[-3000:]
    assert re.search(r"changed: \[localhost\].*\n(.*\n)*?\s*updated:\s*\n\s*- log_source_flatline.yaml", out), out[-3000:]
    assert d.rules_snapshot() == before_files
    assert d.inspect()["id"] == before_container["id"]


BAD_RULES = {
    "unknown_token": ('name: "[@@ENV_NAME@@] bad"\ntype: any\nindex: "@@NO_SUCH_TOKEN@@"\nalert: [debug]\n',
                      "NO_SUCH_TOKEN"),
    "broken_yaml": ('name: "[@@ENV_NAME@@] bad"\ntype: any\nindex: [unclosed\nalert: [debug]\n', "not valid YAML"),
    "rejected_by_elastalert": ('name: "[@@ENV_NAME@@] bad"\ntype: frequency\nindex: logs-*\nalert: [debug]\n',
                               "ElastAlert rejected"),
}


@pytest.mark.parametrize("case", sorted(BAD_RULES))
def test_bad_rule_fails_before_touching_deployed_rules(elastalert_deployment, case):
    d = elastalert_deployment
    text, expected = BAD_RULES[case]
    before_files, before_container = d.rules_snapshot(), d.inspect()
    # A good change rides along: it must not be deployed either.
    flatline = os.path.join(d.rules_src, "log_source_flatline.yaml")
    with open(flatline) as f:
        original = f.read()
    bad = os.path.join(d.rules_src, "zz_bad_%s.yaml" % case)
    with open(bad, "w") as f:
        f.write(text)
    try:
        _edit(flatline, "use_count_query: true", "use_count_query: true\n# pending change")
        rc, out = d.deploy()
    finally:
        os.unlink(bad)
        with open(flatline, "w") as f:
            f.write(original)
    assert rc != 0, "a bad rule was deployed"
    assert expected in out and ("zz_bad_%s.yaml" % case) in out, out[-2000:]
    assert d.rules_snapshot() == before_files
    after = d.inspect()
    assert (after["id"], after["started"], after["running"]) == (
        before_container["id"], before_container["started"], True)
    assert d.rules_in_container() == before_files


def test_docker_stop_ends_it_with_its_stop_signal_and_never_a_kill(elastalert_deployment):
    # The mechanism, not a duration: Docker sends the stop signal (SIGINT), ElastAlert exits on it
    # with status 0, and Docker never had to send SIGKILL (the -t 60 grace left unused; a loaded
    # machine may be slow, a process ignoring SIGINT is killed and fails this).
    d = elastalert_deployment
    since = subprocess.run(["docker", "system", "info", "-f", "{{.SystemTime}}"], capture_output=True, text=True,
                           check=True).stdout.strip()
    subprocess.run(["docker", "stop", "-t", "60", d.name], check=True, capture_output=True)
    state = subprocess.run(["docker", "inspect", "-f", "{{.State.ExitCode}} {{.State.OOMKilled}}", d.name],
                           capture_output=True, text=True, check=True).stdout.split()
    until = subprocess.run(["docker", "system", "info", "-f", "{{.SystemTime}}"], capture_output=True, text=True,
                           check=True).stdout.strip()
    events = subprocess.run(["docker", "events", "--since", since, "--until", until, "--filter",
                             "container=" + d.name, "--filter", "event=kill", "--format",
                             "{{index .Actor.Attributes \"signal\"}}"],
                            capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["docker", "start", d.name], check=True, capture_output=True)
    assert events == ["2"], "kill signals sent by docker stop: %s (2 is SIGINT, 9 SIGKILL)" % events
    assert state == ["0", "false"], state


def test_no_secret_in_verbose_playbook_output(elastalert_deployment):
    d = elastalert_deployment
    # Every `ansible-playbook -v` run of this module so far, the first deploy (which wrote
    # config.yaml and every rule) at least.
    assert d.outputs
    for output in d.outputs:
        for secret in d.secrets:
            assert secret not in output
    # ...while the secrets did reach the deployed files (so the check above means something).
    with open(os.path.join(d.base_dir, "config.yaml")) as f:
        assert d.secrets[1] in f.read()
    with open(os.path.join(d.base_dir, "rules", "log_source_flatline.yaml")) as f:
        assert d.secrets[0] in f.read()


def test_inventories_hold_no_clear_text_elastalert_secrets():
    secret_keys = ("elastalert_es_password", "elastalert_es_api_key")
    for path in glob.glob(os.path.join(ROOT, "inventories", "*", "group_vars", "elastalert.yml")):
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        env = path.split(os.sep)[-3]
        values = [data[k] for k in secret_keys if k in data]
        values += list((data.get("elastalert_rule_secret_tokens") or {}).values())
        for value in values:
            # Only references (Vault / AWX / extra vars) may appear, never the secret itself.
            assert isinstance(value, str) and value.strip().startswith("{{"), "%s: clear-text secret" % env
