"""The clone API (``POST|PUT /<index>/_clone/<target>``, Elasticsearch 7.4+, OpenSearch), as
Elasticsearch answers it (TransportResizeAction / MetadataCreateIndexService):

* the source must be a concrete index (an alias or a missing name: 404 ``index_not_found_exception``);
* the body takes ``settings`` and ``aliases`` only; ``number_of_shards``, when given, must equal
  the source's (400);
* the target must not exist as an index (400 ``resource_already_exists_exception``) or an alias
  (400 ``invalid_index_name_exception``);
* the source must refuse writes (``index.blocks.write``, ``read_only``, the flood-stage block):
  otherwise 500 ``illegal_state_exception`` "index X must be read-only to resize index";
* the target gets the source's mappings and its settings except ``number_of_replicas`` and
  ``auto_expand_replicas`` (so a write block comes along), the request's settings over them,
  ``index.resize.source.name/uuid``, and no index template and no alias but the request's;
* every document of each source shard is in the same target shard (segments are hard-linked),
  visible at once; each target primary starts on the node of the source's primary (Elasticsearch's
  ResizeAllocationDecider) and the replicas then recover from it as any replica does.

Kept apart from documents.py: registered by :func:`install` after ``documents.install``.
"""
from __future__ import annotations

import copy
from typing import Any, Dict

from sandbox.state import Request, Response

from .errors import ESError

_NOT_COPIED = ("index.number_of_replicas", "index.auto_expand_replicas", "index.uuid", "index.creation_date",
               "index.provided_name", "index.resize.source.name", "index.resize.source.uuid")


def _flat(settings: Any, prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in (settings or {}).items():
        if isinstance(value, dict):
            out.update(_flat(value, prefix + key + "."))
        else:
            out[prefix + key] = value
    return {(k if k.startswith("index.") else "index." + k): v for k, v in out.items()}


def _str(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return str(value).lower() if isinstance(value, bool) else str(value)


def clone(state: Any, req: Request) -> Response:
    store = state.documents
    store.tick()
    source, target = req.parts["index"], req.parts["target"]
    body = req.body or {}
    for key in body:
        if key not in ("settings", "aliases"):
            raise ESError(400, "x_content_parse_exception", "[1:2] [resize_request] unknown field [%s]" % key)
        if not isinstance(body[key], dict):
            raise ESError(400, "x_content_parse_exception", "[1:2] [resize_request] %s doesn't support values of "
                          "type: VALUE_STRING" % key)
    src = state.indices.get(source)
    if src is None:
        # Resolved from the cluster state by name, not by the index name resolver: no resource.* in the
        # error (recorded from Elasticsearch 7.17, tests/fixtures/recordings)
        raise ESError(404, "index_not_found_exception", "no such index [%s]" % source, index_uuid="_na_",
                      index=source)
    wanted = {k: _str(v) for k, v in _flat(body.get("settings")).items()}
    shards = wanted.get("index.number_of_shards")
    if shards is not None and str(shards) != str(src.number_of_shards):
        raise ESError(400, "illegal_argument_exception", "The number of target shards [%s] must be the same as "
                      "the number of source shards [%d] when cloning" % (shards, src.number_of_shards))
    if target in state.indices:
        raise ESError(400, "resource_already_exists_exception", "index [%s/%s] already exists"
                      % (target, state.indices[target].uuid), index_uuid=state.indices[target].uuid, index=target)
    if any(target in m.aliases for m in state.indices.values()):
        raise ESError(400, "invalid_index_name_exception", "Invalid index name [%s], already exists as alias"
                      % target, index_uuid="_na_", index=target)
    if not (src.write_block or src.read_only_allow_delete):
        raise ESError(500, "illegal_state_exception", "index %s must be read-only to resize index. use "
                      "\"index.blocks.write=true\"" % source)
    settings = {k: v for k, v in src.settings.items() if k not in _NOT_COPIED}
    settings.update({k: v for k, v in wanted.items() if v is not None})
    replicas = settings.pop("index.number_of_replicas", "1")
    settings.update({"index.number_of_replicas": "0", "index.resize.source.name": source,
                     "index.resize.source.uuid": src.uuid})
    meta = store.create_index(target, settings, copy.deepcopy(src.mappings), body.get("aliases"),
                              apply_templates=False)
    meta.settings["index.version.created"] = src.settings.get("index.version.created",
                                                              meta.settings["index.version.created"])
    # The segments, hard-linked: same documents per shard, same versions and sequence numbers.
    meta.docs = copy.deepcopy(src.docs)
    meta.synthetic_docs = list(src.synthetic_docs)
    meta.size_bytes = list(src.size_bytes)
    ex, sx = store.extra[target], store.extra[source]
    ex.versions = copy.deepcopy(sx.versions)
    ex.seq_no = list(sx.seq_no)
    ex.pending = [{} for _ in range(meta.number_of_shards)]
    _pin_primaries(state, source, target)
    # Replicas come after the primaries, recovering the copied data like any replica.
    store.update_settings(meta, {"index.number_of_replicas": replicas})
    acked = all(store.primary_active(target, s) for s in range(meta.number_of_shards))
    return Response(200, {"acknowledged": True, "shards_acknowledged": acked, "index": target})


def _pin_primaries(state: Any, source: str, target: str) -> None:
    """Each target primary on the node of the source's active primary (ResizeAllocationDecider)."""
    eng = getattr(state, "engine", None)
    if eng is None or target not in getattr(eng, "shards", {}):
        return
    for shard, copies in enumerate(eng.shards[target]):
        held = [c for c in eng.shards.get(source, [[]])[shard]
                if c.primary and c.state in ("STARTED", "RELOCATING") and c.node_id]
        primary = next((c for c in copies if c.primary), None)
        if held and primary is not None and primary.node_id:
            primary.node_id = held[0].node_id
    eng.version += 1


def install(state: Any) -> None:
    state.register("indices.clone", clone)
