# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reindex old indices into the mappings their names get today, without losing a document.

A resumable state machine in the manner of Kibana's reindex service, except
that its state lives in the cluster, never in memory or a file: which of the
source ``N`` and the copy ``N<suffix>`` exist, the write block on ``N``, and a
``_meta.logstack_reindex`` record in the copy's mapping (source uuid and count,
the task id, whether the copy was verified, the aliases and settings to give
back). :meth:`Reindexer.next_step` reads that and names the one step to do
next, so a run killed anywhere is finished by the next run.

Modes and their steps (each idempotent, in this order):

copy_back  create_temp, block_source, start_copy, wait_copy, delete_source,
           create_final, start_copy_back, wait_copy_back, delete_temp, restore
swap       create_temp, block_source, start_copy, wait_copy, swap, restore

Nothing that holds the only verified copy is ever deleted: ``delete_source``
needs the copy verified (task without failures AND count after refresh equal to
the source's) and re-counts both just before; ``delete_temp`` needs the same of
the final index.
"""
from __future__ import annotations

import copy
import datetime
import fnmatch
import re
import time

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError, index_path

META_KEY = "logstack_reindex"
DEFAULT_DATE_REGEX = r"(\d{4})[.\-_](\d{2})[.\-_](\d{2})"

COPY_BACK_STEPS = ("create_temp", "block_source", "start_copy", "wait_copy", "delete_source",
                   "create_final", "start_copy_back", "wait_copy_back", "delete_temp", "restore")
SWAP_STEPS = ("create_temp", "block_source", "start_copy", "wait_copy", "swap", "restore")

# Index settings ES reports but refuses on index creation.
_PRIVATE_SETTINGS = ("index.uuid", "index.creation_date", "index.provided_name", "index.version.",
                     "index.routing.allocation.initial_recovery", "index.resize.", "index.blocks.",
                     "index.verified_before_close", "index.history.uuid", "index.replication.type")


class ReindexError(Exception):
    """One sentence saying what failed, plus the first failures when a copy had them."""

    def __init__(self, message, index=None, failures=None, step=None):
        super().__init__(message)
        self.message = message
        self.index = index
        self.failures = failures or []
        self.step = step


class Options:
    """What to reindex and how; the module's options, validated."""

    def __init__(self, indices=None, regex=None, older_than_days=None, date_regex=DEFAULT_DATE_REGEX,
                 mode="copy_back", suffix="-r", mappings=None, settings=None, use_templates=True,
                 probe_seconds=10.0, slices="auto", requests_per_second=-1, conflicts="abort",
                 poll_interval=2.0, timeout=3600, stall_polls=5, max_failures=5, today=None):
        if not indices and not regex:
            raise ReindexError("Say which indices to reindex: give indices (names or wildcards) and/or regex.")
        if mode not in ("copy_back", "swap"):
            raise ReindexError("mode must be copy_back or swap, not %r." % mode)
        if not suffix or suffix in (".", "*") or "*" in suffix or "," in suffix:
            raise ReindexError("suffix %r cannot name an index copy; use something like -r." % suffix)
        if not use_templates and not mappings:
            raise ReindexError("use_templates is false, so give the destination mappings explicitly.")
        if conflicts not in ("abort", "proceed"):
            raise ReindexError("conflicts must be abort or proceed, not %r." % conflicts)
        self.indices = list(indices or [])
        self.regex = re.compile(regex) if regex else None
        self.older_than_days = older_than_days
        self.date_regex = re.compile(date_regex)
        self.mode = mode
        self.suffix = suffix
        self.mappings = mappings
        self.settings = settings or {}
        self.use_templates = use_templates
        self.probe_seconds = float(probe_seconds or 0)
        self.slices = slices
        self.requests_per_second = requests_per_second
        self.conflicts = conflicts
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)
        self.stall_polls = int(stall_polls)
        self.max_failures = int(max_failures)
        self.today = today or datetime.datetime.now(datetime.timezone.utc).date()


# -- helpers -------------------------------------------------------------

def flat(settings, prefix=""):
    """{"index": {"number_of_replicas": "1"}} -> {"index.number_of_replicas": "1"}."""
    out = {}
    for key, value in (settings or {}).items():
        name = prefix + key
        if isinstance(value, dict):
            out.update(flat(value, name + "."))
        else:
            out[name] = value
    return out


