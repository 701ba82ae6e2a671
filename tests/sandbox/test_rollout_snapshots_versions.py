"""Snapshots before a rollout and version paths (issue 15 items 5 and 6): the sandbox's snapshot and
deprecation APIs as Elasticsearch answers them, and the rollout's preflight and snapshot step
(rollout/snapshots.py, rollout/versions.py, planner.preflight) against them."""
from __future__ import annotations

import time

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout import planner, snapshots

from tests.sandbox_plugin import wait_for
from tests.sandbox.test_rollout_leftovers import clients, settled, variant

real_time = time.time


def test_the_sandbox_answers_the_snapshot_apis_for_fs_and_s3_repositories(sandbox_factory):
    sbx = sandbox_factory("small.yml")
    es = sbx.es
    status, body = es.call("PUT", "/_snapshot/bad", {"type": "fs", "settings": {}})
    assert status == 500 and body["error"]["type"] == "repository_exception", body
    status, body = es.call("PUT", "/_snapshot/nobucket", {"type": "s3", "settings": {}})
    assert status == 500 and body["error"]["type"] == "repository_exception", body
    es.ok("PUT", "/_snapshot/backups", {"type": "fs", "settings": {"location": "/mnt/backups"}})
    es.ok("PUT", "/_snapshot/offsite", {"type": "s3", "settings": {"bucket": "logs-backups"}})
    assert set(es.get("/_snapshot")) == {"backups", "offsite"}
    assert es.get("/_snapshot/backups")["backups"]["type"] == "fs"
    status, body = es.call("GET", "/_snapshot/missing")
    assert status == 404 and body["error"]["type"] == "repository_missing_exception"
    # wait_for_completion=false answers at once; the snapshot runs, then succeeds
    assert es.ok("PUT", "/_snapshot/backups/snap-1?wait_for_completion=false", {"indices": "*"}) == {"accepted": True}
    assert es.get("/_snapshot/backups/snap-1")["snapshots"][0]["state"] in ("IN_PROGRESS", "SUCCESS")
    wait_for(lambda: es.get("/_snapshot/backups/snap-1")["snapshots"][0]["state"] == "SUCCESS", timeout=10,
             what="snap-1 to succeed")
    status, body = es.call("PUT", "/_snapshot/backups/snap-1", {})
    assert status == 400 and body["error"]["type"] == "invalid_snapshot_name_exception", body
    # wait_for_completion=true answers with the finished snapshot
    done = es.ok("PUT", "/_snapshot/offsite/snap-2?wait_for_completion=true", {"indices": "*"})["snapshot"]
    assert done["state"] == "SUCCESS" and done["end_time_in_millis"] >= done["start_time_in_millis"], done
    assert done["indices"] == sorted(r["index"] for r in es.get("/_cat/indices?format=json&h=index"))
    assert [s["snapshot"] for s in es.get("/_snapshot/backups/_all")["snapshots"]] == ["snap-1"]
    rows = es.get("/_cat/snapshots/offsite?format=json&h=id,status,end_epoch")
    assert rows == [{"id": "snap-2", "status": "SUCCESS", "end_epoch": str(done["end_time_in_millis"] // 1000)}]
    assert es.get("/_snapshot/offsite/snap-2/_status")["snapshots"][0]["state"] == "SUCCESS"
    assert es.get("/_snapshot/_status") == {"snapshots": []}  # none running
    status, body = es.call("GET", "/_snapshot/backups/nope")
    assert status == 404 and body["error"]["type"] == "snapshot_missing_exception"


def test_preflight_requires_a_recent_successful_snapshot_or_takes_one(sandbox_factory, monkeypatch):
    sbx = sandbox_factory("small.yml")
    cluster, aws, _groups, _opts = clients(sbx, monkeypatch)
    settled(sbx, 3)
    none = snapshots.refusals(cluster, "require")
    assert len(none) == 1 and "no snapshot repository is registered" in none[0] and "upgrade_snapshot: skip" in none[0]
    assert snapshots.refusals(cluster, "skip") == []
    assert "no snapshot repository" in snapshots.refusals(cluster, "take")[0]
    sbx.es.ok("PUT", "/_snapshot/backups", {"type": "fs", "settings": {"location": "/mnt/backups"}})
    refused = snapshots.refusals(cluster, "require")
    assert "there is none" in refused[0] and "upgrade_snapshot_max_age 24h" in refused[0], refused
    assert snapshots.refusals(cluster, "take") == []
    # take: the run's own snapshot, waited for; a rerun of the same run does not take another
    taken = snapshots.take(cluster, None, "20261204T230000Z-abc123", timeout=30, poll=0.1)
    assert taken == {"repository": "backups", "snapshot": "logstack-rollout-20261204t230000z-abc123",
                     "state": "SUCCESS"}
    assert snapshots.take(cluster, None, "20261204T230000Z-abc123", timeout=30, poll=0.1) == taken
    assert len(sbx.es.get("/_snapshot/backups/_all")["snapshots"]) == 1
    assert snapshots.refusals(cluster, "require") == []
    # a failed snapshot taken later does not count; a day and a half later the good one is too old for 24h
    sbx.es.ok("PUT", "/_snapshot/backups/later?wait_for_completion=true", {})
    sbx.sb.state.snapshots["backups"]["later"]["state"] = "FAILED"
    monkeypatch.setattr(snapshots.time, "time", lambda: real_time() + 36 * 3600.0)
    refused = snapshots.refusals(cluster, "require")
    assert "the newest successful one is backups/logstack-rollout-20261204t230000z-abc123" in refused[0], refused
    assert snapshots.refusals(cluster, "require", max_age="2d") == []
    assert "not a duration" in snapshots.refusals(cluster, "require", max_age="soon")[0]


def test_preflight_refuses_unsupported_version_paths(sandbox_factory, monkeypatch):
    sbx = sandbox_factory("split.yml")  # 8.14.3 nodes
    settled(sbx, 6)
    for target, expected in (("8.13.4", "is a downgrade"),
                             ("9.1.0", "upgrade every node to 8.19 first"),
                             ("9.0.0", "upgrade every node to 8.18 first"),
                             ("opensearch-2.19.1", "change of family")):
        cluster, aws, _groups, opts = clients(sbx, monkeypatch, target_version=target)
        _world, plan, refused = planner.preflight(cluster, aws, opts)
        assert plan and any(r.startswith("version_path: ") and expected in r for r in refused), (target, refused)
    cluster, aws, _groups, opts = clients(sbx, monkeypatch)  # 8.14.3 -> 8.15.0, as the launch template says
    assert not [r for r in planner.preflight(cluster, aws, opts)[2] if r.startswith("version_path")]


def test_a_major_upgrade_is_refused_on_critical_deprecations_listed(sandbox_factory, tmp_path, monkeypatch):
    sbx = sandbox_factory(variant(tmp_path, base="sim-es7.yml",
                                  amis={"es-7.17": {"es_version": "7.17.29"}, "es-8.15": {"es_version": "8.15.0"}},
                                  groups=[{"name": "es-master", "role": "master", "size": 3, "ami": "es-7.17"},
                                          {"name": "es-data", "role": "data", "size": 3, "ami": "es-7.17"}],
                                  roll_to={"ami": "es-8.15"}))
    settled(sbx, 6)
    cluster, aws, _groups, opts = clients(sbx, monkeypatch)
    _world, plan, refused = planner.preflight(cluster, aws, opts)
    assert plan and not [r for r in refused if r.startswith("version_path")], refused  # 7.17 -> 8.15 is a path
    sbx.es.ok("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.disk.include_relocations": "true"}})
    sbx.sb.state.deprecation_issues = [{"level": "critical", "message": "Realm order is required",
                                        "url": "https://example.invalid", "details": "set realm order"},
                                       {"level": "warning", "message": "only a warning", "url": "", "details": ""}]
    refused = [r for r in planner.preflight(cluster, aws, opts)[2] if r.startswith("version_path")]
    assert len(refused) == 1 and "2 critical issue(s)" in refused[0], refused
    assert "cluster_settings: Setting [cluster.routing.allocation.disk.include_relocations] is removed in 8.0" in refused[0]
    assert "Realm order is required" in refused[0] and "only a warning" not in refused[0]


def test_take_fails_with_the_snapshot_state_when_it_does_not_succeed(sandbox_factory, monkeypatch):
    sbx = sandbox_factory("small.yml")
    cluster, _aws, _groups, _opts = clients(sbx, monkeypatch)
    settled(sbx, 3)
    with pytest.raises(EsError) as err:
        snapshots.take(cluster, None, "run-1", timeout=5, poll=0.1)
    assert "no repository is registered" in err.value.message
