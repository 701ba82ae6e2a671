# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report of one rolling-upgrade run, for the change ticket: a JSON document and one
self-contained HTML page (inline CSS and SVG, no script, no external asset).

Plain Python, no Ansible. Its input is what the upgrade's modules already return (the
preflight's plan and refusals, each node's step timeline, terminated instance ids, a failed
step's message) plus the cluster samples of :class:`Sampler`: every read of the cluster the
rollout makes anyway (``Cluster.view``) is also kept, thinned, as a point of "health over time"
and "shards per node over time", so sampling costs no request of its own.
"""
from __future__ import annotations

import html
import json
import os
import tempfile
import time
from datetime import datetime, timezone

STATUS_COLOURS = {"green": "#2e9d4f", "yellow": "#e0b400", "red": "#d0312d"}
STEP_COLOURS = {"surge": "#8e6cc0", "prepare": "#6b8fd6", "drain": "#2f6db5", "terminate": "#c0392b",
                "wait_left": "#e67e22", "wait_joined": "#16a085", "lift": "#7f8c8d", "wait_healthy": "#27ae60"}
NODE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#7b4173", "#3182bd"]


# -- sampling ------------------------------------------------------------------------------------
def sample(view, t):
    """One point: time, health, copies being moved, and per node name [shard copies, bytes]."""
    nodes = {n.get("name"): [0, 0] for n in view.nodes.values() if n.get("name")}
    for row in view.shards:
        node = (row.get("node") or "").split("->")[0].strip()  # a relocating copy counts at its source
        if not node:
            continue
        held = nodes.setdefault(node, [0, 0])
        held[0] += 1
        try:
            held[1] += int(row.get("store") or 0)
        except (TypeError, ValueError):
            pass
    return {"t": round(t, 1), "status": view.status, "moving": view.moving, "nodes": nodes}


class Sampler:
    """Keeps a thinned series of the views a module call reads: at least ``every`` seconds apart
    (the latest always kept), at most ``limit`` points (then every other point goes and the
    spacing doubles), so an hour-long drain stays a few kB in the module's result."""

    def __init__(self, every=2.0, limit=120, clock=time.time):
        self.every, self.limit, self.clock = every, limit, clock
        self.samples = []

    def __call__(self, view):
        try:
            point = sample(view, self.clock())
        except Exception:  # a report point is never worth failing a step for
            return
        if len(self.samples) >= 2 and point["t"] - self.samples[-2]["t"] < self.every:
            self.samples[-1] = point
        else:
            self.samples.append(point)
        if len(self.samples) > self.limit:  # in place: a module's result holds this list
            self.samples[:] = self.samples[::2] + ([self.samples[-1]] if len(self.samples) % 2 == 0 else [])
            self.every *= 2


