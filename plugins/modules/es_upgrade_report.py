#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: es_upgrade_report
short_description: Write the report of a rolling-upgrade run (HTML and JSON) for the change ticket
description:
  - Writes two files into O(dest), named C(upgrade-<cluster>-<start time>.html) and C(.json), from what the
    rolling upgrade's modules returned during the run (M(logstack.elk.es_rolling_upgrade),
    M(logstack.elk.es_rolling_upgrade_info), M(logstack.elk.es_replace_node)).
  - The HTML page is self-contained (inline CSS and SVG, no script, no external asset) and shows the outcome,
    one summary line per node (version and instance before and after, minutes, bytes moved, outcome), a per-node
    timeline of the steps, cluster health and shard copies per node over time, the plan, the refusals and
    their reasons, a failure's message, and the terminated instance ids.
  - The JSON file holds the same data.
  - Used at the end of the role C(logstack.elk.upgrade) (C(playbooks/upgrade-es.yml)), also when the run failed.
  - Talks to neither Elasticsearch nor AWS; runs where the upgrade's modules ran (the controller, for the
    C(es_clusters) hosts of this collection's inventories).
version_added: "0.1.0"
author:
  - logstack.elk maintainers (@logstack)
options:
  dest:
    description: Folder to write the report into; created when missing.
    type: path
    required: true
  cluster:
    description: Name of the cluster (the C(es_clusters) host).
    type: str
    required: true
  run_id:
    description: The run's lock id (RV(logstack.elk.es_rolling_upgrade#module:run_id)).
    type: str
    default: ""
  strategy:
    description: Replacement strategy of the run.
    type: str
    default: ""
  dry_run:
    description: The upgrade ran in check mode; the report shows the plan only.
    type: bool
    default: false
  lock:
    description: Result of the C(lock) action (its C(lock_note) and reconcile C(actions) are shown).
    type: dict
    default: {}
  preflight:
    description:
      - Result of M(logstack.elk.es_rolling_upgrade_info)'s C(plan) action (C(plan), C(refusals), C(cluster)), also
        when it failed.
    type: dict
    default: {}
  results:
    description:
      - One entry per replaced node as C(roles/upgrade/tasks/node-record.yml) records it (C(node_name),
        C(old_instance_id), C(old_version), C(old_image_id), C(new_nodes), C(timeline), C(handed_over)).
    type: list
    elements: dict
    default: []
  samples:
    description: Cluster samples the modules returned (their RV(logstack.elk.es_replace_node#module:samples)).
    type: list
    elements: dict
    default: []
  terminated_instance_ids:
    description: Instances the run terminated.
    type: list
    elements: str
    default: []
  failure:
    description:
      - The failed task's result when the run failed (C(ansible_failed_result)), with C(task) set to its name;
        its C(msg), C(timeline), C(samples) and C(terminated_instance_ids) are used. Empty when the run did
        not fail.
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Builds the report and returns its summary and paths, writes nothing.
  diff_mode:
    support: none
    description: A new report is written each run; there is nothing to compare.
notes:
  - The chart's health and shard points are the cluster reads the rollout made anyway, thinned; there are more
    of them during long waits and none between module calls.
  - Bytes moved per node are what the old node held when its replacement began (its drain, or the recovery of
    its copies elsewhere, moved that much).
"""

EXAMPLES = r"""
- name: Write the run's report
  logstack.elk.es_upgrade_report:
    dest: reports
    cluster: "{{ inventory_hostname }}"
    run_id: "{{ upgrade_run_id }}"
    preflight: "{{ upgrade_preflight }}"
    results: "{{ upgrade_results }}"
    samples: "{{ upgrade_samples }}"
    terminated_instance_ids: "{{ upgrade_terminated }}"
  register: upgrade_report
"""

RETURN = r"""
html:
  description: Absolute path of the HTML report (also returned in check mode, where nothing is written).
  returned: always
  type: str
  sample: /runner/project/reports/upgrade-logs-prod-20261204T203015Z.html
json:
  description: Absolute path of the JSON report.
  returned: always
  type: str
outcome:
  description: C(succeeded), C(failed), C(refused), C(nothing outdated) or C(planned (check mode, nothing changed)).
  returned: always
  type: str
summary:
  description: One line per node (old -> new, minutes, bytes moved, outcome), then the failure if any.
  returned: always
  type: list
  elements: str
bytes_moved:
  description: Bytes moved in total.
  returned: always
  type: int
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.logstack.elk.plugins.module_utils import report as R


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            cluster=dict(type="str", required=True),
            run_id=dict(type="str", default=""),
            strategy=dict(type="str", default=""),
            dry_run=dict(type="bool", default=False),
            lock=dict(type="dict", default={}),
            preflight=dict(type="dict", default={}),
            results=dict(type="list", elements="dict", default=[]),
            samples=dict(type="list", elements="dict", default=[]),
            terminated_instance_ids=dict(type="list", elements="str", default=[]),
            failure=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    report = R.build(p["cluster"], run_id=p["run_id"], strategy=p["strategy"], preflight=p["preflight"],
                     results=p["results"], samples=p["samples"], terminated=p["terminated_instance_ids"],
                     failure=p["failure"], dry_run=p["dry_run"], lock=p["lock"])
    dest = os.path.abspath(p["dest"])  # a relative dest is the job's working folder; the paths say where
    stem = os.path.join(dest, R.file_stem(report))
    result = dict(changed=True, html=stem + ".html", json=stem + ".json", outcome=report["outcome"],
                  summary=report["summary"], bytes_moved=report["bytes_moved"])
    if not module.check_mode:
        try:
            result["json"], result["html"] = R.write(report, dest)
        except OSError as exc:
            module.fail_json(msg="Cannot write the upgrade report into %s (upgrade_report_dir): %s" % (
                p["dest"], exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
