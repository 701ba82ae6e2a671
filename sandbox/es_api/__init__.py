"""The Elasticsearch HTTP API half of the sandbox: server, routing by the REST spec,
version presentation, TLS, auth, and the index/document endpoints (documents.py)."""
from .server import start_server  # noqa: F401
