# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over plugins/module_utils/alarm_rules.py, used by the ``alarms`` role."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.logstack.elk.plugins.module_utils.alarm_rules import (
    AlarmRuleError,
    alarm_definitions,
    alarm_problems,
    builtin_alarms,
    builtin_group_alarms,
)


def _definitions(alarms, alarm_actions=None, ok_actions=None):
    try:
        return alarm_definitions(alarms, alarm_actions, ok_actions)
    except AlarmRuleError as exc:
        raise AnsibleFilterError(str(exc))


def _builtin(load_balancers, prefix):
    try:
        return builtin_alarms(load_balancers, prefix)
    except AlarmRuleError as exc:
        raise AnsibleFilterError(str(exc))


def _builtin_group(groups, prefix):
    try:
        return builtin_group_alarms(groups, prefix)
    except AlarmRuleError as exc:
        raise AnsibleFilterError(str(exc))


def _email_subscriptions(addresses):
    """["a@example.com"] -> [{"protocol": "email", "endpoint": "a@example.com"}] for sns_topic."""
    return [{"protocol": "email", "endpoint": str(address)} for address in addresses or []]


class FilterModule:
    def filters(self):
        return {
            "alarm_problems": alarm_problems,
            "alarm_definitions": _definitions,
            "builtin_alarms": _builtin,
            "builtin_group_alarms": _builtin_group,
            "email_subscriptions": _email_subscriptions,
        }
