# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Elasticsearch connection shared by every module of the collection.

Why elastic-transport and not ``elasticsearch.Elasticsearch``: the official
client 8+ refuses a server that does not send ``X-Elastic-Product``
(OpenSearch, osmem-server) and sends ``compatible-with=8/9`` media types that
Elasticsearch 7.x rejects. Its own transport layer (``elastic_transport``,
installed with the ``elasticsearch`` package) gives us the same node pool,
TLS handling and retries, and lets us send plain ``application/json``, which
Elasticsearch 7.17, 8.x, 9.x and OpenSearch 1-3 all accept.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
from urllib.parse import quote, urlencode, urlsplit

from ansible_collections.logstack.elk.plugins.module_utils.units import parse_version

try:
    import elastic_transport
    from elastic_transport import NodeConfig, Transport

    HAS_ELASTIC_TRANSPORT = True
    ELASTIC_TRANSPORT_IMPORT_ERROR = None
except ImportError as exc:  # reported by the module through missing_required_lib
    HAS_ELASTIC_TRANSPORT = False
    ELASTIC_TRANSPORT_IMPORT_ERROR = exc

# OpenSearch 2.x answers with one TASK_RESOURCE_USAGE header per child task (opensearch-project/OpenSearch
# #18245): a synchronous _reindex of 200k documents sends about 200, and http.client (under urllib3) refuses
# a response of more than 100 headers. Seen on a real OpenSearch 2.19.6 (docs/real-clusters.md).
http.client._MAXHEADERS = max(http.client._MAXHEADERS, 10000)  # pylint: disable=protected-access

# Argument spec fragment every Elasticsearch module extends (documented in the
# doc fragment logstack.elk.es). Environment variables are the fallback so AWX
# credentials and `python -m sandbox run` can inject them.
ES_CONNECTION_SPEC = dict(
    es_url=dict(type="list", elements="str", fallback=(lambda: _env_list("ES_URL"),)),
    es_username=dict(type="str", fallback=(lambda: os.environ.get("ES_USERNAME"),)),
    es_password=dict(type="str", no_log=True, fallback=(lambda: os.environ.get("ES_PASSWORD"),)),
    es_api_key=dict(type="str", no_log=True, fallback=(lambda: os.environ.get("ES_API_KEY"),)),
    es_ca_file=dict(type="path", fallback=(lambda: os.environ.get("ES_CA_FILE"),)),
    es_validate_certs=dict(type="bool", default=True),
    es_timeout=dict(type="int", default=30),
    es_max_retries=dict(type="int", default=3),
)


def _env_list(name):
    value = os.environ.get(name)
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


# Statuses worth retrying on another node / later: proxies and a cluster
# without a master answer these while the condition is usually transient.
RETRY_ON_STATUS = (502, 503, 504)


