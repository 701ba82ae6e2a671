"""The reindex state machine driven in-process against osmem-server (third party, no _tasks API).

Each test gets its own osmem clone. Indices are built as operators have them: daily
``logstash-YYYY.MM.DD`` indices created under an old template (``Status`` text), then the
template changed (``Status`` integer).
"""
import datetime
import threading
import time

import pytest

from osmem_server import OsmemServer

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.reindex import (
    COPY_BACK_REINDEX_STEPS, SWAP_STEPS, Options, Reindexer, ReindexError, reindex_all)

DAYS = ("2024.01.01", "2024.01.02")
DOCS = 300


@pytest.fixture(scope="module")
def server():
    srv = OsmemServer.start(addr="127.0.0.1:0")
    yield srv
    srv.close()


@pytest.fixture
def es(server):
    clone = server.clone()
    yield EsClient([clone.url], max_retries=0)
    clone.close()


def template(es, status_type):
    es.put("/_index_template/logstash", {
        "index_patterns": ["logstash-*"],
        "template": {"settings": {"number_of_shards": 1},
                     "mappings": {"properties": {"Status": {"type": status_type},
                                                 "@timestamp": {"type": "date"}}}}})


def seed(es, days=DAYS, docs=DOCS, bad_ids=()):
    template(es, "text")
    # The aliases also cover an archive index, as in production: the only index of an alias would
    # be its (implicit) write index, which the reindex leaves alone.
    if not es.exists("/archive-logs"):
        es.put("/archive-logs", {"settings": {"number_of_replicas": 0},
                                 "aliases": {"logs": {}, "logs-errors": {"filter": {"term": {"level": "error"}}}}})
    for day in days:
        name = "logstash-" + day
        es.put("/" + name, {"settings": {"number_of_replicas": 1},
                            "aliases": {"logs": {}, "logs-errors": {"filter": {"term": {"level": "error"}}}}})
        lines = []
        for i in range(docs):
            status = "not-a-number" if str(i) in bad_ids else str(200 + i % 7 * 50)
            lines += [{"index": {"_index": name, "_id": str(i)}},
                      {"Status": status, "level": "error" if i % 2 else "info",
                       "@timestamp": day.replace(".", "-") + "T00:00:00Z"}]
        es.bulk(lines, params={"refresh": "true"})
    template(es, "integer")


def options(**kw):
    base = dict(indices=["logstash-*"], probe_seconds=0.2, poll_interval=0.02, stall_polls=3)
    base.update(kw)
    return Options(**base)


def settle(es, mode, runs=3, **kw):
    """Run (and rerun) the reindex until a run has nothing left to do; the failure message of each run
    (None for a run that finished). After a crash the first run may fail and roll back."""
    outcomes = []
    for _ in range(runs):
        out = reindex_all(Reindexer(es, options(mode=mode, **kw)))
        outcomes.append(out["failure"] and out["failure"]["msg"])
        if out["failure"] is None and not out["results"]:
            break
    return outcomes


def ids(es, index):
    body = es.post("/%s/_search" % index, {"size": 10000, "_source": False, "sort": ["_doc"]})
    return sorted(h["_id"] for h in body["hits"]["hits"])


def assert_reindexed(es, name, mode="copy_back", docs=DOCS):
    """The promise: complete, correctly mapped data under the original name, nothing left over."""
    state = es.get("/%s" % name)
    concrete = list(state)
    if mode == "copy_back":
        assert concrete == [name], "the original name must be a real index again"
    else:
        assert concrete == [name + "-r"], "the original name must be an alias of the copy"
    index = concrete[0]
    assert ids(es, name) == sorted(str(i) for i in range(docs)), "every document kept"
    assert state[index]["mappings"]["properties"]["Status"]["type"] == "integer"
    settings = es.get("/%s/_settings" % index, params={"flat_settings": "true"})[index]["settings"]
    assert settings.get("index.blocks.write") in (None, "false")
    assert settings["index.number_of_replicas"] == "1", "original replica count restored"
    assert "index.refresh_interval" not in settings, "refresh interval back to the default"
    aliases = es.get("/%s/_alias" % index)[index]["aliases"]
    assert "logs" in aliases and aliases["logs-errors"]["filter"] == {"term": {"level": "error"}}
    # The new mapping is in force: range query and aggregation on the integer field.
    body = es.post("/%s/_search" % name, {"size": 0, "query": {"range": {"Status": {"gte": 400}}},
                                          "aggs": {"top": {"max": {"field": "Status"}}}})
    assert body["hits"]["total"]["value"] > 0 and body["aggregations"]["top"]["value"] == 500.0
    if mode == "copy_back":
        assert not es.exists("/%s-r" % name), "no -r index left"


