"""awx/: the job templates as code. There is no AWX server here, so these check what can be
checked without one: the playbook that applies them parses and lints, and every template
points at a playbook of this project whose variables its survey sets."""
import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)

with open(os.path.join(ROOT, "awx", "job_templates.yml"), encoding="utf-8") as _fh:
    TEMPLATES = yaml.safe_load(_fh)["logstack_awx_job_templates"]


def test_the_five_job_templates_are_defined():
    assert {t["key"] for t in TEMPLATES} == {"upgrade", "reindex", "elastalert", "alarms", "environment"}


@pytest.mark.parametrize("template", TEMPLATES, ids=[t["key"] for t in TEMPLATES])
def test_job_template_playbook_exists_and_uses_every_survey_variable(template):
    path = os.path.join(ROOT, template["playbook"])
    assert os.path.isfile(path), template["playbook"]
    text = open(path, encoding="utf-8").read()
    # ...or the tasks of a role of this collection that it calls, which declare what they read.
    for role in re.findall(r"role: logstack\.elk\.(\w+)", text):
        for part in ("tasks", "meta"):
            folder = os.path.join(ROOT, "roles", role, part)
            text += "".join(open(os.path.join(folder, f), encoding="utf-8").read() for f in sorted(os.listdir(folder)))
    for question in template["survey"]:
        # A survey variable the playbook never reads would be silently ignored by AWX.
        assert re.search(r"\b%s\b" % re.escape(question["variable"]), text), question["variable"]
        assert question["type"] in ("text", "textarea", "password", "integer", "float",
                                    "multiplechoice", "multiselect")
        if question["type"] == "multiplechoice":
            assert question["default"] in question["choices"]


def test_only_the_elastalert_template_accepts_provisioning_callbacks():
    assert [t["key"] for t in TEMPLATES if t.get("allow_callbacks")] == ["elastalert"]


def test_configure_playbook_passes_syntax_check_and_production_lint():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "--syntax-check", "-i", "localhost,",
                           "awx/configure.yml"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([os.path.join(BIN, "ansible-lint"), "--profile", "production", "--offline", "awx/"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