def _index_key(key):
    return key if key.startswith("index.") else "index." + key


def creatable_settings(settings):
    """Flat settings one may pass to index creation (server-owned ones dropped)."""
    out = {}
    for key, value in flat(settings).items():
        key = _index_key(key)
        if any(key == p or (p.endswith(".") and key.startswith(p)) for p in _PRIVATE_SETTINGS):
            continue
        out[key] = value
    return out


def mapping_covers(current, desired):
    """True when every field the desired mapping defines is defined the same way in current.

    Dynamic fields the old index picked up are not in the template and do not
    make an index outdated; a field the template defines differently does.
    """
    for field, spec in ((desired or {}).get("properties") or {}).items():
        have = ((current or {}).get("properties") or {}).get(field)
        if have is None:
            return False
        if "properties" in spec:
            if not mapping_covers(have, spec):
                return False
            continue
        for key, value in spec.items():
            if key == "fields":
                if not mapping_covers({"properties": have.get("fields") or {}}, {"properties": value}):
                    return False
            elif str(have.get(key)).lower() != str(value).lower():
                return False
    return True


def name_date(name, regex):
    m = regex.search(name)
    if not m:
        return None
    try:
        return datetime.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except (ValueError, IndexError):
        return None


def first_failures(response, limit):
    """Readable failures out of a reindex response or task result."""
    out = []
    for failure in (response or {}).get("failures") or []:
        cause = failure.get("cause") or failure.get("reason") or {}
        if isinstance(cause, dict):
            reason = cause.get("reason") or cause.get("type")
            etype = cause.get("type")
        else:
            reason, etype = str(cause), None
        out.append({"id": failure.get("id"), "index": failure.get("index"), "status": failure.get("status"),
                    "type": etype, "reason": reason})
        if len(out) >= limit:
            break
    return out


class IndexState:
    """What the cluster says about one name: an index, an alias, or nothing."""

    def __init__(self, name, exists=False, alias_of=None, uuid=None, settings=None, mappings=None,
                 aliases=None):
        self.name = name
        self.exists = exists
        self.alias_of = alias_of or []
        self.uuid = uuid
        self.settings = settings or {}
        self.mappings = mappings or {}
        self.aliases = aliases or {}

    @property
    def blocked(self):
        return str(self.settings.get("index.blocks.write", "false")).lower() == "true"

    @property
    def meta(self):
        return ((self.mappings.get("_meta") or {}).get(META_KEY)) or {}


