"""The cluster's shared types: a node, a shard copy, an EC2 instance as the engine sees it.

``engine.py`` (membership, masters, recovery, the tick) and ``allocation.py`` (deciders, placement)
both work on these; keeping them here lets the engine import the allocator without the allocator
importing the engine back.
"""
from __future__ import annotations

import base64
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .units import version_tuple as vtuple


def node_id_for(instance_id: str) -> str:
    # ES node ids are random 22-char url-safe strings; derive one so a rerun is readable.
    return base64.urlsafe_b64encode(hashlib.sha256(instance_id.encode()).digest())[:22].decode()


def new_uuid() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def epoch_ms() -> int:
    """Wall-clock milliseconds, for the timestamps Elasticsearch shows (engine time is ``state.now()``)."""
    return int(time.time() * 1000)


@dataclass
class Node:
    id: str
    name: str
    instance_id: str
    ip: str
    host: str
    version: str
    roles: List[str]
    group: str
    joined_at: float
    ephemeral_id: str = field(default_factory=new_uuid)
    attributes: Dict[str, str] = field(default_factory=dict)
    disk_bytes: int = 500 * 1024 ** 3  # the data disk (fs.total); the group's disk_bytes

    @property
    def vt(self) -> Tuple[int, ...]:
        return vtuple(self.version)

    @property
    def master_eligible(self) -> bool:
        return "master" in self.roles

    @property
    def is_data(self) -> bool:
        return any(r.startswith("data") for r in self.roles)

    @property
    def transport_address(self) -> str:
        return f"{self.ip}:9300"


@dataclass
class Copy:
    """One shard copy (ShardRouting)."""

    index: str
    shard: int
    primary: bool
    node_id: Optional[str] = None
    state: str = "UNASSIGNED"  # STARTED / INITIALIZING / RELOCATING / UNASSIGNED
    relocating_node_id: Optional[str] = None
    recovery_left: float = 0.0  # bytes still to copy (INITIALIZING, or RELOCATING to the target)
    recovery_source: Optional[str] = None  # node the data comes from
    recovery_started: float = 0.0  # engine seconds; a recovery copies nothing in the tick that starts it
    allocation_id: str = field(default_factory=new_uuid)
    unassigned_reason: Optional[str] = "INDEX_CREATED"
    unassigned_at: float = 0.0  # engine seconds
    unassigned_at_ms: int = 0
    unassigned_details: Optional[str] = None
    delayed_until: float = 0.0
    ever_started: bool = False


@dataclass
class Instance:
    """What the engine knows about one EC2 instance of the cluster's groups."""

    id: str
    group: str
    seen_at: float
    ordinal_new: int = 0  # 1 for the first instance launched after formation in its group, ...
    never_join: bool = False
    crashed: bool = False
    joined: bool = False
    left: bool = False
    refused_logged: str = ""
