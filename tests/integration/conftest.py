"""Fixtures of the tests that run against real peers."""
import pytest

from sandbox.es_api.server import start_server
from sandbox.state import SandboxState


@pytest.fixture
def sandbox_es():
    """Start the sandbox's Elasticsearch HTTP API alone (version, TLS, auth chosen by the test); returns its URL."""
    servers = []

    def start(version="8.15.0", tls=None, auth=None):
        state = SandboxState()
        state.es_version = version
        server, url = start_server(state, tls=tls, auth=auth)
        servers.append(server)
        return url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
