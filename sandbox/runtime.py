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
        try:
            from .es_api import documents  # the other half; absent until it lands
        except ImportError:
            return
        documents.install(self.state)

    def _wait_formed(self) -> None:
        c = self.cluster
        deadline = time.monotonic() + FORM_TIMEOUT
        placed = False
        while time.monotonic() < deadline:
            with self.state.lock:
                if not placed and c.master_id is not None and len(c.nodes) >= c.initial_expected_nodes:
                    bootstrap_place(c)
                    placed = True
                if placed and c.is_green_and_complete():
                    aws.roll_launch_templates(self.world)
                    self.state.audit.begin()
                    c.mark_formed()
                    return
            time.sleep(0.05)
        raise SandboxError(f"the cluster did not form within {FORM_TIMEOUT:.0f}s "
                           f"({len(c.nodes)} of {c.initial_expected_nodes} nodes, status {c.status()})")

    def _start_http(self) -> None:
        try:
            from .es_api import server as es_server
        except ImportError:
            return
        tls = auth = None
        if self.scenario.https or self.scenario.auth != "none":
            tls, auth = _presentation(self)
        self.server, self.es_url = es_server.start_server(self.state, host="127.0.0.1", port=0, tls=tls, auth=auth)

    # ------------------------------------------------------------------ info
    def env(self) -> Dict[str, str]:
        env = {
            "AWS_ENDPOINT_URL": self.world.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": aws.REGION,
            "AWS_REGION": aws.REGION,
        }
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

    def write_audit(self) -> None:
        if self.state_dir:
            with open(os.path.join(self.state_dir, "audit.json"), "w", encoding="utf-8") as fh:
                json.dump(self.audit(), fh)

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        if self.server is not None:
            for attr in ("shutdown", "stop"):
                fn = getattr(self.server, attr, None)
                if fn:
                    try:
                        fn()
                    except Exception:  # a half-started server has nothing to stop
                        pass
                    break
        if self.world is not None:
            self.world.stop()


def bootstrap_place(cluster: Cluster) -> None:
    """Place the scenario's indices as a cluster that has been running for a while:
    every copy STARTED, balanced, no two copies of a shard on one node."""
    from .allocation import data_nodes, filter_decision

    nodes = data_nodes(cluster)
    counts = {n.id: 0 for n in nodes}
    for name, groups in sorted(cluster.shards.items()):
        for copies in groups:
            used: set = set()
            for c in copies:
                if c.state != "UNASSIGNED":
                    used.add(c.node_id)
                    continue
                options = [n for n in nodes if n.id not in used and filter_decision(cluster, c, n)[0] == "YES"]
                if not options:
                    continue
                n = min(options, key=lambda n: (counts[n.id], n.name))
                c.node_id, c.state, c.ever_started = n.id, "STARTED", True
                c.unassigned_reason = None
                counts[n.id] += 1
                used.add(n.id)
    cluster.version += 1


def _presentation(sb: Sandbox):
    """TLS material and credentials for https/auth scenarios (see sandbox/README.md)."""
    from .es_api import server as es_server

    make = getattr(es_server, "make_presentation", None)
    if make is None:
        raise SandboxError("this scenario asks for https or auth, which the HTTP half does not offer yet")
    tls, auth, env, ca_file = make(sb.scenario, sb.state_dir)
    sb.credentials = env
    sb.ca_file = ca_file
    return tls, auth