class EsError(Exception):
    """One readable sentence plus the details a caller may branch on."""

    def __init__(self, message, status=None, error_type=None, body=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.body = body


def error_summary(body):
    """(type, reason) from an Elasticsearch error body, whatever its shape."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            root = (err.get("root_cause") or [{}])[0] if isinstance(err.get("root_cause"), list) else {}
            reason = err.get("reason") or root.get("reason")
            return err.get("type") or root.get("type"), reason
        if isinstance(err, str):
            return None, err
    if isinstance(body, (bytes, str)) and body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return None, text[:300]
    return None, None


def _parse_url(url):
    if "://" not in url:
        raise EsError("Elasticsearch URL %r has no scheme: write it as https://host:9200 (or http://)." % url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EsError("Elasticsearch URL %r is not an http(s)://host[:port] URL." % url)
    port = parts.port or (443 if parts.scheme == "https" and ":" not in parts.netloc else 9200)
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/"), parts.username, parts.password


class EsClient:
    """A small JSON-over-HTTP client for Elasticsearch and OpenSearch.

    ``call`` returns ``(status, body)``; any status >= 400 not listed in
    ``allow`` raises :class:`EsError` with one sentence naming the problem.
    """

    def __init__(self, urls, username=None, password=None, api_key=None, ca_file=None,
                 validate_certs=True, timeout=30, max_retries=3):
        if not HAS_ELASTIC_TRANSPORT:
            raise EsError("The Python package 'elasticsearch' (elastic-transport) is required on the "
                          "host running this module: pip install -r requirements.txt.")
        if not urls:
            raise EsError("No Elasticsearch URL given: set es_url (or the ES_URL environment variable).")
        if username and api_key:
            raise EsError("Give either es_username/es_password or es_api_key, not both.")
        if username and password is None:
            raise EsError("es_username is set but es_password is not.")
        if ca_file and not os.path.isfile(ca_file):
            raise EsError("es_ca_file %s does not exist." % ca_file)
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        self._headers = dict(headers)
        if api_key:
            headers["Authorization"] = "ApiKey " + _encode_api_key(api_key)
        nodes = []
        self.urls = list(urls)
        for url in self.urls:
            scheme, host, port, prefix, url_user, url_password = _parse_url(url)
            node_headers = dict(headers)
            user, pwd = (username, password) if username else (url_user, url_password)
            if user:
                token = base64.b64encode(("%s:%s" % (user, pwd or "")).encode()).decode()
                node_headers["Authorization"] = "Basic " + token
            kwargs = dict(scheme=scheme, host=host, port=port, path_prefix=prefix,
                          headers=node_headers, request_timeout=timeout)
            if scheme == "https":
                kwargs.update(verify_certs=validate_certs, ca_certs=ca_file,
                              ssl_show_warn=False)
            nodes.append(NodeConfig(**kwargs))
        # meta_header=False: x-elastic-client-meta is for Elastic's telemetry only.
        self.transport = Transport(nodes, max_retries=max_retries, retry_on_status=RETRY_ON_STATUS,
                                   retry_on_timeout=True, meta_header=False,
                                   retry_backoff_base=0.5, retry_backoff_cap=5)
        self.timeout = timeout
        self.request_count = 0
        self._info = None
        self._shutdown_api = None  # has_shutdown_api(), asked once

    @classmethod
    def from_params(cls, params):
        """Build from a module's params (the ES_CONNECTION_SPEC options)."""
        return cls(params.get("es_url"), username=params.get("es_username"),
                   password=params.get("es_password"), api_key=params.get("es_api_key"),
                   ca_file=params.get("es_ca_file"), validate_certs=params.get("es_validate_certs", True),
                   timeout=params.get("es_timeout", 30), max_retries=params.get("es_max_retries", 3))

    # -- requests -------------------------------------------------------
    def call(self, method, path, params=None, body=None, allow=(), timeout=None, ndjson=False, retries=None):
        """One request; ``retries=0`` for a request that must not be sent twice (a POST starting a task)."""
        target = path if path.startswith("/") else "/" + path
        if params:
            query = {k: _param(v) for k, v in params.items() if v is not None}
            if query:
                target += "?" + urlencode(query)
        headers = dict(self._headers)
        payload = body
        if ndjson:
            headers["Content-Type"] = "application/x-ndjson"
            payload = ("\n".join(json.dumps(line) for line in body) + "\n").encode()
        elif body is not None:
            payload = json.dumps(body).encode()
        kwargs = {"headers": headers}
        if timeout is not None:
            kwargs["request_timeout"] = timeout
        if retries is not None:
            kwargs["max_retries"] = retries
        self.request_count += 1
        try:
            resp = self.transport.perform_request(method, target, body=payload, **kwargs)
        except elastic_transport.TlsError as exc:
            raise EsError("TLS to %s failed (%s): check es_ca_file (the CA that signed the server's "
                          "certificate) and the URL's host name." % (", ".join(self.urls), connection_reason(exc)))
        except elastic_transport.ConnectionTimeout as exc:
            raise EsError("Elasticsearch at %s did not answer %s %s within %s seconds (%s)."
                          % (", ".join(self.urls), method, path, timeout or self.timeout, connection_reason(exc)))
        except elastic_transport.ConnectionError as exc:
            raise EsError("Cannot connect to Elasticsearch at %s (%s): check es_url and that the "
                          "cluster is reachable from this host." % (", ".join(self.urls), connection_reason(exc)))
        status = resp.meta.status
        data = resp.body
        if status >= 400 and status not in allow:
            raise self._error(method, path, status, data)
        return status, data

    def _error(self, method, path, status, data):
        etype, reason = error_summary(data)
        if status == 401:
            msg = ("Elasticsearch at %s refused the credentials (401 %s): check es_username/es_password "
                   "or es_api_key." % (", ".join(self.urls), reason or "unauthorized"))
        elif status == 403:
            msg = "Elasticsearch refused %s %s (403 %s: %s)." % (method, path, etype, reason)
        else:
            msg = "Elasticsearch answered %s %s with %s %s" % (method, path, status, etype or "error")
            # Some errors (master_not_discovered_exception) carry no reason at all.
            msg += (": %s." % reason.rstrip(".")) if reason else "."
        return EsError(msg, status=status, error_type=etype, body=data)

    def get(self, path, params=None, allow=()):
        return self.call("GET", path, params=params, allow=allow)[1]

    def put(self, path, body=None, params=None, allow=()):
        return self.call("PUT", path, params=params, body=body, allow=allow)[1]

    def post(self, path, body=None, params=None, allow=()):
        return self.call("POST", path, params=params, body=body, allow=allow)[1]

    def delete(self, path, params=None, allow=()):
        return self.call("DELETE", path, params=params, allow=allow)[1]

    def exists(self, path):
        return self.call("HEAD", path, allow=(404,))[0] == 200

    def bulk(self, lines, params=None):
        return self.call("POST", "/_bulk", params=params, body=lines, ndjson=True)[1]

    # -- server identity ------------------------------------------------
    def info(self):
        if self._info is None:
            self._info = self.get("/")
        return self._info

    @property
    def distribution(self):
        return (self.info().get("version") or {}).get("distribution") or "elasticsearch"

    @property
    def version(self):
        """(major, minor, patch) of the server."""
        return parse_version((self.info().get("version") or {}).get("number", "0.0.0"))

    def has_shutdown_api(self):
        """Whether the node shutdown API answers here, asked of the cluster (once per client).

        It is Elasticsearch-only, from 7.15, and part of x-pack: a 7.17 without x-pack (the
        OSS-licensed build, jars from Maven Central) has none, and there ``GET _nodes/shutdown``
        is read as node info for a node named "shutdown" (a ``nodes`` object, not the API's
        ``nodes`` list). So the version number alone cannot tell.
        """
        if self._shutdown_api is None:
            self._shutdown_api = False
            if self.distribution == "elasticsearch" and self.version >= (7, 15, 0):
                status, body = self.call("GET", "/_nodes/shutdown", allow=(400, 404, 405))
                self._shutdown_api = status == 200 and isinstance((body or {}).get("nodes"), list)
        return self._shutdown_api

    def has_voting_exclusions(self):
        # Elasticsearch 7.0+, and OpenSearch (forked from 7.10; POST/DELETE
        # _cluster/voting_config_exclusions with node_names, per its API reference).
        if self.distribution == "opensearch":
            return True
        return self.distribution == "elasticsearch" and self.version >= (7, 0, 0)


def index_path(*names):
    """URL-quote index names for a path segment (date math and wildcards stay usable)."""
    return ",".join(quote(n, safe="*,-_.+<>{}/|") for n in names)


def _param(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _encode_api_key(api_key):
    # Accept "id:key" (encoded here) or the already base64-encoded form ES returns.
    if ":" in api_key:
        return base64.b64encode(api_key.encode()).decode()
    return api_key


# Substrings of socket / urllib3 / ssl errors -> the short reason an operator acts on.
_REASONS = (
    ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed"),
    ("certificate verify failed", "certificate verify failed"),
    ("Hostname mismatch", "certificate does not match the host name"),
    ("WRONG_VERSION_NUMBER", "the server does not speak TLS: use http:// or enable TLS on the server"),
    ("wrong version number", "the server does not speak TLS: use http:// or enable TLS on the server"),
    ("Connection refused", "connection refused"),
    ("Name or service not known", "cannot resolve the host name"),
    ("nodename nor servname", "cannot resolve the host name"),
    ("Temporary failure in name resolution", "cannot resolve the host name"),
    ("No address associated with hostname", "cannot resolve the host name"),
    ("Failed to resolve", "cannot resolve the host name"),
    ("Network is unreachable", "network unreachable"),
    ("No route to host", "no route to host"),
    ("Connection reset", "connection reset by peer"),
    ("RemoteDisconnected", "the server closed the connection without answering"),
    ("timed out", "timed out"),
)


def connection_reason(exc):
    """The underlying reason of an elastic_transport connection error, in a few words.

    elastic_transport's own str() is just "Connection error"; the cause (urllib3 /
    socket / ssl error) is in ``exc.message`` and the exception chain.
    """
    texts = []
    seen = set()
    current = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for attr in ("message", "reason"):
            value = getattr(current, attr, None)
            if isinstance(value, str) and value:
                texts.append(value)
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    joined = " | ".join(texts)
    for needle, reason in _REASONS:
        if needle in joined:
            return reason
    detail = next((t for t in texts if t and t not in ("Connection error", "Connection timed out", "TLS error")), "")
    return _first_line(detail) if detail else exc.__class__.__name__


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else exc.__class__.__name__
