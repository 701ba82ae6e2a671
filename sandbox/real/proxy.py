"""ES_URL of a real sandbox: a small HTTP front, as a load balancer before the nodes.

The playbooks get one stable URL while nodes come and go. Each request goes to the node it went
to last if that node still answers, else to the next live one (connection refused or reset: try
another; an answer of any status is passed through unchanged). Every request is logged as
(method, path, status) for the audit, and the fault ``es_unavailable`` is served here as 503.
"""
from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, List, Optional, Tuple

# OpenSearch 2.x sends one TASK_RESOURCE_USAGE header per child task (hundreds for a synchronous _reindex);
# http.client refuses more than 100 (the collection's client raises the limit the same way).
http.client._MAXHEADERS = max(http.client._MAXHEADERS, 10000)  # pylint: disable=protected-access
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class Front:
    def __init__(self, live_nodes: Callable[[], List[str]]) -> None:
        self.live_nodes = live_nodes  # "ip:port" of nodes whose HTTP answered, oldest first
        self.lock = threading.Lock()
        self.sticky: Optional[str] = None
        self.request_log: List[Tuple[str, str, int]] = []
        self.request_count = 0
        self.unknown_requests = 0  # answers that say no such endpoint or method exists
        self.internal_errors = 0   # 500s from a node
        self.unavailable_until = 0.0
        self.recorder: Optional[Callable[..., None]] = None
        self.server: Optional[ThreadingHTTPServer] = None
        self.url = ""

    def start(self) -> str:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: with Nagle on, the body waits for the client's
            # delayed ACK, ~40 ms on every keep-alive request (as in sandbox/es_api/server.py).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                status, headers, data = front.forward(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in HOP_HEADERS and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="real-front", daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _order(self) -> List[str]:
        nodes = self.live_nodes()
        with self.lock:
            sticky = self.sticky
        if sticky in nodes:
            nodes.remove(sticky)
            nodes.insert(0, sticky)
        return nodes

    def forward(self, method: str, path: str, headers: dict, body: Optional[bytes]):
        if time.monotonic() < self.unavailable_until:
            data = b'{"error":{"type":"unavailable","reason":"sandbox fault es_unavailable"},"status":503}'
            return self._log(method, path, 503, [("content-type", "application/json")], data, body)
        fwd = {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS and k.lower() != "host"}
        last_error = "no node is up"
        for target in self._order():
            host, port = target.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=300)
            try:
                conn.request(method, path, body=body, headers=fwd)
                resp = conn.getresponse()
                data = resp.read()
                with self.lock:
                    self.sticky = target
                return self._log(method, path, resp.status, resp.getheaders(), data, body)
            except (ConnectionError, OSError, http.client.HTTPException) as exc:
                last_error = f"{target}: {exc}"
                continue
            finally:
                conn.close()
        data = ('{"error":{"type":"no_node_reachable","reason":"%s"},"status":502}' % last_error.replace('"', "'")).encode()
        return self._log(method, path, 502, [("content-type", "application/json")], data, body)

    def _log(self, method, path, status, headers, data, body):
        with self.lock:
            self.request_count += 1
            if status in (400, 404, 405) and (b"no handler found" in data or b"Incorrect HTTP method" in data):
                self.unknown_requests += 1
            if status == 500:
                self.internal_errors += 1
            self.request_log.append((method, path, status))
            del self.request_log[:-5000]
        if self.recorder is not None:
            self.recorder(method, path, body, status, data)
        return status, headers, data
