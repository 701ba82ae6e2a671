#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: es_reindex
short_description: Reindex old indices into the mappings their names get from the current templates
version_added: 0.1.0
description:
  - Selects indices by name, wildcard, regular expression and age (the date in time-based names),
    leaving out today's index, the write index of any alias and data stream backing indices.
  - Refuses, with its name and why, an index that received writes during a probe window
    (O(probe_seconds), read from C(_stats/indexing)).
  - Copies each outdated index into C(<name><suffix>) created with the mappings and settings the
    current index templates give C(<name>) (C(_index_template/_simulate_index), else the legacy
    C(_template)s that match) or the explicit O(mappings)/O(settings), with the source's placement
    (C(index.routing.allocation.*), C(index.hidden)), shard count and replica count (replicas are
    written as the copy fills), and C(refresh_interval=-1) during the copy. The source is write-blocked (C(_block/write)) during the copy.
  - Nothing is deleted or swapped before the verified copy has the source's replica count started
    (green); the final index gets the source's C(index.lifecycle.*) (with C(origination_date)),
    read-only blocks and refresh interval back. See docs/reindex.md for what is and is not preserved.
  - One run per index. A guard index template C(logstack-reindex-<name>) (no aliases,
    C(allow_auto_create=false)) is its lock, keeps template aliases off the copies and refuses the
    auto-creation of the name while it is replaced.
  - Refuses a copy the data nodes have no room for below the low disk watermark, with the figures.
  - The copy runs as a task (C(_reindex?wait_for_completion=false), C(version_type=external)) polled
    through C(_tasks/<id>); its failures are read, and the destination count after a refresh must
    equal the source count before anything is deleted. Servers without the C(_tasks) API
    (osmem-server) are polled by counts; when the count then stops short, the first missing
    documents are copied again synchronously to report their errors.
  - O(mode=copy_back) keeps the original name; the final index of that name is a clone
    (C(_clone), Elasticsearch 7.4+ and OpenSearch) of the verified, write-blocked copy, created
    write-blocked and opened to writes only once verified (count and ids) and green; where the
    clone API is missing (osmem-server) it is created writable and the copy is reindexed back into it.
    O(mode=swap) removes the source and adds its name as an alias of the copy in one atomic
    C(_aliases) call. Existing aliases are carried over in both modes.
  - On any failure it stops, deletes nothing that holds a document it did not copy there, removes the
    partial destination once its task is gone, lifts the write block, reports the first failures and
    where every document is.
  - Resumable. Its state is read from the cluster (which indices exist, write blocks, counts, and a
    C(_meta.logstack_reindex) record in the copy's mapping), so a run interrupted at any step is
    finished or rolled back by the next run.
author:
  - logstack.elk maintainers (@logstack)
extends_documentation_fragment:
  - logstack.elk.es
attributes:
  check_mode:
    support: full
    description: Selects and probes (read only), then returns the plan of steps per index.
  diff_mode:
    support: none
    description: The plan per index is in RV(results).
options:
  indices:
    description:
      - Index names or wildcard patterns (C(fnmatch) style) to consider.
      - At least one of O(indices) and O(regex) is required; with both, a name must match both.
    type: list
    elements: str
  regex:
    description:
      - Python regular expression an index name must contain a match of (C(re.search)).
    type: str
  older_than_days:
    description:
      - Only indices whose name dates them more than this many days before today (UTC).
        Indices without a date in their name are then skipped.
    type: int
  date_regex:
    description:
      - Regular expression with three groups (year, month, day) finding the date in an index name.
        Indices dated today or later are always skipped.
    type: str
    default: '(\d{4})[.\-_](\d{2})[.\-_](\d{2})'
  mode:
    description:
      - C(copy_back) keeps the original index name (two copies); C(swap) copies once and replaces the
        source by an alias of the same name pointing at C(<name><suffix>).
    type: str
    choices: [copy_back, swap]
    default: copy_back
  suffix:
    description:
      - Appended to an index name to name its copy.
    type: str
    default: '-r'
  mappings:
    description:
      - Explicit destination mappings, used instead of the templates' mappings.
    type: dict
  settings:
    description:
      - Destination index settings, merged over the templates' settings.
    type: dict
  use_templates:
    description:
      - Take mappings and settings from C(_index_template/_simulate_index/<name>).
        When false, O(mappings) is required.
    type: bool
    default: true
  probe_seconds:
    description:
      - Length of the window during which an index must receive no writes to be reindexed. C(0)
        disables the probe (not advised, the write block then bounces late writers).
    type: float
    default: 10
  slices:
    description:
      - C(slices) of the reindex request, a number or C(auto).
    type: str
    default: auto
  requests_per_second:
    description:
      - Throttle of the reindex request; C(-1) means unthrottled.
    type: float
    default: -1
  conflicts:
    description:
      - C(abort) stops a copy on a version conflict; C(proceed) counts conflicts and goes on. The count
        check applies either way.
    type: str
    choices: [abort, proceed]
    default: abort
  poll_interval:
    description:
      - Seconds between two polls of a copy.
    type: float
    default: 2
  timeout:
    description:
      - Seconds one copy may take; the task is then cancelled and the index rolled back.
    type: int
    default: 3600
  stall_polls:
    description:
      - Without the C(_tasks) API, a copy whose count did not change over this many polls is over.
    type: int
    default: 5
  max_failures:
    description:
      - How many document failures to report.
    type: int
    default: 5
  break_lock:
    description:
      - The run id of a reindex run whose lock (the index template C(logstack-reindex-<index>)) this run
        may take over, as named by the message refusing a locked index. Only when that run is gone.
    type: str
  lock_stale_seconds:
    description:
      - A lock whose run gave no sign of life for this long is reported as stale, with how to break it.
    type: int
    default: 3600
  disk_check:
    description:
      - Before each copy, refuse when the data nodes lack room for it below the low disk watermark.
    type: bool
    default: true
notes:
  - Run it with O(probe_seconds) long enough to cover the gap between two writes of your shippers.
  - An index that was write-blocked before the run keeps its write block.
seealso:
  - name: Reindex API
    description: The copy each index goes through, and its task.
    link: https://www.elastic.co/guide/en/elasticsearch/reference/current/docs-reindex.html
  - name: Simulate index API
    description: Where the destination's mappings and settings come from.
    link: https://www.elastic.co/guide/en/elasticsearch/reference/current/indices-simulate-index.html
"""

EXAMPLES = r"""
- name: Reindex last month's Logstash indices into the current template, keeping their names
  logstack.elk.es_reindex:
    es_url: https://es.internal:9200
    es_username: admin
    es_password: "{{ lookup('env', 'ES_PASSWORD') }}"
    indices: ["logstash-*"]
    older_than_days: 1
    mode: copy_back

- name: Plan only
  logstack.elk.es_reindex:
    indices: ["logstash-2024.01.*"]
  check_mode: true
  register: plan

- name: One copy and an alias in place of the old index
  logstack.elk.es_reindex:
    regex: '^metrics-\d{4}\.\d{2}$'
    mode: swap
    probe_seconds: 60
"""

RETURN = r"""
results:
  description: One entry per index worked on (or planned, in check mode), in order.
  returned: always
  type: list
  elements: dict
  contains:
    index: {description: Index name., type: str}
    mode: {description: copy_back or swap., type: str}
    status: {description: "reindexed, failed, or planned (check mode).", type: str}
    docs: {description: Documents in the result (the source count in check mode)., type: int}
    seconds: {description: Wall time of this index., type: float}
    docs_per_second: {description: docs / seconds., type: float}
    steps: {description: Steps done by this run (a resumed run starts mid-way)., type: list, elements: str}
    deleted: {description: Indices this run deleted for this index., type: list, elements: str}
    plan: {description: Steps a real run would do (check mode only)., type: list, elements: str}
    msg: {description: Why it failed (failed only)., type: str}
    failures: {description: First document failures (failed only)., type: list, elements: dict}
  sample:
    - {index: logstash-2024.01.01, mode: copy_back, status: reindexed, docs: 120344, seconds: 41.2,
       docs_per_second: 2921.0, steps: [create_temp, block_source, start_copy, wait_copy, replicate_temp,
       delete_source, clone_final, verify_final, delete_temp, restore],
       deleted: [logstash-2024.01.01, logstash-2024.01.01-r]}
skipped:
  description: Indices matched but left alone, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{index: logstash-2026.11.22, reason: "its name dates it today (2026-11-22) or later"}]
