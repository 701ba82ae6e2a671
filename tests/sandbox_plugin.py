"""The sandbox for tests: the one place that starts it, as a pytest plugin (``pytest_plugins`` in
tests/conftest.py registers it for every folder).

Three forms, each a fixture that stops what it started:

* ``sandbox_factory(scenario)``: the whole sandbox (moto, engine, HTTP API) in this process; a
  ``Running`` (raw HTTP client ``es``, boto3 clients, audit). moto keeps its state per process, so
  one at a time per process (pytest-xdist workers are processes).
* ``sandbox_http(version=..., documents=..., engine=..., tls=..., auth=...)``: the HTTP API alone
  (no moto, no engine unless the test passes one); an ``HttpSandbox`` (``url``, ``state``, ``store``).
* ``sandbox_process(scenario)``: ``python -m sandbox up`` in the background, its own ports and state
  folder; a ``Sandbox`` (``env`` for ansible-playbook, ``es()``, ``aws()``, ``audit()``, ``down()``).
  The real-cluster tests (tests/real) use the same class with a real scenario.

Module-scoped fixtures of a test file call ``start_in_process``, ``serve_http`` or ``Sandbox``
directly and stop what they get.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

import boto3
import pytest
import yaml

from tests.sandbox.es_http import request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = os.path.join(ROOT, "sandbox", "scenarios")


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll predicate until it returns something true, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def scenario_path(scenario: str) -> str:
    """A scenario file's path: a name under sandbox/scenarios, or a path as it is."""
    return scenario if os.path.isabs(scenario) else os.path.join(SCENARIOS, scenario)


def split_with(tmp_path: Any, indices: List[Dict[str, Any]], recovery_bytes_per_second: str) -> str:
    """split.yml (3 masters, 3 data nodes) with other indices and recovery bandwidth; its path."""
    with open(os.path.join(SCENARIOS, "split.yml"), encoding="utf-8") as fh:
        scenario = yaml.safe_load(fh)
    scenario["indices"] = indices
    scenario["timing"]["recovery_bytes_per_second"] = recovery_bytes_per_second
    path = tmp_path / "split-variant.yml"
    path.write_text(yaml.safe_dump(scenario))
    return str(path)


def mini_scenario(tmp_path: Any, name: str, groups: List[Dict[str, Any]], indices: List[Dict[str, Any]],
                  delayed_timeout: str = "0s") -> str:
    """A small scenario written for one test, 8.14 AMIs rolled to 8.15, fast timing; its path.
    groups: {name, role or roles, size, ami (es-8.14 | es-8.15), ...}."""
    data = {"name": name, "cluster_name": name, "es": {"version": "8.15.0"},
            "amis": {"es-8.14": {"es_version": "8.14.3"}, "es-8.15": {"es_version": "8.15.0"}},
            "groups": groups, "roll_to": {"ami": "es-8.15"},
            "timing": {"boot_to_join_seconds": 0.5, "recovery_bytes_per_second": "50MB", "no_master_seconds": 1,
                       "delayed_timeout": delayed_timeout},
            "indices": indices}
    path = tmp_path / ("%s.yml" % name)
    path.write_text(yaml.safe_dump(data))
    return str(path)


