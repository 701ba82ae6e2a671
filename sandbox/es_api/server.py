"""The sandbox's Elasticsearch HTTP API server.

``start_server(state)`` serves the registered handlers on a loopback port, presenting
itself as the Elasticsearch version in ``state.es_version``. Before a handler runs the
server does what Elasticsearch's REST layer does, in the same order: TLS, authentication,
media-type / compatible-with checks, routing by the REST spec (``spec.py``), query
parameter validation, body parsing. Every request is counted and logged
(``state.request_count``, ``state.request_log``); requests no handler knows are recorded
in ``state.unknown_requests`` so the audit shows gaps.
"""
from __future__ import annotations

import base64
import fnmatch
import gzip
import hashlib
import hmac
import json
import logging
import socket
import ssl
import threading
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple

from sandbox.state import Request, Response
from sandbox.units import version_tuple

from .errors import ESError
from .spec import router

LOG = logging.getLogger("sandbox.es_api")

REQUEST_LOG_MAX = 200_000

_BODY_TYPES = ("application/json", "application/x-ndjson", "application/vnd.elasticsearch+json",
               "application/vnd.elasticsearch+x-ndjson", "application/yaml", "application/cbor",
               "application/smile")

# RestRequest.Method's order, in which Elasticsearch lists allowed methods.
_METHOD_ORDER = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE", "CONNECT"]

# Facts of released versions that clients look at in "/" (per major version).
_VERSION_FACTS = {
    7: {"lucene_version": "8.11.3", "minimum_wire_compatibility_version": "6.8.0",
        "minimum_index_compatibility_version": "6.0.0-beta1"},
    8: {"lucene_version": "9.11.1", "minimum_wire_compatibility_version": "7.17.0",
        "minimum_index_compatibility_version": "7.0.0"},
    9: {"lucene_version": "10.2.2", "minimum_wire_compatibility_version": "8.19.0",
        "minimum_index_compatibility_version": "8.0.0"},
}


def major(state: Any) -> int:
    return version_tuple(state.es_version)[0]


def ensure_state(state: Any) -> None:
    """Add the attributes this half relies on to a state that lacks them."""
    with state.lock:
        for name, default in (("request_log", []), ("unavailable_until", 0.0), ("cluster_name", "sandbox"),
                              ("cluster_uuid", hashlib.sha1(str(id(state)).encode()).hexdigest()[:22]),
                              ("internal_errors", [])):
            if not hasattr(state, name):
                setattr(state, name, default)
        if not hasattr(state, "changed"):
            # Handlers that wait (wait_for_completion, health waits) use this to release
            # state.lock while they sleep; Condition.wait releases every RLock level.
            state.changed = threading.Condition(state.lock)


def info_body(state: Any) -> Dict[str, Any]:
    ver = state.es_version
    vt = version_tuple(ver)
    facts = dict(_VERSION_FACTS.get(vt[0], _VERSION_FACTS[8]))
    if vt[:2] == (9, 0):
        facts["minimum_wire_compatibility_version"] = "8.18.0"  # 9.0 talks to 8.18, 9.1+ to 8.19
    name = "sandbox-es"
    engine = state.engine
    nodes = getattr(engine, "nodes", None) if engine is not None else None
    master = getattr(engine, "master_id", None) if engine is not None else None
    if nodes and master in nodes:
        name = getattr(nodes[master], "name", name)
    return {
        "name": name,
        "cluster_name": state.cluster_name,
        "cluster_uuid": state.cluster_uuid,
        "version": {
            "number": ver,
            "build_flavor": "default",
            "build_type": "docker",
            "build_hash": hashlib.sha1(ver.encode()).hexdigest(),
            "build_date": "2024-01-01T00:00:00.000000000Z",
            "build_snapshot": False,
            "lucene_version": facts["lucene_version"],
            "minimum_wire_compatibility_version": facts["minimum_wire_compatibility_version"],
            "minimum_index_compatibility_version": facts["minimum_index_compatibility_version"],
        },
        "tagline": "You Know, for Search",
    }