refused:
  description: Indices that received writes during the probe window; untouched.
  returned: always
  type: list
  elements: dict
failure:
  description: The index that failed, why, and its first document failures; null when none did.
  returned: always
  type: dict
summary:
  description: One readable line per index.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.logstack.elk.plugins.module_utils.es_client import ES_CONNECTION_SPEC, EsClient, EsError
from ansible_collections.logstack.elk.plugins.module_utils.reindex import (
    DEFAULT_DATE_REGEX, Options, Reindexer, ReindexError, reindex_all, summary_lines)


def main():
    argument_spec = dict(ES_CONNECTION_SPEC)
    argument_spec.update(
        indices=dict(type="list", elements="str"),
        regex=dict(type="str"),
        older_than_days=dict(type="int"),
        date_regex=dict(type="str", default=DEFAULT_DATE_REGEX),
        mode=dict(type="str", choices=["copy_back", "swap"], default="copy_back"),
        suffix=dict(type="str", default="-r"),
        mappings=dict(type="dict"),
        settings=dict(type="dict"),
        use_templates=dict(type="bool", default=True),
        probe_seconds=dict(type="float", default=10),
        slices=dict(type="str", default="auto"),
        requests_per_second=dict(type="float", default=-1),
        conflicts=dict(type="str", choices=["abort", "proceed"], default="abort"),
        poll_interval=dict(type="float", default=2),
        timeout=dict(type="int", default=3600),
        stall_polls=dict(type="int", default=5),
        max_failures=dict(type="int", default=5),
        break_lock=dict(type="str"),
        lock_stale_seconds=dict(type="int", default=3600),
        disk_check=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[("indices", "regex")])
    p = module.params
    try:
        options = Options(
            indices=p["indices"], regex=p["regex"], older_than_days=p["older_than_days"],
            date_regex=p["date_regex"], mode=p["mode"], suffix=p["suffix"], mappings=p["mappings"],
            settings=p["settings"], use_templates=p["use_templates"], probe_seconds=p["probe_seconds"],
            slices=p["slices"], requests_per_second=p["requests_per_second"], conflicts=p["conflicts"],
            poll_interval=p["poll_interval"], timeout=p["timeout"], stall_polls=p["stall_polls"],
            max_failures=p["max_failures"], break_lock=p["break_lock"],
            lock_stale_seconds=p["lock_stale_seconds"], disk_check=p["disk_check"])
        out = reindex_all(Reindexer(EsClient.from_params(p), options), check_mode=module.check_mode)
    except ReindexError as exc:
        module.fail_json(msg=exc.message)
    except EsError as exc:
        module.fail_json(msg=exc.message)
    out["summary"] = summary_lines(out)
    for refused in out["refused"]:
        module.warn("%s refused: %s." % (refused["index"], refused["reason"]))
    if out["failure"]:
        module.fail_json(msg="%s: %s" % (out["failure"]["index"], out["failure"]["msg"]), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
