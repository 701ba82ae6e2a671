# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reindex old indices into the mappings their names get today, without losing a document.

A resumable state machine in the manner of Kibana's reindex service, except
that its state lives in the cluster, never in memory or a file: which of the
source ``N`` and the copy ``N<suffix>`` exist, the write blocks, a
``_meta.logstack_reindex`` record in the copy's mapping (source uuid and count,
the task id, whether the copy was verified and replicated, what to give back)
and a guard index template ``logstack-reindex-N``. :meth:`Reindexer.next_step`
reads that and names the one step to do next, so a run killed anywhere is
finished by the next run.

Modes and their steps (each idempotent, in this order):

copy_back  create_temp, block_source, start_copy, wait_copy, replicate_temp, delete_source,
           clone_final, verify_final, delete_temp, restore
           (servers without the clone API: ... delete_source, create_final, start_copy_back,
           wait_copy_back, replicate_final, delete_temp, restore)
swap       create_temp, block_source, start_copy, wait_copy, replicate_temp, swap, restore

Invariants (docs/reindex.md):
* no acknowledged write is deleted: an index is deleted only when another, verified
  and replicated index holds every document it holds; a copy the run made is the only
  thing it drops on a rollback, after its task is gone;
* never below the source's redundancy: nothing is deleted or swapped before the copy has
  the source's replica count and is green (or as many active copies as the source had);
* the name never disappears: it is an index, or an alias of the write-blocked verified
  copy, and the guard template (``allow_auto_create: false``, no aliases) refuses its
  auto-creation in the one request between the two; the same template keeps index
  templates' aliases off the copies and is the per-index lock of a run;
* the final index accepts no write until it is verified: it is a clone of the verified,
  write-blocked copy, created write-blocked, and its block is lifted at restore.
"""
from __future__ import annotations

import copy
import datetime
import fnmatch
import os
import re
import socket
import time
import uuid

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsError, index_path
from ansible_collections.logstack.elk.plugins.module_utils.rollout import placement as placement_rules

META_KEY = "logstack_reindex"
GUARD_PREFIX = "logstack-reindex-"
DEFAULT_DATE_REGEX = r"(\d{4})[.\-_](\d{2})[.\-_](\d{2})"

COPY_BACK_STEPS = ("create_temp", "block_source", "start_copy", "wait_copy", "replicate_temp", "delete_source",
                   "clone_final", "verify_final", "delete_temp", "restore")
# Where the server has no clone API (Elasticsearch before 7.4, osmem-server): the final index is
# created writable and the copy is reindexed back into it.
COPY_BACK_REINDEX_STEPS = COPY_BACK_STEPS[:COPY_BACK_STEPS.index("clone_final")] + (
    "create_final", "start_copy_back", "wait_copy_back", "replicate_final", "delete_temp", "restore")
SWAP_STEPS = ("create_temp", "block_source", "start_copy", "wait_copy", "replicate_temp", "swap", "restore")

# Source settings the copies do not take, and why. Everything else a copy has comes from the
# current templates (the point of reindexing), plus PLACEMENT and RESTORED below.
NOT_COPIED = {
    "index.uuid": "the source's identity; the server gives each index its own",
    "index.creation_date": "server-owned; ILM keeps the source's age through index.lifecycle.origination_date",
    "index.provided_name": "server-owned",
    "index.version.": "the version that created the source; server-owned",
    "index.history.uuid": "server-owned",
    "index.verified_before_close": "server-owned",
    "index.replication.type": "server-owned (OpenSearch)",
    "index.routing.allocation.initial_recovery": "a shrink's pin of the source's first recovery to one node",
    "index.resize.": "shrink/split bookkeeping of the source",
    "index.shrink.": "shrink bookkeeping of the source",
    "index.blocks.write": "the run's own block during the copy; a block the source had before comes back at restore",
    "index.blocks.read_only_allow_delete": "the disk flood-stage block, set and lifted by Elasticsearch itself",
    "index.blocks.": "other blocks would stop the copy; read_only/read/metadata come back at restore",
    "index.number_of_replicas": "the source's count from the first write (restore keeps it and any explicit one)",
    "index.refresh_interval": "-1 while a copy is filled, the source's at restore",
    "index.lifecycle.": "ILM must not act on a half-made copy; given to the final index at restore",
}
# Taken from the source at creation: where and how its shards live (tiers, allocation filters,
# a shrink's shard count, hidden).
PLACEMENT = ("index.routing.allocation.", "index.hidden", "index.number_of_shards", "index.routing_partition_size")
# Given to the final index at restore.
RESTORED = ("index.lifecycle.", "index.blocks.write", "index.blocks.read_only", "index.blocks.read",
            "index.blocks.metadata", "index.number_of_replicas", "index.refresh_interval")


def _matches_prefix(key, prefixes):
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in prefixes)


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
                 poll_interval=2.0, timeout=3600, stall_polls=5, max_failures=5, today=None,
                 break_lock=None, lock_stale_seconds=3600, cancel_timeout=120, disk_check=True):
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
        self.break_lock = break_lock
        self.lock_stale_seconds = float(lock_stale_seconds)
        self.cancel_timeout = float(cancel_timeout)
        self.disk_check = disk_check


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
    """Flat settings one may pass to a copy's creation (NOT_COPIED ones dropped)."""
    out = {}
    for key, value in flat(settings).items():
        key = _index_key(key)
        if not _matches_prefix(key, NOT_COPIED):
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


