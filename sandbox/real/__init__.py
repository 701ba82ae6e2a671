"""The sandbox's real engine: real Elasticsearch 7.x / OpenSearch 2.x-3.x nodes, one JVM each.

moto still plays AWS. A node is started for every running instance of the scenario's groups
(with its AMI's version and its group's roles) and killed with SIGKILL, its data directory
discarded, when the instance goes away. See ``sandbox/README.md`` ("engine: real") and
``docs/real-clusters.md``.
"""
