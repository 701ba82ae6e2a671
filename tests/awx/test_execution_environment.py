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


# import name -> distribution in requirements.txt
IMPORT_TO_DIST = {"yaml": "pyyaml", "elastic_transport": "elastic-transport", "boto3": "boto3", "botocore": "botocore",
                  "requests": "requests", "elasticsearch": "elasticsearch"}


def _requirement_names(path):
    import re
    names = set()
    for line in _read(path).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower())
    return names


def test_the_image_has_every_python_package_the_plugins_import():
    import ast
    import glob
    imported = set()
    for path in glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True):
        for node in ast.walk(ast.parse(_read(path))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"ansible", "ansible_collections", "__future__"}
    unknown = third_party - set(IMPORT_TO_DIST)
    assert not unknown, "map these imports to their PyPI name in IMPORT_TO_DIST: %s" % sorted(unknown)
    missing = {IMPORT_TO_DIST[m] for m in third_party} - _requirement_names(os.path.join(ROOT, "requirements.txt"))
    assert not missing, "requirements.txt (the execution environment's Python) lacks %s" % sorted(missing)


def test_the_image_has_every_collection_the_jobs_use():
    import glob
    import re
    used = set()
    # task keys (`- amazon.aws.ec2_instance:`), inventory plugins and FQCN filters/lookups
    pattern = re.compile(r"(?:^\s*-?\s*|plugin:\s*|\|\s*|(?:lookup|query)\(')([a-z_]+\.[a-z_]+)\.[a-z_0-9]+(?![.\w-])", re.M)
    for folder in ("playbooks", "roles", "inventories", "awx"):
        for path in glob.glob(os.path.join(ROOT, folder, "**", "*.yml"), recursive=True):
            used |= set(pattern.findall(_read(path)))
    used -= {"ansible.builtin", "logstack.elk"}
    with open(os.path.join(ROOT, "collections", "requirements.yml"), encoding="utf-8") as fh:
        listed = {c["name"] for c in yaml.safe_load(fh)["collections"]}
    assert used and not used - listed, "collections/requirements.yml lacks %s" % sorted(used - listed)
