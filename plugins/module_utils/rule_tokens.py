# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render ElastAlert rule templates with @@TOKEN@@ placeholders and stage them safely.

Plain Python, no Ansible: the module and the tests drive these functions directly.

Flow (each step fails before anything deployed is touched):
  1. render every template; collect *all* tokens without a value, per file;
  2. parse every rendered rule as YAML (one mapping per file);
  3. write the rendered set to a staging folder and let ElastAlert's own schema check
     (``elastalert-test-rule --schema-only``) look at every file;
  4. only then replace changed files in the live folder (atomic rename per file) and
     remove files that are no longer in the source.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile

try:
    import yaml
    HAS_YAML = True
except ImportError:  # minimal hosts; the controller (action plugin) always checks YAML
    HAS_YAML = False

TOKEN_RE = re.compile(r"@@([A-Za-z0-9_]+)@@")
RULE_SUFFIXES = (".yaml", ".yml")


class RuleError(Exception):
    """A rule set that must not be deployed; the message is one sentence for the operator."""


def render(text, tokens):
    """Return (rendered_text, sorted missing token names)."""
    missing = set()

    def sub(match):
        name = match.group(1)
        if name not in tokens or tokens[name] is None:
            missing.add(name)
            return match.group(0)
        return str(tokens[name])

    return TOKEN_RE.sub(sub, text), sorted(missing)


def render_all(templates, tokens, check_yaml=True):
    """Render {filename: template text}; raise RuleError naming every file and token at fault."""
    bad_names = sorted(n for n in templates if os.path.basename(n) != n or not n.endswith(RULE_SUFFIXES))
    if bad_names:
        raise RuleError("rule file names must be plain *.yaml/*.yml names: %s" % ", ".join(bad_names))
    rendered, missing = {}, []
    for name in sorted(templates):
        text, absent = render(templates[name], tokens)
        if absent:
            missing.append("%s (%s)" % (name, ", ".join(absent)))
        rendered[name] = text
    if missing:
        raise RuleError("rule templates use tokens that have no value for this environment: %s" % "; ".join(missing))
    if not check_yaml:
        return rendered
    errors = []
    for name in sorted(rendered):
        try:
            doc = yaml.safe_load(rendered[name])
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = " at line %d" % (mark.line + 1) if mark is not None else ""
            errors.append("%s%s: %s" % (name, where, getattr(exc, "problem", None) or "invalid YAML"))
            continue
        if not isinstance(doc, dict):
            errors.append("%s: a rule must be a YAML mapping" % name)
    if errors:
        raise RuleError("rendered rules are not valid YAML: %s" % "; ".join(errors))
    return rendered


def _digest(data):
    return hashlib.sha256(data).hexdigest()


def plan(rendered, live_dir):
    """Compare the rendered set with the live folder: (added, updated, removed, unchanged) names."""
    live = {}
    if os.path.isdir(live_dir):
        for entry in os.listdir(live_dir):
            path = os.path.join(live_dir, entry)
            if entry.endswith(RULE_SUFFIXES) and os.path.isfile(path):
                with open(path, "rb") as f:
                    live[entry] = _digest(f.read())
    added, updated, unchanged = [], [], []
    for name in sorted(rendered):
        want = _digest(rendered[name].encode("utf-8"))
        if name not in live:
            added.append(name)
        elif live[name] != want:
            updated.append(name)
        else:
            unchanged.append(name)
    removed = sorted(set(live) - set(rendered))
    return added, updated, removed, unchanged


def stage(rendered, parent, mode=0o640, owner=None, group=None):
    """Write the rendered set to a new staging folder under ``parent``; return its path.

    Files get their final owner and mode here, so the schema check (running as the
    container user) reads them exactly as the live container will.
    """
    staging = tempfile.mkdtemp(prefix=".rules-staging-", dir=parent)
    os.chmod(staging, 0o755)
    for name, text in rendered.items():
        path = os.path.join(staging, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, mode)
        if owner is not None or group is not None:
            os.chown(path, -1 if owner is None else owner, -1 if group is None else group)
    return staging


# Runs in the ElastAlert image: the very code of `elastalert-test-rule --schema-only`, one
# interpreter for all files (a process per file costs seconds each).
SCHEMA_CHECK_SCRIPT = """
import sys
from elastalert.test_rule import MockElastAlerter
rc = 0
for name in sys.argv[1:]:
    try:
        MockElastAlerter(["--schema-only", "--config", "/check/config.yaml", "/check/rules/" + name]).run_rule_test()
    except BaseException as exc:
        rc = 1
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        print("REJECTED " + name)
        print(" ".join(lines[1:2] or lines[:1]) or type(exc).__name__)
sys.exit(rc)
"""


def schema_check_command(docker, image, staging, config_path, names, network=None):
    """docker run argv that runs ElastAlert's schema check on every staged rule in one container."""
    argv = [docker, "run", "--rm", "--network", network or "none",
            "-v", "%s:/check/rules:ro" % staging,
            "-v", "%s:/check/config.yaml:ro" % config_path,
            "--entrypoint", "python3", image, "-c", SCHEMA_CHECK_SCRIPT]
    return argv + list(names)


def summarize_rejections(output):
    """Turn the schema-check output into one line: 'a.yaml: reason; b.yaml: reason'."""
    parts, current, reason = [], None, None
    for line in output.splitlines():
        if line.startswith("REJECTED "):
            if current:
                parts.append("%s: %s" % (current, reason or "rejected"))
            current, reason = line[len("REJECTED "):].strip(), None
        elif current and line.strip() and reason is None:
            reason = line.strip()
    if current:
        parts.append("%s: %s" % (current, reason or "rejected"))
    return "; ".join(parts) or output.strip()[-500:]


def apply(staging, live_dir, added, updated, removed):
    """Move staged files into the live folder (atomic per file) and delete removed ones."""
    os.makedirs(live_dir, exist_ok=True)
    for name in list(added) + list(updated):
        os.replace(os.path.join(staging, name), os.path.join(live_dir, name))
    for name in removed:
        os.unlink(os.path.join(live_dir, name))


def discard(staging):
    shutil.rmtree(staging, ignore_errors=True)
