"""One plain HTTP call to an Elasticsearch-like server, for tests that must see raw status and body."""
from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any, List, Optional, Tuple


def request(url: str, method: str, path: str, body: Any = None, ndjson: Optional[List[Any]] = None,
            timeout: float = 30) -> Tuple[int, Any]:
    """(status, parsed JSON body, or the text when it is not JSON)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    headers = {}
    data = None
    if ndjson is not None:
        data = "".join(json.dumps(line) + "\n" for line in ndjson).encode()
        headers["Content-Type"] = "application/x-ndjson"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    raw = resp.read().decode()
    conn.close()
    try:
        return resp.status, (json.loads(raw) if raw else None)
    except ValueError:
        return resp.status, raw
