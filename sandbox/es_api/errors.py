"""Elasticsearch error shapes.

Handlers (of either half of the sandbox) raise :class:`ESError`; the server turns it
into ``{"error": {"root_cause": [...], "type", "reason", ...}, "status": N}``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional


class ESError(Exception):
    """An Elasticsearch exception: HTTP status, ``type`` and ``reason``.

    ``extra`` keys (``index``, ``index_uuid``, ``resource.type``...) are added to the
    error object and its root cause, as Elasticsearch does.
    """

    def __init__(self, status: int, type_: str, reason: Optional[str], caused_by: Optional[Dict[str, Any]] = None,
                 headers: Optional[Dict[str, Any]] = None, **extra: Any) -> None:
        super().__init__(reason)
        self.status = status
        self.type = type_
        self.reason = reason
        self.caused_by = caused_by
        self.headers = headers or {}
        self.extra = {k.replace("__", "."): v for k, v in extra.items()}

    def cause(self) -> Dict[str, Any]:
        """The error object as it appears in bulk items and task failures."""
        out: Dict[str, Any] = {"type": self.type, "reason": self.reason}
        out.update(self.extra)
        if self.caused_by:
            out["caused_by"] = self.caused_by
        return out

    def body(self) -> Dict[str, Any]:
        root = {"type": self.type, "reason": self.reason}
        root.update(self.extra)
        err = dict(root)
        err["root_cause"] = [root]
        if self.caused_by:
            err["caused_by"] = self.caused_by
        # Elasticsearch puts root_cause first; keep that order for readers.
        ordered = {"root_cause": err.pop("root_cause")}
        ordered.update(err)
        return {"error": ordered, "status": self.status}


def index_not_found(name: str) -> ESError:
    return ESError(404, "index_not_found_exception", "no such index [%s]" % name,
                   resource__type="index_or_alias", resource__id=name, index_uuid="_na_", index=name)


def illegal_argument(reason: str) -> ESError:
    return ESError(400, "illegal_argument_exception", reason)
