"""A sandbox whose Elasticsearch is real: moto + real nodes + the front + the audit.

The same interface as ``sandbox.runtime.Sandbox`` (``start``, ``env``, ``audit``,
``write_audit``, ``stop``, ``es_url``, ``world``), so ``python -m sandbox run|up|env|audit|down``,
the tests and the bench drive either engine alike.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from typing import Any, Dict, Optional

from .. import aws
from .audit import RealAudit
from .cluster import RealCluster, RealClusterError
from .dist import DistError, ensure, launcher_jar
from .proxy import Front


class _State:
    """What the CLI's control endpoint reads (``state.lock``, ``cluster.events``)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()


class RealSandbox:
    def __init__(self, scenario: Any, state_dir: Optional[str] = None, http: bool = True) -> None:
        self.scenario = scenario
        self.state_dir = state_dir
        self.want_http = http
        self.state = _State()
        self.world: Any = None
        self.cluster: Optional[RealCluster] = None
        self.front: Optional[Front] = None
        self.audit_: Optional[RealAudit] = None
        self.es_url: Optional[str] = None
        self._home: Optional[str] = None
        self._own_home = False
        self.timings: Dict[str, float] = {}

    def start(self) -> "RealSandbox":
        from ..runtime import SandboxError

        sc = self.scenario
        t0 = time.monotonic()
        try:
            launcher_jar()
            for version in sorted(set(sc.amis.values())):
                ensure(sc.real.distribution, version)
        except DistError as exc:
            raise SandboxError(str(exc)) from None
        self.timings["resolve_seconds"] = round(time.monotonic() - t0, 2)
        if self.state_dir:
            self._home = os.path.join(self.state_dir, "real")
            shutil.rmtree(self._home, ignore_errors=True)
        else:
            self._home, self._own_home = tempfile.mkdtemp(prefix="sandbox-real-"), True
        self.world = aws.start(sc)
        try:
            self.cluster = RealCluster(sc, self.world, self._home)
            self.front = Front(self.cluster.live_http)
            self.cluster.front = self.front
            t1 = time.monotonic()
            self.cluster.start()
            self.cluster.wait_formed(sc.real.form_timeout)
            self.timings["form_seconds"] = round(time.monotonic() - t1, 2)
            self.cluster.call("PUT", "/_cluster/settings", {"persistent": sc.real.cluster_settings})
            t2 = time.monotonic()
            self.cluster.create_indices()
            self.cluster.wait_green(sc.real.form_timeout)
            self.timings["load_seconds"] = round(time.monotonic() - t2, 2)
            # recoveries from here on run at the scenario's (throttled) rate
            self.cluster.call("PUT", "/_cluster/settings", {"persistent": {
                "indices.recovery.max_bytes_per_sec": f"{int(sc.real.recovery_bytes_per_second)}b"}})
            aws.roll_launch_templates(self.world)
            self.audit_ = RealAudit(self.cluster, self.front)
            self.cluster.mark_formed()
            self.audit_.begin()
            if self.want_http:
                self.es_url = self.front.start()
            self._write_events()
        except RealClusterError as exc:
            self.stop()
            raise SandboxError(str(exc)) from None
        except Exception:
            self.stop()
            raise
        return self

    def env(self) -> Dict[str, str]:
        env = dict(aws.aws_env(self.world, self.scenario), SANDBOX_ENGINE="real")
        if self.es_url:
            env["ES_URL"] = self.es_url
        if self.state_dir:
            env["SANDBOX_STATE"] = self.state_dir
        return env

    def audit(self) -> Dict[str, Any]:
        report = self.audit_.report() if self.audit_ else {}
        report.update({"setup_" + k: v for k, v in self.timings.items()})
        return report

    def write_audit(self, report: Optional[Dict[str, Any]] = None) -> None:
        if self.state_dir:
            with open(os.path.join(self.state_dir, "audit.json"), "w", encoding="utf-8") as fh:
                json.dump(self.audit() if report is None else report, fh)
            self._write_events()

    def _write_events(self) -> None:
        if self.state_dir and self.cluster is not None:
            with open(os.path.join(self.state_dir, "events.jsonl"), "w", encoding="utf-8") as fh:
                for e in list(self.cluster.events):
                    fh.write(json.dumps(e) + "\n")

    def stop(self) -> None:
        if self.audit_ is not None:
            self.audit_.stop()
        if self.front is not None:
            self.front.stop()
        if self.cluster is not None:
            self._write_events()
            self.cluster.stop()
        if self.world is not None:
            self.world.stop()
        if self._own_home and self._home:
            shutil.rmtree(self._home, ignore_errors=True)
