"""The documents half's state: indices, documents, templates, aliases, reindex tasks.

``documents.install(state)`` creates the :class:`DocumentStore` (``state.documents``); the
handlers (``indices.py``, ``documents.py``) register here through ``api``. Behaviour our modules
depend on follows Elasticsearch:

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

import copy
import fnmatch
import json
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from sandbox import units
from sandbox.state import IndexMeta, Request, Response

from ..model import new_uuid as _uuid  # one id format for the sandbox's two halves
from . import mapping as mp
from .errors import ESError, illegal_argument, index_not_found
from .query import iter_matching
from .server import version_tuple

DEFAULT_REINDEX_RATE = 2000.0  # docs/s a reindex task copies when not throttled
_NON_DYNAMIC = {"index.number_of_shards", "index.routing_partition_size", "index.codec"}


# --- small helpers -----------------------------------------------------------------

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


def _count_op(ex: IndexExtra, shard: int, n: int = 1) -> None:
    while len(ex.shard_totals) <= shard:
        ex.shard_totals.append(0)
    ex.shard_totals[shard] += n


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


# --- the handler registry (indices.py, documents.py) ------------------------------------------------------------------------

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
