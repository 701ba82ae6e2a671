"""The one shared object of the sandbox, and the contract between its halves.

The sandbox has two halves that meet only here:

* the cluster (``model.py``, ``engine.py``, ``allocation.py``, with ``aws.py``,
  ``audit.py``, ``scenario.py``): nodes that follow the EC2 instances in moto, shard
  copies and their allocation/recovery, master election, voting configuration,
  settings, node shutdown, the audit; ``cluster_api/`` serves its endpoints;
* the HTTP API (``es_api/``): the server, TLS, auth, version presentation,
  routing and parameter validation by the Elasticsearch REST spec, error shapes,
  and the documents half (``store.py``, ``indices.py``, ``documents.py``: indices,
  bulk, count, search, aliases, templates, reindex, tasks) with the index metadata
  and documents.

The layout, module by module: sandbox/README.md.

Every handler runs under ``state.lock``; the engine's tick thread takes the same
lock, so a request sees one consistent cluster.
"""
from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple


@dataclass
class Request:
    """A routed request, as handlers receive it."""

    method: str
    path: str
    api: str  # the REST spec API name, e.g. "cluster.health"
    parts: Dict[str, str]  # path parts, e.g. {"index": "logs-1"}
    params: Dict[str, str]  # query parameters, already validated against the spec
    body: Any  # parsed JSON, a list of parsed NDJSON lines for bulk, or None
    headers: Dict[str, str]


@dataclass
class Response:
    status: int
    body: Any  # dict/list -> JSON; str -> text/plain (the _cat APIs without format=json)
    headers: Dict[str, str] = field(default_factory=dict)


Handler = Callable[["SandboxState", Request], Response]


@dataclass
class IndexMeta:
    """One index. Owned by es_api/store.py (the documents half); the engine reads it and places its shards.

    Documents: ``docs[shard]`` maps _id -> source for documents indexed through the
    API; ``synthetic_docs[shard]`` counts documents the scenario declared without
    bodies (millions of them would not fit in memory as dicts). Counts are the sum.
    ``size_bytes[shard]`` drives recovery time in the engine.
    """

    name: str
    uuid: str
    number_of_shards: int
    number_of_replicas: int
    settings: Dict[str, Any]  # flat "index.*" settings as strings, ES style
    mappings: Dict[str, Any]
    aliases: Dict[str, Dict[str, Any]]
    creation_date_ms: int
    docs: List[Dict[str, Any]]
    synthetic_docs: List[int]
    size_bytes: List[int]
    write_block: bool = False
    read_only_allow_delete: bool = False

    def doc_count(self, shard: Optional[int] = None) -> int:
        shards = range(self.number_of_shards) if shard is None else [shard]
        return sum(len(self.docs[s]) + self.synthetic_docs[s] for s in shards)


class SandboxState:
    """Shared state. Attributes are filled by the halves at start-up."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.started_monotonic = time.monotonic()
        self.indices: Dict[str, IndexMeta] = {}  # documents half owns writes
        self.templates: Dict[str, Dict[str, Any]] = {}  # composable index templates
        self.handlers: Dict[str, Handler] = {}  # API name -> handler, both halves register
        self.engine: Any = None  # engine.Cluster
        self.documents: Any = None  # es_api.store.DocumentStore
        self.audit: Any = None  # audit.Audit
        # Handlers that wait (wait_for_completion, health waits) sleep on this; its wait()
        # releases every level of the RLock, so other requests and the tick thread go on.
        self.changed = threading.Condition(self.lock)
        self.request_count = 0
        self.request_log: List[Tuple[str, str, int]] = []  # (method, path, status) of every request
        self.unknown_requests: List[str] = []  # "METHOD path" of requests no handler knew
        self.internal_errors: List[str] = []  # "METHOD uri: Error: text" of handler bugs answered 500
        self.unavailable_until = 0.0  # state.now() until which the server answers 503 (fault es_unavailable)
        self.es_version = "8.15.0"  # what "/" reports; set from the scenario
        self.cluster_name = "sandbox"  # set from the scenario
        self.cluster_uuid = hashlib.sha1(str(id(self)).encode()).hexdigest()[:22]  # the engine's, once it runs

    def now(self) -> float:
        """Seconds since the sandbox started (monotonic)."""
        return time.monotonic() - self.started_monotonic

    def register(self, api: str, handler: Handler) -> None:
        self.handlers[api] = handler


# Hooks the engine implements and the documents half calls (under state.lock):
#   engine.on_index_created(meta: IndexMeta) -> None      # allocate its shards
#   engine.on_index_deleted(name: str) -> None
#   engine.on_index_settings_changed(meta: IndexMeta) -> None  # replicas, allocation filters
#   engine.primary_active(index: str, shard: int) -> bool  # writes to a shard with no
#                                                         # active primary fail (503-like)
#   engine.health_of_index(index: str) -> str             # green/yellow/red
# Hooks the documents half implements and the engine calls:
#   documents.drop_shard(index: str, shard: int) -> int   # every copy is gone: its
#                                                         # documents are lost; returns how many