class Reindexer:
    """Drives one or more indices through the steps; every decision is read from the cluster."""

    def __init__(self, client, options, sleep=time.sleep, clock=time.monotonic, log=None):
        self.es = client
        self.opt = options
        self.sleep = sleep
        self.clock = clock
        self.log = log or (lambda msg: None)
        self._tasks_api = None  # None: not known yet

    # -- reading the world -----------------------------------------------
    def state(self, name):
        status, body = self.es.call("GET", "/%s" % index_path(name), allow=(404,))
        if status == 404:
            return IndexState(name)
        if name not in body:
            # The name is an alias: GET returns the index (or indices) behind it.
            return IndexState(name, alias_of=sorted(body))
        info = body[name]
        settings = flat(info.get("settings") or {})
        return IndexState(name, exists=True, uuid=settings.get("index.uuid"), settings=settings,
                          mappings=info.get("mappings") or {}, aliases=info.get("aliases") or {})

    def count(self, name):
        self.es.post("/%s/_refresh" % index_path(name))
        return int(self.es.get("/%s/_count" % index_path(name))["count"])

    def desired(self, name):
        """(settings, mappings) the current templates give ``name``, or the explicit ones."""
        settings, mappings = {}, {}
        if self.opt.use_templates:
            status, body = self.es.call("POST", "/_index_template/_simulate_index/%s" % index_path(name),
                                        allow=(400, 404, 405))
            if status >= 400:
                if not self.opt.mappings:
                    raise ReindexError("This server cannot simulate index templates (POST "
                                       "_index_template/_simulate_index answered %s): give mappings "
                                       "explicitly." % status, index=name)
            else:
                template = (body or {}).get("template") or {}
                settings = creatable_settings(template.get("settings") or {})
                mappings = template.get("mappings") or {}
        if self.opt.mappings:
            mappings = copy.deepcopy(self.opt.mappings)
        settings.update(creatable_settings(self.opt.settings))
        if not mappings.get("properties"):
            raise ReindexError("No index template gives %s any mappings and none were given explicitly: "
                               "nothing to reindex into." % name, index=name)
        return settings, mappings

    # -- selection ---------------------------------------------------------
    def select(self):
        """(names to work on, skipped [{index, reason}]) from the options and the cluster."""
        aliases = self.es.get("/_alias")
        opt = self.opt
        write_indices, stream_indices = {}, {}
        for index, info in aliases.items():
            for alias, spec in (info.get("aliases") or {}).items():
                if str((spec or {}).get("is_write_index", "false")).lower() == "true":
                    write_indices[index] = alias
        status, streams = self.es.call("GET", "/_data_stream", allow=(400, 404, 405))
        if status < 400:
            for stream in streams.get("data_streams") or []:
                backing = [i.get("index_name") for i in stream.get("indices") or []]
                for i, index in enumerate(backing):
                    stream_indices[index] = (stream.get("name"), i == len(backing) - 1)
        # Our own copies name their source: a source deleted mid copy_back is found through its copy.
        ours = {}
        status, temps = self.es.call("GET", "/%s/_mapping" % index_path("*" + opt.suffix),
                                     params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                                     allow=(404,))
        for index, info in (temps if status == 200 else {}).items():
            meta = ((info.get("mappings") or {}).get("_meta") or {}).get(META_KEY)
            if meta and meta.get("source") and index == meta["source"] + opt.suffix:
                ours[index] = meta["source"]
        names = set(n for n in aliases if n not in ours) | set(ours.values())
        # Indices replaced in swap mode are aliases now; their name still selects them.
        for index, info in aliases.items():
            for alias in info.get("aliases") or {}:
                if ours.get(index) == alias:
                    names.add(alias)
        selected, skipped = [], []
        for name in sorted(names):
            if not self._matches(name):
                continue
            reason = None
            day = name_date(name, opt.date_regex)
            if name in write_indices:
                reason = "it is the write index of alias %s" % write_indices[name]
            elif name in stream_indices:
                stream, is_write = stream_indices[name]
                reason = ("it is the write index of data stream %s" % stream if is_write else
                          "it is a backing index of data stream %s (not supported)" % stream)
            elif day is not None and day >= opt.today:
                reason = "its name dates it today (%s) or later: it is still being written" % day
            elif opt.older_than_days is not None:
                if day is None:
                    reason = "older_than_days is set and its name carries no date"
                elif (opt.today - day).days <= opt.older_than_days:
                    reason = "its date %s is not older than %d days" % (day, opt.older_than_days)
            elif name.startswith(".") and not self._explicit(name):
                reason = "system/hidden indices are reindexed only when named explicitly"
            if reason:
                skipped.append({"index": name, "reason": reason})
            else:
                selected.append(name)
        return selected, skipped

    def _explicit(self, name):
        return name in self.opt.indices

    def _matches(self, name):
        hit = any(fnmatch.fnmatchcase(name, p) for p in self.opt.indices)
        if self.opt.regex is not None:
            hit = (hit or not self.opt.indices) and bool(self.opt.regex.search(name))
        return hit

    def probe(self, names):
        """{name: writes seen} for indices indexed into during one probe window."""
        fresh = [n for n in names if self._needs_probe(n)]
        if not fresh or self.opt.probe_seconds <= 0:
            return {}
        before = self._index_totals(fresh)
        self.sleep(self.opt.probe_seconds)
        after = self._index_totals(fresh)
        return {n: after.get(n, 0) - before.get(n, 0) for n in fresh
                if after.get(n, 0) != before.get(n, 0)}

    def _needs_probe(self, name):
        # Only an index we have not started on: a source we already write-blocked cannot be written.
        return self.next_step(name)[0] in ("create_temp", "block_source")

    def _index_totals(self, names):
        body = self.es.get("/%s/_stats/indexing" % index_path(*names), params={"level": "indices"})
        out = {}
        for name, stats in (body.get("indices") or {}).items():
            indexing = (stats.get("primaries") or {}).get("indexing") or {}
            out[name] = int(indexing.get("index_total", 0)) + int(indexing.get("delete_total", 0))
        return out

    # -- the state machine ---------------------------------------------------
    def temp_name(self, name):
        return name + self.opt.suffix

    def next_step(self, name):
        """(step, why) for ``name`` read from the cluster; step is "done" when nothing is left."""
        src, tmp = self.state(name), self.state(self.temp_name(name))
        return self._decide(name, src, tmp)

    def _decide(self, name, src, tmp):
        tname = tmp.name
        tmeta = tmp.meta if tmp.exists else {}
        if tmp.exists and tmeta.get("source") != name:
            raise ReindexError("%s exists and is not a reindex copy of %s made by this module: rename or "
                               "delete it, or choose another suffix." % (tname, name), index=name)
        if tmp.alias_of:
            raise ReindexError("%s is an alias, so it cannot hold the copy of %s: choose another suffix."
                               % (tname, name), index=name)
        smeta = src.meta if src.exists else {}
        if src.exists and smeta.get("role") == "final" and not smeta.get("restored"):
            # copy_back, second half: the original name holds (part of) the copy back.
            if not tmp.exists:
                if not smeta.get("verified"):
                    raise ReindexError("%s was being copied back but %s is gone and %s is not verified: "
                                       "check the data by hand; nothing was deleted." % (name, tname, name),
                                       index=name)
                return "restore", "copy back verified and temporary copy removed"
            if not smeta.get("task") and not smeta.get("verified"):
                return "start_copy_back", "%s created, copy back not started" % name
            if not smeta.get("verified"):
                return "wait_copy_back", "copy back task %s started" % smeta.get("task")
            return "delete_temp", "copy back verified"
        if src.alias_of:
            if tmp.exists and src.alias_of == [tname] and tmeta.get("role") == "swap":
                if not tmeta.get("restored"):
                    return "restore", "swapped, settings not restored yet"
                return "done", "%s is an alias of %s" % (name, tname)
            return "done", "%s is an alias of %s; nothing to reindex" % (name, ", ".join(src.alias_of))
        if not src.exists:
            if tmp.exists and tmeta.get("verified") and tmeta.get("role") == "temp":
                return "create_final", "%s deleted after a verified copy" % name
            if tmp.exists:
                raise ReindexError("%s is missing and its copy %s is not verified: nothing is deleted; "
                                   "check both by hand." % (name, tname), index=name)
            raise ReindexError("%s does not exist." % name, index=name)
        # The source is an index that has not been replaced yet.
        if tmp.exists:
            if tmeta.get("source_uuid") != src.uuid:
                raise ReindexError("%s was made from an earlier index named %s (uuid %s, now %s): delete it "
                                   "by hand after checking." % (tname, name, tmeta.get("source_uuid"),
                                                                src.uuid), index=name)
            if not tmeta.get("verified"):
                if not src.blocked:
                    if tmeta.get("task"):
                        return "reset_temp", "an earlier copy started while %s was writable" % name
                    return "block_source", "%s created" % tname
                if not tmeta.get("task"):
                    return "start_copy", "%s write-blocked, copy not started" % name
                return "wait_copy", "copy task %s started" % tmeta.get("task")
            return ("swap" if tmeta.get("role") == "swap" else "delete_source"), "copy verified"
        _, mappings = self.desired(name)
        if mapping_covers(src.mappings, mappings):
            return "done", "already in the current mappings"
        return "create_temp", "mappings differ from the current template"

    def plan(self, name):
        """Steps a run would take from here, for check mode."""
        step, why = self.next_step(name)
        if step == "done":
            return [], why
        steps = COPY_BACK_STEPS if self.opt.mode == "copy_back" else SWAP_STEPS
        if step == "reset_temp":
            return ["reset_temp"] + list(steps), why
        if step not in steps:
            return [step], why
        return list(steps[steps.index(step):]), why

    def step(self, name):
        """Do the next step for ``name``; returns its name ("done" when finished)."""
        step, _ = self.next_step(name)
        if step != "done":
            self.log("%s: %s" % (name, step))
            getattr(self, "_do_" + step)(name)
        return step

    def run(self, name):
        """Drive ``name`` to the end; returns a result dict. Raises ReindexError after rolling back."""
        started = self.clock()
        result = {"index": name, "mode": self.opt.mode, "steps": [], "deleted": [], "docs": None}
        while True:
            step = self.step(name)
            if step == "done":
                break
            result["steps"].append(step)
            if step in ("delete_source", "swap"):
                result["deleted"].append(name)
            elif step in ("delete_temp", "reset_temp"):
                result["deleted"].append(self.temp_name(name))
        seconds = self.clock() - started
        target = name if self.state(name).exists else self.temp_name(name)
        if result["steps"]:
            result["docs"] = int(self.es.get("/%s/_count" % index_path(target))["count"])
        result["seconds"] = round(seconds, 3)
        result["docs_per_second"] = (round(result["docs"] / seconds, 1)
                                     if result["docs"] and seconds > 0 else None)
        result["status"] = "reindexed" if result["steps"] else "unchanged"
        return result

    # -- steps -------------------------------------------------------------
    def _set_meta(self, index, **changes):
        meta = dict(self.state(index).meta)
        meta.update(changes)
        self.es.put("/%s/_mapping" % index_path(index), {"_meta": {META_KEY: meta}})

    def _create_copy(self, index, source_name, meta):
        settings, mappings = self.desired(source_name)
        settings["index.number_of_replicas"] = "0"
        settings["index.refresh_interval"] = "-1"
        mappings = copy.deepcopy(mappings)
        template_meta = mappings.get("_meta") or {}
        meta["template_meta"] = template_meta
        mappings["_meta"] = {META_KEY: meta}
        self.es.put("/%s" % index_path(index), {"settings": settings, "mappings": mappings})
        # Templates may add aliases to the copy too; a half-filled copy must not answer searches.
        for alias in self.state(index).aliases:
            self.es.delete("/%s/_alias/%s" % (index_path(index), index_path(alias)))

    def _do_create_temp(self, name):
        src = self.state(name)
        self._create_copy(self.temp_name(name), name, {
            "source": name, "source_uuid": src.uuid, "role": "temp" if self.opt.mode == "copy_back" else "swap",
            "source_was_blocked": src.blocked, "aliases": src.aliases,
            "restore": {"index.number_of_replicas": src.settings.get("index.number_of_replicas", "1"),
                        "index.refresh_interval": src.settings.get("index.refresh_interval")},
            "verified": False, "task": None})

    def _do_block_source(self, name):
        self.es.put("/%s/_settings" % index_path(name), {"index.blocks.write": True})

    def _do_reset_temp(self, name):
        tname = self.temp_name(name)
        self._cancel(self.state(tname).meta.get("task"))
        self.es.delete("/%s" % index_path(tname), allow=(404,))

    def _start(self, source, dest):
        params = {"wait_for_completion": "false"}  # counts are taken after an explicit _refresh
        if self.opt.slices not in (None, "", 1, "1"):
            params["slices"] = self.opt.slices
        if self.opt.requests_per_second not in (None, -1, "-1"):
            params["requests_per_second"] = self.opt.requests_per_second
        body = {"source": {"index": source}, "dest": {"index": dest, "version_type": "external"},
                "conflicts": self.opt.conflicts}
        if self.count(dest):
            # A copy started by a run killed before it could record the task: start clean.
            # Recreated rather than emptied: deleted documents leave versions that an external-version
            # copy would then conflict with.
            self._cancel_copies_into(dest)
            meta = dict(self.state(dest).meta)
            meta.pop("template_meta", None)
            self.es.delete("/%s" % index_path(dest))
            self._create_copy(dest, meta["source"], meta)
        expected = self.count(source)
        task = self.es.post("/_reindex", body, params=params).get("task")
        if not task:
            raise ReindexError("The server started no task for the copy of %s into %s." % (source, dest))
        self._set_meta(dest, task=task, source_count=expected)
        self.log("%s -> %s: task %s" % (source, dest, task))

    def _do_start_copy(self, name):
        self._start(name, self.temp_name(name))

    def _do_start_copy_back(self, name):
        self._start(self.temp_name(name), name)

    def _do_wait_copy(self, name):
        self._wait(name, self.temp_name(name), rollback=self._rollback_copy)

    def _do_wait_copy_back(self, name):
        self._wait(self.temp_name(name), name, rollback=self._rollback_copy_back)

    def _wait(self, source, dest, rollback):
        meta = self.state(dest).meta
        expected = int(meta.get("source_count"))
        try:
            response = self._wait_task(meta["task"], source, dest, expected)
            failures = first_failures(response, self.opt.max_failures)
            if failures:
                raise ReindexError("Copying %s into %s failed on %d document(s); first: %s" % (
                    source, dest, len(response.get("failures")), _failure_text(failures[0])), failures=failures)
            got = self.count(dest)
            if got != expected:
                failures = self._diagnose(source, dest)
                raise ReindexError("Copying %s into %s ended with %d documents instead of %d%s" % (
                    source, dest, got, expected,
                    "; first failure: " + _failure_text(failures[0]) if failures else
                    (". The server has no _tasks API, so the copy's own errors are unknown." if not self._tasks_api
                     else ".")), failures=failures)
            if self.count(source) != expected:
                raise ReindexError("%s changed from %d to %d documents during the copy although it was "
                                   "write-blocked." % (source, expected, self.count(source)))
        except ReindexError as exc:
            exc.index = exc.index or (source if dest == self.temp_name(source) else dest)
            rollback(source, dest)
            raise
        except EsError as exc:
            rollback(source, dest)
            raise ReindexError("Copying %s into %s failed: %s" % (source, dest, exc.message))
        self._set_meta(dest, verified=True, dest_count=expected)

    def _tasks_supported(self, task):
        status, body = self.es.call("GET", "/_tasks/%s" % task, allow=(400, 404, 405))
        if status in (400, 405) or (status == 404 and "resource_not_found" not in str(body)
                                    and "task" not in str(body).lower()):
            return False, None
        return True, (status, body)

    def _wait_task(self, task, source, dest, expected):
        """The task's final response, from _tasks/<id> or, without that API, from the counts."""
        deadline = self.clock() + self.opt.timeout
        if self._tasks_api is None:
            self._tasks_api, _ = self._tasks_supported(task)
        if not self._tasks_api:
            return self._wait_counts(source, dest, expected, deadline)
        while True:
            status, body = self.es.call("GET", "/_tasks/%s" % task, allow=(404,))
            if status == 404:
                raise ReindexError("Task %s copying %s into %s is gone without a result (its node may have "
                                   "left the cluster)." % (task, source, dest))
            if body.get("completed"):
                if body.get("error"):
                    err = body["error"]
                    raise ReindexError("Task %s copying %s into %s failed: %s: %s" % (
                        task, source, dest, err.get("type"), err.get("reason")))
                return body.get("response") or {}
            if self.clock() > deadline:
                self._cancel(task)
                raise ReindexError("Copying %s into %s did not finish within %ds (%s of %d documents); the "
                                   "task was cancelled." % (source, dest, self.opt.timeout,
                                                            (body.get("task") or {}).get("status", {}).get(
                                                                "created"), expected))
            self.sleep(self.opt.poll_interval)

    def _wait_counts(self, source, dest, expected, deadline):
        # Fallback without _tasks: the count proves the copy is whole; failures are unreadable
        # until the count stops short, then _diagnose re-copies the missing documents to get them.
        # Polls count without a refresh (a refresh per poll slows the copy down); a refreshed count
        # decides when the cheap one stalls or reaches the target.
        last, still, interval = None, 0, min(0.05, self.opt.poll_interval)
        while True:
            got = int(self.es.get("/%s/_count" % index_path(dest))["count"])
            still = still + 1 if got == last else 0
            if got >= expected or still >= self.opt.stall_polls:
                got = self.count(dest)
                if got >= expected or got == last:
                    return {}
            if self.clock() > deadline:
                raise ReindexError("Copying %s into %s did not finish within %ds (%d of %d documents)."
                                   % (source, dest, self.opt.timeout, got, expected))
            last = got
            self.sleep(interval)
            interval = min(self.opt.poll_interval, interval * 1.5)

    def _diagnose(self, source, dest, batch=1000):
        """First failures for documents missing from dest: copy a few of them synchronously."""
        missing = []
        try:
            body = self.es.post("/%s/_search" % index_path(source), {"size": batch, "sort": ["_doc"],
                                                                       "_source": False},
                                params={"scroll": "1m"})
            while body.get("hits", {}).get("hits") and len(missing) < self.opt.max_failures:
                ids = [h["_id"] for h in body["hits"]["hits"]]
                found = self.es.post("/%s/_mget" % index_path(dest), {"ids": ids}, params={"_source": "false"})
                missing += [d["_id"] for d in found.get("docs", []) if not d.get("found")]
                body = self.es.post("/_search/scroll", {"scroll": "1m", "scroll_id": body["_scroll_id"]})
            if not missing:
                return []
            status, response = self.es.call(
                "POST", "/_reindex", params={"wait_for_completion": "true", "refresh": "true"},
                body={"source": {"index": source, "query": {"ids": {"values": missing[:self.opt.max_failures]}}},
                      "dest": {"index": dest, "version_type": "external"}, "conflicts": "proceed"},
                allow=(400, 409, 500))
            return first_failures(response, self.opt.max_failures)
        except EsError:
            return []

    def _cancel_copies_into(self, dest):
        status, body = self.es.call("GET", "/_tasks", params={"actions": "*reindex", "detailed": "true"},
                                    allow=(400, 404, 405))
        if status >= 400:
            return
        for node in (body.get("nodes") or {}).values():
            for task_id, task in (node.get("tasks") or {}).items():
                if "[%s]" % dest in (task.get("description") or "") and not task.get("parent_task_id"):
                    self._cancel(task_id)

    def _cancel(self, task):
        if task and self._tasks_api is not False:
            self.es.call("POST", "/_tasks/%s/_cancel" % task, allow=(400, 404, 405))

    def _rollback_copy(self, name, tname):
        """The source holds everything: lift our block, drop the partial copy."""
        meta = self.state(tname).meta
        self._cancel(meta.get("task"))
        if not meta.get("source_was_blocked"):
            self.es.put("/%s/_settings" % index_path(name), {"index.blocks.write": None})
        self.es.delete("/%s" % index_path(tname), allow=(404,))

    def _rollback_copy_back(self, tname, name):
        """The verified temporary copy holds everything: drop the partial final index only."""
        meta = self.state(name).meta
        self._cancel(meta.get("task"))
        if self.state(tname).meta.get("verified"):
            self.es.delete("/%s" % index_path(name), allow=(404,))

    def _do_delete_source(self, name):
        tname = self.temp_name(name)
        tmp = self.state(tname)
        expected = int(tmp.meta["source_count"])
        have_src, have_tmp = self.count(name), self.count(tname)
        if not (tmp.meta.get("verified") and have_src == expected == have_tmp):
            raise ReindexError("Refusing to delete %s: it has %d documents, its copy %s has %d, %d expected."
                               % (name, have_src, tname, have_tmp, expected), index=name)
        # One atomic call: the aliases move to the copy as the source goes, so no search misses data.
        actions = [{"remove_index": {"index": name}}]
        actions += [{"add": _alias_action(tname, alias, spec)} for alias, spec in tmp.meta["aliases"].items()]
        self.es.post("/_aliases", {"actions": actions})

    def _do_swap(self, name):
        tname = self.temp_name(name)
        tmp = self.state(tname)
        expected = int(tmp.meta["source_count"])
        have_src, have_tmp = self.count(name), self.count(tname)
        if not (tmp.meta.get("verified") and have_src == expected == have_tmp):
            raise ReindexError("Refusing to swap %s: it has %d documents, its copy %s has %d, %d expected."
                               % (name, have_src, tname, have_tmp, expected), index=name)
        actions = [{"remove_index": {"index": name}}, {"add": {"index": tname, "alias": name}}]
        actions += [{"add": _alias_action(tname, alias, spec)} for alias, spec in tmp.meta["aliases"].items()]
        self.es.post("/_aliases", {"actions": actions})

    def _do_create_final(self, name):
        tmeta = self.state(self.temp_name(name)).meta
        meta = {k: tmeta.get(k) for k in ("source", "aliases", "restore", "source_was_blocked")}
        meta.update(role="final", verified=False, task=None)
        self._create_copy(name, name, meta)

    def _do_delete_temp(self, name):
        tname = self.temp_name(name)
        final = self.state(name)
        have_final, have_tmp = self.count(name), self.count(tname)
        expected = int(final.meta["source_count"])
        if not (final.meta.get("verified") and have_final == expected == have_tmp):
            raise ReindexError("Refusing to delete %s: it has %d documents, %s has %d, %d expected."
                               % (tname, have_tmp, name, have_final, expected), index=name)
        actions = [{"remove_index": {"index": tname}}]
        actions += [{"add": _alias_action(name, alias, spec)} for alias, spec in final.meta["aliases"].items()]
        self.es.post("/_aliases", {"actions": actions})

    def _do_restore(self, name):
        target = name if self.state(name).exists else self.temp_name(name)
        meta = self.state(target).meta
        settings = dict(meta.get("restore") or {})
        if meta.get("source_was_blocked"):
            settings["index.blocks.write"] = True
        self.es.put("/%s/_settings" % index_path(target), settings)
        # Give the template's own _meta back; a small marker says the work is finished.
        restored = dict(meta.get("template_meta") or {})
        restored[META_KEY] = {"source": meta.get("source"), "role": meta.get("role"), "verified": True,
                              "restored": True, "source_count": meta.get("source_count")}
        self.es.put("/%s/_mapping" % index_path(target), {"_meta": restored})


