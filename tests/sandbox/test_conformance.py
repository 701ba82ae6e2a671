"""Conformance of the sandbox's document/index endpoints with osmem-server.

osmem-server (PyPI, a third-party in-memory OpenSearch-compatible server) and the
sandbox get the same sequence of requests; statuses and response *shapes* (keys and
value types, not values such as uuids or timings) must match. Where osmem and
Elasticsearch differ, the sandbox follows Elasticsearch and the step says so.
"""
from __future__ import annotations

import json

import pytest

from sandbox.recording import shape, subset_diff  # the shapes the real-cluster recordings are compared by
from tests.sandbox.es_http import request
from tests.sandbox_plugin import serve_http

osmem_server = pytest.importorskip("osmem_server")

ES_VERSION = "8.15.0"


# Each step: (method, path, body or None, ndjson or None, mode, note[, keys only ES returns]).
# mode "equal": both shapes identical; "sandbox<=osmem": every key the sandbox returns,
# osmem returns with the same type (osmem adds OpenSearch-only keys); "status": only the
# status is compared (the body differs for a reason in the note).
MAPPED = {"mappings": {"properties": {"n": {"type": "integer"}, "k": {"type": "keyword"}}},
          "settings": {"number_of_shards": 2}}
STEPS = [
    ("PUT", "/c1", MAPPED, None, "equal", ""),
    ("PUT", "/c1", None, None, "equal", ""),
    ("GET", "/missing/_count", None, None, "equal", ""),
    ("PUT", "/c1/_doc/1", {"n": 1, "k": "a"}, None, "equal", ""),
    ("POST", "/_bulk", None, [{"index": {"_index": "c1", "_id": "2"}}, {"n": 2, "k": "b"},
                               {"index": {"_index": "c1", "_id": "3"}}, {"n": "abc"},
                               {"create": {"_index": "c1", "_id": "1"}}, {"n": 9}], "equal",
     "items[1].error.type: Elasticsearch >= 8.8 says document_parsing_exception, osmem (like ES 7 and "
     "OpenSearch) mapper_parsing_exception; shapes match"),
    ("POST", "/c1/_refresh", None, None, "equal", ""),
    ("GET", "/c1/_count", None, None, "equal", ""),
    ("POST", "/c1/_count", {"query": {"range": {"n": {"gte": 2}}}}, None, "equal", ""),
    ("POST", "/c1/_search", {"query": {"term": {"k": "a"}}}, None, "equal", ""),
    ("POST", "/c1/_search", {"size": 0, "aggs": {"m": {"max": {"field": "n"}}}},
     None, "sandbox<=osmem", "osmem adds terminated_early for size 0"),
    ("GET", "/c1/_doc/1", None, None, "equal", ""),
    ("GET", "/c1/_doc/404", None, None, "equal", ""),
    ("GET", "/c1/_mapping", None, None, "equal", ""),
    ("GET", "/c1/_settings", None, None, "sandbox<=osmem", "osmem adds OpenSearch's index.replication"),
    ("PUT", "/c1/_settings", {"index": {"number_of_shards": 3}}, None, "equal", ""),
    ("PUT", "/c1/_settings", {"index": {"blocks.write": True}}, None, "equal", ""),
    ("PUT", "/c1/_doc/5", {"n": 5}, None, "equal", ""),
    ("POST", "/_bulk", None, [{"index": {"_index": "c1", "_id": "6"}}, {"n": 6}], "equal", ""),
    ("PUT", "/c1/_settings", {"index": {"blocks.write": False}}, None, "equal", ""),
    ("GET", "/c1/_stats/indexing", None, None, "sandbox<=osmem",
     "osmem adds max_last_index_request_timestamp; ES 8 adds per-index health/status, which osmem lacks"),
    ("POST", "/_reindex", {"source": {"index": "c1"}, "dest": {"index": "c2"}}, None, "equal", ""),
    ("POST", "/c2/_refresh", None, None, "equal", ""),
    ("GET", "/c2/_count", None, None, "equal", ""),
    ("PUT", "/_index_template/t1", {"index_patterns": ["tpl-*"], "priority": 1,
                                     "template": {"settings": {"number_of_shards": 1}}}, None, "equal", ""),
    ("PUT", "/_index_template/t2", {"index_patterns": ["tpl-1*"], "priority": 1}, None, "equal", ""),
    ("GET", "/_index_template/t1", None, None, "equal", ""),
    ("GET", "/_index_template/none", None, None, "equal", ""),
    ("DELETE", "/_index_template/none", None, None, "equal", ""),
    ("POST", "/_aliases", {"actions": [{"add": {"index": "c2", "alias": "c"}}]}, None, "equal",
     "ES 8.14+ adds a top-level errors flag, osmem does not", ("errors",)),
    ("GET", "/_alias/c", None, None, "equal", ""),
    ("GET", "/_alias/nope", None, None, "equal", ""),
    ("POST", "/_aliases", {"actions": [{"remove": {"index": "c2", "alias": "nope"}}]}, None, "equal", ""),
    ("GET", "/_cat/aliases?format=json", None, None, "equal", ""),
    ("GET", "/_cat/indices?format=json&h=health,status,index,uuid,pri,rep,docs.count", None, None, "equal",
     "default columns differ: ES 8 adds dataset.size, osmem (OpenSearch) does not"),
    ("PUT", "/Bad", None, None, "equal", ""),
    ("GET", "/_nothing/here", None, None, "equal", ""),
    ("POST", "/c1/_count?nonsense=1", None, None, "equal", ""),
    ("DELETE", "/c1", None, None, "equal", ""),
    ("GET", "/c1", None, None, "equal", ""),
]