# -- the whole sandbox in this process -------------------------------------------------------
class ES:
    """Minimal raw HTTP client: exact statuses and bodies are what the tests check."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None, timeout: float = 30) -> Tuple[int, Any]:
        return request(self.url, method, path, body, timeout=timeout)

    def get(self, path: str) -> Any:
        status, body = self.call("GET", path)
        assert status == 200, (path, status, body)
        return body

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, out = self.call(method, path, body)
        assert status == 200, (method, path, status, out)
        return out


class Running:
    def __init__(self, sb: Any) -> None:
        self.sb = sb
        self.es = ES(sb.es_url)
        kw = dict(endpoint_url=sb.world.endpoint, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        self.asg = boto3.client("autoscaling", **kw)
        self.ec2 = boto3.client("ec2", **kw)

    def audit(self) -> Dict[str, Any]:
        return self.sb.audit()

    def shards(self, index: Optional[str] = None) -> list:
        path = "/_cat/shards" + (f"/{index}" if index else "") + "?format=json&h=index,shard,prirep,state,node,ip,docs"
        return self.es.get(path)

    def nodes(self) -> Dict[str, Any]:
        return self.es.get("/_nodes")["nodes"]

    def node_by_name(self, name: str) -> Tuple[str, Dict[str, Any]]:
        return next((nid, n) for nid, n in self.nodes().items() if n["name"] == name)

    def instance_of(self, node_name: str) -> str:
        return self.node_by_name(node_name)[1]["attributes"]["aws_instance_id"]

    def terminate(self, node_name: str, decrement: bool = False) -> str:
        iid = self.instance_of(node_name)
        self.asg.terminate_instance_in_auto_scaling_group(InstanceId=iid, ShouldDecrementDesiredCapacity=decrement)
        return iid

    def master_name(self) -> str:
        return self.es.get("/_cat/master?format=json")[0]["node"]


def start_in_process(scenario: str, http: bool = True) -> Any:
    """sandbox.runtime.Sandbox for a scenario (name or path), started; the caller stops it."""
    from sandbox import Sandbox, load

    return Sandbox(load(scenario_path(scenario)), http=http).start()


@pytest.fixture
def sandbox_factory():
    started = []

    def start(scenario: str = "small.yml", http: bool = True) -> Running:
        sb = start_in_process(scenario, http=http)
        started.append(sb)
        return Running(sb)

    yield start
    for sb in started:
        sb.stop()


# -- the HTTP API alone ----------------------------------------------------------------------
class HttpSandbox:
    """The sandbox's Elasticsearch HTTP API without moto: ``state`` is the shared SandboxState,
    ``store`` the documents half (when installed), ``engine`` what the test passed as one."""

    def __init__(self, version: str = "8.15.0", documents: bool = False, engine: Any = None,
                 reindex_rate: Optional[float] = None, tls: Optional[Dict[str, str]] = None,
                 auth: Optional[Dict[str, Any]] = None) -> None:
        from sandbox.es_api import documents as documents_half
        from sandbox.es_api.server import start_server
        from sandbox.state import SandboxState

        self.state = SandboxState()
        self.state.es_version = version
        self.state.engine = engine
        self.store = None
        if documents:
            kw = {} if reindex_rate is None else {"reindex_rate": reindex_rate}
            self.store = documents_half.install(self.state, **kw)
        self.server, self.url = start_server(self.state, tls=tls, auth=auth)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_http(**kw: Any) -> HttpSandbox:
    """An HttpSandbox (see its arguments); the caller closes it."""
    return HttpSandbox(**kw)


@pytest.fixture
def sandbox_http():
    made: List[HttpSandbox] = []

    def start(**kw: Any) -> HttpSandbox:
        made.append(serve_http(**kw))
        return made[-1]

    yield start
    for srv in made:
        srv.close()


# -- python -m sandbox up, in the background -------------------------------------------------
class Sandbox:
    """``python -m sandbox up`` in the background for one test: a scenario file's name under
    sandbox/scenarios, or a scenario as a dict (written into the state folder)."""

    def __init__(self, scenario: Any, state_dir: Any, timeout: float = 120, attempts: int = 1) -> None:
        self.state = str(state_dir)
        os.makedirs(self.state, exist_ok=True)
        if isinstance(scenario, dict):
            self.scenario = os.path.join(self.state, "scenario.yml")
            with open(self.scenario, "w") as handle:
                yaml.safe_dump(scenario, handle)
        else:
            self.scenario = scenario_path(scenario)
        for attempt in range(attempts):  # a real cluster that did not form on a loaded machine: once more
            up = subprocess.run([sys.executable, "-m", "sandbox", "up", "--scenario", self.scenario,
                                 "--state", self.state], cwd=ROOT, timeout=timeout, capture_output=True, text=True)
            if up.returncode == 0 or "did not form" not in up.stderr or attempt == attempts - 1:
                break
            self.down()
        if up.returncode != 0:
            try:
                with open(os.path.join(self.state, "sandbox.log")) as handle:
                    log = handle.read()[-3000:]
            except OSError:
                log = ""
            raise AssertionError("the sandbox did not start: %s\n%s" % (up.stderr.strip(), log))
        with open(os.path.join(self.state, "sandbox.json")) as handle:
            info = json.load(handle)
        self.env = dict(info["env"])
        with open(self.scenario) as handle:
            self.cluster_name = yaml.safe_load(handle)["cluster_name"]
        # The sandbox inventory finds the groups by this tag value (inventories/sandbox).
        self.env["SANDBOX_CLUSTER_NAME"] = self.cluster_name

    def audit(self) -> Dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "sandbox", "audit", "--state", self.state], cwd=ROOT,
                             check=True, timeout=60, capture_output=True, text=True).stdout
        return json.loads(out.strip().splitlines()[-1])

    def down(self) -> None:
        subprocess.run([sys.executable, "-m", "sandbox", "down", "--state", self.state], cwd=ROOT, timeout=60,
                       capture_output=True)

    def events(self) -> List[Dict[str, Any]]:
        with open(os.path.join(self.state, "events.jsonl")) as handle:
            return [json.loads(line) for line in handle if line.strip()]

    # -- direct reads, to decide when to interrupt and to check the end state ----
    def es(self, path: str, method: str = "GET", body: Any = None) -> Any:
        req = urllib.request.Request(self.env["ES_URL"] + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read() or b"null")

    def aws(self, service: str) -> Any:
        return boto3.client(service, region_name=self.env["AWS_REGION"], endpoint_url=self.env["AWS_ENDPOINT_URL"],
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def groups(self) -> List[Dict[str, Any]]:
        return self.aws("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]

    def exclusions(self) -> Tuple[Any, ...]:
        """(allocation exclusions, node shutdown records, voting exclusions) left in the cluster."""
        return self.allocation_exclusions(), self.es("/_nodes/shutdown").get("nodes", []), self.voting_exclusions()

    def allocation_exclusions(self) -> List[str]:
        settings = self.es("/_cluster/settings?flat_settings=true")
        names = [v for scope in ("persistent", "transient")
                 for k, v in settings.get(scope, {}).items() if k.startswith("cluster.routing.allocation.exclude")]
        return [n for n in names if n]

    def voting_exclusions(self) -> List[Dict[str, str]]:
        state = self.es("/_cluster/state/metadata?filter_path=metadata.cluster_coordination")
        return state["metadata"]["cluster_coordination"]["voting_config_exclusions"]


@pytest.fixture
def sandbox_process(tmp_path):
    """A factory of background sandboxes (scenario name, path or dict), each taken down after the test."""
    boxes: List[Sandbox] = []

    def start(scenario: Any, **kw: Any) -> Sandbox:
        boxes.append(Sandbox(scenario, tmp_path / ("sb%d" % len(boxes)), **kw))
        return boxes[-1]

    yield start
    for sb in boxes:
        sb.down()
