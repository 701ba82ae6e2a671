"""The sandbox's one place for value formats: version tuples, byte sizes, durations, settings
nesting and flattening.

The collection has its own (``plugins/module_utils/units.py``); the sandbox does not import it on
purpose: it plays the peer the collection is tested against, and a parsing bug shared by both
sides would pass every test.
"""
from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple

BYTE_UNITS = {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "tb": 1024 ** 4, "pb": 1024 ** 5}
# Scenario sizes are written by people: "200MB", "1.5GiB", "10g", or a number of bytes.
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?\s*$", re.I)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(nanos|micros|ms|s|m|h|d)?\s*$")
_SECONDS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def version_tuple(version: str) -> Tuple[int, ...]:
    """"8.15.0", "7.17.29-SNAPSHOT", "3.0.0-alpha1" -> (major, minor, patch)."""
    return tuple(int(p) for p in re.findall(r"\d+", str(version).split("-")[0])[:3])


def parse_size(value: Any, where: str) -> int:
    """Bytes of a size ("200MB", "1.5GiB", "10gb", 1000); ValueError naming ``where`` otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{where} must be a size such as 200MB, not {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"{where} must be a size such as 200MB or 1GB, not {value!r}")
    return int(float(m.group(1)) * BYTE_UNITS[(m.group(2) + "b").lower()])


def parse_byte_size(text: Any) -> Optional[float]:
    """Elasticsearch's ByteSizeValue ("10gb", "512mb", "1.5kb", "100b"); None when it is not one."""
    raw = str(text).strip().lower()
    for suffix in sorted(BYTE_UNITS, key=len, reverse=True):
        number = raw[: -len(suffix)].strip()
        if raw.endswith(suffix) and number.replace(".", "", 1).isdigit():
            return float(number) * BYTE_UNITS[suffix]
    return None


def byte_size_text(n: float) -> str:
    """Elasticsearch's ByteSizeValue text: the largest unit, one decimal at most ("1.5gb", "512mb")."""
    for suffix, div in (("pb", 1024 ** 5), ("tb", 1024 ** 4), ("gb", 1024 ** 3), ("mb", 1024 ** 2), ("kb", 1024)):
        if abs(n) >= div:
            v = n / div
            return f"{v:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{int(n)}b"


def cat_bytes(n: float, unit: Optional[str]) -> str:
    """A byte figure in a _cat table: whole ``unit``s when the request has ``bytes=<unit>``, else "1.5gb"."""
    if unit:
        return str(int(n // BYTE_UNITS.get(unit.lower(), 1)))
    for suffix in ("tb", "gb", "mb", "kb"):
        if n >= BYTE_UNITS[suffix]:
            return f"{n / BYTE_UNITS[suffix]:.1f}{suffix}"
    return f"{int(n)}b"


def parse_seconds(value: Any, where: str) -> float:
    """Seconds of a duration ("5s", "1m", "250ms", "1d", a number of seconds); ValueError naming ``where``."""
    if isinstance(value, bool):
        raise ValueError(f"{where} must be a duration such as 5s, not {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{where} must be a duration such as 5s or 1m, not {value!r}")
    return float(m.group(1)) * _SECONDS[m.group(2)]


def time_param(value: Any, default: float, name: str) -> float:
    """Seconds of an Elasticsearch time value in a request ("30s", "500ms"); ``default`` when absent,
    -1.0 for "-1" (no limit; the caller says what that means); ValueError with Elasticsearch's text."""
    if value is None or value == "":
        return default
    text = str(value).strip()
    if text in ("-1", "-1s"):
        return -1.0
    try:
        return parse_seconds(text, name)
    except ValueError:
        raise ValueError(f"failed to parse setting [{name}] with value [{text}] as a time value: "
                         "unit is missing or unrecognized") from None


def setting_text(value: Any) -> Optional[str]:
    """A setting value as Elasticsearch stores it: strings, "true"/"false", lists joined by commas."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(i) for i in value)
    return str(value)


def flatten(obj: Any, prefix: str = "") -> Dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; values are left as they are."""
    out: Dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict):
                out.update(flatten(v, key))
            else:
                out[key] = v
    return out


def nest(flat: Dict[str, Any]) -> Dict[str, Any]:
    """{"a.b": 1} -> {"a": {"b": 1}}; when both "a" and "a.b" are set, "a.b" stays flat beside "a"."""
    out: Dict[str, Any] = {}
    for key in sorted(flat):
        cur, parts, i = out, key.split("."), 0
        while i < len(parts) - 1 and isinstance(cur.setdefault(parts[i], {}), dict):
            cur, i = cur[parts[i]], i + 1
        cur[".".join(parts[i:])] = flat[key]
    return out