# Where osmem and Elasticsearch disagree, the sandbox follows Elasticsearch (checked here
# on the sandbox alone, and shown against osmem so the difference stays visible).
DIFFERENCES = [
    # (method, path, body, sandbox status, osmem status, why)
    ("DELETE", "/c*", None, 400, 200, "ES 8 defaults action.destructive_requires_name to true; OpenSearch does not"),
    ("PUT", "/c2/_block/write", None, 200, 400, "osmem has no add-block API (Elasticsearch 7.9+ has)"),
    ("GET", "/_tasks", None, 200, 400, "osmem has no _tasks API"),
]


@pytest.fixture(scope="module")
def servers():
    osmem = osmem_server.OsmemServer.start(seed=[], freeze=False)
    srv = serve_http(version=ES_VERSION, documents=True)
    yield osmem.url, srv.url
    srv.close()
    osmem.close()


def test_document_and_index_endpoints_answer_with_osmem_shapes(servers):
    osmem_url, sandbox_url = servers
    problems = []
    for step in STEPS:
        method, path, body, ndjson, mode, note = step[:6]
        es_only = step[6] if len(step) > 6 else ()
        o_status, o_body = request(osmem_url, method, path, body, ndjson)
        s_status, s_body = request(sandbox_url, method, path, body, ndjson)
        label = "%s %s%s" % (method, path, (" (%s)" % note) if note else "")
        if o_status != s_status:
            problems.append("%s: status osmem %s sandbox %s (%s)" % (label, o_status, s_status, s_body))
            continue
        if es_only:
            s_body = {k: v for k, v in s_body.items() if k not in es_only}
        if mode == "equal" and shape(o_body) != shape(s_body):
            problems.append("%s: shapes differ\n  osmem   %s\n  sandbox %s" % (label, shape(o_body), shape(s_body)))
        elif mode == "sandbox<=osmem":
            s_shape = shape(s_body)
            if method == "GET" and "/_stats" in path:
                for entry in s_shape.get("indices", {}).values():
                    entry.pop("health", None)  # ES 8 only
                    entry.pop("status", None)
            diff = subset_diff(s_shape, shape(o_body))
            if diff:
                problems.append("%s: sandbox keys not in osmem: %s" % (label, diff))
    assert not problems, "\n".join(problems)


def test_error_types_match_osmem_where_elasticsearch_agrees(servers):
    osmem_url, sandbox_url = servers
    request(osmem_url, "PUT", "/e1", {"mappings": {"properties": {"n": {"type": "integer"}}}})
    request(sandbox_url, "PUT", "/e1", {"mappings": {"properties": {"n": {"type": "integer"}}}})
    for method, path, body in [("PUT", "/e1", None), ("GET", "/nope/_search", None),
                               ("PUT", "/e1/_settings", {"index": {"number_of_shards": 5}}),
                               ("DELETE", "/_index_template/none", None)]:
        o = request(osmem_url, method, path, body)
        s = request(sandbox_url, method, path, body)
        assert o[0] == s[0]
        assert o[1]["error"]["type"] == s[1]["error"]["type"], (method, path)
    # Documented difference: the parse error's type name (ES >= 8.8 renamed it).
    o = request(osmem_url, "PUT", "/e1/_doc/1", {"n": "x"})[1]["error"]
    s = request(sandbox_url, "PUT", "/e1/_doc/1", {"n": "x"})[1]["error"]
    assert o["type"] == "mapper_parsing_exception" and s["type"] == "document_parsing_exception"
    assert "failed to parse field [n] of type [integer]" in o["reason"]
    assert "failed to parse field [n] of type [integer]" in s["reason"]


