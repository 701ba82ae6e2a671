"""playbooks/deploy-elastalert.yml under ansible-runner (the engine AWX uses), from the AWX
private data directory layout built by test_runner.py, deploying to the host's Docker engine
with the same inventory and variables as the end-to-end tests in tests/elastalert."""
import importlib.util
import json
import os
import shutil
import subprocess
import uuid

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _load(name, path):
    # Loaded under private names: importing them plainly would let pytest collect their tests twice.
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


awx = _load("_logstack_awx_runner_helpers", os.path.join(HERE, "test_runner.py"))
e2e = _load("_logstack_elastalert_fixtures", os.path.join(ROOT, "tests", "elastalert", "conftest.py"))


@pytest.fixture(scope="module")
def docker_engine():
    # Same skip/fail rule and cached base image as tests/elastalert's docker_engine fixture.
    if not e2e.docker_available():
        if os.environ.get("LOGSTACK_REQUIRE_DOCKER") == "1":
            pytest.fail("Docker is required (LOGSTACK_REQUIRE_DOCKER=1) but `docker info` fails")
        pytest.skip("no Docker engine: ElastAlert end-to-end tests skipped (set LOGSTACK_REQUIRE_DOCKER=1 to fail)")
    subprocess.run(["bash", os.path.join(ROOT, "tests", "images", "build.sh")], check=True, timeout=900)


def test_elastalert_deploy_playbook_runs_under_ansible_runner_from_an_awx_project_layout(docker_engine, tmp_path,
                                                                                       monkeypatch):
    from osmem_server import OsmemServer

    workdir = tmp_path / "deploy"
    workdir.mkdir()
    hook_secret = uuid.uuid4().hex
    receiver = e2e.Receiver("hook-%s" % hook_secret)
    server = OsmemServer.start(addr="127.0.0.1:0")
    deployment = None
    try:
        es_port = int(server.url.rsplit(":", 1)[1])
        deployment = e2e.Deployment(str(workdir), es_port, receiver, "pw-%s" % uuid.uuid4().hex)
        deployment.name = "logstack-awx-%s" % uuid.uuid4().hex[:8]  # never collides with tests/elastalert
        deployment.vars["elastalert_container_name"] = deployment.name
        secrets = {k: deployment.vars.pop(k) for k in ("vault_elastalert_es_password", "vault_elastalert_webhook_url")}

        with open(e2e.CI_VARS, encoding="utf-8") as fh:
            ci_vars = yaml.safe_load(fh)
        # Survey/job-template extra vars (the ci group_vars plus the local overrides), then what an
        # AWX credential injects as extra vars: the two secrets.
        extravars = dict(ci_vars, **deployment.vars, **secrets)
        pdd = awx.awx_private_data_dir(tmp_path, deployment.inventory, extravars=extravars, envvars={})
        runner, events, failed = awx.run_job(pdd, "playbooks/deploy-elastalert.yml", monkeypatch)
        stdout = runner.stdout.read()
        assert (runner.status, runner.rc, failed) == ("successful", 0, []), stdout[-4000:]
        stats = [e for e in events if e["event"] == "playbook_on_stats"][-1]["event_data"]
        assert stats["failures"] == {} and stats["dark"] == {}
        assert "localhost" in stats["changed"]

        # The roles came from the collection project sync installed, not from this checkout.
        role_files = {e["event_data"].get("task_path", "") for e in events
                      if e["event"] == "runner_on_ok" and e["event_data"].get("role") == "elastalert"}
        role_files = {p for p in role_files if "/roles/" in p}
        assert role_files and all(p.startswith(str(pdd / "requirements_collections")) for p in role_files)

        assert deployment.inspect()["running"]
        rules_dir = os.path.join(deployment.base_dir, "rules")
        names = sorted(os.listdir(rules_dir))
        assert names == sorted(os.listdir(os.path.join(e2e.ROLE, "files", "rules")))
        tokens = ci_vars["elastalert_rule_tokens"]
        for name in names:
            with open(os.path.join(rules_dir, name), encoding="utf-8") as fh:
                text = fh.read()
            assert "@@" not in text, name
            assert "[%s]" % tokens["ENV_NAME"] in text or tokens["ENV_NAME"] in text, name
        with open(os.path.join(rules_dir, "http_5xx_spike.yaml"), encoding="utf-8") as fh:
            spike = yaml.safe_load(fh)
        assert spike["num_events"] == tokens["HTTP_5XX_MIN_EVENTS"]
        assert json.dumps(spike).count(tokens["KIBANA_URL"]) >= 1
        assert spike["http_post2_url"] == secrets["vault_elastalert_webhook_url"]  # the credential's value arrived
        # The container reads exactly the rendered files.
        assert deployment.rules_in_container() == deployment.rules_snapshot()

        # The secrets reached the container's config but not the job's output (what AWX stores and shows).
        job_output = stdout + "\n".join(json.dumps(e) for e in events)
        for secret in (hook_secret, secrets["vault_elastalert_es_password"]):
            assert secret not in job_output
    finally:
        if deployment is not None:
            deployment.remove()
        receiver.close()
        server.close()
        shutil.rmtree(str(workdir / "opt-elastalert"), ignore_errors=True)
