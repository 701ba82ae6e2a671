"""playbooks/reindex-es.yml run as operators run it (ansible-playbook subprocess, inventories/sandbox
taking ES_URL from the environment), against osmem-server (no _tasks API) and the sandbox's
Elasticsearch API (with _tasks), including real SIGKILLs of the run at chosen requests.
"""
import os
import signal

import pytest

from osmem_server import OsmemServer

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient

from reindex_cluster import HoldingProxy, playbook
from test_reindex_osmem import DAYS, DOCS, assert_reindexed, ids, seed


@pytest.fixture(scope="module")
def osmem():
    srv = OsmemServer.start(addr="127.0.0.1:0")
    yield srv
    srv.close()


@pytest.fixture
def clone(osmem):
    c = osmem.clone()
    yield c
    c.close()


def test_playbook_copy_back_on_osmem_keeps_names_counts_aliases_and_new_mapping(clone):
    es = EsClient([clone.url])
    seed(es)
    run = playbook(clone.url)
    assert run.returncode == 0, run.stdout + run.stderr
    for day in DAYS:
        name = "logstash-" + day
        assert "%s: reindexed, %d docs in" % (name, DOCS) in run.stdout
        assert_reindexed(es, name)
    assert "2 reindexed, 0 planned, 0 skipped, 0 refused, 0 failed" in run.stdout
    again = playbook(clone.url)
    assert again.returncode == 0 and "changed=0" in again.stdout


def test_playbook_swap_on_sandbox_polls_tasks_and_swaps(reindex_sandbox):
    url, state = reindex_sandbox
    es = EsClient([url])
    seed(es, docs=DOCS)
    run = playbook(url, "-e", "reindex_mode=swap")
    assert run.returncode == 0, run.stdout + run.stderr
    for day in DAYS:
        assert_reindexed(es, "logstash-" + day, mode="swap")
    # The copies ran as tasks; their results were read, then deleted from .tasks.
    log = state.requests()
    assert len([p for m, p, _ in log if m == "POST" and p == "/_reindex"]) == 2
    assert len([p for m, p, st in log if m == "DELETE" and p.startswith("/.tasks/_doc/") and st == 200]) == 2
    assert not state.state.unknown_requests
    assert state.docs_lost() == 0


def test_playbook_copy_back_on_sandbox_through_tasks(reindex_sandbox):
    url, state = reindex_sandbox
    es = EsClient([url])
    seed(es, days=DAYS[:1])
    run = playbook(url)
    assert run.returncode == 0, run.stdout + run.stderr
    assert_reindexed(es, "logstash-" + DAYS[0])
    log = state.requests()
    assert len([p for m, p, _ in log if m == "POST" and p == "/_reindex"]) == 1  # the copy
    assert ("POST", "/logstash-%s-r/_clone/logstash-%s" % (DAYS[0], DAYS[0]), 200) in log  # the final index


def test_playbook_rejected_document_fails_with_its_error_on_sandbox(reindex_sandbox):
    url, _ = reindex_sandbox
    es = EsClient([url])
    seed(es, days=DAYS[:1], bad_ids=("42",))
    name = "logstash-" + DAYS[0]
    run = playbook(url)
    assert run.returncode != 0
    assert "document 42:" in run.stdout and "failed to parse field [Status]" in run.stdout
    assert "0 reindexed, 0 planned, 0 skipped, 0 refused, 1 failed" in run.stdout
    assert not es.exists("/%s-r" % name)
    assert ids(es, name) == sorted(str(i) for i in range(DOCS))
    es.put("/%s/_doc/after" % name, {"Status": "x"})  # writable: raises on a write block


def test_playbook_swap_on_osmem_replaces_indices_by_aliases(clone):
    es = EsClient([clone.url])
    seed(es)
    run = playbook(clone.url, "-e", "reindex_mode=swap")
    assert run.returncode == 0, run.stdout + run.stderr
    for day in DAYS:
        assert_reindexed(es, "logstash-" + day, mode="swap")


def test_production_refuses_without_explicit_confirmation(clone):
    es = EsClient([clone.url])
    seed(es, days=DAYS[:1])
    run = playbook(clone.url, inventory="inventories/production")
    assert run.returncode != 0
    assert "requires confirmation" in run.stdout and "reindex_confirm=true" in run.stdout
    name = "logstash-" + DAYS[0]
    assert es.get("/%s/_mapping" % name)[name]["mappings"]["properties"]["Status"]["type"] == "text"


NAME = "logstash-" + DAYS[0]
KILL_POINTS = {
    # The copy task started but its id not yet recorded in the copy's _meta.
    "copy_started_unrecorded": (lambda m, p, b: m == "POST" and p.startswith("/_reindex"), True),
    # The source removed (aliases moved to the verified copy) in one _aliases call.
    "source_deleted": (lambda m, p, b: m == "POST" and p.startswith("/_aliases")
                       and b and b"remove_index" in b and (NAME + '"').encode() in b, True),
    # About to create the final index under the original name.
    "before_create_final": (lambda m, p, b: m == "PUT" and p == "/" + NAME and b and b"final" in b, False),
    # The copy back verified and green with its replicas (made with them), not yet marked replicated.
    "before_final_replicas": (lambda m, p, b: m == "PUT" and p == "/%s/_mapping" % NAME
                              and b and b'"replicated"' in b, False),
    # The copy back replicated, the temporary copy removed, settings not restored yet.
    "before_restore": (lambda m, p, b: m == "PUT" and p.startswith("/%s/_settings" % NAME)
                       and b and b"refresh_interval" in b, False),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_sigkill_of_the_run_then_rerun_finishes_without_losing_a_document(clone, point):
    es = EsClient([clone.url])
    seed(es, days=DAYS[:1])
    match, after = KILL_POINTS[point]
    proxy = HoldingProxy(clone.url, match, after)
    try:
        proc = playbook(proxy.url, "-e", "es_max_retries=0", popen=True)
        assert proxy.hit.wait(120), "the run never reached %s" % point
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        proxy.close()
    assert proc.returncode == -signal.SIGKILL
    rerun = playbook(clone.url)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert_reindexed(es, NAME)


def test_sigkill_while_polling_a_running_task_on_sandbox_then_rerun_finishes(reindex_sandbox):
    url, cluster = reindex_sandbox
    state = cluster.state
    state.documents.reindex_rate = 500.0  # 300 documents: the task runs for ~0.6 s
    es = EsClient([url])
    seed(es, days=DAYS[:1])
    proxy = HoldingProxy(url, lambda m, p, b: m == "GET" and p.startswith("/_tasks/"), True)
    try:
        proc = playbook(proxy.url, "-e", "es_max_retries=0", popen=True)
        assert proxy.hit.wait(120), "the run never polled a task"
        with state.lock:
            assert any(not t.done for t in state.documents.tasks.values()), "the task should still run"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        proxy.close()
    rerun = playbook(url)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert_reindexed(es, NAME)
    log = cluster.requests()
    assert len([p for m, p, _ in log if m == "POST" and p == "/_reindex"]) == 1, "one copy (the final is a clone)"
    assert [p for m, p, _ in log if m == "POST" and p.endswith("/_clone/" + NAME)], "the final index is a clone"
    assert not [p for m, p, _ in log if p.endswith("/_cancel")], "the rerun waited for the task of the killed run"
