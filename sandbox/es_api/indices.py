"""Index endpoints of the documents half: create/delete/exists/get, settings, mappings, blocks,
refresh, stats, aliases, index and legacy templates, simulate, data streams, ``_cat/indices`` and
``_cat/aliases``. The state they change is ``store.DocumentStore``."""
from __future__ import annotations

import copy
import fnmatch
from typing import Any, Dict, List, Optional

from sandbox import units
from sandbox.state import IndexMeta, Request, Response

from . import mapping as mp
from .cat import cat_table
from .errors import ESError, illegal_argument, index_not_found
from .store import (DocumentStore, _bool, _int_field, _obj, _shards_header, _store, api, flatten_settings,
                    nest_settings)



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
    known = [(c, c) for c in cols + ["creation.date"] + ([] if "dataset.size" in cols else ["dataset.size"])]
    return cat_table(req, known, cols, rows)


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
    cols = ["alias", "index", "filter", "routing.index", "routing.search", "is_write_index"]
    return cat_table(req, [(c, c) for c in cols], cols, rows)
