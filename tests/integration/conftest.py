"""Fixtures of the reindex tests against a cluster (the sandbox's reindex.yml scenario, or the real
cluster REINDEX_TEST_ES_URL names; see reindex_cluster.py). The sandbox's own fixtures are in
tests/sandbox_plugin.py."""
import pytest
from reindex_cluster import Cluster


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    yield c
    c.close()


@pytest.fixture
def es_cluster(cluster):
    """The module's cluster, emptied before each test."""
    cluster.reset()
    yield cluster


@pytest.fixture
def reindex_sandbox(cluster):
    """(url, cluster) of the module's cluster, which must be the sandbox (3 data nodes: replicas, health,
    _tasks with slow reindex tasks), emptied, its reindex tasks at 2000 documents a second."""
    cluster.need_sandbox("the sandbox's task rate and request log")
    cluster.reset()
    cluster.state.documents.reindex_rate = 2000.0
    yield cluster.url, cluster
