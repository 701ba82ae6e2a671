"""A data node crashes at a point of a copy_back or swap run (sandbox fault injection): no
acknowledged document is lost (the audit's docs_lost, and every id under the index's name), and
the run, or a rerun, finishes or rolls back cleanly. The crashed node is the one holding the
primary of the index being written at that point (the worst one)."""
import os

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.reindex import COPY_BACK_STEPS, SWAP_STEPS, Reindexer

from reindex_cluster import Cluster  # noqa: E402
from test_reindex_osmem import DAYS, DOCS, assert_reindexed, ids, options, seed, settle  # noqa: E402

NAME = "logstash-" + DAYS[0]
TEMP = NAME + "-r"
POINTS = [("copy_back", p) for p in ("start_copy", "wait_copy", "replicate_temp", "delete_source",
                                     "clone_final", "verify_final", "delete_temp")] + \
         [("swap", p) for p in ("start_copy", "replicate_temp", "swap")]


@pytest.fixture
def fresh():
    c = Cluster()
    if c.sb is None:
        c.close()
        pytest.skip("needs the sandbox's fault injection")
    yield c
    c.close()


@pytest.mark.parametrize("mode,point", POINTS)
def test_a_data_node_crash_loses_no_document_and_a_rerun_finishes(fresh, mode, point):
    es = fresh.es
    fresh.set_reindex_rate(600.0)  # 300 documents: a copy runs for ~0.5 s
    seed(es, days=DAYS[:1])
    first = Reindexer(es, options(mode=mode, timeout=120))
    steps = COPY_BACK_STEPS if mode == "copy_back" else SWAP_STEPS
    for step in steps[:steps.index(point) + 1]:
        assert first.step(NAME) == step
    writing = NAME if point in ("clone_final", "verify_final", "delete_temp") and mode == "copy_back" \
        else TEMP if point in ("start_copy", "wait_copy") else NAME if point == "delete_temp" else TEMP
    if not es.exists("/" + writing) or list(es.get("/" + writing)) != [writing]:
        writing = TEMP
    crashed = fresh.crash_node_holding(writing)
    fresh.wait_nodes(2)
    outcomes = settle(es, mode, timeout=120)  # the run goes on, fails and rolls back, or a rerun finishes
    assert outcomes[-1] is None, "crash of %s at %s: %s" % (crashed, point, outcomes)
    assert ids(es, NAME) == sorted(str(i) for i in range(DOCS))
    assert_reindexed(es, NAME, mode=mode)
    assert fresh.docs_lost() == 0
