"""Item 6 of issue 14, shared by the osmem and the cluster test files."""
from ansible_collections.logstack.elk.plugins.module_utils.reindex import Reindexer, reindex_all


def check_legacy_templates(es, options, ids):
    """Logstash on 7.x installs a legacy _template; the destination takes its mappings and settings."""
    es.put("/_template/logstash", {"index_patterns": ["logstash-*"], "order": 0,
                                   "settings": {"number_of_shards": 1},
                                   "mappings": {"properties": {"Status": {"type": "text"}}}})
    es.put("/archive-logs", {"aliases": {"logs": {}}})
    es.put("/logstash-2024.01.01", {"aliases": {"logs": {}}})
    es.bulk([line for i in range(20) for line in ({"index": {"_index": "logstash-2024.01.01", "_id": str(i)}},
                                                  {"Status": str(200 + i)})], params={"refresh": "true"})
    es.put("/_template/logstash-status", {"index_patterns": ["logstash-*"], "order": 1,
                                          "mappings": {"properties": {"Status": {"type": "integer"}}}})
    out = reindex_all(Reindexer(es, options()))
    assert out["failure"] is None, out["failure"]
    assert [r["index"] for r in out["results"]] == ["logstash-2024.01.01"]
    mapping = es.get("/logstash-2024.01.01/_mapping")["logstash-2024.01.01"]["mappings"]
    assert mapping["properties"]["Status"]["type"] == "integer"
    assert len(ids(es, "logstash-2024.01.01")) == 20
