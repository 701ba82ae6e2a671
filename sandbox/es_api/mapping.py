"""Mappings: dynamic mapping of new fields and parsing documents against mapped types.

Enough of Elasticsearch's behaviour for tests to prove a mapping is in force: a value
that cannot be parsed as its field's type is rejected naming the field, and queries
compare values as their mapped type (numbers as numbers).
"""
from __future__ import annotations

import copy
import datetime
import json
import re
from typing import Any, Dict, Optional, Tuple

from .errors import ESError

INTEGER_TYPES = {"long": (-2 ** 63, 2 ** 63 - 1), "integer": (-2 ** 31, 2 ** 31 - 1),
                 "short": (-2 ** 15, 2 ** 15 - 1), "byte": (-128, 127), "unsigned_long": (0, 2 ** 64 - 1)}
FLOAT_TYPES = {"double", "float", "half_float", "scaled_float"}
NUMERIC_TYPES = set(INTEGER_TYPES) | FLOAT_TYPES
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")


class FieldParseError(Exception):
    def __init__(self, field: str, ftype: str, value: Any, cause: Dict[str, Any]) -> None:
        super().__init__(field)
        self.field, self.ftype, self.value, self.cause = field, ftype, value, cause


def _preview(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join("%s=%s" % (k, _preview(v)) for k, v in value.items()) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_date(value: Any) -> Optional[float]:
    """Epoch milliseconds of an ES default-format date (strict_date_optional_time||epoch_millis)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if value.lstrip("-").isdigit():
            return float(value)
        if _DATE_RE.match(value):
            text = value.replace(" ", "T").replace("Z", "+00:00")
            try:
                dt = datetime.datetime.fromisoformat(text)
            except ValueError:
                return None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=datetime.timezone.utc)
            return dt.timestamp() * 1000.0
    return None


def coerce(ftype: str, value: Any, field: str) -> Any:
    """The value as the field type reads it; FieldParseError if it cannot be parsed."""
    if ftype in INTEGER_TYPES:
        lo, hi = INTEGER_TYPES[ftype]
        try:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, (int, float)):
                num = int(value)
            else:
                num = int(float(str(value))) if re.match(r"^\s*-?\d+(\.\d+)?\s*$", str(value)) else None
                if num is None:
                    raise ValueError
        except (ValueError, OverflowError):
            raise FieldParseError(field, ftype, value, {"type": "number_format_exception",
                                                        "reason": 'For input string: "%s"' % _preview(value)})
        if not lo <= num <= hi:
            raise FieldParseError(field, ftype, value, {"type": "illegal_argument_exception",
                                                        "reason": "Value [%s] is out of range for %s" % (value, ftype)})
        return num
    if ftype in FLOAT_TYPES:
        try:
            if isinstance(value, bool) or isinstance(value, (dict, list)):
                raise ValueError
            return float(value)
        except (ValueError, TypeError):
            raise FieldParseError(field, ftype, value, {"type": "number_format_exception",
                                                        "reason": 'For input string: "%s"' % _preview(value)})
    if ftype == "boolean":
        if value is True or value == "true":
            return True
        if value is False or value == "false" or value == "":
            return False
        raise FieldParseError(field, ftype, value, {"type": "illegal_argument_exception", "reason":
                                                    "Failed to parse value [%s] as only [true] or [false] are allowed."
                                                    % _preview(value)})
    if ftype in ("date", "date_nanos"):
        ms = parse_date(value)
        if ms is None:
            raise FieldParseError(field, ftype, value, {"type": "illegal_argument_exception", "reason":
                                                        "failed to parse date field [%s] with format "
                                                        "[strict_date_optional_time||epoch_millis]" % _preview(value)})
        return ms
    if ftype in ("keyword", "text", "match_only_text", "wildcard", "constant_keyword", "ip"):
        if isinstance(value, dict):
            raise FieldParseError(field, ftype, value, {"type": "illegal_state_exception", "reason":
                                                        "Can't get text on a START_OBJECT at 1:1"})
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else json.dumps(value)
    return value


def infer_type(value: Any) -> Dict[str, Any]:
    """Elasticsearch's default dynamic mapping of a JSON value."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, dict):
        return {"properties": {}}
    if isinstance(value, str) and _DATE_RE.match(value) and parse_date(value) is not None:
        return {"type": "date"}
    return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}


