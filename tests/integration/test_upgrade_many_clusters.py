"""Many clusters in one run (issue 16 item 11): two sandbox clusters (each its own moto and
Elasticsearch) as two es_clusters hosts of one inventory. They are upgraded in parallel, each at its
own pace, each with its own lock and report; one cluster's failure stops that cluster only; the job's
result names the cluster that finished and the one that failed, with why.

Each at its own pace, not in lockstep task by task: blue's first drain cannot end (its recovery is
slowed to almost nothing) and gives up after its drain timeout, while green replaces all three of its
nodes in that time. Under the linear strategy green's second node would wait for blue's drain task,
so green would finish after blue's drain gave up."""
import os
import shutil

import yaml
from upgrade_support import ROOT, TASK, playbook

from tests.sandbox_plugin import SCENARIOS, Sandbox

# Longer than green's whole upgrade (three nodes, about a minute; twice that on a loaded machine).
BLUE_DRAIN_TIMEOUT = 180


def inventory(tmp_path, boxes):
    """inventories/sandbox's group_vars with one es_clusters host per sandbox, its connection as host vars."""
    inv = tmp_path / "two-clusters"
    shutil.copytree(os.path.join(ROOT, "inventories", "sandbox", "group_vars"), inv / "group_vars")
    hosts = {}
    for name, sb in boxes.items():
        hosts[name] = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                       "es_url": sb.env["ES_URL"], "aws_endpoint_url": sb.env["AWS_ENDPOINT_URL"],
                       "aws_region": sb.env["AWS_REGION"], "es_cluster_name": sb.cluster_name,
                       "es_ca_file": None, "es_username": None, "es_password": None, "es_api_key": None}
    hosts["blue"]["upgrade_timeouts"] = {"join": 15, "health": 60, "drain": BLUE_DRAIN_TIMEOUT, "gate": 60,
                                         "master": 30, "terminate": 30, "leave": 30}
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"es_clusters": {"hosts": hosts}}}}))
    return str(inv)


def slow_drain_scenario():
    """upgrade-nojoin.yml (3 masters + 3 data nodes) whose recoveries crawl: its first drain never ends."""
    with open(os.path.join(SCENARIOS, "upgrade-nojoin.yml")) as handle:
        spec = yaml.safe_load(handle)
    spec.update(name="blue-slow-drain", cluster_name="blue-slow-drain",
                faults=[{"type": "slow_recovery", "factor": 0.0001}])
    return spec


def test_two_clusters_upgrade_each_at_its_own_pace_and_one_failure_stops_only_its_cluster(tmp_path):
    green = Sandbox("small.yml", tmp_path / "green")
    blue = Sandbox(slow_drain_scenario(), tmp_path / "blue")
    try:
        run = playbook(green, inventory=inventory(tmp_path, {"green": green, "blue": blue}), timeout=900)
        assert run.rc != 0  # one cluster failed: the job fails
        text = " ".join(run.output.split())
        # green finished every node with every invariant; blue stopped in its first drain, nothing lost
        audit = green.audit()
        assert audit["nodes_replaced"] == audit["nodes"] and audit["outdated_nodes_left"] == 0, audit
        assert audit["docs_lost"] == 0
        blue_audit = blue.audit()
        assert blue_audit["docs_lost"] == 0 and blue_audit["nodes_replaced"] == 0, blue_audit
        assert "blue failed: Node " in text and "step drain: gave up after %ds" % BLUE_DRAIN_TIMEOUT in text, \
            text[-3000:]
        # each its own lock (released by green, kept by blue for the rerun) and its own report
        assert [t for g in green.groups() for t in g.get("Tags", []) if t["Key"] == "logstack:rollout-lock"] == []
        assert [t for g in blue.groups() for t in g.get("Tags", []) if t["Key"] == "logstack:rollout-lock"]
        reports = {n.split("-")[1]: os.path.join(run.report_dir, n)
                   for n in os.listdir(run.report_dir) if n.endswith(".json")}
        assert sorted(reports) == ["blue", "green"], reports
        assert "finished: green" in text, text[-3000:]

        # each at its own pace: green replaced all three of its nodes while blue's first drain still waited
        # (the console prints each result as it comes; under a linear strategy green's second node would
        # wait for blue's drain task, and its results would follow blue's failure)
        with open(reports["green"]) as handle:
            assert [n["outcome"] for n in yaml.safe_load(handle)["nodes"]] == ["replaced"] * 3
        with open(reports["blue"]) as handle:
            blue_report = yaml.safe_load(handle)
        first = blue_report["plan"][0]["node_name"]
        assert blue_report["nodes"] == [] and "Node %s " % first in blue_report["failure"]["message"], blue_report
        lines = run.output.splitlines()
        waits = [i for i, line in enumerate(lines) if line.startswith("FAILED - RETRYING: [blue]: Step drain: ")
                 and first in line]
        blue_failed = next(i for i, line in enumerate(lines) if line.startswith("fatal: [blue]"))
        green_done = [i for i, line in enumerate(lines) if line.startswith(("ok: [green]", "changed: [green]"))
                      and lines[i - 1].startswith(TASK + "Record the result | ")]
        assert len(green_done) == 3 and waits, (green_done, waits)
        assert waits[0] < green_done[0] and green_done[-1] < blue_failed, (
            "green's nodes were not all replaced while blue's first drain waited (lines: blue's drain waited "
            "from %d, failed at %d; green's results %s)" % (waits[0], blue_failed, green_done))
    finally:
        green.down()
        blue.down()
