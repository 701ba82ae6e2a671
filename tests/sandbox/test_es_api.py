"""The sandbox's Elasticsearch HTTP layer: routing by the REST spec, error shapes, version
presentation, compatible-with handling, TLS and authentication.

elasticsearch-py 9 (the client our connection layer is built on) is used against each
presented version to show what works and what fails; raw HTTP is used where the exact
status and body shape are the promise.
"""
from __future__ import annotations

import base64
import gzip
import http.client
import json
import socketserver
import ssl
import time
import urllib.parse

import pytest

from sandbox.es_api.tls import make_ca_and_cert

elasticsearch = pytest.importorskip("elasticsearch")


@pytest.fixture
def sandbox(sandbox_http):
    """(state, url) of the HTTP API with the documents half, as each test asks (version, tls, auth)."""
    def make(version="8.15.0", **kw):
        srv = sandbox_http(version=version, documents=True, **kw)
        return srv.state, srv.url
    return make


def call(url, method, path, body=None, headers=None, ctx=None):
    """One raw HTTP request; returns (status, headers, parsed body or text)."""
    u = urllib.parse.urlsplit(url)
    conn = (http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10) if u.scheme == "https"
            else http.client.HTTPConnection(u.hostname, u.port, timeout=10))
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read().decode()
    conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw
    return resp.status, resp, parsed


# --- routing and validation -----------------------------------------------------------

def test_unknown_path_gets_no_handler_error_and_is_counted(sandbox):
    state, url = sandbox()
    status, _, body = call(url, "GET", "/_does_not/exist")
    assert status == 400
    assert body == {"error": "no handler found for uri [/_does_not/exist] and method [GET]"}
    assert state.unknown_requests == ["GET /_does_not/exist"]


def test_wrong_method_on_known_path_gets_405_listing_allowed_methods(sandbox):
    state, url = sandbox()
    status, resp, body = call(url, "DELETE", "/_refresh")
    assert status == 405
    assert body == {"error": "Incorrect HTTP method for uri [/_refresh] and method [DELETE], allowed: [GET, POST]",
                    "status": 405}
    assert resp.getheader("Allow") == "GET,POST"
    # /{index} takes PUT (create), DELETE, GET and HEAD (exists); listed in ES's method order.
    status, _, body = call(url, "POST", "/some-index")
    assert status == 405 and body["error"].endswith("allowed: [GET, PUT, DELETE, HEAD]")
    assert state.unknown_requests == ["DELETE /_refresh", "POST /some-index"]


def test_unrecognized_query_parameter_is_rejected_like_elasticsearch(sandbox):
    _, url = sandbox()
    status, _, body = call(url, "GET", "/_count?wait_for_status=green")
    assert status == 400
    assert body["error"]["type"] == "illegal_argument_exception"
    assert body["error"]["reason"] == "request [/_count] contains unrecognized parameter: [wait_for_status]"
    assert body["error"]["root_cause"][0]["type"] == "illegal_argument_exception"
    assert body["status"] == 400


def test_global_parameters_are_accepted_everywhere(sandbox):
    _, url = sandbox()
    status, _, body = call(url, "GET", "/_count?pretty&human=true&error_trace=false")
    assert status == 200 and body["count"] == 0


def test_known_api_without_handler_is_reported_as_gap(sandbox):
    # cluster.health belongs to the engine half; with no engine registered it is a gap.
    state, url = sandbox()
    status, _, body = call(url, "GET", "/_cluster/health")
    assert status == 400 and "no handler found" in body["error"]
    assert state.unknown_requests == ["GET /_cluster/health"]


def test_literal_path_segments_win_over_path_parts(sandbox):
    # /_index_template/x must not be read as an index called "_index_template".
    state, url = sandbox()
    assert call(url, "PUT", "/_index_template/t", {"index_patterns": ["a-*"]})[0] == 200
    assert call(url, "GET", "/_index_template/t")[2]["index_templates"][0]["name"] == "t"
    assert "_index_template" not in state.indices


def test_every_request_is_counted_and_logged(sandbox):
    state, url = sandbox()
    call(url, "GET", "/")
    call(url, "GET", "/nope/_nothing/here")
    assert state.request_count == 2
    assert state.request_log == [("GET", "/", 200), ("GET", "/nope/_nothing/here", 400)]


