"""Issue 14: the reindex on production-like clusters (several data nodes, replicas, ILM settings,
rollover aliases, full disks, other runs). Each test gets a cluster (the sandbox by default,
a real Elasticsearch 7.17+/OpenSearch one with REINDEX_TEST_ES_URL, see reindex_cluster.py)."""
import os
import sys
import threading

import pytest

from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient, EsError
from ansible_collections.logstack.elk.plugins.module_utils.reindex import Reindexer, ReindexError, reindex_all

from reindex_cluster import HoldingProxy  # noqa: E402
from test_reindex_osmem import DAYS, DOCS, assert_reindexed, ids, options, seed, template  # noqa: E402

NAME = "logstash-" + DAYS[0]
TEMP = NAME + "-r"


class Recording(EsClient):
    """The real client, noting (method, path) of each request it sends."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.sent = []

    def call(self, method, path, *args, **kw):
        self.sent.append((method, path))
        return super().call(method, path, *args, **kw)


def steps_until(reindexer, name, last):
    done = []
    while not done or done[-1] != last:
        done.append(reindexer.step(name))
        assert done[-1] != "done", "never reached %s: %s" % (last, done)
    return done


# -- 0. no acknowledged write is ever deleted ------------------------------------------------

def _verified(es, name):
    mappings = es.get("/%s/_mapping" % name)[name]["mappings"]
    return bool(((mappings.get("_meta") or {}).get("logstack_reindex") or {}).get("verified"))


def test_the_final_index_refuses_writes_until_it_is_verified(es_cluster):
    """From its creation until the run has verified it (count and ids), a client's write into the final
    index gets the write block's error; once the run is over, writes go in again."""
    es = es_cluster.es
    seed(es, days=DAYS[:1])
    reindexer = Reindexer(es, options())
    assert reindexer.clone_supported(), "Elasticsearch 7.4+ and OpenSearch have the clone API"
    source_uuid = es.get("/%s/_settings" % NAME)[NAME]["settings"]["index"]["uuid"]
    while True:  # until the name is an index again, not the source: the final index exists
        assert reindexer.step(NAME) != "done"
        status, body = es.call("GET", "/" + NAME, allow=(404,))
        if status == 200 and NAME in body and body[NAME]["settings"]["index"]["uuid"] != source_uuid:
            break
    refused = 0
    while not _verified(es, NAME):
        status, body = es.call("PUT", "/%s/_doc/late-%d" % (NAME, refused), body={"Status": "201"},
                               allow=(403, 404, 429))
        assert status == 403, "the final index took a write before it was verified: %s %s" % (status, body)
        assert body["error"]["type"] == "cluster_block_exception" and "index write" in body["error"]["reason"]
        refused += 1
        assert reindexer.step(NAME) != "done"
    assert refused >= 1
    out = reindex_all(Reindexer(es, options()))
    assert out["failure"] is None, out["failure"]
    assert_reindexed(es, NAME)
    assert ids(es, NAME) == sorted(str(i) for i in range(DOCS)), "no refused write got in"
    status, _ = es.call("PUT", "/%s/_doc/after" % NAME, body={"Status": "201"})
    assert status == 201
    if es_cluster.sb is not None:
        assert es_cluster.docs_lost() == 0
        log = es_cluster.requests()
        assert [p for m, p, _ in log if m == "POST" and p == "/_reindex"] == ["/_reindex"], "one copy, no copy back"
        assert ("POST", "/%s-r/_clone/%s" % (NAME, NAME), 200) in log


@pytest.mark.parametrize("mode,last", [("copy_back", "delete_source"), ("swap", "swap")])
def test_the_name_never_disappears_and_late_writes_get_the_blocks_error(es_cluster, mode, last):
    es = es_cluster.es
    seed(es, days=DAYS[:1])
    steps_until(Reindexer(es, options(mode=mode)), NAME, last)
    # The source is gone: its name is an alias of the verified, write-blocked copy.
    assert list(es.get("/" + NAME)) == [TEMP]
    status, body = es.call("PUT", "/%s/_doc/x" % NAME, body={"Status": "1"}, allow=(403, 404))
    assert status == 403 and body["error"]["type"] == "cluster_block_exception"
    if mode == "copy_back" and es.version >= (7, 11) and es.distribution != "opensearch":
        # The one request between the alias leaving the copy and the final index's creation:
        # a write then cannot auto-create the name (the guard template forbids it).
        es.post("/_aliases", {"actions": [{"remove": {"index": TEMP, "alias": NAME}}]})
        status, body = es.call("PUT", "/%s/_doc/y" % NAME, body={"Status": "1"}, allow=(403, 404))
        assert status == 404 and body["error"]["type"] == "index_not_found_exception"
        assert not es.exists("/" + NAME)
    out = reindex_all(Reindexer(es, options(mode=mode)))
    assert out["failure"] is None, out["failure"]
    assert_reindexed(es, NAME, mode=mode)
    if es_cluster.sb is not None:
        assert es_cluster.docs_lost() == 0


