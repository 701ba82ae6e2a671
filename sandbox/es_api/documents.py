"""Document endpoints of the documents half (bulk, index, get, delete, mget, count, search, scroll)
and reindex with its tasks; ``install`` sets the half up.

``install(state)`` creates the :class:`DocumentStore` (``state.documents``, ``store.py``) and
registers the handlers of this module and of ``indices.py``. It works with ``state.engine`` None
(single node, every primary active).
"""
from __future__ import annotations

import copy
import fnmatch
import time
from typing import Any, Dict, List, Optional, Tuple

from sandbox.state import IndexMeta, Request, Response

from .errors import ESError, illegal_argument
from . import indices  # noqa: F401  (importing it registers the index handlers)
from .query import aggregate, iter_matching
from .store import (_HANDLERS, DEFAULT_REINDEX_RATE, DocumentStore, ReindexTask, _bool, _num_param, _source_int,
                    _store, _uuid, api, flatten_settings, nest_settings, parse_time, shard_of)



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
    no_source = str(body.get("_source", req.params.get("_source", "true"))).lower() == "false"

    def hit(m: IndexMeta, i: str, d: Dict[str, Any]) -> Dict[str, Any]:
        out: Dict[str, Any] = {"_index": m.name, "_id": i, "_score": 1.0}
        if not no_source:  # "_source": false: hits without it
            out["_source"] = copy.deepcopy(d)
        return out
    if req.params.get("scroll"):
        # A scroll keeps the search's hits (a point-in-time view) for later pages.
        scroll_id = _uuid()
        store.scrolls[scroll_id] = {"size": size or 10, "total": total, "shards": header,
                                    "hits": [hit(m, i, d) for m, i, d in hits]}
        out_scroll = _scroll_page(store, scroll_id)
        out_scroll["took"] = int((time.monotonic() - start) * 1000)
        return Response(200, out_scroll)
    out: Dict[str, Any] = {
        "took": int((time.monotonic() - start) * 1000), "timed_out": False, "_shards": header,
        "hits": {"total": {"value": total, "relation": "eq"}, "max_score": 1.0 if page else None,
                 "hits": [hit(m, i, d) for m, i, d in page]},
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


__all__ = ["DocumentStore", "install", "flatten_settings", "nest_settings", "parse_time"]
