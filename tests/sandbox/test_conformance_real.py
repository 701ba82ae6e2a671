"""The simulator against recordings of real Elasticsearch 7.17.29 (tests/fixtures/recordings/).

``python -m sandbox.real.record --all`` ran cluster-info, the upgrade (check mode, then drain) and
both reindex modes on a real 7.16.3 -> 7.17.29 cluster behind a recording front, and kept for each
API the collection called the statuses and response shapes. Here the same sequence runs on the
simulator presenting 7.17.29 (sandbox/scenarios/sim-es7.yml, the real scenario's twin): every API
both answered must answer with a status the real cluster gave and a shape contained in the real
one, and the rollout must end the same way. Differences that remain are listed in KNOWN with the
reason, and in sandbox/README.md ("Known differences from the real clusters").
"""
import json
import os

import pytest

from sandbox.real.record import RECORDINGS, record
from sandbox.recording import compare

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# API -> why the simulator's answer may differ from the real one (keep sandbox/README.md in step)
KNOWN = {
    # The simulator presents a 7.17 with x-pack (as ECK and Elastic Cloud run it): its nodes carry the
    # xpack.installed attribute and it has the node shutdown API. The 7.17 jars on Maven Central have
    # no x-pack: no such attribute, and GET _nodes/shutdown is node info for a node named "shutdown".
    "GET nodes.info": "x-pack attribute xpack.installed",
    "POST cluster.allocation_explain": "x-pack attribute xpack.installed",
    "GET shutdown.get_node": "x-pack node shutdown API",
}


@pytest.fixture(scope="module")
def recordings():
    with open(os.path.join(RECORDINGS, "elasticsearch-7.17.json")) as handle:
        real = json.load(handle)
    sim = record(os.path.join(ROOT, "sandbox", "scenarios", "sim-es7.yml"), log=lambda *_: None)
    return real, {"meta": sim["meta"], "apis": sim["recorder"].apis}


def test_the_simulator_answers_the_collections_requests_as_real_elasticsearch_does(recordings):
    real, sim = recordings
    common = set(sim["apis"]) & set(real["apis"])
    assert len(common) >= 12, sorted(common)  # the comparison covers the APIs the playbooks lean on
    diffs = [d for d in compare(sim, real)
             if not (d.split(" ?")[0].split(" 2")[0] in KNOWN
                     and ("xpack" in d or "shutdown" in KNOWN[d.split(" ?")[0].split(" 2")[0]]))]
    assert diffs == [], "\n".join(diffs)


def test_the_same_rollout_ends_the_same_way_on_both_engines(recordings):
    real, sim = recordings
    assert [r["rc"] for r in sim["meta"]["runs"]] == [r["rc"] for r in real["meta"]["runs"]] == [0] * 5
    for key in ("docs_lost", "red_seconds", "nodes_replaced", "outdated_nodes_left"):
        assert sim["meta"]["audit"][key] == real["meta"]["audit"][key], (key, sim["meta"], real["meta"])
    assert sim["meta"]["audit"]["max_nodes_out"] <= 1 and real["meta"]["audit"]["max_nodes_out"] <= 1
