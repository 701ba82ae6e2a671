"""playbooks/reindex-es.yml publishes its start, finish and failure to the environment's SNS topic
(moto), the reindex itself against the sandbox's Elasticsearch API."""
import boto3
from notify_support import subscribe
from reindex_cluster import playbook
from test_reindex_playbook import DAYS, EsClient, seed


def test_reindex_start_finish_and_failure_are_published(reindex_sandbox, monkeypatch):
    url, cluster = reindex_sandbox
    # The sandbox's own moto: moto keeps its state per process, so a second moto fixture would reset
    # the backends under the running sandbox and take its nodes' instances away.
    moto_url = cluster.sb.world.endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="eu-west-1")
    received = subscribe(lambda service: session.client(service, endpoint_url=moto_url), "logstack-ci-notifications")
    es = EsClient([url])
    seed(es, days=DAYS[:1])
    run = playbook(url, "-e", "notify_sns_topic=logstack-ci-notifications")
    assert run.returncode == 0, run.stdout[-3000:]
    got = received()
    assert [(m["job"], m["event"]) for m in got] == [("reindex", "started"), ("reindex", "finished")], got
    assert "reindexed" in got[1]["message"], got[1]
    seed(es, days=DAYS[1:2], bad_ids=("42",))
    failed = playbook(url, "-e", "notify_sns_topic=logstack-ci-notifications")
    assert failed.returncode != 0
    got = received()
    assert [m["event"] for m in got] == ["started", "failed"] and "document 42:" in got[1]["message"], got
