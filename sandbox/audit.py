"""The audit: what happened to the cluster, sampled every engine tick.

Figures count from the moment the cluster formed (before that nothing was
promised). ``report()`` is the JSON the CLI prints as its last line.

Definitions:
* ``docs_expected`` = documents in the cluster now + ``docs_lost``.
* ``docs_lost``: acknowledged documents (client writes and scenario data, by the index
  name or alias they were written to) that can no longer be found under that name,
  whoever removed them: a shard whose every copy went away, an index deleted while it
  held the only copy (a reindex's temporary copies are not client writes). Deleting a
  document through the API is not a loss.
* ``degraded_seconds``: time with any wanted shard copy not started (unassigned
  or initializing; a relocating copy still serves). ``..._excluding_version_skew``
  leaves out the time when the only missing copies were replicas blocked solely by
  the ``node_version`` decider, or such a replica's catch-up recovery once a node new
  enough joined (``INITIALIZING:after_node_version``). ``degraded_copy_seconds_by_reason`` splits the missing
  copies by state/unassigned reason in copy-seconds (two copies missing for 1 s count 2).
  ``degraded_episodes_excluding_version_skew`` lists the last spans of the latter: when
  (seconds from formation), how long, and which copies were missing.
* ``max_nodes_out``: the most nodes missing at once against the expected size
  (sum of the groups' sizes in the scenario).
* ``lower_bound_seconds``: the time an ideal one-at-a-time replacement of the
  nodes outdated at start needs under the scenario's figures:
  sum over those nodes of (boot_to_join_seconds + bytes of the shard copies on
  the node at start / recovery_bytes_per_second), plus one election
  (no_master_seconds) when the elected master is among them.
* ``mutating_requests``: requests that ask to change the cluster, its settings, indices
  or documents: method PUT/POST/DELETE/PATCH, except the APIs in ``READ_ONLY_APIS``
  (searches, counts, allocation explain, refresh/flush, ...), whatever the answer (an
  attempt is already a bug in check mode), and requests to paths no API knows. Check mode
  must leave it unchanged; ``mutations`` lists the last ones as "METHOD path -> status".
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

from . import allocation

MUTATING_METHODS = {"PUT", "POST", "DELETE", "PATCH"}
# APIs Elasticsearch lets clients send with POST (or DELETE) that change nothing a user
# could see: reads with a body, explain, and refresh/flush (visibility and durability only).
READ_ONLY_APIS = {
    "search", "count", "msearch", "search_template", "msearch_template", "render_search_template", "scroll",
    "clear_scroll", "open_point_in_time", "close_point_in_time", "field_caps", "explain", "mget", "termvectors",
    "mtermvectors", "indices.validate_query", "indices.analyze", "indices.simulate_index_template",
    "indices.simulate_template", "cluster.allocation_explain", "indices.refresh", "indices.flush",
}
MUTATIONS_KEPT = 100
EPISODES_KEPT = 50


class RequestLog:
    """The mutating requests among those a server logged, for either engine.

    The simulator's HTTP server and the real engine's front each keep a capped log of
    (method, path, status) and a count of every request; ``take`` classifies what came since the
    last call (the caller holds the lock the server writes the log under)."""

    def __init__(self) -> None:
        self.seen = 0  # the server's request count already classified
        self.mutating_requests = 0
        self.mutations: List[str] = []  # the last MUTATIONS_KEPT, "METHOD path -> status"

    def take(self, log: List[Tuple[str, str, int]], count: int) -> None:
        new = count - self.seen
        if new <= 0:
            return
        entries = list(log[-new:]) if new <= len(log) else list(log)
        self.seen = count
        for method, path, status in entries:
            if method in MUTATING_METHODS and _api_of(method, path) not in READ_ONLY_APIS:
                self.mutating_requests += 1
                self.mutations.append(f"{method} {path} -> {status}")
        del self.mutations[:-MUTATIONS_KEPT]


class Audit:
    def __init__(self, state: Any, cluster: Any) -> None:
        self.state = state
        self.cluster = cluster
        self.started: Optional[float] = None
        self.red_seconds = 0.0
        self.yellow_seconds = 0.0
        self.degraded_seconds = 0.0
        self.degraded_ex_skew = 0.0
        self.no_master_seconds = 0.0
        self.degraded_by_reason: Dict[str, float] = {}  # "<STATE>[:<reason>]" -> copy-seconds
        self.min_master_eligible: Optional[int] = None
        self.max_nodes_out = 0
        self.lower_bound = 0.0
        self.initial_nodes: Dict[str, str] = {}  # node id -> group
        self.outdated_at_start = 0
        self.state_dir: Optional[str] = None
        self._events_written = 0
        self._events_file_made = False  # events.jsonl, written (even empty) once the cluster formed
        self.requests = RequestLog()
        # spans of degradation not explained by version skew: when, how long, which copies
        self.episodes: list = []
        self._episode: Optional[Dict[str, Any]] = None
        self._skew_blocked: set = set()  # (index, shard) of replicas seen blocked only by node_version

    def begin(self) -> None:
        """Called when the cluster has formed and the roll-to version exists."""
        c = self.cluster
        self.started = self.state.now()
        self.initial_nodes = {n.id: n.group for n in c.nodes.values()}
        sc = c.scenario
        bytes_on: Dict[str, float] = {}
        for copy in c.all_copies():
            if copy.node_id:
                bytes_on[copy.node_id] = bytes_on.get(copy.node_id, 0) + c.shard_size(copy.index, copy.shard)
        lb, outdated = 0.0, 0
        for n in c.nodes.values():
            if self._outdated(n):
                outdated += 1
                lb += sc.boot_to_join_seconds + bytes_on.get(n.id, 0) / sc.recovery_bytes_per_second
        if c.master_id in c.nodes and self._outdated(c.nodes[c.master_id]):
            lb += sc.no_master_seconds  # replacing the elected master costs one election, whoever does it
        self.lower_bound = lb
        self.min_master_eligible = sum(1 for n in c.nodes.values() if n.master_eligible)
        self.outdated_at_start = outdated
        self.requests.seen = self.state.request_count  # requests before formation are the sandbox's own set-up

    def _classify_requests(self) -> None:
        """Classify the requests logged since the last call (the server logs each with the count)."""
        if self.started is None:
            return
        with self.state.lock:  # the tick thread and audit readers both call this
            self.requests.take(self.state.request_log, self.state.request_count)

    def _outdated(self, node: Any) -> bool:
        world = self.cluster.world
        current = world.current_template(node.group)
        inst = world.instance(node.instance_id)
        image = getattr(inst, "image_id", None)
        tag = world.tags(node.instance_id).get("es_version")
        return (current["image_id"] is not None and image != current["image_id"]) or \
            (current["es_version"] is not None and tag != current["es_version"])

    def sample(self, now: float, dt: float) -> None:
        c = self.cluster
        if self.started is None:
            return
        status = c.status()
        if status == "red":
            self.red_seconds += dt
        elif status == "yellow":
            self.yellow_seconds += dt
        missing = [x for x in c.all_copies() if x.state in ("UNASSIGNED", "INITIALIZING")]
        if missing:
            self.degraded_seconds += dt
            skew = [allocation.version_skew_only(c, x) for x in missing]
            for x, is_skew in zip(missing, skew):
                if is_skew:
                    self._skew_blocked.add((x.index, x.shard))
            # the catch-up recovery of a replica the version skew kept unassigned ends that block
            after = [not is_skew and not x.primary and x.state == "INITIALIZING" and x.relocating_node_id is None
                     and (x.index, x.shard) in self._skew_blocked for x, is_skew in zip(missing, skew)]
            skew = [a or b for a, b in zip(skew, after)]
            if not all(skew):
                self.degraded_ex_skew += dt
                self._note_episode(now, dt, [x for x, is_skew in zip(missing, skew) if not is_skew])
            else:
                self._episode = None
            for x, is_skew, is_after in zip(missing, skew, after):
                key = "INITIALIZING:after_node_version" if is_after else "UNASSIGNED:node_version" if is_skew else \
                    (x.state if x.state != "UNASSIGNED" else f"UNASSIGNED:{x.unassigned_reason}")
                key += ":primary" if x.primary else ""
                self.degraded_by_reason[key] = self.degraded_by_reason.get(key, 0.0) + dt
        else:
            self._episode = None
        still = {(x.index, x.shard) for x in missing}
        self._skew_blocked &= still
        if c.master_id is None:
            self.no_master_seconds += dt
        masters = sum(1 for n in c.nodes.values() if n.master_eligible)
        self.min_master_eligible = masters if self.min_master_eligible is None else min(self.min_master_eligible, masters)
        self.max_nodes_out = max(self.max_nodes_out, c.initial_expected_nodes - len(c.nodes))
        self._classify_requests()
        self.flush_events()

    def _note_episode(self, now: float, dt: float, copies: list) -> None:
        if self._episode is None:
            self._episode = {"at_seconds": round(now - dt - self.started, 2), "seconds": 0.0, "copies": []}
            self.episodes.append(self._episode)
            del self.episodes[:-EPISODES_KEPT]
        self._episode["seconds"] = round(self._episode["seconds"] + dt, 2)
        for x in copies:
            what = x.state if x.state != "UNASSIGNED" else f"UNASSIGNED:{x.unassigned_reason}"
            label = f"[{x.index}][{x.shard}]{'p' if x.primary else 'r'} {what}"
            if label not in self._episode["copies"] and len(self._episode["copies"]) < 10:
                self._episode["copies"].append(label)

    def flush_events(self) -> None:
        if not self.state_dir:
            return
        events = self.cluster.events
        if self._events_written > len(events):
            self._events_written = 0
        new = events[self._events_written:]
        if not new and self._events_file_made:
            return
        with open(os.path.join(self.state_dir, "events.jsonl"), "a", encoding="utf-8") as fh:
            for e in new:
                fh.write(json.dumps(e) + "\n")
        self._events_written = len(events)
        self._events_file_made = True

    def report(self) -> Dict[str, Any]:
        self._classify_requests()
        c = self.cluster
        now = self.state.now()
        docs_now = sum(m.doc_count() for m in self.state.indices.values())
        # Every acknowledged document no longer retrievable under the name it was written to,
        # whoever removed it (a lost shard, a deleted index); the engine's count without the ledger.
        docs = self.state.documents
        docs_lost = docs.docs_unretrievable() if hasattr(docs, "docs_unretrievable") else sum(c.lost.values())
        gone = {nid for nid in self.initial_nodes if nid not in c.nodes}
        joined_new: Dict[str, int] = {}
        for n in c.nodes.values():
            if n.id not in self.initial_nodes:
                joined_new[n.group] = joined_new.get(n.group, 0) + 1
        gone_per_group: Dict[str, int] = {}
        for nid in gone:
            g = self.initial_nodes[nid]
            gone_per_group[g] = gone_per_group.get(g, 0) + 1
        replaced = sum(min(v, joined_new.get(g, 0)) for g, v in gone_per_group.items())
        outdated_left = sum(1 for n in c.nodes.values() if self._outdated(n))
        return {
            "scenario": c.scenario.name,
            "docs_expected": docs_now + docs_lost,
            "docs_lost": docs_lost,
            "docs_now": docs_now,
            "red_seconds": round(self.red_seconds, 2),
            "yellow_seconds": round(self.yellow_seconds, 2),
            "degraded_seconds": round(self.degraded_seconds, 2),
            "degraded_seconds_excluding_version_skew": round(self.degraded_ex_skew, 2),
            "degraded_copy_seconds_by_reason": {k: round(v, 2) for k, v in sorted(self.degraded_by_reason.items())},
            "degraded_episodes_excluding_version_skew": [dict(e) for e in self.episodes],
            "no_master_seconds": round(self.no_master_seconds, 2),
            "min_master_eligible_present": self.min_master_eligible,
            "max_nodes_out": self.max_nodes_out,
            "nodes_replaced": replaced,
            "outdated_nodes_at_start": self.outdated_at_start,
            "outdated_nodes_left": outdated_left,
            "status": c.status(),
            "nodes": len(c.nodes),
            "unknown_requests": len(self.state.unknown_requests),
            "internal_errors": len(getattr(self.state, "internal_errors", [])),  # handler bugs answered 500
            "request_count": self.state.request_count,
            "mutating_requests": self.requests.mutating_requests,
            "mutations": list(self.requests.mutations),
            "shard_bytes_moved": int(c.shard_bytes_moved),
            "writer_docs_indexed": c.writer_docs_indexed,
            "writer_docs_rejected": c.writer_docs_rejected,
            "wall_seconds": round(now - self.started, 2) if self.started is not None else 0.0,
            "lower_bound_seconds": round(self.lower_bound, 2),
            "engine_errors": len(c.tick_errors),
        }


def _api_of(method: str, path: str) -> Optional[str]:
    """The REST spec API a logged request went to (None when no API takes it)."""
    import urllib.parse

    from .es_api.spec import router

    segs = [urllib.parse.unquote(x) for x in path.split("/") if x]
    route, _, _ = router().resolve(method, segs)
    return route.api if route is not None else None
