#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: elastalert_rules
short_description: Render ElastAlert rule templates with @@TOKEN@@ values, validate them, then deploy them as a set
description:
  - Reads rule templates (C(*.yaml), C(*.yml)) from one or more folders on the controller and replaces every
    C(@@NAME@@) with the value of C(NAME) from O(tokens) or O(secret_tokens).
  - Before anything in O(dest) is touched, fails when a token has no value (listing every file and token),
    when a rendered rule still holds an C(@@...@@) marker that is not a token (C(@@env-name@@), C(@@ ENV @@), a
    lone C(@@), or a marker brought in by a token's value; naming the file and the marker),
    when a rendered rule is not a YAML mapping, or when ElastAlert's own schema check
    (C(elastalert-test-rule --schema-only), run in O(image)) rejects a rule.
  - Then replaces changed files in O(dest) one atomic rename each and removes files that are no longer in the
    sources. ElastAlert reloads changed rule files by itself, so no restart is needed.
  - Has an action plugin; the template folders are read on the controller.
version_added: "0.1.0"
author:
  - logstack.elk maintainers (@logstack)
options:
  src:
    description:
      - Folders of rule templates on the controller (relative paths are looked up like C(copy) sources).
      - When two folders hold a file with the same name, the later folder wins.
    type: list
    elements: path
    default: []
  templates:
    description:
      - Rule templates, file name to template text; filled from O(src) by the action plugin (files from O(src) win).
    type: dict
    default: {}
  tokens:
    description: Token values for this environment (C(NAME) for C(@@NAME@@)).
    type: dict
    default: {}
  secret_tokens:
    description:
      - Token values that are secrets (webhook URLs with keys, passwords); never shown in output.
      - Rendered rules that contain them are written with O(mode), owned by O(owner).
    type: dict
    default: {}
  dest:
    description: Folder the running ElastAlert container reads its rules from.
    type: path
    required: true
  owner:
    description: Numeric uid that owns the rule files (the container user).
    type: int
    default: 1000
  group:
    description: Numeric gid of the rule files.
    type: int
    default: 1000
  mode:
    description: Mode of the rule files.
    type: raw
    default: "0640"
  schema_check:
    description: Run ElastAlert's schema check on every rendered rule before deploying.
    type: bool
    default: true
  image:
    description: ElastAlert image that runs the schema check; required when O(schema_check=true).
    type: str
  config:
    description: Path of the ElastAlert C(config.yaml) on the host, required by the schema check.
    type: path
attributes:
  check_mode:
    support: full
    description: Renders and validates, reports what would change, writes nothing.
  diff_mode:
    support: full
    description:
      - Shows each added or updated rule file as a diff against the live file, with the values of O(secret_tokens)
        replaced by C(********) on both sides (an older secret is hidden by the text before its token on the
        template line); a removed file is named, its content is not shown.
notes:
  - Values are substituted as text; quote them in the template where YAML needs it.
  - The schema check needs the C(docker) CLI on the host.
  - Tokens and YAML are checked on the controller first (by the action plugin), then again on the host
    when PyYAML is available there.
"""

EXAMPLES = r"""
- name: Deploy the rule library with this environment's values
  logstack.elk.elastalert_rules:
    src:
      - "{{ role_path }}/files/rules"
      - "{{ inventory_dir }}/elastalert-rules"
    tokens: "{{ elastalert_rule_tokens }}"
    secret_tokens: "{{ elastalert_rule_secret_tokens }}"
    dest: /opt/elastalert/rules
    image: logstack/elastalert2:2.19.0
    config: /opt/elastalert/config.yaml
"""

RETURN = r"""
rules:
  description: Names of all rule files deployed after the run.
  returned: always
  type: list
  elements: str
  sample: [http_5xx_spike.yaml, log_source_flatline.yaml]
added:
  description: Rule files that were (or in check mode would be) added.
  returned: always
  type: list
  elements: str
updated:
  description: Rule files whose content changed.
  returned: always
  type: list
  elements: str
removed:
  description: Rule files removed because they are no longer in the sources.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.logstack.elk.plugins.module_utils import rule_tokens


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="list", elements="path", default=[]),
            templates=dict(type="dict", default={}),
            # Not secret by contract: secrets go in secret_tokens (no_log), so these stay readable.
            tokens=dict(type="dict", default={}, no_log=False),
            secret_tokens=dict(type="dict", default={}, no_log=True),
            dest=dict(type="path", required=True),
            owner=dict(type="int", default=1000),
            group=dict(type="int", default=1000),
            mode=dict(type="raw", default="0640"),
            schema_check=dict(type="bool", default=True),
            image=dict(type="str"),
            config=dict(type="path"),
        ),
        required_if=[("schema_check", True, ("image", "config"))],
        supports_check_mode=True,
    )
    p = module.params
    if p["src"] and not p["templates"]:
        module.fail_json(msg="src was given but no templates were read: run this module through its action plugin")
    try:
        mode = int(str(p["mode"]), 8)
    except ValueError:
        module.fail_json(msg="mode must be an octal string such as 0640, not %s" % p["mode"])
    tokens = dict(p["tokens"])
    tokens.update(p["secret_tokens"])
    dest = p["dest"]
    try:
        rendered = rule_tokens.render_all(p["templates"], tokens, check_yaml=rule_tokens.HAS_YAML,
                                          secret_names=set(p["secret_tokens"]))
    except rule_tokens.RuleError as exc:
        module.fail_json(msg=str(exc))
    added, updated, removed, unchanged = rule_tokens.plan(rendered, dest)
    result = dict(changed=bool(added or updated or removed), rules=sorted(rendered),
                  added=added, updated=updated, removed=removed)
    if module._diff and result["changed"]:
        result["diff"] = rule_tokens.diffs(p["templates"], p["tokens"], p["secret_tokens"], dest,
                                           added, updated, removed)
    checkable = p["schema_check"]
    if checkable and module.check_mode:
        # A first run in check mode has neither config nor image yet: check what can be checked.
        docker = module.get_bin_path("docker")
        checkable = bool(docker) and os.path.exists(p["config"]) and \
            module.run_command([docker, "image", "inspect", p["image"]])[0] == 0
    if not (checkable or result["changed"]):
        module.exit_json(**result)
    parent = os.path.dirname(dest.rstrip("/")) or "/"
    if module.check_mode and not os.path.isdir(parent):
        module.exit_json(**result)
    if not os.path.isdir(parent):
        module.fail_json(msg="the parent folder of dest (%s) does not exist" % parent)
    staging = rule_tokens.stage(rendered, parent, mode=mode, owner=p["owner"], group=p["group"])
    try:
        if checkable and rendered:
            argv = rule_tokens.schema_check_command(module.get_bin_path("docker", required=True), p["image"],
                                                    staging, p["config"], sorted(rendered))
            rc, out, err = module.run_command(argv)
            if rc != 0:
                module.fail_json(msg="ElastAlert rejected rules, nothing was deployed: %s"
                                 % rule_tokens.summarize_rejections(out + err), **result)
        if not module.check_mode and result["changed"]:
            rule_tokens.apply(staging, dest, added, updated, removed)
    finally:
        rule_tokens.discard(staging)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