# -- 1. never below the source's redundancy --------------------------------------------------

@pytest.mark.parametrize("mode,destructive", [("copy_back", "delete_source"), ("swap", "swap")])
def test_nothing_is_deleted_before_the_copy_has_the_sources_replicas_started(es_cluster, mode, destructive):
    es = es_cluster.es
    seed(es, days=DAYS[:1])  # 1 replica
    steps_until(Reindexer(es, options(mode=mode)), NAME, destructive)
    settings = es.get("/%s/_settings" % TEMP, params={"flat_settings": "true"})[TEMP]["settings"]
    assert settings["index.number_of_replicas"] == "1"
    health = es.get("/_cluster/health/" + TEMP)
    assert health["status"] == "green" and health["active_shards"] == 2
    out = reindex_all(Reindexer(es, options(mode=mode)))
    assert out["failure"] is None
    final = NAME if mode == "copy_back" else TEMP
    assert es.get("/_cluster/health/" + final)["status"] == "green"
    assert_reindexed(es, NAME, mode=mode)


def test_the_bar_is_the_sources_settled_redundancy_not_a_replica_still_initialising(es_cluster):
    """A source whose replica is still initialising (an index made a moment ago, a replica being rebuilt)
    is yellow for that while: the run waits for it to settle before it records the redundancy the final
    index must reach. Taken at that moment (yellow, 1 active copy), the bar let a final index with no
    replica pass as done (seen on a real 3-node cluster)."""
    es_cluster.need_sandbox("a replica held initialising at a chosen moment")
    es = es_cluster.es
    seed(es, days=DAYS[:1])
    es.put("/%s/_settings" % NAME, {"number_of_replicas": 0})
    old = es_cluster.set_recovery_rate(20000)  # bytes/s: the replica takes seconds to rebuild
    try:
        es.put("/%s/_settings" % NAME, {"number_of_replicas": 1})
        assert es.get("/_cluster/health/" + NAME)["initializing_shards"] == 1
        steps_until(Reindexer(es, options(mode="swap")), NAME, "create_temp")
    finally:
        es_cluster.set_recovery_rate(old)
    meta = es.get("/%s/_mapping" % TEMP)[TEMP]["mappings"]["_meta"]["logstack_reindex"]
    assert (meta["source_status"], meta["source_active_shards"]) == ("green", 2), meta
    out = reindex_all(Reindexer(es, options(mode="swap")))
    assert out["failure"] is None, out["failure"]
    health = es.get("/_cluster/health/" + TEMP)
    assert health["status"] == "green" and health["active_shards"] == 2, health


# -- 2. disk -------------------------------------------------------------------------------------

def test_a_copy_without_room_below_the_low_watermark_is_refused_with_the_figures(es_cluster):
    es = es_cluster.es
    seed(es, days=DAYS[:1])
    nodes = es.get("/_nodes/stats/fs")["nodes"].values()
    # No room at all, by a margin: on a real cluster every node shares this machine's disk, whose free
    # space moves by megabytes while other tests run (just below the free space, the drift made room).
    low = max(n["fs"]["total"]["available_in_bytes"] for n in nodes) + 2 ** 30
    msg = _refused_for_disk(es, low)
    assert "x 2 copies" in msg and "below the low watermark (%db)" % low in msg