def test_filter_path_keeps_only_requested_keys(sandbox):
    _, url = sandbox()
    body = call(url, "GET", "/?filter_path=version.number,tagline")[2]
    assert body == {"version": {"number": "8.15.0"}, "tagline": "You Know, for Search"}
    body = call(url, "GET", "/?filter_path=**.minimum_*")[2]
    assert set(body["version"]) == {"minimum_wire_compatibility_version", "minimum_index_compatibility_version"}


def test_unavailable_window_answers_503_then_recovers(sandbox):
    state, url = sandbox()
    state.unavailable_until = state.now() + 0.3
    status, _, body = call(url, "GET", "/")
    assert status == 503
    assert body["error"]["type"] == "master_not_discovered_exception" and body["status"] == 503
    time.sleep(0.35)
    assert call(url, "GET", "/")[0] == 200


def test_body_with_unsupported_content_type_is_refused_with_406(sandbox):
    _, url = sandbox()
    status, _, body = call(url, "PUT", "/i1", b"{}", headers={"Content-Type": "text/plain"})
    assert status == 406
    assert body == {"error": "Content-Type header [text/plain] is not supported", "status": 406}


# --- version presentation -------------------------------------------------------------

@pytest.mark.parametrize("version,wire", [("7.17.22", "6.8.0"), ("8.15.0", "7.17.0"), ("9.1.2", "8.19.0")])
def test_root_presents_the_configured_version(sandbox, version, wire):
    _, url = sandbox(version)
    status, resp, body = call(url, "GET", "/")
    assert status == 200
    assert resp.getheader("X-Elastic-Product") == "Elasticsearch"
    assert body["version"]["number"] == version
    assert body["version"]["build_flavor"] == "default"
    assert body["version"]["minimum_wire_compatibility_version"] == wire
    assert body["tagline"] == "You Know, for Search"
    assert set(body) == {"name", "cluster_name", "cluster_uuid", "version", "tagline"}


VND = "application/vnd.elasticsearch+json; compatible-with=%d"


@pytest.mark.parametrize("version,accepted,rejected", [
    ("7.17.22", [7], [8, 9]),
    ("8.15.0", [7, 8], [9]),
    ("9.1.2", [8, 9], [7]),
])
def test_compatible_with_media_types_follow_the_presented_major(sandbox, version, accepted, rejected):
    _, url = sandbox(version)
    cur = int(version.split(".")[0])
    for n in accepted:
        status, resp, _ = call(url, "PUT", "/ok-%d" % n, {}, headers={"Accept": VND % n, "Content-Type": VND % n})
        assert status == 200, (version, n)
        assert resp.getheader("Content-Type") == "application/vnd.elasticsearch+json;compatible-with=%d" % n
    for n in rejected:
        status, _, body = call(url, "GET", "/", headers={"Accept": VND % n})
        assert status == 400, (version, n)
        assert body["error"]["type"] == "media_type_header_exception"
        assert body["error"]["reason"] == "Invalid media-type value on headers [Accept, Content-Type]"
        assert body["error"]["caused_by"]["reason"].startswith(
            "Accept version must be either version %d or %d, but found %d." % (cur, cur - 1, n))


def test_mismatched_accept_and_content_type_versions_are_rejected(sandbox):
    _, url = sandbox("8.15.0")
    status, _, body = call(url, "PUT", "/x", {}, headers={"Accept": VND % 8, "Content-Type": VND % 7})
    assert status == 400
    assert "compatible versions must match" in body["error"]["caused_by"]["reason"]


def _client(url, **kw):
    return elasticsearch.Elasticsearch(url, request_timeout=5, retry_on_timeout=False, max_retries=0, **kw)


def test_elasticsearch_py_9_defaults_work_against_9(sandbox):
    _, url = sandbox("9.1.2")
    es = _client(url)
    assert es.info()["version"]["number"] == "9.1.2"
    es.indices.create(index="logs-a")
    es.index(index="logs-a", id="1", document={"n": 1}, refresh=True)
    assert es.count(index="logs-a")["count"] == 1


@pytest.mark.parametrize("version", ["7.17.22", "8.15.0"])
def test_elasticsearch_py_9_defaults_fail_against_older_majors(sandbox, version):
    _, url = sandbox(version)
    with pytest.raises(elasticsearch.BadRequestError) as err:
        _client(url).info()
    assert err.value.status_code == 400
    assert err.value.error == "media_type_header_exception"
    assert "but found 9" in str(err.value)


