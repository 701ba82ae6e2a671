"""Indices, documents, templates, aliases, reindex and tasks of the sandbox.

``install(state)`` creates the :class:`DocumentStore` (``state.documents``) and registers
the index/document API handlers. Behaviour our modules depend on follows Elasticsearch:

* composable index templates apply to new indices (highest priority wins);
* dynamic mapping of new fields; a value that cannot be parsed as its mapped type is
  rejected naming the field, in ``_bulk`` items and in reindex task failures;
* write blocks reject writes with ``cluster_block_exception`` (403);
* documents become visible to ``_count``/``_search`` only after a refresh: with
  ``refresh_interval: -1`` only an explicit ``_refresh`` shows them;
* a reindex with ``wait_for_completion=false`` is a task progressing at a configurable
  rate, stopping at the first batch with failures; its result stays readable at
  ``_tasks/<id>`` after it finished (Elasticsearch's ``.tasks`` index);
* ``indices.stats`` counts indexing operations (``indexing.index_total``);
* writes to a shard without an active primary wait for one (``timeout``, default 1m),
  then fail with ``unavailable_shards_exception``.

It works with ``state.engine`` None (single node, every primary active).
"""
from __future__ import annotations

import base64
import copy
import fnmatch
import json
import time
import uuid as uuidlib
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from sandbox import units
from sandbox.state import IndexMeta, Request, Response

from . import mapping as mp
from .errors import ESError, illegal_argument, index_not_found
from .query import aggregate, iter_matching
from .server import version_tuple

DEFAULT_REINDEX_RATE = 2000.0  # docs/s a reindex task copies when not throttled
_NON_DYNAMIC = {"index.number_of_shards", "index.routing_partition_size", "index.codec"}


# --- small helpers -----------------------------------------------------------------

def _uuid() -> str:
    return base64.urlsafe_b64encode(uuidlib.uuid4().bytes).decode().rstrip("=")[:22]


def parse_time(value: Any, default: float, name: str = "timeout") -> float:
    """Seconds of an Elasticsearch time value ("30s", "1m", "500ms"); -1.0 for "-1"."""
    try:
        return units.time_param(value, default, name)
    except ValueError as exc:
        raise illegal_argument(str(exc)) from None