def _refused_for_disk(es, low):
    """The run's refusal (its message) under a low watermark keeping ``low`` bytes free; nothing changed."""
    es.put("/_cluster/settings", {"persistent": {
        "cluster.routing.allocation.disk.watermark.low": "%db" % low,
        "cluster.routing.allocation.disk.watermark.high": "2b",
        "cluster.routing.allocation.disk.watermark.flood_stage": "1b"}})
    out = reindex_all(Reindexer(es, options()))
    assert out["failure"] is not None, "copied without room for it"
    msg = out["failure"]["msg"]
    assert msg.startswith("Not enough disk to copy %s: the copy needs about" % NAME), msg
    assert not es.exists("/" + TEMP)
    es.put("/%s/_doc/after" % NAME, {"Status": "1"})  # untouched: still writable
    return msg


def test_room_only_on_nodes_the_index_may_not_use_is_no_room(es_cluster):
    # Per-node disks: on a real cluster every node shares this machine's disk, whose free space drifts by
    # megabytes while other tests run, far more than this index's size.
    es_cluster.need_sandbox("nodes with disks of their own")
    es = es_cluster.es
    seed(es, days=DAYS[:1])
    nodes = es.get("/_nodes/stats/fs")["nodes"]
    held = sorted(n["name"] for n in nodes.values())[0]
    es.put("/%s/_settings" % NAME, {"index.routing.allocation.require._name": held, "index.number_of_replicas": 0})
    es.get("/_cluster/health/" + NAME, params={"wait_for_status": "green", "wait_for_no_relocating_shards": "true",
                                              "timeout": "30s"})
    size = es.get("/%s/_stats/store" % NAME)["_all"]["primaries"]["store"]["size_in_bytes"]
    assert size > 0
    free = {n["name"]: n["fs"]["total"]["available_in_bytes"] for n in es.get("/_nodes/stats/fs")["nodes"].values()}
    # The node the index is pinned to has room for half the copy; the two others for more than all of it.
    low = free[held] - size // 2
    assert all(free[n] - low > size for n in free if n != held), (free, size)
    msg = _refused_for_disk(es, low)  # the old check summed all three nodes' room: it copied
    assert "x 1 copies) and the 1 data node(s) it may be allocated to have" in msg, msg
    others = ", ".join(sorted(n for n in free if n != held))
    assert "index.routing.allocation.require._name=%s keeps it off %s" % (held, others) in msg, msg


def test_flood_stage_rollback_deletes_the_copy_before_touching_the_source(es_cluster):
    es_cluster.need_sandbox("a flood-stage block at a chosen moment of the copy")
    es = es_cluster.es
    es_cluster.set_reindex_rate(100.0)
    seed(es, days=DAYS[:1])
    r = Reindexer(es, options(timeout=2, poll_interval=0.05))
    steps_until(r, NAME, "start_copy")
    es.put("/_cluster/settings", {"persistent": {  # every node above the flood stage now
        "cluster.routing.allocation.disk.watermark.low": "0.00001%",
        "cluster.routing.allocation.disk.watermark.high": "0.00002%",
        "cluster.routing.allocation.disk.watermark.flood_stage": "0.00003%"}})
    es.get("/_cluster/health", params={"wait_for_events": "languid"})
    with pytest.raises(ReindexError) as err:
        r.run(NAME)
    assert not es.exists("/" + TEMP), "the copy must go first: it is what frees the disk"
    assert "flood-stage" in err.value.message and "index.blocks.write" in err.value.message
    assert ids(es, NAME) == sorted(str(i) for i in range(DOCS))
    assert es_cluster.docs_lost() == 0


# -- 3. lifecycle, placement, shard count --------------------------------------------------------

