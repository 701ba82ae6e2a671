"""ElastAlert 2 end to end against a real Elasticsearch 7.17.29 node (as the osmem-server test in
tests/elastalert/ does): playbooks/deploy-elastalert.yml on this machine's Docker, the container
querying the real node, the spike alert posted to a local receiver."""
import shutil
import subprocess
import tempfile
import types
import uuid

from tests.elastalert.conftest import Deployment, Receiver, docker_engine, load_web_logs  # noqa: F401 (fixture)
from tests.real.conftest import scenario


def test_spike_alert_from_a_real_elasticsearch_reaches_the_receiver(real_sandbox, docker_engine):  # noqa: F811
    sb = real_sandbox(scenario("real-small.yml", writer=None, indices=[], roll_to=None,
                               amis={"es-7.17": {"es_version": "7.17.29"}},
                               groups=[{"name": "es-nodes", "role": "mixed", "size": 1, "ami": "es-7.17"}]))
    url = sb.env["ES_URL"]
    load_web_logs(types.SimpleNamespace(url=url))
    workdir = tempfile.mkdtemp(prefix="logstack-e2e-real-")
    receiver = Receiver("hook-%s" % uuid.uuid4().hex)
    deployment = Deployment(workdir, int(url.rsplit(":", 1)[1]), receiver, "pw-%s" % uuid.uuid4().hex)
    try:
        rc, out = deployment.deploy()
        assert rc == 0, out[-4000:]
        body = receiver.wait_for(lambda b: b.get("summary") == "HTTP 5xx spike", timeout=120)
        assert body is not None, "no spike alert within 120 s; container log:\n" + subprocess.run(
            ["docker", "logs", "--tail", "40", deployment.name], capture_output=True, text=True).stderr
        assert body["environment"] == "ci"
        # ElastAlert wrote its status into its writeback index on the real node
        status = sb.es("/_cat/indices?format=json&h=index")
        assert [i for i in status if i["index"].startswith("elastalert")], status
    finally:
        deployment.remove()
        receiver.close()
        shutil.rmtree(workdir, ignore_errors=True)
