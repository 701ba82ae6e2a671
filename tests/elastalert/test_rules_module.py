"""logstack.elk.elastalert_rules through ansible-playbook (action plugin + module) on this machine,
without Docker (schema_check off): leftover markers and diff mode."""
from __future__ import annotations

import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPLATE = 'name: "[@@ENV_NAME@@] spike"\nnum_events: @@MIN@@\ntype: any\nindex: logs-*\nalert: [post2]\n' \
           'http_post2_url: "@@WEBHOOK_URL@@"\n'


def run(tmp_path, tokens, secret_tokens, *args):
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "Deploy rules", "logstack.elk.elastalert_rules": {
            "src": [str(tmp_path / "src")], "dest": str(tmp_path / "live"), "schema_check": False,
            "tokens": tokens, "secret_tokens": secret_tokens,
            "owner": os.getuid(), "group": os.getgid()}}]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=%s" % sys.executable, str(tmp_path / "play.yml"), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def snapshot(folder):
    return {p.name: p.read_text() for p in sorted(folder.iterdir())}


def test_a_malformed_marker_fails_the_deploy_before_the_live_folder_changes(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "spike.yaml").write_text(TEMPLATE)
    tokens, secrets = {"ENV_NAME": "ci", "MIN": 5}, {"WEBHOOK_URL": "https://hooks/k-9f3a"}
    rc, out = run(tmp_path, tokens, secrets)
    assert rc == 0, out[-3000:]
    before = snapshot(tmp_path / "live")
    # A typo in a changed rule and a new rule: neither may reach the live folder.
    (tmp_path / "src" / "spike.yaml").write_text(TEMPLATE.replace("num_events: @@MIN@@", "num_events: @@MIN@@\n"
                                                                  "description: \"owner @@alert-owner@@\""))
    (tmp_path / "src" / "other.yaml").write_text(TEMPLATE)
    rc, out = run(tmp_path, tokens, secrets)
    assert rc != 0
    assert "spike.yaml (@@alert-owner@@)" in out, out[-3000:]
    assert snapshot(tmp_path / "live") == before


def test_diff_mode_shows_the_rule_change_with_the_secret_hidden(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "spike.yaml").write_text(TEMPLATE)
    old = {"WEBHOOK_URL": "https://hooks/old-k-71c2"}
    rc, out = run(tmp_path, {"ENV_NAME": "ci", "MIN": 5}, old)
    assert rc == 0, out[-3000:]
    before = snapshot(tmp_path / "live")
    # The threshold and the webhook secret both change (a rotated key).
    rc, out = run(tmp_path, {"ENV_NAME": "ci", "MIN": 7}, {"WEBHOOK_URL": "https://hooks/new-k-0d4e"},
                  "--check", "--diff")
    assert rc == 0, out[-3000:]
    assert "-num_events: 5" in out and "+num_events: 7" in out, out[-3000:]
    assert 'http_post2_url: "********' in out, out[-3000:]
    assert "old-k-71c2" not in out and "new-k-0d4e" not in out
    assert snapshot(tmp_path / "live") == before  # check mode wrote nothing
