"""What the built collection ships and how its playbooks are run: by FQCN, from the checkout and
from the installed tarball; pinned collection requirements."""
import glob
import os
import re
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
PLAYBOOKS = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(ROOT, "playbooks", "*.yml")))


def env(**extra):
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", **extra)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path",
                    str(out), ROOT], cwd=ROOT, env=env(), check=True, capture_output=True, timeout=300)
    tarball = glob.glob(str(out / "logstack-elk-*.tar.gz"))[0]
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    return tarball, names


def test_the_collection_ships_example_inventories_not_this_projects_environments(built):
    _tarball, names = built
    assert not [n for n in names if n.startswith("inventories/")], [n for n in names if n.startswith("inventories")]
    assert "examples/inventories/example/hosts.yml" in names
    assert "examples/inventories/example/group_vars/es_clusters/connection.yml" in names


def test_the_example_inventory_sets_what_the_project_inventories_set():
    def keys(inventory):
        found = set()
        for path in glob.glob(os.path.join(inventory, "group_vars", "**", "*.yml"), recursive=True):
            with open(path, encoding="utf-8") as fh:
                found |= {(os.path.relpath(path, inventory), k) for k in (yaml.safe_load(fh) or {})}
        return found
    example = keys(os.path.join(ROOT, "examples", "inventories", "example"))
    assert example and keys(os.path.join(ROOT, "inventories", "production")) <= example


@pytest.mark.parametrize("name", [p for p in PLAYBOOKS if "-" not in p])
def test_each_playbook_runs_by_fqcn_from_the_checkout(name):
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "logstack.elk.%s" % name, "--syntax-check",
                           "-i", "inventories/sandbox"], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_hyphenated_playbook_has_its_fqcn_name():
    names = set(PLAYBOOKS)
    assert {p for p in names if "-" in p}, names
    for hyphenated in (p for p in names if "-" in p):
        assert hyphenated.replace("-", "_") in names, hyphenated


def test_the_installed_collection_runs_cluster_info_by_fqcn_against_the_sandbox(built, tmp_path):
    tarball, _names = built
    collections = tmp_path / "collections"
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--no-deps", "--force", "-p",
                    str(collections), tarball], cwd=str(tmp_path), env=env(), check=True, capture_output=True,
                   timeout=300)
    # Outside the checkout: its ansible.cfg and .collections link play no part.
    run_env = {k: v for k, v in env(ANSIBLE_COLLECTIONS_PATH=str(collections)).items() if k != "ANSIBLE_CONFIG"}
    inventory = os.path.join(ROOT, "inventories", "sandbox")
    proc = subprocess.run([sys.executable, "-m", "sandbox", "run", "--scenario",
                           os.path.join(ROOT, "sandbox", "scenarios", "small.yml"), "--state", str(tmp_path / "sb"),
                           "--", os.path.join(BIN, "ansible-playbook"), "logstack.elk.cluster_info", "-i", inventory],
                          cwd=str(tmp_path), env=dict(run_env, PYTHONPATH=ROOT), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (proc.stdout[-3000:] + proc.stderr[-2000:] + repr(sorted(
        (k, v) for k, v in run_env.items() if k.startswith("ANSIBLE"))) + repr(os.listdir(collections)))
    assert re.search(r"sandbox\s*:\s*ok=\d+\s+changed=0\s+unreachable=0\s+failed=0", proc.stdout), proc.stdout[-2000:]


def test_collection_requirements_pin_the_versions_the_tests_run_with():
    with open(os.path.join(ROOT, "collections", "requirements.yml"), encoding="utf-8") as fh:
        wanted = yaml.safe_load(fh)["collections"]
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as fh:
        ranges = yaml.safe_load(fh)["dependencies"]
    listed = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "list", "--format", "yaml"],
                            cwd=ROOT, env=env(), capture_output=True, text=True, timeout=120).stdout
    installed = {}
    for path_entries in yaml.safe_load(listed).values():
        for name, info in path_entries.items():
            installed.setdefault(name, info["version"])
    from ansible.utils.version import SemanticVersion
    for entry in wanted:
        if entry.get("type") == "git":
            continue
        version = str(entry.get("version", ""))
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), "%s is not pinned: %r" % (entry["name"], version)
        assert installed.get(entry["name"]) == version, (entry["name"], installed.get(entry["name"]))
        floor = ranges.get(entry["name"], ">=0.0.0").lstrip(">=")
        assert SemanticVersion(version) >= SemanticVersion(floor), entry["name"]
