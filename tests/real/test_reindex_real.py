"""Reindex on real multi-node clusters: reindex-es.yml on Elasticsearch 7.17 (real ``_reindex`` tasks,
real ``_tasks`` polling, replicas on other nodes; both modes keep every document under the original
name, with the new mapping, the aliases and the replica count), and the reindex safety tests
(tests/integration/test_reindex_safety.py, test_reindex_sandbox.py) run against real Elasticsearch 7.17
and OpenSearch 2.19 clusters through REINDEX_TEST_ES_URL.

One cluster per family (``shared_real``, with test_snapshot_real.py): each test here starts by emptying
it (the safety tests' own reset)."""
import os
import re
import subprocess
import sys

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from tests.integration.reindex_cluster import Cluster, playbook
from tests.integration.test_reindex_osmem import DAYS, DOCS, assert_reindexed, seed
from tests.real.conftest import ROOT, scenario

VERSIONS = {"elasticsearch": "7.17.29", "opensearch": "2.19.6"}


def plain(family):
    """3 mixed nodes, no data, no roll (real-reindex.yml, on the family's version)."""
    return scenario("real-reindex.yml", real={"distribution": family, "heap": "256m"},
                    amis={"es-7.17": {"es_version": VERSIONS[family]}})


def emptied(sb, monkeypatch):
    monkeypatch.setenv("REINDEX_TEST_ES_URL", sb.env["ES_URL"])
    Cluster().reset()
    return sb


def test_reindex_playbook_copy_back_and_swap_on_a_real_multi_node_cluster(shared_real, monkeypatch):
    sb = emptied(shared_real(plain("elasticsearch")), monkeypatch)
    url = sb.env["ES_URL"]
    es = EsClient([url])
    seed(es)
    posts = len([m for m in sb.audit()["mutations"] if m.startswith("POST /_reindex")])
    for day, mode in zip(DAYS, ("copy_back", "swap")):
        name = "logstash-" + day
        run = playbook(url, "-e", "reindex_mode=%s" % mode, "-e", '{"reindex_indices": ["%s"]}' % name,
                       "-e", "reindex_timeout=300")
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "%s: reindexed, %d docs in" % (name, DOCS) in run.stdout, run.stdout[-3000:]
        assert_reindexed(es, name, mode=mode)
        again = playbook(url, "-e", "reindex_mode=%s" % mode, "-e", '{"reindex_indices": ["%s"]}' % name)
        assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    # real tasks: started with wait_for_completion=false and read back from the real _tasks API
    audit = sb.audit()
    assert len([m for m in audit["mutations"] if m.startswith("POST /_reindex")]) > posts, audit["mutations"]
    health = es.get("/_cluster/health")
    assert health["status"] == "green" and health["number_of_nodes"] == 3, health
    assert audit["docs_lost"] == 0


# OpenSearch lifts a read_only or metadata block only by an update of that one setting (Elasticsearch 7
# by any update naming read_only): the fixture's reset and the run's block swap go one setting at a time
# there (docs/real-clusters.md).
@pytest.mark.parametrize("family", ["elasticsearch", "opensearch"])
def test_reindex_safety_tests_pass_on_a_real_multi_node_cluster(shared_real, family):
    sb = shared_real(plain(family))
    env = dict(os.environ, REINDEX_TEST_ES_URL=sb.env["ES_URL"])
    proc = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:xdist", "-p", "no:cacheprovider", "-rs",
                           "tests/integration/test_reindex_safety.py", "tests/integration/test_reindex_sandbox.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-5000:]
    passed = int(re.search(r"(\d+) passed", proc.stdout).group(1))
    # the tests that need no fault injection ran for real: redundancy, write block API, write indices,
    # template aliases, tasks (a rerun finds a started task, cancel then delete), lock, disk (the low
    # watermark's refusal too), legacy templates
    assert passed >= 16, proc.stdout[-3000:]
    assert re.search(r"::test_a_copy_without_room_below_the_low_watermark_is_refused_with_the_figures PASSED",
                     proc.stdout), proc.stdout[-3000:]