def parse_document(mappings: Dict[str, Any], source: Dict[str, Any], doc_id: str, es_major: int,
                   es_minor: int) -> Tuple[Dict[str, Any], bool]:
    """Check ``source`` against ``mappings``; return (new mappings, changed).

    Raises ESError (mapper_parsing_exception, or document_parsing_exception from 8.8 on)
    naming the field that cannot be parsed, as Elasticsearch rejects the document.
    """
    new = copy.deepcopy(mappings) if mappings else {}
    changed = False
    exc_type = "document_parsing_exception" if (es_major, es_minor) >= (8, 8) else "mapper_parsing_exception"
    root_dynamic = str(new.get("dynamic", "true")).lower()

    def walk(props: Dict[str, Any], obj: Dict[str, Any], prefix: str, dynamic: str) -> None:
        nonlocal changed
        for key, value in obj.items():
            full = prefix + key
            if value is None:
                continue
            mapping = props.get(key)
            if mapping is None:
                if dynamic == "strict":
                    raise ESError(400, "strict_dynamic_mapping_exception",
                                  "[1:2] mapping set to strict, dynamic introduction of [%s] within [%s] is not allowed"
                                  % (key, prefix.rstrip(".") or "_doc"))
                if dynamic == "false":
                    continue
                sample = value[0] if isinstance(value, list) and value else value
                if isinstance(value, list) and not value:
                    continue
                mapping = infer_type(sample)
                props[key] = mapping
                changed = True
            values = value if isinstance(value, list) else [value]
            for v in values:
                if "properties" in mapping or mapping.get("type") in ("object", "nested"):
                    if not isinstance(v, dict):
                        raise ESError(400, exc_type, "[1:2] object mapping for [%s] tried to parse field [%s] as "
                                      "object, but found a concrete value" % (full, key))
                    walk(mapping.setdefault("properties", {}), v, full + ".",
                         str(mapping.get("dynamic", dynamic)).lower())
                else:
                    ftype = mapping.get("type", "object")
                    try:
                        coerce(ftype, v, full)
                    except FieldParseError as e:
                        raise ESError(400, exc_type, "[1:2] failed to parse field [%s] of type [%s] in document with "
                                      "id '%s'. Preview of field's value: '%s'" % (full, ftype, doc_id, _preview(v)),
                                      caused_by=e.cause)

    walk(new.setdefault("properties", {}), source, "", root_dynamic)
    return new, changed


def field_mapping(mappings: Dict[str, Any], field: str) -> Optional[Dict[str, Any]]:
    """The mapping of a dotted field path, multi-fields (``msg.keyword``) included."""
    props = (mappings or {}).get("properties", {})
    parts = field.split(".")
    m: Optional[Dict[str, Any]] = None
    i = 0
    while i < len(parts):
        m = props.get(parts[i])
        if m is None:
            return None
        if i + 1 < len(parts) and "fields" in m and parts[i + 1] in m["fields"]:
            return m["fields"][parts[i + 1]] if i + 2 == len(parts) else None
        props = m.get("properties", {})
        i += 1
    return m


def merge_mappings(old: Dict[str, Any], new: Dict[str, Any]) -> Dict[str, Any]:
    """put_mapping semantics: add fields; a field's type cannot change."""
    out = copy.deepcopy(old) if old else {}
    for key, val in (new or {}).items():
        if key != "properties":
            out[key] = copy.deepcopy(val)
    def merge_props(dst: Dict[str, Any], src: Dict[str, Any], prefix: str) -> None:
        for name, m in src.items():
            if name not in dst:
                dst[name] = copy.deepcopy(m)
                continue
            cur = dst[name]
            cur_t = cur.get("type", "object" if "properties" in cur else None)
            new_t = m.get("type", "object" if "properties" in m else None)
            if cur_t != new_t:
                raise ESError(400, "illegal_argument_exception",
                              "mapper [%s%s] cannot be changed from type [%s] to [%s]"
                              % (prefix, name, cur_t, new_t))
            if "properties" in m:
                merge_props(cur.setdefault("properties", {}), m["properties"], prefix + name + ".")
            for k, v in m.items():
                if k not in ("properties", "type"):
                    cur[k] = copy.deepcopy(v)
    merge_props(out.setdefault("properties", {}), (new or {}).get("properties", {}), "")
    return out