@pytest.mark.parametrize("version", ["7.17.22", "8.15.0"])
def test_elasticsearch_py_9_api_methods_send_compatible_with_9_whatever_client_headers_say(sandbox, version):
    # Per-request "accept: application/json" of every API method overrides client headers
    # and is rewritten to compatible-with=9: API methods cannot reach 7.x or 8.x.
    _, url = sandbox(version)
    es = _client(url, headers={"accept": VND % 8, "content-type": VND % 8})
    with pytest.raises(elasticsearch.BadRequestError) as err:
        es.indices.create(index="c1")
    assert "but found 9" in str(err.value)


@pytest.mark.parametrize("version,compat", [("7.17.22", 7), ("8.15.0", 8), ("8.15.0", 7), ("9.1.2", 8),
                                            ("9.1.2", 9)])
def test_elasticsearch_py_9_perform_request_with_the_server_major_compat_headers_works(sandbox, version, compat):
    _, url = sandbox(version)
    es = _client(url)
    hdrs = {"accept": VND % compat, "content-type": VND % compat}
    assert es.perform_request("GET", "/", headers={"accept": VND % compat})["version"]["number"] == version
    es.perform_request("PUT", "/c1", headers=hdrs, body={"settings": {"number_of_shards": 1}})
    resp = es.perform_request("POST", "/c1/_doc", params={"refresh": "true"}, headers=hdrs, body={"a": 1})
    assert resp["result"] == "created"
    assert es.perform_request("GET", "/c1/_count", headers={"accept": VND % compat})["count"] == 1


@pytest.mark.parametrize("version", ["7.17.22", "8.15.0"])
def test_elasticsearch_py_9_perform_request_rewrites_plain_json_to_compatible_with_9(sandbox, version):
    _, url = sandbox(version)
    with pytest.raises(elasticsearch.BadRequestError) as err:
        _client(url).perform_request("GET", "/", headers={"accept": "application/json"})
    assert err.value.error == "media_type_header_exception"


@pytest.mark.parametrize("version", ["7.17.22", "8.15.0", "9.1.2"])
def test_elastic_transport_with_plain_json_works_against_every_major(sandbox, version):
    import elastic_transport
    _, url = sandbox(version)
    t = elastic_transport.Transport([elastic_transport.NodeConfig("http", "127.0.0.1", int(url.rsplit(":", 1)[1]))])
    hdrs = {"accept": "application/json", "content-type": "application/json"}
    meta, body = t.perform_request("GET", "/", headers={"accept": "application/json"})
    assert meta.status == 200 and body["version"]["number"] == version
    assert meta.headers["x-elastic-product"] == "Elasticsearch"
    t.perform_request("PUT", "/p1", headers=hdrs, body={})
    _, body = t.perform_request("GET", "/p1/_count", headers={"accept": "application/json"})
    assert body["count"] == 0
    t.close()


def test_product_header_appears_from_7_14_and_elasticsearch_py_refuses_a_server_without_it(sandbox):
    _, url = sandbox("7.13.4")
    status, resp, _ = call(url, "GET", "/")
    assert status == 200 and resp.getheader("X-Elastic-Product") is None
    with pytest.raises(elasticsearch.UnsupportedProductError):
        _client(url).perform_request("GET", "/", headers={"accept": VND % 7})


def test_opaque_id_is_echoed(sandbox):
    _, url = sandbox()
    assert call(url, "GET", "/", headers={"X-Opaque-Id": "job-42"})[1].getheader("X-Opaque-Id") == "job-42"


def test_head_is_answered_by_the_get_route_without_body(sandbox):
    _, url = sandbox()
    call(url, "PUT", "/h1", {})
    status, resp, body = call(url, "HEAD", "/h1/_count")
    assert status == 200 and body is None


# --- TLS --------------------------------------------------------------------------------

def test_https_with_generated_ca_verifies(sandbox, tmp_path):
    paths = make_ca_and_cert(str(tmp_path / "tls"))
    _, url = sandbox("9.1.2", tls={"certfile": paths["certfile"], "keyfile": paths["keyfile"]})
    assert url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=paths["ca_cert"])
    assert call(url, "GET", "/", ctx=ctx)[0] == 200
    es = _client(url, ca_certs=paths["ca_cert"])
    assert es.info()["version"]["number"] == "9.1.2"
    # "localhost" is in the certificate too.
    es2 = _client(url.replace("127.0.0.1", "localhost"), ca_certs=paths["ca_cert"])
    assert es2.ping()


