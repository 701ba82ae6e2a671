# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Version paths a rolling replacement may take (docs/upgrade.md, "Version paths").

From each outdated node's version (GET _nodes) to its group's target (the launch template's
version tag, or upgrade_target_version), refused before anything changes:

* a downgrade (a node older than the cluster's newest cannot even join, and the newer nodes may
  have written what older ones cannot read);
* another family: the target version may be written ``opensearch-2.19.1`` or
  ``elasticsearch-8.15.0``; Elasticsearch to OpenSearch only from Elasticsearch 7.10 to OpenSearch
  1.x (OpenSearch's documented rolling migration), nothing from OpenSearch to Elasticsearch;
* a jump Elasticsearch or OpenSearch does not support in a rolling upgrade: MAJOR_FROM below;
* before a major upgrade, critical issues of GET _migration/deprecations (Elasticsearch, where
  the API exists), each listed.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.units import parse_version

# (family, target major, first target minor) -> the lowest (major, minor) a rolling upgrade starts from.
# Elasticsearch: 8.x from 7.17 ("When upgrading to Elasticsearch 8.0 and later, you must first upgrade to
# 7.17", reference/8.x rolling-upgrades); 9.0 from 8.18 and 9.1+ from 8.19 ("Prepare to upgrade":
# "To upgrade from 8.17.0 or earlier to 9.0.0, you must first upgrade to the latest 8.18 patch
# release"; its major-upgrade example is 8.19.x to 9.1.3); 7.x from 6.8.
# OpenSearch: 2.x from 1.3, 3.x from 2.19.
MAJOR_FROM = {
    ("elasticsearch", 7, 0): (6, 8),
    ("elasticsearch", 8, 0): (7, 17),
    ("elasticsearch", 9, 0): (8, 18),
    ("elasticsearch", 9, 1): (8, 19),
    ("opensearch", 2, 0): (1, 3),
    ("opensearch", 3, 0): (2, 19),
}
FAMILIES = ("elasticsearch", "opensearch")


def split_target(text, default_family):
    """(family, version tuple, version text) of a target such as "8.15.0" or "opensearch-2.19.1"."""
    text = str(text).strip()
    for family in FAMILIES:
        for sep in ("-", ":", " "):
            if text.lower().startswith(family + sep):
                rest = text[len(family) + 1:]
                return family, parse_version(rest), rest
    return default_family, parse_version(text), text


def minimum_for(family, target):
    """The lowest (major, minor) a rolling upgrade to target (a version tuple) starts from, or None."""
    best = None
    for (fam, major, minor), low in MAJOR_FROM.items():
        if fam == family and major == target[0] and target[1] >= minor:
            if best is None or minor >= best[0]:
                best = (minor, low)
    return best[1] if best else None


def path_refusal(family, current, target_family, target):
    """One sentence when current -> target (version tuples) is not a rolling upgrade, else None."""
    cur, tgt = ".".join(map(str, current)), ".".join(map(str, target))
    if target_family != family:
        if family == "elasticsearch" and target_family == "opensearch" and current[:2] == (7, 10) and target[0] == 1:
            return None
        return ("from %s %s to %s %s is a change of family no rolling upgrade supports (only Elasticsearch 7.10 to "
                "OpenSearch 1.x): migrate by snapshot and restore, or reindex from remote" % (
                    family, cur, target_family, tgt))
    if target < current:
        return ("%s %s to %s is a downgrade: nodes cannot be downgraded; fix the launch template's version "
                "(upgrade_target_version) or restore a snapshot into a new cluster" % (family, cur, tgt))
    if target[0] == current[0]:
        return None
    low = minimum_for(family, target)
    if target[0] - current[0] > 1 or low is None or tuple(current[:2]) < low:
        need = "%d.%d" % low if low else "the previous major's last minor"
        return ("%s %s to %s is not a supported rolling upgrade: upgrade every node to %s first (one run with "
                "upgrade_target_version), then to %s" % (family, cur, tgt, need, tgt))
    return None


def critical_deprecations(cluster):
    """["<where>: <message>", ...] of the critical issues GET _migration/deprecations lists; [] where the
    API does not exist (OpenSearch, a build without x-pack)."""
    try:
        data = cluster.es.get("/_migration/deprecations")
    except EsError as exc:
        if exc.status in (400, 401, 403, 404, 405, 410, 500):
            return []
        raise
    out = []
    for where, issues in sorted((data or {}).items()):
        if isinstance(issues, dict):
            items = [(k, i) for k, lst in sorted(issues.items()) for i in lst or []]
        else:
            items = [(None, i) for i in issues or []]
        for name, issue in items:
            if isinstance(issue, dict) and issue.get("level") == "critical":
                out.append("%s%s: %s" % (where, " " + name if name else "", issue.get("message")))
    return out


def refusals(cluster, world, plan):
    """The version path refusals of the plan (nothing changed yet)."""
    family = cluster.es.distribution
    out, majors = [], False
    seen = set()
    for cand in plan:
        if not cand.get("target_version") or not cand.get("version"):
            continue
        tfam, target, _text = split_target(cand["target_version"], family)
        current = parse_version(cand["version"])
        reason = path_refusal(family, current, tfam, target)
        if reason and reason not in seen:
            seen.add(reason)
            out.append("version_path: %s (%s)" % (reason, cand["node_name"]))
        elif not reason and tfam == family and target[0] > current[0]:
            majors = True
    # OpenSearch has no _migration/deprecations: not asked (its 404 would be a request the cluster
    # does not know, which the real-cluster audit counts)
    if majors and not out and family != "opensearch":
        issues = critical_deprecations(cluster)
        if issues:
            out.append("version_path: before a major upgrade, GET _migration/deprecations lists %d critical issue(s), "
                       "resolve them first: %s" % (len(issues), "; ".join(issues[:20])))
    return out
