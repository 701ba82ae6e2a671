"""The audit's docs_lost: every acknowledged document that can no longer be found under the index
name or alias it was written to, whoever removed it; and the _mget and scroll a diagnosis uses."""
import pytest

from tests.sandbox.es_http import request
from tests.sandbox_plugin import start_in_process


@pytest.fixture(scope="module")
def sbx():
    sb = start_in_process("reindex.yml")
    yield sb
    sb.stop()


def test_an_acknowledged_document_deleted_with_its_index_is_lost(sbx):
    url = sbx.es_url
    assert request(url, "PUT", "/acked-0/_doc/1", {"v": 1})[0] == 201
    assert request(url, "DELETE", "/acked-0")[0] == 200
    assert sbx.audit()["docs_lost"] == 1, "an index deleted with an acknowledged document"
    assert request(url, "PUT", "/acked-a/_doc/1", {"v": 1})[0] == 201
    assert request(url, "PUT", "/acked-b", {"aliases": {"b-alias": {}}})[0] == 200
    assert request(url, "PUT", "/b-alias/_doc/2?refresh=true", {"v": 2})[0] == 201
    assert request(url, "PUT", "/acked-a/_doc/3", {"v": 3})[0] == 201
    assert request(url, "DELETE", "/acked-a/_doc/3")[0] == 200  # a deliberate delete is no loss
    assert sbx.audit()["docs_lost"] == 1
    # A copy under the alias, then the original index deleted: still retrievable under the alias.
    assert request(url, "POST", "/_reindex?refresh=true", {"source": {"index": "acked-b"},
                                                           "dest": {"index": "acked-b2"}})[0] == 200
    assert request(url, "POST", "/_aliases", {"actions": [{"remove_index": {"index": "acked-b"}},
                                                          {"add": {"index": "acked-b2", "alias": "b-alias"}}]})[0] == 200
    assert sbx.audit()["docs_lost"] == 1
    assert request(url, "DELETE", "/acked-a")[0] == 200
    assert sbx.audit()["docs_lost"] == 2
    assert request(url, "DELETE", "/acked-b2")[0] == 200
    assert sbx.audit()["docs_lost"] == 3


def test_mget_and_scroll(sbx):  # noqa: F811
    url = sbx.es_url
    for i in range(5):
        request(url, "PUT", "/scrolled/_doc/%d?refresh=true" % i, {"v": i})
    status, body = request(url, "POST", "/scrolled/_mget?_source=false", {"ids": ["1", "9"]})
    assert status == 200 and [(d["_id"], d["found"]) for d in body["docs"]] == [("1", True), ("9", False)]
    assert "_source" not in body["docs"][0]
    status, page = request(url, "POST", "/scrolled/_search?scroll=1m", {"size": 2, "sort": ["_doc"]})
    seen = [h["_id"] for h in page["hits"]["hits"]]
    while page["hits"]["hits"]:
        status, page = request(url, "POST", "/_search/scroll", {"scroll": "1m", "scroll_id": page["_scroll_id"]})
        assert status == 200
        seen += [h["_id"] for h in page["hits"]["hits"]]
    assert sorted(seen) == ["0", "1", "2", "3", "4"]
    assert request(url, "DELETE", "/_search/scroll", {"scroll_id": [page["_scroll_id"]]})[1]["num_freed"] == 1
