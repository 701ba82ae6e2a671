"""The test tree's own rules: each folder's tests collect when that folder is run alone, and a module
named test_* holds tests (pytest collects it; a helper under that name is collected for nothing and
imported under two names)."""
import ast
import glob
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FOLDERS = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(ROOT, "tests", "*", ""))
                 if glob.glob(os.path.join(p, "**", "test_*.py"), recursive=True)
                 and os.path.basename(os.path.dirname(p)) != "molecule")


@pytest.mark.parametrize("folder", FOLDERS)
def test_each_test_folder_collects_when_run_alone(folder):
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:xdist",
                           "-p", "no:cacheprovider", os.path.join("tests", folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_every_module_named_test_holds_tests():
    helpers = []
    for path in glob.glob(os.path.join(ROOT, "tests", "**", "test_*.py"), recursive=True):
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        names = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        if not any(n.startswith(("test", "Test")) for n in names):
            helpers.append(os.path.relpath(path, ROOT))
    assert helpers == [], "helper modules named test_*: rename them (e.g. upgrade_support.py)"


# What starts a sandbox: the in-process runtime, the bare HTTP server, `python -m sandbox up`.
SANDBOX_STARTERS = ("Sandbox(load(", "start_server(", "SandboxState(", '"sandbox", "up"', "runtime import Sandbox")
# Tests of the command line itself run it as an operator would (and this file names the starters).
COMMAND_LINE_TESTS = {"tests/sandbox/test_cli.py", "tests/integration/test_upgrade_report.py",
                      "tests/real/test_launcher.py", "tests/sanity/test_test_layout.py"}


def test_the_sandbox_is_started_only_by_the_test_plugin():
    """One place starts the sandbox for tests (tests/sandbox_plugin.py: sandbox_factory, sandbox_http,
    sandbox_process), not a conftest, helper or test module of its own."""
    elsewhere = []
    for path in glob.glob(os.path.join(ROOT, "tests", "**", "*.py"), recursive=True):
        rel = os.path.relpath(path, ROOT)
        if rel == "tests/sandbox_plugin.py" or rel in COMMAND_LINE_TESTS:
            continue
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        elsewhere += ["%s: %s" % (rel, s) for s in SANDBOX_STARTERS if s in text]
    assert elsewhere == [], "start the sandbox through tests/sandbox_plugin.py: %s" % elsewhere
