"""reindex-es.yml on a real 3-node Elasticsearch 7.17 cluster: real ``_reindex`` tasks, real ``_tasks``
polling, replicas on other nodes. Both modes keep every document under the original name, with the
new mapping, the aliases and the replica count."""
from ansible_collections.logstack.elk.plugins.module_utils.es_client import EsClient
from tests.integration.test_reindex_playbook import playbook
from tests.real.conftest import scenario
from tests.integration.test_reindex_osmem import DAYS, DOCS, assert_reindexed, seed


def test_reindex_playbook_copy_back_and_swap_on_a_real_multi_node_cluster(real_sandbox):
    spec = scenario("real-small.yml", writer=None, indices=[], amis={"es-7.17": {"es_version": "7.17.29"}},
                    roll_to=None, groups=[{"name": "es-nodes", "role": "mixed", "size": 3, "ami": "es-7.17"}])
    sb = real_sandbox(spec)
    url = sb.env["ES_URL"]
    es = EsClient([url])
    seed(es)
    for day, mode in zip(DAYS, ("copy_back", "swap")):
        name = "logstash-" + day
        run = playbook(url, "-e", "reindex_mode=%s" % mode, "-e", '{"reindex_indices": ["%s"]}' % name,
                       "-e", "reindex_timeout=300")
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
        assert "%s: reindexed, %d docs in" % (name, DOCS) in run.stdout, run.stdout[-3000:]
        assert_reindexed(es, name, mode=mode)
        again = playbook(url, "-e", "reindex_mode=%s" % mode, "-e", '{"reindex_indices": ["%s"]}' % name)
        assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    # real tasks: started with wait_for_completion=false and read back from the real _tasks API
    mutations = sb.audit()["mutations"]
    assert [m for m in mutations if m.startswith("POST /_reindex")], mutations
    health = es.get("/_cluster/health")
    assert health["status"] == "green" and health["number_of_nodes"] == 3, health
    assert sb.audit()["docs_lost"] == 0
