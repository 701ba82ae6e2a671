"""A real cluster that follows moto's instances: a JVM per running instance, SIGKILL when it goes.

One thread (``_run``) does what EC2 and the instances' boot scripts do: a new running instance of
a scenario group starts a node with its AMI's version and the group's roles (seed hosts: the
nodes alive now); an instance that is no longer running loses its process and its disk. Scenario
faults that make sense on real nodes: ``never_join`` (the instance never starts its node),
``crash`` (the process of an initial instance is killed at a time), ``es_unavailable`` (the front
answers 503). A second thread is the continuous writer (time-based indices, acknowledged
documents counted per index), which writes to a node directly as Logstash would.
"""
from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

from .nodes import HTTP_PORT, AddressPool, RealNode

TICK = 0.2
# the launcher's own exit statuses (NodeLauncher.java): the node can never start, whatever the load
EXIT_REASONS = {3: "a class or module is missing from the class path",
                4: "its logging could not be configured from config/log4j2.properties"}


class RealClusterError(RuntimeError):
    pass


def http(base: str, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Tuple[int, Any]:
    """One request to a node; (status, parsed JSON or text). Connection failures raise OSError."""
    data = None
    headers = {}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/x-ndjson" if isinstance(body, bytes) else "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode("utf-8", "replace")


class RealCluster:
    def __init__(self, scenario: Any, world: Any, home: str) -> None:
        self.scenario = scenario
        self.world = world
        self.home = home
        self.real = scenario.real
        self.family = self.real.distribution
        self.addresses = AddressPool()
        self.lock = threading.RLock()
        self.nodes: Dict[str, RealNode] = {}  # instance id -> node (killed ones kept for the audit)
        self.events: List[Dict[str, Any]] = []
        self.formed = False
        self.formed_at: Optional[float] = None
        self.new_per_group: Dict[str, int] = {g.name: 0 for g in scenario.groups}
        self.never_join: set = set()
        self.join_seconds: List[float] = []  # JVM start -> HTTP answers, initial nodes (started together)
        self.replacement_join_seconds: List[float] = []  # the same for nodes started once the cluster formed
        self.fatal: Optional[str] = None
        self._stop = threading.Event()
        self._crash_done: set = set()
        self._boot_at: Dict[str, float] = {}  # instance id -> when its node starts (fault slow_boot)
        self.front: Any = None
        # writer bookkeeping: index -> acknowledged documents
        self.acked: Dict[str, int] = {}
        self.writer_docs_indexed = 0
        self.writer_docs_rejected = 0
        self._threads: List[threading.Thread] = []

    # ----------------------------------------------------------------- events
    def log(self, kind: str, message: str, **extra: Any) -> None:
        with self.lock:
            self.events.append({"t": round(time.time(), 3), "event": kind, "message": message, **extra})

    # ------------------------------------------------------------ membership
    def start(self) -> None:
        self._tick()  # the initial instances start their nodes now
        for target in (self._run, self._writer):
            t = threading.Thread(target=target, name=f"real-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        with self.lock:
            nodes = list(self.nodes.values())
        for n in nodes:
            n.kill(discard_data=False)

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            try:
                self._tick()
            except Exception as exc:  # a failed tick is logged and retried, never fatal to the run
                self.log("engine_error", f"{type(exc).__name__}: {exc}")

    def _tick(self) -> None:
        running: Dict[str, Tuple[str, Any]] = {}
        for group in self.scenario.groups:
            for inst in self.world.group_instances(group.name):
                state = getattr(getattr(inst, "_state", None), "name", None)
                if state == "running":
                    running[inst.id] = (group.name, inst)
        with self.lock:
            known = dict(self.nodes)
        for iid, node in known.items():
            if iid not in running and not node.killed:
                node.kill()
                self.log("node_left", f"instance {iid} is gone: node {node.name} killed (SIGKILL), its data discarded",
                         instance_id=iid, node=node.name)
            elif not node.killed and node.proc is not None and not node.alive():
                node.killed = True
                code = node.proc.returncode
                why = EXIT_REASONS.get(code, f"exit status {code}")
                self.log("node_exited", f"node {node.name} exited on its own ({why})", instance_id=iid,
                         log_tail=node.log_tail())
                if code in EXIT_REASONS or not self.formed:
                    self.fatal = f"node {node.name} ({node.family} {node.version}) exited: {why}; " \
                                 f"the end of {node.log_path}:\n{node.log_tail()}"
            elif node.up_at is None and node.alive() and self._answers(node):
                node.up_at = time.monotonic()
                (self.replacement_join_seconds if self.formed else self.join_seconds).append(
                    node.up_at - node.started_at)
                self.log("node_up", f"node {node.name} answers HTTP after {node.up_at - node.started_at:.1f}s",
                         node=node.name)
        for iid, (group, inst) in running.items():
            if iid not in known and iid not in self.never_join:
                self._launch(iid, group, inst)
        for iid, at in list(self._boot_at.items()):
            if time.monotonic() >= at:
                del self._boot_at[iid]
                if not self.nodes[iid].killed:  # its instance may have gone while it waited
                    self._start_node(self.nodes[iid])
        if self.formed:
            self._faults()

    def _answers(self, node: RealNode) -> bool:
        try:
            status, body = http(node.http, "GET", "/_nodes/_local?filter_path=nodes.*.name", timeout=1.0)
        except OSError:
            return False
        if status != 200 or not isinstance(body, dict):
            return False
        ids = list((body.get("nodes") or {}).keys())
        node.node_id = ids[0] if ids else None
        return bool(ids)

    def _launch(self, iid: str, group: str, inst: Any) -> None:
        if self.formed:
            self.new_per_group[group] += 1
            for f in self.scenario.faults:
                if f.type == "never_join" and f.group == group and f.nth_new_instance == self.new_per_group[group]:
                    self.never_join.add(iid)
                    self.log("fault", f"instance {iid} of {group} will never start its node (scenario fault)")
                    return
        version = self.world.tags(inst.image_id).get("es_version") or self.world.tags(iid).get("es_version")
        spec = next(g for g in self.scenario.groups if g.name == group)
        role = "master" if spec.roles == ["master"] else ("data" if "master" not in spec.roles else "node")
        node = RealNode(instance_id=iid, group=group, name=f"{role}-{iid[-6:]}", family=self.family,
                        version=version, roles=list(spec.roles), ip=self.addresses.take(),
                        home=os.path.join(self.home, "nodes", iid),
                        zone=str(getattr(getattr(inst, "placement", None), "zone", "") or ""))
        node.extra_settings = dict(self.real.node_settings)
        with self.lock:
            live = [n for n in self.nodes.values() if not n.killed]
            self.nodes[iid] = node
        initial = []
        if not self.formed:
            initial = self._initial_master_names()
        seeds = [n.transport for n in live] + [node.transport]
        node.write_config(self.scenario.cluster_name, seeds, initial)
        self._write_seed_files()
        late = self._boot_delay(iid)
        if late:
            self._boot_at[iid] = time.monotonic() + late
            self.log("fault", f"instance {iid} ({group}) boots {late:.0f}s after the others (scenario fault "
                     f"slow_boot)", instance_id=iid, node=node.name)
            return
        self._start_node(node)

    def _start_node(self, node: RealNode) -> None:
        node.start(self.real.heap, self.real.jvm_options)
        self.log("node_started", f"instance {node.instance_id} ({node.group}) started {self.family} {node.version} "
                 f"as {node.name} on {node.ip}", instance_id=node.instance_id, node=node.name, version=node.version)

    def _boot_delay(self, iid: str) -> float:
        for f in self.scenario.faults:
            if f.type == "slow_boot" and not self.formed and self._initial_instance(f.node) == iid:
                return f.for_seconds
        return 0.0

    def _initial_instance(self, where: str) -> str:
        """A fault's ``node: <group>/<n>``: the group's n-th initial instance."""
        group, n = where.rsplit("/", 1)
        return self.world.initial_instances[group][int(n)]

    def _write_seed_files(self) -> None:
        """Every node's ``unicast_hosts.txt`` lists every node not killed, as discovery-ec2 lists the
        running instances: a node re-reads it each discovery round. Static seeds alone let a node that
        boots slower than the others (it knew only itself) miss the cluster they formed without it, for
        good: a formed cluster stops probing for peers."""
        with self.lock:
            live = [n for n in self.nodes.values() if not n.killed]
        text = "".join(n.transport + "\n" for n in live)
        for n in live:
            path = os.path.join(n.home, "config", "unicast_hosts.txt")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(path + ".tmp", path)  # read whole or not at all

    def _initial_master_names(self) -> List[str]:
        names = []
        for g in self.scenario.groups:
            if "master" in g.roles:
                for iid in self.world.initial_instances[g.name]:
                    role = "master" if g.roles == ["master"] else "node"
                    names.append(f"{role}-{iid[-6:]}")
        return names

    def _faults(self) -> None:
        t = time.monotonic() - (self.formed_at or time.monotonic())
        for i, f in enumerate(self.scenario.faults):
            if f.type == "crash" and i not in self._crash_done and t >= f.at_seconds:
                self._crash_done.add(i)
                iid = self._initial_instance(f.node)
                node = self.nodes.get(iid)
                if node is not None and not node.killed:
                    node.kill(discard_data=False)
                    self.log("fault", f"the {self.family} process on {iid} was killed (scenario fault crash)",
                             instance_id=iid)
            elif f.type == "es_unavailable" and f.at_seconds <= t < f.at_seconds + f.for_seconds and self.front:
                self.front.unavailable_until = max(self.front.unavailable_until,
                                                   time.monotonic() + (f.at_seconds + f.for_seconds - t))

    # --------------------------------------------------------------- queries
    def live_nodes(self) -> List[RealNode]:
        with self.lock:
            return sorted((n for n in self.nodes.values() if not n.killed and n.up_at is not None and n.alive()),
                          key=lambda n: n.started_at)

    def live_http(self) -> List[str]:
        return [f"{n.ip}:{HTTP_PORT}" for n in self.live_nodes()]

    def call(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Tuple[int, Any]:
        """A request to the first live node that answers (the sandbox's own traffic, not the front's)."""
        last: Optional[Exception] = None
        for n in self.live_nodes():
            try:
                return http(n.http, method, path, body, timeout=timeout)
            except OSError as exc:
                last = exc
        raise RealClusterError(f"no live node answered {method} {path}: {last}")

    def node_by_name(self, name: str) -> Optional[RealNode]:
        with self.lock:
            for n in self.nodes.values():
                if n.name == name:
                    return n
        return None

    # ------------------------------------------------------------- formation
    def wait_formed(self, timeout: float) -> None:
        expected = sum(g.size for g in self.scenario.groups)
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.fatal:
                raise RealClusterError(self.fatal)
            try:
                status, h = self.call("GET", f"/_cluster/health?wait_for_nodes={expected}&timeout=1s", timeout=5)
                if status == 200 and h.get("number_of_nodes") == expected:
                    return
                if isinstance(h, dict) and isinstance(h.get("error"), dict):
                    last = f"_cluster/health answered {status} {h['error'].get('type')}"
                else:
                    last = f"{h.get('number_of_nodes') if isinstance(h, dict) else h} of {expected} nodes"
            except RealClusterError as exc:
                last = str(exc)
            time.sleep(0.3)
        raise RealClusterError(f"the real cluster did not form within {timeout:.0f}s ({last}); raise "
                               f"real.form_timeout in the scenario if the machine is only slow. "
                               f"What each node logged last:\n{self.node_report()}")

    def node_report(self, entries: int = 8) -> str:
        """Each node's state and the end of its log, for a message that must say why."""
        out = []
        with self.lock:
            nodes = list(self.nodes.values())
        for n in nodes:
            if n.killed:
                state = "killed"
            elif not n.alive():
                state = f"exited ({EXIT_REASONS.get(n.proc.returncode, 'exit status %s' % n.proc.returncode)})" \
                    if n.proc is not None else "never started"
            elif n.up_at is None:
                state = f"running {time.monotonic() - n.started_at:.0f}s, HTTP not answering"
            else:
                state = f"answering HTTP since {n.up_at - n.started_at:.0f}s after start"
            out.append(f"--- {n.name} ({n.family} {n.version}, {n.ip}, {state}) {n.log_path}\n"
                       f"{n.log_tail(entries).rstrip()}")
        for iid in sorted(self.never_join):
            out.append(f"--- instance {iid}: never started its node (scenario fault never_join)")
        return "\n".join(out)

    def create_indices(self) -> None:
        for ix in self.scenario.indices:
            settings = {"number_of_shards": ix.primaries, "number_of_replicas": ix.replicas, **ix.settings}
            self._ok("PUT", f"/{ix.name}", {"settings": settings})
            self.load_docs(ix.name, ix.docs, ix.size_bytes)

    def load_docs(self, index: str, docs: int, size_bytes: int) -> None:
        """``docs`` documents of about size_bytes/docs bytes each (random, so they do not compress away)."""
        per_doc = max(16, size_bytes // docs) if docs else 0
        rng = random.Random(index)
        batch: List[bytes] = []
        batch_bytes = 0
        for i in range(docs):
            pad = base64.b64encode(rng.randbytes(per_doc * 3 // 4 + 1)).decode()[:per_doc]
            batch.append(json.dumps({"index": {"_index": index, "_id": str(i)}}).encode())
            batch.append(json.dumps({"n": i, "message": f"seed document {i}", "pad": pad}).encode())
            batch_bytes += per_doc
            if batch_bytes >= 2 * 1024 * 1024 or i == docs - 1:
                self._bulk(index, batch)
                batch, batch_bytes = [], 0
        if docs:
            self._ok("POST", f"/{index}/_refresh")
            self.acked[index] = self.acked.get(index, 0) + docs

    def _bulk(self, index: str, lines: List[bytes]) -> None:
        status, body = self.call("POST", "/_bulk", b"\n".join(lines) + b"\n", timeout=120)
        if status != 200 or body.get("errors"):
            raise RealClusterError(f"loading {index} failed: {status} {str(body)[:300]}")

    def _ok(self, method: str, path: str, body: Any = None) -> Any:
        status, out = self.call(method, path, body, timeout=120)
        if status >= 300:
            raise RealClusterError(f"{method} {path} -> {status}: {str(out)[:300]}")
        return out

    def wait_green(self, timeout: float) -> None:
        status, h = self.call("GET", f"/_cluster/health?wait_for_status=green&wait_for_no_relocating_shards=true"
                                     f"&timeout={int(timeout)}s", timeout=timeout + 10)
        if status != 200 or h.get("status") != "green":
            raise RealClusterError(f"the real cluster is not green after {timeout:.0f}s: {h}")

    def mark_formed(self) -> None:
        self.formed = True
        self.formed_at = time.monotonic()
        self.log("cluster_formed", f"cluster formed with {len(self.live_nodes())} nodes")

    # --------------------------------------------------------------- writer
    def _writer(self) -> None:
        w = self.scenario.writer
        if w is None:
            return
        counter, index, next_at, carry, last = 0, None, 0.0, 0.0, time.monotonic()
        pad = "x" * max(0, w.bytes_per_doc - 60)
        while not self._stop.wait(0.5):
            if not self.formed:
                last = time.monotonic()
                continue
            now = time.monotonic()
            try:
                if index is None or now >= next_at:
                    counter += 1
                    name = f"{w.prefix}-{time.strftime('%Y.%m.%d', time.gmtime())}-{counter:06d}"
                    status, _ = self.call("PUT", f"/{name}", {"settings": {"number_of_shards": w.shards,
                                                                           "number_of_replicas": w.replicas}})
                    if status < 300:
                        index, next_at = name, now + w.every_seconds
                        self.acked.setdefault(name, 0)
            except RealClusterError:
                pass
            carry += w.docs_per_second * (now - last)
            last = now
            n = int(carry)
            if n <= 0 or index is None:
                continue
            carry -= n
            lines = []
            for _ in range(n):
                lines.append(json.dumps({"index": {"_index": index}}).encode())
                lines.append(json.dumps({"message": "writer", "pad": pad}).encode())
            ok = 0
            try:
                status, body = self.call("POST", "/_bulk", b"\n".join(lines) + b"\n", timeout=30)
                if status == 200 and isinstance(body, dict):
                    ok = sum(1 for it in body.get("items", []) if it.get("index", {}).get("status") in (200, 201))
            except RealClusterError:
                pass
            with self.lock:
                self.acked[index] = self.acked.get(index, 0) + ok
                self.writer_docs_indexed += ok
                self.writer_docs_rejected += n - ok
