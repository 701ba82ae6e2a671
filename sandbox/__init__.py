"""Local stand-in for an AWS account and an Elasticsearch cluster (see sandbox/README.md).

``Sandbox(load("scenario.yml")).start()`` runs everything in this process;
``python -m sandbox`` is the command line.
"""
from .scenario import ScenarioError, load  # noqa: F401


def __getattr__(name):
    # Lazy: importing moto takes seconds, and `python -m sandbox env|audit|down` never needs it.
    if name in ("Sandbox", "SandboxError"):
        from . import runtime
        return getattr(runtime, name)
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