def _obj(value: Any, field: str, ctx: str) -> Dict[str, Any]:
    """A body field that must be a JSON object (absent: {}); ES's parser error otherwise."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ESError(400, "x_content_parse_exception", "[1:2] [%s] failed to parse field [%s]" % (ctx, field))
    return value


def _int_field(value: Any, field: str, ctx: str) -> int:
    """A body field that must be an integer (a numeric string is accepted, as ES coerces it)."""
    if isinstance(value, bool) or not isinstance(value, (int, str, float)):
        raise ESError(400, "x_content_parse_exception", "[1:2] [%s] failed to parse field [%s]" % (ctx, field))
    try:
        return int(value)
    except ValueError:
        raise ESError(400, "x_content_parse_exception", "[1:2] [%s] failed to parse field [%s]" % (ctx, field),
                      caused_by={"type": "number_format_exception", "reason": "For input string: \"%s\"" % value})


def _source_int(value: Any) -> int:
    """An integer of the search source: its parser lets NumberFormatException through."""
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ESError(400, "number_format_exception", "For input string: \"%s\"" % value)


def _num_param(params: Dict[str, str], name: str, default: Any, kind: type = int) -> Any:
    """A numeric query parameter, refused as RestRequest.paramAsInt/paramAsFloat refuse it."""
    if name not in params:
        return default
    try:
        return kind(params[name])
    except ValueError:
        raise illegal_argument("Failed to parse %s parameter [%s] with value [%s]"
                               % ("int" if kind is int else "float", name, params[name]))


def _setting_int(flat: Dict[str, Optional[str]], key: str, default: str) -> int:
    value = flat.get(key) or default
    try:
        return int(value)
    except ValueError:
        raise illegal_argument("Failed to parse value [%s] for setting [%s]" % (value, key))


def _bool(params: Dict[str, str], name: str, default: bool = False) -> bool:
    if name not in params:
        return default
    v = params[name]
    if v in ("", "true"):
        return True
    if v == "false":
        return False
    raise illegal_argument("Failed to parse value [%s] as only [true] or [false] are allowed." % v)


def flatten_settings(settings: Optional[Dict[str, Any]]) -> Dict[str, Optional[str]]:
    """{"index": {"number_of_shards": 1}} or {"number_of_shards": 1} -> {"index.number_of_shards": "1"}."""
    return {(k if k.startswith("index.") else "index." + k): units.setting_text(v)
            for k, v in units.flatten(settings or {}).items()}


nest_settings = units.nest


def shard_of(doc_id: str, routing: Optional[str], shards: int) -> int:
    return zlib.crc32((routing or doc_id).encode("utf-8")) % shards


_INVALID_CHARS = set('\\/*?"<>| ,#:')


def validate_index_name(name: str) -> None:
    def bad(why: str) -> ESError:
        return ESError(400, "invalid_index_name_exception", "Invalid index name [%s], %s" % (name, why),
                       index_uuid="_na_", index=name)
    if name != name.lower():
        raise bad("must be lowercase")
    if name[0] in "_-+":
        raise bad("must not start with '_', '-', or '+'")
    if any(c in _INVALID_CHARS for c in name):
        raise bad('must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]')
    if name in (".", ".."):
        raise bad("must not be '.' or '..'")


# --- per-index bookkeeping not in IndexMeta ---------------------------------------------

@dataclass
class IndexExtra:
    versions: List[Dict[str, int]]
    pending: List[Dict[str, float]]  # shard -> {_id: time it becomes visible}
    seq_no: List[int]
    index_total: int = 0
    index_failed: int = 0
    # index operations per shard, and (primary's node, count when it started there): a shard
    # copy's indexing stats start at 0 on the node it relocates to, as Elasticsearch's do
    shard_totals: List[int] = field(default_factory=list)
    stats_base: Dict[int, Tuple[Optional[str], int]] = field(default_factory=dict)
    delete_total: int = 0
    refresh_total: int = 0


@dataclass
class ReindexTask:
    id: int
    node: str
    node_name: str
    description: str
    dest: str
    op_type: str
    version_type: str
    conflicts: str
    size: int
    rate: float  # docs/s
    rps: float
    slices: int
    store_result: bool
    queue: List[Tuple[str, Dict[str, Any], int]]
    synthetic: int
    start_wall_ms: int
    start: float
    total: int = 0
    created: int = 0
    updated: int = 0
    batches: int = 0
    version_conflicts: int = 0
    noops: int = 0
    done: bool = False
    canceled: Optional[str] = None
    failures: List[Dict[str, Any]] = field(default_factory=list)
    processed: int = 0
    blocked_since: Optional[float] = None
    end: Optional[float] = None

    def status(self) -> Dict[str, Any]:
        st: Dict[str, Any] = {
            "total": self.total, "updated": self.updated, "created": self.created, "deleted": 0,
            "batches": self.batches, "version_conflicts": self.version_conflicts, "noops": self.noops,
            "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0, "requests_per_second": self.rps,
            "throttled_until_millis": 0,
        }
        if self.slices > 1:
            # One worker per slice in ES; here the counters are split evenly between them.
            def part(n: int, i: int) -> int:
                return n // self.slices + (1 if i < n % self.slices else 0)
            st["slices"] = [{"slice_id": i, "total": part(self.total, i), "updated": part(self.updated, i),
                             "created": part(self.created, i), "deleted": 0, "batches": part(self.batches, i),
                             "version_conflicts": part(self.version_conflicts, i), "noops": 0,
                             "retries": {"bulk": 0, "search": 0}, "throttled_millis": 0,
                             "requests_per_second": self.rps, "throttled_until_millis": 0}
                            for i in range(self.slices)]
        if self.canceled:
            st["canceled"] = self.canceled
        return st


class DocumentStore:
    """Index metadata and documents (``state.indices``), templates, tasks."""

    def __init__(self, state: Any, reindex_rate: float = DEFAULT_REINDEX_RATE) -> None:
        self.state = state
        self.reindex_rate = reindex_rate
        self.extra: Dict[str, IndexExtra] = {}
        self.tasks: Dict[str, ReindexTask] = {}
        self.next_task = 1000
        self.node_id = _uuid()
        self.primary_wait_cap = 60.0  # upper bound on a write's wait for a primary, seconds
        # Every write Elasticsearch acknowledged, by the name the client wrote to (index or alias):
        # the audit's docs_lost counts those no longer retrievable under that name.
        self.acked: Dict[str, set] = {}
        self.acked_synthetic: Dict[str, int] = {}
        self.scrolls: Dict[str, Dict[str, Any]] = {}
        self.legacy_templates: Dict[str, Dict[str, Any]] = {}  # _template/<name> (pre-7.8 kind)

    # -- versions / engine --------------------------------------------------------------

    def _ver(self) -> Tuple[int, int]:
        v = version_tuple(self.state.es_version)
        return v[0], v[1] if len(v) > 1 else 0

    def _engine(self) -> Any:
        return self.state.engine

    def primary_active(self, index: str, shard: int) -> bool:
        eng = self._engine()
        return True if eng is None else bool(eng.primary_active(index, shard))

    def health(self, meta: IndexMeta) -> str:
        eng = self._engine()
        if eng is not None:
            return eng.health_of_index(meta.name)
        return "yellow" if meta.number_of_replicas > 0 else "green"

    def _task_node(self) -> Tuple[str, str]:
        eng = self._engine()
        if eng is not None and hasattr(eng, "task_node"):
            return eng.task_node()
        nodes = getattr(eng, "nodes", None) if eng is not None else None
        if nodes:
            # The task runs on the node that took the request: the elected master here, so
            # it vanishes with that node (engine calls drop_tasks_on_node).
            nid = getattr(eng, "master_id", None) or next(iter(nodes))
            if nid in nodes:
                return nid, getattr(nodes[nid], "name", nid)
        return self.node_id, "sandbox-es"

    # -- index expressions --------------------------------------------------------------

    def aliases_of(self) -> Dict[str, List[str]]:
        out: Dict[str, List[str]] = {}
        for name, meta in self.state.indices.items():
            for a in meta.aliases:
                out.setdefault(a, []).append(name)
        return out

    def _ack(self, name: str, doc_id: Optional[str] = None, synthetic: int = 0) -> None:
        if doc_id is not None:
            self.acked.setdefault(name, set()).add(doc_id)
        if synthetic:
            self.acked_synthetic[name] = self.acked_synthetic.get(name, 0) + synthetic

    def docs_unretrievable(self) -> int:
        """Acknowledged documents that can no longer be found under the name they were written to
        (index or alias), whoever removed them; deleting a document through the API is no loss."""
        aliases = self.aliases_of()
        indices = self.state.indices

        def holders(name: str) -> List[IndexMeta]:
            if name in indices:
                return [indices[name]]
            return [indices[n] for n in aliases.get(name, []) if n in indices]

        lost = 0
        for name, ids in self.acked.items():
            metas = holders(name)
            lost += sum(1 for i in ids if not any(i in d for m in metas for d in m.docs))
        for name, n in self.acked_synthetic.items():
            lost += max(0, n - sum(sum(m.synthetic_docs) for m in holders(name)))
        return lost

    def resolve(self, expr: Optional[str], params: Optional[Dict[str, str]] = None, default_all: bool = True,
                ignore_unavailable: Optional[bool] = None) -> List[str]:
        params = params or {}
        ign = _bool(params, "ignore_unavailable") if ignore_unavailable is None else ignore_unavailable
        allow_no = _bool(params, "allow_no_indices", True)
        indices = self.state.indices
        aliases = self.aliases_of()
        if not expr or expr in ("_all", "*"):
            names = sorted(n for n in indices if not n.startswith(".") or expr == "_all") if (expr or default_all) \
                else []
            return names
        result: List[str] = []
        for part in expr.split(","):
            part = part.strip()
            if not part:
                continue
            if part.startswith("-") and result:
                pat = part[1:]
                result = [n for n in result if not fnmatch.fnmatchcase(n, pat)]
                continue
            if "*" in part or "?" in part:
                found = sorted(n for n in indices if fnmatch.fnmatchcase(n, part))
                found += sorted(i for a, idx in aliases.items() if fnmatch.fnmatchcase(a, part) for i in idx)
                if not found and not allow_no:
                    raise index_not_found(part)
                result.extend(found)
            elif part in indices:
                result.append(part)
            elif part in aliases:
                result.extend(sorted(aliases[part]))
            elif not ign:
                raise index_not_found(part)
        seen = set()
        out = []
        for n in result:
            if n not in seen:
                seen.add(n)
                out.append(n)
        if not out and not allow_no and not ign:
            raise index_not_found(expr)
        return out

    def write_target(self, name: str, auto_create: bool = True) -> IndexMeta:
        indices = self.state.indices
        if name in indices:
            return indices[name]
        holders = [m for m in indices.values() if name in m.aliases]
        if holders:
            writers = [m for m in holders if m.aliases[name].get("is_write_index")]
            if len(writers) == 1:
                return writers[0]
            if len(holders) == 1 and holders[0].aliases[name].get("is_write_index") is not False:
                return holders[0]
            raise illegal_argument("no write index is defined for alias [%s]. The write index may be explicitly "
                                   "disabled using is_write_index=false or the alias points to multiple indices "
                                   "without one being designated as a write index" % name)
        if not auto_create:
            raise index_not_found(name)
        found = self.matching_template(name)
        if found and str(found[1].get("allow_auto_create", "")).lower() == "false":
            raise ESError(404, "index_not_found_exception", "no such index [%s] and composable template [%s] forbids "
                          "index auto creation" % (name, found[0]), index_uuid="_na_", index=name,
                          **{"resource.type": "index_expression", "resource.id": name})
        return self.create_index(name)

    # -- index lifecycle ----------------------------------------------------------------

    def matching_template(self, name: str) -> Optional[Tuple[str, Dict[str, Any]]]:
        best = None
        for tname, t in self.state.templates.items():
            if any(fnmatch.fnmatchcase(name, p) for p in t.get("index_patterns", [])):
                prio = int(t.get("priority", 0) or 0)
                if best is None or prio > best[0]:
                    best = (prio, tname, t)
        return (best[1], best[2]) if best else None

    def create_index(self, name: str, settings: Optional[Dict[str, Any]] = None,
                     mappings: Optional[Dict[str, Any]] = None, aliases: Optional[Dict[str, Any]] = None,
                     apply_templates: bool = True) -> IndexMeta:
        """Create an index as ``PUT /<name>`` does (templates applied). Call under state.lock."""
        state = self.state
        validate_index_name(name)
        if name in state.indices:
            meta = state.indices[name]
            raise ESError(400, "resource_already_exists_exception", "index [%s/%s] already exists" % (name, meta.uuid),
                          index_uuid=meta.uuid, index=name)
        if name in self.aliases_of():
            raise ESError(400, "invalid_index_name_exception", "Invalid index name [%s], already exists as alias"
                          % name, index_uuid="_na_", index=name)
        flat: Dict[str, Optional[str]] = {}
        maps: Dict[str, Any] = {}
        als: Dict[str, Dict[str, Any]] = {}
        if apply_templates:
            found = self.matching_template(name)
            # One composable template, else every matching legacy _template by ascending order (ES 7.8+).
            legacy = [] if found else sorted(
                (t for t in self.legacy_templates.values()
                 if any(fnmatch.fnmatchcase(name, p) for p in t.get("index_patterns", []))),
                key=lambda t: int(t.get("order", 0) or 0))
            for tpl in ([found[1].get("template") or {}] if found else legacy):
                flat.update(flatten_settings(tpl.get("settings")))
                maps = mp.merge_mappings(maps, tpl.get("mappings") or {})
                als.update(copy.deepcopy(tpl.get("aliases") or {}))
        flat.update(flatten_settings(settings))
        if mappings:
            maps = mp.merge_mappings(maps, mappings)
        als.update(copy.deepcopy(aliases or {}))
        flat = {k: v for k, v in flat.items() if v is not None}
        shards = _setting_int(flat, "index.number_of_shards", "1")
        replicas = _setting_int(flat, "index.number_of_replicas", "1")
        if shards < 1:
            raise illegal_argument("Failed to parse value [%d] for setting [index.number_of_shards] must be >= 1"
                                   % shards)
        uid = _uuid()
        now_ms = int(time.time() * 1000)
        flat.update({"index.number_of_shards": str(shards), "index.number_of_replicas": str(replicas),
                     "index.uuid": uid, "index.creation_date": str(now_ms), "index.provided_name": name,
                     "index.version.created": self._version_id()})
        meta = IndexMeta(name=name, uuid=uid, number_of_shards=shards, number_of_replicas=replicas,
                         settings=flat, mappings=maps, aliases=als, creation_date_ms=now_ms,
                         docs=[{} for _ in range(shards)], synthetic_docs=[0] * shards, size_bytes=[0] * shards)
        self._apply_blocks(meta)
        state.indices[name] = meta
        self.extra[name] = IndexExtra(versions=[{} for _ in range(shards)], pending=[{} for _ in range(shards)],
                                      seq_no=[0] * shards)
        eng = self._engine()
        if eng is not None:
            eng.on_index_created(meta)
        return meta

    def _version_id(self) -> str:
        v = version_tuple(self.state.es_version) + (0, 0, 0)
        return str(v[0] * 1000000 + v[1] * 10000 + v[2] * 100 + 99)

    @staticmethod
    def _apply_blocks(meta: IndexMeta) -> None:
        s = meta.settings
        meta.write_block = s.get("index.blocks.write") == "true" or s.get("index.blocks.read_only") == "true"
        meta.read_only_allow_delete = s.get("index.blocks.read_only_allow_delete") == "true"

    def delete_index(self, name: str) -> None:
        self.state.indices.pop(name, None)
        self.extra.pop(name, None)
        eng = self._engine()
        if eng is not None:
            eng.on_index_deleted(name)

    @staticmethod
    def check_metadata_writable(meta: IndexMeta, flat: Optional[Dict[str, Any]] = None) -> None:
        """The flood-stage block (read_only_allow_delete) refuses metadata writes with 429, read_only
        with 403, as ES's METADATA_WRITE level does; a settings update touching the read-only blocks themselves is let
        through (TransportUpdateSettingsAction.checkBlock), so the block can be lifted."""
        read_only = meta.settings.get("index.blocks.read_only") == "true"
        if not meta.read_only_allow_delete and not read_only:
            return
        if flat is not None and ((len(flat) == 1 and "index.blocks.metadata" in flat) or
                                 "index.blocks.read_only" in flat or "index.blocks.read_only_allow_delete" in flat):
            return
        if read_only:
            raise ESError(403, "cluster_block_exception", "index [%s] blocked by: [FORBIDDEN/5/index read-only "
                          "(api)];" % meta.name)
        raise ESError(429, "cluster_block_exception", "index [%s] blocked by: [TOO_MANY_REQUESTS/12/disk usage "
                      "exceeded flood-stage watermark, index has read-only-allow-delete block];" % meta.name)

    def update_settings(self, meta: IndexMeta, flat: Dict[str, Optional[str]]) -> None:
        self.check_metadata_writable(meta, flat)
        if flat.get("index.number_of_replicas") is not None:
            _setting_int(flat, "index.number_of_replicas", "1")  # refuse before changing anything
        if flat.get("index.refresh_interval") is not None:
            parse_time(flat["index.refresh_interval"], 1.0, "index.refresh_interval")
        bad = sorted(k for k in flat if k in _NON_DYNAMIC)
        if bad:
            raise illegal_argument("Can't update non dynamic settings [[%s]] for open indices [[%s/%s]]"
                                   % (", ".join(bad), meta.name, meta.uuid))
        for k, v in flat.items():
            if k in ("index.uuid", "index.creation_date", "index.provided_name", "index.version.created"):
                raise illegal_argument("final %s setting [%s], not updateable" % (meta.name, k))
            if v is None:
                meta.settings.pop(k, None)
                if k == "index.number_of_replicas":
                    meta.settings[k] = "1"
            else:
                meta.settings[k] = v
        if "index.refresh_interval" in flat:
            # Documents waiting for a refresh that will now never come stay pending until the
            # next scheduled one under the new interval.
            interval = self.refresh_interval(meta)
            now = self.state.now()
            ex = self.extra[meta.name]
            for pend in ex.pending:
                for doc_id in pend:
                    pend[doc_id] = float("inf") if interval < 0 else now + interval
        meta.number_of_replicas = int(meta.settings.get("index.number_of_replicas", "1"))
        self._apply_blocks(meta)
        eng = self._engine()
        if eng is not None:
            eng.on_index_settings_changed(meta)

    def refresh_interval(self, meta: IndexMeta) -> float:
        return parse_time(meta.settings.get("index.refresh_interval"), 1.0)

    # -- documents ------------------------------------------------------------------------

    def _check_writable(self, meta: IndexMeta) -> None:
        if meta.write_block:
            which = "FORBIDDEN/5/index read-only (api)" if meta.settings.get("index.blocks.read_only") == "true" \
                else "FORBIDDEN/8/index write (api)"
            raise ESError(403, "cluster_block_exception", "index [%s] blocked by: [%s];" % (meta.name, which))
        if meta.read_only_allow_delete:
            raise ESError(429, "cluster_block_exception", "index [%s] blocked by: [TOO_MANY_REQUESTS/12/disk usage "
                          "exceeded flood-stage watermark, index has read-only-allow-delete block];" % meta.name)

    def _await_primary(self, meta: IndexMeta, shard: int, timeout: float, wait: bool = True) -> None:
        if self.primary_active(meta.name, shard):
            return
        deadline = time.monotonic() + min(timeout, self.primary_wait_cap)
        cond = getattr(self.state, "changed", None)
        while wait and cond is not None and time.monotonic() < deadline:
            cond.wait(0.05)
            if meta.name not in self.state.indices:
                raise index_not_found(meta.name)
            if self.primary_active(meta.name, shard):
                return
        raise ESError(503, "unavailable_shards_exception", "[%s][%d] primary shard is not active Timeout: [%s], "
                      "request: [BulkShardRequest [[%s][%d]] containing [1] requests]"
                      % (meta.name, shard, "%ds" % int(timeout), meta.name, shard), index_uuid=meta.uuid,
                      shard=str(shard), index=meta.name)

    def index_one(self, index: str, doc_id: Optional[str], source: Any, op_type: str = "index",
                  version: Optional[int] = None, version_type: Optional[str] = None, routing: Optional[str] = None,
                  timeout: float = 60.0, wait: bool = True, auto_create: bool = True,
                  ack: bool = True) -> Dict[str, Any]:
        """Index one document; returns the item result; raises ESError. Call under state.lock.

        ``ack``: a client's write (recorded for docs_lost), not a reindex task's copy."""
        meta = self.write_target(index, auto_create=auto_create)
        self._check_writable(meta)
        if not isinstance(source, dict):
            raise ESError(400, "mapper_parsing_exception", "failed to parse, document is empty")
        if doc_id is None:
            doc_id = _uuid()[:20]
        shard = shard_of(doc_id, routing, meta.number_of_shards)
        self._await_primary(meta, shard, timeout, wait)
        ex = self.extra[meta.name]
        exists = doc_id in meta.docs[shard]
        cur_ver = ex.versions[shard].get(doc_id)
        if op_type == "create" and exists:
            raise ESError(409, "version_conflict_engine_exception", "[%s]: version conflict, document already exists "
                          "(current version [%d])" % (doc_id, cur_ver or 1), index_uuid=meta.uuid, shard=str(shard),
                          index=meta.name)
        if version_type in ("external", "external_gte"):
            if version is None:
                raise illegal_argument("Validation Failed: 1: an external version is required;")
            if exists and cur_ver is not None and (version <= cur_ver if version_type == "external"
                                                   else version < cur_ver):
                raise ESError(409, "version_conflict_engine_exception", "[%s]: version conflict, current version [%d] "
                              "is higher or equal to the one provided [%d]" % (doc_id, cur_ver, version),
                              index_uuid=meta.uuid, shard=str(shard), index=meta.name)
            new_ver = version
        else:
            new_ver = (cur_ver or 0) + 1
        maj, minor = self._ver()
        try:
            new_maps, changed = mp.parse_document(meta.mappings, source, doc_id, maj, minor)
        except ESError as e:
            ex.index_failed += 1
            e.extra.update({"index_uuid": meta.uuid, "index": meta.name} if e.type.startswith("strict") else {})
            raise
        if changed:
            meta.mappings = new_maps
        meta.docs[shard][doc_id] = source
        ex.versions[shard][doc_id] = new_ver
        ex.seq_no[shard] += 1
        ex.index_total += 1
        _count_op(ex, shard)
        meta.size_bytes[shard] += len(json.dumps(source))
        interval = self.refresh_interval(meta)
        if not exists:
            ex.pending[shard][doc_id] = float("inf") if interval < 0 else self.state.now() + interval
        active = 1 + (meta.number_of_replicas if self.health(meta) == "green" else 0)
        if ack:
            self._ack(index, doc_id)
        return {"_index": meta.name, "_id": doc_id, "_version": new_ver, "result": "updated" if exists else "created",
                "_shards": {"total": 1 + meta.number_of_replicas, "successful": active, "failed": 0},
                "_seq_no": ex.seq_no[shard] - 1, "_primary_term": 1, "status": 200 if exists else 201}

    def delete_one(self, index: str, doc_id: str, routing: Optional[str] = None) -> Dict[str, Any]:
        meta = self.write_target(index, auto_create=False)
        self._check_writable(meta)
        shard = shard_of(doc_id, routing, meta.number_of_shards)
        self._await_primary(meta, shard, 60.0)
        ex = self.extra[meta.name]
        found = meta.docs[shard].pop(doc_id, None) is not None
        for name in [index, meta.name] + list(meta.aliases):  # a deliberate delete is no loss
            self.acked.get(name, set()).discard(doc_id)
        ex.pending[shard].pop(doc_id, None)
        ver = ex.versions[shard].pop(doc_id, 0) + 1
        ex.seq_no[shard] += 1
        if found:
            ex.delete_total += 1
        return {"_index": meta.name, "_id": doc_id, "_version": ver, "result": "deleted" if found else "not_found",
                "_shards": {"total": 1 + meta.number_of_replicas, "successful": 1, "failed": 0},
                "_seq_no": ex.seq_no[shard] - 1, "_primary_term": 1, "status": 200 if found else 404}

    def add_synthetic_docs(self, index: str, n: int, bytes_per_doc: int = 1024, ack: bool = True) -> None:
        """Declare ``n`` documents without bodies (scenario data, continuous writer).

        They count as written through the API (indexing stats) and are visible at once.
        """
        with self.state.lock:
            meta = self.write_target(index)
            self._check_writable(meta)
            ex = self.extra[meta.name]
            shards = meta.number_of_shards
            for s in range(shards):
                share = n // shards + (1 if s < n % shards else 0)
                meta.synthetic_docs[s] += share
                meta.size_bytes[s] += share * bytes_per_doc
                ex.seq_no[s] += share
                _count_op(ex, s, share)
            ex.index_total += n
            if ack:
                self._ack(index, synthetic=n)

    def write_synthetic(self, index: str, shard: int, n: int = 1, bytes_per_doc: int = 1024) -> bool:
        """A client (the continuous writer) indexes ``n`` body-less documents into one shard.

        Refused (False) as Elasticsearch would refuse the write: index missing, write
        block, no active primary. Counted in indexing stats when accepted.
        """
        with self.state.lock:
            meta = self.state.indices.get(index)
            if meta is None or meta.write_block or meta.read_only_allow_delete:
                return False
            if not self.primary_active(index, shard):
                return False
            meta.synthetic_docs[shard] += n
            meta.size_bytes[shard] += n * bytes_per_doc
            ex = self.extra[index]
            ex.seq_no[shard] += n
            _count_op(ex, shard, n)
            ex.index_total += n
            self._ack(index, synthetic=n)
            return True

    def drop_shard(self, index: str, shard: int) -> int:
        """Every copy of the shard is gone: its documents are lost. Returns how many."""
        with self.state.lock:
            meta = self.state.indices.get(index)
            if meta is None:
                return 0
            lost = len(meta.docs[shard]) + meta.synthetic_docs[shard]
            meta.docs[shard] = {}
            meta.synthetic_docs[shard] = 0
            meta.size_bytes[shard] = 0
            ex = self.extra.get(index)
            if ex:
                ex.pending[shard] = {}
                ex.versions[shard] = {}
            return lost

    def refresh(self, meta: IndexMeta) -> None:
        ex = self.extra[meta.name]
        for pend in ex.pending:
            pend.clear()
        ex.refresh_total += 1

    def _settle(self, meta: IndexMeta, shard: int) -> Dict[str, float]:
        """Drop pending entries whose scheduled refresh has passed; return the rest."""
        pend = self.extra[meta.name].pending[shard]
        if pend:
            now = self.state.now()
            for doc_id in [d for d, t in pend.items() if t <= now]:
                del pend[doc_id]
        return pend

    def visible_count(self, meta: IndexMeta, shard: int) -> int:
        return len(meta.docs[shard]) - len(self._settle(meta, shard)) + meta.synthetic_docs[shard]

    def visible_docs(self, meta: IndexMeta, shard: int) -> List[Tuple[str, Dict[str, Any]]]:
        pend = self._settle(meta, shard)
        return [(i, s) for i, s in meta.docs[shard].items() if i not in pend]

    # -- reindex tasks ----------------------------------------------------------------------

    def start_reindex(self, body: Dict[str, Any], params: Dict[str, str], store_result: bool) -> ReindexTask:
        src = _obj(body.get("source"), "source", "reindex")
        dest = _obj(body.get("dest"), "dest", "reindex")
        batch_size = _int_field(src.get("size", 1000), "size", "source")
        if "remote" in src:
            raise illegal_argument("reindex from remote is not supported by the sandbox")
        if not src.get("index") or not dest.get("index"):
            raise ESError(400, "action_request_validation_exception", "Validation Failed: 1: use _all if you really "
                          "want to copy from all existing indexes;" if not src.get("index") else
                          "Validation Failed: 1: index must be specified;")
        src_expr = src["index"] if isinstance(src["index"], str) else ",".join(src["index"])
        names = self.resolve(src_expr, ignore_unavailable=False)
        dest_name = dest["index"]
        if dest_name in names:
            raise ESError(400, "action_request_validation_exception", "Validation Failed: 1: reindex cannot write "
                          "into an index its reading from [%s];" % dest_name)
        conflicts = body.get("conflicts", "abort")
        if conflicts not in ("abort", "proceed"):
            raise illegal_argument("conflicts may only be \"proceed\" or \"abort\" but was [%s]" % conflicts)
        version_type = dest.get("version_type", "internal")
        op_type = dest.get("op_type", "index")
        # "size" at the top level is the pre-7.x spelling of max_docs, still accepted.
        max_docs = body.get("max_docs", body.get("size", params.get("max_docs")))
        queue: List[Tuple[str, Dict[str, Any], int]] = []
        synthetic = 0
        query = src.get("query")
        for name in names:
            meta = self.state.indices[name]
            ex = self.extra[name]
            for s in range(meta.number_of_shards):
                docs = iter_matching(self.visible_docs(meta, s), query, meta.mappings)
                queue.extend((i, copy.deepcopy(d), ex.versions[s].get(i, 1)) for i, d in docs)
                if not query or "match_all" in query:
                    synthetic += meta.synthetic_docs[s]
        if max_docs is not None:
            max_docs = _int_field(max_docs, "max_docs", "reindex")
            queue = queue[:max_docs]
            synthetic = max(0, min(synthetic, max_docs - len(queue)))
        rps = _num_param(params, "requests_per_second", -1.0, float) or -1.0
        if rps == 0:
            raise illegal_argument("[requests_per_second] must be greater than 0. Use -1 to disable throttling.")
        slices_p = params.get("slices", "1")
        if slices_p == "auto":
            slices = max(1, min((self.state.indices[n].number_of_shards for n in names), default=1))
        else:
            slices = _num_param(params, "slices", 1)
        node, node_name = self._task_node()
        self.next_task += 1
        task = ReindexTask(
            id=self.next_task, node=node, node_name=node_name,
            description="reindex from [%s] to [%s]" % (src_expr, dest_name), dest=dest_name, op_type=op_type,
            version_type=version_type, conflicts=conflicts, size=batch_size,
            rate=self.reindex_rate if rps <= 0 else min(self.reindex_rate, rps), rps=rps, slices=slices,
            store_result=store_result, queue=queue, synthetic=synthetic, start_wall_ms=int(time.time() * 1000),
            start=self.state.now(), total=len(queue) + synthetic)
        self.tasks["%s:%d" % (node, task.id)] = task
        return task

    def _run_batch(self, task: ReindexTask) -> bool:
        """Copy one batch; False when the task cannot progress now (no active primary)."""
        try:
            meta = self.write_target(task.dest)
        except ESError as e:
            task.failures.append({"index": task.dest, "id": None, "cause": e.cause(), "status": e.status})
            return True
        real = task.queue[: task.size]
        n_syn = min(task.synthetic, task.size - len(real))
        shards = {shard_of(i, None, meta.number_of_shards) for i, _, _ in real}
        if n_syn:
            shards |= set(range(meta.number_of_shards))
        inactive = [s for s in shards if not self.primary_active(meta.name, s)]
        now = self.state.now()
        if inactive:
            if task.blocked_since is None:
                task.blocked_since = now
            if now - task.blocked_since < 60.0:
                return False
            e = ESError(503, "unavailable_shards_exception", "[%s][%d] primary shard is not active Timeout: [1m]"
                        % (meta.name, inactive[0]))
            task.failures.append({"index": meta.name, "id": None, "cause": e.cause(), "status": 503})
            return True
        task.blocked_since = None
        vt = task.version_type if task.version_type in ("external", "external_gte") else None
        for doc_id, src, ver in real:
            try:
                r = self.index_one(meta.name, doc_id, src, op_type=task.op_type, version=ver if vt else None,
                                   version_type=vt, wait=False, ack=False)
                if r["result"] == "created":
                    task.created += 1
                else:
                    task.updated += 1
            except ESError as e:
                if e.status == 409:
                    task.version_conflicts += 1
                    if task.conflicts == "proceed":
                        continue
                task.failures.append({"index": meta.name, "id": doc_id, "cause": e.cause(), "status": e.status})
        if n_syn:
            try:
                self._check_writable(meta)
                self.add_synthetic_docs(meta.name, n_syn, ack=False)
                task.created += n_syn
            except ESError as e:
                task.failures.append({"index": meta.name, "id": None, "cause": e.cause(), "status": e.status})
        task.queue = task.queue[len(real):]
        task.synthetic -= n_syn
        task.processed += len(real) + n_syn
        task.batches += 1
        return True

    def advance(self, task: ReindexTask, unlimited: bool = False) -> None:
        if task.canceled and not task.done:
            # Cancelling is cooperative (ES checks between batches): the batch in flight is still
            # written, possibly re-creating a destination deleted meanwhile, then the task ends.
            if task.queue or task.synthetic > 0:
                self._run_batch(task)
            task.done = True
            task.end = self.state.now()
            return
        while not task.done:
            if not task.queue and task.synthetic <= 0:
                break
            if not unlimited:
                allowed = (self.state.now() - task.start) * task.rate
                if task.processed + min(task.size, len(task.queue) + task.synthetic) > allowed:
                    return
            if not self._run_batch(task):
                return
            if task.failures:
                break
        if not task.done:
            task.done = True
            task.end = self.state.now()

    def tick(self) -> None:
        """Move running reindex tasks forward to the current time (call under state.lock)."""
        for task in list(self.tasks.values()):
            if not task.done:
                self.advance(task)

    def drop_tasks_on_node(self, node_id: str) -> int:
        """The node running these tasks left: running tasks vanish (results never stored)."""
        gone = [k for k, t in self.tasks.items() if t.node == node_id and not t.done]
        for k in gone:
            del self.tasks[k]
        return len(gone)

    def reindex_response(self, task: ReindexTask) -> Dict[str, Any]:
        took = int(((task.end if task.end is not None else self.state.now()) - task.start) * 1000)
        body: Dict[str, Any] = {"took": took, "timed_out": False}
        st = task.status()
        st.pop("slices", None)
        body.update(st)
        body["failures"] = task.failures
        return body

    def task_info(self, key: str, task: ReindexTask, detailed: bool = True) -> Dict[str, Any]:
        info = {"node": task.node, "id": task.id, "type": "transport", "action": "indices:data/write/reindex",
                "status": task.status(), "description": task.description, "start_time_in_millis": task.start_wall_ms,
                "running_time_in_nanos": int(((task.end if task.end is not None else self.state.now()) - task.start)
                                             * 1e9),
                "cancellable": True, "cancelled": bool(task.canceled), "headers": {}}
        if not detailed:
            info.pop("description")
            info.pop("status")
        return info


# --- handlers ------------------------------------------------------------------------

_HANDLERS: Dict[str, Callable[[Any, Request], Response]] = {}


def api(name: str) -> Callable:
    def deco(fn: Callable) -> Callable:
        _HANDLERS[name] = fn
        return fn
    return deco


def _store(state: Any) -> DocumentStore:
    store: DocumentStore = state.documents
    store.tick()
    return store


def _shards_header(store: DocumentStore, metas: List[IndexMeta]) -> Dict[str, Any]:
    total = sum(m.number_of_shards * (1 + m.number_of_replicas) for m in metas)
    ok = 0
    for m in metas:
        act = sum(1 for s in range(m.number_of_shards) if store.primary_active(m.name, s))
        ok += act * (1 + (m.number_of_replicas if store.health(m) == "green" else 0))
    return {"total": total, "successful": ok, "failed": 0}


@api("indices.create")
def _create(state: Any, req: Request) -> Response:
    store = _store(state)
    body = req.body or {}
    unknown = set(body) - {"settings", "mappings", "aliases"}
    if unknown:
        raise ESError(400, "parse_exception", "unknown key [%s] for create index" % sorted(unknown)[0])
    for key in ("settings", "mappings", "aliases"):
        if key in body and not isinstance(body[key], dict):
            raise ESError(400, "parse_exception", "key [%s] must be an object" % key)
    meta = store.create_index(req.parts["index"], body.get("settings"), body.get("mappings"), body.get("aliases"))
    acked = all(store.primary_active(meta.name, s) for s in range(meta.number_of_shards))
    return Response(200, {"acknowledged": True, "shards_acknowledged": acked, "index": meta.name})


@api("indices.delete")
def _delete(state: Any, req: Request) -> Response:
    store = _store(state)
    expr = req.parts["index"]
    aliases = store.aliases_of()
    maj = store._ver()[0]
    for part in expr.split(","):
        if part in aliases and part not in state.indices:
            raise illegal_argument("The provided expression [%s] matches an alias, specify the corresponding concrete "
                                   "indices instead." % part)
        if maj >= 8 and (part in ("_all", "*") or "*" in part or "?" in part):
            # action.destructive_requires_name defaults to true from 8.0
            raise illegal_argument("Wildcard expressions or all indices are not allowed")
    names = store.resolve(expr, req.params)
    for n in names:
        _check_removable(state.indices[n])
    for n in names:
        store.delete_index(n)
    return Response(200, {"acknowledged": True})


def _check_removable(meta: Any) -> None:
    """ES refuses to delete (or remove_index) an index under a read_only or metadata block: those are
    METADATA_WRITE blocks, and only the flood stage's read_only_allow_delete lets a delete through.
    Seen on a real 7.17.29 (tests/real/test_reindex_real.py)."""
    for key, block in (("index.blocks.read_only", "FORBIDDEN/5/index read-only (api)"),
                       ("index.blocks.metadata", "FORBIDDEN/9/index metadata (api)")):
        if meta.settings.get(key) == "true":
            raise ESError(403, "cluster_block_exception", "index [%s] blocked by: [%s];" % (meta.name, block))


@api("indices.exists")
def _exists(state: Any, req: Request) -> Response:
    store = _store(state)
    try:
        names = store.resolve(req.parts["index"], req.params)
    except ESError:
        return Response(404, "")
    return Response(200 if names else 404, "")


def _settings_view(meta: IndexMeta, flat: bool, name_filter: Optional[str] = None) -> Dict[str, Any]:
    s = {k: v for k, v in meta.settings.items()}
    if name_filter:
        pats = name_filter.split(",")
        s = {k: v for k, v in s.items() if any(fnmatch.fnmatchcase(k, p) for p in pats)}
    return s if flat else nest_settings(s)


@api("indices.get")
def _get_index(state: Any, req: Request) -> Response:
    store = _store(state)
    flat = _bool(req.params, "flat_settings")
    out = {}
    for n in store.resolve(req.parts["index"], req.params):
        m = state.indices[n]
        out[n] = {"aliases": copy.deepcopy(m.aliases), "mappings": copy.deepcopy(m.mappings),
                  "settings": _settings_view(m, flat)}
    return Response(200, out)


@api("indices.get_settings")
def _get_settings(state: Any, req: Request) -> Response:
    store = _store(state)
    flat = _bool(req.params, "flat_settings")
    out = {}
    for n in store.resolve(req.parts.get("index"), req.params):
        out[n] = {"settings": _settings_view(state.indices[n], flat, req.parts.get("name"))}
    return Response(200, out)


@api("indices.put_settings")
def _put_settings(state: Any, req: Request) -> Response:
    store = _store(state)
    body = req.body or {}
    if "settings" in body and isinstance(body["settings"], dict):
        body = body["settings"]
    flat = flatten_settings(body)
    if not flat:
        raise ESError(400, "action_request_validation_exception", "Validation Failed: 1: no settings to update;")
    names = store.resolve(req.parts.get("index"), req.params)
    for n in names:
        store.update_settings(state.indices[n], flat)
    return Response(200, {"acknowledged": True})


@api("indices.get_mapping")
def _get_mapping(state: Any, req: Request) -> Response:
    store = _store(state)
    return Response(200, {n: {"mappings": copy.deepcopy(state.indices[n].mappings)}
                          for n in store.resolve(req.parts.get("index"), req.params)})


@api("indices.put_mapping")
def _put_mapping(state: Any, req: Request) -> Response:
    store = _store(state)
    names = store.resolve(req.parts["index"], req.params)
    _check_properties(req.body or {}, "")
    for n in names:
        store.check_metadata_writable(state.indices[n])
    new = {n: mp.merge_mappings(state.indices[n].mappings, req.body or {}) for n in names}
    for n, m in new.items():
        state.indices[n].mappings = m
    return Response(200, {"acknowledged": True})


def _check_properties(mapping: Dict[str, Any], prefix: str) -> None:
    """Elasticsearch's mapper parser: properties is an object of objects."""
    props = mapping.get("properties")
    if props is None:
        return
    if not isinstance(props, dict):
        raise ESError(400, "parse_exception", "properties must be a map type")
    for name, m in props.items():
        if not isinstance(m, dict):
            raise ESError(400, "mapper_parsing_exception", "Expected map for property [fields] on field [%s%s] but "
                          "got a class java.lang.String" % (prefix, name))
        _check_properties(m, prefix + name + ".")


