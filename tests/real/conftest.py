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

import os

import pytest
import yaml

from tests.sandbox_plugin import ROOT, SCENARIOS, Sandbox

UP_TIMEOUT = 1500  # first use on a machine resolves jars with Maven; six JVMs start on two busy cores


class RealSandbox(Sandbox):
    """The integration tests' background sandbox, for a real scenario (file name or dict)."""

    def __init__(self, scenario, state_dir):
        super().__init__(scenario, state_dir, timeout=UP_TIMEOUT, attempts=2)

    def exclusions(self):
        """Allocation exclusions and voting exclusions left (no shutdown API without x-pack)."""
        return self.allocation_exclusions(), self.voting_exclusions()


@pytest.hookimpl(tryfirst=True)  # before xdist's loadgroup reads the marks
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
