"""Many clusters in one run (issue 16 item 11): two sandbox clusters (each its own moto and
Elasticsearch) as two es_clusters hosts of one inventory. They are upgraded in parallel, each with
its own lock and report; the second's replacement never joins, which stops that cluster only; the
job's result names the cluster that finished and the one that failed, with why."""
import os
import shutil

import yaml
from upgrade_support import ROOT, playbook

from tests.sandbox_plugin import Sandbox


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
    hosts["blue"]["upgrade_timeouts"] = {"join": 15, "health": 60, "drain": 120, "gate": 60, "master": 30,
                                         "terminate": 30, "leave": 30}
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"es_clusters": {"hosts": hosts}}}}))
    return str(inv)


def test_two_clusters_upgrade_in_parallel_and_one_failure_stops_only_its_cluster(tmp_path):
    green = Sandbox("small.yml", tmp_path / "green")
    blue = Sandbox("upgrade-nojoin.yml", tmp_path / "blue")
    try:
        run = playbook(green, inventory=inventory(tmp_path, {"green": green, "blue": blue}), timeout=600)
        assert run.rc != 0  # one cluster failed: the job fails
        text = " ".join(run.output.split())
        # green finished every node with every invariant; blue stopped at its first replacement
        audit = green.audit()
        assert audit["nodes_replaced"] == audit["nodes"] and audit["outdated_nodes_left"] == 0, audit
        assert audit["docs_lost"] == 0
        blue_audit = blue.audit()
        assert blue_audit["docs_lost"] == 0 and blue_audit["outdated_nodes_left"] > 0
        # parallel, each at its own pace: blue's steps began before green's last node was done
        lines = run.output.splitlines()
        first_blue = next(i for i, line in enumerate(lines) if "Step drain: " in line and "[blue]" in "".join(
            lines[i:i + 3]))
        last_green = max(i for i, line in enumerate(lines) if line.startswith("ok: [green]") or
                         line.startswith("changed: [green]"))
        assert first_blue < last_green
        # each its own lock (released by green, kept by blue for the rerun) and its own report
        assert [t for g in green.groups() for t in g.get("Tags", []) if t["Key"] == "logstack:rollout-lock"] == []
        assert [t for g in blue.groups() for t in g.get("Tags", []) if t["Key"] == "logstack:rollout-lock"]
        reports = sorted(n for n in os.listdir(run.report_dir) if n.endswith(".json"))
        assert [n.split("-")[1] for n in reports] == ["blue", "green"], reports
        # the job's result
        assert "finished: green" in text and "blue failed: Node " in text and "step wait_joined" in text, text[-3000:]
    finally:
        green.down()
        blue.down()
