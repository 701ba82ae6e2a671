"""The report of `make demo` (the sandbox's demo scenario, run as `python -m sandbox run ... --
ansible-playbook playbooks/upgrade-es.yml`), opened in headless Chromium from Debian."""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium():
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("LOGSTACK_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium is required (LOGSTACK_REQUIRE_CHROMIUM=1): apt-get install -y chromium")
        pytest.skip("no chromium: apt-get install -y chromium (set LOGSTACK_REQUIRE_CHROMIUM=1 to fail)")
    return found


def browse(page, *args):
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        return subprocess.run([chromium(), *CHROMIUM_FLAGS, "--user-data-dir=" + profile, "--window-size=1280,2000",
                               *args, "file://" + page], capture_output=True, text=True, timeout=180)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    chromium()
    out = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([sys.executable, "-m", "sandbox", "run", "--scenario", "sandbox/scenarios/demo.yml",
                           "--state", str(out / "state"), "--", "ansible-playbook", "playbooks/upgrade-es.yml",
                           "-i", "inventories/sandbox", "-e", "upgrade_report_dir=%s" % (out / "reports")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    audit = json.loads(proc.stdout.strip().splitlines()[-1])
    html = glob.glob(str(out / "reports" / "upgrade-sandbox-*.html"))
    assert len(html) == 1, os.listdir(out / "reports")
    with open(html[0][:-len(".html")] + ".json") as f:
        report = json.load(f)
    return html[0], report, audit, proc.stdout


def test_demo_report_names_every_node_its_versions_and_the_terminated_instances(demo_report):
    _page, report, audit, output = demo_report
    assert report["outcome"] == "succeeded"
    assert len(report["nodes"]) == audit["nodes_replaced"] == 6
    assert {(n["old_version"], n["new_version"]) for n in report["nodes"]} == {("8.14.3", "8.15.0")}
    assert len(report["terminated_instance_ids"]) == 6
    assert set(report["terminated_instance_ids"]) == {n["old_instance_id"] for n in report["nodes"]}
    # What the data nodes held is what had to move; the sandbox counts every copy it moved
    # (also replicas of the writer's new indices), so the report's figure is a little lower.
    assert 0.8 * audit["shard_bytes_moved"] <= report["bytes_moved"] <= audit["shard_bytes_moved"]
    assert all(n["bytes_moved"] > 0 for n in report["nodes"] if n["node_name"].startswith("data-"))
    # Health and shard copies over time: the old data nodes end empty, the new ones hold copies.
    assert len(report["health"]) >= 20 and {s for _t, s in report["health"]} <= {"green", "yellow"}
    for n in report["nodes"]:
        if n["node_name"].startswith("data-"):
            assert report["shards"][n["node_name"]][-1][1] == 0
    assert "Write the run's report" in output  # (its set_stats for AWX: tests/awx/test_runner.py)


def test_demo_report_renders_its_timeline_and_chart_in_chromium(demo_report):
    page, report, _audit, _output = demo_report
    dom = browse(page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = dom.stdout
    assert '<svg id="timeline"' in text and '<svg id="chart-shards"' in text and '<svg id="chart-health"' in text
    # one labelled row and a bar per step run, per node
    timeline = text[text.index('<svg id="timeline"'):text.index("</svg>", text.index('<svg id="timeline"'))]
    for n in report["nodes"]:
        assert ">%s</text>" % n["node_name"] in timeline
    assert timeline.count('class="step"') == sum(len(n["timeline"]) for n in report["nodes"])
    chart = text[text.index('<svg id="chart-shards"'):]
    assert len(re.findall(r'<path class="series"', chart)) >= 6  # old and new data nodes
    assert 'id="outcome">succeeded<' in text
    shot = os.path.join(os.path.dirname(page), "report.png")
    run = browse(page, "--screenshot=" + shot)
    assert run.returncode == 0 and os.path.getsize(shot) > 20000, run.stderr[-2000:]
    # Kept for a human look (tests/output is ignored by git); docs/report-example.png is one of these.
    os.makedirs(os.path.join(ROOT, "tests", "output"), exist_ok=True)
    shutil.copy(shot, os.path.join(ROOT, "tests", "output", "report-example.png"))