def test_lifecycle_placement_read_only_and_shard_count_survive(es_cluster):
    es = es_cluster.es
    seed(es, days=DAYS[:1])
    es.put("/_index_template/logstash", {"index_patterns": ["logstash-*"], "template": {
        # today's daily indices: 2 shards on the hot tier; a shrink gave the old one 1, ILM moved it
        "settings": {"number_of_shards": 2, "index.routing.allocation.include._tier_preference": "data_hot"},
        "mappings": {"properties": {"Status": {"type": "integer"}, "@timestamp": {"type": "date"}}}}})
    source = es.get("/%s/_settings" % NAME, params={"flat_settings": "true"})[NAME]["settings"]
    placement = {"index.routing.allocation.include._tier_preference": "data_content",
                 "index.routing.allocation.exclude._name": "no-such-node"}
    lifecycle = {"index.lifecycle.name": "logs-policy", "index.lifecycle.rollover_alias": "logs",
                 "index.lifecycle.indexing_complete": "true"}
    try:
        es.put("/%s/_settings" % NAME, dict(placement, **lifecycle))
        ilm = True
    except EsError as exc:
        # ILM is x-pack: OpenSearch and the 7.17 jars of Maven Central refuse index.lifecycle settings
        assert "unknown setting [index.lifecycle." in exc.message, exc.message
        es.put("/%s/_settings" % NAME, placement)
        ilm = False
    es.put("/%s/_block/read_only" % NAME)
    out = reindex_all(Reindexer(es, options()))
    assert out["failure"] is None, out["failure"]
    s = es.get("/%s/_settings" % NAME, params={"flat_settings": "true"})[NAME]["settings"]
    assert s["index.number_of_shards"] == "1"
    if ilm:
        assert s["index.lifecycle.name"] == "logs-policy" and s["index.lifecycle.rollover_alias"] == "logs"
        assert s["index.lifecycle.indexing_complete"] == "true"
        assert s["index.lifecycle.origination_date"] == source["index.creation_date"]
    else:  # nothing of ILM is invented where the cluster has none (it would refuse the setting)
        assert not [k for k in s if k.startswith("index.lifecycle.")], s
    assert s["index.routing.allocation.include._tier_preference"] == "data_content"
    assert s["index.routing.allocation.exclude._name"] == "no-such-node"
    assert s["index.blocks.read_only"] == "true"
    assert ids(es, NAME) == sorted(str(i) for i in range(DOCS))


# -- 4. write indices and template aliases ---------------------------------------------------

def test_the_only_index_of_an_alias_is_its_write_index_and_left_alone(es_cluster):
    es = es_cluster.es
    template(es, "text")
    es.put("/" + NAME, {"aliases": {"logs-current": {}}})  # no is_write_index: writes go here
    es.put("/%s/_doc/1" % NAME, {"Status": "200"}, params={"refresh": "true"})
    template(es, "integer")
    out = reindex_all(Reindexer(es, options()))
    assert out["results"] == [] and out["skipped"] == [
        {"index": NAME, "reason": "it is the write index of alias logs-current (its only index, so implicitly)"}]
    assert not es.exists("/" + TEMP)


def test_template_aliases_never_reach_the_copies(es_cluster):
    es = Recording([es_cluster.url], max_retries=0)
    seed(es, days=DAYS[:1])
    es.put("/_index_template/logstash", {"index_patterns": ["logstash-*"], "template": {
        "settings": {"number_of_shards": 1},
        "aliases": {"logstash-write": {"is_write_index": True}, "all-logs": {}},
        "mappings": {"properties": {"Status": {"type": "integer"}, "@timestamp": {"type": "date"}}}}})
    r = Reindexer(es, options())
    steps_until(r, NAME, "create_temp")
    assert es.get("/%s/_alias" % TEMP)[TEMP]["aliases"] == {}
    out = reindex_all(Reindexer(es, options()))
    assert out["failure"] is None
    assert not [p for m, p in es.sent if m == "DELETE" and "/_alias/" in p], "created without them, not cleaned"
    assert set(es.get("/%s/_alias" % NAME)[NAME]["aliases"]) == {"logs", "logs-errors"}


# -- 5. write block through the block API -------------------------------------------------------

def test_the_source_is_write_blocked_through_the_block_api(es_cluster):
    es = Recording([es_cluster.url], max_retries=0)
    seed(es, days=DAYS[:1])
    steps_until(Reindexer(es, options()), NAME, "block_source")
    assert ("PUT", "/%s/_block/write" % NAME) in es.sent
    assert not [p for m, p in es.sent if m == "PUT" and p == "/%s/_settings" % NAME]
    status, body = es.call("PUT", "/%s/_doc/x" % NAME, body={"Status": "1"}, allow=(403,))
    assert status == 403 and "index write (api)" in body["error"]["reason"]


# -- 7. tasks ------------------------------------------------------------------------------------