def test_https_with_a_different_ca_fails_verification(sandbox, tmp_path):
    paths = make_ca_and_cert(str(tmp_path / "tls"))
    other = make_ca_and_cert(str(tmp_path / "other"))
    _, url = sandbox("8.15.0", tls={"certfile": paths["certfile"], "keyfile": paths["keyfile"]})
    ctx = ssl.create_default_context(cafile=other["ca_cert"])
    with pytest.raises(ssl.SSLCertVerificationError):
        call(url, "GET", "/", ctx=ctx)
    with pytest.raises(elasticsearch.ConnectionError) as err:
        _client(url, ca_certs=other["ca_cert"]).info()
    assert "CERTIFICATE_VERIFY_FAILED" in repr(err.value)
    # The server keeps serving after a failed handshake.
    assert call(url, "GET", "/", ctx=ssl.create_default_context(cafile=paths["ca_cert"]))[0] == 200


# --- auth -------------------------------------------------------------------------------

BASIC = {"basic": {"user": "elastic", "password": "s3cret"}}
V9 = "9.1.2"  # elasticsearch-py 9 API methods need a 9.x server (see above)


def _basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def test_basic_auth_accepts_the_right_password(sandbox):
    _, url = sandbox(V9, auth=BASIC)
    assert call(url, "GET", "/", headers=_basic("elastic", "s3cret"))[0] == 200
    es = _client(url, basic_auth=("elastic", "s3cret"))
    assert es.info()["tagline"] == "You Know, for Search"


def test_missing_or_wrong_credentials_get_401_security_exception(sandbox):
    state, url = sandbox(V9, auth=BASIC)
    status, resp, body = call(url, "GET", "/_count")
    assert status == 401
    assert body["error"]["type"] == "security_exception"
    assert body["error"]["reason"] == "missing authentication credentials for REST request [/_count]"
    assert any(v.startswith("Basic realm=") for v in resp.headers.get_all("WWW-Authenticate"))
    status, _, body = call(url, "GET", "/", headers=_basic("elastic", "wrong"))
    assert status == 401
    assert body["error"]["reason"] == "unable to authenticate user [elastic] for REST request [/]"
    with pytest.raises(elasticsearch.AuthenticationException):
        _client(url, basic_auth=("elastic", "nope")).info()
    # Non-ASCII credentials are a wrong password, not a server error.
    assert call(url, "GET", "/", headers=_basic("elastic", "pässwörd"))[0] == 401
    assert call(url, "GET", "/", headers={"Authorization": "Basic !!notbase64"})[0] == 401


def test_api_key_auth_good_and_bad(sandbox):
    _, url = sandbox(V9, auth={"api_key": "kid:kval"})
    es = _client(url, api_key=("kid", "kval"))
    assert es.info()["version"]["number"] == V9
    status, _, body = call(url, "GET", "/", headers={
        "Authorization": "ApiKey " + base64.b64encode(b"kid:other").decode()})
    assert status == 401 and body["error"]["type"] == "security_exception"
    with pytest.raises(elasticsearch.AuthenticationException):
        _client(url, api_key=("kid", "bad")).info()


# --- robustness: a handler bug is an Elasticsearch-shaped 500, never a traceback ---------

class _NotJSON:
    """What a buggy handler might put in a body (e.g. a moto model object)."""


def test_handler_returning_a_non_json_body_gets_es_shaped_500_and_is_logged(sandbox, caplog):
    state, url = sandbox()
    from sandbox.state import Response
    state.register("cluster.health", lambda st, req: Response(200, {"node": {"placement": _NotJSON()}}))
    with caplog.at_level("ERROR", logger="sandbox.es_api"):
        status, resp, body = call(url, "GET", "/_cluster/health")
    assert status == 500
    assert body["status"] == 500 and body["error"]["type"] == "exception"
    assert body["error"]["root_cause"][0]["type"] == "exception"
    assert "_NotJSON" in body["error"]["reason"] and "Traceback" not in body["error"]["reason"]
    assert resp.getheader("Content-Type") == "application/json"
    assert ("GET", "/_cluster/health", 500) in state.request_log
    assert state.internal_errors and "GET /_cluster/health" in state.internal_errors[0]
    assert any("Traceback" in r.getMessage() for r in caplog.records)  # the trace goes to the log
    assert call(url, "GET", "/")[0] == 200  # the server goes on serving


