"""The one classifier both audits use (simulator and real engine): mutating requests among a server's
capped (method, path, status) log, each request counted once however often the audit reads."""
from sandbox.audit import MUTATIONS_KEPT, RequestLog


def test_only_new_requests_that_change_something_are_counted():
    log, seen = [], RequestLog()
    log += [("GET", "/_cluster/health", 200), ("POST", "/logs/_search", 200), ("POST", "/logs/_refresh", 200),
            ("PUT", "/_cluster/settings", 200), ("DELETE", "/old", 404)]
    seen.take(log, len(log))
    assert seen.mutating_requests == 2
    assert seen.mutations == ["PUT /_cluster/settings -> 200", "DELETE /old -> 404"]
    seen.take(log, len(log))  # read again: nothing new
    assert seen.mutating_requests == 2
    log.append(("POST", "/_aliases", 200))
    seen.take(log, len(log))
    assert seen.mutating_requests == 3 and seen.mutations[-1] == "POST /_aliases -> 200"


def test_a_log_capped_by_its_server_is_read_from_what_it_still_holds():
    seen = RequestLog()
    seen.seen = 10  # requests before the audit began are the sandbox's own set-up
    capped = [("PUT", "/i%d" % n, 200) for n in range(MUTATIONS_KEPT + 5)]  # the server kept these of 1000
    seen.take(capped, 1000)
    assert seen.mutating_requests == MUTATIONS_KEPT + 5 and len(seen.mutations) == MUTATIONS_KEPT
    assert seen.seen == 1000
