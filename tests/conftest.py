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
