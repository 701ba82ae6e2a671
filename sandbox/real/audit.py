"""The audit of a real cluster: the simulator's keys, computed from what the real nodes say.

A thread samples ``_cluster/health``, ``_cat/nodes``, ``_cat/shards`` and ``_cat/recovery`` every
``SAMPLE`` seconds (asked of a node directly, so the front's request log holds only the
collection's own traffic). Documents: ``docs_expected`` is what was acknowledged per index (the
seed documents and the writer's), ``docs_now`` a refreshed ``_count`` of those indices, and
``docs_lost`` the acknowledged documents no longer found under their index name.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional, Set, Tuple

from ..audit import RequestLog
from .cluster import RealCluster, RealClusterError
from .dist import vtuple

SAMPLE = 0.25
EPISODES_KEPT = 50


class RealAudit:
    def __init__(self, cluster: RealCluster, front: Any) -> None:
        self.c = cluster
        self.front = front
        self.started: Optional[float] = None
        self.red_seconds = self.yellow_seconds = 0.0
        self.degraded_seconds = self.degraded_ex_skew = self.no_master_seconds = 0.0
        self.degraded_by_reason: Dict[str, float] = {}
        self.min_master_eligible: Optional[int] = None
        self.max_nodes_out = 0
        self.expected_nodes = sum(g.size for g in cluster.scenario.groups)
        self.initial: Dict[str, str] = {}  # instance id -> group, of the nodes at start
        self.outdated_at_start = 0
        self.outdated_bytes: List[int] = []  # shard bytes on each node outdated at start
        self.versions_before: List[str] = []
        self.recovered: Dict[Tuple, int] = {}  # (index, shard, target, start) -> bytes recovered
        self.samples = 0
        self.sample_errors = 0
        self.episodes: List[Dict[str, Any]] = []
        self._episode: Optional[Dict[str, Any]] = None
        self._skew_seen: Set[Tuple[str, str]] = set()
        self.requests = RequestLog()  # the collection's requests through the front
        self.last_nodes: List[Dict[str, Any]] = []
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # ----------------------------------------------------------------- begin
    def begin(self) -> None:
        nodes = self._cat_nodes()
        shards = self._cat_shards()
        self.initial = {}
        bytes_on: Dict[str, int] = {}
        for s in shards:
            if s.get("node") and s.get("state") == "STARTED":
                bytes_on[s["node"]] = bytes_on.get(s["node"], 0) + int(s.get("store") or 0)
        for n in nodes:
            rn = self.c.node_by_name(n["name"])
            if rn is None:
                continue
            self.initial[rn.instance_id] = rn.group
            if self._outdated(rn):
                self.outdated_at_start += 1
                self.outdated_bytes.append(bytes_on.get(n["name"], 0))
        self.versions_before = sorted({n["version"] for n in nodes})
        self.min_master_eligible = sum(1 for n in nodes if _is_master(n))
        self.requests.seen = self.front.request_count
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="real-audit", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ------------------------------------------------------------- sampling
    def _cat_nodes(self) -> List[Dict[str, Any]]:
        status, body = self.c.call("GET", "/_cat/nodes?format=json&h=id,name,node.role,version,master&full_id=true",
                                   timeout=3)
        return body if status == 200 and isinstance(body, list) else []

    def _cat_shards(self) -> List[Dict[str, Any]]:
        status, body = self.c.call("GET", "/_cat/shards?format=json&bytes=b"
                                          "&h=index,shard,prirep,state,node,store,unassigned.reason", timeout=3)
        return body if status == 200 and isinstance(body, list) else []

    def _loop(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(SAMPLE):
            now = time.monotonic()
            dt, last = now - last, now
            try:
                self._sample(dt)
            except (RealClusterError, OSError, ValueError, KeyError, TypeError):
                self.sample_errors += 1

    def _sample(self, dt: float) -> None:
        status, health = self.c.call("GET", "/_cluster/health?master_timeout=500ms&filter_path=status", timeout=3)
        master = status == 200
        nodes = self._cat_nodes()
        shards = self._cat_shards() if master else []
        _, rec = self.c.call("GET", "/_cat/recovery?format=json&bytes=b"
                                    "&h=index,shard,type,target_node,bytes_recovered,start_time_ms", timeout=3)
        with self.lock:
            self.samples += 1
            self.last_nodes = nodes
            if not master:
                self.no_master_seconds += dt
            color = health.get("status") if master and isinstance(health, dict) else None
            if color == "red":
                self.red_seconds += dt
            elif color == "yellow":
                self.yellow_seconds += dt
            present = len(nodes)
            self.max_nodes_out = max(self.max_nodes_out, self.expected_nodes - present)
            m = sum(1 for n in nodes if _is_master(n))
            self.min_master_eligible = m if self.min_master_eligible is None else min(self.min_master_eligible, m)
            for r in rec if isinstance(rec, list) else []:
                if r.get("type") in ("peer", "relocation"):
                    key = (r["index"], r["shard"], r.get("target_node"), r.get("start_time_ms"))
                    self.recovered[key] = max(self.recovered.get(key, 0), int(r.get("bytes_recovered") or 0))
            if master:
                self._degradation(dt, nodes, shards)

    def _degradation(self, dt: float, nodes: List[Dict[str, Any]], shards: List[Dict[str, Any]]) -> None:
        version_of = {n["name"]: vtuple(n["version"]) for n in nodes}
        data_nodes = [n["name"] for n in nodes if "d" in n.get("node.role", "")]
        holders: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
        for s in shards:
            holders.setdefault((s["index"], s["shard"]), []).append(s)
        missing, unexplained = [], []
        skew_now: Set[Tuple[str, str]] = set()
        for key, copies in holders.items():
            primary = next((s for s in copies if s["prirep"] == "p" and s.get("node")), None)
            for s in copies:
                if s["state"] in ("STARTED", "RELOCATING"):
                    continue
                reason = s["state"] + (":" + s["unassigned.reason"] if s.get("unassigned.reason") else "") + \
                    (":primary" if s["prirep"] == "p" else "")
                skew = False
                if s["prirep"] == "r" and primary is not None and s["state"] == "UNASSIGNED":
                    # node_version decider: no replica on a node older than its primary's
                    have = {c.get("node") for c in copies}
                    pv = version_of.get(primary["node"], ())
                    free = [d for d in data_nodes if d not in have]
                    skew = bool(free) and all(version_of.get(d, ()) < pv for d in free)
                    if skew:
                        reason = "UNASSIGNED:node_version"
                        skew_now.add(key)
                elif s["prirep"] == "r" and s["state"] == "INITIALIZING" and key in self._skew_seen:
                    skew = True  # the catch-up recovery once a new-enough node joined
                    reason = "INITIALIZING:after_node_version"
                    skew_now.add(key)
                self.degraded_by_reason[reason] = self.degraded_by_reason.get(reason, 0.0) + dt
                missing.append(s)
                if not skew:
                    unexplained.append(f"[{s['index']}][{s['shard']}]{s['prirep']} {reason}")
        self._skew_seen = skew_now
        if missing:
            self.degraded_seconds += dt
        if unexplained:
            self.degraded_ex_skew += dt
            at = time.monotonic() - (self.started or time.monotonic())
            ep = self._episode
            if ep is None or at - (ep["at_seconds"] + ep["seconds"]) > 2 * SAMPLE + dt:
                ep = {"at_seconds": round(at, 2), "seconds": 0.0, "copies": unexplained[:10]}
                self.episodes.append(ep)
                del self.episodes[:-EPISODES_KEPT]
                self._episode = ep
            ep["seconds"] = round(ep["seconds"] + dt, 2)

    def lower_bound(self) -> float:
        """An ideal one-at-a-time replacement: per outdated node, a join (the mean measured for
        replacements, else for the initial nodes) plus its bytes at the recovery limit."""
        joins = self.c.replacement_join_seconds or self.c.join_seconds
        join = sum(joins) / len(joins) if joins else 0.0
        rate = self.c.real.recovery_bytes_per_second
        return sum(join + b / rate for b in self.outdated_bytes)

    def _outdated(self, node: Any) -> bool:
        world = self.c.world
        current = world.current_template(node.group)
        inst = world.instance(node.instance_id)
        tag = world.tags(node.instance_id).get("es_version")
        return (current["image_id"] is not None and getattr(inst, "image_id", None) != current["image_id"]) or \
            (current["es_version"] is not None and tag != current["es_version"])

    def _classify_requests(self) -> None:
        with self.front.lock:
            self.requests.take(self.front.request_log, self.front.request_count)

    # ---------------------------------------------------------------- report
    def documents(self) -> Tuple[int, int, Dict[str, int]]:
        """(expected, now, lost per index) over the indices the sandbox wrote acknowledged documents to."""
        with self.c.lock:
            acked = dict(self.c.acked)
        try:  # best effort: a red index's shards cannot refresh, and need not for the count below
            self.c.call("POST", "/_refresh?ignore_unavailable=true&allow_no_indices=true", timeout=15)
        except RealClusterError:
            pass
        now_total, lost = 0, {}
        for index, expected in acked.items():
            # a red index answers 503 (or counts only its live shards): what cannot be read is lost now
            status, body = self.c.call("GET", f"/{index}/_count?ignore_unavailable=true", timeout=15)
            count = int(body.get("count", 0)) if status == 200 and isinstance(body, dict) else 0
            now_total += count
            if count < expected:
                lost[index] = expected - count
        return sum(acked.values()), now_total, lost

    def report(self) -> Dict[str, Any]:
        self._classify_requests()
        c = self.c
        try:
            expected, docs_now, lost = self.documents()
            _, health = c.call("GET", "/_cluster/health?master_timeout=5s&filter_path=status", timeout=10)
            color = health.get("status") if isinstance(health, dict) else None
            status, info = c.call("GET", "/_nodes?filter_path=nodes.*.version,nodes.*.name", timeout=10)
            versions_after = sorted({n["version"] for n in (info.get("nodes") or {}).values()})
        except RealClusterError:
            # the cluster could not be read: the figures are unknown (None), never a reassuring 0
            expected, docs_now, lost, versions_after, color = sum(c.acked.values()), None, None, [], None
        live = {n.instance_id: n for n in c.live_nodes()}
        present = {n["name"] for n in self.last_nodes}
        outdated_left = sum(1 for n in live.values() if n.name in present and self._outdated(n))
        replaced = 0
        for group in {g for g in self.initial.values()}:
            gone = sum(1 for iid, g in self.initial.items() if g == group and iid not in live)
            new = sum(1 for n in live.values() if n.group == group and n.instance_id not in self.initial
                      and n.name in present)
            replaced += min(gone, new)
        front = self.front
        with self.lock:
            return {
                "engine": "real",
                "distribution": c.family,
                "status": color,
                "versions_before": self.versions_before,
                "versions_after": versions_after,
                "docs_expected": expected,
                "docs_now": docs_now,
                "docs_lost": sum(lost.values()) if lost is not None else None,
                "docs_lost_by_index": lost,
                "red_seconds": round(self.red_seconds, 2),
                "yellow_seconds": round(self.yellow_seconds, 2),
                "degraded_seconds": round(self.degraded_seconds, 2),
                "degraded_seconds_excluding_version_skew": round(self.degraded_ex_skew, 2),
                "degraded_copy_seconds_by_reason": {k: round(v, 2) for k, v in sorted(self.degraded_by_reason.items())},
                "degraded_episodes_excluding_version_skew": list(self.episodes),
                "no_master_seconds": round(self.no_master_seconds, 2),
                "min_master_eligible_present": self.min_master_eligible,
                "max_nodes_out": self.max_nodes_out,
                "nodes_replaced": replaced,
                "outdated_nodes_at_start": self.outdated_at_start,
                "outdated_nodes_left": outdated_left,
                "unknown_requests": front.unknown_requests,
                "request_count": front.request_count,
                "mutating_requests": self.requests.mutating_requests,
                "mutations": list(self.requests.mutations),
                "internal_errors": front.internal_errors,
                "shard_bytes_moved": sum(self.recovered.values()),
                "writer_docs_indexed": c.writer_docs_indexed,
                "writer_docs_rejected": c.writer_docs_rejected,
                "wall_seconds": round(time.monotonic() - (self.started or time.monotonic()), 2),
                "lower_bound_seconds": round(self.lower_bound(), 2),
                "engine_errors": sum(1 for e in c.events if e["event"] == "engine_error"),
                "samples": self.samples,
                "sample_errors": self.sample_errors,
                "join_seconds_mean": _mean(c.join_seconds),
                "replacement_join_seconds_mean": _mean(c.replacement_join_seconds),
                "node_rss_bytes_max": max([n.rss_bytes() for n in c.live_nodes()] or [0]),
            }


def _mean(values: List[float]) -> Optional[float]:
    return round(sum(values) / len(values), 2) if values else None


def _is_master(n: Dict[str, Any]) -> bool:
    return "m" in (n.get("node.role") or "")
