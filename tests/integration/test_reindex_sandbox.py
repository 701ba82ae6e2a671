"""The reindex state machine against the sandbox's Elasticsearch API: the _tasks polling path.

The sandbox's reindex tasks progress at a set rate, stop at the first batch with failures and
keep their result readable at _tasks/<id>, as Elasticsearch's do; its indices honour
refresh_interval -1 (documents invisible to _count until a refresh).
"""
import os

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.reindex import (
    COPY_BACK_STEPS, SWAP_STEPS, Reindexer, ReindexError, reindex_all)

from sandbox.es_api.documents import install  # noqa: E402
from sandbox.es_api.server import start_server  # noqa: E402
from sandbox.state import SandboxState  # noqa: E402
from test_reindex_osmem import DAYS, DOCS, _all_docs_somewhere, assert_reindexed, ids, options, seed  # noqa: E402

NAME = "logstash-" + DAYS[0]


def sandbox(rate=20000.0):
    state = SandboxState()
    install(state, reindex_rate=rate)
    server, url = start_server(state)
    return state, server, EsClient([url], max_retries=0)


@pytest.fixture
def box():
    state, server, es = sandbox()
    yield state, es
    server.shutdown()
    server.server_close()


def test_copy_back_reads_progress_and_failures_from_tasks(box):
    state, es = box
    seed(es, days=DAYS[:1])
    reindexer = Reindexer(es, options())
    out = reindex_all(reindexer)
    assert out["failure"] is None
    assert_reindexed(es, NAME)
    assert reindexer._tasks_api is True
    tasks = list(state.documents.tasks.values())
    assert [t.description for t in tasks] == ["reindex from [%s] to [%s-r]" % (NAME, NAME),
                                              "reindex from [%s-r] to [%s]" % (NAME, NAME)]
    assert all(t.done and t.created == DOCS and t.version_type == "external" for t in tasks)


def test_rejected_document_is_reported_from_the_task_and_source_left_intact(box):
    _, es = box
    seed(es, days=DAYS[:1], bad_ids=("123",))
    out = reindex_all(Reindexer(es, options()))
    failure = out["failure"]
    assert failure["failures"][0]["id"] == "123"
    assert "failed to parse field [Status]" in failure["failures"][0]["reason"]
    assert not es.exists("/%s-r" % NAME)
    assert ids(es, NAME) == sorted(str(i) for i in range(DOCS))
    es.put("/%s/_doc/after" % NAME, {"Status": "still writable"})


def test_copy_outlasting_the_timeout_is_cancelled_and_rolled_back():
    state, server, es = sandbox(rate=100.0)  # 300 documents take 3 s
    try:
        seed(es, days=DAYS[:1])
        with pytest.raises(ReindexError, match="did not finish within 0s") as err:
            Reindexer(es, options(timeout=0.3, poll_interval=0.1)).run(NAME)
        assert err.value.index == NAME
        (task,) = state.documents.tasks.values()
        assert task.canceled
        assert not es.exists("/%s-r" % NAME)
        assert ids(es, NAME) == sorted(str(i) for i in range(DOCS))
        es.put("/%s/_doc/after" % NAME, {"Status": "still writable"})
    finally:
        server.shutdown()
        server.server_close()


def test_task_vanishing_with_its_node_fails_without_deleting_the_source():
    state, server, es = sandbox(rate=100.0)
    try:
        seed(es, days=DAYS[:1])
        reindexer = Reindexer(es, options())
        for _ in range(3):  # create_temp, block_source, start_copy
            reindexer.step(NAME)
        with state.lock:
            (task,) = state.documents.tasks.values()
            assert state.documents.drop_tasks_on_node(task.node) == 1
        with pytest.raises(ReindexError, match="is gone without a result"):
            reindexer.step(NAME)
        assert not es.exists("/%s-r" % NAME)
        assert ids(es, NAME) == sorted(str(i) for i in range(DOCS))
        # The next run starts over and finishes.
        state.documents.reindex_rate = 20000.0
        assert reindex_all(Reindexer(es, options()))["failure"] is None
        assert_reindexed(es, NAME)
    finally:
        server.shutdown()
        server.server_close()


# The exhaustive sweep of every boundary runs on osmem (test_reindex_osmem.py); here the
# boundaries where a task is running or its result must be read back after the restart.
TASK_BOUNDARIES = [("copy_back", COPY_BACK_STEPS, "start_copy"), ("copy_back", COPY_BACK_STEPS, "wait_copy"),
                   ("copy_back", COPY_BACK_STEPS, "start_copy_back"), ("swap", SWAP_STEPS, "start_copy"),
                   ("swap", SWAP_STEPS, "swap")]


@pytest.mark.parametrize("mode,steps,last", TASK_BOUNDARIES)
def test_killed_while_a_copy_task_runs_a_rerun_polls_it_and_finishes(mode, steps, last):
    state, server, es = sandbox(rate=1000.0)  # 300 documents: the task still runs at the restart
    try:
        seed(es, days=DAYS[:1])
        first = Reindexer(es, options(mode=mode))
        boundary = steps.index(last) + 1
        done = [first.step(NAME) for _ in range(boundary)]
        assert done == list(steps[:boundary])
        assert _all_docs_somewhere(es, NAME), "documents lost after %s" % last
        rerun = reindex_all(Reindexer(es, options(mode=mode)))
        assert rerun["failure"] is None, rerun["failure"]
        assert rerun["results"][0]["steps"] == list(steps[boundary:])
        assert_reindexed(es, NAME, mode=mode)
        assert all(t.done and not t.failures and not t.canceled for t in state.documents.tasks.values())
    finally:
        server.shutdown()
        server.server_close()