# -- the report's data -----------------------------------------------------------------------------
def _epoch(iso):
    if not iso:
        return None
    try:
        return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def _iso(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if t is not None else ""


def human_bytes(n):
    n = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (n, unit)
        n /= 1024.0
    return "%d B" % n


def _entries(timeline):
    out = []
    for e in timeline or []:
        start = _epoch(e.get("started"))
        if start is None:
            continue
        out.append(dict(e, t0=start, t1=start + float(e.get("seconds") or 0)))
    return out


def _bytes_held(samples, name, t0, t1):
    """What the old node held when its replacement began: the most it held from the last point
    before its first step to its last step (its drain or recovery copied that much elsewhere)."""
    before = [s for s in samples if s["t"] < t0 and name in s["nodes"]]
    window = [s for s in samples if t0 <= s["t"] <= t1 + 1 and name in s["nodes"]] + before[-1:]
    return max((s["nodes"][name][1] for s in window), default=0)


def build(cluster, run_id="", strategy="", preflight=None, results=None, samples=None, terminated=None,
          failure=None, dry_run=False, lock=None, clock=time.time):
    """The report as a plain dict (the JSON file); see docs/upgrade.md, "The report"."""
    preflight = preflight or {}
    failure = dict(failure or {})
    samples = sorted((s for s in list(samples or []) + list(failure.get("samples") or []) if "t" in s),
                     key=lambda s: s["t"])
    plan = list(preflight.get("plan") or [])
    by_name = {p.get("node_name"): p for p in plan}
    nodes = []
    for r in results or []:
        nodes.append({"node_name": r.get("node_name"), "old_instance_id": r.get("old_instance_id"),
                      "old_version": r.get("old_version"), "old_image_id": r.get("old_image_id"),
                      "new_nodes": r.get("new_nodes") or [], "timeline": _entries(r.get("timeline")),
                      "handed_over": r.get("handed_over") or "", "outcome": "replaced"})
    failed_node = None
    if failure.get("timeline") or failure.get("step"):
        entries = _entries(failure.get("timeline"))
        name = next((e.get("node") for e in entries if e.get("node")), None) or failure.get("node_name")
        done = {n["node_name"] for n in nodes}
        if name and name not in done:
            p = by_name.get(name, {})
            failed_node = {"node_name": name, "old_instance_id": p.get("instance_id"),
                           "old_version": p.get("version"), "old_image_id": p.get("image_id"), "new_nodes": [],
                           "timeline": entries, "handed_over": "", "outcome": "failed"}
            nodes.append(failed_node)
    for n in nodes:
        t0 = min((e["t0"] for e in n["timeline"]), default=None)
        t1 = max((e["t1"] for e in n["timeline"]), default=None)
        n["started"], n["finished"] = _iso(t0), _iso(t1)
        n["seconds"] = round(t1 - t0, 1) if t0 is not None else 0
        n["bytes_moved"] = _bytes_held(samples, n["node_name"], t0, t1) if t0 is not None else 0
        new = n["new_nodes"][0] if n["new_nodes"] else {}
        p = by_name.get(n["node_name"], {})
        n["new_version"] = new.get("version") or p.get("target_version") or ""
        n["new_image_id"] = new.get("image_id") or p.get("target_image_id") or ""
        n["new_instance_id"] = new.get("instance_id") or ""
    times = [s["t"] for s in samples] + [e[k] for n in nodes for e in n["timeline"] for k in ("t0", "t1")]
    refusals = list(preflight.get("refusals") or [])
    if failure:
        outcome = "refused" if refusals else "failed"
    elif dry_run:
        outcome = "planned (check mode, nothing changed)"
    elif not plan:
        outcome = "nothing outdated"
    else:
        outcome = "succeeded"
    report = {
        "cluster": cluster, "run_id": run_id or "", "strategy": strategy or "", "outcome": outcome,
        "generated": _iso(clock()), "started": _iso(min(times)) if times else "",
        "finished": _iso(max(times)) if times else "",
        "seconds": round(max(times) - min(times), 1) if times else 0,
        "lock_note": (lock or {}).get("lock_note", ""), "reconciled": list((lock or {}).get("actions") or []),
        "cluster_at_start": preflight.get("cluster") or {},
        "plan": [{k: p.get(k) for k in ("position", "node_name", "instance_id", "group", "roles", "version",
                                        "target_version", "image_id", "target_image_id", "reasons", "why")}
                 for p in plan],
        "nodes": nodes,
        "bytes_moved": sum(n["bytes_moved"] for n in nodes),
        "refusals": refusals,
        "failure": ({"task": failure.get("task", ""), "message": failure.get("msg", ""),
                     "node": (failed_node or {}).get("node_name", "")} if failure else None),
        "terminated_instance_ids": sorted(set(terminated or []) | set(failure.get("terminated_instance_ids") or [])),
        "health": [[s["t"], s["status"]] for s in samples],
        "shards": _series(samples),
    }
    report["summary"] = summary_lines(report)
    return report


def _series(samples):
    """{node name: [[t, copies, bytes], ...]} from the samples, 0 where a present node holds nothing."""
    out = {}
    for s in samples:
        for name, (copies, size) in s["nodes"].items():
            out.setdefault(name, []).append([s["t"], copies, size])
    return out


def summary_lines(report):
    """One line per node: old -> new, minutes, bytes, outcome."""
    lines = []
    for n in report["nodes"]:
        lines.append("%s: %s (%s) -> %s (%s), %.1f min, %s moved, %s" % (
            n["node_name"], n.get("old_version") or "?", n.get("old_instance_id") or "?",
            n.get("new_version") or "?", n.get("new_instance_id") or "-", n["seconds"] / 60.0,
            human_bytes(n["bytes_moved"]), n["outcome"]))
    if report["failure"]:
        lines.append("failed: %s" % report["failure"]["message"])
    return lines


# -- HTML ------------------------------------------------------------------------------------------
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2430;max-width:1240px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceff4;
vertical-align:top}th{background:#f5f7fa;font-weight:600}.meta span{margin-right:18px}.pill{display:inline-block;
padding:1px 10px;border-radius:10px;color:#fff;font-weight:600}.ok{background:#2e9d4f}.bad{background:#d0312d}
.info{background:#6b7a90}.box{border-left:4px solid #d0312d;background:#fdf1f0;padding:8px 12px;margin:8px 0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}svg text{font-size:11px;fill:#333}
details summary{cursor:pointer}.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:11px;
height:11px;margin-right:4px;vertical-align:-1px}
"""


def _e(value):
    return html.escape("" if value is None else str(value))


class _Axis:
    def __init__(self, t0, t1, x0, width):
        self.t0, self.t1, self.x0, self.width = t0, max(t1, t0 + 1), x0, width

    def x(self, t):
        return self.x0 + (t - self.t0) / (self.t1 - self.t0) * self.width

    def ticks(self, top, bottom):
        span = self.t1 - self.t0
        step = next((s for s in (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200) if span / s <= 10), 14400)
        out, k = [], 0
        while k * step <= span:
            x = self.x(self.t0 + k * step)
            label = "%ds" % (k * step) if step < 60 else "%dm" % (k * step // 60)
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e3e7ee"/>'
                       '<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x, top, x, bottom, x, bottom + 13, label))
            k += 1
        return "".join(out)


def _timeline_svg(report, axis, width):
    nodes = report["nodes"]
    row, top = 26, 8
    height = top + row * max(len(nodes), 1) + 22
    parts = ['<svg id="timeline" role="img" aria-label="Per-node timeline" xmlns="http://www.w3.org/2000/svg" '
             'width="%d" height="%d">' % (width, height), axis.ticks(top, height - 20)]
    for i, n in enumerate(nodes):
        y = top + i * row
        parts.append('<text x="4" y="%d">%s</text>' % (y + 16, _e(n["node_name"])))
        for e in n["timeline"]:
            x0, x1 = axis.x(e["t0"]), axis.x(e["t1"])
            colour = STEP_COLOURS.get(e.get("step"), "#999")
            parts.append('<rect class="step" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s">'
                         '<title>%s %s: %ss, %s</title></rect>' % (
                             x0, y + 4, max(x1 - x0, 2.0), row - 8, colour, _e(n["node_name"]), _e(e.get("step")),
                             _e(e.get("seconds")), _e(e.get("detail"))))
    if not nodes:
        parts.append('<text x="4" y="%d">no node was replaced</text>' % (top + 16))
    parts.append("</svg>")
    return "".join(parts)


def _health_svg(report, axis, width):
    height = 34
    parts = ['<svg id="chart-health" role="img" aria-label="Cluster health over time" '
             'xmlns="http://www.w3.org/2000/svg" width="%d" height="%d">' % (width, height),
             '<text x="4" y="18">health</text>']
    points = report["health"]
    runs = []  # [start, end, status]: one rectangle per stretch of one status
    for i, (t, status) in enumerate(points):
        t_next = points[i + 1][0] if i + 1 < len(points) else t + 1
        if runs and runs[-1][2] == status:
            runs[-1][1] = t_next
        else:
            runs.append([t, t_next, status])
    for t0, t1, status in runs:
        x0, x1 = axis.x(t0), axis.x(t1)
        parts.append('<rect class="health" x="%.1f" y="6" width="%.1f" height="18" fill="%s" shape-rendering="crispEdges">'
                     '<title>%s to %s: %s</title></rect>' % (x0, max(x1 - x0, 1.0), STATUS_COLOURS.get(status, "#999"),
                                                             _iso(t0), _iso(t1), _e(status)))
    parts.append("</svg>")
    return "".join(parts)


def _shards_svg(report, axis, width):
    # Nodes that never held a copy (dedicated masters) are named under the chart, not drawn on its floor.
    series = {k: v for k, v in report["shards"].items() if any(p[1] for p in v)}
    empty = sorted(set(report["shards"]) - set(series))
    height, top, bottom = 260, 10, 230
    step = max(1, -(-max((p[1] for pts in series.values() for p in pts), default=1) // 4))
    peak = step * 4
    parts = ['<svg id="chart-shards" role="img" aria-label="Shard copies per node over time" '
             'xmlns="http://www.w3.org/2000/svg" width="%d" height="%d">' % (width, height), axis.ticks(top, bottom)]
    for k in range(0, 5):
        y = bottom - (bottom - top) * k / 4.0
        parts.append('<text x="%d" y="%.1f" text-anchor="end">%d</text>' % (axis.x0 - 6, y + 4, step * k))
    parts.append('<text x="4" y="%d">shard copies</text>' % (top + 12))
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = NODE_COLOURS[i % len(NODE_COLOURS)]
        path = []
        for j, (t, copies, _size) in enumerate(pts):
            x, y = axis.x(t), bottom - (bottom - top) * copies / float(peak)
            # a step line: a count holds until the next point
            path.append("M%.1f,%.1f" % (x, y) if not j else "H%.1fV%.1f" % (x, y))
        parts.append('<path class="series" d="%s" fill="none" stroke="%s" stroke-width="2"><title>%s</title></path>'
                     % ("".join(path), colour, _e(name)))
    parts.append("</svg>")
    legend = "".join('<span><i class="sw" style="background:%s"></i>%s</span>' % (
        NODE_COLOURS[i % len(NODE_COLOURS)], _e(name)) for i, name in enumerate(sorted(series)))
    if empty:
        legend += "<span>no shard copy: %s</span>" % _e(", ".join(empty))
    return "".join(parts) + '<div class="legend">%s</div>' % legend


def _table(headers, rows):
    head = "".join("<th>%s</th>" % _e(h) for h in headers)
    body = "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % c for c in r) for r in rows)
    return "<table><tr>%s</tr>%s</table>" % (head, body)


def render_html(report):
    width, x0 = 1180, 150
    times = [p[0] for p in report["health"]] + [e[k] for n in report["nodes"] for e in n["timeline"]
                                                for k in ("t0", "t1")]
    axis = _Axis(min(times) if times else 0, max(times) if times else 1, x0, width - x0 - 20)
    outcome = report["outcome"]
    pill = "ok" if outcome in ("succeeded", "nothing outdated") else ("bad" if outcome in ("failed", "refused")
                                                                      else "info")
    out = ['<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
           '<title>Upgrade %s %s</title><style>%s</style></head><body>' % (
               _e(report["cluster"]), _e(report["run_id"]), CSS),
           '<h1>Rolling upgrade of %s <span class="pill %s" id="outcome">%s</span></h1>' % (
               _e(report["cluster"]), pill, _e(outcome)),
           '<p class="meta"><span>run <code>%s</code></span><span>strategy %s</span><span>%s to %s (%.1f min)</span>'
           '<span>%s moved</span><span>report generated %s</span></p>' % (
               _e(report["run_id"] or "-"), _e(report["strategy"] or "-"), _e(report["started"] or "-"),
               _e(report["finished"] or "-"), report["seconds"] / 60.0, _e(human_bytes(report["bytes_moved"])),
               _e(report["generated"]))]
    if report["failure"]:
        f = report["failure"]
        out.append('<div class="box" id="failure"><b>Failed%s%s.</b> %s</div>' % (
            " at " + _e(f["task"]) if f["task"] else "", " (node %s)" % _e(f["node"]) if f["node"] else "",
            _e(f["message"])))
    if report["lock_note"] or report["reconciled"]:
        out.append("<p>%s</p>" % "<br>".join(_e(x) for x in [report["lock_note"]] + report["reconciled"] if x))
    out.append('<h2>Summary</h2>')
    out.append(_table(["node", "before", "after", "minutes", "bytes moved", "outcome"], [
        (_e(n["node_name"]), "%s<br><span class=mono>%s %s</span>" % (
            _e(n["old_version"]), _e(n["old_instance_id"]), _e(n["old_image_id"])),
         "%s<br><span class=mono>%s %s</span>" % (_e(n["new_version"]), _e(n["new_instance_id"]),
                                                  _e(n["new_image_id"])),
         "%.1f" % (n["seconds"] / 60.0), _e(human_bytes(n["bytes_moved"])), _e(n["outcome"]))
        for n in report["nodes"]]) if report["nodes"] else "<p>No node was replaced.</p>")
    out.append('<h2>Timeline</h2><div class="legend">%s</div>' % "".join(
        '<span><i class="sw" style="background:%s"></i>%s</span>' % (c, s) for s, c in STEP_COLOURS.items()))
    out.append(_timeline_svg(report, axis, width))
    out.append('<h2>Cluster health and shard copies per node over time</h2>')
    if report["health"]:
        out.append(_health_svg(report, axis, width))
        out.append(_shards_svg(report, axis, width))
    else:
        out.append("<p>No cluster sample was taken (the run stopped before reading the cluster).</p>")
    out.append('<h2>Plan</h2>')
    out.append(_table(["#", "node", "instance", "version", "AMI", "why"], [
        (_e(p["position"]), _e(p["node_name"]), "<span class=mono>%s</span>" % _e(p["instance_id"]),
         "%s &rarr; %s" % (_e(p["version"]), _e(p["target_version"] or "(template)")),
         "<span class=mono>%s &rarr; %s</span>" % (_e(p["image_id"]), _e(p["target_image_id"])), _e(p["why"]))
        for p in report["plan"]]) if report["plan"] else "<p>No outdated node in the plan.</p>")
    out.append('<h2>Refusals</h2>')
    out.append("<ul id=\"refusals\">%s</ul>" % "".join("<li>%s</li>" % _e(r) for r in report["refusals"])
               if report["refusals"] else "<p>None: every safety rule allowed the run.</p>")
    out.append('<h2>Terminated instances</h2>')
    out.append('<p class="mono" id="terminated">%s</p>' % (_e(", ".join(report["terminated_instance_ids"])) or "none"))
    out.append('<h2>Steps</h2>')
    for n in report["nodes"]:
        out.append("<details><summary>%s (%s)</summary>%s</details>" % (_e(n["node_name"]), _e(n["outcome"]), _table(
            ["step", "started", "seconds", "changed", "detail"],
            [(_e(e.get("step")), _e(e.get("started")), _e(e.get("seconds")), _e(e.get("changed")), _e(e.get("detail")))
             for e in n["timeline"]])))
    out.append("</body></html>\n")
    return "".join(out)


def file_stem(report):
    stamp = (report["started"] or report["generated"]).replace(":", "").replace("-", "")
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(report["cluster"]))
    return "upgrade-%s-%s" % (safe, stamp)


def write(report, folder):
    """Write <stem>.json and <stem>.html into folder (each replaced atomically); returns the two paths."""
    os.makedirs(folder, exist_ok=True)
    stem = os.path.join(folder, file_stem(report))
    paths = []
    for suffix, text in ((".json", json.dumps(report, indent=1, sort_keys=True)), (".html", render_html(report))):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".report-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, stem + suffix)
        paths.append(stem + suffix)
    return paths