_BLOCKS = {"write": "index.blocks.write", "read_only": "index.blocks.read_only", "read": "index.blocks.read",
           "metadata": "index.blocks.metadata"}


@api("indices.add_block")
def _add_block(state: Any, req: Request) -> Response:
    store = _store(state)
    block = req.parts["block"]
    if block not in _BLOCKS:
        raise illegal_argument("No enum constant org.elasticsearch.cluster.metadata.IndexMetadata.APIBlock.%s"
                               % block.upper())
    names = store.resolve(req.parts["index"], req.params)
    for n in names:
        store.update_settings(state.indices[n], {_BLOCKS[block]: "true"})
    return Response(200, {"acknowledged": True, "shards_acknowledged": True,
                          "indices": [{"name": n, "blocked": True} for n in names]})


@api("indices.refresh")
def _refresh(state: Any, req: Request) -> Response:
    store = _store(state)
    metas = [state.indices[n] for n in store.resolve(req.parts.get("index"), req.params)]
    for m in metas:
        store.refresh(m)
    return Response(200, {"_shards": _shards_header(store, metas)})


def _count_op(ex: IndexExtra, shard: int, n: int = 1) -> None:
    while len(ex.shard_totals) <= shard:
        ex.shard_totals.append(0)
    ex.shard_totals[shard] += n


