"""es_reindex against a raw _reindex of the same 200k-document index, on osmem-server, in one run.

Each measurement gets its own clone of one seeded base, so all three copy identical data:
  raw        POST _reindex (wait_for_completion=true) into an index with the new mapping, refresh, count
  swap       es_reindex mode=swap     (one copy + verification + one _aliases call)
  copy_back  es_reindex mode=copy_back (two copies, each verified)
The probe window is a deliberate wait (probe_seconds) and is set to 0 here; everything else
(write block, task start, polling, counts, alias moves, settings) is timed. osmem clones copy an
index of the frozen base on its first write; that copy is made before the clock starts, for all three.
The raw copy is timed first and last of each round; each kind keeps its best time
(BENCH_REINDEX_ROUNDS rounds, default 1; BENCH_REINDEX_DOCS documents, default 200000).
Targets: swap <= 1.2x raw, copy_back <= 2.3x raw. Prints ratios; returns 1 when a target is missed.
"""
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

DOCS = int(os.environ.get("BENCH_REINDEX_DOCS", "200000"))
NAME = "logstash-2024.01.01"
ROUNDS = int(os.environ.get("BENCH_REINDEX_ROUNDS", "1"))
TARGETS = {"swap": 1.2, "copy_back": 2.3}


def _seed(es):
    es.put("/_index_template/logstash", {"index_patterns": ["logstash-*"], "template": {
        "settings": {"number_of_shards": 1},
        "mappings": {"properties": {"Status": {"type": "text"}, "@timestamp": {"type": "date"},
                                    "message": {"type": "text"}}}}})
    es.put("/" + NAME, {"aliases": {"logs": {}}})
    batch = 5000
    for start in range(0, DOCS, batch):
        lines = []
        for i in range(start, min(DOCS, start + batch)):
            lines += [{"index": {"_index": NAME, "_id": str(i)}},
                      {"Status": str(200 + i % 5 * 100), "@timestamp": "2024-01-01T00:00:%02dZ" % (i % 60),
                       "message": "GET /api/item/%d HTTP/1.1" % i}]
        es.bulk(lines)
    es.post("/%s/_refresh" % NAME)
    es.put("/_index_template/logstash", {"index_patterns": ["logstash-*"], "template": {
        "settings": {"number_of_shards": 1},
        "mappings": {"properties": {"Status": {"type": "integer"}, "@timestamp": {"type": "date"},
                                    "message": {"type": "text"}}}}})


def _raw(es):
    started = time.monotonic()
    es.put("/%s-raw" % NAME)
    es.call("POST", "/_reindex", params={"wait_for_completion": "true"}, timeout=600,
            body={"source": {"index": NAME}, "dest": {"index": NAME + "-raw", "version_type": "external"}})
    es.post("/%s-raw/_refresh" % NAME)
    count = es.get("/%s-raw/_count" % NAME)["count"]
    elapsed = time.monotonic() - started
    assert count == DOCS, "raw reindex copied %d of %d" % (count, DOCS)
    return elapsed


def _module(es, mode):
    from ansible_collections.logstack.elk.plugins.module_utils.reindex import Options, Reindexer, reindex_all
    started = time.monotonic()
    out = reindex_all(Reindexer(es, Options(indices=[NAME], mode=mode, probe_seconds=0, poll_interval=0.05,
                                            stall_polls=20)))
    elapsed = time.monotonic() - started
    assert out["failure"] is None, out["failure"]
    assert out["results"][0]["docs"] == DOCS
    return elapsed


def main():
    from osmem_server import OsmemServer
    from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
    server = OsmemServer.start(addr="127.0.0.1:0")
    try:
        t0 = time.monotonic()
        _seed(EsClient([server.url], timeout=300))
        print("seeded %d documents in %.1fs" % (DOCS, time.monotonic() - t0), flush=True)
        server.clone().close()  # the first clone freezes the base: not part of any measurement
        times = {"raw": [], "swap": [], "copy_back": []}
        # raw first and last of each round; every kind keeps its best time, so load from other
        # jobs on the machine (which only ever slows a copy down) weighs on both sides alike.
        for rnd in range(ROUNDS):
            for what in ("raw", "swap", "copy_back", "raw"):
                clone = server.clone()
                try:
                    es = EsClient([clone.url], timeout=600)
                    # A clone copies an index of the frozen base on its first write (a settings change
                    # included); a real cluster never pays that, so pay it before the clock starts.
                    es.put("/%s/_settings" % NAME, {"index.blocks.write": None})
                    times[what].append(_raw(es) if what == "raw" else _module(es, what))
                finally:
                    clone.close()
                print("round %d %-9s %7.2fs" % (rnd + 1, what, times[what][-1]), flush=True)
    finally:
        server.close()
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