def _merge(base, extra):
    """Mappings ``extra`` laid over ``base`` (objects merged, leaves replaced)."""
    out = copy.deepcopy(base or {})
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


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
        """No writes: a write block, or read_only (which also refuses adding a block)."""
        return any(str(self.settings.get(k, "false")).lower() == "true"
                   for k in ("index.blocks.write", "index.blocks.read_only"))

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
        self._auto_create_guard = True  # allow_auto_create accepted by the server's templates
        self._clone_api = None  # None: not known yet
        # This run, as its lock names it: a module invocation is one process.
        self.holder = {"run": uuid.uuid4().hex[:12], "host": socket.gethostname(), "pid": os.getpid()}
        if os.environ.get("JOB_ID"):  # AWX: every job runs in a new container, the job id names it
            self.holder["job"] = os.environ["JOB_ID"]

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
        """(settings, mappings) the current templates give ``name``, or the explicit ones.

        Composable templates through _simulate_index; when none gives mappings, the legacy
        ``_template``s that match (Logstash's on 7.x), merged by ascending ``order``."""
        settings, mappings = {}, {}
        if self.opt.use_templates:
            guard = self._guard(name)
            stash = ((guard or {}).get("_meta") or {}).get(META_KEY, {}).get("desired")
            if stash:  # our own guard template shadows the real ones now
                settings, mappings = dict(stash["settings"]), copy.deepcopy(stash["mappings"])
            else:
                status, body = self.es.call("POST", "/_index_template/_simulate_index/%s" % index_path(name),
                                            allow=(400, 404, 405))
                if status < 400:
                    template = (body or {}).get("template") or {}
                    settings = creatable_settings(template.get("settings") or {})
                    mappings = template.get("mappings") or {}
                if not mappings.get("properties"):
                    settings, mappings = self._legacy_templates(name, settings, mappings)
                if status >= 400 and not mappings.get("properties") and not self.opt.mappings:
                    raise ReindexError("This server cannot simulate index templates (POST "
                                       "_index_template/_simulate_index answered %s) and no legacy _template "
                                       "matches %s: give mappings explicitly." % (status, name), index=name)
        if self.opt.mappings:
            mappings = copy.deepcopy(self.opt.mappings)
        settings.update(creatable_settings(self.opt.settings))
        if not mappings.get("properties"):
            raise ReindexError("No index template gives %s any mappings and none were given explicitly: "
                               "nothing to reindex into." % name, index=name)
        return settings, mappings

    def _legacy_templates(self, name, settings, mappings):
        status, body = self.es.call("GET", "/_template", allow=(400, 404, 405))
        if status >= 400:
            return settings, mappings
        found = [t for t in (body or {}).values()
                 if any(fnmatch.fnmatchcase(name, p) for p in t.get("index_patterns") or [t.get("template") or ""])]
        found.sort(key=lambda t: int(t.get("order") or 0))  # a higher order overrides a lower one
        for t in found:
            settings.update(creatable_settings(t.get("settings") or {}))
            m = t.get("mappings") or {}
            if len(m) == 1 and "properties" not in m and isinstance(next(iter(m.values())), dict) \
                    and "properties" in next(iter(m.values())):
                m = next(iter(m.values()))  # a 6.x template's mapping type (_doc)
            mappings = _merge(mappings, m)
        return settings, mappings

    # -- selection ---------------------------------------------------------
    def select(self):
        """(names to work on, skipped [{index, reason}]) from the options and the cluster."""
        aliases = self.es.get("/_alias")
        opt = self.opt
        write_indices, stream_indices = {}, {}
        members = {}
        for index, info in aliases.items():
            for alias, spec in (info.get("aliases") or {}).items():
                members.setdefault(alias, []).append((index, spec or {}))
                if str((spec or {}).get("is_write_index", "false")).lower() == "true":
                    write_indices[index] = alias
        # The only index of an alias that names no write index takes the alias's writes: a write
        # index as much as an explicit one (unless is_write_index is false).
        for alias, held in members.items():
            if len(held) == 1 and "is_write_index" not in held[0][1]:
                write_indices.setdefault(held[0][0], alias + " (its only index, so implicitly)")
        status, streams = self.es.call("GET", "/_data_stream", allow=(400, 404, 405))
        if status < 400:
            for stream in streams.get("data_streams") or []:
                backing = [i.get("index_name") for i in stream.get("indices") or []]
                for i, index in enumerate(backing):
                    stream_indices[index] = (stream.get("name"), i == len(backing) - 1)
        # Our own copies name their source: a source deleted mid copy_back is found through its copy.
        ours = {}
        status, temps = self.es.call("GET", "/%s/_mapping" % index_path("*" + opt.suffix),
                                     params={"ignore_unavailable": "true", "allow_no_indices": "true",
                                             "expand_wildcards": "all"},  # hidden sources have hidden copies
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
            if reason and name in ours.values():
                reason = None  # a run started on it: finish it, whatever its aliases say now
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
        before = self._write_marks(fresh)
        self.sleep(self.opt.probe_seconds)
        after = self._write_marks(fresh)
        return {n: after[n] - before[n] if after[n] > before[n] else "some" for n in fresh
                if after.get(n) != before.get(n)}

    def _needs_probe(self, name):
        # Only an index we have not started on: a source we already write-blocked cannot be written.
        return self.next_step(name)[0] in ("create_temp", "block_source")

    def _write_marks(self, names):
        """Per index, the sum over its shards of the primary's max_seq_no: a write moves it, and unlike
        the indexing counters (which start at 0 on the node a shard relocates to) a relocation does not.
        Servers without seq_no stats: index_total + delete_total."""
        body = self.es.get("/%s/_stats" % index_path(*names), params={"level": "shards"})
        out = {}
        for name, stats in (body.get("indices") or {}).items():
            shards = stats.get("shards") or {}
            seqs = [c.get("seq_no", {}).get("max_seq_no") for copies in shards.values() for c in copies
                    if (c.get("routing") or {}).get("primary")]
            if seqs and all(s is not None for s in seqs):
                out[name] = sum(int(s) for s in seqs)
                continue
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
            raise ReindexError("%s exists and is not a reindex copy of %s made by this module: rename it or "
                               "choose another suffix." % (tname, name), index=name)
        if tmp.alias_of:
            raise ReindexError("%s is an alias, so it cannot hold the copy of %s: choose another suffix."
                               % (tname, name), index=name)
        smeta = src.meta if src.exists else {}
        if src.exists and smeta.get("role") == "temp" and smeta.get("source") == name and tmp.exists \
                and src.uuid != tmp.uuid:
            # A clone of the copy (it carries the copy's record) not yet marked as the final index.
            return "clone_final", "%s cloned from %s, not marked as the final index yet" % (name, tname)
        if src.exists and smeta.get("role") == "final" and not smeta.get("restored"):
            # copy_back, second half: the original name holds (part of) the copy back.
            if not tmp.exists:
                if not smeta.get("verified"):
                    raise ReindexError("%s was being copied back but %s is gone and %s is not verified: "
                                       "check the data by hand; nothing was deleted." % (name, tname, name),
                                       index=name)
                return "restore", "copy back verified and temporary copy removed"
            if not smeta.get("verified"):
                if smeta.get("cloned"):
                    return "verify_final", "%s cloned from %s, not verified yet" % (name, tname)
                if smeta.get("task") or smeta.get("starting"):
                    return "wait_copy_back", "copy back task %s started" % (smeta.get("task") or "(unrecorded)")
                return "start_copy_back", "%s created, copy back not started" % name
            if not smeta.get("replicated"):
                return "replicate_final", "copy back verified, replicas not started yet"
            return "delete_temp", "copy back verified and replicated"
        if src.alias_of:
            if tmp.exists and src.alias_of == [tname] and tmeta.get("verified"):
                if tmeta.get("role") == "swap":
                    if not tmeta.get("restored"):
                        return "restore", "swapped, settings not restored yet"
                    return "done", "%s is an alias of %s" % (name, tname)
                return self._final_step(), "%s removed; its name points at the verified copy %s" % (name, tname)
            return "done", "%s is an alias of %s; nothing to reindex" % (name, ", ".join(src.alias_of))
        if not src.exists:
            if tmp.exists and tmeta.get("verified") and tmeta.get("replicated") and tmeta.get("role") == "temp":
                return self._final_step(), "%s removed after a verified copy" % name
            if tmp.exists:
                raise ReindexError("%s is missing and its copy %s is not verified: nothing is deleted; "
                                   "check both by hand." % (name, tname), index=name)
            raise ReindexError("%s does not exist." % name, index=name)
        # The source is an index that has not been replaced yet.
        if tmp.exists:
            if tmeta.get("source_uuid") != src.uuid:
                if tmeta.get("verified"):
                    raise ReindexError(
                        "%s holds the verified copy of the original %s (%s documents), the only copy of them; "
                        "the index now named %s (uuid %s) was created by someone else during the run. Keep %s, "
                        "compare the two and merge them by hand." % (tname, name, tmeta.get("source_count"), name,
                                                                   src.uuid, tname), index=name)
                raise ReindexError("%s was made from an earlier index named %s (uuid %s, now %s): compare it with %s "
                                   "and remove it by hand once it holds nothing you need."
                                   % (tname, name, tmeta.get("source_uuid"), src.uuid, name), index=name)
            if not tmeta.get("verified"):
                if not src.blocked:
                    if tmeta.get("task") or tmeta.get("starting"):
                        return "reset_temp", "an earlier copy started while %s was writable" % name
                    return "block_source", "%s created" % tname
                if not tmeta.get("task") and not tmeta.get("starting"):
                    return "start_copy", "%s write-blocked, copy not started" % name
                return "wait_copy", "copy task %s started" % (tmeta.get("task") or "(unrecorded)")
            if not tmeta.get("replicated"):
                return "replicate_temp", "copy verified, replicas not started yet"
            return ("swap" if tmeta.get("role") == "swap" else "delete_source"), "copy verified and replicated"
        _, mappings = self.desired(name)
        if mapping_covers(src.mappings, mappings):
            return "done", "already in the current mappings"
        return "create_temp", "mappings differ from the current template"

    def clone_supported(self):
        """Whether the server has the clone API (Elasticsearch 7.4+, OpenSearch), asked once: a clone
        of an index that does not exist is refused with index_not_found_exception where the API
        exists, and with "no handler found" (or a parse error of 7.x's typed document path) where not."""
        if self._clone_api is None:
            try:
                old = self.es.distribution == "elasticsearch" and tuple(self.es.version) < (7, 4, 0)
            except (AttributeError, EsError):
                old = False
            if old:
                self._clone_api = False
            else:
                probe = GUARD_PREFIX + "probe-" + uuid.uuid4().hex[:12]
                status, body = self.es.call("POST", "/%s/_clone/%s-c" % (probe, probe),
                                            allow=(400, 403, 404, 405, 500))
                self._clone_api = status == 404 and "index_not_found" in str(body)
                if not self._clone_api:
                    self.log("no clone API here (a clone probe answered %s): copy_back reindexes the copy back "
                             "into a writable final index" % status)
        return self._clone_api

    def _final_step(self):
        return "clone_final" if self.clone_supported() else "create_final"

    def plan(self, name):
        """Steps a run would take from here, for check mode."""
        step, why = self.next_step(name)
        if step == "done":
            return [], why
        steps = SWAP_STEPS if self.opt.mode == "swap" else \
            COPY_BACK_STEPS if self.clone_supported() else COPY_BACK_REINDEX_STEPS
        if step == "reset_temp":
            return ["reset_temp"] + list(steps), why
        if step not in steps:
            return [step], why
        return list(steps[steps.index(step):]), why

    def step(self, name):
        """Do the next step for ``name``; returns its name ("done" when finished)."""
        step, _ = self.next_step(name)
        if step != "done":
            self.lock(name)
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

    def whereabouts(self, name):
        """Where the documents of ``name`` are now, for a message when a run stops."""
        out = []
        for index in (name, self.temp_name(name)):
            st = self.state(index)
            if st.alias_of:
                out.append("%s is an alias of %s" % (index, ", ".join(st.alias_of)))
                continue
            if not st.exists:
                continue
            role = st.meta.get("role")
            what = ("the original index" if not role else
                    "the final index" if role == "final" or index == name else  # (or its clone of the copy)
                    "the %s copy" % ("verified" if st.meta.get("verified") else "unfinished"))
            blocked = ", write-blocked" if st.blocked else ""
            out.append("%s (%s, %s documents%s)" % (index, what, _count_quietly(self, index), blocked))
        return "Documents of %s now: %s." % (name, "; ".join(out) or "no index or alias of that name")

    # -- the lock: the guard template ----------------------------------------
    def guard_name(self, name):
        return GUARD_PREFIX + name

    def _guard(self, name):
        status, body = self.es.call("GET", "/_index_template/%s" % self.guard_name(name), allow=(400, 404, 405))
        if status >= 400:
            return None
        found = [t.get("index_template") for t in (body or {}).get("index_templates") or []
                 if t.get("name") == self.guard_name(name)]
        return found[0] if found else None

    def _put_guard(self, name, desired=None, create=False, priority=None):
        """The guard of ``name``: an exact-name template (patterns N and its copy) above every other,
        so both are created with no template aliases and never auto-created by a write; its
        ``_meta`` names the run holding the lock."""
        if priority is None:
            status, body = self.es.call("GET", "/_index_template", allow=(400, 404, 405))
            prios = [int((t.get("index_template") or {}).get("priority") or 0)
                     for t in (body or {}).get("index_templates") or [] if t.get("name") != self.guard_name(name)]
            priority = max(prios or [0]) + 1
        holder = dict(self.holder, heartbeat=int(time.time()))
        if desired is not None:
            holder["desired"] = {"settings": desired[0], "mappings": desired[1]}
        body = {"index_patterns": [name, self.temp_name(name)], "priority": priority, "template": {},
                "_meta": {META_KEY: holder}}
        if self._auto_create_guard:
            body["allow_auto_create"] = False
        params = {"create": "true"} if create else None
        status, resp = self.es.call("PUT", "/_index_template/%s" % self.guard_name(name), body=body, params=params,
                                    allow=(400,))
        if status == 400 and "allow_auto_create" in str(resp):
            # Before 7.11 and on OpenSearch: no auto-creation guard; the name's gap is one request long.
            self._auto_create_guard = False
            body.pop("allow_auto_create")
            status, resp = self.es.call("PUT", "/_index_template/%s" % self.guard_name(name), body=body,
                                        params=params, allow=(400,))
        if status == 400:
            if create and "already exists" in str(resp):
                return False
            raise EsError("Elasticsearch refused the guard template %s: %s" % (self.guard_name(name), resp),
                          status=400, body=resp)
        self._heartbeat_at = self.clock()
        return True

    def lock(self, name, heartbeat_every=30.0):
        """Hold the lock of ``name`` (its guard template) or raise naming the run that holds it."""
        guard = self._guard(name)
        if guard is None:
            return  # create_temp takes it (PUT ?create=true: only one run can)
        held = ((guard.get("_meta") or {}).get(META_KEY)) or {}
        if held.get("run") == self.holder["run"]:
            if self.clock() - getattr(self, "_heartbeat_at", 0) > heartbeat_every:
                self._put_guard(name, _stash(held), priority=guard.get("priority"))
            return
        verdict = _verdict(held, self.holder, self.opt.lock_stale_seconds)
        who = "run %s on %s (%spid %s, last seen %s)" % (
            held.get("run"), held.get("host"), "AWX job %s, " % held["job"] if held.get("job") else "",
            held.get("pid"), _ago(held.get("heartbeat")))
        how = ("rerun with -e reindex_break_lock=%s (in AWX: the survey answer \"Break the lock of run\" = %s), "
               "or delete the index template %s (DELETE _index_template/%s)"
               % (held.get("run"), held.get("run"), self.guard_name(name), self.guard_name(name)))
        if self.opt.break_lock and self.opt.break_lock == held.get("run"):
            self.log("%s: broke the lock of %s as asked" % (name, who))
        elif verdict == "live":
            raise ReindexError("Another reindex run works on %s: %s. Wait for it to finish (a run silent for %ds "
                               "is taken over); if it is gone, %s." % (name, who, self.opt.lock_stale_seconds, how),
                               index=name)
        else:
            self.log("%s: took over the lock of %s: it is gone" % (name, who))
        self._put_guard(name, _stash(held), priority=guard.get("priority"))

    def _release(self, name):
        self.es.call("DELETE", "/_index_template/%s" % self.guard_name(name), allow=(404,))

    # -- steps -------------------------------------------------------------
    def _set_meta(self, index, **changes):
        meta = dict(self.state(index).meta)
        meta.update(changes)
        self.es.put("/%s/_mapping" % index_path(index), {"_meta": {META_KEY: meta}})

    def _health(self, index, params=None):
        status, body = self.es.call("GET", "/_cluster/health/%s" % index_path(index), params=params,
                                    allow=(400, 404, 405, 408))
        return body if status in (200, 408) and isinstance(body, dict) else None

    def _do_create_temp(self, name):
        src = self.state(name)
        desired = self.desired(name)
        # The bar the final index must reach: the source's redundancy once settled. A source made a
        # moment ago is yellow while its replicas initialise (a second on a real cluster); taken then,
        # the bar would let a final index missing a replica pass.
        health = self._health(name, {"wait_for_no_initializing_shards": "true", "timeout": "30s"}) or {}
        template_shards = desired[0].get("index.number_of_shards")
        explicit = creatable_settings(self.opt.settings)
        # Where the source lives now (ILM may have moved it to another tier since the template made it)
        # beats the template; only the settings option beats the source.
        settings = dict(desired[0])
        settings.update({k: v for k, v in src.settings.items() if _matches_prefix(k, PLACEMENT)
                         and not _matches_prefix(k, NOT_COPIED) and k not in explicit})
        notes = []
        if "index.number_of_shards" not in explicit:
            # A shrink gave the source its count; the template's is for new daily indices.
            settings["index.number_of_shards"] = src.settings.get("index.number_of_shards", "1")
        elif str(settings["index.number_of_shards"]) != str(src.settings.get("index.number_of_shards")):
            notes.append("number_of_shards %s from the settings option instead of the source's %s"
                         % (settings["index.number_of_shards"], src.settings.get("index.number_of_shards")))
        if template_shards and str(template_shards) != str(settings["index.number_of_shards"]) and not notes:
            notes.append("kept the source's %s shards (the template says %s)"
                         % (settings["index.number_of_shards"], template_shards))
        self.check_disk(name, src, placement=settings)  # on the nodes the copy may be allocated to
        restore = {k: v for k, v in src.settings.items() if _matches_prefix(k, RESTORED)}
        restore.setdefault("index.number_of_replicas", "1")
        restore.setdefault("index.refresh_interval", None)
        if any(k.startswith("index.lifecycle.") for k in restore):
            # ILM counts the final index's age from the source's birth, not the copy's.
            restore.setdefault("index.lifecycle.origination_date", src.settings.get("index.creation_date"))
        for key, value in flat(self.opt.settings).items():  # explicit settings win at the end too
            if _matches_prefix(_index_key(key), RESTORED):
                restore[_index_key(key)] = value
        if not self._put_guard(name, desired, create=True):
            self.lock(name)  # another run made it meanwhile: raises naming it
            self._put_guard(name, desired)
        self._create_copy(self.temp_name(name), settings, desired[1], {
            "source": name, "source_uuid": src.uuid, "role": "temp" if self.opt.mode == "copy_back" else "swap",
            "source_was_blocked": src.blocked, "aliases": src.aliases, "restore": restore, "notes": notes,
            "source_status": health.get("status", "green"),
            "source_active_shards": health.get("active_shards"), "create_settings": settings,
            "verified": False, "task": None})

    def _create_copy(self, index, settings, mappings, meta):
        settings = dict(settings)
        # Replicas written as the copy fills, as a plain _reindex into a replicated index: no second
        # pass to build them (a peer recovery after the copy cost a 3-node 7.17 more than 40 %), and
        # the copy never has fewer copies of a document than the source.
        settings["index.number_of_replicas"] = _replicas(meta)
        settings["index.refresh_interval"] = "-1"
        mappings = copy.deepcopy(mappings)
        meta["template_meta"] = {k: v for k, v in (mappings.get("_meta") or {}).items() if k != META_KEY}
        mappings["_meta"] = {META_KEY: meta}
        # The guard template matches this exact name above every other: no template alias on it.
        self.es.put("/%s" % index_path(index), {"settings": settings, "mappings": mappings})

    def block_write(self, index):
        """Write-block through the block API (7.9+: waits for in-flight writes); settings where it is missing."""
        status, body = self.es.call("PUT", "/%s/_block/write" % index_path(index), allow=(400, 404, 405))
        if status < 400:
            return
        if "index_not_found" in str(body):
            raise EsError("%s does not exist." % index, status=status, body=body)
        self.es.put("/%s/_settings" % index_path(index), {"index.blocks.write": True})

    def _do_block_source(self, name):
        self.block_write(name)

    def _do_reset_temp(self, name):
        tname = self.temp_name(name)
        meta = self.state(tname).meta
        self._cancel_and_wait(meta.get("task") or self._find_task(name, tname), tname)
        self.es.delete("/%s" % index_path(tname), allow=(404,))

    def _start(self, source, dest):
        params = {"wait_for_completion": "false"}  # counts are taken after an explicit _refresh
        if self.opt.slices not in (None, "", 1, "1"):
            params["slices"] = self.opt.slices
        if self.opt.requests_per_second not in (None, -1, "-1"):
            params["requests_per_second"] = self.opt.requests_per_second
        body = {"source": {"index": source}, "dest": {"index": dest, "version_type": "external"},
                "conflicts": self.opt.conflicts}
        have = self.count(dest)
        if have:
            # Documents nobody recorded copying. Only the copy could hold some (no alias, no
            # auto-creation reaches it); the final index could hold a client's write: never dropped.
            meta = dict(self.state(dest).meta)
            if meta.get("role") == "final":
                # Kept: the copy back goes around them (a client's newer write wins over the old copy).
                self.log("%s: keeps %d document(s) written into it before the copy back" % (dest, have))
                body["conflicts"] = "proceed"
            else:
                self._cancel_and_wait(self._find_task(source, dest), dest)
                meta.pop("template_meta", None)
                self.es.delete("/%s" % index_path(dest))
                self._create_copy(dest, meta["create_settings"], self.desired(meta["source"])[1], meta)
        expected = self.count(source)
        # Recorded first: a run killed before it records the task finds it by this mark.
        self._set_meta(dest, starting=int(time.time() * 1000), source_count=expected, task=None)
        # Never retried: a second POST would start a second task writing the same index.
        task = self.es.call("POST", "/_reindex", body=body, params=params, retries=0)[1].get("task")
        if not task:
            raise ReindexError("The server started no task for the copy of %s into %s." % (source, dest))
        self._set_meta(dest, task=task, starting=None)
        self.log("%s -> %s: task %s" % (source, dest, task))

    def _do_start_copy(self, name):
        self._start(name, self.temp_name(name))

    def _do_start_copy_back(self, name):
        self._start(self.temp_name(name), name)

    def _do_wait_copy(self, name):
        self._wait(name, self.temp_name(name), rollback=self._rollback_copy)
        self.block_write(self.temp_name(name))  # verified: nothing else may write into it

    def _do_wait_copy_back(self, name):
        self._wait(self.temp_name(name), name, rollback=self._rollback_copy_back)

    def _wait(self, source, dest, rollback):
        meta = self.state(dest).meta
        expected = int(meta.get("source_count"))
        task = meta.get("task")
        try:
            if not task:
                # A run was killed between starting the copy and recording its task.
                task = self._find_task(source, dest)
                self._set_meta(dest, task=task or "unknown", starting=None)
            response = self._wait_task(task, source, dest, expected) if task and task != "unknown" else \
                self._wait_counts(source, dest, expected, self.clock() + self.opt.timeout)
            failures = first_failures(response, self.opt.max_failures)
            if failures:
                raise ReindexError("Copying %s into %s failed on %d document(s); first: %s" % (
                    source, dest, len(response.get("failures")), _failure_text(failures[0])), failures=failures)
            got = self.count(dest)
            # More than expected is fine only when every source document is there: writes a
            # client made into the final index during the copy back are kept, never dropped.
            if got != expected and (got < expected or self._missing_ids(source, dest, limit=1)):
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
                # Read: its stored result in .tasks is of no further use (ES keeps them forever).
                self.es.call("DELETE", "/.tasks/_doc/%s" % task, allow=(400, 403, 404, 405))
                if body.get("error"):
                    err = body["error"]
                    raise ReindexError("Task %s copying %s into %s failed: %s: %s" % (
                        task, source, dest, err.get("type"), err.get("reason")))
                response = body.get("response") or {}
                if (response.get("canceled") or "").strip():
                    raise ReindexError("Task %s copying %s into %s was cancelled (%s)." % (
                        task, source, dest, response["canceled"]))
                return response
            if self.clock() > deadline:
                raise ReindexError("Copying %s into %s did not finish within %ds (%s of %d documents); the "
                                   "task was cancelled." % (source, dest, self.opt.timeout,
                                                            (body.get("task") or {}).get("status", {}).get(
                                                                "created"), expected))
            self.lock(source if dest == self.temp_name(source) else dest)  # heartbeat
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

    def _diagnose(self, source, dest):
        """First failures for documents missing from dest: copy a few of them synchronously."""
        try:
            missing = self._missing_ids(source, dest, limit=self.opt.max_failures)
            if not missing:
                return []
            # Idempotent (ids, external versions, conflicts proceed): a retry cannot double anything.
            status, response = self.es.call(
                "POST", "/_reindex", params={"wait_for_completion": "true", "refresh": "true"},
                body={"source": {"index": source, "query": {"ids": {"values": missing[:self.opt.max_failures]}}},
                      "dest": {"index": dest, "version_type": "external"}, "conflicts": "proceed"},
                allow=(400, 409, 500))
            return first_failures(response, self.opt.max_failures)
        except EsError:
            return []

    def _find_task(self, source, dest):
        """The task copying ``source`` into ``dest`` (running, or its stored result), or None."""
        description = "reindex from [%s] to [%s]" % (source, dest)
        status, body = self.es.call("GET", "/_tasks", params={"actions": "*reindex", "detailed": "true"},
                                    allow=(400, 404, 405))
        if status >= 400:
            self._tasks_api = False
            return None
        self._tasks_api = True
        for node in (body.get("nodes") or {}).values():
            for task_id, task in (node.get("tasks") or {}).items():
                if task.get("description") == description and not task.get("parent_task_id"):
                    return task_id
        status, body = self.es.call("POST", "/.tasks/_search", body={
            "size": 20, "query": {"match_phrase": {"task.description": description}}}, allow=(400, 403, 404))
        for hit in ((body or {}).get("hits") or {}).get("hits") or [] if status == 200 else []:
            task = (hit.get("_source") or {}).get("task") or {}
            if task.get("description") == description:
                return hit.get("_id")
        return None

    def _cancel_and_wait(self, task, dest):
        """Cancel ``task`` and wait until it is gone: cancelling is cooperative, and a batch still in
        flight would re-create a destination deleted before the task ended."""
        if not task or task == "unknown" or self._tasks_api is False:
            return
        self.es.call("POST", "/_tasks/%s/_cancel" % task, allow=(400, 404, 405))
        deadline = self.clock() + self.opt.cancel_timeout
        while True:
            status, body = self.es.call("GET", "/_tasks/%s" % task, allow=(400, 404, 405))
            if status >= 400 or body.get("completed"):
                if status < 400:
                    self.es.call("DELETE", "/.tasks/_doc/%s" % task, allow=(400, 403, 404, 405))
                return
            if self.clock() > deadline:
                raise ReindexError("Task %s writing into %s did not stop within %ds of its cancellation: nothing "
                                   "was deleted; run again once GET _tasks/%s says it completed."
                                   % (task, dest, self.opt.cancel_timeout, task), index=dest)
            self.sleep(min(self.opt.poll_interval, 0.5))

    def _lift_block(self, name):
        """Lift the run's write block on ``name``. Under the disk flood-stage block Elasticsearch refuses
        settings (429) until its disk monitor lifts that block, after the copy freed the disk."""
        deadline = self.clock() + min(self.opt.timeout, 60.0)
        while True:
            status, body = self.es.call("PUT", "/%s/_settings" % index_path(name), body={"index.blocks.write": None},
                                        allow=(429,))
            if status < 400:
                return
            if self.clock() > deadline:
                raise ReindexError("%s stays write-blocked: the disk flood-stage block (read_only_allow_delete) "
                                   "refuses settings changes. Free disk below the high watermark, then PUT "
                                   "%s/_settings {\"index.blocks.write\": null}." % (name, name), index=name)
            self.sleep(min(self.opt.poll_interval, 1.0))

    def _rollback_copy(self, name, tname):
        """The source holds everything: drop the partial copy (after its task is gone), then lift our block.
        The copy goes first: under a flood-stage block deleting it is what frees the disk."""
        meta = self.state(tname).meta
        self._cancel_and_wait(meta.get("task") or self._find_task(name, tname), tname)
        self.es.delete("/%s" % index_path(tname), allow=(404,))
        self._release(name)
        if not meta.get("source_was_blocked"):
            self._lift_block(name)

    def _rollback_copy_back(self, tname, name):
        """The verified temporary copy holds everything: drop the partial final index, unless it holds a
        document the run did not copy there, and give the name back to the copy in the same call."""
        meta = self.state(name).meta
        self._cancel_and_wait(meta.get("task") or self._find_task(tname, name), name)
        if not self.state(tname).meta.get("verified"):
            return
        try:
            foreign = self._missing_ids(name, tname)
        except EsError:
            # Every shard of the final index failed (its copies went with a node): what it held is
            # gone already; nothing readable there is lost by dropping it.
            if (self._health(name) or {}).get("status") != "red":
                raise
            foreign = []
        if foreign:
            raise ReindexError("%s holds %d document(s) the run did not copy there (first: %s), written during "
                               "the copy back: nothing is deleted. %s" % (
                                   name, len(foreign), ", ".join(foreign[:3]), self.whereabouts(name)), index=name)
        self.es.post("/_aliases", {"actions": [{"remove_index": {"index": name}},
                                               {"add": {"index": tname, "alias": name}}]})

    def _missing_ids(self, index, other, limit=None, batch=1000):
        """Ids of documents in ``index`` that ``other`` does not have (scroll + _mget)."""
        missing = []
        body = self.es.post("/%s/_search" % index_path(index), {"size": batch, "sort": ["_doc"], "_source": False},
                            params={"scroll": "2m"})
        try:
            while body.get("hits", {}).get("hits") and (limit is None or len(missing) < limit):
                ids = [h["_id"] for h in body["hits"]["hits"]]
                found = self.es.post("/%s/_mget" % index_path(other), {"ids": ids}, params={"_source": "false"})
                missing += [d["_id"] for d in found.get("docs", []) if not d.get("found")]
                body = self.es.post("/_search/scroll", {"scroll": "2m", "scroll_id": body["_scroll_id"]})
        finally:
            if body.get("_scroll_id"):
                self.es.call("DELETE", "/_search/scroll", body={"scroll_id": [body["_scroll_id"]]},
                             allow=(400, 404, 405))
        return missing

    def _wait_redundant(self, index, meta, on_red=None, red_grace=10.0):
        """Until ``index`` has the source's replica count started: green, or, when the source was
        not green itself, at least as many active shard copies as it had. ``on_red``: what to do
        when it stays red (a shard's only copy went with its node) for ``red_grace`` seconds."""
        deadline = self.clock() + self.opt.timeout
        want_green = meta.get("source_status", "green") == "green"
        want_active = int(meta.get("source_active_shards") or 0)
        red_since = None
        while True:
            h = self._health(index)
            if h is None:
                raise ReindexError("The server has no _cluster/health: cannot tell that %s has its replicas; "
                                   "nothing was deleted." % index, index=index)
            if h.get("status") == "green" and not h.get("initializing_shards"):
                return
            if not want_green and h.get("status") != "red" and int(h.get("active_shards") or 0) >= want_active:
                return
            red_since = (red_since or self.clock()) if h.get("status") == "red" else None
            if on_red is not None and red_since is not None and self.clock() - red_since >= red_grace:
                on_red()
                raise ReindexError("%s lost a shard (its only copy was on a node that left) before it had "
                                   "replicas: it was dropped, its source still holds every document; run "
                                   "again to copy anew." % index, index=index)
            if self.clock() > deadline:
                raise ReindexError("%s did not get its replicas within %ds (status %s, %s active shard copies): "
                                   "nothing was deleted; run again once the cluster can allocate them."
                                   % (index, self.opt.timeout, h.get("status"), h.get("active_shards")),
                                   index=index)
            self.sleep(self.opt.poll_interval)

    def _replicate(self, index, meta, on_red):
        # Made with them (an index of an earlier version of this module was made with 0).
        if str(self.state(index).settings.get("index.number_of_replicas")) != _replicas(meta):
            self.es.put("/%s/_settings" % index_path(index), {"index.number_of_replicas": _replicas(meta)})
        self._wait_redundant(index, meta, on_red)
        self._set_meta(index, replicated=True)

    def _do_replicate_temp(self, name):
        tname = self.temp_name(name)
        self._replicate(tname, self.state(tname).meta, lambda: self._rollback_copy(name, tname))

    def _do_replicate_final(self, name):
        tname = self.temp_name(name)
        self._replicate(name, self.state(name).meta, lambda: self._rollback_copy_back(tname, name))

    def _verified_pair(self, keep, drop, meta, what):
        """Refuse unless ``keep`` is verified, replicated and holds every document of ``drop``."""
        expected = int(meta["source_count"])
        have_keep, have_drop = self.count(keep), self.count(drop)
        ok = meta.get("verified") and meta.get("replicated") and have_drop == expected and have_keep >= expected
        if ok and have_keep > expected:
            # Writes a client made into the final index during the copy back: it must still hold all of drop.
            ok = not self._missing_ids(drop, keep, limit=1)
        if not ok:
            raise ReindexError("Refusing to %s: %s has %d documents, %s has %d, %d expected. %s" % (
                what, keep, have_keep, drop, have_drop, expected, self.whereabouts(meta["source"])), index=drop)

    def _allow_removal(self, name):
        """Elasticsearch refuses to remove an index under a read_only (or metadata) block (403); keep
        refusing writes with a write block instead. The source's own blocks come back at restore.

        Returns True when the blocks had to be changed one request at a time: OpenSearch exempts from
        the metadata block only an update of that one block setting (Elasticsearch 7 any update that
        names read_only), so writes were possible for one cluster-state update and the caller checks
        the pair again."""
        settings = self.state(name).settings
        held = [k for k in ("index.blocks.metadata", "index.blocks.read_only")
                if str(settings.get(k)).lower() == "true"]
        if not held:
            return False
        path = "/%s/_settings" % index_path(name)
        status, _ = self.es.call("PUT", path, body={"index.blocks.write": True, "index.blocks.read_only": False,
                                                    "index.blocks.metadata": False}, allow=(403,))
        if status != 403:
            return False
        for key in held:  # read_only last: it refuses writes until the write block replaces it
            self.es.put(path, {key: False})
        self.es.put(path, {"index.blocks.write": True})
        return True

    def _do_delete_source(self, name):
        self._name_to_copy(name, "delete %s" % name)

    def _do_swap(self, name):
        self._name_to_copy(name, "swap %s" % name)  # the same call: in swap mode its alias is the end state

    def _name_to_copy(self, name, what):
        """One atomic call: the source goes, its aliases and its very name point at the verified,
        write-blocked copy (late writes get the block's error; no write can auto-create the name)."""
        tname = self.temp_name(name)
        tmp = self.state(tname)
        self._verified_pair(tname, name, tmp.meta, what)
        if self._allow_removal(name):
            self._verified_pair(tname, name, tmp.meta, what)
        actions = [{"remove_index": {"index": name}}, {"add": {"index": tname, "alias": name}}]
        actions += [{"add": _alias_action(tname, alias, spec)} for alias, spec in tmp.meta["aliases"].items()]
        self.es.post("/_aliases", {"actions": actions})

    def _do_create_final(self, name):
        tname = self.temp_name(name)
        tmp = self.state(tname)
        tmeta = tmp.meta
        self.check_disk(name, tmp, copying=tname)
        meta = self._final_meta(tmeta)
        mappings = {k: v for k, v in tmp.mappings.items() if k != "_meta"}
        if tmeta.get("template_meta"):
            mappings["_meta"] = tmeta["template_meta"]
        # The name leaves the copy; the guard template refuses its auto-creation until the PUT.
        self.es.call("POST", "/_aliases", body={"actions": [{"remove": {"index": tname, "alias": name}}]},
                     allow=(404,))
        status, body = self.es.call("PUT", "/%s" % index_path(name), allow=(400,), body={
            "settings": dict(tmeta.get("create_settings") or {}, **{"index.number_of_replicas": _replicas(tmeta),
                                                                    "index.refresh_interval": "-1"}),
            "mappings": dict(mappings, _meta={META_KEY: meta})})
        if status == 400:
            raise ReindexError("Could not create the final index %s (%s): something else took the name. %s" % (
                name, (body.get("error") or {}).get("type") if isinstance(body, dict) else body,
                self.whereabouts(name)), index=name)

    def _final_meta(self, tmeta, **changes):
        meta = {k: tmeta.get(k) for k in ("source", "aliases", "restore", "source_was_blocked", "source_status",
                                          "source_active_shards", "source_count", "notes", "template_meta")}
        meta.update(role="final", verified=False, task=None, **changes)
        return meta

    def _do_clone_final(self, name):
        """The final index as a clone of the verified, write-blocked copy (same shards, mappings and
        settings, segments hard-linked), created write-blocked with the source's replicas: the
        name refuses writes from the source's block until restore, after verify_final."""
        tname = self.temp_name(name)
        tmp = self.state(tname)
        cur = self.state(name)
        if not (cur.exists and cur.meta.get("role") == "temp" and cur.meta.get("source") == name):
            self.check_disk(name, tmp, copying=tname)
            # The name leaves the copy; the guard template refuses its auto-creation until the clone.
            self.es.call("POST", "/_aliases", body={"actions": [{"remove": {"index": tname, "alias": name}}]},
                         allow=(404,))
            status, body = self.es.call("POST", "/%s/_clone/%s" % (index_path(tname), index_path(name)),
                                        body={"settings": {"index.number_of_replicas": _replicas(tmp.meta),
                                                           "index.blocks.write": True}},
                                        allow=(400, 404, 405, 500))
            if status >= 400:
                if status == 405 or "no handler found" in str(body):
                    self._clone_api = False  # the probe said otherwise (a proxy?): copy back instead
                    return self._do_create_final(name)
                raise ReindexError("Could not clone %s into the final index %s (%s): %s. %s" % (
                    tname, name, status, _reason(body), self.whereabouts(name)), index=name)
        # The clone carries the copy's record: it becomes the final index's, not verified yet.
        self.es.put("/%s/_mapping" % index_path(name),
                    {"_meta": {META_KEY: self._final_meta(tmp.meta, cloned=True)}})

    def _do_verify_final(self, name):
        """Green with the source's replicas (the clone's recoveries done), then every document of the
        copy in it, none more (nothing can write into it): only then is it verified."""
        tname = self.temp_name(name)
        meta = self.state(name).meta
        self._wait_redundant(name, meta, on_red=lambda: self._rollback_copy_back(tname, name))
        expected = int(meta["source_count"])
        have, have_temp = self.count(name), self.count(tname)
        if have != expected or have_temp != expected or self._missing_ids(tname, name, limit=1):
            self._rollback_copy_back(tname, name)
            raise ReindexError("The clone %s of %s holds %d documents, %s %d, %d expected: it was dropped and the "
                               "name given back to %s; run again to clone anew. %s" % (
                                   name, tname, have, tname, have_temp, expected, tname, self.whereabouts(name)),
                               index=name)
        self._set_meta(name, verified=True, replicated=True, dest_count=expected)

    def _do_delete_temp(self, name):
        tname = self.temp_name(name)
        final = self.state(name)
        self._verified_pair(name, tname, final.meta, "delete %s" % tname)
        actions = [{"remove_index": {"index": tname}}]
        actions += [{"add": _alias_action(name, alias, spec)} for alias, spec in final.meta["aliases"].items()]
        self.es.post("/_aliases", {"actions": actions})

    def _do_restore(self, name):
        target = name if self.state(name).exists else self.temp_name(name)
        meta = self.state(target).meta
        settings = {k: v for k, v in (meta.get("restore") or {}).items()
                    if not k.startswith("index.blocks.") and k != "index.number_of_replicas"}
        if settings:
            self.es.put("/%s/_settings" % index_path(target), settings)
        # Success only with the source's redundancy (replicas were set before anything was deleted).
        self._wait_redundant(target, meta)
        # Give the template's own _meta back; a small marker says the work is finished.
        restored = dict(meta.get("template_meta") or {})
        restored[META_KEY] = {"source": meta.get("source"), "role": meta.get("role"), "verified": True,
                              "restored": True, "source_count": meta.get("source_count"),
                              "notes": meta.get("notes") or []}
        self.es.put("/%s/_mapping" % index_path(target), {"_meta": restored})
        blocks = {k: v for k, v in (meta.get("restore") or {}).items() if k.startswith("index.blocks.")}
        if "index.blocks.write" not in blocks and self.state(target).blocked:
            self._lift_block(target)  # the run's own block (swap: on the copy since its verification)
        if blocks:  # the source's own blocks, read_only last (it also refuses metadata writes)
            self.es.put("/%s/_settings" % index_path(target), blocks)
        self._release(name)

    # -- disk ----------------------------------------------------------------
    def check_disk(self, name, src, copying=None, placement=None):
        """Refuse, with the figures, a copy that the data nodes it may be allocated to (its allocation
        filters, the cluster's and its tier preference: ``placement``, the copy's flat settings) have
        no room for below the low watermark."""
        if not self.opt.disk_check:
            return
        source = copying or name
        status, stats = self.es.call("GET", "/%s/_stats/store" % index_path(source), allow=(400, 404, 405))
        status2, nodes = self.es.call("GET", "/_nodes/stats/fs", allow=(400, 404, 405))
        status3, cluster = self.es.call("GET", "/_cluster/settings", params={"include_defaults": "true",
                                                                            "flat_settings": "true"},
                                        allow=(400, 404, 405))
        if status >= 400 or status2 >= 400 or status3 >= 400:
            self.log("%s: no disk figures on this server (_nodes/stats/fs); copy not checked" % name)
            return
        setting, explicit = {}, {}
        for part in ("defaults", "persistent", "transient"):
            setting.update(cluster.get(part) or {})
            if part != "defaults":
                explicit.update(cluster.get(part) or {})
        if str(setting.get("cluster.routing.allocation.disk.threshold_enabled", "true")).lower() == "false":
            return
        try:  # max_headroom caps a ratio watermark from Elasticsearch 8.5
            headroom = self.es.distribution == "elasticsearch" and tuple(self.es.version) >= (8, 5, 0)
        except (AttributeError, EsError):
            headroom = False
        inputs = placement_rules.Inputs(setting, explicit, headroom=headroom)
        low = setting.get(placement_rules.LOW) or placement_rules.LOW_DEFAULT
        primary = int(((stats.get("_all") or {}).get("primaries") or {}).get("store", {}).get("size_in_bytes") or 0)
        replicas = int((src.meta.get("restore") or {}).get("index.number_of_replicas")
                       or src.settings.get("index.number_of_replicas") or 0) if copying else \
            int(src.settings.get("index.number_of_replicas") or 0)
        need = primary * (1 + replicas)
        placement = placement if placement is not None else src.settings
        entries = {nid: _node_entry(node) for nid, node in (nodes.get("nodes") or {}).items()}
        room, nodes_seen, kept_off = 0, 0, {}
        for nid, node in (nodes.get("nodes") or {}).items():
            roles = node.get("roles")
            if roles is not None and not any(r == "data" or r.startswith("data_") for r in roles):
                continue
            total = int(((node.get("fs") or {}).get("total") or {}).get("total_in_bytes") or 0)
            free = int(((node.get("fs") or {}).get("total") or {}).get("available_in_bytes") or 0)
            if not total:
                continue
            why = placement_rules.placement_refusal(nid, entries[nid], placement, setting, entries.values())
            if why:
                kept_off.setdefault(why, []).append(node.get("name") or nid)
                continue
            nodes_seen += 1
            room += max(0, free - placement_rules.min_free_low(inputs, total))
        off = "".join("; %s keeps it off %s" % (why, ", ".join(sorted(names)))
                      for why, names in sorted(kept_off.items()))
        if kept_off and not nodes_seen:
            raise ReindexError("No data node may hold the copy of %s%s. Change the index's allocation settings or "
                               "add nodes; nothing was changed." % (source, off), index=name)
        if nodes_seen and need > room:
            raise ReindexError(
                "Not enough disk to copy %s: the copy needs about %s (%s of primaries x %d copies) and the %d data "
                "node(s) it may be allocated to have %s left below the low watermark (%s)%s. Free disk or add "
                "nodes; nothing was changed." % (source, _size(need), _size(primary), 1 + replicas, nodes_seen,
                                                 _size(room), low, off), index=name)


def _replicas(meta):
    """The source's replica count, from a copy's record (what restore gives the final index)."""
    value = (meta.get("restore") or {}).get("index.number_of_replicas")
    return "1" if value in (None, "") else str(value)


def _node_entry(node):
    """A GET _nodes/stats entry as the allocation filters read it: the ip without the port (a list on 8.x)."""
    ip = node.get("ip")
    if isinstance(ip, list):
        ip = ip[0] if ip else None
    if isinstance(ip, str) and ip.count(":") == 1:
        ip = ip.split(":")[0]
    return {"name": node.get("name"), "host": node.get("host"), "ip": ip, "roles": node.get("roles") or ["data"],
            "attributes": node.get("attributes") or {}}


def _alias_action(index, alias, spec):
    action = {"index": index, "alias": alias}
    for key in ("filter", "index_routing", "search_routing", "routing", "is_write_index", "is_hidden"):
        if key in (spec or {}):
            action[key] = spec[key]
    return action


def _verdict(held, me, stale_seconds):
    """'dead' (its process is provably gone, is this one, or gave no heartbeat for stale_seconds
    whichever host or AWX job container ran it) or 'live'. A live run beats every 30 s."""
    if held.get("host") == me["host"] and held.get("pid"):
        if int(held["pid"]) == me["pid"]:
            return "dead"  # this process: an earlier Reindexer of it, long finished
        try:
            os.kill(int(held["pid"]), 0)
        except ProcessLookupError:
            return "dead"
        except (PermissionError, OSError, ValueError):
            pass
    beat = held.get("heartbeat")
    if beat is not None and time.time() - float(beat) > stale_seconds:
        return "dead"
    return "live"


def _ago(epoch):
    if not epoch:
        return "never"
    return "%ds ago" % max(0, int(time.time() - float(epoch)))


def _stash(held):
    d = held.get("desired") or {}
    return (d.get("settings") or {}, d.get("mappings") or {}) if d else None


def _size(n):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return "%.1f %s" % (n, unit) if unit != "B" else "%d B" % n
        n /= 1024.0
    return str(n)


def _reason(body):
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return "%s: %s" % (err.get("type"), err.get("reason"))
    return str(err or body)


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
            out["refused"].append({"index": name, "reason": "it received %s write(s) during the %gs probe "
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
            try:  # say where every document is, whatever stopped the run
                if "Documents of " not in exc.message:
                    exc.message = "%s %s" % (exc.message, reindexer.whereabouts(name))
            except EsError:
                pass
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
