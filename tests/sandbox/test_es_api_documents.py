"""Indices, documents, mappings, templates, blocks, refresh, reindex and tasks of the sandbox,
driven over HTTP as our modules drive Elasticsearch."""
from __future__ import annotations

import json
import time

import pytest

from tests.sandbox.es_http import request


class StandInEngine:
    """Trivial engine for these tests only: every primary active unless switched off."""

    def __init__(self):
        self.inactive = set()
        self.created, self.deleted, self.changed = [], [], []

    def on_index_created(self, meta):
        self.created.append(meta.name)

    def on_index_deleted(self, name):
        self.deleted.append(name)

    def on_index_settings_changed(self, meta):
        self.changed.append((meta.name, meta.number_of_replicas))

    def primary_active(self, index, shard):
        return (index, shard) not in self.inactive

    def health_of_index(self, index):
        return "red" if any(i == index for i, _ in self.inactive) else "green"

    def data_node_names(self):
        return ["n1"]


class ES:
    """The HTTP API with the documents half (the plugin's HttpSandbox), called as e(method, path, body)."""

    def __init__(self, srv):
        self.srv, self.state, self.store, self.url = srv, srv.state, srv.store, srv.url

    def __call__(self, method, path, body=None, ndjson=None):
        return request(self.url, method, path, body, ndjson)


@pytest.fixture
def es(sandbox_http):
    def make(version="8.15.0", engine=None, rate=2000.0):
        return ES(sandbox_http(version=version, documents=True, engine=engine, reindex_rate=rate))
    return make


def bulk_lines(index, docs):
    lines = []
    for i, d in enumerate(docs):
        lines.append({"index": {"_index": index, "_id": str(i)}})
        lines.append(d)
    return lines


def test_create_index_shape_and_duplicate_error(es):
    e = es()
    assert e("PUT", "/logs-1", {"settings": {"number_of_shards": 2}}) == (
        200, {"acknowledged": True, "shards_acknowledged": True, "index": "logs-1"})
    status, body = e("PUT", "/logs-1")
    assert status == 400
    assert body["error"]["type"] == "resource_already_exists_exception"
    assert body["error"]["index"] == "logs-1"
    assert e("PUT", "/Bad")[1]["error"]["type"] == "invalid_index_name_exception"
    assert e("HEAD", "/logs-1")[0] == 200 and e("HEAD", "/nope")[0] == 404


def test_missing_index_gets_index_not_found_with_resource_fields(es):
    e = es()
    status, body = e("GET", "/missing/_count")
    assert status == 404
    err = body["error"]
    assert err["type"] == "index_not_found_exception" and err["reason"] == "no such index [missing]"
    assert err["resource.id"] == "missing" and err["resource.type"] == "index_or_alias"


def test_index_template_with_highest_priority_applies_to_new_indices(es):
    e = es()
    e("PUT", "/_index_template/low", {"index_patterns": ["logs-*"], "priority": 1,
                                       "template": {"settings": {"number_of_replicas": 2}}})
    e("PUT", "/_index_template/high", {"index_patterns": ["logs-app-*"], "priority": 10, "template": {
        "settings": {"index": {"number_of_shards": 3, "number_of_replicas": 0}},
        "mappings": {"properties": {"code": {"type": "integer"}}}}})
    e("PUT", "/logs-app-1")
    e("PUT", "/logs-other-1")
    s = e("GET", "/logs-app-1/_settings?flat_settings=true")[1]["logs-app-1"]["settings"]
    assert s["index.number_of_shards"] == "3" and s["index.number_of_replicas"] == "0"
    assert e("GET", "/logs-app-1/_mapping")[1]["logs-app-1"]["mappings"]["properties"]["code"] == {"type": "integer"}
    assert e("GET", "/logs-other-1/_settings")[1]["logs-other-1"]["settings"]["index"]["number_of_replicas"] == "2"
    sim = e("POST", "/_index_template/_simulate_index/logs-app-9")[1]
    assert sim["template"]["mappings"]["properties"]["code"]["type"] == "integer"


