# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Adding a voting configuration exclusion on every version that has them (docs/upgrade.md).

* Elasticsearch 7.0 to 7.7 name the node in the path (``POST _cluster/voting_config_exclusions/<name>``);
  ``?node_names=`` exists from 7.8 (and the path form is gone in 8.0). OpenSearch takes ``node_names``.
* The request waits server-side until the exclusion took effect, up to ``timeout``; that timeout is
  kept below the client's read timeout, or the client gives up first and retries a request that
  already added the exclusion.
* A reconfiguration slower than that (a new master to elect first) answers a ``timeout_exception``
  (HTTP 500 before Elasticsearch 9.0, 429 from 9.0) while the exclusion is in place: not a failure;
  the step then waits for it within its own timeout.
"""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError

PATH_FORM_UNTIL = (7, 8, 0)  # Elasticsearch versions below this name the node in the path


def server_timeout(client_timeout, budget=None):
    """Seconds for the server-side wait: below the client's read timeout (5 s margin, at least 1 s),
    and no longer than the step's budget."""
    limit = max(1, int(client_timeout) - 5) if client_timeout and client_timeout > 6 else max(1, int(
        (client_timeout or 2) // 2))
    return max(1, min(limit, int(budget))) if budget else limit


def add_exclusion(es, node_name, budget=None):
    """Exclude node_name from the voting configuration. True when it took effect within the request,
    False when the server's wait timed out (the exclusion is in place; the caller waits for it)."""
    timeout = "%ds" % server_timeout(es.timeout, budget)
    if es.distribution == "elasticsearch" and es.version < PATH_FORM_UNTIL:
        path, params = "/_cluster/voting_config_exclusions/%s" % node_name, {"timeout": timeout}
    else:
        path, params = "/_cluster/voting_config_exclusions", {"node_names": node_name, "timeout": timeout}
    try:
        es.post(path, params=params)
    except EsError as exc:
        if "timeout" in str(exc.error_type or ""):  # 500 or 429 (by version), never a retry
            return False
        raise
    return True
