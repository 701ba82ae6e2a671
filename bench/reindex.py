"""es_reindex against a raw _reindex of the same 200k-document index, in one run.

On osmem-server by default; on a real (multi-node) cluster with BENCH_REINDEX_ES_URL (and
BENCH_REINDEX_ES_USERNAME / _PASSWORD / _CA_FILE). Every measurement copies identical data:
  raw        POST _reindex (wait_for_completion=true) into an index with the new mapping and the
             source's replica count, refresh, count, until it is green with its replicas
  swap       es_reindex mode=swap     (one copy, verified, replicated and green, one _aliases call)
  copy_back  es_reindex mode=copy_back (two copies, each verified, replicated and green)
On osmem each measurement gets its own clone of one seeded base; on a cluster the index is made
anew before each measurement from a seeded base index (bench-reindex-base), untimed.
The probe window is a deliberate wait (probe_seconds) and is set to 0 here; everything else
(write block, task start, polling, counts, alias moves, settings) is timed. osmem clones copy an
index of the frozen base on its first write; that copy is made before the clock starts, for all three.
The raw copy is timed first and last of each round; each kind keeps its best time
(BENCH_REINDEX_ROUNDS rounds, default 1; BENCH_REINDEX_DOCS documents, default 200000).
BENCH_REINDEX_STEPS=1 prints each step of es_reindex with the time it started.
Targets: swap <= 1.3x raw, copy_back <= 2.5x raw (all three end with the final index green with
the source's replicas). Prints ratios; returns 1 when a target is missed.
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

DOCS = int(os.environ.get("BENCH_REINDEX_DOCS", "200000"))
NAME = "logstash-2024.01.01"
ROUNDS = int(os.environ.get("BENCH_REINDEX_ROUNDS", "1"))
STEPS = os.environ.get("BENCH_REINDEX_STEPS") == "1"
TARGETS = {"swap": 1.3, "copy_back": 2.5}
BASE = "bench-reindex-base"
OLD = {"properties": {"Status": {"type": "text"}, "@timestamp": {"type": "date"}, "message": {"type": "text"}}}
NEW = {"properties": {"Status": {"type": "integer"}, "@timestamp": {"type": "date"}, "message": {"type": "text"}}}


def _docs(name, start, stop):
    lines = []
    for i in range(start, stop):
        lines += [{"index": {"_index": name, "_id": str(i)}},
                  {"Status": str(200 + i % 5 * 100), "@timestamp": "2024-01-01T00:00:%02dZ" % (i % 60),
                   "message": "GET /api/item/%d HTTP/1.1" % i}]
    return lines


def _template(es, mappings):
    es.put("/_index_template/logstash", {"index_patterns": ["logstash-*"], "template": {
        "settings": {"number_of_shards": 1}, "mappings": mappings}})


def _seed(es, name=NAME, replicas=None):
    _template(es, OLD)
    settings = {} if replicas is None else {"number_of_replicas": replicas}
    es.put("/" + name, {"settings": settings, "aliases": {"logs": {}}})
    es.put("/bench-archive", {"aliases": {"logs": {}}})  # logs is not NAME's alone: not a write index
    for start in range(0, DOCS, 5000):
        es.bulk(_docs(name, start, min(DOCS, start + 5000)))
    es.post("/%s/_refresh" % name)
    _template(es, NEW)


def _redundant(es, index, source):
    """Until ``index`` is green, or has as many active shard copies as ``source`` (a one-node server)."""
    want = es.get("/_cluster/health/" + source)
    while True:
        h = es.get("/_cluster/health/" + index)
        if h["status"] == "green" or (want["status"] != "green" and h["active_shards"] >= want["active_shards"]):
            return
        time.sleep(0.05)


def _raw(es):
    started = time.monotonic()
    replicas = es.get("/%s/_settings" % NAME, params={"flat_settings": "true"})[NAME]["settings"].get(
        "index.number_of_replicas", "1")
    es.put("/%s-raw" % NAME, {"settings": {"number_of_replicas": replicas}})
    es.call("POST", "/_reindex", params={"wait_for_completion": "true"}, timeout=600,
            body={"source": {"index": NAME}, "dest": {"index": NAME + "-raw", "version_type": "external"}})
    es.post("/%s-raw/_refresh" % NAME)
    count = es.get("/%s-raw/_count" % NAME)["count"]
    _redundant(es, NAME + "-raw", NAME)
    elapsed = time.monotonic() - started
    assert count == DOCS, "raw reindex copied %d of %d" % (count, DOCS)
    return elapsed


def _module(es, mode):
    from ansible_collections.logstack.elk.plugins.module_utils.reindex import Options, Reindexer, reindex_all
    started = time.monotonic()
    # each step as it starts, to see where the time over the raw copy goes
    log = (lambda msg: print("  %7.2fs %s" % (time.monotonic() - started, msg), flush=True)) if STEPS else None
    out = reindex_all(Reindexer(es, Options(indices=[NAME], mode=mode, probe_seconds=0, poll_interval=0.05,
                                            stall_polls=20), log=log))
    elapsed = time.monotonic() - started
    assert out["failure"] is None, out["failure"]
    assert out["results"][0]["docs"] == DOCS
    return elapsed


def _osmem(measure):
    from osmem_server import OsmemServer
    from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
    server = OsmemServer.start(addr="127.0.0.1:0")
    try:
        t0 = time.monotonic()
        _seed(EsClient([server.url], timeout=300))
        print("seeded %d documents in %.1fs" % (DOCS, time.monotonic() - t0), flush=True)
        server.clone().close()  # the first clone freezes the base: not part of any measurement

        def fresh(what):
            clone = server.clone()
            try:
                es = EsClient([clone.url], timeout=600)
                # A clone copies an index of the frozen base on its first write (a settings change
                # included); a real cluster never pays that, so pay it before the clock starts.
                es.put("/%s/_settings" % NAME, {"index.blocks.write": None})
                return measure(es, what)
            finally:
                clone.close()
        return _rounds(fresh)
    finally:
        server.close()


def _cluster(url, measure):
    from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
    es = EsClient([url], username=os.environ.get("BENCH_REINDEX_ES_USERNAME"),
                  password=os.environ.get("BENCH_REINDEX_ES_PASSWORD"),
                  ca_file=os.environ.get("BENCH_REINDEX_ES_CA_FILE"), timeout=600)
    if not es.exists("/" + BASE) or es.get("/%s/_count" % BASE)["count"] != DOCS:
        es.call("DELETE", "/" + BASE, allow=(404,))
        es.put("/" + BASE, {"mappings": OLD, "settings": {"number_of_shards": 1, "number_of_replicas": 0}})
        for start in range(0, DOCS, 5000):
            es.bulk(_docs(BASE, start, min(DOCS, start + 5000)))
        es.post("/%s/_refresh" % BASE)

    def fresh(what):
        for index in (NAME + "-r", NAME, NAME + "-raw", "bench-archive"):  # after a swap NAME is -r's alias
            es.call("DELETE", "/" + index, allow=(404,))
        es.call("DELETE", "/_index_template/logstack-reindex-" + NAME, allow=(404,))
        _template(es, NEW)
        es.put("/" + NAME, {"mappings": OLD, "settings": {"number_of_replicas": 1}, "aliases": {"logs": {}}})
        es.put("/bench-archive", {"aliases": {"logs": {}}})
        es.call("POST", "/_reindex", params={"wait_for_completion": "true", "refresh": "true"}, timeout=600,
                body={"source": {"index": BASE}, "dest": {"index": NAME}})
        es.get("/_cluster/health/" + NAME, params={"wait_for_status": "green", "timeout": "300s"})
        return measure(es, what)
    return _rounds(fresh)


def _rounds(fresh):
    times = {"raw": [], "swap": [], "copy_back": []}
    # raw first and last of each round; every kind keeps its best time, so load from other
    # jobs on the machine (which only ever slows a copy down) weighs on both sides alike.
    for rnd in range(ROUNDS):
        for what in ("raw", "swap", "copy_back", "raw"):
            times[what].append(fresh(what))
            print("round %d %-9s %7.2fs" % (rnd + 1, what, times[what][-1]), flush=True)
    return times


def main():
    def measure(es, what):
        return _raw(es) if what == "raw" else _module(es, what)
    url = os.environ.get("BENCH_REINDEX_ES_URL")
    times = _cluster(url, measure) if url else _osmem(measure)
    print("(on %s, every time until the final index is green with its replicas)" % (url or "osmem-server"))
    status = 0
    baseline = min(times["raw"])
    print("raw _reindex best of %d: %.2fs" % (len(times["raw"]), baseline))
    for mode, target in TARGETS.items():
        ratio = min(times[mode]) / baseline
        ok = ratio <= target
        status = status if ok else 1
        print("reindex %-9s / raw _reindex = %.2fx (target <= %.1fx) %s" % (mode, ratio, target,
                                                                             "ok" if ok else "MISSED"))
    return status


if __name__ == "__main__":
    sys.exit(main())
