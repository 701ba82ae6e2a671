"""The one ``_cat`` table renderer of both halves: ``h`` (names, aliases, wildcards), ``s``,
``v``, ``help``, ``format=json`` or aligned text."""
from __future__ import annotations

import fnmatch
from typing import Any, Dict, List, Tuple

from sandbox.state import Request, Response

from .errors import ESError, illegal_argument


def _flag(value: Any) -> bool:
    return value in ("", "true")


def _sortable(v: Any) -> Any:
    try:
        return (0, float(v))
    except (TypeError, ValueError):
        return (1, str(v))


def cat_table(req: Request, columns: List[Tuple[str, str]], default: List[str], rows: List[Dict[str, Any]]) -> Response:
    """columns: (name, alias) pairs; rows keyed by name; default: the columns shown without ``h``."""
    p = req.params
    alias = {a: n for n, a in columns}
    known = [n for n, _ in columns]
    if _flag(p.get("help")):
        return Response(200, "".join(f"{n} | {a} |\n" for n, a in columns))
    if p.get("h"):
        chosen = []
        for h in p["h"].split(","):
            h = h.strip()
            name = h if h in known else alias.get(h)
            if name is None:
                matches = [k for k in known if fnmatch.fnmatchcase(k, h)]
                chosen += matches
                if not matches:
                    raise ESError(400, "illegal_argument_exception", f"header [{h}] is not in the table")
            else:
                chosen.append(name)
    else:
        chosen = default
    if p.get("s"):
        for key in reversed(p["s"].split(",")):
            name, _, order = key.partition(":")
            name = name if name in known else alias.get(name, name)
            rows.sort(key=lambda r: (r.get(name) is None, _sortable(r.get(name))), reverse=order == "desc")
    fmt = p.get("format", "text")
    if fmt == "json":
        return Response(200, [{k: (None if r.get(k) is None else str(r.get(k))) for k in chosen} for r in rows])
    if fmt not in ("text", "txt"):
        raise illegal_argument(f"Unsupported format [{fmt}]")
    table = [[("" if r.get(k) is None else str(r.get(k))) for k in chosen] for r in rows]
    if _flag(p.get("v")):
        table.insert(0, list(chosen))
    if not table:
        return Response(200, "")
    widths = [max(len(row[i]) for row in table) for i in range(len(chosen))]
    lines = [" ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in table]
    return Response(200, "\n".join(lines) + "\n")
