"""Cheap polling at scale: bytes and requests per poll and the planner's CPU time (issue 15 item 11).

A sandbox cluster of 3 masters + 30 data nodes, 5,000 indices (2 primaries, 1 replica: 20,000
shard copies), each index with a mapping of 50 fields, started in its own process (`python -m
sandbox up`) so that the CPU time measured here is the client's only. One poll is the rollout's
``Cluster.view()``; "before" sends the same requests without what makes them cheap (no
``filter_path`` on ``_nodes`` and ``_cluster/state/master_node,metadata``, no ``h=`` on
``_cat/shards``), "after" as the code sends them. Bytes are the answers' JSON sizes.

  poll_kb       bytes per poll / 1024
  requests      requests per poll
  poll_cpu_s    client CPU seconds of one poll (parsing the answers, building the View)
  plan_cpu_s    client CPU seconds of the planner's preflight (World, candidates, placement)

Environment: BENCH_POLL_INDICES (default 5000), BENCH_POLL_DATA_NODES (default 30).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")


def _importable():
    link = os.path.join(COLLECTIONS, "ansible_collections", "logstack", "elk")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("../../..", link)
    for path in (COLLECTIONS, ROOT):
        if path not in sys.path:
            sys.path.insert(0, path)


def scenario(indices, data_nodes):
    return {"name": "poll-bench", "cluster_name": "poll-bench", "es": {"version": "8.15.0"},
            "amis": {"es-8.14": {"es_version": "8.14.3"}, "es-8.15": {"es_version": "8.15.0"}},
            "groups": [{"name": "es-master", "role": "master", "size": 3, "ami": "es-8.14"},
                       {"name": "es-data", "role": "data", "size": data_nodes, "ami": "es-8.14"}],
            "roll_to": {"ami": "es-8.15"},
            "timing": {"boot_to_join_seconds": 0.5, "recovery_bytes_per_second": "50MB", "no_master_seconds": 1,
                       "delayed_timeout": "0s"},
            "indices": [{"name": "logs-%05d" % i, "primaries": 2, "replicas": 1, "docs": 10, "size": "1MB"}
                        for i in range(indices)]}


class Meter:
    """Wraps EsClient.call: counts requests and answer bytes; strip=True sends them as before."""

    def __init__(self, es, strip):
        self.es, self.strip, self.requests, self.bytes = es, strip, 0, 0
        self.call = es.call
        es.call = self

    def __call__(self, method, path, params=None, **kwargs):
        if self.strip and params:
            params = {k: v for k, v in params.items() if k not in ("filter_path", "h")}
        status, data = self.call(method, path, params=params, **kwargs)
        self.requests += 1
        self.bytes += len(json.dumps(data)) if data is not None else 0
        return status, data


def main():
    _importable()
    from ansible_collections.logstack.elk.plugins.module_utils.aws import Aws
    from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
    from ansible_collections.logstack.elk.plugins.module_utils.rollout import planner
    from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import Cluster

    indices = int(os.environ.get("BENCH_POLL_INDICES", "5000"))
    data_nodes = int(os.environ.get("BENCH_POLL_DATA_NODES", "30"))
    state = tempfile.mkdtemp(prefix="bench-poll-")
    path = os.path.join(state, "scenario.yml")
    with open(path, "w") as handle:
        yaml.safe_dump(scenario(indices, data_nodes), handle)
    subprocess.run([sys.executable, "-m", "sandbox", "up", "--scenario", path, "--state", state], cwd=ROOT,
                   check=True, timeout=1800, stdout=subprocess.DEVNULL)
    try:
        with open(os.path.join(state, "sandbox.json")) as handle:
            env = json.load(handle)["env"]
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        es = EsClient([env["ES_URL"]], max_retries=1, timeout=120)
        fields = {"f%02d" % i: {"type": "keyword"} for i in range(50)}
        es.put("/logs-*/_mapping", body={"properties": fields})
        aws = Aws(region=env["AWS_REGION"], endpoint_url=env["AWS_ENDPOINT_URL"], max_attempts=2)
        opts = planner.Options(asg_names=["es-master", "es-data"])
        print("cluster: 3 masters + %d data nodes, %d indices, %d shard copies"
              % (data_nodes, indices, len(Cluster(es).shards())))
        print("%-7s %10s %9s %11s %11s" % ("", "poll_kb", "requests", "poll_cpu_s", "plan_cpu_s"))
        figures = {}
        for label, strip in (("before", True), ("after", False)):
            client = EsClient([env["ES_URL"]], max_retries=1, timeout=120)
            meter = Meter(client, strip)
            cluster = Cluster(client)
            cluster.view()  # warm: the client's first request reads GET / (version)
            meter.requests = meter.bytes = 0
            cpu = time.process_time()
            cluster.view()
            poll_cpu = time.process_time() - cpu
            poll = (meter.bytes, meter.requests)
            cpu = time.process_time()
            planner.preflight(cluster, aws, opts)
            plan_cpu = time.process_time() - cpu
            figures[label] = poll
            print("%-7s %10.0f %9d %11.2f %11.2f" % (label, poll[0] / 1024.0, poll[1], poll_cpu, plan_cpu))
        print("bytes per poll after/before: %.3f" % (figures["after"][0] / float(figures["before"][0])))
    finally:
        subprocess.run([sys.executable, "-m", "sandbox", "down", "--state", state], cwd=ROOT, timeout=120,
                       capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