def test_copy_back_keeps_names_counts_aliases_and_applies_new_mapping(es):
    seed(es)
    out = reindex_all(Reindexer(es, options()))
    assert out["failure"] is None and out["changed"] is True
    assert [r["index"] for r in out["results"]] == ["logstash-" + d for d in DAYS]
    for result in out["results"]:
        assert result["docs"] == DOCS and result["mode"] == "copy_back"
        assert result["steps"] == list(COPY_BACK_REINDEX_STEPS)
        assert result["deleted"] == [result["index"], result["index"] + "-r"]
        assert result["seconds"] > 0 and result["docs_per_second"] > 0
        assert_reindexed(es, result["index"])


def test_swap_replaces_index_by_alias_of_the_copy_with_new_mapping(es):
    seed(es)
    out = reindex_all(Reindexer(es, options(mode="swap")))
    assert out["failure"] is None
    for result in out["results"]:
        assert result["steps"] == list(SWAP_STEPS) and result["deleted"] == [result["index"]]
        assert_reindexed(es, result["index"], mode="swap")


@pytest.mark.parametrize("mode", ["copy_back", "swap"])
def test_rerun_after_success_changes_nothing(es, mode):
    seed(es, days=DAYS[:1])
    reindex_all(Reindexer(es, options(mode=mode)))
    again = reindex_all(Reindexer(es, options(mode=mode)))
    assert again["changed"] is False and again["results"] == []
    assert [s["index"] for s in again["skipped"]] == ["logstash-" + DAYS[0]]


def test_nothing_matched_is_not_a_change(es):
    seed(es, days=DAYS[:1])
    out = reindex_all(Reindexer(es, options(indices=["metrics-*"])))
    assert out == {"changed": False, "results": [], "skipped": [], "refused": [], "failure": None, "selected": []}


def test_check_mode_plans_every_step_and_changes_nothing(es):
    seed(es, days=DAYS[:1])
    before = es.get("/_cat/indices", params={"format": "json", "h": "index,docs.count"})
    out = reindex_all(Reindexer(es, options(mode="swap")), check_mode=True)
    assert out["results"][0]["plan"] == list(SWAP_STEPS) and out["results"][0]["docs"] == DOCS
    assert es.get("/_cat/indices", params={"format": "json", "h": "index,docs.count"}) == before
    assert es.get("/logstash-%s/_mapping" % DAYS[0])["logstash-" + DAYS[0]]["mappings"]["properties"][
        "Status"]["type"] == "text"


def test_rejected_document_fails_with_its_error_and_leaves_source_intact_and_writable(es):
    seed(es, days=DAYS[:1], bad_ids=("17",))
    name = "logstash-" + DAYS[0]
    out = reindex_all(Reindexer(es, options()))
    failed = out["failure"]
    assert failed["index"] == name
    assert failed["failures"][0]["id"] == "17"
    assert "Status" in failed["failures"][0]["reason"] and "not-a-number" in failed["msg"]
    assert not es.exists("/%s-r" % name), "partial destination removed"
    assert ids(es, name) == sorted(str(i) for i in range(DOCS)), "source intact"
    es.put("/%s/_doc/new" % name, {"Status": "writable again"})  # raises if still write-blocked
    assert es.get("/%s/_mapping" % name)[name]["mappings"]["properties"]["Status"]["type"] == "text"


def test_index_written_during_probe_window_is_refused_and_untouched(es):
    seed(es)
    busy, quiet = "logstash-" + DAYS[0], "logstash-" + DAYS[1]
    stop = threading.Event()

    def writer():
        n = 0
        while not stop.is_set():
            es.put("/%s/_doc/live-%d" % (busy, n), {"Status": "200"})
            n += 1
            time.sleep(0.02)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        out = reindex_all(Reindexer(es, options(probe_seconds=0.5)))
    finally:
        stop.set()
        thread.join()
    assert [r["index"] for r in out["refused"]] == [busy]
    assert "write(s) during the 0.5s probe window" in out["refused"][0]["reason"]
    assert [r["index"] for r in out["results"]] == [quiet]
    assert not es.exists("/%s-r" % busy)
    settings = es.get("/%s/_settings" % busy, params={"flat_settings": "true"})[busy]["settings"]
    assert "index.blocks.write" not in settings
    assert es.get("/%s/_mapping" % busy)[busy]["mappings"]["properties"]["Status"]["type"] == "text"


