"""Real Elasticsearch / OpenSearch clusters under the playbooks (sandbox engine ``real``).

Each test starts ``python -m sandbox up`` with a real scenario (one JVM per node, jars from Maven
Central; moto plays AWS) and judges the run by the audit computed from the real cluster. The
distributions are resolved once into ``~/.cache/logstack-real`` (``make real-deps``, which .ci/run
calls); a machine without a JDK or Maven fails these tests with the reason, it never skips them.

Real clusters are heavy on two cores, and starting one costs a minute on a loaded machine: tests that
can share a cluster do (``shared_real``: one cluster per ``xdist_group``, stopped once the group's last
test ends; each test resets what it needs). Under ``--dist loadgroup`` a group runs on one worker, in
order; the other real tests are scheduled one by one, so two workers keep two real clusters busy.
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


# xdist_group of each test that shares a cluster (module, or module and parameter): the cluster is one
# per group and worker. The six-node upgrades are groups of one, so that they can be handed out first.
GROUPS = {
    "test_upgrade_real.py": lambda name, p: "real-six-%s" % p["name"],
    "test_reindex_real.py": lambda name, p: "real-plain-%s" % p.get("family", "elasticsearch"),
    "test_snapshot_real.py": lambda name, p: "real-plain-%s" % p["family"],
    # the module fixture ``untouched``
    "test_upgrade_real_faults.py": lambda name, p: "real-untouched" if name.startswith(
        ("test_terminate_refuses", "test_cluster_info_maps")) else None,
}


def group_of(item):
    rule = GROUPS.get(item.fspath.basename)
    if rule is None or "/tests/real/" not in str(item.fspath):
        return None
    return rule(item.originalname, getattr(getattr(item, "callspec", None), "params", {}))


@pytest.hookimpl(tryfirst=True)  # before xdist's loadgroup reads the marks
def pytest_collection_modifyitems(items):
    """Mark the groups, and put each group's tests next to each other (in their order): a shared cluster
    is stopped when the next test is of another group, also without xdist. The six-node upgrades, the
    longest, go first: xdist hands out the groups of several tests first, then the rest in this order,
    so neither is left for the end."""
    slots = [i for i, item in enumerate(items) if "/tests/real/" in str(item.fspath)]
    real = [items[i] for i in slots]
    first = {}
    for n, item in enumerate(real):
        group = group_of(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
            first.setdefault(group, n - len(real) if group.startswith("real-six-") else n)
    ordered = sorted(enumerate(real), key=lambda p: (first.get(group_of(p[1]), p[0]), p[0]))
    for slot, (_n, item) in zip(slots, ordered):
        items[slot] = item


class _Shared:
    """Real clusters shared by the tests of one group (``shared_real(spec)``), stopped after its last test."""

    def __init__(self, factory):
        self.factory = factory
        self.boxes = {}  # group -> RealSandbox

    def get(self, item, spec):
        group = group_of(item)
        assert group, "%s is in no group of tests/real/conftest.py GROUPS" % item.nodeid
        if group not in self.boxes:
            self.boxes[group] = RealSandbox(spec, self.factory.mktemp(group))
        return self.boxes[group]

    def release(self, group):
        sb = self.boxes.pop(group, None)
        if sb is not None:
            sb.down()


_shared = []


@pytest.fixture(scope="session")
def _shared_clusters(tmp_path_factory):
    shared = _Shared(tmp_path_factory)
    _shared.append(shared)
    yield shared
    for group in list(shared.boxes):
        shared.release(group)
    _shared.remove(shared)


@pytest.fixture
def shared_real(request, _shared_clusters):
    """The group's real cluster, started from ``spec`` by the group's first test."""
    return lambda spec: _shared_clusters.get(request.node, spec)


def pytest_runtest_teardown(item, nextitem):
    group = group_of(item)
    if group and _shared and (nextitem is None or group_of(nextitem) != group):
        _shared[0].release(group)


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