def _info_handler(state: Any, req: Request) -> Response:
    return Response(200, info_body(state))


def _ping_handler(state: Any, req: Request) -> Response:
    return Response(200, "")


# --- media types ------------------------------------------------------------------

def _parse_media_type(value: str) -> Tuple[str, Dict[str, str]]:
    pieces = [p.strip() for p in value.split(";")]
    params = {}
    for p in pieces[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            params[k.strip().lower()] = v.strip()
    return pieces[0].lower(), params


def _compat_version(value: Optional[str]) -> Optional[int]:
    if not value:
        return None
    # Accept may list several types; Elasticsearch reads the first.
    _, params = _parse_media_type(value.split(",")[0])
    if "compatible-with" not in params:
        return None
    try:
        return int(params["compatible-with"])
    except ValueError:
        raise ESError(400, "media_type_header_exception", "Invalid media-type value on headers [Accept, Content-Type]")


def check_compatibility(current: int, accept: Optional[str], content_type: Optional[str],
                        has_body: bool) -> Optional[int]:
    """Elasticsearch's RestCompatibleVersionHelper: a version accepts its own major and the previous one.

    Returns the requested compatible version (None when none was asked for).
    """
    previous = current - 1
    a = _compat_version(accept)
    c = _compat_version(content_type) if has_body else None
    a_v = current if a is None else a
    c_v = current if c is None else c

    def fail(reason: str) -> ESError:
        return ESError(400, "media_type_header_exception", "Invalid media-type value on headers [Accept, Content-Type]",
                       caused_by={"type": "status_exception", "reason": reason})

    if a_v > current or a_v < previous:
        raise fail("Accept version must be either version %d or %d, but found %d. Accept=%s"
                   % (current, previous, a_v, accept))
    if has_body:
        if c_v > current or c_v < previous:
            raise fail("Content-Type version must be either version %d or %d, but found %d. Content-Type=%s"
                       % (current, previous, c_v, content_type))
        if c_v != a_v:
            raise fail("A compatible version is required on both Content-Type and Accept headers if either one has "
                       "requested a compatible version and the compatible versions must match. "
                       "Accept=%s, Content-Type=%s"
                       % (accept, content_type))
        if (c is None) != (a is None):
            raise fail("A compatible version is required on both Content-Type and Accept headers if either one has "
                       "requested a compatible version. Accept=%s, Content-Type=%s" % (accept, content_type))
    return a


# --- auth ------------------------------------------------------------------------

def _auth_error(state: Any, reason: str) -> ESError:
    challenges = ['Basic realm="security", charset="UTF-8"', "ApiKey"]
    if major(state) >= 8:
        challenges.insert(1, 'Bearer realm="security"')
    return ESError(401, "security_exception", reason, headers={"WWW-Authenticate": challenges},
                   header={"WWW-Authenticate": challenges})


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def check_auth(state: Any, auth: Optional[Dict[str, Any]], header: Optional[str], uri: str) -> None:
    if not auth:
        return
    if not header:
        raise _auth_error(state, "missing authentication credentials for REST request [%s]" % uri)
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except Exception:
        decoded = None
    if scheme == "basic" and "basic" in auth:
        user, _, password = (decoded or "").partition(":")
        want = auth["basic"]
        if decoded is not None and _same(user, want["user"]) and _same(password, want["password"]):
            return
        raise _auth_error(state, "unable to authenticate user [%s] for REST request [%s]" % (user, uri))
    if scheme == "apikey" and "api_key" in auth:
        if decoded is not None and _same(decoded, auth["api_key"]):
            return
        raise _auth_error(state, "unable to authenticate with provided credentials and anonymous access is not "
                                 "allowed for this request")
    raise _auth_error(state, "unable to authenticate with provided credentials and anonymous access is not "
                             "allowed for this request")


# --- filter_path -------------------------------------------------------------------

_MISSING = object()


def _filter(obj: Any, pats: List[Tuple[str, ...]]) -> Any:
    if any(not p for p in pats):
        return obj
    if isinstance(obj, list):
        items = [r for r in (_filter(i, pats) for i in obj) if r is not _MISSING]
        return items if items else _MISSING
    if not isinstance(obj, dict):
        return _MISSING
    out = {}
    for key, val in obj.items():
        sub: List[Tuple[str, ...]] = []
        for p in pats:
            if p[0] == "**":
                sub.append(p)
                rest = p[1:]
                if not rest:
                    sub.append(())
                elif fnmatch.fnmatchcase(key, rest[0]):
                    sub.append(rest[1:])
            elif fnmatch.fnmatchcase(key, p[0]):
                sub.append(p[1:])
        if sub:
            r = _filter(val, sub)
            if r is not _MISSING:
                out[key] = r
    return out if out else _MISSING


def apply_filter_path(body: Any, filter_path: str) -> Any:
    pats = [tuple(p.strip().split(".")) for p in filter_path.split(",") if p.strip() and not p.strip().startswith("-")]
    if not pats or not isinstance(body, (dict, list)):
        return body
    r = _filter(body, pats)
    return {} if r is _MISSING else r


# --- the request handler --------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox-es"
    sys_version = ""

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the request log is in state
        LOG.debug(fmt, *args)

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.settimeout(10)
            self.connection.do_handshake()
            self.connection.settimeout(None)

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
            pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_OPTIONS(self) -> None:
        self._serve("OPTIONS")

    def _read_body(self) -> bytes:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True  # the body's end is unknown: this connection is done
            raise ESError(400, "illegal_argument_exception", "invalid Content-Length [%s]"
                          % self.headers.get("Content-Length"))
        if length:
            raw = self.rfile.read(length)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline().split(b";")[0].strip()
                try:
                    size = int(line or b"0", 16)
                except ValueError:
                    self.close_connection = True
                    raise ESError(400, "illegal_argument_exception", "invalid chunk size in request body")
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(chunks)
        else:
            raw = b""
        if raw and self.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as e:
                raise ESError(400, "parse_exception", "request body is not valid gzip: %s" % e)
        return raw

    def _serve(self, method: str) -> None:
        srv: "SandboxHTTPServer" = self.server  # type: ignore[assignment]
        state = srv.state
        uri = self.path
        parsed = urllib.parse.urlsplit(uri)
        path = parsed.path or "/"
        accept = self.headers.get("Accept")
        compat: Optional[int] = None
        try:
            raw = self._read_body()
            resp = self._dispatch(state, method, uri, path, parsed.query, raw, accept)
            compat = getattr(resp, "_compat", None)
            payload, ctype = _encode(resp.body, compat)
        except ESError as e:
            resp = Response(e.status, e.body(), {k: v for k, v in e.headers.items()})
            try:
                payload, ctype = _encode(resp.body, None)
            except Exception as e2:  # noqa: BLE001 - an error raised with a non-JSON detail
                resp, payload, ctype = self._internal_error(state, method, uri, e2)
        except Exception as e:  # noqa: BLE001 - a handler bug: an ES-shaped 500, the trace only in the log
            resp, payload, ctype = self._internal_error(state, method, uri, e)
        with state.lock:
            state.request_count += 1
            log = state.request_log
            log.append((method, path, resp.status))
            if len(log) > REQUEST_LOG_MAX:
                del log[: len(log) - REQUEST_LOG_MAX]
        self._send(state, method, resp, payload, ctype)

    @staticmethod
    def _internal_error(state: Any, method: str, uri: str, exc: BaseException) -> Tuple[Response, bytes, str]:
        line = "%s: %s" % (type(exc).__name__, exc)
        LOG.error("sandbox handler failed for %s %s\n%s", method, uri, traceback.format_exc())
        with state.lock:
            errors = getattr(state, "internal_errors", None)
            if errors is not None:
                errors.append("%s %s: %s" % (method, uri, line))
        resp = Response(500, ESError(500, "exception", "sandbox internal error: %s" % line).body())
        payload, ctype = _encode(resp.body, None)
        return resp, payload, ctype

    def _dispatch(self, state: Any, method: str, uri: str, path: str, query: str, raw: bytes,
                  accept: Optional[str]) -> Response:
        srv: "SandboxHTTPServer" = self.server  # type: ignore[assignment]
        check_auth(state, srv.auth, self.headers.get("Authorization"), path)
        with state.lock:
            until = getattr(state, "unavailable_until", 0) or 0
            if until > state.now():
                err = getattr(state, "unavailable_error", None) or ESError(503, "master_not_discovered_exception", None)
                raise err
        content_type = self.headers.get("Content-Type")
        if raw:
            mt = _parse_media_type(content_type or "")[0]
            if mt not in _BODY_TYPES:
                return Response(406, {"error": "Content-Type header [%s] is not supported" % (content_type or ""),
                                      "status": 406})
        compat = check_compatibility(major(state), accept, content_type, bool(raw))
        params: Dict[str, str] = {}
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            params[k] = v
        segs = [urllib.parse.unquote(s) for s in path.split("/") if s]
        r = router()
        route, parts, allowed = r.resolve(method, segs)
        if route is None:
            if method == "OPTIONS" and allowed:
                return Response(200, "", {"Allow": ",".join(sorted(allowed, key=_METHOD_ORDER.index))})
            with state.lock:
                state.unknown_requests.append("%s %s" % (method, path))
            if allowed:
                methods = sorted(allowed, key=_METHOD_ORDER.index)
                return Response(405, {"error": "Incorrect HTTP method for uri [%s] and method [%s], allowed: [%s]"
                                      % (uri, method, ", ".join(methods)), "status": 405},
                                {"Allow": ",".join(methods)})
            return Response(400, {"error": "no handler found for uri [%s] and method [%s]" % (uri, method)})
        # A known API nobody implements is a gap: answer as for an unknown one, and count it.
        handler = state.handlers.get(route.api)
        if handler is None:
            if route.api == "info":
                handler = _info_handler
            elif route.api == "ping":
                handler = _ping_handler
        if handler is None:
            with state.lock:
                state.unknown_requests.append("%s %s" % (method, path))
            return Response(400, {"error": "no handler found for uri [%s] and method [%s]" % (uri, method)})
        unknown = r.unknown_params(route, params)
        if unknown:
            if len(unknown) == 1:
                reason = "request [%s] contains unrecognized parameter: [%s]" % (path, unknown[0])
            else:
                reason = "request [%s] contains unrecognized parameters: %s" % (
                    path, ", ".join("[%s]" % u for u in unknown))
            raise ESError(400, "illegal_argument_exception", reason)
        if not raw and "source" in params:
            raw = params["source"].encode("utf-8")
        body = self._parse_body(route.api, raw)
        if body is None and route.body_required:
            raise ESError(400, "parse_exception", "request body is required")
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(method=method, path=path, api=route.api, parts=parts, params=params, body=body, headers=headers)
        with state.lock:
            resp = handler(state, req)
        if "filter_path" in params and isinstance(resp.body, (dict, list)) and resp.status < 300:
            resp.body = apply_filter_path(resp.body, params["filter_path"])
        resp._compat = compat  # type: ignore[attr-defined]
        return resp

    @staticmethod
    def _parse_body(api: str, raw: bytes) -> Any:
        if not raw:
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ESError(400, "x_content_parse_exception", "[1:1] Invalid UTF-8 in request body: %s" % e)
        if api in ("bulk",):
            if not text.endswith("\n"):
                raise ESError(400, "illegal_argument_exception",
                              "The bulk request must be terminated by a newline [\\n]")
            lines = []
            for n, line in enumerate(text.split("\n")[:-1], 1):
                if not line.strip():
                    continue
                try:
                    lines.append(json.loads(line))
                except ValueError as e:
                    raise ESError(400, "x_content_parse_exception",
                                  "[%d:1] Unexpected token in line %d: %s" % (n, n, e))
            return lines
        try:
            body = json.loads(text)
        except ValueError as e:
            raise ESError(400, "x_content_parse_exception", "[1:1] Failed to parse request body: %s" % e)
        if not isinstance(body, dict):
            # Every non-bulk body is an object to Elasticsearch's parsers: the search source
            # parser says so with a parsing_exception, the ObjectParser-based ones otherwise.
            token = ("START_ARRAY" if isinstance(body, list) else "VALUE_STRING" if isinstance(body, str) else
                     "VALUE_NULL" if body is None else "VALUE_BOOLEAN" if isinstance(body, bool) else "VALUE_NUMBER")
            if api in ("search", "count", "delete_by_query"):
                raise ESError(400, "parsing_exception", "Expected [START_OBJECT] but found [%s]" % token,
                              line=1, col=1)
            raise ESError(400, "x_content_parse_exception", "[1:1] Unexpected token [%s], expected [START_OBJECT]"
                          % token)
        return body

    def _send(self, state: Any, method: str, resp: Response, payload: bytes, ctype: str) -> None:
        headers = dict(resp.headers)
        self.send_response(resp.status)
        opaque = self.headers.get("X-Opaque-Id")
        if opaque:
            headers.setdefault("X-Opaque-Id", opaque)  # ES echoes it for request tracing
        if resp.status not in (401, 403) and version_tuple(state.es_version)[:2] >= (7, 14):
            # 7.14+ sends the product header (clients refuse a server without it on a
            # success), except on 401/403 answered by the security layer.
            self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        for k, v in headers.items():
            for item in (v if isinstance(v, list) else [v]):
                self.send_header(k, item)
        # Headers and body in one write: split, the client's delayed ACK holds the body
        # ~40 ms on every keep-alive request (Nagle).
        buffered = getattr(self, "_headers_buffer", None)
        if buffered is None:  # HTTP/0.9 request: no headers are sent at all
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(payload)
            return
        buffered.append(b"\r\n")
        if method != "HEAD":
            buffered.append(payload)
        self.flush_headers()


def _encode(body: Any, compat: Optional[int]) -> Tuple[bytes, str]:
    """The response bytes and content type; raises on a body that is not strict JSON."""
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=UTF-8"
    # allow_nan=False: NaN/Infinity are not JSON and clients choke on them.
    payload = json.dumps(body, allow_nan=False).encode("utf-8")
    ctype = ("application/vnd.elasticsearch+json;compatible-with=%d" % compat) if compat else "application/json"
    return payload, ctype


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: Tuple[str, int], state: Any, ssl_context: Optional[ssl.SSLContext],
                 auth: Optional[Dict[str, Any]]) -> None:
        self.state = state
        self.ssl_context = ssl_context
        self.auth = auth
        super().__init__(addr, _Handler)

    def get_request(self):  # type: ignore[override]
        sock, addr = super().get_request()
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small request/response pairs: no Nagle wait
        except OSError:
            pass
        if self.ssl_context is not None:
            # Handshake in the request thread (setup), not in the accept loop.
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr


def start_server(state: Any, host: str = "127.0.0.1", port: int = 0, tls: Optional[Dict[str, str]] = None,
                 auth: Optional[Dict[str, Any]] = None) -> Tuple[SandboxHTTPServer, str]:
    """Serve the Elasticsearch API for ``state`` in a daemon thread; returns (server, url).

    tls: {"certfile", "keyfile"} for HTTPS (see tls.make_ca_and_cert).
    auth: {"basic": {"user", "password"}} and/or {"api_key": "<id>:<key>"}.
    Stop with ``server.shutdown(); server.server_close()``.
    """
    ensure_state(state)
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls["certfile"], tls["keyfile"])
    server = SandboxHTTPServer((host, port), state, ctx, auth)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-es-api",
                              daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    url = "%s://%s:%d" % (scheme, host, server.server_address[1])
    return server, url
