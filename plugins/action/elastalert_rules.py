# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of logstack.elk.elastalert_rules: read the template folders here,
then run the module on the managed host with their text (templates hold no secrets)."""
from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.logstack.elk.plugins.module_utils import rule_tokens

RULE_SUFFIXES = (".yaml", ".yml")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        sources = args.pop("src", None) or []
        if isinstance(sources, str):
            sources = [sources]
        templates = dict(args.pop("templates", None) or {})
        for src in sources:
            try:
                folder = self._find_needle("files", src)
            except AnsibleError:
                raise AnsibleActionFail("rule template folder %s does not exist on the controller" % src)
            if not os.path.isdir(folder):
                raise AnsibleActionFail("rule template source %s is not a folder" % src)
            # Later folders override earlier ones file by file (an environment can replace a library rule).
            for name in sorted(os.listdir(folder)):
                path = os.path.join(folder, name)
                if name.endswith(RULE_SUFFIXES) and os.path.isfile(path):
                    with open(path, encoding="utf-8") as f:
                        templates[name] = f.read()
        args["templates"] = templates
        # Fail on missing tokens / invalid YAML here, before the host is contacted at all
        # (and whether or not the host has PyYAML).
        tokens = dict(args.get("tokens") or {})
        tokens.update(args.get("secret_tokens") or {})
        try:
            rule_tokens.render_all(templates, tokens, secret_names=set(args.get("secret_tokens") or {}))
        except rule_tokens.RuleError as exc:
            result.update(failed=True, changed=False, msg=str(exc))
            return result
        result.update(self._execute_module(module_name="logstack.elk.elastalert_rules",
                                           module_args=args, task_vars=task_vars))
        return result
