"""Make this checkout importable as ansible_collections.logstack.elk (see `make collection`),
and fixtures shared by every test folder."""
import os
import sys

import pytest

# The sandbox's fixtures (in-process, HTTP-only, background process), for every test folder.
pytest_plugins = ["tests.sandbox_plugin"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
link = os.path.join(COLLECTIONS, "ansible_collections", "logstack", "elk")
if not os.path.exists(link):
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink("../../..", link)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
os.environ.setdefault("ANSIBLE_CONFIG", os.path.join(ROOT, "ansible.cfg"))
# Subprocesses (ansible-playbook, ansible-galaxy, python -m sandbox) must come
# from the same virtualenv as pytest, however pytest was started.
_bin = os.path.dirname(sys.executable)
if _bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _bin + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture(scope="module")
def moto_url():
    """A moto server (EC2, Auto Scaling, CloudWatch, SNS, ...) on a free loopback port, per test module."""
    from moto.backends import get_backend
    from moto.server import ThreadedMotoServer

    # moto keeps its state per process, not per server: a module must not see what an earlier
    # module of the same xdist worker created (e.g. another environment's instances).
    for service in ("ec2", "autoscaling", "cloudwatch", "sns", "sqs", "iam"):
        for account in list(get_backend(service).keys()):
            get_backend(service)[account].reset()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield "http://%s:%d" % (host, port)
    server.stop()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """``--dist loadgroup`` keeps an ``xdist_group``'s tests on one worker by ending their node ids with
    "@<group>". pytest-xdist 3.8 writes that into ``item._nodeid``, which pytest 9 no longer reads (the
    id is ``Node._id``): without this every grouped test was scheduled on its own, so tests meant to share
    a module's cluster (tests/real, tests/awx) each started one on another worker."""
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # pytest 8: xdist's own suffix works
        return
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if names and not item.nodeid.endswith("@" + "_".join(names)):
            item._id = coerce_node_id("%s@%s" % (item.nodeid, "_".join(names)))
