# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Diagnosing: what the cluster looks like when a step fails, and the operator's one-sentence
message naming the node, the step, the health, the unassigned shards with their deciders and
what is left in place."""
from __future__ import annotations

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError
from ansible_collections.logstack.elk.plugins.module_utils.rollout import leftovers
from ansible_collections.logstack.elk.plugins.module_utils.rollout.explaining import explain_unassigned


class StepFailed(Exception):
    """A step could not complete; ``message`` is the operator's sentence."""

    def __init__(self, message, step=None, node=None, diagnosis=None):
        super().__init__(message)
        self.message = message
        self.step = step
        self.node = node
        self.diagnosis = diagnosis or {}


class Diagnosing:
    """Mixin of Rollout (rollout/base.py): needs cluster."""

    def explains(self, view):
        """Every unassigned copy explained, one request per situation (rollout/explaining.py)."""
        return explain_unassigned(self.cluster, view, tolerate_errors=True)

    def diagnose(self):
        """What the cluster looks like and what is left in place, for failure messages."""
        out = {}
        try:
            view = self.cluster.view()
        except EsError as exc:
            return {"error": exc.message}
        out["health"] = view.status
        out["nodes"] = len(view.nodes)
        out["initializing_or_relocating"] = view.moving
        unassigned = []
        # every copy explained (grouped), only the first ten shown
        for (index, shard), exp in sorted(self.explains(view).items())[:10]:
            reasons = []
            for dec in exp.get("node_allocation_decisions") or []:
                for d in dec.get("deciders") or []:
                    if d.get("decision") == "NO":
                        reasons.append("%s on %s: %s (change %s)" % (
                            d.get("decider"), dec.get("node_name"), d.get("explanation"),
                            leftovers.decider_setting(d.get("decider"), d.get("explanation"))))
            unassigned.append({"shard": "%s[%s]" % (index, shard),
                               "explanation": exp.get("allocate_explanation") or exp.get("error"),
                               "deciders": reasons[:4]})
        out["unassigned"] = unassigned
        out["allocation_exclusions"] = view.excluded_names + ["_id " + i for i in view.excluded_ids]
        out["voting_exclusions"] = view.voting_excluded_names()
        out["shutdown_records"] = sorted(view.shutdowns)
        return out

    def _kept_copies(self, step):
        """For a drain or termination that gave up: what keeps each copy still on the node (the
        deciders and the setting to change, from allocation explain)."""
        name = getattr(self, "node_name", None)
        if not name or step not in ("drain", "terminate"):
            return []
        try:
            return leftovers.blockers(self.cluster, self.cluster.view(), name)
        except EsError:
            return []

    def left_in_place(self, diag):
        parts = []
        if diag.get("allocation_exclusions"):
            parts.append("allocation exclusion of %s (keeps shards off a node that is being replaced)"
                         % ", ".join(diag["allocation_exclusions"]))
        if diag.get("shutdown_records"):
            parts.append("node shutdown record(s) %s (same reason)" % ", ".join(diag["shutdown_records"]))
        if diag.get("voting_exclusions"):
            parts.append("voting exclusion of %s (keeps it from being elected while it is replaced)"
                         % ", ".join(diag["voting_exclusions"]))
        return parts

    def failure(self, step, node, what):
        diag = self.diagnose()
        unassigned = "; ".join("%s %s" % (u["shard"], " | ".join(u["deciders"][:2]) or u["explanation"] or "")
                               for u in diag.get("unassigned", [])[:5])
        held = self._kept_copies(step)
        if held:
            diag["kept_on_node"] = held
        left = self.left_in_place(diag) + leftovers.left_changed(self.aws, self.opts) + [
            "the rollout lock (so no other run starts on a half-done cluster)"]
        message = ("Node %s, step %s: %s.%s Cluster is %s with %s node(s)%s. Left in place: %s. No other node was "
                   "touched; fix the cause and rerun the playbook to continue from here." % (
                       node, step, what, (" Copies kept on it: %s." % "; ".join(held)) if held else "",
                       diag.get("health", "unreachable"), diag.get("nodes", "?"),
                       (", unassigned: " + unassigned) if unassigned else "", "; ".join(left)))
        return StepFailed(message, step=step, node=node, diagnosis=diag)
