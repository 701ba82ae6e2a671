"""roles/upgrade/defaults/main.yml is where the upgrade's defaults live: its argument spec says the
same, and the modules' own option defaults (for use without the role) agree with it."""
import os

import yaml

from ansible_collections.logstack.elk.plugins.module_utils.rollout.spec import ROLLOUT_SPEC

ROLE = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "upgrade"))
# role variable -> option of es_rolling_upgrade / es_replace_node it is passed to
OPTION_OF = {"upgrade_strategy": "strategy", "upgrade_accept_data_loss": "accept_data_loss",
             "upgrade_max_nodes_out": "max_nodes_out", "upgrade_drain_method": "drain_method",
             "upgrade_compare": "compare", "upgrade_poll_interval": "poll_interval"}


def load(*path):
    return yaml.safe_load(open(os.path.join(ROLE, *path)))


def test_argument_spec_defaults_are_the_role_defaults():
    defaults = load("defaults", "main.yml")
    options = load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert {k: o["default"] for k, o in options.items() if "default" in o} == defaults


def test_module_option_defaults_agree_with_the_role_defaults():
    defaults = load("defaults", "main.yml")
    for var, option in OPTION_OF.items():
        assert ROLLOUT_SPEC[option]["default"] == defaults[var], var
