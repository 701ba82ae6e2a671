"""Rolling replacement, strategy against strategy, on the demo cluster.

For each strategy (drain, surge, terminate) one `python -m sandbox run` of
playbooks/upgrade-es.yml on a fresh demo cluster; the sandbox's audit gives, in
the same run, the ideal one-at-a-time time (lower_bound_seconds: boot plus data
move of every outdated node), so the figure printed is a ratio, not a time.

  wall/bound   wall_seconds / lower_bound_seconds (1.0 = ideal)
  degraded_s   seconds with a wanted shard copy missing, and without the
               replicas only the node_version decider keeps off older nodes
  moved_GB     shard data copied by recoveries and relocations
  es_requests  requests the run sent to Elasticsearch
  docs_lost    must be 0 for drain and surge. terminate runs with accept_data_loss on
               the demo's 0-replica index to show the cost: that shard is lost, the
               cluster stays red and the run stops there (never proceed on red), so
               its non-zero exit is expected and not a bench failure.

On a real cluster (BENCH_ROLLOUT_SCENARIO=sandbox/scenarios/real-es7.yml or real-opensearch.yml) the
bound comes from the real cluster: the shard bytes on each outdated node at start (_cat/shards), the
recovery limit the scenario sets (indices.recovery.max_bytes_per_sec) and the replacement nodes'
measured JVM-start-to-HTTP time.

Environment: BENCH_ROLLOUT_SCENARIO (default sandbox/scenarios/demo.yml),
BENCH_ROLLOUT_STRATEGIES (default "drain surge terminate"), BENCH_ROLLOUT_AUDIT_DIR (writes
<strategy>.json there: the whole audit).
"""
import json
import os
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_strategy(scenario, strategy):
    with open(scenario) as handle:
        cluster_name = yaml.safe_load(handle)["cluster_name"]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), SANDBOX_CLUSTER_NAME=cluster_name)
    playbook = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "playbooks/upgrade-es.yml",
                "-i", "inventories/sandbox", "-e", "upgrade_strategy=%s" % strategy,
                # one module call per node: the Ansible per-task overhead is not the algorithm's
                "-e", "upgrade_task_per_step=false",
                # the sandbox inventory's timeouts fit demo.yml; a bench measures, whatever the size
                "-e", json.dumps({"upgrade_timeouts": {"gate": 1800, "drain": 3600, "join": 1800, "health": 1800}})]
    if strategy == "terminate":
        # the 0-replica index is lost and the cluster stays red: the run stops at the health timeout
        # (the sandbox inventory's 120 s, not the bench's 30 min)
        playbook += ["-e", "upgrade_accept_data_loss=true",
                     "-e", json.dumps({"upgrade_timeouts": {"gate": 1800, "drain": 3600, "join": 1800, "health": 120}})]
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "sandbox", "run", "--scenario", scenario, "--"] + playbook,
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    lines = [line for line in proc.stdout.strip().splitlines() if line.startswith("{")]
    audit = json.loads(lines[-1]) if lines else {}
    audit["rc"] = proc.returncode
    if os.environ.get("BENCH_ROLLOUT_AUDIT_DIR"):  # the whole audit, to see where time or degradation went
        os.makedirs(os.environ["BENCH_ROLLOUT_AUDIT_DIR"], exist_ok=True)
        with open(os.path.join(os.environ["BENCH_ROLLOUT_AUDIT_DIR"], "%s.json" % strategy), "w") as handle:
            json.dump(audit, handle, indent=1, sort_keys=True)
    audit["elapsed"] = time.monotonic() - start
    if proc.returncode:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        print("  %s: ansible-playbook exited %d:\n%s" % (strategy, proc.returncode, tail), flush=True)
    return audit


def main():
    scenario = os.environ.get("BENCH_ROLLOUT_SCENARIO", os.path.join(ROOT, "sandbox", "scenarios", "demo.yml"))
    strategies = os.environ.get("BENCH_ROLLOUT_STRATEGIES", "drain surge terminate").split()
    rows = []
    for strategy in strategies:
        print("running strategy %s on %s ..." % (strategy, os.path.basename(scenario)), flush=True)
        rows.append((strategy, run_strategy(scenario, strategy)))
    header = ("strategy", "rc", "wall_s", "bound_s", "wall/bound", "degraded_s", "degraded_ex_skew_s",
              "moved_GB", "es_requests", "docs_lost", "max_out", "outdated_left")
    print(" ".join("%-18s" % h if i == 0 else "%12s" % h for i, h in enumerate(header)))
    for strategy, a in rows:
        bound = a.get("lower_bound_seconds") or 0
        wall = a.get("wall_seconds") or 0
        values = (strategy, a["rc"], "%.1f" % wall, "%.1f" % bound, "%.2f" % (wall / bound) if bound else "-",
                  "%.1f" % a.get("degraded_seconds", -1), "%.1f" % a.get("degraded_seconds_excluding_version_skew", -1),
                  "%.3f" % (a.get("shard_bytes_moved", 0) / 1e9), a.get("request_count"), a.get("docs_lost"),
                  a.get("max_nodes_out"), a.get("outdated_nodes_left"))
        print(" ".join("%-18s" % v if i == 0 else "%12s" % v for i, v in enumerate(values)), flush=True)
    failed = [s for s, a in rows if a["rc"] != 0 and s != "terminate"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
