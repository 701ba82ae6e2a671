"""Record what the collection sends and what a cluster answers, per API, for the conformance test.

    python -m sandbox.real.record --scenario sandbox/scenarios/real-es7.yml --out tests/fixtures/recordings/elasticsearch-7.17.json
    python -m sandbox.real.record --all     # every real distribution into tests/fixtures/recordings/

The same sequence runs on any scenario, simulated or real: cluster-info.yml, upgrade-es.yml in
check mode, upgrade-es.yml (drain), then reindex-es.yml (copy_back, then swap) of two idle indices
whose template changed. ``tests/sandbox/test_conformance_real.py`` runs it on the simulator and
compares with the committed recordings of the real cluster.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any, Dict, List

from ..recording import Recorder
from ..runtime import create
from ..scenario import load
from .proxy import Front

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECORDINGS = os.path.join(ROOT, "tests", "fixtures", "recordings")
REAL = {"real-es7.yml": "elasticsearch-7.17.json", "real-opensearch.yml": "opensearch-3.9.json"}
TIMEOUTS = "@sandbox/real/timeouts.yml"


def _es(url: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read() or b"null")


def seed_reindex(url: str) -> None:
    """Two idle indices whose template has changed since: what reindex-es.yml is for."""
    def template(kind: str) -> None:
        _es(url, "PUT", "/_index_template/legacy", {"index_patterns": ["legacy-*"], "template": {
            "settings": {"number_of_shards": 1}, "mappings": {"properties": {"Status": {"type": kind}}}}})
    template("keyword")
    for name in ("legacy-2024.01.01", "legacy-2024.01.02"):
        _es(url, "PUT", "/" + name, {"settings": {"number_of_replicas": 1}, "aliases": {"legacy": {}}})
        lines = []
        for i in range(200):
            lines.append(json.dumps({"index": {"_index": name, "_id": str(i)}}))
            lines.append(json.dumps({"Status": str(200 + i % 5 * 100)}))
        req = urllib.request.Request(url + "/_bulk?refresh=true", data=("\n".join(lines) + "\n").encode(),
                                     method="POST", headers={"Content-Type": "application/x-ndjson"})
        urllib.request.urlopen(req, timeout=60).read()
    template("integer")


def playbooks(real: bool) -> List[List[str]]:
    t = ["-e", TIMEOUTS] if real else []
    return [
        ["playbooks/cluster-info.yml"],
        ["playbooks/upgrade-es.yml", "--check"] + t,
        ["playbooks/upgrade-es.yml", "-e", "upgrade_strategy=drain"] + t,
        ["playbooks/reindex-es.yml", "-e", '{"reindex_indices": ["legacy-2024.01.01"]}', "-e", "reindex_mode=copy_back"],
        ["playbooks/reindex-es.yml", "-e", '{"reindex_indices": ["legacy-2024.01.02"]}', "-e", "reindex_mode=swap"],
    ]


def record(scenario_path: str, log=print) -> Dict[str, Any]:
    """Run the sequence on the scenario behind a recording front; the recording and each run's status."""
    sc = load(scenario_path)
    sb = create(sc).start()
    recorder = Recorder()
    upstream = sb.es_url.split("://", 1)[1]
    front = Front(lambda: [upstream])
    front.recorder = recorder
    url = front.start()
    runs = []
    try:
        env = dict(os.environ, **sb.env())
        env.update(ES_URL=url, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        bin_dir = os.path.dirname(sys.executable)
        for args in playbooks(sc.engine == "real"):
            if args[0] == "playbooks/reindex-es.yml" and "copy_back" in args[-1]:
                seed_reindex(sb.es_url)
            start = time.monotonic()
            proc = subprocess.run([os.path.join(bin_dir, "ansible-playbook"), args[0], "-i", "inventories/sandbox"]
                                  + args[1:], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
            runs.append({"args": args, "rc": proc.returncode, "seconds": round(time.monotonic() - start, 1)})
            log(f"{' '.join(args)}: rc={proc.returncode} in {runs[-1]['seconds']}s")
            if proc.returncode != 0:
                log(proc.stdout[-3000:])
        audit = sb.audit()
    finally:
        front.stop()
        sb.stop()
    versions = sorted(set(sc.amis.values()))
    meta = {"scenario": os.path.basename(scenario_path), "engine": sc.engine,
            "distribution": sc.real.distribution if sc.real else "elasticsearch (simulated)",
            "versions": versions if sc.real else [sc.es_version], "runs": runs,
            "recorded": time.strftime("%Y-%m-%d", time.gmtime()),
            "audit": {k: audit.get(k) for k in ("docs_lost", "red_seconds", "max_nodes_out", "nodes_replaced",
                                                 "outdated_nodes_left", "versions_before", "versions_after")}}
    return {"meta": meta, "recorder": recorder}


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.real.record", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario")
    parser.add_argument("--out")
    parser.add_argument("--all", action="store_true", help="every real distribution into tests/fixtures/recordings/")
    args = parser.parse_args(argv)
    jobs = [(os.path.join(ROOT, "sandbox", "scenarios", s), os.path.join(RECORDINGS, f)) for s, f in REAL.items()] \
        if args.all else [(args.scenario, args.out)]
    if not all(s and o for s, o in jobs):
        parser.error("give --scenario and --out, or --all")
    os.makedirs(RECORDINGS, exist_ok=True)
    failed = 0
    for scenario_path, out in jobs:
        result = record(scenario_path)
        result["recorder"].save(out, result["meta"])
        failed += sum(1 for r in result["meta"]["runs"] if r["rc"] != 0)
        print(f"wrote {out}: {len(result['recorder'].apis)} APIs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