def _primary_node(store: DocumentStore, index: str, shard: int) -> Optional[str]:
    eng = store._engine()
    groups = (getattr(eng, "shards", None) or {}).get(index) if eng is not None else None
    if not groups or shard >= len(groups):
        return None
    return next((c.node_id for c in groups[shard] if c.primary), None)


def _shard_index_total(store: DocumentStore, meta: IndexMeta, shard: int) -> int:
    """Index operations the shard's primary copy counted since it started on its node."""
    ex = store.extra[meta.name]
    total = ex.shard_totals[shard] if shard < len(ex.shard_totals) else 0
    node = _primary_node(store, meta.name, shard)
    base = ex.stats_base.get(shard)
    if base is None or base[0] != node:
        base = (node, 0 if base is None else total)  # relocated: the new copy's counters start at 0
        ex.stats_base[shard] = base
    return total - base[1]


def _shard_stats(store: DocumentStore, meta: IndexMeta, shard: int) -> Dict[str, Any]:
    ex = store.extra[meta.name]
    seq = ex.seq_no[shard] - 1
    return {"routing": {"state": "STARTED", "primary": True, "node": _primary_node(store, meta.name, shard)},
            "docs": {"count": store.visible_count(meta, shard), "deleted": 0},
            "indexing": {"index_total": _shard_index_total(store, meta, shard)},
            "seq_no": {"max_seq_no": seq, "local_checkpoint": seq, "global_checkpoint": seq}}