def test_templates_with_same_priority_and_overlapping_patterns_are_refused(es):
    e = es()
    assert e("PUT", "/_index_template/a", {"index_patterns": ["x-*"]})[0] == 200
    status, body = e("PUT", "/_index_template/b", {"index_patterns": ["x-1*"]})
    assert status == 400 and "same priority" in body["error"]["reason"]


def test_unparseable_value_for_mapped_type_is_rejected_naming_the_field(es):
    e = es("8.15.0")
    e("PUT", "/typed", {"mappings": {"properties": {"age": {"type": "integer"}}}})
    status, body = e("POST", "/_bulk", ndjson=bulk_lines("typed", [{"age": 3}, {"age": "abc"}, {"age": "7"}]))
    assert status == 200 and body["errors"] is True
    bad = body["items"][1]["index"]
    assert bad["status"] == 400
    assert bad["error"]["type"] == "document_parsing_exception"
    assert "failed to parse field [age] of type [integer]" in bad["error"]["reason"]
    assert [it["index"]["status"] for it in body["items"]] == [201, 400, 201]
    e7 = es("7.17.22")
    e7("PUT", "/typed", {"mappings": {"properties": {"age": {"type": "integer"}}}})
    status, body = e7("PUT", "/typed/_doc/1", {"age": "abc"})
    assert status == 400 and body["error"]["type"] == "mapper_parsing_exception"


def test_dynamic_mapping_maps_new_fields(es):
    e = es()
    e("PUT", "/dyn/_doc/1", {"n": 5, "f": 1.5, "b": True, "t": "hello", "d": "2024-01-02T03:04:05Z",
                             "o": {"x": 1}})
    props = e("GET", "/dyn/_mapping")[1]["dyn"]["mappings"]["properties"]
    assert props["n"]["type"] == "long" and props["f"]["type"] == "float" and props["b"]["type"] == "boolean"
    assert props["t"]["type"] == "text" and props["t"]["fields"]["keyword"]["type"] == "keyword"
    assert props["d"]["type"] == "date" and props["o"]["properties"]["x"]["type"] == "long"
    status, body = e("PUT", "/dyn/_doc/2", {"n": "not a number"})
    assert status == 400 and "field [n] of type [long]" in body["error"]["reason"]


def test_range_query_and_aggregations_compare_integers_as_numbers(es):
    e = es()
    e("PUT", "/nums", {"mappings": {"properties": {"v": {"type": "integer"}, "k": {"type": "keyword"}}}})
    docs = [{"v": "9", "k": "a"}, {"v": "10", "k": "b"}, {"v": 100, "k": "a"}]
    e("POST", "/_bulk?refresh=true", ndjson=bulk_lines("nums", docs))
    # As strings "10" < "9"; as integers 9 < 10 < 100.
    body = e("POST", "/nums/_search", {"query": {"range": {"v": {"gte": 9, "lt": 50}}},
                                       "aggs": {"lo": {"min": {"field": "v"}}, "hi": {"max": {"field": "v"}}}})[1]
    assert sorted(h["_id"] for h in body["hits"]["hits"]) == ["0", "1"]
    assert body["hits"]["total"] == {"value": 2, "relation": "eq"}
    assert body["aggregations"]["lo"]["value"] == 9.0 and body["aggregations"]["hi"]["value"] == 10.0
    assert e("POST", "/nums/_count", {"query": {"term": {"k": "a"}}})[1]["count"] == 2