def test_a_lost_answer_to_post_reindex_is_never_retried_and_the_rerun_finds_the_task(es_cluster):
    seed(es_cluster.es, days=DAYS[:1])
    es_cluster.set_reindex_rate(1000.0) if es_cluster.sb is not None else None
    # The first POST _reindex is forwarded but its answer never arrives (the connection closes).
    proxy = HoldingProxy(es_cluster.url, lambda m, p, b: m == "POST" and p.startswith("/_reindex"), True,
                         drop=True)

    def posts():
        return len([p for m, p in proxy.seen if m == "POST" and p == "/_reindex"])
    try:
        es = EsClient([proxy.url], max_retries=3)  # the module's default
        first = reindex_all(Reindexer(es, options()))
        assert first["failure"] is not None and posts() == 1, "the POST was sent again"
        rerun = reindex_all(Reindexer(es, options()))
        assert rerun["failure"] is None, rerun["failure"]
        assert rerun["results"][0]["steps"][0] == "wait_copy", "the rerun must wait for the task it started"
        # one more for the copy back where the final index cannot be a clone
        assert posts() == (1 if Reindexer(es, options()).clone_supported() else 2)
    finally:
        proxy.close()
    assert_reindexed(es_cluster.es, NAME)
    if es_cluster.sb is not None:
        assert not [p for m, p, _ in es_cluster.requests() if p.endswith("/_cancel")]


# -- 8. one run per index ----------------------------------------------------------------------

HOLDER = """
import sys, time
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from ansible_collections.logstack.elk.plugins.module_utils.reindex import Options, Reindexer
r = Reindexer(EsClient([sys.argv[1]], max_retries=0), Options(indices=["logstash-*"], poll_interval=0.02))
while r.step(sys.argv[2]) != "start_copy":
    pass
print(getattr(r, "holder", {}).get("run", "(no lock)"), flush=True)
time.sleep(120)  # a run busy elsewhere (polling its copy)
"""


