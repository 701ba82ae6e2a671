"""Routing and parameter validation by Elasticsearch's own REST spec.

The JSON files in ``sandbox/rest-api-spec/`` (copied unchanged from
elastic/elasticsearch-specification) list, per API, its URL paths, methods and query
parameters. A request is routed to an API only if real Elasticsearch would accept its
path and method, and rejected if it carries a query parameter Elasticsearch would
reject, so a module sending such a request fails in our tests as it would in production.
"""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

SPEC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rest-api-spec")

# Accepted by every endpoint without being listed in the spec (see the spec's README).
GLOBAL_PARAMS = frozenset(["pretty", "human", "error_trace", "filter_path", "source", "source_content_type"])

# Path parts that name indices or aliases: Elasticsearch refuses names starting with "_"
# there, so "/_foo" is not read as an index called "_foo" ("_all" is the exception).
_INDEX_PARTS = frozenset(["index", "alias", "new_index"])


@dataclass(frozen=True)
class Route:
    api: str
    segments: Tuple[str, ...]  # literal text, or "{part}"
    methods: Tuple[str, ...]
    params: frozenset
    body_required: bool

    def specificity(self) -> Tuple[int, ...]:
        # Lower sorts first: a literal segment beats a path part at the same position.
        return tuple(1 if s.startswith("{") else 0 for s in self.segments)

    def match(self, segs: List[str]) -> Optional[Dict[str, str]]:
        if len(segs) != len(self.segments):
            return None
        parts: Dict[str, str] = {}
        for want, got in zip(self.segments, segs):
            if want.startswith("{"):
                name = want[1:-1]
                if not got:
                    return None
                if name in _INDEX_PARTS and got.startswith("_") and got != "_all":
                    return None
                parts[name] = got
            elif want != got:
                return None
        return parts


class Router:
    def __init__(self, spec_dir: str = SPEC_DIR) -> None:
        self.routes: List[Route] = []
        self.apis: Dict[str, dict] = {}
        for path in sorted(glob.glob(os.path.join(spec_dir, "*.json"))):
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
            for api, spec in doc.items():
                self.apis[api] = spec
                params = frozenset(spec.get("params", {}))
                body_required = bool((spec.get("body") or {}).get("required"))
                for p in spec["url"]["paths"]:
                    segs = tuple(s for s in p["path"].split("/") if s)
                    self.routes.append(Route(api, segs, tuple(p["methods"]), params, body_required))
        self.routes.sort(key=lambda r: r.specificity())

    def resolve(self, method: str, segs: List[str]) -> Tuple[Optional[Route], Dict[str, str], Set[str]]:
        """Return (route, parts, allowed_methods).

        route is None when nothing takes the method; allowed_methods then says whether
        the path is known at all (405) or not (400, no handler).
        """
        allowed: Set[str] = set()
        head_fallback: Optional[Tuple[Route, Dict[str, str]]] = None
        for route in self.routes:
            parts = route.match(segs)
            if parts is None:
                continue
            allowed.update(route.methods)
            if method in route.methods:
                return route, parts, allowed
            # Elasticsearch answers HEAD with the GET handler when none is registered.
            if method == "HEAD" and "GET" in route.methods and head_fallback is None:
                head_fallback = (route, parts)
        if head_fallback:
            return head_fallback[0], head_fallback[1], allowed
        return None, {}, allowed

    def unknown_params(self, route: Route, params: Dict[str, str]) -> List[str]:
        return sorted(p for p in params if p not in route.params and p not in GLOBAL_PARAMS)


_ROUTER: Optional[Router] = None


def router() -> Router:
    global _ROUTER
    if _ROUTER is None:
        _ROUTER = Router()
    return _ROUTER