def test_handler_raising_gets_es_shaped_500_on_a_connection_that_stays_usable(sandbox):
    state, url = sandbox()

    def broken(st, req):
        raise KeyError("missing-node")
    state.register("cluster.health", broken)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", "/_cluster/health")
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 500 and body["error"]["type"] == "exception"
    assert "KeyError" in body["error"]["reason"] and "Traceback" not in body["error"]["reason"]
    conn.request("GET", "/")  # keep-alive survives the failure
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["tagline"] == "You Know, for Search"
    conn.close()


def test_non_finite_numbers_are_a_clean_500_not_invalid_json(sandbox):
    state, url = sandbox()
    from sandbox.state import Response
    state.register("cluster.health", lambda st, req: Response(200, {"active_shards_percent_as_number":
                                                                     float("nan")}))
    status, _, body = call(url, "GET", "/_cluster/health")
    assert status == 500 and body["error"]["type"] == "exception"


def test_nodes_stats_metric_path_part_is_a_metric_not_a_node_filter(sandbox):
    state, url = sandbox()
    from sandbox.state import Response
    seen = []

    def stats(st, req):
        seen.append(dict(req.parts))
        return Response(200, {"nodes": {}})
    state.register("nodes.stats", stats)
    assert call(url, "GET", "/_nodes/stats/fs")[0] == 200
    assert call(url, "GET", "/_nodes/n1,n2/stats/fs,os")[0] == 200
    assert call(url, "GET", "/_nodes/stats/indices/docs")[0] == 200
    assert call(url, "GET", "/_nodes/n1/stats")[0] == 200
    assert seen == [{"metric": "fs"}, {"node_id": "n1,n2", "metric": "fs,os"},
                    {"metric": "indices", "index_metric": "docs"}, {"node_id": "n1"}]


@pytest.mark.parametrize("tls", [False, True])
def test_each_response_leaves_in_one_write_so_keep_alive_clients_are_not_stalled(sandbox, tmp_path, tls,
                                                                                 monkeypatch):
    """Headers and body leave in one write: split, the client's delayed ACK holds the body ~40 ms
    per keep-alive request (Nagle). Counted at the socket writer, not timed (timing is bench/'s job)."""
    kw = {}
    ctx = None
    if tls:
        paths = make_ca_and_cert(str(tmp_path / "tls"))
        kw["tls"] = {"certfile": paths["certfile"], "keyfile": paths["keyfile"]}
        ctx = ssl.create_default_context(cafile=paths["ca_cert"])
    state, url = sandbox(**kw)
    call(url, "PUT", "/k1", {}, ctx=ctx)
    writes = []
    original = socketserver._SocketWriter.write

    def counting_write(self, b):
        writes.append(len(b))
        return original(self, b)

    monkeypatch.setattr(socketserver._SocketWriter, "write", counting_write)
    u = urllib.parse.urlsplit(url)
    conn = (http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10) if tls
            else http.client.HTTPConnection(u.hostname, u.port, timeout=10))
    for _ in range(5):
        conn.request("GET", "/k1")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and b"k1" in body
    conn.close()
    assert len(writes) == 5, writes


def test_undecodable_request_bodies_are_client_errors_not_server_errors(sandbox):
    state, url = sandbox()
    status, _, body = call(url, "PUT", "/g1", b"not gzip at all",
                           headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 400 and body["error"]["type"] == "parse_exception"
    status, _, body = call(url, "PUT", "/g1", b'{"settings": "\xff\xfe"}')
    assert status == 400 and body["error"]["type"] == "x_content_parse_exception"
    status, _, body = call(url, "PUT", "/g1", gzip.compress(b'{"settings": {"number_of_shards": 2}}'),
                           headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 200 and state.indices["g1"].number_of_shards == 2
    assert state.internal_errors == []


@pytest.mark.parametrize("path,raw,etype", [
    ("/n1", b"null", "x_content_parse_exception"),
    ("/n1", b"[1]", "x_content_parse_exception"),
    ("/n1/_search", b"true", "parsing_exception"),
    ("/n1/_count", b"42", "parsing_exception"),
])
def test_a_body_that_is_not_a_json_object_is_refused_as_elasticsearch_parsers_do(sandbox, path, raw, etype):
    state, url = sandbox()
    method = "PUT" if path == "/n1" else "POST"
    if method == "POST":
        call(url, "PUT", "/n1", {})
    status, _, body = call(url, method, path, raw)
    assert (status, body["error"]["type"]) == (400, etype)
    assert "START_OBJECT" in body["error"]["reason"]
    assert state.internal_errors == []
