"""The reindex state machine against a multi-node cluster: the sandbox (3 data nodes, shard
allocation, replicas, _tasks) by default, or a real cluster (REINDEX_TEST_ES_URL, see
reindex_cluster.py).

The sandbox's reindex tasks progress at a set rate, stop at the first batch with failures, end
one batch after a cancel and keep their result readable at _tasks/<id>, as Elasticsearch's do;
its indices honour refresh_interval -1 (documents invisible to _count until a refresh).
"""
import os

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.reindex import (
    COPY_BACK_STEPS, SWAP_STEPS, Reindexer, ReindexError, reindex_all)

from test_reindex_osmem import DAYS, DOCS, _all_docs_somewhere, assert_reindexed, ids, options, seed  # noqa: E402

NAME = "logstash-" + DAYS[0]


def test_copy_back_reads_progress_and_failures_from_tasks(es_cluster):
    es = es_cluster.es
    seed(es, days=DAYS[:1])
    reindexer = Reindexer(es, options())
    out = reindex_all(reindexer)
    assert out["failure"] is None
    assert_reindexed(es, NAME)
    assert reindexer._tasks_api is True
    if es_cluster.sb is not None:
        log = [(m, p) for m, p, _ in es_cluster.requests()]
        started = [p for m, p in log if m == "POST" and p == "/_reindex"]
        assert len(started) == 1  # the copy; the final index is a clone of it
        # Its result was read, then deleted from .tasks.
        assert len([p for m, p in log if m == "DELETE" and p.startswith("/.tasks/_doc/")]) == 1
        assert es_cluster.tasks() == []


def test_rejected_document_is_reported_from_the_task_and_source_left_intact(es_cluster):
    es = es_cluster.es
    seed(es, days=DAYS[:1], bad_ids=("123",))
    out = reindex_all(Reindexer(es, options()))
    failure = out["failure"]
    assert failure["failures"][0]["id"] == "123"
    assert "failed to parse field [Status]" in failure["failures"][0]["reason"]
    assert "Documents of %s now: %s (the original index, %d documents)" % (NAME, NAME, DOCS) in failure["msg"]
    assert not es.exists("/%s-r" % NAME)
    assert ids(es, NAME) == sorted(str(i) for i in range(DOCS))
    es.put("/%s/_doc/after" % NAME, {"Status": "still writable"})


def test_copy_outlasting_the_timeout_is_cancelled_and_rolled_back(es_cluster):
    es = es_cluster.es
    es_cluster.set_reindex_rate(100.0)  # 300 documents take 3 s
    seed(es, days=DAYS[:1])
    with pytest.raises(ReindexError, match="did not finish within 0s") as err:
        Reindexer(es, options(timeout=0.3, poll_interval=0.1)).run(NAME)
    assert err.value.index == NAME
    assert es_cluster.tasks() == [], "the cancelled task ended and its result was deleted"
    assert not es.exists("/%s-r" % NAME)
    assert ids(es, NAME) == sorted(str(i) for i in range(DOCS))
    es.put("/%s/_doc/after" % NAME, {"Status": "still writable"})


def test_cancelled_copy_is_deleted_only_once_its_task_is_gone(es_cluster):
    """Cancelling is cooperative: the task writes the batch in flight after the cancel. The copy is
    deleted after the task ended, so that batch cannot re-create it."""
    es = es_cluster.es
    es_cluster.set_reindex_rate(200.0)
    seed(es, days=DAYS[:1])
    with pytest.raises(ReindexError, match="did not finish within"):
        Reindexer(es, options(timeout=0.3, poll_interval=0.05)).run(NAME)
    es_cluster.sb.cluster.tick()  # the task's next batch, had it still been running
    assert not es.exists("/%s-r" % NAME), "the cancelled task's last batch re-created the copy"
    log = es_cluster.requests()
    cancel = next(i for i, (m, p, _) in enumerate(log) if m == "POST" and p.endswith("/_cancel"))
    task = log[cancel][1].split("/")[2]
    dropped = next(i for i, (m, p, _) in enumerate(log) if m == "DELETE" and p == "/%s-r" % NAME)
    # Between the cancel and the delete: the task seen completed (its result then deleted).
    assert any(m == "DELETE" and p == "/.tasks/_doc/" + task and st == 200 for m, p, st in log[cancel:dropped])
    assert es_cluster.docs_lost() == 0


def test_task_vanishing_with_its_node_fails_without_deleting_the_source(es_cluster):
    es = es_cluster.es
    es_cluster.set_reindex_rate(100.0)
    seed(es, days=DAYS[:1])
    reindexer = Reindexer(es, options())
    for _ in range(3):  # create_temp, block_source, start_copy
        reindexer.step(NAME)
    state = es_cluster.state
    with state.lock:
        (task,) = state.documents.tasks.values()
        assert state.documents.drop_tasks_on_node(task.node) == 1
    with pytest.raises(ReindexError, match="is gone without a result"):
        reindexer.step(NAME)
    assert not es.exists("/%s-r" % NAME)
    assert ids(es, NAME) == sorted(str(i) for i in range(DOCS))
    # The next run starts over and finishes.
    es_cluster.set_reindex_rate(20000.0)
    assert reindex_all(Reindexer(es, options()))["failure"] is None
    assert_reindexed(es, NAME)


# The exhaustive sweep of every boundary runs on osmem (test_reindex_osmem.py); here the
# boundaries where a task is running or its result must be read back after the restart.
TASK_BOUNDARIES = [("copy_back", COPY_BACK_STEPS, "start_copy"), ("copy_back", COPY_BACK_STEPS, "wait_copy"),
                   ("copy_back", COPY_BACK_STEPS, "clone_final"), ("swap", SWAP_STEPS, "start_copy"),
                   ("swap", SWAP_STEPS, "swap")]


@pytest.mark.parametrize("mode,steps,last", TASK_BOUNDARIES)
def test_killed_while_a_copy_task_runs_a_rerun_polls_it_and_finishes(es_cluster, mode, steps, last):
    es = es_cluster.es
    es_cluster.set_reindex_rate(1000.0)  # 300 documents: the task still runs at the restart
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
    assert es_cluster.tasks() == [], "every task result read and deleted"
    assert es_cluster.docs_lost() == 0
