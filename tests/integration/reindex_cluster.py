"""The cluster a reindex test runs against: an ES URL, a client, and the few helpers the tests need.

By default the sandbox (sandbox/scenarios/reindex.yml: 3 data nodes, real shard allocation,
replicas, disk, tasks). With ``REINDEX_TEST_ES_URL`` set (and optionally ``REINDEX_TEST_ES_USERNAME``
/ ``REINDEX_TEST_ES_PASSWORD`` / ``REINDEX_TEST_ES_CA_FILE``) the same tests run against that cluster
(Elasticsearch 7.17+ / OpenSearch, several data nodes); tests that need the sandbox's fault
injection or its internals are skipped there (``need_sandbox``).
"""
import http.server
import os
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from tests.sandbox_plugin import start_in_process

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Cluster:
    def __init__(self):
        self.sb = None
        url = os.environ.get("REINDEX_TEST_ES_URL")
        if url:
            self.url = url
            self.es = EsClient([url], username=os.environ.get("REINDEX_TEST_ES_USERNAME"),
                               password=os.environ.get("REINDEX_TEST_ES_PASSWORD"),
                               ca_file=os.environ.get("REINDEX_TEST_ES_CA_FILE"), max_retries=0)
            return
        self.sb = start_in_process("reindex.yml")
        self.url = self.sb.es_url
        self.es = EsClient([self.url], max_retries=0)

    @property
    def state(self):
        return self.sb.state if self.sb else None

    def need_sandbox(self, why):
        if self.sb is None:
            pytest.skip("needs the sandbox: " + why)

    def reset(self):
        """Remove what a test made: indices, index templates of the tests, stored task results."""
        self.wait_master()
        names = [r["index"] for r in self.es.get("/_cat/indices", params={"format": "json", "h": "index",
                                                                         "expand_wildcards": "all"})
                 if not r["index"].startswith(".")]
        for name in names:
            # Elasticsearch refuses to delete an index under a read_only block (a test may leave one);
            # OpenSearch lifts such a block only by an update of that one setting
            for block in ("index.blocks.read_only", "index.blocks.read_only_allow_delete", "index.blocks.metadata"):
                self.es.call("PUT", "/%s/_settings" % name, body={block: None}, allow=(404,))
            self.es.call("DELETE", "/" + name, allow=(404,))
        body = self.es.get("/_index_template")
        for t in body.get("index_templates") or []:
            if t["name"].startswith(("logstash", "logstack-reindex-", "test-")):
                self.es.call("DELETE", "/_index_template/" + t["name"], allow=(404,))
        status, legacy = self.es.call("GET", "/_template", allow=(400, 404, 405))
        for name in (legacy or {}) if status == 200 else []:
            if name.startswith(("logstash", "test-")):
                self.es.call("DELETE", "/_template/" + name, allow=(404,))
        self.es.put("/_cluster/settings", {"persistent": {"cluster.routing.allocation.disk.watermark.low": None,
                                                          "cluster.routing.allocation.disk.watermark.high": None,
                                                          "cluster.routing.allocation.disk.watermark.flood_stage":
                                                              None}})
        if self.sb is not None:
            with self.state.lock:
                docs = self.state.documents
                docs.tasks.clear()
                docs.acked.clear()
                docs.acked_synthetic.clear()
                docs.reindex_rate = 20000.0
                self._log_start = self.state.request_count
                del self.state.unknown_requests[:]

    def requests(self):
        """(method, path without query, status) of the requests since this test began (sandbox)."""
        self.need_sandbox("the request log")
        with self.state.lock:
            new = self.state.request_count - self._log_start
            log = list(self.state.request_log[-new:]) if new > 0 else []
        return [(m, p.split("?")[0], st) for m, p, st in log]

    def docs_lost(self):
        self.need_sandbox("the audit's docs_lost")
        return self.sb.audit()["docs_lost"]

    def tasks(self):
        self.need_sandbox("the sandbox's task objects")
        return list(self.state.documents.tasks.values())

    def set_reindex_rate(self, rate):
        self.need_sandbox("a slow reindex task")
        self.state.documents.reindex_rate = rate

    def set_recovery_rate(self, bytes_per_second):
        """The simulated recoveries' rate (the scenario's recovery_bytes_per_second); returns the old one."""
        self.need_sandbox("recoveries slowed at a chosen moment")
        with self.state.lock:
            old, self.sb.cluster.scenario.recovery_bytes_per_second = \
                self.sb.cluster.scenario.recovery_bytes_per_second, bytes_per_second
        return old

    def crash_node_holding(self, index, primary=True):
        """Crash (the ES process of) the data node holding a copy of ``index``; returns its name."""
        self.need_sandbox("fault injection")
        c = self.sb.cluster
        with self.state.lock:
            for copies in c.shards.get(index, []):
                for cp in copies:
                    if cp.primary == primary and cp.node_id and cp.state in ("STARTED", "RELOCATING",
                                                                             "INITIALIZING"):
                        node = c.nodes[cp.node_id]
                        c.instances[node.instance_id].crashed = True
                        return node.name
        raise AssertionError("no %s copy of %s is placed" % ("primary" if primary else "replica", index))

    def wait_master(self, timeout=120):
        """Until a master answers: an earlier test may have crashed one, and on a loaded machine the
        election that follows can outlast the first request of the next test (503 master_not_discovered)."""
        self._wait_health({}, timeout, "no master was elected within %ss" % timeout)

    def wait_nodes(self, count, timeout=30):
        """Until ``count`` nodes are in and a master is elected (a crashed master costs an election)."""
        self._wait_health({"wait_for_nodes": str(count)}, timeout, "the cluster did not settle at %d nodes" % count)

    def _wait_health(self, params, timeout, failure):
        """Until GET _cluster/health with params answers 200 (503: no master yet; 408: not there yet)."""
        import time
        deadline = time.monotonic() + timeout
        while True:
            status, _ = self.es.call("GET", "/_cluster/health", params=dict(params, timeout="1s"), allow=(408, 503))
            if status == 200:
                return
            if time.monotonic() > deadline:
                raise AssertionError(failure)
            time.sleep(0.2)

    def close(self):
        if self.sb is not None:
            self.sb.stop()


