"""plugins/module_utils/rule_tokens.py without Docker: rendering, validation, and the file swap."""
from __future__ import annotations

import os

import pytest

from ansible_collections.logstack.elk.plugins.module_utils import rule_tokens as rt

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIBRARY = os.path.join(ROOT, "roles", "elastalert", "files", "rules")


def test_missing_tokens_are_all_listed_per_file():
    templates = {"a.yaml": "name: @@ENV@@ @@X@@\n", "b.yaml": "index: @@Y@@\n", "c.yaml": "name: ok\n"}
    with pytest.raises(rt.RuleError) as err:
        rt.render_all(templates, {"ENV": "ci"})
    assert str(err.value) == ("rule templates use tokens that have no value for this environment: "
                              "a.yaml (X); b.yaml (Y)")


def test_every_library_token_is_defined_in_every_environment():
    import yaml
    templates = {n: open(os.path.join(LIBRARY, n)).read() for n in os.listdir(LIBRARY)}
    for env in ("ci", "staging", "production", "scratch", "sandbox"):
        with open(os.path.join(ROOT, "inventories", env, "group_vars", "elastalert.yml")) as f:
            gv = yaml.safe_load(f)
        tokens = dict(gv["elastalert_rule_tokens"])
        tokens.update({k: "secret" for k in gv["elastalert_rule_secret_tokens"]})
        rendered = rt.render_all(templates, tokens)
        assert all("@@" not in text for text in rendered.values()), env


def test_invalid_yaml_is_reported_with_file_and_line():
    with pytest.raises(rt.RuleError) as err:
        rt.render_all({"ok.yaml": "name: a\n", "bad.yaml": "name: a\nindex: [x\n"}, {})
    assert "bad.yaml at line" in str(err.value) and "ok.yaml" not in str(err.value)


def test_a_rule_must_be_a_mapping_and_a_plain_yaml_file_name():
    with pytest.raises(rt.RuleError, match="must be a YAML mapping"):
        rt.render_all({"list.yaml": "- a\n- b\n"}, {})
    with pytest.raises(rt.RuleError, match="plain"):
        rt.render_all({"../escape.yaml": "name: a\n"}, {})


def test_swap_adds_updates_and_removes_only_what_differs(tmp_path):
    live = tmp_path / "rules"
    live.mkdir()
    (live / "keep.yaml").write_text("name: keep\n")
    (live / "old.yaml").write_text("name: old\n")
    (live / "change.yaml").write_text("name: v1\n")
    (live / "notes.txt").write_text("not a rule\n")
    rendered = {"keep.yaml": "name: keep\n", "change.yaml": "name: v2\n", "new.yaml": "name: new\n"}
    added, updated, removed, unchanged = rt.plan(rendered, str(live))
    assert (added, updated, removed, unchanged) == (["new.yaml"], ["change.yaml"], ["old.yaml"], ["keep.yaml"])
    keep_inode = (live / "keep.yaml").stat().st_ino
    staging = rt.stage(rendered, str(tmp_path))
    rt.apply(staging, str(live), added, updated, removed)
    rt.discard(staging)
    assert sorted(os.listdir(live)) == ["change.yaml", "keep.yaml", "new.yaml", "notes.txt"]
    assert (live / "change.yaml").read_text() == "name: v2\n"
    assert (live / "keep.yaml").stat().st_ino == keep_inode  # untouched file not rewritten
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".rules-staging-")]


def test_schema_rejections_summarised_per_file():
    out = "REJECTED a.yaml\n'alert' is a required property\nREJECTED b.yaml\nUnknown rule type\n"
    assert rt.summarize_rejections(out) == "a.yaml: 'alert' is a required property; b.yaml: Unknown rule type"