@pytest.mark.parametrize("method,path,body,ndjson,named", [
    ("POST", "/nums/_search", {"aggs": {"by_v": {"terms": {"field": "v"}}}}, None, "terms"),
    ("POST", "/nums/_search", {"from": 1}, None, "from"),
    ("GET", "/nums/_search?q=k:a", None, None, "q"),
    ("POST", "/nums/_search", {"sort": [{"v": "desc"}]}, None, "_doc"),
    ("POST", "/_bulk", None, [{"update": {"_index": "nums", "_id": "0"}}, {"doc": {"v": 1}}], "update"),
])
def test_what_the_sandbox_does_not_implement_is_refused_naming_it(es, method, path, body, ndjson, named):
    # The document side keeps what the collection and its tests send; the rest is refused, not guessed.
    e = es()
    e("PUT", "/nums/_doc/0?refresh=true", {"v": 1})
    status, out = e(method, path, body, ndjson=ndjson)
    assert status == 400 and out["error"]["type"] == "illegal_argument_exception", out
    assert "[%s]" % named in out["error"]["reason"], out


def test_documents_are_not_counted_before_refresh_when_refresh_interval_is_disabled(es):
    e = es()
    e("PUT", "/r1", {"settings": {"refresh_interval": "-1", "number_of_shards": 2}})
    e("PUT", "/fast", {"settings": {"refresh_interval": "100ms"}})
    e("POST", "/_bulk", ndjson=bulk_lines("r1", [{"a": i} for i in range(5)]) + bulk_lines("fast", [{"a": 1}]))
    assert e("GET", "/fast/_count")[1]["count"] == 0
    time.sleep(0.25)
    assert e("GET", "/fast/_count")[1]["count"] == 1  # a scheduled refresh came for "fast"...
    assert e("GET", "/r1/_count")[1]["count"] == 0  # ...and never comes with -1
    assert e("GET", "/r1/_doc/1")[1]["found"] is True  # get is realtime
    e("POST", "/r1/_refresh")
    assert e("GET", "/r1/_count")[1]["count"] == 5


def test_default_refresh_interval_makes_documents_visible_within_a_second(es):
    e = es()
    e("PUT", "/r2/_doc/1", {"a": 1})
    assert e("GET", "/r2/_count")[1]["count"] == 0
    time.sleep(1.05)
    assert e("GET", "/r2/_count")[1]["count"] == 1


def test_bulk_delete_removes_a_document_and_answers_404_for_a_missing_one(es):
    e = es()
    e("POST", "/_bulk?refresh=true", ndjson=bulk_lines("u1", [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]))
    body = e("POST", "/_bulk?refresh=true", ndjson=[
        {"delete": {"_index": "u1", "_id": "9"}},
        {"delete": {"_index": "u1", "_id": "1"}}])[1]
    assert [list(i.values())[0]["status"] for i in body["items"]] == [404, 200]
    assert e("GET", "/u1/_doc/0")[1]["_source"] == {"a": 1, "b": "x"}
    assert e("GET", "/u1/_count")[1]["count"] == 1


def test_write_block_rejects_writes_with_cluster_block_exception(es):
    e = es()
    e("PUT", "/wb/_doc/1?refresh=true", {"a": 1})
    assert e("PUT", "/wb/_block/write") == (200, {"acknowledged": True, "shards_acknowledged": True,
                                                 "indices": [{"name": "wb", "blocked": True}]})
    status, body = e("PUT", "/wb/_doc/2", {"a": 2})
    assert status == 403
    assert body["error"]["type"] == "cluster_block_exception"
    assert body["error"]["reason"] == "index [wb] blocked by: [FORBIDDEN/8/index write (api)];"
    item = e("POST", "/_bulk", ndjson=[{"index": {"_index": "wb"}}, {"a": 3}])[1]["items"][0]["index"]
    assert item["status"] == 403 and item["error"]["type"] == "cluster_block_exception"
    e("PUT", "/wb/_settings", {"index.blocks.write": False})
    assert e("PUT", "/wb/_doc/2", {"a": 2})[0] == 201


def test_settings_updates_reach_the_engine_and_shards_are_final(es):
    eng = StandInEngine()
    e = es(engine=eng)
    e("PUT", "/s1")
    assert e("PUT", "/s1/_settings", {"index": {"number_of_replicas": 0, "refresh_interval": "5s"}})[0] == 200
    assert eng.created == ["s1"] and eng.changed[-1] == ("s1", 0)
    status, body = e("PUT", "/s1/_settings", {"index": {"number_of_shards": 4}})
    assert status == 400 and "non dynamic settings" in body["error"]["reason"]
    e("DELETE", "/s1")
    assert eng.deleted == ["s1"]