class HoldingProxy:
    """Forwards requests to a server until one matches; then holds it, so the test can SIGKILL
    the playbook with that request done (after=True) or not yet sent (after=False). With
    ``drop=True`` the held request's connection is closed at once, unanswered (a load balancer's
    timeout). ``seen``: (method, path) of every request."""

    def __init__(self, upstream, match, after, drop=False):
        self.hit = threading.Event()
        self.release = threading.Event()
        self.seen = []
        if drop:
            self.release.set()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                proxy.seen.append((self.command, self.path.split("?")[0]))
                held = not proxy.hit.is_set() and match(self.command, self.path, body)
                if held and not after:
                    proxy.hit.set()
                    proxy.release.wait(60)
                    return
                req = urllib.request.Request(upstream + self.path, data=body, method=self.command,
                                             headers={"Content-Type": self.headers.get("Content-Type",
                                                                                      "application/json")})
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        status, data = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, data = exc.code, exc.read()
                if held:
                    proxy.hit.set()
                    proxy.release.wait(60)
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def playbook(url, *extra, inventory="inventories/sandbox", popen=False):
    """playbooks/reindex-es.yml as an operator runs it (inventories/sandbox takes ES_URL from the environment)."""
    env = dict(os.environ, ES_URL=url, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    for key in ("ES_USERNAME", "ES_PASSWORD", "ES_API_KEY", "ES_CA_FILE"):
        env.pop(key, None)
    cmd = ["ansible-playbook", "playbooks/reindex-es.yml", "-i", inventory,
           "-e", "reindex_probe_seconds=0.3", "-e", "reindex_poll_interval=0.05"] + list(extra)
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
