"""Real Elasticsearch / OpenSearch clusters under the playbooks (sandbox engine ``real``).

Each test starts ``python -m sandbox up`` with a real scenario (one JVM per node, jars from Maven
Central; moto plays AWS) and judges the run by the audit computed from the real cluster. The
distributions are resolved once into ``~/.cache/logstack-real`` (``make real-deps``, which .ci/run
calls); a machine without a JDK or Maven fails these tests with the reason, it never skips them.

Real clusters are heavy on two cores: the tests run in two ``xdist_group``s (``--dist loadgroup``), the
six-node upgrades on one worker and the rest on another, so at most two real clusters run at once
while the third worker takes the simulator's tests.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.integration.test_upgrade_support import ROOT, SCENARIOS, Sandbox

UP_TIMEOUT = 1500  # first use on a machine resolves jars with Maven; six JVMs start on two busy cores


class RealSandbox(Sandbox):
    """The integration tests' background sandbox, for a real scenario (file or dict)."""

    def __init__(self, scenario, state_dir):  # pylint: disable=super-init-not-called
        self.state = str(state_dir)
        os.makedirs(self.state, exist_ok=True)
        if isinstance(scenario, dict):
            path = os.path.join(self.state, "scenario.yml")
            with open(path, "w") as handle:
                yaml.safe_dump(scenario, handle)
            self.scenario = path
        else:
            self.scenario = os.path.join(SCENARIOS, scenario)
        up = subprocess.run([sys.executable, "-m", "sandbox", "up", "--scenario", self.scenario, "--state", self.state],
                            cwd=ROOT, timeout=UP_TIMEOUT, capture_output=True, text=True)
        if up.returncode != 0:
            log = ""
            try:
                with open(os.path.join(self.state, "sandbox.log")) as handle:
                    log = handle.read()[-3000:]
            except OSError:
                pass
            pytest.fail("the real sandbox did not start: %s\n%s" % (up.stderr.strip(), log))
        with open(os.path.join(self.state, "sandbox.json")) as handle:
            info = json.load(handle)
        self.env = dict(info["env"])
        with open(self.scenario) as handle:
            self.cluster_name = yaml.safe_load(handle)["cluster_name"]
        self.env["SANDBOX_CLUSTER_NAME"] = self.cluster_name

    def exclusions(self):
        """Allocation exclusions and voting exclusions left (no shutdown API without x-pack)."""
        settings = self.es("/_cluster/settings?flat_settings=true")
        names = [v for scope in ("persistent", "transient")
                 for k, v in settings.get(scope, {}).items() if k.startswith("cluster.routing.allocation.exclude")]
        voting = self.es("/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
        voting = voting["metadata"]["cluster_coordination"]["voting_config_exclusions"]
        return [n for n in names if n], voting


def pytest_collection_modifyitems(items):
    for item in items:
        if "/tests/real/" in str(item.fspath):
            group = "real-six-nodes" if item.fspath.basename == "test_upgrade_real.py" else "real-small"
            item.add_marker(pytest.mark.xdist_group(group))


def scenario(name, **changes):
    """A real scenario file's content with top-level keys replaced (a smaller cluster, a fault)."""
    with open(os.path.join(SCENARIOS, name)) as handle:
        data = yaml.safe_load(handle)
    data.update(changes)
    return data


@pytest.fixture
def real_sandbox(tmp_path):
    boxes = []

    def make(spec):
        sb = RealSandbox(spec, tmp_path / ("real%d" % len(boxes)))
        boxes.append(sb)
        return sb
    yield make
    for sb in boxes:
        sb.down()
