"""Scenario files: a mistake is refused with one sentence naming the key, before anything starts."""
from __future__ import annotations

import glob
import os

import pytest
import yaml

from sandbox.scenario import ScenarioError, load, parse, parse_seconds, parse_size

SCENARIOS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "sandbox", "scenarios")
BASE = {"amis": {"a": {"es_version": "8.15.0"}}, "groups": [{"name": "g", "role": "mixed", "size": 3, "ami": "a"}]}


def with_(**changes):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data.update(changes)
    return data


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(SCENARIOS, "*.yml"))))
def test_every_shipped_scenario_is_valid(path):
    sc = load(path)
    assert sc.groups and sc.amis


def test_demo_scenario_is_sized_for_a_one_and_a_half_to_two_minute_ideal_roll():
    sc = load(os.path.join(SCENARIOS, "demo.yml"))
    data_bytes = sum(ix.size_bytes * (1 + ix.replicas) for ix in sc.indices)
    nodes = sum(g.size for g in sc.groups)
    ideal = nodes * sc.boot_to_join_seconds + data_bytes / sc.recovery_bytes_per_second
    assert 80 <= ideal <= 120
    assert [g.roles for g in sc.groups] == [["master"], ["data", "data_cold", "data_content", "data_hot",
                                                          "data_warm", "ingest"]]
    assert any(ix.replicas == 0 for ix in sc.indices) and sc.writer is not None


@pytest.mark.parametrize("data, message", [
    (with_(groups=[{"name": "g", "role": "leader", "size": 1, "ami": "a"}]),
     "groups[0].role must be master, data or mixed (or give 'roles'), not 'leader'"),
    (with_(groups=[{"name": "g", "role": "mixed", "size": 1, "ami": "b"}]),
     "groups[0].ami 'b' is not one of the amis (a)"),
    (with_(groups=[{"name": "g", "role": "data", "size": 1, "ami": "a"}]),
     "at least one group must hold master-eligible nodes (role master or mixed)"),
    (with_(amis={"a": {"es_version": "eight"}}), "amis.a.es_version must look like 8.15.0, not 'eight'"),
    (with_(es={"version": "6.8.0"}), "es.version must be a 7.x, 8.x or 9.x version such as 8.15.0, not '6.8.0'"),
    (with_(es={"auth": "kerberos"}), "es.auth must be none, basic or api_key, not 'kerberos'"),
    (with_(roll_to={"ami": "z"}), "roll_to.ami 'z' is not one of the amis (a)"),
    (with_(timing={"recovery_bytes_per_second": "fast"}),
     "timing.recovery_bytes_per_second must be a size such as 200MB or 1GB, not 'fast'"),
    (with_(faults=[{"type": "crash", "node": "g/7"}]),
     "faults[0] (crash) needs 'node' as <group>/<n>, n below the group's size"),
    (with_(faults=[{"type": "meteor"}]),
     "faults[0].type must be one of crash, es_unavailable, never_join, slow_boot, slow_recovery, not 'meteor'"),
    (with_(faults=[{"type": "slow_boot", "node": "g/0", "for_seconds": 20}]),
     "faults[0]: slow_boot is a fault of engine: real (the simulator's boots take timing.boot_to_join_seconds)"),
    (with_(indices=[{"name": "Logs"}]), "indices[0].name must be a valid lowercase index name"),
    (with_(writer={"prefix": "x"}), "writer needs 'every_seconds' (how often a new index starts)"),
    (with_(colour="blue"), "the scenario has unknown key(s) colour; allowed: amis, cluster_name, engine, es, "
                           "faults, groups, indices, name, real, roll_to, timing, writer"),
])
def test_a_bad_scenario_is_refused_with_one_sentence_naming_the_key(data, message):
    with pytest.raises(ScenarioError) as exc:
        parse(data)
    assert str(exc.value) == message


def test_sizes_and_durations_read_as_people_write_them():
    assert parse_size("50MB", "x") == 50 * 1024 ** 2
    assert parse_size("1.5GiB", "x") == int(1.5 * 1024 ** 3)
    assert parse_size(1000, "x") == 1000
    assert parse_seconds("1m", "x") == 60 and parse_seconds("250ms", "x") == 0.25 and parse_seconds(5, "x") == 5


def test_a_missing_file_is_one_sentence(tmp_path):
    with pytest.raises(ScenarioError) as exc:
        load(str(tmp_path / "nope.yml"))
    assert str(exc.value).startswith(f"cannot read scenario file {tmp_path / 'nope.yml'}")
