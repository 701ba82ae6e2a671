"""The cluster engine: Elasticsearch nodes that follow EC2 instances in moto.

A tick thread (every ~0.15 s, under ``state.lock``) does, in order:
membership (instances -> nodes), master election and voting configuration,
shard bookkeeping for departed nodes, allocation (deciders in ``allocation.py``),
recovery progress, the continuous writer, faults, and an audit sample.

Time is ``state.now()`` (monotonic seconds since start); wall-clock
timestamps are only used where Elasticsearch shows them.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from . import allocation
from .model import Copy, Instance, Node, new_uuid, node_id_for, vtuple
from .model import epoch_ms as _ms
from .scenario import Scenario
from .state import IndexMeta, SandboxState

TICK_SECONDS = 0.1


class Cluster:
    def __init__(self, state: SandboxState, scenario: Scenario, world: Any) -> None:
        self.state = state
        self.scenario = scenario
        self.world = world
        self.cluster_uuid = new_uuid()
        self.nodes: Dict[str, Node] = {}
        self.departed: Dict[str, Node] = {}
        self.instances: Dict[str, Instance] = {}
        self.shards: Dict[str, List[List[Copy]]] = {}
        self.lost: Dict[Tuple[str, int], int] = {}  # (index, shard) -> documents lost
        self.master_id: Optional[str] = None
        self.no_master_since: Optional[float] = 0.0
        self.voting_config: List[str] = []
        self.voting_exclusions: List[Dict[str, str]] = []
        self.term = 0
        self.version = 1
        self.persistent: Dict[str, Any] = {}
        self.transient: Dict[str, Any] = {}
        self.shutdowns: Dict[str, Dict[str, Any]] = {}
        self.events: List[Dict[str, Any]] = []
        self.formed = False
        self.bootstrapped = False  # scenario indices placed as in a long-running cluster
        self.formed_at: Optional[float] = None
        self.initial_expected_nodes = sum(g.size for g in scenario.groups)
        self.new_per_group: Dict[str, int] = {g.name: 0 for g in scenario.groups}
        self.group_roles = {g.name: g.roles for g in scenario.groups}
        self.group_disk = {g.name: g.disk_bytes for g in scenario.groups}
        self.group_reuses_names = {g.name for g in scenario.groups if g.reuse_names}
        self.shard_bytes_moved = 0.0
        self.writer_index: Optional[str] = None
        self.writer_next_at: Optional[float] = None
        self.writer_counter = 0
        self.writer_carry = 0.0
        self.writer_docs_indexed = 0
        self.writer_docs_rejected = 0
        self._crash_done: set = set()
        self._last_tick = state.now()
        self._thread: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self.tick_errors: List[str] = []
        self._disk_cache: Any = None  # allocation._disk_map's per-tick cache
        self.flood_blocked: set = set()  # indices the flood-stage watermark made read-only

    # ------------------------------------------------------------------ events
    def log(self, kind: str, message: str, **extra: Any) -> None:
        self.events.append({"t": round(self.state.now(), 3), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "event": kind, "message": message, **extra})
        if len(self.events) > 5000:
            del self.events[:1000]

    # --------------------------------------------------------------- settings
    def setting(self, key: str, default: Any = None) -> Any:
        if key in self.transient:
            return self.transient[key]
        if key in self.persistent:
            return self.persistent[key]
        return default

    def settings_with_prefix(self, prefix: str) -> Dict[str, Any]:
        merged = {k: v for k, v in self.persistent.items() if k.startswith(prefix)}
        merged.update({k: v for k, v in self.transient.items() if k.startswith(prefix)})
        return merged

    # ------------------------------------------------------------ life cycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sandbox-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            with self.state.lock:
                try:
                    self.tick()
                except Exception as exc:  # keep the sandbox alive; report what broke
                    import traceback
                    self.tick_errors.append(traceback.format_exc())
                    self.log("engine_error", f"tick failed: {exc!r}")

    def tick(self) -> None:
        now = self.state.now()
        dt = max(0.0, now - self._last_tick)
        self._last_tick = now
        self._membership(now)
        self._elect(now)
        if self.master_id is not None and not self.bootstrapped and len(self.nodes) >= self.initial_expected_nodes:
            allocation.bootstrap_place(self)
            self.bootstrapped = True
        if self.master_id is not None and self.bootstrapped:
            allocation.allocate(self, now)
            allocation.apply_flood_stage(self)
        self._recover(dt)
        docs = self.state.documents
        if docs is not None and hasattr(docs, "tick"):
            docs.tick()  # reindex tasks move on with time
        if self.formed:
            self._writer(now, dt)
            self._faults(now)
        if self.state.audit is not None:
            self.state.audit.sample(now, dt)

    # ------------------------------------------------------------ membership
    def _membership(self, now: float) -> None:
        world = self.world
        current: Dict[str, str] = {}
        for group in self.scenario.groups:
            for inst in world.group_instances(group.name):
                current[inst.id] = group.name
        for iid, group in current.items():
            if iid not in self.instances:
                rec = Instance(id=iid, group=group, seen_at=now)
                if self.formed:
                    self.new_per_group[group] += 1
                    rec.ordinal_new = self.new_per_group[group]
                    for f in self.scenario.faults:
                        if f.type == "never_join" and f.group == group and f.nth_new_instance == rec.ordinal_new:
                            rec.never_join = True
                            self.log("fault", f"instance {iid} of {group} will never join (scenario fault)")
                self.instances[iid] = rec
                self._ensure_version_tag(iid, group)
        for rec in list(self.instances.values()):
            if rec.left:
                continue
            inst = world.instance(rec.id)
            state = getattr(getattr(inst, "_state", None), "name", None) or getattr(inst, "state", None)
            running = inst is not None and state == "running"
            nid = node_id_for(rec.id)
            if rec.joined and (not running or rec.crashed):
                self._node_left(nid, now, f"instance {rec.id} is {state or 'gone'}" if not running else "node crashed")
                rec.joined = False
                if not running:
                    rec.left = True
                continue
            if not running:
                if state in ("terminated", "shutting-down", None):
                    rec.left = True
                continue
            if rec.joined or rec.never_join or rec.crashed:
                continue
            if now - rec.seen_at < self.scenario.boot_to_join_seconds and self.formed:
                continue
            self._try_join(rec, inst, now)

    def _ensure_version_tag(self, iid: str, group: str) -> None:
        # moto applies the launch template's TagSpecifications; if it ever does not,
        # tag the instance as its user-data script would, from the AMI it runs.
        tags = self.world.tags(iid)
        if "es_version" in tags:
            return
        inst = self.world.instance(iid)
        version = self.world.tags(getattr(inst, "image_id", "")).get("es_version")
        if version:
            self.world.ec2.create_tags([iid], {"es_version": version})

    def _try_join(self, rec: Instance, inst: Any, now: float) -> None:
        version = self.world.tags(inst.image_id).get("es_version") or self.world.tags(rec.id).get("es_version")
        if version is None:
            return
        nid = node_id_for(rec.id)
        master = self.nodes.get(self.master_id) if self.master_id else None
        roles = list(self.group_roles[rec.group])
        if self.formed and master is None and "master" not in roles:
            return  # nothing to join yet; it keeps trying (discovery)
        reason = ""
        if not self.formed:
            pass  # the scenario's starting cluster is taken as declared (it may be mid-upgrade)
        elif master is not None and vtuple(version) < master.vt:
            reason = (f"node version [{version}] is older than the elected master's version [{master.version}]; "
                      "a node older than the master cannot join")
        elif self.nodes and vtuple(version) < min(n.vt for n in self.nodes.values()):
            low = min(self.nodes.values(), key=lambda n: n.vt).version
            reason = f"node version [{version}] may not join a cluster comprising only nodes of version [{low}] or greater"
        if reason:
            if rec.refused_logged != reason:
                rec.refused_logged = reason
                self.log("join_refused", f"instance {rec.id}: {reason}", instance_id=rec.id)
            return
        ip = inst.private_ip_address
        name = self._reused_name(rec.group) or f"{_short_role(roles)}-{rec.id[-6:]}"
        node = Node(id=nid, name=name, instance_id=rec.id, ip=ip, host=ip, version=version, roles=roles,
                    group=rec.group, joined_at=now,
                    attributes={"aws_instance_id": rec.id,
                                "aws_availability_zone": str(getattr(getattr(inst, "placement", None), "zone", "") or ""),
                                "xpack.installed": "true"},
                    disk_bytes=self.group_disk[rec.group])
        self.nodes[nid] = node
        self.departed.pop(nid, None)
        rec.joined = True
        self.version += 1
        self.log("node_joined", f"node {name} ({ip}, {version}, {','.join(roles)}) joined", node=name, node_id=nid,
                 instance_id=rec.id)

    def _reused_name(self, group: str) -> Optional[str]:
        """The name of the node of this group that left last, if no node carries it now (reuse_names)."""
        if group not in self.group_reuses_names:
            return None
        taken = {n.name for n in self.nodes.values()}
        for node in reversed(list(self.departed.values())):
            if node.group == group and node.name not in taken:
                return node.name
        return None

    def _node_left(self, nid: str, now: float, why: str) -> None:
        node = self.nodes.pop(nid, None)
        if node is None:
            return
        self.departed[nid] = node
        self.version += 1
        self.log("node_left", f"node {node.name} left: {why}", node=node.name, node_id=nid, instance_id=node.instance_id)
        if nid == self.master_id:
            self.master_id = None
            self.no_master_since = now
            self.log("master_lost", f"elected master {node.name} left; electing a new one", node=node.name)
        allocation.node_left(self, node, now)
        docs = self.state.documents
        if docs is not None and hasattr(docs, "drop_tasks_on_node"):
            vanished = docs.drop_tasks_on_node(nid)
            if vanished:
                self.log("tasks_lost", f"{vanished} running task(s) on {node.name} vanished with it", node=node.name)

    # -------------------------------------------------------------- masters
    def quorum(self) -> bool:
        if not self.voting_config:
            return False
        present = sum(1 for nid in self.voting_config if nid in self.nodes)
        return present * 2 > len(self.voting_config)

    def excluded_ids(self) -> set:
        ids = set()
        for ex in self.voting_exclusions:
            if ex["node_id"] != "_absent_":
                ids.add(ex["node_id"])
            for n in self.nodes.values():
                if n.name == ex["node_name"]:
                    ids.add(n.id)
        return ids

    def _elect(self, now: float) -> None:
        excluded = self.excluded_ids()
        if not self.formed:
            eligible = [n for n in self.nodes.values() if n.master_eligible]
            expected = sum(g.size for g in self.scenario.groups if "master" in g.roles)
            if len(eligible) < expected:
                return
            # cluster.initial_master_nodes: bootstrap with every initial master-eligible node
            self.voting_config = sorted(n.id for n in eligible)
            self._become_master(min(eligible, key=lambda n: (n.joined_at, n.name)), now)
            return
        if self.master_id is not None:
            if self.master_id in excluded:
                m = self.nodes[self.master_id]
                self.master_id = None
                self.no_master_since = now
                self.log("master_abdicated", f"elected master {m.name} is excluded from voting and abdicated",
                         node=m.name)
            elif not self.quorum():
                m = self.nodes[self.master_id]
                self.master_id = None
                self.no_master_since = now
                self.log("quorum_lost", f"master {m.name} stepped down: fewer than a majority of the voting "
                                        f"configuration ({len(self.voting_config)} nodes) remain", node=m.name)
            else:
                self._reconfigure(excluded)
                return
        if not self.quorum():
            return
        if self.no_master_since is not None and now - self.no_master_since < self.scenario.no_master_seconds:
            return
        candidates = [n for n in self.nodes.values() if n.master_eligible and n.id not in excluded]
        if not candidates:
            return
        self._become_master(min(candidates, key=lambda n: (n.joined_at, n.name)), now)
        self._reconfigure(excluded)

    def _become_master(self, node: Node, now: float) -> None:
        self.master_id = node.id
        self.no_master_since = None
        self.term += 1
        self.version += 1
        self.log("master_elected", f"node {node.name} elected master (term {self.term})", node=node.name, node_id=node.id)

    def _reconfigure(self, excluded: set) -> None:
        # Elasticsearch's Reconfigurator (auto_shrink_voting_configuration=true): the target
        # size is the live, non-excluded master-eligible count rounded down to odd, but never
        # below 3 while the current configuration has 3 or more; filled from live voters
        # (the master first), then live non-voters, then departed voters.
        def order(nid: str) -> tuple:
            return (nid != self.master_id, nid)

        eligible = [n.id for n in self.nodes.values() if n.master_eligible and n.id not in excluded]
        live_in = sorted((nid for nid in eligible if nid in self.voting_config), key=order)
        live_out = sorted((nid for nid in eligible if nid not in self.voting_config), key=order)
        gone_in = sorted(nid for nid in self.voting_config if nid not in self.nodes and nid not in excluded)
        live = len(live_in) + len(live_out)
        target = max(live if live % 2 else live - 1, 3 if len(self.voting_config) >= 3 else 1)
        new = sorted((live_in + live_out + gone_in)[:target])
        if new and new != self.voting_config:
            self.voting_config = new
            self.version += 1
            names = [self.node_name(nid) for nid in new]
            self.log("voting_config", f"voting configuration is now {names}")

    def node_name(self, nid: str) -> str:
        n = self.nodes.get(nid) or self.departed.get(nid)
        return n.name if n else nid

    # ------------------------------------------------------------- indices
    def on_index_created(self, meta: IndexMeta) -> None:
        groups = []
        for s in range(meta.number_of_shards):
            copies = [Copy(meta.name, s, True, unassigned_at=self.state.now(), unassigned_at_ms=_ms())]
            copies += [Copy(meta.name, s, False, unassigned_at=self.state.now(), unassigned_at_ms=_ms())
                       for _ in range(meta.number_of_replicas)]
            groups.append(copies)
        self.shards[meta.name] = groups
        self.version += 1
        if self.master_id is not None and self.bootstrapped:
            allocation.allocate(self, self.state.now())

    def on_index_deleted(self, name: str) -> None:
        self.shards.pop(name, None)
        self.flood_blocked.discard(name)
        for key in [k for k in self.lost if k[0] == name]:
            self.lost.pop(key)
        if self.writer_index == name:
            self.writer_index = None
        self.version += 1

    def on_index_settings_changed(self, meta: IndexMeta) -> None:
        groups = self.shards.get(meta.name)
        if groups is None:
            return
        for copies in groups:
            replicas = [c for c in copies if not c.primary]
            want = meta.number_of_replicas
            while len(replicas) < want:
                c = Copy(meta.name, copies[0].shard, False, unassigned_reason="REPLICA_ADDED",
                         unassigned_at=self.state.now(), unassigned_at_ms=_ms())
                copies.append(c)
                replicas.append(c)
            order = {"UNASSIGNED": 0, "INITIALIZING": 1, "RELOCATING": 2, "STARTED": 3}
            for c in sorted(replicas, key=lambda c: order[c.state])[: max(0, len(replicas) - want)]:
                copies.remove(c)
            # Elasticsearch reads delayed_timeout when it decides, not when the node left: a new value
            # (0: "the node will not return") applies to replicas already waiting.
            now = self.state.now()
            for c in replicas:
                if c.state == "UNASSIGNED" and c.unassigned_reason == "NODE_LEFT" and c.delayed_until > now:
                    c.delayed_until = c.unassigned_at + allocation.delayed_timeout_seconds(self, meta.name)
        self.version += 1
        if self.master_id is not None and self.bootstrapped:
            allocation.allocate(self, self.state.now())

    def primary_active(self, index: str, shard: int) -> bool:
        if self.master_id is None:
            return False
        groups = self.shards.get(index)
        if not groups or shard >= len(groups):
            return False
        return any(c.primary and c.state in ("STARTED", "RELOCATING") for c in groups[shard])

    def health_of_index(self, index: str) -> str:
        groups = self.shards.get(index, [])
        status = "green"
        for copies in groups:
            for c in copies:
                if c.state in ("STARTED", "RELOCATING"):
                    continue
                if c.primary:
                    return "red"
                status = "yellow"
        return status

    def task_node(self) -> Tuple[str, str]:
        """The node a new task (reindex) runs on: the first data node; if it leaves, the task vanishes."""
        data = sorted((n for n in self.nodes.values() if n.is_data), key=lambda n: n.name)
        n = data[0] if data else next(iter(self.nodes.values()), None)
        return (n.id, n.name) if n else ("_na_", "_na_")

    def all_copies(self):
        for groups in self.shards.values():
            for copies in groups:
                yield from copies

    def shard_size(self, index: str, shard: int) -> int:
        meta = self.state.indices.get(index)
        if meta is None or shard >= len(meta.size_bytes):
            return 0
        return int(meta.size_bytes[shard])

    def disk_used_map(self) -> Dict[str, int]:
        """node id -> bytes of shard data on its disk now, in one pass over the copies."""
        used: Dict[str, float] = {}
        for c in self.all_copies():
            size = self.shard_size(c.index, c.shard)
            if c.node_id and c.state in ("STARTED", "RELOCATING"):
                used[c.node_id] = used.get(c.node_id, 0.0) + size
            elif c.node_id and c.state == "INITIALIZING":
                used[c.node_id] = used.get(c.node_id, 0.0) + max(0.0, size - c.recovery_left)
            if c.relocating_node_id:
                used[c.relocating_node_id] = used.get(c.relocating_node_id, 0.0) + max(0.0, size - c.recovery_left)
        return {k: int(v) for k, v in used.items()}

    def status(self) -> str:
        status = "green"
        for name in self.shards:
            h = self.health_of_index(name)
            if h == "red":
                return "red"
            if h == "yellow":
                status = "yellow"
        return status

    # ------------------------------------------------------------ recovery
    def bandwidth(self) -> float:
        bps = self.scenario.recovery_bytes_per_second
        for f in self.scenario.faults:
            if f.type == "slow_recovery" and self.formed_at is not None:
                t = self.state.now() - self.formed_at
                if t >= f.at_seconds and (f.for_seconds <= 0 or t < f.at_seconds + f.for_seconds):
                    bps *= f.factor
        return bps

    def _recover(self, dt: float) -> None:
        # indices.recovery.max_bytes_per_sec is one rate limiter per node that both the
        # chunks a node sends and those it receives pass through (RecoverySettings.rateLimiter
        # on the source and on the target side): a node's inbound plus outbound recovery
        # traffic stays under the limit. Copies share it max-min fairly: what one copy cannot
        # use (its other end is the bottleneck) goes to the others.
        moving: List[tuple] = []  # (copy, target node, source node or None)
        for c in self.all_copies():
            if c.state == "INITIALIZING" and c.node_id:
                target, source = c.node_id, c.recovery_source
            elif c.state == "RELOCATING" and c.relocating_node_id:
                # a replica copies from its primary's node, not from the node it leaves
                target, source = c.relocating_node_id, allocation.relocation_source(self, c)
                if source is None:
                    continue  # no active primary to copy from: the recovery waits
            else:
                continue
            if c.recovery_started >= self._last_tick:
                continue  # started in this very tick
            moving.append((c, target, source))
        if not moving:
            return
        rates = fair_shares([[t] + ([s] if s else []) for _, t, s in moving],
                            [c.recovery_left for c, _, _ in moving], self.bandwidth() * dt)
        for (c, _, _), moved in zip(moving, rates):
            c.recovery_left -= moved
            self.shard_bytes_moved += moved
            if c.recovery_left <= 1e-6:
                allocation.recovery_done(self, c)

    # --------------------------------------------------------------- writer
    def _writer(self, now: float, dt: float) -> None:
        w = self.scenario.writer
        if w is None:
            return
        if self.writer_next_at is None or now >= self.writer_next_at:
            if self.master_id is not None:
                self.writer_counter += 1
                name = f"{w.prefix}-{time.strftime('%Y.%m.%d', time.gmtime())}-{self.writer_counter:06d}"
                if name not in self.state.indices:
                    create_index(self.state, name, w.shards, w.replicas, docs=0, size_bytes=0)
                self.writer_index = name
                self.writer_next_at = now + w.every_seconds
        if self.writer_index is None:
            return
        self.writer_carry += w.docs_per_second * dt
        n = int(self.writer_carry)
        if n <= 0:
            return
        self.writer_carry -= n
        meta = self.state.indices.get(self.writer_index)
        if meta is None:
            return
        per_shard: Dict[int, int] = {}
        for i in range(n):
            shard = (self.writer_docs_indexed + self.writer_docs_rejected + i) % meta.number_of_shards
            per_shard[shard] = per_shard.get(shard, 0) + 1
        store = self.state.documents
        for shard, count in sorted(per_shard.items()):
            if store is not None and hasattr(store, "write_synthetic"):
                # the documents half refuses as ES would: write block, no active primary
                accepted = store.write_synthetic(meta.name, shard, count, bytes_per_doc=w.bytes_per_doc)
            else:
                accepted = self.primary_active(meta.name, shard) and not meta.write_block
                if accepted:
                    meta.synthetic_docs[shard] += count
                    meta.size_bytes[shard] += count * w.bytes_per_doc
            if accepted and (meta.name, shard) not in self.lost:
                self.writer_docs_indexed += count
            else:
                self.writer_docs_rejected += count

    # --------------------------------------------------------------- faults
    def _faults(self, now: float) -> None:
        t = now - (self.formed_at or now)
        for i, f in enumerate(self.scenario.faults):
            if f.type == "crash" and i not in self._crash_done and t >= f.at_seconds:
                self._crash_done.add(i)
                group, n = f.node.rsplit("/", 1)
                iid = self.world.initial_instances[group][int(n)]
                rec = self.instances.get(iid)
                if rec is not None:
                    rec.crashed = True
                    self.log("fault", f"the Elasticsearch process on {iid} crashed (scenario fault)", instance_id=iid)
            elif f.type == "es_unavailable" and f.at_seconds <= t < f.at_seconds + f.for_seconds:
                until = self.state.now() + (f.at_seconds + f.for_seconds - t)
                if getattr(self.state, "unavailable_until", 0.0) < until:
                    self.state.unavailable_until = until

    # ------------------------------------------------------------- formation
    def mark_formed(self) -> None:
        self.formed = True
        self.formed_at = self.state.now()
        self._faults(self.formed_at)  # faults due at 0 s hold from the first request on
        self.log("cluster_formed", f"cluster formed with {len(self.nodes)} nodes, status {self.status()}")

    def is_green_and_complete(self) -> bool:
        return (self.master_id is not None and len(self.nodes) >= self.initial_expected_nodes
                and self.status() == "green"
                and all(c.state == "STARTED" for c in self.all_copies()))


def _short_role(roles: List[str]) -> str:
    master = "master" in roles
    data = any(r.startswith("data") for r in roles)
    if master and not data:
        return "master"
    if master and data:
        return "node"
    tiers = [r[5:] for r in roles if r.startswith("data_") and r not in ("data_content",)]
    return "data" if "data" in roles or len(tiers) != 1 else tiers[0]


def create_index(state: SandboxState, name: str, shards: int, replicas: int, docs: int, size_bytes: int,
                 settings: Optional[Dict[str, str]] = None) -> IndexMeta:
    """Create an index holding ``docs`` synthetic documents of ``size_bytes`` in all
    (scenario indices, the continuous writer). Goes through the documents half's
    store when present (templates, its bookkeeping); otherwise builds the shared
    IndexMeta itself (the contract in state.py)."""
    docs_per = [docs // shards + (1 if s < docs % shards else 0) for s in range(shards)]
    size_per = [size_bytes // shards + (1 if s < size_bytes % shards else 0) for s in range(shards)]
    flat = {"index.number_of_shards": str(shards), "index.number_of_replicas": str(replicas)}
    flat.update(settings or {})
    store = state.documents
    if store is not None and hasattr(store, "create_index"):
        meta = store.create_index(name, settings=flat)
        if docs:
            store.add_synthetic_docs(name, docs, bytes_per_doc=max(1, size_bytes // docs))
        meta.synthetic_docs[:] = docs_per
        meta.size_bytes[:] = size_per
        return meta
    flat.update({"index.uuid": new_uuid(), "index.creation_date": str(_ms()), "index.provided_name": name,
                 "index.version.created": "8500003"})
    meta = IndexMeta(name=name, uuid=flat["index.uuid"], number_of_shards=shards, number_of_replicas=replicas,
                     settings=flat, mappings={}, aliases={}, creation_date_ms=int(flat["index.creation_date"]),
                     docs=[{} for _ in range(shards)], synthetic_docs=docs_per, size_bytes=size_per)
    state.indices[name] = meta
    if state.engine is not None:
        state.engine.on_index_created(meta)
    return meta


def fair_shares(links: List[List[Any]], demands: List[float], capacity: float) -> List[float]:
    """Max-min fair rates (progressive filling): flow i crosses links[i] (each link carries
    ``capacity``) and wants at most demands[i]. The tightest link or demand is filled first and
    what it leaves over goes to the flows not yet limited."""
    left = {link: capacity for flow in links for link in flow}
    rates = [0.0] * len(links)
    active = set(range(len(links)))
    while active:
        share, tight = None, None
        for link, cap in left.items():
            users = [i for i in active if link in links[i]]
            if users and (share is None or cap / len(users) < share):
                share, tight = cap / len(users), users
        small = [i for i in active if demands[i] <= share]
        if small:  # a flow that wants less than its share is limited by itself
            tight = [min(small, key=lambda i: demands[i])]
            share = demands[tight[0]]
        share = max(share, 0.0)  # rounding must not make a link give bytes back
        for i in tight:
            rates[i] = share
            for link in links[i]:
                left[link] -= share
            active.discard(i)
    return rates