def test_selection_skips_today_write_indices_and_applies_age_and_regex(es):
    today = datetime.date(2024, 1, 10)
    template(es, "text")
    for name in ("logstash-2024.01.01", "logstash-2024.01.08", "logstash-2024.01.10", "logstash-2024.01.02",
                 "logstash-nodate", "other-2024.01.01"):
        es.put("/" + name)
    es.post("/_aliases", {"actions": [{"add": {"index": "logstash-2024.01.02", "alias": "ingest",
                                                "is_write_index": True}}]})
    reindexer = Reindexer(es, options(older_than_days=5, today=today))
    selected, skipped = reindexer.select()
    assert selected == ["logstash-2024.01.01"]
    reasons = {s["index"]: s["reason"] for s in skipped}
    assert "write index of alias ingest" in reasons["logstash-2024.01.02"]
    assert "today" in reasons["logstash-2024.01.10"]
    assert "not older than 5 days" in reasons["logstash-2024.01.08"]
    assert "carries no date" in reasons["logstash-nodate"]
    assert "other-2024.01.01" not in reasons
    by_regex = Reindexer(es, options(indices=None, regex=r"^other-", today=today)).select()[0]
    assert by_regex == ["other-2024.01.01"]


def test_source_already_write_blocked_before_the_run_keeps_its_block(es):
    seed(es, days=DAYS[:1])
    name = "logstash-" + DAYS[0]
    es.put("/%s/_settings" % name, {"index.blocks.write": True})
    out = reindex_all(Reindexer(es, options()))
    assert out["failure"] is None
    settings = es.get("/%s/_settings" % name, params={"flat_settings": "true"})[name]["settings"]
    assert settings["index.blocks.write"] == "true"
    assert ids(es, name) == sorted(str(i) for i in range(DOCS))


def test_source_is_never_deleted_when_its_copy_is_short(es):
    seed(es, days=DAYS[:1])
    name = "logstash-" + DAYS[0]
    reindexer = Reindexer(es, options())
    while reindexer.next_step(name)[0] != "delete_source":
        reindexer.step(name)
    es.delete("/%s-r/_doc/5" % name, params={"refresh": "true"})  # the copy loses a document
    with pytest.raises(ReindexError, match="Refusing to delete %s" % name):
        reindexer.step(name)
    assert ids(es, name) == sorted(str(i) for i in range(DOCS))


def test_without_the_clone_api_a_write_into_the_final_index_during_copy_back_is_kept(es):
    # osmem-server has no clone API: the final index is created writable and copied back into, and a
    # write acknowledged in it meanwhile is kept (the copy back goes around it), never dropped.
    seed(es, days=DAYS[:1])
    name = "logstash-" + DAYS[0]
    reindexer = Reindexer(es, options())
    assert not reindexer.clone_supported()
    while reindexer.step(name) != "create_final":
        pass
    status, _ = es.call("PUT", "/%s/_doc/late" % name, body={"Status": "201", "level": "info"})
    assert status == 201
    out = reindex_all(Reindexer(es, options()))
    assert out["failure"] is None, out["failure"]
    assert ids(es, name) == sorted([str(i) for i in range(DOCS)] + ["late"])


def _all_docs_somewhere(es, name):
    """Zero loss at a boundary: the source, or a verified copy, holds every document."""
    want = sorted(str(i) for i in range(DOCS))
    for index in (name, name + "-r"):
        status, body = es.call("GET", "/%s" % index, allow=(404,))
        if status == 200 and ids(es, index) == want:
            return True
    return False


@pytest.mark.parametrize("mode,steps", [("copy_back", COPY_BACK_REINDEX_STEPS), ("swap", SWAP_STEPS)])
def test_killed_at_every_step_boundary_a_rerun_finishes_without_losing_a_document(server, mode, steps):
    # One fresh clone per boundary: run k steps, drop the Reindexer (nothing in memory survives,
    # as after a kill), then a new run must finish from what the cluster shows.
    for boundary in range(1, len(steps)):
        clone = server.clone()
        try:
            es = EsClient([clone.url], max_retries=0)
            seed(es, days=DAYS[:1])
            name = "logstash-" + DAYS[0]
            first = Reindexer(es, options(mode=mode))
            done = [first.step(name) for _ in range(boundary)]
            assert done == list(steps[:boundary])
            assert _all_docs_somewhere(es, name), "documents lost after %s" % done[-1]
            # Searches through the aliases see every document exactly once at every boundary.
            es.post("/_refresh")
            assert es.get("/logs/_count")["count"] == DOCS, "alias logs incomplete after %s" % done[-1]
            if done[-1] == "create_temp":
                settings = es.get("/%s-r/_settings" % name, params={"flat_settings": "true"})
                settings = settings[name + "-r"]["settings"]
                # the source's replicas from the first write (written as the copy fills), no refresh
                assert (settings["index.number_of_replicas"], settings["index.refresh_interval"]) == ("1", "-1")
            rerun = reindex_all(Reindexer(es, options(mode=mode)))
            assert rerun["failure"] is None, (boundary, rerun["failure"])
            assert rerun["results"][0]["steps"] == list(steps[boundary:]), boundary
            assert_reindexed(es, name, mode=mode)
        finally:
            clone.close()



def test_mappings_from_legacy_templates_when_no_composable_template_matches(es):
    from reindex_legacy import check_legacy_templates
    check_legacy_templates(es, options, ids)
