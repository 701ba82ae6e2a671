"""The node launcher and the distributions: loud failures, JDK choice, scenario validation."""
import glob
import os
import re
import subprocess
import sys

import pytest
import yaml

from sandbox.real import dist
from sandbox.scenario import ScenarioError, parse
from tests.real.conftest import ROOT, scenario


def test_a_node_without_the_reindex_module_refuses_to_start_and_names_the_missing_class(tmp_path):
    jars = [j for j in glob.glob(os.path.join(dist.ensure("elasticsearch", "7.17.29"), "*.jar"))
            if "reindex-client" not in os.path.basename(j)]
    home = tmp_path / "node"
    (home / "config").mkdir(parents=True)
    (home / "config" / "elasticsearch.yml").write_text(
        '{"cluster.name": "t", "node.name": "n", "network.host": "127.0.0.1", "http.port": 0, '
        '"transport.port": 0, "discovery.type": "single-node", "path.data": "%s"}' % (home / "data"))
    java = os.path.join(dist.java_home_for("elasticsearch", "7.17.29"), "bin", "java")
    proc = subprocess.run([java, "-Xmx128m", "-cp", os.pathsep.join([dist.launcher_jar()] + jars),
                           "elk.launcher.NodeLauncher", str(home)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "LAUNCHER MISSING CLASS org.elasticsearch.reindex.ReindexPlugin (reindex module)" in proc.stderr
    assert "LAUNCHER STARTED" not in proc.stdout  # never a node that answers GET / but lacks _reindex


def test_a_node_whose_logging_cannot_be_configured_refuses_to_start_and_says_why(tmp_path):
    home = tmp_path / "node"
    (home / "config").mkdir(parents=True)  # no config/log4j2.properties: log4j would print ERROR only
    (home / "config" / "elasticsearch.yml").write_text(
        '{"cluster.name": "t", "node.name": "n", "network.host": "127.0.0.1", "http.port": 0, '
        '"transport.port": 0, "discovery.type": "single-node", "path.data": "%s"}' % (home / "data"))
    java = os.path.join(dist.java_home_for("elasticsearch", "7.17.29"), "bin", "java")
    proc = subprocess.run([java, "-Xmx128m", "-cp", os.pathsep.join(
        [dist.launcher_jar(), os.path.join(dist.ensure("elasticsearch", "7.17.29"), "*")]),
        "elk.launcher.NodeLauncher", str(home)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "LAUNCHER LOGGING FAILED configure" in proc.stderr and "no log4j2.properties found" in proc.stderr
    assert "LAUNCHER STARTED" not in proc.stdout


def test_opensearch_3_gets_a_jdk_21_or_newer_and_elasticsearch_7_a_jdk_17():
    def major(home):
        out = subprocess.run([os.path.join(home, "bin", "java"), "-version"], capture_output=True, text=True).stderr
        return int(out.split('"')[1].split(".")[0])
    assert major(dist.java_home_for("opensearch", "3.9.0")) >= 21
    assert 17 <= major(dist.java_home_for("elasticsearch", "7.17.29")) < 25


@pytest.mark.parametrize("family,version,words", [
    ("elasticsearch", "8.15.0", "use engine: sim for 8.x/9.x"),
    ("opensearch", "1.3.0", "runs 2.x and 3.x"),
])
def test_distributions_maven_central_cannot_run_are_refused_in_one_sentence(family, version, words):
    with pytest.raises(dist.DistError) as err:
        dist.check_supported(family, version)
    assert words in str(err.value)


BASE = {"engine": "real", "amis": {"a": {"es_version": "7.17.29"}},
        "groups": [{"name": "g", "role": "mixed", "size": 1, "ami": "a"}]}


@pytest.mark.parametrize("change,words", [
    ({"es": {"version": "7.17.29"}}, "es is for the simulator"),
    ({"faults": [{"type": "slow_recovery", "factor": 0.5}]}, "slow_recovery is a simulator fault"),
    ({"faults": [{"type": "slow_boot", "node": "g/0"}]}, "faults[0] (slow_boot) needs a positive 'for_seconds'"),
    ({"faults": [{"type": "slow_boot", "node": "g/1", "for_seconds": 9}]}, "faults[0] (slow_boot) needs 'node' as"),
    ({"real": {"distribution": "solr"}}, "real.distribution must be elasticsearch or opensearch"),
    ({"real": {"heap": "lots"}}, "real.heap must be a JVM heap size"),
    ({"engine": "sim", "real": {"heap": "256m"}}, "real: applies to engine: real only"),
])
def test_real_scenario_mistakes_are_refused_naming_the_key(change, words):
    with pytest.raises(ScenarioError) as err:
        parse(dict(BASE, **change))
    assert words in str(err.value)


def test_a_real_cluster_that_cannot_form_fails_with_what_each_node_logged(tmp_path):
    """Broken on purpose: cluster.initial_master_nodes names no node, so no node may bootstrap the
    cluster (as with a typo in that setting). ``sandbox up`` must fail saying why, in the nodes' own
    words from their log4j logs, not only that the cluster did not form."""
    spec = scenario("real-small.yml", writer=None, indices=[], roll_to=None,
                    amis={"es-7.17": {"es_version": "7.17.29"}},
                    groups=[{"name": "es-nodes", "role": "mixed", "size": 2, "ami": "es-7.17"}],
                    real={"distribution": "elasticsearch", "heap": "256m", "form_timeout": 60,
                          "node_settings": {"cluster.initial_master_nodes": ["nobody"],
                                            "discovery.cluster_formation_warning_timeout": "2s"}})
    path = tmp_path / "scenario.yml"
    path.write_text(yaml.safe_dump(spec))
    state = tmp_path / "state"
    try:
        up = subprocess.run([sys.executable, "-m", "sandbox", "up", "--scenario", str(path), "--state", str(state)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run([sys.executable, "-m", "sandbox", "down", "--state", str(state)], cwd=ROOT,
                       capture_output=True, timeout=120)
    assert up.returncode != 0, up.stdout
    err = up.stderr
    assert "the real cluster did not form within 60s" in err, err[-3000:]
    # one section per node: its name, state and log file, then the end of that log
    sections = re.findall(r"^--- (\S+) \(elasticsearch 7\.17\.29, .*?\) (\S+/node\.log)$", err, re.M)
    assert len(sections) == 2, err[-3000:]
    for _name, log in sections:
        assert os.path.exists(log)
    # ES's own explanation (ClusterFormationFailureHelper, a WARN), from each node's log
    assert err.count("master not discovered yet, this node has not previously joined a bootstrapped") >= 2, \
        err[-3000:]
    assert "[nobody]" in err
