"""execution-environment.yml builds a context with ansible-builder, offline."""
import os
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILDER = os.path.join(os.path.dirname(sys.executable), "ansible-builder")


def _read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def test_ansible_builder_creates_a_build_context_offline_with_our_python_and_collection_deps(tmp_path):
    context = tmp_path / "context"
    env = dict(os.environ)
    # Any network access would fail: `create` must need none.
    env.update(HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    proc = subprocess.run([BUILDER, "create", "-f", "execution-environment.yml", "--context", str(context),
                           "--output-filename", "Containerfile"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = _read(context / "Containerfile")
    # The base image is a build argument with our default.
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert "introspect --user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert "update-ca-trust" in containerfile
    # The collection's own files, unchanged, in the context.
    assert _read(context / "_build" / "requirements.txt") == _read(os.path.join(ROOT, "requirements.txt"))
    assert _read(context / "_build" / "requirements.yml") == _read(os.path.join(ROOT, "collections", "requirements.yml"))
    assert _read(context / "_build" / "bindep.txt") == _read(os.path.join(ROOT, "bindep.txt"))


def test_collection_requirements_cover_every_galaxy_dependency_and_the_collection_itself():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as fh:
        galaxy = yaml.safe_load(fh)
    with open(os.path.join(ROOT, "collections", "requirements.yml"), encoding="utf-8") as fh:
        wanted = yaml.safe_load(fh)["collections"]
    names = {c["name"] for c in wanted}
    assert set(galaxy["dependencies"]) <= names
    assert any(c.get("type") == "git" and c["name"].rstrip("/").removesuffix(".git") == galaxy["repository"]
               for c in wanted)
