"""Start and stop a whole sandbox in this process: moto, the engine, the HTTP API, the audit."""
from __future__ import annotations

import json
import os
import time
from typing import Any, Dict, Optional

from . import aws, cluster_api
from .audit import Audit
from .engine import Cluster, create_index
from .scenario import Scenario
from .state import SandboxState

FORM_TIMEOUT = 30.0


class SandboxError(RuntimeError):
    pass


class Sandbox:
    def __init__(self, scenario: Scenario, state_dir: Optional[str] = None, http: bool = True) -> None:
        self.scenario = scenario
        self.state_dir = state_dir
        self.want_http = http
        self.state = SandboxState()
        self.state.es_version = scenario.es_version
        self.state.unavailable_until = 0.0  # the HTTP server answers 503 until then (fault es_unavailable)
        self.world: Any = None
        self.cluster: Optional[Cluster] = None
        self.server: Any = None
        self.es_url: Optional[str] = None
        self.credentials: Dict[str, str] = {}
        self.ca_file: Optional[str] = None

    # ----------------------------------------------------------------- start
    def start(self) -> "Sandbox":
        sc = self.scenario
        self.world = aws.start(sc)
        try:
            self.cluster = Cluster(self.state, sc, self.world)
            self.state.engine = self.cluster
            self._install_documents()
            cluster_api.install(self.state)
            audit = Audit(self.state, self.cluster)
            audit.state_dir = self.state_dir
            self.state.audit = audit
            with self.state.lock:
                for ix in sc.indices:
                    create_index(self.state, ix.name, ix.primaries, ix.replicas, ix.docs, ix.size_bytes, ix.settings)
            self.cluster.start()
            self._wait_formed()
            if self.want_http:
                self._start_http()
        except Exception:
            self.stop()
            raise
        return self

    def _install_documents(self) -> None:
        from .es_api import documents  # the documents half (indices, documents, reindex, tasks)
        documents.install(self.state)
        from .es_api import resize  # the clone API (sandbox/es_api/resize.py)
        resize.install(self.state)
        self.state.cluster_name = self.scenario.cluster_name
        self.state.cluster_uuid = self.cluster.cluster_uuid

    def _wait_formed(self) -> None:
        c = self.cluster
        deadline = time.monotonic() + FORM_TIMEOUT
        while time.monotonic() < deadline:
            with self.state.lock:
                if c.bootstrapped and c.is_green_and_complete():
                    aws.roll_launch_templates(self.world)
                    self.state.audit.begin()
                    c.mark_formed()
                    # events.jsonl is complete up to "formed" before `up` reports ready (sandbox.json):
                    # a reader never counts a startup event as one of the run's
                    self.state.audit.flush_events()
                    return
            time.sleep(0.02)
        refused = [e["message"] for e in c.events if e["event"] == "join_refused"]
        why = f"; last refusal: {refused[-1]}" if refused else ""
        raise SandboxError(f"the cluster did not form within {FORM_TIMEOUT:.0f}s "
                           f"({len(c.nodes)} of {c.initial_expected_nodes} nodes, status {c.status()}){why}")

    def _start_http(self) -> None:
        try:
            from .es_api import server as es_server
        except ImportError:
            return
        tls, auth = _presentation(self)
        self.server, self.es_url = es_server.start_server(self.state, host="127.0.0.1", port=0, tls=tls, auth=auth)

    # ------------------------------------------------------------------ info
    def env(self) -> Dict[str, str]:
        env = aws.aws_env(self.world, self.scenario)
        if self.es_url:
            env["ES_URL"] = self.es_url
        if self.state_dir:
            env["SANDBOX_STATE"] = self.state_dir
        if self.ca_file:
            env["ES_CA_FILE"] = self.ca_file
        env.update(self.credentials)
        return env

    def audit(self) -> Dict[str, Any]:
        with self.state.lock:
            return self.state.audit.report()

    def write_audit(self, report: Optional[Dict[str, Any]] = None) -> None:
        """Write ``report`` (or the audit now) to audit.json: the file and what is printed must agree."""
        if self.state_dir:
            with open(os.path.join(self.state_dir, "audit.json"), "w", encoding="utf-8") as fh:
                json.dump(self.audit() if report is None else report, fh)

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        if self.server is not None:
            try:
                self.server.shutdown()
                self.server.server_close()
            except Exception:  # a half-started server has nothing to stop
                pass
        if self.world is not None:
            self.world.stop()


def create(scenario: Scenario, state_dir: Optional[str] = None, http: bool = True):
    """The sandbox for the scenario's engine: the simulator, or real nodes (sandbox/real/)."""
    if scenario.engine == "real":
        from .real.runtime import RealSandbox

        return RealSandbox(scenario, state_dir=state_dir, http=http)
    return Sandbox(scenario, state_dir=state_dir, http=http)


def _presentation(sb: Sandbox):
    """TLS material (a CA generated per sandbox) and generated credentials for https/auth scenarios."""
    import base64
    import secrets
    import tempfile

    from .es_api import tls as es_tls

    sc = sb.scenario
    tls = auth = None
    if sc.https:
        directory = os.path.join(sb.state_dir, "tls") if sb.state_dir else tempfile.mkdtemp(prefix="sandbox-tls-")
        paths = es_tls.make_ca_and_cert(directory)
        tls = {"certfile": paths["certfile"], "keyfile": paths["keyfile"]}
        sb.ca_file = paths["ca_cert"]
    if sc.auth == "basic":
        password = secrets.token_urlsafe(12)
        auth = {"basic": {"user": "elastic", "password": password}}
        sb.credentials = {"ES_USERNAME": "elastic", "ES_PASSWORD": password}
    elif sc.auth == "api_key":
        key = f"{secrets.token_hex(10)}:{secrets.token_urlsafe(16)}"
        auth = {"api_key": key}
        # clients send base64("<id>:<key>"), the "encoded" form Elasticsearch hands out
        sb.credentials = {"ES_API_KEY": base64.b64encode(key.encode()).decode()}
    return tls, auth
