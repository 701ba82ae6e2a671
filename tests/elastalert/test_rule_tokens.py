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


@pytest.mark.parametrize("marker", ["@@env-name@@", "@@ ENV_NAME @@", "@@@@", "@@env.name@@", "@@ÉNV@@",
                                    "@@ENV_NAME@", "@ENV_NAME@@"])
def test_any_marker_left_after_rendering_is_refused_with_rule_and_marker(marker):
    templates = {"a.yaml": "name: ok @@ENV_NAME@@\n", "b.yaml": "name: x\nindex: \"%s\"\n" % marker}
    with pytest.raises(rt.RuleError) as err:
        rt.render_all(templates, {"ENV_NAME": "ci"})
    msg = str(err.value)
    assert "b.yaml (" in msg and "a.yaml" not in msg, msg
    assert marker.strip("@")[:3] in msg or marker in msg, msg


def test_a_marker_brought_in_by_a_value_is_refused_and_a_secret_is_not_shown():
    with pytest.raises(rt.RuleError) as err:
        rt.render_all({"a.yaml": "name: @@ENV@@\n"}, {"ENV": "@@OTHER@@"})
    assert "a.yaml (@@OTHER@@ (from the value of ENV))" in str(err.value)
    with pytest.raises(rt.RuleError) as err:
        rt.render_all({"a.yaml": "url: @@HOOK@@\n"}, {"HOOK": "https://x/@@s3cret@@"}, secret_names={"HOOK"})
    assert "the value of HOOK" in str(err.value) and "s3cret" not in str(err.value)


def test_diff_masks_secrets_old_and_new(tmp_path):
    template = 'name: "[@@ENV@@] spike"\nnum_events: @@N@@\nhttp_post2_url: "@@HOOK@@"\n'
    live = tmp_path / "rules"
    live.mkdir()
    # Deployed with an older webhook secret and another threshold.
    (live / "spike.yaml").write_text('name: "[ci] spike"\nnum_events: 5\nhttp_post2_url: "https://h/old-s3cr3t"\n')
    (live / "gone.yaml").write_text('url: "https://h/gone-s3cr3t"\n')
    tokens, secrets = {"ENV": "ci", "N": 9}, {"HOOK": "https://h/new-s3cr3t"}
    rendered = rt.render_all({"new.yaml": template, "spike.yaml": template}, dict(tokens, **secrets))
    added, updated, removed, _ = rt.plan(rendered, str(live))
    entries = rt.diffs({"new.yaml": template, "spike.yaml": template}, tokens, secrets, str(live),
                       added, updated, removed)
    by_name = {os.path.basename(e["before_header"]): e for e in entries}
    assert sorted(by_name) == ["gone.yaml", "new.yaml", "spike.yaml"]
    text = repr(entries)
    assert "s3cr3t" not in text, text
    spike = by_name["spike.yaml"]
    assert "num_events: 5\n" in spike["before"] and "num_events: 9\n" in spike["after"]
    assert 'http_post2_url: "********' in spike["before"] and 'http_post2_url: "********"' in spike["after"]
    assert by_name["new.yaml"]["before"] == "" and 'name: "[ci] spike"' in by_name["new.yaml"]["after"]
