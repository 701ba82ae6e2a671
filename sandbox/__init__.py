"""Local stand-in for an AWS account and an Elasticsearch cluster (see sandbox/README.md).

``Sandbox(load("scenario.yml")).start()`` runs everything in this process;
``python -m sandbox`` is the command line.
"""
from .runtime import Sandbox, SandboxError  # noqa: F401
from .scenario import ScenarioError, load  # noqa: F401