def _index_stats(store: DocumentStore, meta: IndexMeta) -> Dict[str, Any]:
    ex = store.extra[meta.name]
    index_total = sum(_shard_index_total(store, meta, s) for s in range(meta.number_of_shards))
    count = sum(store.visible_count(meta, s) for s in range(meta.number_of_shards))
    size = sum(meta.size_bytes)
    return {
        "docs": {"count": count, "deleted": 0},
        "store": {"size_in_bytes": size, "total_data_set_size_in_bytes": size, "reserved_in_bytes": 0},
        "indexing": {"index_total": index_total, "index_time_in_millis": index_total // 10,
                     "index_current": 0, "index_failed": ex.index_failed, "delete_total": ex.delete_total,
                     "delete_time_in_millis": 0, "delete_current": 0, "noop_update_total": 0,
                     "is_throttled": False, "throttle_time_in_millis": 0},
        "refresh": {"total": ex.refresh_total, "total_time_in_millis": 0, "external_total": ex.refresh_total,
                    "external_total_time_in_millis": 0, "listeners": 0},
        "flush": {"total": 0, "periodic": 0, "total_time_in_millis": 0},
    }


def _sum_stats(parts: List[Dict[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for p in parts:
        for sect, vals in p.items():
            dst = out.setdefault(sect, {})
            for k, v in vals.items():
                if isinstance(v, bool):
                    dst[k] = dst.get(k, False) or v
                else:
                    dst[k] = dst.get(k, 0) + v
    return out


@api("indices.stats")
def _stats(state: Any, req: Request) -> Response:
    store = _store(state)
    metas = [state.indices[n] for n in store.resolve(req.parts.get("index"), req.params)]
    metric = req.parts.get("metric")
    wanted = None if not metric or metric == "_all" else set(metric.split(","))
    indices = {}
    all_parts = []
    for m in metas:
        st = _index_stats(store, m)
        if wanted:
            st = {k: v for k, v in st.items() if k in wanted}
        all_parts.append(st)
        entry: Dict[str, Any] = {"uuid": m.uuid}
        if store._ver()[0] >= 8:
            entry["health"] = store.health(m)
            entry["status"] = "open"
        entry.update({"primaries": st, "total": copy.deepcopy(st)})
        if req.params.get("level") == "shards":
            entry["shards"] = {str(s): [_shard_stats(store, m, s)] for s in range(m.number_of_shards)}
        indices[m.name] = entry
    summed = _sum_stats(all_parts)
    return Response(200, {"_shards": _shards_header(store, metas),
                          "_all": {"primaries": summed, "total": copy.deepcopy(summed)}, "indices": indices})


@api("indices.get_alias")
def _get_alias(state: Any, req: Request) -> Response:
    store = _store(state)
    names = store.resolve(req.parts.get("index"), req.params)
    want = req.parts.get("name")
    pats = want.split(",") if want and want not in ("_all", "*") else None
    out = {}
    found = set()
    for n in names:
        als = state.indices[n].aliases
        sel = {a: copy.deepcopy(v) for a, v in als.items() if pats is None or any(fnmatch.fnmatchcase(a, p)
                                                                               for p in pats)}
        found.update(sel)
        if sel or pats is None:
            out[n] = {"aliases": sel}
    if pats:
        missing = [p for p in pats if "*" not in p and p not in found]
        if missing:
            body: Dict[str, Any] = {"error": "alias [%s] missing" % ",".join(missing), "status": 404}
            body.update(out)
            return Response(404, body)
    return Response(200, out)


@api("indices.update_aliases")
def _update_aliases(state: Any, req: Request) -> Response:
    store = _store(state)
    actions = (req.body or {}).get("actions")
    if actions is not None and not isinstance(actions, list):
        actions = [actions]  # ES accepts a single action object
    for action in actions or []:
        if not isinstance(action, dict) or any(not isinstance(v, dict) for v in action.values()):
            raise ESError(400, "x_content_parse_exception", "[1:2] [aliases] failed to parse field [actions]")
    if not actions:
        raise ESError(400, "action_request_validation_exception", "Validation Failed: 1: no actions specified;")
    plan = []  # validate everything first: the call is atomic
    # Indices this same call removes may give their name to an alias (Kibana's reindex
    # swap: add alias <old> to <new> and remove_index <old> in one request).
    # Elasticsearch applies them before the other actions and validates those against
    # the state without them (MetadataIndexAliasesService.applyAliasActions).
    removed: set = set()
    for action in actions:
        if not isinstance(action, dict) or len(action) != 1:
            raise ESError(400, "parsing_exception", "[aliases] each action must name exactly one of add, remove, "
                          "remove_index")
        spec = action.get("remove_index")
        if isinstance(spec, dict):
            removed.update(store.resolve(spec.get("index") or ",".join(spec.get("indices", []))))
    for action in actions:
        (kind, spec), = action.items()
        if kind not in ("add", "remove", "remove_index"):
            raise ESError(400, "parsing_exception", "[aliases] unknown field [%s]" % kind)
        idx_expr = spec.get("index") or ",".join(spec.get("indices", []))
        names = store.resolve(idx_expr)
        if kind != "remove_index":
            gone = [n for n in names if n in removed]
            if gone:
                raise index_not_found(gone[0])  # removed by this same call first
        if kind == "remove_index":
            for n in names:
                if n not in state.indices or idx_expr in store.aliases_of():
                    raise illegal_argument("The provided expression [%s] matches an alias, specify the corresponding "
                                           "concrete indices instead." % idx_expr)
                _check_removable(state.indices[n])
            plan.append((kind, names, None, spec))
            continue
        alias_names = [spec["alias"]] if "alias" in spec else list(spec.get("aliases", []))
        for n in names:
            store.check_metadata_writable(state.indices[n])
        if kind == "add":
            for a in alias_names:
                if a in state.indices and a not in removed:
                    raise ESError(400, "invalid_alias_name_exception", "Invalid alias name [%s]: an index or data "
                                  "stream exists with the same name as the alias" % a, index_uuid="_na_", index=a)
        else:
            for a in alias_names:
                if not any(fnmatch.fnmatchcase(x, a) for n in names for x in state.indices[n].aliases) and \
                        spec.get("must_exist", True) is not False:
                    raise ESError(404, "aliases_not_found_exception", "aliases [%s] missing" % a,
                                  resource__type="aliases", resource__id=a)
        plan.append((kind, names, alias_names, spec))
    for kind, names, alias_names, spec in plan:
        for n in names:
            if kind == "remove_index":
                store.delete_index(n)
                continue
            meta = state.indices[n]
            for a in alias_names:
                if kind == "add":
                    conf = {k: copy.deepcopy(v) for k, v in spec.items()
                            if k in ("filter", "routing", "index_routing", "search_routing", "is_write_index",
                                     "is_hidden")}
                    meta.aliases[a] = conf
                else:
                    for x in [x for x in meta.aliases if fnmatch.fnmatchcase(x, a)]:
                        del meta.aliases[x]
    out: Dict[str, Any] = {"acknowledged": True}
    if store._ver() >= (8, 14):
        out["errors"] = False
    return Response(200, out)


def _template_view(name: str, t: Dict[str, Any]) -> Dict[str, Any]:
    return {"name": name, "index_template": copy.deepcopy(t)}


@api("indices.put_index_template")
def _put_template(state: Any, req: Request) -> Response:
    _store(state)
    name = req.parts["name"]
    body = copy.deepcopy(req.body or {})
    if not body.get("index_patterns"):
        raise ESError(400, "action_request_validation_exception",
                      "Validation Failed: 1: index patterns are missing;")
    if isinstance(body["index_patterns"], str):
        body["index_patterns"] = [body["index_patterns"]]
    if not all(isinstance(p, str) for p in body["index_patterns"]):
        raise ESError(400, "x_content_parse_exception", "[1:2] [index_template] failed to parse field "
                      "[index_patterns]")
    tpl_body = _obj(body.get("template"), "template", "index_template")
    for key in ("settings", "mappings", "aliases"):
        _obj(tpl_body.get(key), key, "template")
    _check_properties(tpl_body.get("mappings") or {}, "")
    if body.get("priority") is not None:
        body["priority"] = _int_field(body["priority"], "priority", "index_template")
    if _bool(req.params, "create") and name in state.templates:
        raise illegal_argument("index template [%s] already exists" % name)
    prio = int(body.get("priority", 0) or 0)
    for other, t in state.templates.items():
        if other == name or int(t.get("priority", 0) or 0) != prio:
            continue
        overlap = [p for p in body["index_patterns"] for q in t.get("index_patterns", [])
                   if fnmatch.fnmatchcase(p, q) or fnmatch.fnmatchcase(q, p)]
        if overlap:
            raise illegal_argument(
                "index template [%s] has index patterns %s matching patterns from existing templates [%s] with "
                "patterns (%s => %s) that have the same priority [%d], multiple index templates may not match "
                "during index creation, please use a different priority"
                % (name, "[" + ", ".join(body["index_patterns"]) + "]", other, other,
                   "[" + ", ".join(t["index_patterns"]) + "]", prio))
    body.setdefault("composed_of", [])
    tpl = body.get("template") or {}
    if "settings" in tpl:
        tpl["settings"] = nest_settings({k: v for k, v in flatten_settings(tpl["settings"]).items()})
    state.templates[name] = body  # applied when a matching index is created
    return Response(200, {"acknowledged": True})


@api("indices.put_template")
def _put_legacy_template(state: Any, req: Request) -> Response:
    store = _store(state)
    body = copy.deepcopy(req.body or {})
    patterns = body.get("index_patterns")
    if isinstance(patterns, str):
        body["index_patterns"] = [patterns]
    if not body.get("index_patterns"):
        raise ESError(400, "action_request_validation_exception", "Validation Failed: 1: index patterns are missing;")
    for key in ("settings", "mappings", "aliases"):
        _obj(body.get(key), key, "template")
    _check_properties(body.get("mappings") or {}, "")
    body["settings"] = nest_settings(flatten_settings(body.get("settings")))
    body.setdefault("order", int(req.params.get("order", 0) or 0))
    if _bool(req.params, "create") and req.parts["name"] in store.legacy_templates:
        raise illegal_argument("index_template [%s] already exists" % req.parts["name"])
    store.legacy_templates[req.parts["name"]] = body
    return Response(200, {"acknowledged": True})


@api("indices.get_template")
def _get_legacy_template(state: Any, req: Request) -> Response:
    store = _store(state)
    pats = (req.parts.get("name") or "*").split(",")
    found = {n: copy.deepcopy(dict({"aliases": {}, "mappings": {}}, **t)) for n, t in sorted(store.legacy_templates.items())
             if any(fnmatch.fnmatchcase(n, p) for p in pats)}
    if req.parts.get("name") and not found and "*" not in req.parts["name"]:
        return Response(404, {})
    return Response(200, found)


@api("indices.delete_template")
def _delete_legacy_template(state: Any, req: Request) -> Response:
    store = _store(state)
    if store.legacy_templates.pop(req.parts["name"], None) is None:
        raise ESError(404, "index_template_missing_exception", "index_template [%s] missing" % req.parts["name"])
    return Response(200, {"acknowledged": True})


@api("indices.get_index_template")
def _get_template(state: Any, req: Request) -> Response:
    _store(state)
    name = req.parts.get("name")
    pats = name.split(",") if name else ["*"]
    found = [_template_view(n, t) for n, t in sorted(state.templates.items())
             if any(fnmatch.fnmatchcase(n, p) for p in pats)]
    if name and not found and "*" not in name:
        raise ESError(404, "resource_not_found_exception", "index template matching [%s] not found" % name)
    return Response(200, {"index_templates": found})


@api("indices.delete_index_template")
def _delete_template(state: Any, req: Request) -> Response:
    _store(state)
    name = req.parts["name"]
    names = [n for n in state.templates if any(fnmatch.fnmatchcase(n, p) for p in name.split(","))]
    if not names:
        raise ESError(404, "index_template_missing_exception", "index_template [%s] missing" % name)
    for n in names:
        del state.templates[n]
    return Response(200, {"acknowledged": True})


@api("indices.simulate_index_template")
def _simulate(state: Any, req: Request) -> Response:
    store = _store(state)
    name = req.parts["name"]
    found = store.matching_template(name)
    if not found:
        return Response(200, {"template": {"settings": {}, "mappings": {}, "aliases": {}}, "overlapping": []})
    tpl = found[1].get("template") or {}
    settings = nest_settings({k: v for k, v in flatten_settings(tpl.get("settings")).items()})
    overlapping = [{"name": n, "index_patterns": t.get("index_patterns", [])} for n, t in state.templates.items()
                   if n != found[0] and any(fnmatch.fnmatchcase(name, p) for p in t.get("index_patterns", []))]
    return Response(200, {"template": {"settings": settings, "mappings": copy.deepcopy(tpl.get("mappings") or {}),
                                       "aliases": copy.deepcopy(tpl.get("aliases") or {})},
                          "overlapping": overlapping})


@api("indices.get_data_stream")
def _data_streams(state: Any, req: Request) -> Response:
    _store(state)
    name = req.parts.get("name")
    if name and "*" not in name and name != "_all":
        raise index_not_found(name)
    return Response(200, {"data_streams": []})


# --- _cat ---------------------------------------------------------------------------

def cat_response(rows: List[Dict[str, Any]], columns: List[str], params: Dict[str, str]) -> Response:
    """Render a _cat table: text (columns aligned, ``v`` for headers) or ``format=json``."""
    if params.get("h"):
        columns = [c for c in params["h"].split(",") if c]
    if params.get("s"):
        for key in reversed(params["s"].split(",")):
            k, _, order = key.partition(":")
            rows = sorted(rows, key=lambda r, k=k: (r.get(k) is None, _sortable(r.get(k))), reverse=(order == "desc"))
    fmt = params.get("format", "text")
    if fmt == "json":
        return Response(200, [{c: r.get(c) for c in columns} for r in rows])
    if fmt not in ("text", "txt"):
        raise illegal_argument("Unsupported format [%s]" % fmt)
    table = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    if _bool(params, "v"):
        table.insert(0, list(columns))
    widths = [max([len(row[i]) for row in table] + [0]) for i in range(len(columns))]
    lines = [" ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    return Response(200, "".join(line + "\n" for line in lines))


def _sortable(v: Any) -> Any:
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))


@api("cat.indices")
def _cat_indices(state: Any, req: Request) -> Response:
    store = _store(state)
    rows = []
    unit = req.params.get("bytes")
    for n in store.resolve(req.parts.get("index"), req.params):
        m = state.indices[n]
        health = store.health(m)
        if req.params.get("health") and req.params["health"] != health:
            continue
        count = sum(store.visible_count(m, s) for s in range(m.number_of_shards))
        size = sum(m.size_bytes)
        rows.append({"health": health, "status": "open", "index": n, "uuid": m.uuid, "pri": str(m.number_of_shards),
                     "rep": str(m.number_of_replicas), "docs.count": str(count), "docs.deleted": "0",
                     "store.size": units.cat_bytes(size, unit), "pri.store.size": units.cat_bytes(size, unit),
                     "dataset.size": units.cat_bytes(size, unit), "creation.date": str(m.creation_date_ms)})
    cols = ["health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted", "store.size",
            "pri.store.size"]
    if store._ver()[0] >= 8:
        cols.append("dataset.size")
    return cat_response(rows, cols, req.params)


@api("cat.aliases")
def _cat_aliases(state: Any, req: Request) -> Response:
    _store(state)
    want = req.parts.get("name")
    pats = want.split(",") if want else None
    rows = []
    for n in sorted(state.indices):
        for a, conf in sorted(state.indices[n].aliases.items()):
            if pats and not any(fnmatch.fnmatchcase(a, p) for p in pats):
                continue
            rows.append({"alias": a, "index": n, "filter": "*" if conf.get("filter") else "-",
                         "routing.index": conf.get("index_routing", conf.get("routing", "-")),
                         "routing.search": conf.get("search_routing", conf.get("routing", "-")),
                         "is_write_index": str(conf["is_write_index"]).lower() if "is_write_index" in conf else "-"})
    return cat_response(rows, ["alias", "index", "filter", "routing.index", "routing.search", "is_write_index"],
                        req.params)


# --- documents ----------------------------------------------------------------------

def _item_error(e: ESError, index: str, doc_id: Optional[str]) -> Dict[str, Any]:
    return {"_index": index, "_id": doc_id, "status": e.status, "error": e.cause()}


@api("bulk")
def _bulk(state: Any, req: Request) -> Response:
    store = _store(state)
    start = time.monotonic()
    lines = req.body or []
    if not lines:
        raise ESError(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
    default_index = req.parts.get("index")
    timeout = parse_time(req.params.get("timeout"), 60.0)
    items = []
    touched = set()
    i = 0
    while i < len(lines):
        action = lines[i]
        if not isinstance(action, dict) or len(action) != 1:
            raise illegal_argument("Malformed action/metadata line [%d], expected START_OBJECT or END_OBJECT but "
                                   "found [VALUE_STRING]" % (i + 1))
        (kind, meta), = action.items()
        if kind not in ("index", "create", "update", "delete"):
            raise illegal_argument("Malformed action/metadata line [%d], expected field [create], [delete], "
                                   "[index] or [update] but found [%s]" % (i + 1, kind))
        if kind == "update":
            raise illegal_argument("the sandbox implements no bulk [update] action (sandbox/es_api/README.md)")
        if not isinstance(meta, dict):
            raise illegal_argument("Malformed action/metadata line [%d], expected START_OBJECT but found [%s]"
                                   % (i + 1, "START_ARRAY" if isinstance(meta, list) else "VALUE_STRING"))
        index = meta.get("_index", default_index)
        doc_id = meta.get("_id")
        doc_id = None if doc_id is None else str(doc_id)
        source = None
        if kind != "delete":
            if i + 1 >= len(lines):
                raise illegal_argument("Validation Failed: 1: source is missing;")
            source = lines[i + 1]
            i += 2
        else:
            i += 1
        if index is None:
            raise ESError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
        try:
            if kind == "delete":
                r = store.delete_one(index, doc_id, meta.get("routing"))
            else:
                r = store.index_one(index, doc_id, source, op_type=kind if kind == "create" else
                                    meta.get("op_type", "index"), version=meta.get("version"),
                                    version_type=meta.get("version_type"), routing=meta.get("routing"),
                                    timeout=timeout)
            touched.add(r["_index"])
            items.append({kind: r})
        except ESError as e:
            target = index
            try:
                target = store.write_target(index, auto_create=False).name
            except ESError:
                pass
            items.append({kind: _item_error(e, target, doc_id)})
    _maybe_refresh(store, req.params, touched)
    errors = any("error" in list(it.values())[0] for it in items)
    return Response(200, {"errors": errors, "took": int((time.monotonic() - start) * 1000), "items": items})


def _maybe_refresh(store: DocumentStore, params: Dict[str, str], names: Any) -> None:
    if params.get("refresh") in ("", "true", "wait_for"):
        for n in names:
            if n in store.state.indices:
                store.refresh(store.state.indices[n])


@api("index")
def _index(state: Any, req: Request) -> Response:
    store = _store(state)
    p = req.params
    version = int(p["version"]) if "version" in p else None
    r = store.index_one(req.parts["index"], req.parts.get("id"), req.body, op_type=p.get("op_type", "index"),
                        version=version, version_type=p.get("version_type"), routing=p.get("routing"),
                        timeout=parse_time(p.get("timeout"), 60.0))
    _maybe_refresh(store, p, [r["_index"]])
    status = r.pop("status")
    return Response(status, r)


def _task_doc(store: DocumentStore, doc_id: str) -> Optional[Dict[str, Any]]:
    """A finished task's stored result, as ES keeps it in the .tasks system index."""
    task = store.tasks.get(doc_id)
    if task is None or not task.done or not task.store_result:
        return None
    return {"completed": True, "task": store.task_info(doc_id, task), "response": store.reindex_response(task)}


@api("get")
def _get(state: Any, req: Request) -> Response:
    store = _store(state)
    if req.parts["index"] == ".tasks":
        doc = _task_doc(store, req.parts["id"])
        if doc is None:
            return Response(404, {"_index": ".tasks", "_id": req.parts["id"], "found": False})
        return Response(200, {"_index": ".tasks", "_id": req.parts["id"], "_version": 1, "found": True,
                              "_source": doc})
    names = store.resolve(req.parts["index"], req.params)
    if len(names) != 1:
        raise illegal_argument("alias [%s] has more than one index associated with it [%s], can't execute a single "
                               "index op" % (req.parts["index"], ", ".join(names)))
    meta = state.indices[names[0]]
    doc_id = req.parts["id"]
    shard = shard_of(doc_id, req.params.get("routing"), meta.number_of_shards)
    src = meta.docs[shard].get(doc_id)
    if src is None:
        return Response(404, {"_index": meta.name, "_id": doc_id, "found": False})
    ex = store.extra[meta.name]
    return Response(200, {"_index": meta.name, "_id": doc_id, "_version": ex.versions[shard].get(doc_id, 1),
                          "_seq_no": 0, "_primary_term": 1, "found": True, "_source": copy.deepcopy(src)})


@api("delete")
def _delete_doc(state: Any, req: Request) -> Response:
    store = _store(state)
    if req.parts["index"] == ".tasks":
        found = _task_doc(store, req.parts["id"]) is not None
        if found:
            del store.tasks[req.parts["id"]]
        return Response(200 if found else 404, {"_index": ".tasks", "_id": req.parts["id"],
                                                "result": "deleted" if found else "not_found"})
    r = store.delete_one(req.parts["index"], req.parts["id"], req.params.get("routing"))
    _maybe_refresh(store, req.params, [r["_index"]])
    status = r.pop("status")
    return Response(status, r)


@api("mget")
def _mget(state: Any, req: Request) -> Response:
    store = _store(state)
    body = req.body or {}
    default = req.parts.get("index")
    wanted = [{"_index": default, "_id": i} for i in body.get("ids") or []] + list(body.get("docs") or [])
    if not wanted:
        raise ESError(400, "action_request_validation_exception", "Validation Failed: 1: no documents to get;")
    with_source = str(req.params.get("_source", "true")).lower() != "false"
    out = []
    for d in wanted:
        index, doc_id = d.get("_index") or default, str(d.get("_id"))
        if index is None:
            raise ESError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing for "
                          "doc 0;")
        try:
            names = store.resolve(index, {})
        except ESError as e:
            out.append({"_index": index, "_id": doc_id, "error": e.cause()})
            continue
        meta = state.indices[names[0]] if len(names) == 1 else None
        if meta is None:
            out.append({"_index": index, "_id": doc_id, "error": illegal_argument(
                "alias [%s] has more than one index associated with it, can't execute a single index op"
                % index).cause()})
            continue
        shard = shard_of(doc_id, d.get("routing"), meta.number_of_shards)
        src = meta.docs[shard].get(doc_id)
        entry: Dict[str, Any] = {"_index": meta.name, "_id": doc_id, "found": src is not None}
        if src is not None:
            entry["_version"] = store.extra[meta.name].versions[shard].get(doc_id, 1)
            if with_source:
                entry["_source"] = copy.deepcopy(src)
        out.append(entry)
    return Response(200, {"docs": out})


def _scroll_page(store: DocumentStore, scroll_id: str) -> Dict[str, Any]:
    cur = store.scrolls.get(scroll_id)
    if cur is None:
        raise ESError(404, "search_phase_execution_exception", "all shards failed", caused_by={
            "type": "search_context_missing_exception", "reason": "No search context found for id [%s]" % scroll_id})
    page, cur["hits"] = cur["hits"][:cur["size"]], cur["hits"][cur["size"]:]
    return {"_scroll_id": scroll_id, "took": 0, "timed_out": False, "_shards": cur["shards"],
            "hits": {"total": {"value": cur["total"], "relation": "eq"}, "max_score": 1.0 if page else None,
                     "hits": page}}


@api("scroll")
def _scroll(state: Any, req: Request) -> Response:
    store = _store(state)
    scroll_id = req.parts.get("scroll_id") or (req.body or {}).get("scroll_id") or req.params.get("scroll_id")
    return Response(200, _scroll_page(store, str(scroll_id)))


@api("clear_scroll")
def _clear_scroll(state: Any, req: Request) -> Response:
    store = _store(state)
    ids = req.parts.get("scroll_id") or (req.body or {}).get("scroll_id") or []
    ids = [ids] if isinstance(ids, str) else list(ids)
    freed = sum(1 for i in ids if store.scrolls.pop(i, None) is not None)
    return Response(200, {"succeeded": True, "num_freed": freed})


def _searchable(store: DocumentStore, expr: Optional[str], params: Dict[str, str]) -> Tuple[List[Tuple[IndexMeta, int]],
                                                                                          Dict[str, Any]]:
    """Shards a search reaches, and its _shards header (shards without a primary fail)."""
    metas = [store.state.indices[n] for n in store.resolve(expr, params)]
    ok: List[Tuple[IndexMeta, int]] = []
    failures = []
    for m in metas:
        for s in range(m.number_of_shards):
            if store.primary_active(m.name, s):
                ok.append((m, s))
            else:
                failures.append({"shard": s, "index": m.name, "node": None, "reason": {
                    "type": "no_shard_available_action_exception", "reason": None, "index_uuid": m.uuid,
                    "shard": str(s), "index": m.name}})
    total = len(ok) + len(failures)
    if failures and not ok:
        raise ESError(503, "search_phase_execution_exception", "all shards failed", phase="query", grouped=True,
                      failed_shards=failures)
    header: Dict[str, Any] = {"total": total, "successful": len(ok), "skipped": 0, "failed": len(failures)}
    if failures:
        header["failures"] = failures
    return ok, header


@api("count")
def _count(state: Any, req: Request) -> Response:
    store = _store(state)
    shards, header = _searchable(store, req.parts.get("index"), req.params)
    query = (req.body or {}).get("query")
    if req.params.get("q"):
        raise illegal_argument("the sandbox implements no [q] in a count (sandbox/es_api/README.md)")
    n = 0
    for m, s in shards:
        if not query or "match_all" in query:
            n += store.visible_count(m, s)
        else:
            n += len(iter_matching(store.visible_docs(m, s), query, m.mappings))
    return Response(200, {"count": n, "_shards": header})


@api("search")
def _search(state: Any, req: Request) -> Response:
    store = _store(state)
    start = time.monotonic()
    shards, header = _searchable(store, req.parts.get("index"), req.params)
    body = req.body or {}
    query = body.get("query")
    size = _num_param(req.params, "size", None)
    size = _source_int(body.get("size", 10)) if size is None else size
    unsupported = [k for k in ("from", "search_after", "collapse") if body.get(k)]
    if req.params.get("q") or req.params.get("from") or unsupported:
        raise illegal_argument("the sandbox implements no [%s] in a search (sandbox/es_api/README.md)"
                               % (unsupported or ["q" if req.params.get("q") else "from"])[0])
    if any(s not in ("_doc", {"_doc": "asc"}) for s in (body.get("sort") or [])):
        raise illegal_argument("the sandbox sorts a search by [_doc] only (sandbox/es_api/README.md)")
    hits: List[Tuple[IndexMeta, str, Dict[str, Any]]] = []
    total = 0
    by_index: Dict[str, List[Tuple[str, Dict[str, Any]]]] = {}
    for m, s in shards:
        docs = iter_matching(store.visible_docs(m, s), query, m.mappings)
        total += len(docs)
        if not query or "match_all" in query:
            total += m.synthetic_docs[s]
        by_index.setdefault(m.name, []).extend(docs)
        hits.extend((m, i, d) for i, d in docs)
    page = hits[:size]
    if req.params.get("scroll"):
        # A scroll keeps the search's hits (a point-in-time view) for later pages.
        scroll_id = _uuid()
        store.scrolls[scroll_id] = {"size": size or 10, "total": total, "shards": header, "hits": [
            {"_index": m.name, "_id": i, "_score": 1.0, "_source": copy.deepcopy(d)} for m, i, d in hits]}
        out_scroll = _scroll_page(store, scroll_id)
        out_scroll["took"] = int((time.monotonic() - start) * 1000)
        return Response(200, out_scroll)
    out: Dict[str, Any] = {
        "took": int((time.monotonic() - start) * 1000), "timed_out": False, "_shards": header,
        "hits": {"total": {"value": total, "relation": "eq"}, "max_score": 1.0 if page else None,
                 "hits": [{"_index": m.name, "_id": i, "_score": 1.0, "_source": copy.deepcopy(d)}
                          for m, i, d in page]},
    }
    aggs = body.get("aggs") or body.get("aggregations")
    if aggs:
        out["aggregations"] = aggregate(aggs, [(i, d) for _, i, d in hits], shards[0][0].mappings if shards else {})
    return Response(200, out)


# --- reindex and tasks ------------------------------------------------------------------

@api("reindex")
def _reindex(state: Any, req: Request) -> Response:
    store = _store(state)
    body = req.body or {}
    if "script" in body:
        raise illegal_argument("reindex scripts are not supported by the sandbox")
    wait = _bool(req.params, "wait_for_completion", True)
    task = store.start_reindex(body, req.params, store_result=not wait)
    key = "%s:%d" % (task.node, task.id)
    if not wait:
        store.advance(task)
        return Response(200, {"task": key})
    store.advance(task, unlimited=True)
    del store.tasks[key]  # a synchronous reindex does not store its result
    if _bool(req.params, "refresh") and task.dest in state.indices:
        store.refresh(state.indices[task.dest])
    return Response(200, store.reindex_response(task))


def _task_key(task_id: str) -> str:
    node, sep, num = task_id.partition(":")
    if not sep or not num.isdigit():
        raise illegal_argument("malformed task id %s" % task_id)
    return task_id


@api("tasks.get")
def _tasks_get(state: Any, req: Request) -> Response:
    store = _store(state)
    key = _task_key(req.parts["task_id"])
    task = store.tasks.get(key)
    if task is None:
        node = key.partition(":")[0]
        nodes = getattr(state.engine, "nodes", None) if state.engine is not None else None
        if nodes is not None and node not in nodes:
            # The task's node left (a reindex task dies with its node): ES's words for it.
            raise ESError(404, "resource_not_found_exception", "task [%s] belongs to the node [%s] which isn't part "
                          "of the cluster and there is no record of the task" % (key, node))
        raise ESError(404, "resource_not_found_exception",
                      "task [%s] isn't running and hasn't stored its results" % key)
    if _bool(req.params, "wait_for_completion"):
        deadline = time.monotonic() + parse_time(req.params.get("timeout"), 30.0)
        cond = state.changed
        while not task.done and time.monotonic() < deadline:
            cond.wait(0.05)
            store.tick()
        if not task.done:
            raise ESError(408, "elasticsearch_timeout_exception", "Timed out waiting for completion of task [%s]"
                          % key)
    out: Dict[str, Any] = {"completed": task.done, "task": store.task_info(key, task)}
    if task.done:
        out["response"] = store.reindex_response(task)
    return Response(200, out)


def _node_group(store: DocumentStore, tasks: List[Tuple[str, ReindexTask]], detailed: bool) -> Dict[str, Any]:
    nodes: Dict[str, Any] = {}
    for key, t in tasks:
        n = nodes.setdefault(t.node, {"name": t.node_name, "transport_address": "127.0.0.1:9300",
                                      "host": "127.0.0.1", "ip": "127.0.0.1:9300", "roles": ["data", "master"],
                                      "tasks": {}})
        n["tasks"][key] = store.task_info(key, t, detailed)
    return nodes


@api("tasks.list")
def _tasks_list(state: Any, req: Request) -> Response:
    store = _store(state)
    actions = req.params.get("actions")
    running = [(k, t) for k, t in store.tasks.items() if not t.done]
    if actions:
        pats = actions.split(",")
        running = [(k, t) for k, t in running if any(fnmatch.fnmatchcase("indices:data/write/reindex", p)
                                                     for p in pats)]
    detailed = _bool(req.params, "detailed")
    group = req.params.get("group_by", "nodes")
    if group == "none":
        return Response(200, {"tasks": [store.task_info(k, t, detailed) for k, t in running]})
    if group == "parents":
        return Response(200, {"tasks": {k: store.task_info(k, t, detailed) for k, t in running}})
    return Response(200, {"nodes": _node_group(store, running, detailed)})


@api("tasks.cancel")
def _tasks_cancel(state: Any, req: Request) -> Response:
    store = _store(state)
    task_id = req.parts.get("task_id")
    if task_id:
        key = _task_key(task_id)
        task = store.tasks.get(key)
        if task is None or task.done:
            raise ESError(404, "resource_not_found_exception", "task [%s] is not found" % key)
        targets = [(key, task)]
    else:
        targets = [(k, t) for k, t in store.tasks.items() if not t.done]
    for key, task in targets:
        task.canceled = "by user request"  # the task ends at its next batch (DocumentStore.advance)
    return Response(200, {"nodes": _node_group(store, targets, True)})


def install(state: Any, reindex_rate: float = DEFAULT_REINDEX_RATE) -> DocumentStore:
    """Create ``state.documents`` and register the index/document handlers."""
    from .server import ensure_state
    ensure_state(state)
    store = DocumentStore(state, reindex_rate=reindex_rate)
    with state.lock:
        state.documents = store
        for name, fn in _HANDLERS.items():
            state.register(name, fn)
    return store


__all__ = ["DocumentStore", "install", "cat_response", "flatten_settings", "nest_settings", "parse_time"]
