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

TOKEN_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
# Any @@...@@ on one line is a marker, whatever it holds: a well-formed one is a token, the rest
# (@@env-name@@, @@ ENV @@, @@@@) are typos that ElastAlert would otherwise load as literal text.
MARKER_RE = re.compile(r"@@(.*?)@@")
RULE_SUFFIXES = (".yaml", ".yml")
MASK = "********"


class RuleError(Exception):
    """A rule set that must not be deployed; the message is one sentence for the operator."""


def _shown(marker, limit=40):
    return marker if len(marker) <= limit else marker[:limit] + "..."


def render(text, tokens, secret_names=()):
    """Return (rendered_text, sorted missing token names, markers left over).

    The template is scanned once, so a value is never rescanned as a template; leftovers are
    malformed markers and stray ``@@`` in the template, and any marker a value would bring
    in (a secret's value is never named, only its token).
    """
    missing, leftover = set(), []
    out, pos = [], 0
    for match in MARKER_RE.finditer(text):
        out.append(text[pos:match.start()])
        pos = match.end()
        name = match.group(1)
        if not TOKEN_NAME_RE.fullmatch(name):
            leftover.append(_shown(match.group(0)))
            out.append(match.group(0))
        elif name not in tokens or tokens[name] is None:
            missing.add(name)
            out.append(match.group(0))
        else:
            value = str(tokens[name])
            if MARKER_RE.search(value):
                leftover.append("the value of %s" % name if name in secret_names else
                                "%s (from the value of %s)" % (_shown(MARKER_RE.search(value).group(0)), name))
            out.append(value)
    out.append(text[pos:])
    return "".join(out), sorted(missing), leftover


def _stray(text):
    """Lone @@ in the template outside every marker (one half of a marker mistyped)."""
    stray = []
    for line in MARKER_RE.sub("", text).splitlines():
        if "@@" in line:
            stray.append("a lone @@ in %s" % _shown(line.strip(), 60))
    return stray


def render_all(templates, tokens, check_yaml=True, secret_names=()):
    """Render {filename: template text}; raise RuleError naming every file and token at fault."""
    bad_names = sorted(n for n in templates if os.path.basename(n) != n or not n.endswith(RULE_SUFFIXES))
    if bad_names:
        raise RuleError("rule file names must be plain *.yaml/*.yml names: %s" % ", ".join(bad_names))
    rendered, missing, markers = {}, [], []
    for name in sorted(templates):
        text, absent, leftover = render(templates[name], tokens, secret_names)
        leftover = _stray(templates[name]) + leftover
        if absent:
            missing.append("%s (%s)" % (name, ", ".join(absent)))
        if leftover:
            markers.append("%s (%s)" % (name, ", ".join(leftover)))
        rendered[name] = text
    if missing:
        raise RuleError("rule templates use tokens that have no value for this environment: %s" % "; ".join(missing))
    if markers:
        raise RuleError("rendered rules still hold @@ markers that are not @@NAME@@ tokens (NAME: letters, digits, _);"
                        " correct them in the rule template or the token value: %s" % "; ".join(markers))
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


def _masked_before(live_text, template, rendered_text, secrets):
    """The live file with secrets hidden: current values by value, older ones by the text that
    precedes a secret token on its template line (``http_post2_url: "``)."""
    prefixes, blind = [], False
    for line in template.splitlines():
        cut = min((m.start() for m in MARKER_RE.finditer(line) if m.group(1) in secrets), default=None)
        if cut is not None:
            if line[:cut].strip():
                prefixes.append(line[:cut])
            else:
                blind = True  # a line that is all secret: no prefix tells an old value apart
    known = set(rendered_text.splitlines())
    lines = []
    for line in live_text.splitlines(True):
        for value in secrets.values():
            if value:
                line = line.replace(str(value), MASK)
        hit = next((p for p in prefixes if line.startswith(p)), None)
        if hit is not None and MASK not in line:
            line = hit + MASK + "\n"
        elif blind and line.rstrip("\n") not in known and MASK not in line:
            line = MASK + "\n"
        lines.append(line)
    return "".join(lines)


def diffs(templates, tokens, secrets, live_dir, added, updated, removed):
    """Ansible --diff entries for the files that change, secret token values shown as MASK."""
    masked = dict(tokens)
    masked.update({name: MASK for name in secrets})
    entries = []
    for name in sorted(list(added) + list(updated)):
        before = ""
        if name in updated:
            with open(os.path.join(live_dir, name), encoding="utf-8", errors="replace") as f:
                before = _masked_before(f.read(), templates[name], render(templates[name], dict(tokens, **secrets))[0],
                                        secrets)
        entries.append(dict(before_header=os.path.join(live_dir, name), after_header=os.path.join(live_dir, name),
                            before=before, after=render(templates[name], masked)[0]))
    for name in sorted(removed):
        # No template left to tell where its secrets are: the name only.
        entries.append(dict(before_header=os.path.join(live_dir, name), after_header="(removed)",
                            before="(content not shown: a removed rule may hold secrets)\n", after=""))
    return entries


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
