"""Fixtures for the ElastAlert end-to-end tests: the host's Docker engine, osmem-server
loaded with web logs, a local HTTP receiver for alerts, and a deployment made by
playbooks/deploy-elastalert.yml with the ci environment's token values."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLE = os.path.join(ROOT, "roles", "elastalert")
CI_VARS = os.path.join(ROOT, "inventories", "ci", "group_vars", "elastalert.yml")
BASE_IMAGE = "logstack/debian:bookworm"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def docker_available():
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine():
    if not docker_available():
        if os.environ.get("LOGSTACK_REQUIRE_DOCKER") == "1":
            pytest.fail("Docker is required (LOGSTACK_REQUIRE_DOCKER=1) but `docker info` fails")
        pytest.skip("no Docker engine: ElastAlert end-to-end tests skipped (set LOGSTACK_REQUIRE_DOCKER=1 to fail)")
    # The base image the role's Dockerfile builds on (no registry here); cached by content hash.
    subprocess.run(["bash", os.path.join(ROOT, "tests", "images", "build.sh")], check=True, timeout=900)


def image_tag():
    """Tag the image by the Dockerfile's content: a changed Dockerfile gets a fresh build through the role."""
    with open(os.path.join(ROLE, "files", "image", "Dockerfile"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    return "logstack/elastalert2:2.19.0-%s" % digest


class Receiver:
    """HTTP endpoint standing in for the chat webhook; keeps every JSON body posted to it."""

    def __init__(self, secret_path):
        self.bodies = []
        self.paths = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                receiver.paths.append(self.path)
                try:
                    receiver.bodies.append(json.loads(raw))
                except ValueError:
                    receiver.bodies.append({"_raw": raw.decode("utf-8", "replace")})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hooks/%s" % (self.server.server_address[1], secret_path)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in list(self.bodies):
                if predicate(body):
                    return body
            time.sleep(0.5)
        return None

    def close(self):
        self.server.shutdown()


def load_web_logs(server, count=30):
    """Index `count` 5xx access-log documents from the last minutes, plus a few 200s."""
    now = dt.datetime.now(dt.timezone.utc)
    lines = []
    for i in range(count + 10):
        status = 503 if i < count else 200
        ts = (now - dt.timedelta(seconds=20 + i * 3)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lines.append(json.dumps({"index": {"_index": "logs-web-e2e"}}))
        lines.append(json.dumps({"@timestamp": ts, "event": {"dataset": "nginx.access"},
                                 "http": {"response": {"status_code": status}}, "url": {"path": "/api/%d" % i}}))
    body = "\n".join(lines) + "\n"
    import urllib.request
    req = urllib.request.Request(server.url.replace("[::]", "127.0.0.1") + "/_bulk?refresh=true", data=body.encode(),
                                 method="POST", headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        result = json.loads(resp.read())
    assert not result.get("errors"), result


class Deployment:
    """One ElastAlert deployment on the host's Docker, driven by the real playbook."""

    def __init__(self, workdir, es_port, receiver, es_password):
        self.workdir = workdir
        self.name = "logstack-e2e-%s" % uuid.uuid4().hex[:8]
        self.base_dir = os.path.join(workdir, "opt-elastalert")
        self.rules_src = os.path.join(workdir, "rules-src")
        shutil.copytree(os.path.join(ROLE, "files", "rules"), self.rules_src)
        self.outputs = []
        self.inventory = os.path.join(workdir, "hosts.yml")
        with open(self.inventory, "w") as f:
            yaml.safe_dump({"all": {"children": {"elastalert": {"hosts": {"localhost": {
                "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}}}, f)
        # The ci group_vars are loaded as they are; only what points at this machine is overridden.
        self.vars = {
            "deploy_elastalert_install_docker": False,  # never touch the host's own Docker daemon
            "elastalert_base_dir": self.base_dir,
            "elastalert_container_name": self.name,
            "elastalert_image": image_tag(),
            "elastalert_image_source": "build",
            "elastalert_build_base_image": BASE_IMAGE,
            "elastalert_build_ca_certs": [HOST_CA_BUNDLE] if os.path.exists(HOST_CA_BUNDLE) else [],
            "elastalert_es_host": "127.0.0.1",
            "elastalert_es_port": es_port,
            "elastalert_es_use_ssl": False,
            "elastalert_network_mode": "host",
            "elastalert_run_every": {"seconds": 3},
            "elastalert_rule_sources": [self.rules_src],
            "vault_elastalert_es_password": es_password,
            "vault_elastalert_webhook_url": receiver.url,
        }

    def deploy(self, *extra_args, timeout=600):
        vars_file = os.path.join(self.workdir, "vars.yml")
        with open(vars_file, "w") as f:
            yaml.safe_dump(self.vars, f)
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_NOCOLOR="1")
        proc = subprocess.run(
            ["ansible-playbook", "-v", "-i", self.inventory, os.path.join(ROOT, "playbooks", "deploy-elastalert.yml"),
             "-e", "@" + CI_VARS, "-e", "@" + vars_file, *extra_args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        output = proc.stdout + proc.stderr
        self.outputs.append(output)
        return proc.returncode, output

    def inspect(self):
        out = subprocess.run(["docker", "inspect", self.name], capture_output=True, text=True, check=True).stdout
        info = json.loads(out)[0]
        return {"id": info["Id"], "started": info["State"]["StartedAt"], "running": info["State"]["Running"],
                "stop_signal": info["Config"].get("StopSignal"), "user": info["Config"].get("User"),
                "mounts": info["Mounts"]}

    def rules_snapshot(self):
        rules = os.path.join(self.base_dir, "rules")
        snap = {}
        for name in sorted(os.listdir(rules)):
            with open(os.path.join(rules, name), "rb") as f:
                snap[name] = hashlib.sha256(f.read()).hexdigest()
        return snap

    def rules_in_container(self):
        out = subprocess.run(["docker", "exec", self.name, "sh", "-c", "cd /opt/elastalert/rules && sha256sum *.yaml"],
                             capture_output=True, text=True, check=True).stdout
        return {line.split()[1]: line.split()[0] for line in out.splitlines() if line.strip()}

    def remove(self):
        subprocess.run(["docker", "rm", "-f", self.name], capture_output=True)


@pytest.fixture(scope="module")
def elastalert_deployment(docker_engine):
    from osmem_server import OsmemServer

    workdir = tempfile.mkdtemp(prefix="logstack-e2e-")
    secret = uuid.uuid4().hex
    receiver = Receiver("hook-%s" % secret)
    server = OsmemServer.start(addr="127.0.0.1:0")
    deployment = None
    try:
        load_web_logs(server)
        es_port = int(server.url.rsplit(":", 1)[1])
        deployment = Deployment(workdir, es_port, receiver, "pw-%s" % uuid.uuid4().hex)
        deployment.receiver = receiver
        deployment.secrets = [secret, deployment.vars["vault_elastalert_es_password"]]
        rc, out = deployment.deploy()
        assert rc == 0, out[-4000:]
        yield deployment
    finally:
        if deployment is not None:
            deployment.remove()
        receiver.close()
        server.close()
        shutil.rmtree(workdir, ignore_errors=True)