def test_a_second_run_sees_the_first_runs_lock_and_says_how_to_break_it(es_cluster):
    import subprocess
    es = es_cluster.es
    es_cluster.set_reindex_rate(10.0) if es_cluster.sb is not None else None
    seed(es, days=DAYS[:1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, es_cluster.url, NAME], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        run = proc.stdout.readline().strip()
        assert run, "the first run did not get to start_copy"
        second = reindex_all(Reindexer(es, options()))
        assert second["failure"] is not None, "a second run worked on the index of a live one"
        msg = second["failure"]["msg"]
        assert msg.startswith("Another reindex run works on %s: run %s on %s (pid %d"
                              % (NAME, run, __import__("socket").gethostname(), proc.pid)), msg
        assert "-e reindex_break_lock=%s" % run in msg and "survey" in msg
    finally:
        proc.kill()
        proc.wait()
    es_cluster.set_reindex_rate(20000.0) if es_cluster.sb is not None else None
    # Its process is gone: the next run on the same host takes over and finishes.
    after = reindex_all(Reindexer(es, options()))
    assert after["failure"] is None, after["failure"]
    assert_reindexed(es, NAME)
    with pytest.raises(EsError):
        es.get("/_index_template/logstack-reindex-" + NAME)  # released at the end


# -- 9. the busy-index probe across a relocation ---------------------------------------------------

def test_the_probe_sees_writes_not_a_relocation(es_cluster):
    """A primary relocating during the probe window restarts its indexing counters on the new node:
    an idle index must still be accepted, a busy one still refused."""
    es = es_cluster.es
    seed(es, days=DAYS)
    idle, busy = ("logstash-" + d for d in DAYS)
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            es.put("/%s/_doc/w%d" % (busy, i), {"Status": "200"})
            i += 1
            stop.wait(0.02)

    def relocating_sleep(seconds):
        shards = es.get("/_cat/shards/" + idle, params={"format": "json", "h": "prirep,node"})
        nodes = [s["node"] for s in shards if s["prirep"] == "p"]
        es.put("/_cluster/settings", {"persistent": {"cluster.routing.allocation.exclude._name": nodes[0]}})
        for _ in range(300):
            moved = [s for s in es.get("/_cat/shards/" + idle, params={"format": "json", "h": "prirep,node,state"})
                     if s["prirep"] == "p"]
            if moved[0]["node"] != nodes[0] and moved[0]["state"] == "STARTED":
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError("the primary did not relocate")
        threading.Event().wait(seconds)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        reindexer = Reindexer(es, options(probe_seconds=0.5), sleep=relocating_sleep)
        busy_seen = reindexer.probe([idle, busy])
    finally:
        stop.set()
        thread.join()
        es.put("/_cluster/settings", {"persistent": {"cluster.routing.allocation.exclude._name": None}})
    assert idle not in busy_seen, "an idle index refused after its primary relocated: %s" % busy_seen
    assert busy in busy_seen


# -- 6. legacy templates -----------------------------------------------------------------------------

def test_mappings_from_legacy_templates_when_no_composable_template_matches(es_cluster):
    from reindex_legacy import check_legacy_templates
    check_legacy_templates(es_cluster.es, options, ids)


# -- the clone API the final index is made with (sandbox/es_api/resize.py follows Elasticsearch) ----

def test_the_clone_api_refuses_and_clones_as_elasticsearch_does(es_cluster):
    es = es_cluster.es
    es.put("/test-clone-src", {"settings": {"number_of_shards": 2, "number_of_replicas": 1,
                                            "refresh_interval": "-1"},
                               "mappings": {"_meta": {"m": 1}, "properties": {"Status": {"type": "integer"}}},
                               "aliases": {"test-clone-alias": {}}})
    es.bulk([line for i in range(40) for line in ({"index": {"_index": "test-clone-src", "_id": str(i)}},
                                                 {"Status": i})], params={"refresh": "true"})
    es.get("/_cluster/health/test-clone-src", params={"wait_for_status": "green", "timeout": "60s"})

    def clone(target, body=None, source="test-clone-src"):
        return es.call("POST", "/%s/_clone/%s" % (source, target), body=body, allow=(400, 404, 500))

    status, body = clone("test-clone-dst")
    assert (status, body["error"]["type"]) == (500, "illegal_state_exception"), body  # source writable
    # ES: "must be read-only to resize index. use ...", OpenSearch: "must block write operations to resize index. use ..."
    assert 'to resize index. use "index.blocks.write=true"' in body["error"]["reason"], body
    assert clone("test-clone-dst", source="test-clone-missing")[0] == 404
    es.put("/test-clone-src/_block/write")
    status, body = clone("test-clone-alias")
    assert (status, body["error"]["type"]) == (400, "invalid_index_name_exception"), body
    status, body = clone("test-clone-dst", {"settings": {"index.number_of_shards": 1}})
    assert (status, body["error"]["type"]) == (400, "illegal_argument_exception"), body
    es.put("/test-clone-taken")
    status, body = clone("test-clone-taken")
    assert (status, body["error"]["type"]) == (400, "resource_already_exists_exception"), body
    assert not es.exists("/test-clone-dst"), "a refused clone creates nothing"

    status, body = clone("test-clone-dst", {"settings": {"index.number_of_replicas": 1,
                                                         "index.blocks.write": True}})
    assert status == 200 and body["acknowledged"] is True, body
    es.get("/_cluster/health/test-clone-dst", params={"wait_for_status": "green", "timeout": "60s"})
    dst = es.get("/test-clone-dst")["test-clone-dst"]
    settings = flat_settings(dst["settings"])
    assert settings["index.number_of_shards"] == "2" and settings["index.number_of_replicas"] == "1"
    assert settings["index.refresh_interval"] == "-1" and settings["index.blocks.write"] == "true"
    assert settings["index.resize.source.name"] == "test-clone-src"
    assert dst["mappings"]["_meta"] == {"m": 1} and dst["mappings"]["properties"]["Status"]["type"] == "integer"
    assert dst["aliases"] == {}, "aliases are not cloned"
    assert es.get("/test-clone-dst/_count")["count"] == 40, "every document searchable at once"
    status, body = es.call("PUT", "/test-clone-dst/_doc/new", body={"Status": 1}, allow=(403,))
    assert status == 403 and body["error"]["type"] == "cluster_block_exception"
    # Each primary of the clone starts on the node of the source's primary (hard-linked segments).
    shards = es.get("/_cat/shards/test-clone-src,test-clone-dst",
                    params={"format": "json", "h": "index,shard,prirep,node"})
    primaries = {(r["index"], r["shard"]): r["node"] for r in shards if r["prirep"] == "p"}
    for shard in ("0", "1"):
        assert primaries[("test-clone-dst", shard)] == primaries[("test-clone-src", shard)], shards


def flat_settings(settings, prefix=""):
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            out.update(flat_settings(value, prefix + key + "."))
        else:
            out[prefix + key] = value
    return out