def test_deleting_by_alias_or_wildcard_is_refused_on_8(es):
    e = es()
    e("PUT", "/a-1", {"aliases": {"a": {}}})
    assert "matches an alias" in e("DELETE", "/a")[1]["error"]["reason"]
    assert e("DELETE", "/a-*")[1]["error"]["reason"] == "Wildcard expressions or all indices are not allowed"
    assert e("DELETE", "/a-1") == (200, {"acknowledged": True})


def test_aliases_update_atomically_and_writes_follow_the_write_index(es):
    e = es()
    e("PUT", "/old")
    e("PUT", "/new")
    status, body = e("POST", "/_aliases", {"actions": [{"add": {"index": "new", "alias": "logs"}},
                                                        {"remove": {"index": "old", "alias": "missing"}}]})
    assert status == 404 and body["error"]["type"] == "aliases_not_found_exception"
    assert e("GET", "/_alias/logs")[0] == 404  # nothing applied
    # An alias cannot take an existing index's name...
    status, body = e("POST", "/_aliases", {"actions": [{"add": {"index": "new", "alias": "old"}}]})
    assert status == 400 and body["error"]["type"] == "invalid_alias_name_exception"
    # ...unless the same call removes that index (the reindex swap).
    assert e("POST", "/_aliases", {"actions": [{"add": {"index": "new", "alias": "old"}},
                                               {"remove_index": {"index": "old"}}]})[0] == 200
    assert e("GET", "/_alias/old")[1] == {"new": {"aliases": {"old": {}}}}
    e("PUT", "/old/_doc/1?refresh=true", {"x": 1})
    assert e("GET", "/new/_count")[1]["count"] == 1
    assert e("GET", "/_cat/aliases?format=json")[1][0]["alias"] == "old"


def test_indexing_stats_count_index_operations_per_index(es):
    e = es()
    e("POST", "/_bulk", ndjson=bulk_lines("st", [{"a": 1}] * 3))
    e.store.add_synthetic_docs("st", 10)
    body = e("GET", "/st/_stats/indexing")[1]
    assert body["indices"]["st"]["primaries"]["indexing"]["index_total"] == 13
    assert body["_all"]["primaries"]["indexing"]["index_total"] == 13


def test_writer_writes_count_in_stats_and_are_refused_by_a_write_block(es):
    eng = StandInEngine()
    e = es(engine=eng)
    e("PUT", "/w1", {"settings": {"number_of_shards": 2}})
    assert e.store.write_synthetic("w1", 0, 3) and e.store.write_synthetic("w1", 1, 2)
    stats = e("GET", "/w1/_stats/indexing")[1]["indices"]["w1"]["primaries"]["indexing"]
    assert stats["index_total"] == 5
    eng.inactive.add(("w1", 1))
    assert e.store.write_synthetic("w1", 1) is False
    e("PUT", "/w1/_block/write")
    assert e.store.write_synthetic("w1", 0) is False
    partial = e("GET", "/w1/_count")[1]  # shard 1 has no primary: counted as a shard failure
    assert partial["count"] == 3 and partial["_shards"]["failed"] == 1
    eng.inactive.clear()
    assert e("GET", "/w1/_count")[1]["count"] == 5
    assert e.store.write_synthetic("missing", 0) is False


def test_sync_reindex_copies_documents_and_reports_counts(es):
    e = es()
    e("POST", "/_bulk?refresh=true", ndjson=bulk_lines("src", [{"a": i} for i in range(7)]))
    e.store.add_synthetic_docs("src", 5)
    status, body = e("POST", "/_reindex?refresh=true", {"source": {"index": "src"}, "dest": {"index": "dst"}})
    assert status == 200
    assert body["total"] == 12 and body["created"] == 12 and body["failures"] == []
    assert e("GET", "/dst/_count")[1]["count"] == 12


