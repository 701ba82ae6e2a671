# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A recent snapshot before nodes are replaced (docs/upgrade.md, "Snapshots").

``upgrade_snapshot``:
* ``require`` (the default): preflight refuses unless a registered repository holds a snapshot in
  state SUCCESS that ended less than ``upgrade_snapshot_max_age`` ago;
* ``take``: preflight checks the repository (the given one, or the only one registered); the
  pause action takes a snapshot of every index named after the run and waits for it (a rerun of
  the same run finds it and does not take another);
* ``skip``: no check (must be set explicitly).

Reads use ``_cat/snapshots/<repository>`` with ``h=`` (a few bytes per snapshot, whatever the
number of indices); the state of the run's own snapshot comes from ``GET _snapshot/<repo>/<name>``.
"""
from __future__ import annotations

import re
import time

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError

DEFAULT_MAX_AGE = "24h"
DEFAULT_TIMEOUT = 3600
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_age(text):
    """Seconds of "24h", "90m", "2d", "3600s" or a number of seconds."""
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", str(text))
    if not match:
        raise ValueError("upgrade_snapshot_max_age %r is not a duration like 24h, 90m or 2d" % (text,))
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def repositories(cluster):
    """{name: {type, settings}} of the registered repositories."""
    return cluster.es.get("/_snapshot") or {}


def newest_success(cluster, repository):
    """(snapshot id, end epoch seconds) of the newest SUCCESS snapshot of repository, or (None, None)."""
    rows = cluster.es.get("/_cat/snapshots/%s" % repository,
                          params={"format": "json", "h": "id,status,end_epoch"}) or []
    best = (None, None)
    for row in rows:
        if row.get("status") != "SUCCESS":
            continue
        end = int(row.get("end_epoch") or 0)
        if best[1] is None or end > best[1]:
            best = (row.get("id"), end)
    return best


def _pick(repos, repository):
    if repository:
        return [repository] if repository in repos else []
    return sorted(repos)


def refusals(cluster, mode, max_age=DEFAULT_MAX_AGE, repository=None, now=None):
    """Preflight's refusals for upgrade_snapshot (empty: fine); now: epoch seconds (the clock's)."""
    if mode == "skip":
        return []
    now = time.time() if now is None else now
    try:
        seconds = parse_age(max_age)
    except ValueError as exc:
        return ["snapshot: %s" % exc]
    try:
        repos = repositories(cluster)
    except EsError as exc:
        return ["snapshot: cannot list the snapshot repositories (%s); the run's user needs the monitor_snapshot "
                "cluster privilege, or set upgrade_snapshot: skip" % exc.message]
    names = _pick(repos, repository)
    if not names:
        where = ("repository %s is not registered (registered: %s)" % (repository, ", ".join(sorted(repos)) or "none")
                 if repository else "no snapshot repository is registered")
        return ["snapshot: upgrade_snapshot is %s but %s: register one (PUT _snapshot/<name>, type fs or s3), set "
                "upgrade_snapshot_repository, or set upgrade_snapshot: skip" % (mode, where)]
    if mode == "take":
        if len(names) > 1:
            return ["snapshot: upgrade_snapshot is take and several repositories are registered (%s): set "
                    "upgrade_snapshot_repository" % ", ".join(names)]
        return []
    newest = None
    for name in names:
        snap, end = newest_success(cluster, name)
        if snap and (newest is None or end > newest[2]):
            newest = (name, snap, end)
    if newest and now - newest[2] <= seconds:
        return []
    seen = ("the newest successful one is %s/%s, %.1f hours old" % (newest[0], newest[1], (now - newest[2]) / 3600.0)
            if newest else "there is none")
    return ["snapshot: upgrade_snapshot is require and no successful snapshot in %s is newer than "
            "upgrade_snapshot_max_age %s (%s): take one, set upgrade_snapshot: take to have the run take it, or "
            "upgrade_snapshot: skip" % (", ".join(names), max_age, seen)]


def snapshot_name(run_id):
    return "logstack-rollout-%s" % re.sub(r"[^a-z0-9_-]", "-", str(run_id).lower())


def take(cluster, repository, run_id, timeout=DEFAULT_TIMEOUT, poll=5.0, clock=time.monotonic, sleep=time.sleep):
    """Take (unless this run already did) a snapshot of every index and wait for it; {repository,
    snapshot, state}. Raises EsError when it fails or does not end within timeout."""
    if not repository:
        names = sorted(repositories(cluster))
        if len(names) != 1:
            raise EsError("upgrade_snapshot is take but %s: set upgrade_snapshot_repository." % (
                "no repository is registered" if not names else "several are registered (%s)" % ", ".join(names)))
        repository = names[0]
    name = snapshot_name(run_id)
    path = "/_snapshot/%s/%s" % (repository, name)
    found = cluster.es.get(path, params={"ignore_unavailable": "true"}).get("snapshots") or []
    if not found:
        cluster.es.put(path, params={"wait_for_completion": "false"},
                       body={"indices": "*", "include_global_state": True, "partial": False})
    start = clock()
    while True:
        snaps = cluster.es.get(path).get("snapshots") or []
        state = snaps[0].get("state") if snaps else "MISSING"
        if state == "SUCCESS":
            return {"repository": repository, "snapshot": name, "state": state}
        if state not in ("IN_PROGRESS", "STARTED"):
            raise EsError("The run's snapshot %s/%s ended %s: nothing was changed; fix the repository (GET "
                          "_snapshot/%s/%s lists the failures) or set upgrade_snapshot: skip." % (
                              repository, name, state, repository, name))
        if clock() - start >= timeout:
            raise EsError("The run's snapshot %s/%s did not finish within %ss: raise upgrade_snapshot_timeout or "
                          "take one beforehand and use upgrade_snapshot: require." % (repository, name, timeout))
        sleep(poll)
