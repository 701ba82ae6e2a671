"""es_client against real HTTP peers: osmem-server (OpenSearch), the sandbox's HTTP
API presenting Elasticsearch 7.17 / 8.x / 9.x with TLS and authentication, and
tiny local servers for retries and connection failures."""
import datetime
import http.server
import ipaddress
import socket
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient, EsError


# -- helpers ----------------------------------------------------------------
def _make_ca(tmp_path, name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    path = tmp_path / ("%s.pem" % name)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, str(path)


def _make_server_cert(tmp_path, ca_key, ca_cert):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    certfile, keyfile = tmp_path / "server.pem", tmp_path / "server.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return {"certfile": str(certfile), "keyfile": str(keyfile)}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    ca_key, ca_cert, ca_file = _make_ca(tmp, "sandbox-ca")
    _, _, other_ca = _make_ca(tmp, "other-ca")
    return {"server": _make_server_cert(tmp, ca_key, ca_cert), "ca": ca_file, "other_ca": other_ca}


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers the statuses in server.script in turn (then 200), recording each request."""

    def do_GET(self):  # noqa: N802 (http.server API)
        self.server.seen.append(self.path)
        status = self.server.script.pop(0) if self.server.script else 200
        body = (b'{"cluster_name":"scripted","version":{"number":"8.15.0"}}' if status == 200 else
                b'{"error":{"type":"master_not_discovered_exception","reason":null},"status":%d}' % status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for n in range(self.server.extra_headers):  # as OpenSearch 2.x's TASK_RESOURCE_USAGE, one per child task
            self.send_header("TASK_RESOURCE_USAGE", '{"action":"indices:data/read/search","taskId":%d}' % n)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_server():
    servers = []

    def start(script):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
        server.script, server.seen, server.extra_headers = list(script), [], 0
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, "http://127.0.0.1:%d" % server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_answer_with_hundreds_of_headers_is_read(scripted_server):
    """OpenSearch 2.x sends one TASK_RESOURCE_USAGE header per child task: a synchronous _reindex of 200k
    documents answered with about 200 on a real 2.19.6, which http.client refuses above 100."""
    server, url = scripted_server([])
    server.extra_headers = 300
    assert EsClient([url], max_retries=0).get("/")["cluster_name"] == "scripted"


# -- OpenSearch (osmem-server) ----------------------------------------------
@pytest.fixture(scope="module")
def osmem():
    from osmem_server import OsmemServer
    with OsmemServer.start(japanese=False) as server:
        yield server


def test_opensearch_is_recognised_and_served_with_plain_json(osmem):
    es = EsClient([osmem.url])
    assert es.distribution == "opensearch"
    assert es.version >= (2, 0, 0)
    # voting exclusions per OpenSearch's API reference (osmem-server does not serve them); no shutdown API
    assert es.has_voting_exclusions() and not es.has_shutdown_api()
    es.put("/client-roundtrip", body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    result = es.bulk([{"index": {"_index": "client-roundtrip", "_id": str(i)}} if j == 0 else {"n": i}
                      for i in range(5) for j in range(2)], params={"refresh": True})
    assert result["errors"] is False
    assert es.get("/client-roundtrip/_count")["count"] == 5
    assert es.exists("/client-roundtrip") and not es.exists("/no-such-index")


def test_missing_index_error_is_one_sentence_with_the_type(osmem):
    with pytest.raises(EsError) as err:
        EsClient([osmem.url]).get("/no-such-index/_count")
    assert err.value.status == 404
    assert err.value.error_type == "index_not_found_exception"
    assert "\n" not in err.value.message and err.value.message.startswith("Elasticsearch answered GET")


# -- Elasticsearch versions (sandbox) -----------------------------------------
@pytest.mark.parametrize("version", ["7.17.25", "8.15.0", "9.1.0"])
def test_every_supported_elasticsearch_version_accepts_our_requests(sandbox_http, version):
    es = EsClient([sandbox_http(version=version).url])
    assert es.distribution == "elasticsearch"
    assert es.version[0] == int(version.split(".")[0])
    assert es.has_voting_exclusions()
    # The shutdown API is asked of the cluster, not read from the version: this server is the
    # sandbox's document half alone and answers GET _nodes/shutdown "no handler found" (400), as a
    # cluster without x-pack's shutdown API does. The full sandbox has it (tests/integration/test_upgrade.py).
    assert not es.has_shutdown_api()


def test_plain_json_works_on_7_where_the_official_8_client_is_rejected(sandbox_http):
    # Why es_client does not use elasticsearch.Elasticsearch: its compatible-with media type.
    import elasticsearch
    url = sandbox_http(version="7.17.25").url
    with pytest.raises(elasticsearch.ApiError) as err:
        elasticsearch.Elasticsearch(url).info()
    assert err.value.status_code == 400 and "media_type_header_exception" in str(err.value)
    assert EsClient([url]).info()["version"]["number"] == "7.17.25"


# -- TLS -----------------------------------------------------------------------
def test_tls_with_the_right_ca_file_succeeds(sandbox_http, tls_files):
    url = sandbox_http(tls=tls_files["server"]).url
    assert url.startswith("https://")
    assert EsClient([url], ca_file=tls_files["ca"]).info()["version"]["number"] == "8.15.0"


@pytest.mark.parametrize("ca", ["other_ca", None])
def test_tls_verification_is_on_by_default_and_a_wrong_ca_fails_in_one_sentence(sandbox_http, tls_files, ca):
    url = sandbox_http(tls=tls_files["server"]).url
    with pytest.raises(EsError) as err:
        EsClient([url], ca_file=tls_files[ca] if ca else None, max_retries=0).info()
    message = err.value.message
    assert message.startswith("TLS to %s failed (certificate verify failed)" % url)
    assert "es_ca_file" in message and "\n" not in message


def test_turning_verification_off_is_explicit(sandbox_http, tls_files):
    url = sandbox_http(tls=tls_files["server"]).url
    assert EsClient([url], validate_certs=False).info()["cluster_name"]


def test_https_url_against_a_plain_http_server_says_so(sandbox_http):
    url = sandbox_http().url.replace("http://", "https://")
    with pytest.raises(EsError) as err:
        EsClient([url], max_retries=0).info()
    assert "does not speak TLS" in err.value.message


# -- authentication ------------------------------------------------------------
AUTH = {"basic": {"user": "elastic", "password": "s3cret-pw"}, "api_key": "key-id:key-secret"}


def test_basic_auth_and_api_key_are_accepted(sandbox_http):
    url = sandbox_http(auth=AUTH).url
    assert EsClient([url], username="elastic", password="s3cret-pw").info()["cluster_name"]
    assert EsClient([url], api_key="key-id:key-secret").info()["cluster_name"]
    # The base64 form Elasticsearch hands out works as well.
    import base64
    assert EsClient([url], api_key=base64.b64encode(b"key-id:key-secret").decode()).info()["cluster_name"]


@pytest.mark.parametrize("creds", [dict(username="elastic", password="wrong"), dict(api_key="key-id:wrong"), {}])
def test_wrong_or_missing_credentials_fail_in_one_sentence_without_the_secret(sandbox_http, creds):
    url = sandbox_http(auth=AUTH).url
    with pytest.raises(EsError) as err:
        EsClient([url], **creds).info()
    message = err.value.message
    assert err.value.status == 401
    assert message.startswith("Elasticsearch at %s refused the credentials (401" % url)
    assert "wrong" not in message and "\n" not in message


def test_username_and_api_key_together_are_refused():
    with pytest.raises(EsError, match="either es_username/es_password or es_api_key"):
        EsClient(["http://127.0.0.1:9200"], username="a", password="b", api_key="c:d")


# -- retries -----------------------------------------------------------------------
def test_503_twice_then_200_is_retried_to_success(scripted_server):
    server, url = scripted_server([503, 503])
    assert EsClient([url], max_retries=3).info()["cluster_name"] == "scripted"
    assert server.seen == ["/", "/", "/"]


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_are_retried(scripted_server, status):
    server, url = scripted_server([status])
    assert EsClient([url], max_retries=1).info()["cluster_name"] == "scripted"
    assert len(server.seen) == 2


def test_retries_give_up_after_max_retries_with_the_status(scripted_server):
    server, url = scripted_server([503] * 5)
    with pytest.raises(EsError) as err:
        EsClient([url], max_retries=2).info()
    assert err.value.status == 503 and len(server.seen) == 3
    # That error has no reason: the sentence ends at its type.
    assert err.value.message == "Elasticsearch answered GET / with 503 master_not_discovered_exception."


def test_400_is_not_retried(scripted_server):
    server, url = scripted_server([400])
    with pytest.raises(EsError):
        EsClient([url], max_retries=3).info()
    assert len(server.seen) == 1


def test_connection_dropped_once_is_retried():
    # First connection: accepted and closed without an answer; second: a real answer.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    accepted = []

    def serve():
        first, _ = listener.accept()
        accepted.append(1)
        first.recv(65536)
        first.close()
        second, _ = listener.accept()
        accepted.append(2)
        second.recv(65536)
        body = b'{"cluster_name":"after-drop","version":{"number":"8.15.0"}}'
        second.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                       b"Connection: close\r\n\r\n%s" % (len(body), body))
        second.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert EsClient(["http://127.0.0.1:%d" % port], max_retries=2).info()["cluster_name"] == "after-drop"
        assert accepted == [1, 2]
    finally:
        listener.close()


# -- bad URLs ------------------------------------------------------------------------
def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_names_the_reason():
    url = "http://127.0.0.1:%d" % _free_port()
    with pytest.raises(EsError) as err:
        EsClient([url], max_retries=1).info()
    assert err.value.message == ("Cannot connect to Elasticsearch at %s (connection refused): check es_url and "
                                 "that the cluster is reachable from this host." % url)


def test_unresolvable_host_names_the_reason():
    with pytest.raises(EsError) as err:
        EsClient(["http://no-such-host.invalid:9200"], max_retries=0).info()
    assert "(cannot resolve the host name)" in err.value.message


@pytest.mark.parametrize("url, fragment", [
    ("es.internal:9200", "has no scheme"),
    ("ftp://es.internal", "is not an http(s)://host[:port] URL"),
])
def test_malformed_url_is_refused_before_any_request(url, fragment):
    with pytest.raises(EsError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        EsClient([url])


def test_missing_ca_file_is_named(tmp_path):
    with pytest.raises(EsError, match="es_ca_file .* does not exist"):
        EsClient(["https://127.0.0.1:9200"], ca_file=str(tmp_path / "nope.pem"))


def test_an_opensearch_cluster_manager_is_master_eligible_for_the_rollout(osmem):
    # OpenSearch 2+ lists the role as cluster_manager: the rollout's master rules (one at a time,
    # elected master last, voting exclusion) must apply to it as to an Elasticsearch master.
    from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster, is_master_eligible
    view = Cluster(EsClient([osmem.url])).view()
    node = next(iter(view.nodes.values()))
    assert "cluster_manager" in node["roles"] and "master" not in node["roles"]
    assert is_master_eligible(node)
    assert view.master_eligible_ids() == list(view.nodes)
