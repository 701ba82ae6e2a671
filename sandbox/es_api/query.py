"""The few queries the collection and its tests send, evaluated over documents held in memory.

Supported: match_all, ids (the reindex of missing documents), match_phrase (the search for a
task's stored result), term, terms, match and range. Values are compared as their mapped type,
so a range query on an integer field holding "9" and "10" orders them as numbers: this is what
lets a test see that a mapping is in force. Aggregations: the metric ones (min, max, sum, avg,
value_count; the reindex tests check a new mapping with ``max``). No bucket aggregations, no sorting
other than ``_doc``: the real clusters (tests/real) cover the rest of the document APIs.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from .errors import ESError
from .mapping import FieldParseError, NUMERIC_TYPES, coerce, field_mapping

Doc = Tuple[str, Dict[str, Any]]  # (_id, _source)


def _values(source: Dict[str, Any], field: str) -> List[Any]:
    """Values of a dotted field; ``x.keyword`` reads ``x``."""
    cur: List[Any] = [source]
    for part in field.split("."):
        nxt: List[Any] = []
        for c in cur:
            if isinstance(c, dict) and part in c:
                v = c[part]
                nxt.extend(v if isinstance(v, list) else [v])
        if not nxt and part in ("keyword", "raw"):
            continue  # a multi-field: same value as its parent
        cur = nxt
    return [v for v in cur if v is not None and not isinstance(v, dict)]


def _ftype(mappings: Dict[str, Any], field: str) -> str:
    m = field_mapping(mappings, field)
    return (m or {}).get("type", "keyword")


def _typed(mappings: Dict[str, Any], field: str, value: Any) -> Any:
    ftype = _ftype(mappings, field)
    try:
        return coerce(ftype, value, field)
    except FieldParseError:
        raise ESError(400, "query_shard_exception", "failed to create query: For input string: \"%s\"" % value)


def _tokens(text: Any) -> List[str]:
    return [t for t in re.split(r"\W+", str(text).lower()) if t]


def _term_match(mappings: Dict[str, Any], field: str, want: Any, source: Dict[str, Any]) -> bool:
    ftype = _ftype(mappings, field)
    vals = _values(source, field)
    if ftype == "text":
        return any(str(want) in _tokens(v) for v in vals)
    target = _typed(mappings, field, want)
    for v in vals:
        try:
            if coerce(ftype, v, field) == target:
                return True
        except FieldParseError:
            continue
    return False


def compile_query(query: Optional[Dict[str, Any]], mappings: Dict[str, Any]) -> Callable[[str, Dict[str, Any]], bool]:
    if not query:
        return lambda _id, _src: True
    if not isinstance(query, dict) or len(query) != 1:
        raise ESError(400, "parsing_exception", "[_na] query malformed, must start with start_object")
    (kind, spec), = query.items()
    if not isinstance(spec, dict):
        raise ESError(400, "parsing_exception", "[%s] query malformed, no start_object after query name" % kind,
                      line=1, col=12)
    if kind in ("term", "match", "match_phrase", "terms", "range"):
        fields = [k for k in spec if k != "boost"]
        if not fields:  # the query builder's constructor refuses it
            raise ESError(400, "illegal_argument_exception", "field name is null or empty")
        if len(fields) != 1:
            raise ESError(400, "parsing_exception", "[%s] query doesn't support multiple fields, found [%s]"
                          % (kind, ", ".join(fields)), line=1, col=12)
        value = spec[fields[0]]
        if kind == "terms" and not isinstance(value, list):
            raise ESError(400, "parsing_exception", "[terms] query does not support [%s]" % fields[0], line=1, col=12)
        if kind == "range" and not isinstance(value, dict):
            raise ESError(400, "parsing_exception", "[range] query does not support [%s]" % fields[0], line=1, col=12)
    if kind == "ids" and not isinstance(spec.get("values", []), list):
        raise ESError(400, "parsing_exception", "[ids] query does not support [values]", line=1, col=12)
    if kind == "match_all":
        return lambda _id, _src: True
    if kind == "ids":
        ids = set(str(i) for i in spec.get("values", []))
        return lambda _id, _src: _id in ids
    if kind in ("term", "match", "match_phrase"):
        (field, val), = ((k, v) for k, v in spec.items() if k != "boost")
        if isinstance(val, dict):
            val = val.get("value", val.get("query"))
        if kind != "term" and _ftype(mappings, field) == "text":
            want = _tokens(val)
            return lambda _id, src: any(all(t in _tokens(v) for t in want) for v in _values(src, field))
        return lambda _id, src: _term_match(mappings, field, val, src)
    if kind == "terms":
        (field, vals), = ((k, v) for k, v in spec.items() if k != "boost")
        return lambda _id, src: any(_term_match(mappings, field, v, src) for v in vals)
    if kind == "range":
        (field, bounds), = ((k, v) for k, v in spec.items() if k != "boost")
        ftype = _ftype(mappings, field)
        ops = {}
        for op in ("gt", "gte", "lt", "lte"):
            if op in bounds:
                ops[op] = _typed(mappings, field, bounds[op]) if ftype in NUMERIC_TYPES or ftype in ("date",) \
                    else bounds[op]
        checks = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
                  "lte": lambda a, b: a <= b}

        def rng(_id: str, src: Dict[str, Any]) -> bool:
            for v in _values(src, field):
                try:
                    tv = coerce(ftype, v, field)
                except FieldParseError:
                    continue
                try:
                    if all(checks[op](tv, b) for op, b in ops.items()):
                        return True
                except TypeError:
                    continue
            return False
        return rng
    raise ESError(400, "parsing_exception", "unknown query [%s]" % kind, line=1, col=12)


METRICS = ("min", "max", "sum", "avg", "value_count")


def aggregate(aggs: Any, docs: List[Doc], mappings: Dict[str, Any]) -> Dict[str, Any]:
    """The metric aggregations of a search over its matching documents."""
    if not isinstance(aggs, dict):
        raise ESError(400, "parsing_exception", "Expected [START_OBJECT] under [aggs], but got a [VALUE_STRING]")
    out: Dict[str, Any] = {}
    for name, spec in aggs.items():
        if not isinstance(spec, dict):
            raise ESError(400, "parsing_exception", "Expected [START_OBJECT] under [%s], but got a [VALUE_STRING] in "
                          "[%s]" % (name, name))
        kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
        if len(kinds) != 1:
            raise ESError(400, "parsing_exception", "Expected one aggregation type in [%s]" % name)
        kind, body = kinds[0], spec[kinds[0]]
        if kind not in METRICS:
            raise ESError(400, "illegal_argument_exception", "the sandbox implements no [%s] aggregation, only %s "
                          "(sandbox/es_api/README.md)" % (kind, ", ".join(METRICS)))
        if not isinstance(body, dict):
            raise ESError(400, "parsing_exception", "Expected [START_OBJECT] under [%s], but got a [VALUE_STRING] in "
                          "[%s]" % (kind, name))
        field = body.get("field")
        if not isinstance(field, str):
            raise ESError(400, "illegal_argument_exception",
                          "Required one of fields [field, script], but none were specified.")
        ftype = _ftype(mappings, field)
        if ftype == "text" and kind != "value_count":
            raise ESError(400, "illegal_argument_exception",
                          "Text fields are not optimised for operations that require per-document field data like "
                          "aggregations and sorting, so these operations are disabled by default. Please use a "
                          "keyword field instead. Alternatively, set fielddata=true on [%s] in order to load field "
                          "data by uninverting the inverted index. Note that this can use significant memory." % field)
        vals = []
        for _id, src in docs:
            for v in _values(src, field):
                try:
                    vals.append(coerce(ftype or "keyword", v, field))
                except FieldParseError:
                    pass
        nums = [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if kind == "value_count":
            out[name] = {"value": len(vals)}
        elif kind == "sum":
            out[name] = {"value": float(sum(nums))}
        elif kind == "avg":
            out[name] = {"value": (sum(nums) / len(nums)) if nums else None}
        else:
            out[name] = {"value": (min(nums) if kind == "min" else max(nums)) if nums else None}
    return out


def iter_matching(docs: Iterable[Doc], query: Optional[Dict[str, Any]], mappings: Dict[str, Any]) -> List[Doc]:
    pred = compile_query(query, mappings)
    return [d for d in docs if pred(d[0], d[1])]
