# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: progress
type: aggregate
short_description: Print the progress of a rolling upgrade's waits (bytes left, rate, ETA per node)
version_added: 0.2.0
description:
  - The upgrade role's wait steps (M(logstack.elk.es_replace_node) with O(logstack.elk.es_replace_node#module:wait_seconds))
    return after a bounded wait with the progress they measured and are retried until done. Ansible prints
    only C(FAILED - RETRYING) for a retry; this callback prints the progress line of each retry under it, in
    the terminal and, through ansible-runner's event capture, in AWX's job output.
  - Enable it in C(ansible.cfg) (C(callbacks_enabled = logstack.elk.progress)) or with
    C(ANSIBLE_CALLBACKS_ENABLED); the project's ansible.cfg does.
author:
  - logstack.elk maintainers (@logstack)
requirements:
  - enabled in the callbacks_enabled setting
"""

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "logstack.elk.progress"
    CALLBACK_NEEDS_ENABLED = True

    def v2_runner_retry(self, result):
        progress = result._result.get("progress")
        if isinstance(progress, dict) and progress.get("line"):
            self._display.display("progress: [%s] %s" % (result._host.get_name(), progress["line"]))
