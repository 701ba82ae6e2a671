"""plugins/module_utils/report.py: the sampler's thinning and the report's figures."""
from ansible_collections.logstack.elk.plugins.module_utils import report as R
from ansible_collections.logstack.elk.plugins.module_utils.rollout.cluster import View


def view(status, held):
    """held: {node name: [(store bytes), ...]} as _cat/shards rows (one relocating away from the first node)."""
    nodes = {"id-%s" % n: {"name": n, "roles": ["data"]} for n in held}
    rows = [{"index": "i", "shard": str(k), "prirep": "p", "state": "STARTED", "node": n, "store": str(b)}
            for n, sizes in held.items() for k, b in enumerate(sizes)]
    return View({"status": status, "relocating_shards": 0, "initializing_shards": 0}, nodes, rows, None, [], set(),
                [], {})


def test_sample_counts_copies_and_bytes_per_node_and_keeps_empty_nodes():
    v = view("yellow", {"d1": [100, 50], "d2": []})
    v.shards.append({"index": "j", "shard": "0", "prirep": "r", "state": "RELOCATING",
                     "node": "d1 -> 10.0.0.2 id-d2 d2", "store": "7"})
    point = R.sample(v, 12.34)
    assert point == {"t": 12.3, "status": "yellow", "moving": 0, "nodes": {"d1": [3, 157], "d2": [0, 0]}}


def test_sampler_spaces_points_keeps_the_latest_and_halves_past_its_limit():
    now = [0.0]
    s = R.Sampler(every=2.0, limit=10, clock=lambda: now[0])
    kept = s.samples
    for i in range(200):
        now[0] = i * 0.5
        s(view("green" if i < 199 else "red", {"d1": [1]}))
    assert s.samples is kept  # a module's result holds the list itself
    assert len(s.samples) <= 10 and s.samples[-1]["status"] == "red"  # the latest point survives
    gaps = [b["t"] - a["t"] for a, b in zip(s.samples, s.samples[1:-1])]
    assert gaps and min(gaps) >= 2.0


def test_report_bytes_moved_is_what_the_node_held_when_its_replacement_began():
    samples = [{"t": 1000.0, "status": "green", "moving": 0, "nodes": {"d1": [2, 900], "d2": [2, 800]}},
               {"t": 1010.0, "status": "green", "moving": 2, "nodes": {"d1": [1, 400], "d2": [3, 1300]}},
               {"t": 1030.0, "status": "yellow", "moving": 0, "nodes": {"d2": [4, 1700], "d3": [0, 0]}}]
    results = [{"node_name": "d1", "old_instance_id": "i-1", "old_version": "8.14.3",
                "new_nodes": [{"instance_id": "i-3", "node_name": "d3", "version": "8.15.0"}],
                "timeline": [{"step": "drain", "started": "1970-01-01T00:16:45Z", "seconds": 20.0},
                             {"step": "terminate", "started": "1970-01-01T00:17:05Z", "seconds": 10.0}]}]
    rep = R.build("logs", run_id="r1", preflight={"plan": [{"node_name": "d1"}]}, results=results,
                  samples=samples, terminated=["i-1"], clock=lambda: 2000.0)
    assert rep["outcome"] == "succeeded" and rep["terminated_instance_ids"] == ["i-1"]
    assert rep["nodes"][0]["bytes_moved"] == 900 and rep["bytes_moved"] == 900
    assert rep["shards"]["d2"] == [[1000.0, 2, 800], [1010.0, 3, 1300], [1030.0, 4, 1700]]
    assert rep["summary"] == ["d1: 8.14.3 (i-1) -> 8.15.0 (i-3), 0.5 min, 900 B moved, replaced"]


def test_a_failed_step_adds_its_node_its_samples_and_message():
    failure = {"task": "Step drain: wait until it holds no shard | d2 (i-2)", "msg": "Node d2, step drain: gave up",
               "timeline": [{"step": "prepare", "node": "d2", "started": "1970-01-01T00:16:40Z", "seconds": 0.1}],
               "samples": [{"t": 1001.0, "status": "red", "moving": 0, "nodes": {"d2": [1, 5]}}]}
    rep = R.build("logs", preflight={"plan": [{"node_name": "d2", "instance_id": "i-2", "version": "8.14.3"}]},
                  failure=failure, clock=lambda: 2000.0)
    assert rep["outcome"] == "failed" and rep["failure"]["node"] == "d2"
    assert [n["outcome"] for n in rep["nodes"]] == ["failed"] and rep["nodes"][0]["old_instance_id"] == "i-2"
    assert rep["health"] == [[1001.0, "red"]]
    page = R.render_html(rep)
    assert 'id="failure"' in page and "gave up" in page
    refused = R.build("logs", preflight={"refusals": ["cluster_not_red: the cluster is red"]},
                      failure={"msg": "Preflight refused"})
    assert refused["outcome"] == "refused" and "cluster_not_red" in R.render_html(refused)


def test_the_page_escapes_what_it_shows_and_loads_nothing_from_outside():
    rep = R.build("<script>x</script>", results=[{"node_name": "d1<b>", "timeline": [
        {"step": "drain", "started": "1970-01-01T00:16:40Z", "seconds": 3, "detail": "a & b"}]}],
        samples=[{"t": 1000.0, "status": "green", "moving": 0, "nodes": {"d1<b>": [1, 1]}}])
    page = R.render_html(rep)
    assert "<script" not in page and "&lt;script&gt;" in page and "d1&lt;b&gt;" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
