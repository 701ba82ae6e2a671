"""Fixtures for sandbox tests: a whole sandbox (moto + engine + HTTP API) in this process.

Kept generic so both halves' tests can use them. moto's backends are per process, so
one sandbox runs at a time per test process (pytest-xdist workers are processes).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import boto3
import pytest
import yaml

from tests.sandbox.es_http import request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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


def split_with(tmp_path: Any, indices: List[Dict[str, Any]], recovery_bytes_per_second: str) -> str:
    """split.yml (3 masters, 3 data nodes) with other indices and recovery bandwidth; its path."""
    with open(os.path.join(SCENARIOS, "split.yml"), encoding="utf-8") as fh:
        scenario = yaml.safe_load(fh)
    scenario["indices"] = indices
    scenario["timing"]["recovery_bytes_per_second"] = recovery_bytes_per_second
    path = tmp_path / "split-variant.yml"
    path.write_text(yaml.safe_dump(scenario))
    return str(path)


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


@pytest.fixture
def sandbox_factory():
    from sandbox import Sandbox, load

    started = []

    def start(scenario: str = "small.yml", http: bool = True) -> Running:
        path = scenario if os.path.isabs(scenario) else os.path.join(SCENARIOS, scenario)
        sb = Sandbox(load(path), http=http).start()
        started.append(sb)
        return Running(sb)

    yield start
    for sb in started:
        sb.stop()
