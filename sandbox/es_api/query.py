"""A small Query DSL and aggregations evaluator over documents held in memory.

Supported: match_all, match_none, term, terms, range, exists, ids, match, bool;
aggregations terms, min, max, sum, avg, value_count, range. Values are compared as
their mapped type, so a range query on an integer field holding "9" and "10" orders
them as numbers: this is what lets a test see that a mapping is in force.
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
    if kind == "exists" and not isinstance(spec.get("field"), str):
        raise ESError(400, "parsing_exception", "[exists] must be provided with a [field]", line=1, col=12)
    if kind == "ids" and not isinstance(spec.get("values", []), list):
        raise ESError(400, "parsing_exception", "[ids] query does not support [values]", line=1, col=12)
    if kind == "match_all":
        return lambda _id, _src: True
    if kind == "match_none":
        return lambda _id, _src: False
    if kind == "ids":
        ids = set(str(i) for i in spec.get("values", []))
        return lambda _id, _src: _id in ids
    if kind == "exists":
        field = spec["field"]
        return lambda _id, src: bool(_values(src, field))
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
    if kind == "bool":
        for clause in ("must", "filter", "should", "must_not"):
            for q in _as_list(spec.get(clause)):
                if not isinstance(q, dict):  # BoolQueryBuilder's ObjectParser
                    raise ESError(400, "x_content_parse_exception", "[1:20] [bool] failed to parse field [%s]"
                                  % clause)
        must = [compile_query(q, mappings) for q in _as_list(spec.get("must")) + _as_list(spec.get("filter"))]
        should = [compile_query(q, mappings) for q in _as_list(spec.get("should"))]
        must_not = [compile_query(q, mappings) for q in _as_list(spec.get("must_not"))]
        msm = spec.get("minimum_should_match", 1 if should and not must else 0)

        def boolean(_id: str, src: Dict[str, Any]) -> bool:
            if not all(q(_id, src) for q in must):
                return False
            if any(q(_id, src) for q in must_not):
                return False
            if should and sum(1 for q in should if q(_id, src)) < int(msm):
                return False
            return True
        return boolean
    raise ESError(400, "parsing_exception", "unknown query [%s]" % kind, line=1, col=12)


def _as_list(v: Any) -> List[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def aggregate(aggs: Dict[str, Any], docs: List[Doc], mappings: Dict[str, Any], index: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    if not isinstance(aggs, dict):
        raise ESError(400, "parsing_exception", "Expected [START_OBJECT] under [aggs], but got a [VALUE_STRING]")
    for name, spec in (aggs or {}).items():
        if not isinstance(spec, dict):
            raise ESError(400, "parsing_exception", "Expected [START_OBJECT] under [%s], but got a [VALUE_STRING] in "
                          "[%s]" % (name, name))
        kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
        if len(kinds) != 1:
            raise ESError(400, "parsing_exception", "Expected one aggregation type in [%s]" % name)
        kind = kinds[0]
        body = spec[kind]
        if not isinstance(body, dict):
            raise ESError(400, "parsing_exception", "Expected [START_OBJECT] under [%s], but got a [VALUE_STRING] in "
                          "[%s]" % (kind, name))
        field = body.get("field")
        if kind in ("terms", "min", "max", "sum", "avg", "value_count", "range") and not isinstance(field, str):
            raise ESError(400, "illegal_argument_exception",
                          "Required one of fields [field, script], but none were specified.")
        ftype = _ftype(mappings, field) if field else None
        if ftype == "text" and kind in ("terms", "min", "max", "sum", "avg", "range"):
            raise ESError(400, "illegal_argument_exception",
                          "Text fields are not optimised for operations that require per-document field data like "
                          "aggregations and sorting, so these operations are disabled by default. Please use a "
                          "keyword field instead. Alternatively, set fielddata=true on [%s] in order to load field "
                          "data by uninverting the inverted index. Note that this can use significant memory." % field)

        def typed_values(src: Dict[str, Any]) -> List[Any]:
            res = []
            for v in _values(src, field):
                try:
                    res.append(coerce(ftype or "keyword", v, field))
                except FieldParseError:
                    pass
            return res
        sub = spec.get("aggs") or spec.get("aggregations")
        if kind == "terms":
            counts: Dict[Any, List[Doc]] = {}
            for d in docs:
                for v in set(typed_values(d[1])):
                    counts.setdefault(v, []).append(d)
            size = int(body.get("size", 10))
            ordered = sorted(counts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            buckets = []
            for key, members in ordered[:size]:
                b: Dict[str, Any] = {"key": key, "doc_count": len(members)}
                if ftype == "boolean":
                    b = {"key": 1 if key else 0, "key_as_string": "true" if key else "false", "doc_count": len(members)}
                if sub:
                    b.update(aggregate(sub, members, mappings, index))
                buckets.append(b)
            other = sum(len(m) for _, m in ordered[size:])
            out[name] = {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}
        elif kind in ("min", "max", "sum", "avg", "value_count"):
            vals = [v for d in docs for v in typed_values(d[1])]
            nums = [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if kind == "value_count":
                out[name] = {"value": len(vals)}
            elif kind == "sum":
                out[name] = {"value": float(sum(nums))}
            elif kind == "avg":
                out[name] = {"value": (sum(nums) / len(nums)) if nums else None}
            else:
                out[name] = {"value": (min(nums) if kind == "min" else max(nums)) if nums else None}
        elif kind == "range":
            buckets = []
            for r in body.get("ranges", []):
                lo, hi = r.get("from"), r.get("to")
                members = [d for d in docs if any((lo is None or v >= lo) and (hi is None or v < hi)
                                                  for v in typed_values(d[1]))]
                key = r.get("key") or "%s-%s" % ("*" if lo is None else float(lo), "*" if hi is None else float(hi))
                b = {"key": key, "doc_count": len(members)}
                if lo is not None:
                    b["from"] = float(lo)
                if hi is not None:
                    b["to"] = float(hi)
                if sub:
                    b.update(aggregate(sub, members, mappings, index))
                buckets.append(b)
            out[name] = {"buckets": buckets}
        else:
            raise ESError(400, "parsing_exception", "Unknown aggregation type [%s] did you mean [terms]?" % kind)
    return out


def sort_docs(docs: List[Doc], sort: Any, mappings: Dict[str, Any]) -> List[Doc]:
    for item in reversed(_as_list(sort)):
        if isinstance(item, str):
            field, order = item, "asc"
        else:
            (field, o), = item.items()
            order = o.get("order", "asc") if isinstance(o, dict) else o
        if field == "_doc":
            continue
        ftype = _ftype(mappings, field)

        def key(d: Doc, field: str = field, ftype: str = ftype) -> Tuple[int, Any]:
            vals = []
            for v in _values(d[1], field):
                try:
                    vals.append(coerce(ftype, v, field))
                except FieldParseError:
                    pass
            return (0, min(vals)) if vals else (1, 0)
        docs = sorted(docs, key=key, reverse=(order == "desc"))
    return docs


def iter_matching(docs: Iterable[Doc], query: Optional[Dict[str, Any]], mappings: Dict[str, Any]) -> List[Doc]:
    pred = compile_query(query, mappings)
    return [d for d in docs if pred(d[0], d[1])]