def _alias_action(index, alias, spec):
    action = {"index": index, "alias": alias}
    for key in ("filter", "index_routing", "search_routing", "routing", "is_write_index", "is_hidden"):
        if key in (spec or {}):
            action[key] = spec[key]
    return action


def _failure_text(failure):
    return "document %s: %s%s" % (failure.get("id"), failure.get("type") + ": " if failure.get("type") else "",
                                  failure.get("reason"))


def reindex_all(reindexer, check_mode=False):
    """Select, probe, then reindex (or plan) every index in turn; stop at the first failure.

    Returns a dict: changed, results (one per index), skipped, refused, failure (None or
    {index, step, msg, failures}).
    """
    selected, skipped = reindexer.select()
    out = {"changed": False, "results": [], "skipped": skipped, "refused": [], "failure": None,
           "selected": list(selected)}
    writes = reindexer.probe(selected)
    for name in selected:
        if name in writes:
            out["refused"].append({"index": name, "reason": "it received %d write(s) during the %gs probe "
                                   "window: it is still in use" % (writes[name], reindexer.opt.probe_seconds)})
    for name in selected:
        if name in writes:
            continue
        try:
            if check_mode:
                steps, why = reindexer.plan(name)
                entry = {"index": name, "mode": reindexer.opt.mode, "status": "planned" if steps else "unchanged",
                         "plan": steps, "why": why}
                if not steps:
                    out["skipped"].append({"index": name, "reason": why})
                    continue
                entry["docs"] = _count_quietly(reindexer, name)
                out["results"].append(entry)
                out["changed"] = True
                continue
            result = reindexer.run(name)
        except (ReindexError, EsError) as exc:
            # An EsError here is a request that failed between two steps: the state stays in the
            # cluster and the next run resumes from it.
            exc.index = getattr(exc, "index", None)
            exc.failures = getattr(exc, "failures", [])
            out["failure"] = {"index": exc.index or name, "msg": exc.message, "failures": exc.failures}
            out["changed"] = not check_mode  # a rollback or an earlier step changed the cluster
            out["results"].append({"index": name, "mode": reindexer.opt.mode, "status": "failed",
                                   "msg": exc.message, "failures": exc.failures})
            break
        if result["steps"]:
            out["changed"] = True
            out["results"].append(result)
        else:
            out["skipped"].append({"index": name, "reason": reindexer.next_step(name)[1]})
    return out


def _count_quietly(reindexer, name):
    try:
        return int(reindexer.es.get("/%s/_count" % index_path(name))["count"])
    except (EsError, KeyError, ValueError):
        return None


def summary_lines(out):
    """One readable line per index for the playbook's output."""
    lines = []
    for r in out["results"]:
        if r["status"] == "planned":
            lines.append("%s: would %s (%s docs, %s)" % (r["index"], ", ".join(r["plan"]), r.get("docs"), r["mode"]))
        elif r["status"] == "failed":
            lines.append("%s: FAILED: %s" % (r["index"], r["msg"]))
        else:
            lines.append("%s: %s, %s docs in %.1fs (%s docs/s), %s, deleted %s" % (
                r["index"], r["status"], r["docs"], r["seconds"], r["docs_per_second"], r["mode"],
                ", ".join(r["deleted"]) or "nothing"))
    lines += ["%s: refused: %s" % (r["index"], r["reason"]) for r in out["refused"]]
    lines += ["%s: skipped: %s" % (r["index"], r["reason"]) for r in out["skipped"]]
    return lines
