"""The node launcher and the distributions: loud failures, JDK choice, scenario validation."""
import glob
import os
import subprocess

import pytest

from sandbox.real import dist
from sandbox.scenario import ScenarioError, parse


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
    ({"real": {"distribution": "solr"}}, "real.distribution must be elasticsearch or opensearch"),
    ({"real": {"heap": "lots"}}, "real.heap must be a JVM heap size"),
    ({"engine": "sim", "real": {"heap": "256m"}}, "real: applies to engine: real only"),
])
def test_real_scenario_mistakes_are_refused_naming_the_key(change, words):
    with pytest.raises(ScenarioError) as err:
        parse(dict(BASE, **change))
    assert words in str(err.value)
