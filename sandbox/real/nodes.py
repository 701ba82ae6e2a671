"""One real node = one JVM process, started for an EC2 instance and killed with it."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from . import dist

HTTP_PORT = 9200
TRANSPORT_PORT = 9300
LOG_FILE = "node.log"  # in the node's home: the JVM's stdout and stderr, log4j's console appender included

# What the launcher hands to LogConfigurator.configure: INFO to the console, as the distribution's
# own log4j2.properties logs to its files. The console is the node's log file (start() redirects it),
# so one file per node holds log4j's lines, the launcher's and the JVM's in the order they came.
LOG4J2_PROPERTIES = """\
status = error
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
# a 5xx sent to a client is logged with its stack trace; the client has it, and the sandbox's own
# probes of a forming cluster (503 master_not_discovered) would bury the node's account of why
logger.rest_suppressed.name = rest.suppressed
logger.rest_suppressed.level = error
"""


def role_names(family: str, roles: List[str]) -> List[str]:
    """The scenario's roles as the family names them (OpenSearch: cluster_manager, no data tiers)."""
    out = []
    for r in roles:
        if family == "opensearch":
            if r == "master":
                r = "cluster_manager"
            elif r.startswith("data_") or r in ("transform", "ml", "voting_only"):
                continue
        out.append(r)
    return sorted(set(out))


class AddressPool:
    """Loopback addresses 127.A.B.N for one sandbox: A.B drawn at random, N handed out in order.

    All of 127/8 is loopback on Linux, so every node binds its own address with the usual ports
    (9200 HTTP, 9300 transport), as on separate hosts; several sandboxes (pytest workers) can
    run at once because each draws its own A.B.
    """

    def __init__(self) -> None:
        self.prefix = self._free_prefix()
        self.next = 2

    @staticmethod
    def _free_prefix() -> str:
        for _ in range(50):
            prefix = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}"
            if _bindable(f"{prefix}.2", HTTP_PORT):
                return prefix
        raise RuntimeError("no free loopback prefix found for the real nodes")

    def take(self) -> str:
        while self.next < 255:
            ip = f"{self.prefix}.{self.next}"
            self.next += 1
            if _bindable(ip, HTTP_PORT) and _bindable(ip, TRANSPORT_PORT):
                return ip
        raise RuntimeError(f"no free address left in {self.prefix}.0/24")


def _bindable(ip: str, port: int) -> bool:
    s = socket.socket()
    try:
        s.bind((ip, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


@dataclass
class RealNode:
    instance_id: str
    group: str
    name: str
    family: str
    version: str
    roles: List[str]
    ip: str
    home: str
    zone: str = ""
    proc: Optional[subprocess.Popen] = None
    started_at: float = 0.0
    up_at: Optional[float] = None  # first time HTTP answered
    node_id: Optional[str] = None
    killed: bool = False
    extra_settings: Dict[str, object] = field(default_factory=dict)

    @property
    def http(self) -> str:
        return f"http://{self.ip}:{HTTP_PORT}"

    @property
    def transport(self) -> str:
        return f"{self.ip}:{TRANSPORT_PORT}"

    def master_eligible(self) -> bool:
        return "master" in self.roles

    def write_config(self, cluster_name: str, seeds: List[str], initial_masters: List[str]) -> None:
        conf = os.path.join(self.home, "config")
        os.makedirs(conf, exist_ok=True)
        settings: Dict[str, object] = {
            "cluster.name": cluster_name,
            "node.name": self.name,
            "network.host": self.ip,
            "http.port": HTTP_PORT,
            "transport.port": TRANSPORT_PORT,
            "node.roles": role_names(self.family, self.roles),
            "node.attr.aws_instance_id": self.instance_id,
            "node.attr.aws_availability_zone": self.zone,
            "discovery.seed_hosts": seeds,
            "discovery.seed_providers": "file",  # config/unicast_hosts.txt, kept current by the cluster
            "path.data": os.path.join(self.home, "data"),
            "path.logs": os.path.join(self.home, "logs"),
            "path.repo": os.path.join(os.path.dirname(os.path.dirname(self.home)), "snapshots"),
            "node.store.allow_mmap": False,  # no vm.max_map_count demand on the host
            "node.processors": 1,            # small thread pools: many nodes share 2 cores
            "action.auto_create_index": True,
        }
        if initial_masters:
            key = "cluster.initial_cluster_manager_nodes" if self.family == "opensearch" \
                else "cluster.initial_master_nodes"
            settings[key] = initial_masters
        settings.update(self.extra_settings)
        fname = "opensearch.yml" if self.family == "opensearch" else "elasticsearch.yml"
        with open(os.path.join(conf, fname), "w", encoding="utf-8") as fh:
            json.dump(settings, fh, indent=1)  # JSON is YAML: the server's settings loader reads it
        with open(os.path.join(conf, "log4j2.properties"), "w", encoding="utf-8") as fh:
            fh.write(LOG4J2_PROPERTIES)

    def start(self, heap: str, jvm_options: List[str]) -> None:
        home = dist.java_home_for(self.family, self.version)
        cp = os.pathsep.join([dist.launcher_jar(), os.path.join(dist.ensure(self.family, self.version), "*")])
        cmd = [os.path.join(home, "bin", "java"), f"-Xms{heap}", f"-Xmx{heap}",
               "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss1m",
               "-Djava.awt.headless=true", "-Dfile.encoding=UTF-8", "-Dlog4j2.disable.jmx=true",
               "-Des.distribution.flavor=default", "-Des.distribution.type=tar",
               f"-Djava.io.tmpdir={os.path.join(self.home, 'tmp')}"] + jvm_options + \
              ["-cp", cp, "elk.launcher.NodeLauncher", self.home]
        os.makedirs(os.path.join(self.home, "tmp"), exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.home, start_new_session=True)
        log.close()
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, discard_data: bool = True) -> None:
        """SIGKILL, as an instance that is terminated; its disk goes with it."""
        self.killed = True
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        if discard_data:
            shutil.rmtree(os.path.join(self.home, "data"), ignore_errors=True)

    @property
    def log_path(self) -> str:
        return os.path.join(self.home, LOG_FILE)

    def log_tail(self, entries: int = 12, max_chars: int = 6000) -> str:
        """The node's last log entries, each its first line and at most two lines of its stack trace."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(max(0, os.path.getsize(self.log_path) - 256 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return "(no log file)"
        out: List[List[str]] = []
        for line in text.splitlines():
            # log4j's entries start with "[date]"; what follows one up to the next is its stack trace.
            # Lines outside log4j's (the JVM's, the launcher's) are entries of their own.
            if line.startswith("[") or not out or not out[-1][0].startswith("["):
                out.append([line])
            elif len(out[-1]) < 3:
                out[-1].append(line)
        tail = "\n".join(line[:600] for entry in out[-entries:] for line in entry)
        return tail[-max_chars:] if tail else "(log empty)"

    def rss_bytes(self) -> int:
        if not self.alive():
            return 0
        try:
            with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0