def test_async_reindex_progresses_over_time_and_keeps_its_result(es):
    e = es(rate=200.0)
    e("PUT", "/src", {"settings": {"number_of_shards": 2}})
    e("POST", "/_bulk?refresh=true", ndjson=bulk_lines("src", [{"a": i} for i in range(100)]))
    status, body = e("POST", "/_reindex?wait_for_completion=false&slices=auto&requests_per_second=-1",
                     {"source": {"index": "src", "size": 10}, "dest": {"index": "dst"}})
    assert status == 200
    task_id = body["task"]
    assert ":" in task_id
    seen = []
    deadline = time.monotonic() + 10
    while True:
        t = e("GET", "/_tasks/" + task_id)[1]
        seen.append(t["task"]["status"]["created"])
        if t["completed"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert len(seen) > 2 and any(0 < n < 100 for n in seen)  # polled mid-way
    assert t["response"]["created"] == 100 and t["response"]["failures"] == []
    slices = t["task"]["status"]["slices"]  # slices=auto: one per source shard
    assert [x["slice_id"] for x in slices] == [0, 1] and sum(x["created"] for x in slices) == 100
    assert t["task"]["action"] == "indices:data/write/reindex"
    # Finished: the result stays readable (the .tasks index).
    assert e("GET", "/_tasks/" + task_id)[1]["response"]["total"] == 100
    assert e("GET", "/_tasks/" + task_id.split(":")[0] + ":999999")[0] == 404


def test_reindex_task_stops_at_first_batch_with_mapping_failures(es):
    e = es()
    e("PUT", "/dst", {"mappings": {"properties": {"n": {"type": "integer"}}}})
    e("PUT", "/src", {"mappings": {"properties": {"n": {"type": "keyword"}}}})  # old, looser mapping
    docs = [{"n": i} for i in range(5)] + [{"n": "bad"}] + [{"n": i} for i in range(20)]
    e("POST", "/_bulk?refresh=true", ndjson=bulk_lines("src", docs))
    task_id = e("POST", "/_reindex?wait_for_completion=false",
                {"source": {"index": "src", "size": 10}, "dest": {"index": "dst"}})[1]["task"]
    t = e("GET", "/_tasks/%s?wait_for_completion=true&timeout=10s" % task_id)[1]
    assert t["completed"] is True
    fails = t["response"]["failures"]
    assert len(fails) == 1 and fails[0]["id"] == "5" and fails[0]["status"] == 400
    assert fails[0]["cause"]["type"] == "document_parsing_exception"
    assert "field [n]" in fails[0]["cause"]["reason"]
    assert t["response"]["batches"] == 1  # stopped after the failing batch, 26 docs never all copied
    assert t["response"]["created"] < 26


def test_reindex_version_type_external_and_conflicts_proceed(es):
    e = es()
    e("POST", "/_bulk?refresh=true", ndjson=bulk_lines("src", [{"a": 1}, {"a": 2}]))
    e("PUT", "/dst/_doc/0?version=5&version_type=external", {"a": "newer"})
    status, body = e("POST", "/_reindex", {"source": {"index": "src"}, "conflicts": "proceed",
                                           "dest": {"index": "dst", "version_type": "external"}})
    assert body["created"] == 1 and body["version_conflicts"] == 1 and body["failures"] == []
    assert e("GET", "/dst/_doc/0")[1]["_source"] == {"a": "newer"}


def test_task_cancel_and_list(es):
    e = es(rate=10.0)
    e("POST", "/_bulk?refresh=true", ndjson=bulk_lines("src", [{"a": i} for i in range(50)]))
    task_id = e("POST", "/_reindex?wait_for_completion=false", {"source": {"index": "src", "size": 5},
                                                                 "dest": {"index": "dst"}})[1]["task"]
    listing = e("GET", "/_tasks?actions=*reindex&detailed=true")[1]
    node = task_id.split(":")[0]
    assert task_id in listing["nodes"][node]["tasks"]
    assert e("POST", "/_tasks/%s/_cancel" % task_id)[0] == 200
    t = e("GET", "/_tasks/" + task_id)[1]
    assert t["completed"] is True and t["response"]["canceled"] == "by user request"
    assert e("GET", "/_tasks?actions=*reindex")[1]["nodes"] == {}


def test_writes_to_a_shard_without_active_primary_fail_as_unavailable(es):
    eng = StandInEngine()
    e = es(engine=eng)
    e("PUT", "/red", {"settings": {"number_of_shards": 1}})
    eng.inactive.add(("red", 0))
    e.store.primary_wait_cap = 0.2
    status, body = e("PUT", "/red/_doc/1?timeout=1s", {"a": 1})
    assert status == 503 and body["error"]["type"] == "unavailable_shards_exception"
    status, body = e("GET", "/red/_count")
    assert status == 503 and body["error"]["type"] == "search_phase_execution_exception"


def test_drop_shard_loses_its_documents(es):
    e = es()
    e("PUT", "/d1", {"settings": {"number_of_shards": 2}})
    e("POST", "/_bulk?refresh=true", ndjson=bulk_lines("d1", [{"a": i} for i in range(20)]))
    e.store.add_synthetic_docs("d1", 10)
    lost = e.store.drop_shard("d1", 0)
    assert lost > 0
    assert e("GET", "/d1/_count")[1]["count"] == 30 - lost


def test_cat_indices_text_and_json(es):
    e = es()
    e("PUT", "/c1", {"settings": {"number_of_replicas": 0}})
    text = e("GET", "/_cat/indices?v")[1]
    header, row = text.splitlines()
    assert header.split()[:7] == ["health", "status", "index", "uuid", "pri", "rep", "docs.count"]
    assert row.split()[:3] == ["green", "open", "c1"]
    assert e("GET", "/_cat/indices?format=json&h=index,docs.count")[1] == [{"index": "c1", "docs.count": "0"}]


def test_works_without_engine_single_node_style(es):
    e = es()
    assert e.state.engine is None
    e("PUT", "/solo", {"settings": {"number_of_replicas": 1}})
    assert e("GET", "/_cat/indices/solo?format=json&h=health")[1] == [{"health": "yellow"}]
    assert e("GET", "/_data_stream")[1] == {"data_streams": []}


def test_reindex_task_vanishes_with_its_node(es):
    class Node:
        def __init__(self, name):
            self.name = name

    eng = StandInEngine()
    eng.nodes = {"nodeA": Node("es-data-1"), "nodeB": Node("es-data-2")}
    eng.master_id = "nodeA"
    e = es(engine=eng, rate=10.0)
    e("POST", "/_bulk?refresh=true", ndjson=bulk_lines("src", [{"a": i} for i in range(50)]))
    task_id = e("POST", "/_reindex?wait_for_completion=false", {"source": {"index": "src", "size": 5},
                                                                 "dest": {"index": "dst"}})[1]["task"]
    assert task_id.startswith("nodeA:")
    with e.state.lock:
        del eng.nodes["nodeA"]
        assert e.store.drop_tasks_on_node("nodeA") == 1
    status, body = e("GET", "/_tasks/" + task_id)
    assert status == 404
    assert body["error"]["reason"] == ("task [%s] belongs to the node [nodeA] which isn't part of the cluster and "
                                       "there is no record of the task" % task_id)


@pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")  # tasks API "preview"
def test_kibana_style_reindex_swap_runs_end_to_end_with_elasticsearch_py(es):
    """The reindex module's path through the API, with the client it is built on."""
    elasticsearch = pytest.importorskip("elasticsearch")
    e = es("9.1.2", rate=500.0)
    client = elasticsearch.Elasticsearch(e.url, request_timeout=10, max_retries=0)
    client.indices.put_index_template(name="logs", index_patterns=["logs-*"], priority=10,
                                      template={"mappings": {"properties": {"code": {"type": "integer"}}}})
    client.indices.create(index="old-logs", mappings={"properties": {"code": {"type": "keyword"}}})
    client.bulk(operations=[x for i in range(120) for x in ({"index": {"_index": "old-logs", "_id": str(i)}},
                                                              {"code": str(i)})], refresh=True)
    client.indices.add_block(index="old-logs", block="write")
    before = client.indices.stats(index="old-logs", metric="indexing")
    client.indices.create(index="logs-new", settings={"number_of_replicas": 0, "refresh_interval": "-1"})
    task = client.reindex(source={"index": "old-logs"}, dest={"index": "logs-new"}, wait_for_completion=False,
                          slices="auto")["task"]
    while True:
        t = client.tasks.get(task_id=task)
        if t["completed"]:
            break
        time.sleep(0.05)
    assert t["response"]["failures"] == [] and t["response"]["created"] == 120
    assert client.count(index="logs-new")["count"] == 0  # refresh_interval -1: not visible yet
    client.indices.put_settings(index="logs-new", settings={"index": {"refresh_interval": None,
                                                                       "number_of_replicas": 1}})
    client.indices.refresh(index="logs-new")
    assert client.count(index="logs-new")["count"] == client.count(index="old-logs")["count"] == 120
    after = client.indices.stats(index="old-logs", metric="indexing")
    assert (after["indices"]["old-logs"]["primaries"]["indexing"]["index_total"]
            == before["indices"]["old-logs"]["primaries"]["indexing"]["index_total"])
    client.indices.update_aliases(actions=[{"add": {"index": "logs-new", "alias": "old-logs"}},
                                           {"remove_index": {"index": "old-logs"}}])
    assert client.count(index="old-logs")["count"] == 120
    # The template's integer mapping is in force on the copy: a numeric range works.
    assert client.count(index="old-logs", query={"range": {"code": {"gte": 100}}})["count"] == 20
    assert e.state.unknown_requests == []


@pytest.mark.parametrize("remove", [{"indices": ["logs-1"]}, {"index": "logs-?"}, {"index": "logs-1"}])
def test_alias_may_take_the_name_of_an_index_removed_in_the_same_call_whatever_the_order(es, remove):
    """Kibana's reindex swap: remove_index <old> and add alias <old> -> <new>, in one atomic call."""
    e = es()
    e("PUT", "/logs-1")
    e("PUT", "/logs-1-r")
    e("PUT", "/logs-1-r/_doc/1?refresh=true", {"x": 1})
    status, body = e("POST", "/_aliases", {"actions": [{"remove_index": remove},
                                                       {"add": {"index": "logs-1-r", "alias": "logs-1"}}]})
    assert (status, body) == (200, {"acknowledged": True, "errors": False})
    assert e("GET", "/_alias/logs-1")[1] == {"logs-1-r": {"aliases": {"logs-1": {}}}}
    assert e("GET", "/logs-1/_count")[1]["count"] == 1


def test_alias_cannot_take_the_name_of_an_index_the_call_does_not_remove(es):
    e = es()
    for name in ("logs-1", "logs-2", "logs-1-r"):
        e("PUT", "/" + name)
    status, body = e("POST", "/_aliases", {"actions": [{"remove_index": {"index": "logs-2"}},
                                                       {"add": {"index": "logs-1-r", "alias": "logs-1"}}]})
    assert status == 400 and body["error"]["type"] == "invalid_alias_name_exception"
    assert e("HEAD", "/logs-2")[0] == 200  # atomic: the remove_index was not applied either


def test_alias_actions_on_an_index_the_same_call_removes_fail_as_index_not_found(es):
    e = es()
    e("PUT", "/logs-1")
    status, body = e("POST", "/_aliases", {"actions": [{"remove_index": {"index": "logs-1"}},
                                                       {"add": {"index": "logs-1", "alias": "a"}}]})
    assert status == 404 and body["error"]["type"] == "index_not_found_exception"
    assert e("HEAD", "/logs-1")[0] == 200  # nothing applied


# A module that sends a malformed request must get Elasticsearch's 400, not a sandbox 500:
# (method, path, body, error type Elasticsearch answers with).
MALFORMED = [
    ("POST", "/a/_search", "x", "parsing_exception"),
    ("POST", "/_aliases", [1], "x_content_parse_exception"),
    ("POST", "/_aliases", {"actions": [{"add": "x"}]}, "x_content_parse_exception"),
    ("POST", "/a/_search", {"query": {"term": {}}}, "illegal_argument_exception"),
    ("POST", "/a/_search", {"query": {"match": {"x": 1, "y": 2}}}, "parsing_exception"),
    ("POST", "/a/_count", {"query": {"range": {"x": "y"}}}, "parsing_exception"),
    ("POST", "/a/_search", {"query": {"terms": {"x": "y"}}}, "parsing_exception"),
    ("POST", "/a/_search", {"aggs": {"a": {"terms": {}}}}, "illegal_argument_exception"),
    ("POST", "/a/_search", {"aggs": {"a": "x"}}, "parsing_exception"),
    ("POST", "/a/_search", {"size": "x"}, "number_format_exception"),
    ("GET", "/a/_search?size=x", None, "illegal_argument_exception"),
    ("POST", "/_reindex", {"source": "x", "dest": {"index": "b"}}, "x_content_parse_exception"),
    ("POST", "/_reindex", {"source": {"index": "a", "size": "x"}, "dest": {"index": "b"}},
     "x_content_parse_exception"),
    ("POST", "/_reindex?requests_per_second=x", {"source": {"index": "a"}, "dest": {"index": "b"}},
     "illegal_argument_exception"),
    ("PUT", "/b", {"settings": "x"}, "parse_exception"),
    ("PUT", "/b", {"mappings": "x"}, "parse_exception"),
    ("PUT", "/b", {"settings": {"number_of_shards": "x"}}, "illegal_argument_exception"),
    ("PUT", "/a/_settings", "x", "x_content_parse_exception"),
    ("PUT", "/a/_mapping", {"properties": "x"}, "parse_exception"),
    ("PUT", "/a/_mapping", {"properties": {"f": "x"}}, "mapper_parsing_exception"),
    ("PUT", "/_index_template/t", {"index_patterns": ["z*"], "template": "x"}, "x_content_parse_exception"),
    ("PUT", "/_index_template/t", {"index_patterns": ["z*"], "priority": "x"}, "x_content_parse_exception"),
    ("PUT", "/a/_settings", {"index": {"number_of_replicas": "x"}}, "illegal_argument_exception"),
]


@pytest.mark.parametrize("method,path,body,etype", MALFORMED, ids=["%s %s %s" % (m, p, json.dumps(b)[:40])
                                                                   for m, p, b, _ in MALFORMED])
def test_malformed_requests_get_elasticsearch_400s_not_sandbox_500s(es, method, path, body, etype):
    e = es()
    e("PUT", "/a", {"aliases": {"w": {"is_write_index": True}}})
    e("PUT", "/a/_doc/1?refresh=true", {"x": 1})
    status, out = e(method, path, body)
    assert (status, out["error"]["type"]) == (400, etype), out
    assert e.state.internal_errors == []
    # Nothing malformed was stored: the index and templates still serve.
    assert e("GET", "/a/_count")[1]["count"] == 1
    assert e("POST", "/_index_template/_simulate_index/z1")[0] == 200


def test_malformed_bulk_metadata_is_refused_like_elasticsearch(es):
    e = es()
    status, out = e("POST", "/_bulk", ndjson=[{"index": "x"}, {"a": 1}])
    assert status == 400 and out["error"]["type"] == "illegal_argument_exception"
    assert "Malformed action/metadata line [1]" in out["error"]["reason"]
    assert e.state.internal_errors == []