@pytest.mark.parametrize("method,path,body,sandbox_status,osmem_status,why", DIFFERENCES)
def test_sandbox_follows_elasticsearch_where_osmem_differs(servers, method, path, body, sandbox_status,
                                                           osmem_status, why):
    osmem_url, sandbox_url = servers
    for url in (osmem_url, sandbox_url):
        request(url, "PUT", "/c2")  # exists on both whatever ran before
    assert request(sandbox_url, method, path, body)[0] == sandbox_status, why
    assert request(osmem_url, method, path, body)[0] == osmem_status, why


def test_refresh_interval_minus_one_hides_documents_in_the_sandbox_only(servers):
    # osmem does not model refresh: documents count at once whatever refresh_interval says.
    # Elasticsearch (and the sandbox) count them only after a refresh, the behaviour that
    # catches "count checked before refresh" bugs.
    osmem_url, sandbox_url = servers
    counts = {}
    for name, url in (("osmem", osmem_url), ("sandbox", sandbox_url)):
        request(url, "PUT", "/r1", {"settings": {"refresh_interval": "-1"}})
        request(url, "PUT", "/r1/_doc/1", {"a": 1})
        counts[name] = request(url, "GET", "/r1/_count")[1]["count"]
        request(url, "POST", "/r1/_refresh")
        assert request(url, "GET", "/r1/_count")[1]["count"] == 1
    assert counts == {"osmem": 1, "sandbox": 0}


# Malformed requests a module might send: osmem and the sandbox refuse them alike
# (status and error type), and neither stores anything.
MALFORMED = [
    ("POST", "/m1/_search", "x"),
    ("POST", "/_aliases", [1]),
    ("POST", "/_aliases", {"actions": [{"add": "x"}]}),
    ("POST", "/m1/_search", {"query": {"term": {}}}),
    ("POST", "/m1/_search", {"query": {"match": {"x": 1, "y": 2}}}),
    ("POST", "/m1/_count", {"query": {"range": {"x": "y"}}}),
    ("POST", "/m1/_search", {"query": {"terms": {"x": "y"}}}),
    ("POST", "/m1/_search", {"aggs": {"a": {"terms": {}}}}),
    ("POST", "/m1/_search", {"aggs": {"a": "x"}}),
    ("POST", "/m1/_search", {"size": "x"}),
    ("GET", "/m1/_search?size=x", None),
    ("POST", "/_reindex", {"source": "x", "dest": {"index": "m2"}}),
    ("POST", "/_reindex?requests_per_second=x", {"source": {"index": "m1"}, "dest": {"index": "m2"}}),
    ("PUT", "/m2", {"settings": {"number_of_shards": "x"}}),
    ("PUT", "/m1/_mapping", {"properties": "x"}),
    ("PUT", "/m1/_settings", {"index": {"number_of_replicas": "x"}}),
    ("PUT", "/_index_template/m", {"index_patterns": ["m*"], "template": "x"}),
    ("PUT", "/_index_template/m", {"index_patterns": ["m*"], "priority": "x"}),
]


def test_malformed_requests_are_refused_with_the_same_status_and_error_type_as_osmem(servers):
    osmem_url, sandbox_url = servers
    for url in (osmem_url, sandbox_url):
        request(url, "PUT", "/m1")
        request(url, "PUT", "/m1/_doc/1?refresh=true", {"x": 1})
    problems = []
    for method, path, body in MALFORMED:
        o_status, o_body = request(osmem_url, method, path, body)
        s_status, s_body = request(sandbox_url, method, path, body)
        o_type, s_type = o_body["error"]["type"], s_body["error"]["type"]
        if (o_status, o_type) != (s_status, s_type) or s_status != 400:
            problems.append("%s %s %s: osmem %s %s, sandbox %s %s"
                            % (method, path, json.dumps(body), o_status, o_type, s_status, s_type))
    assert not problems, "\n".join(problems)
    for url in (osmem_url, sandbox_url):
        assert request(url, "HEAD", "/m2")[0] == 404
        assert request(url, "GET", "/_index_template/m")[0] == 404
        assert request(url, "GET", "/m1/_count")[1]["count"] == 1
