"""Scenario files: what the sandbox starts with and what goes wrong in it.

The format is documented in ``sandbox/README.md``. ``load(path)`` returns a
validated :class:`Scenario` or raises :class:`ScenarioError` with one sentence
naming the bad key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import yaml

from . import units

ROLE_PRESETS = {
    # Roles as Elasticsearch 8 reports them for such nodes.
    "master": ["master"],
    "data": ["data", "data_content", "data_hot", "data_warm", "data_cold", "ingest"],
    "mixed": ["data", "data_content", "data_hot", "data_warm", "data_cold", "ingest", "master"],
}
KNOWN_ROLES = {
    "master", "data", "data_content", "data_hot", "data_warm", "data_cold", "data_frozen",
    "ingest", "ml", "remote_cluster_client", "transform", "voting_only",
}
FAULT_TYPES = {"never_join", "crash", "es_unavailable", "slow_recovery", "slow_boot"}


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the problem."""


@dataclass
class Group:
    name: str
    roles: List[str]
    size: int
    ami: str
    instance_type: str = "m6i.large"
    disk_bytes: int = 500 * 1024 ** 3  # each node's data disk (fs.total); large unless a scenario is about disk
    zone: str = "us-east-1a"  # the Availability Zone of the group's subnet (node.attr.aws_availability_zone)
    # A replacement takes the name of a node of its group that left (EC2 reuses the private IP, and
    # the default node name is the host name): identity must then come from the node id.
    reuse_names: bool = False


@dataclass
class IndexSpec:
    name: str
    primaries: int
    replicas: int
    docs: int
    size_bytes: int
    settings: Dict[str, str] = field(default_factory=dict)


@dataclass
class Writer:
    every_seconds: float
    prefix: str = "logstash"
    shards: int = 1
    replicas: int = 1
    docs_per_second: float = 50.0
    bytes_per_doc: int = 500


@dataclass
class Fault:
    type: str
    at_seconds: float = 0.0
    for_seconds: float = 0.0
    group: Optional[str] = None
    nth_new_instance: int = 1
    node: Optional[str] = None  # "<group>/<index among the group's initial instances>"
    factor: float = 1.0


@dataclass
class RealSpec:
    """``engine: real``: real nodes from Maven Central jars (sandbox/real/)."""
    distribution: str = "elasticsearch"  # elasticsearch (7.x) | opensearch (2.x, 3.x)
    heap: str = "256m"
    jvm_options: List[str] = field(default_factory=list)
    recovery_bytes_per_second: float = 0.0  # from timing.recovery_bytes_per_second
    form_timeout: float = 600.0  # six JVMs starting on two busy cores can take minutes
    node_settings: Dict[str, Any] = field(default_factory=dict)
    cluster_settings: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Scenario:
    name: str
    cluster_name: str
    es_version: str
    https: bool
    auth: str
    amis: Dict[str, str]  # AMI key -> ES version
    groups: List[Group]
    roll_to: Dict[str, str]  # group name -> AMI key of the new launch template version
    indices: List[IndexSpec]
    boot_to_join_seconds: float
    recovery_bytes_per_second: float
    no_master_seconds: float
    delayed_timeout: str
    writer: Optional[Writer]
    faults: List[Fault]
    path: Optional[str] = None
    engine: str = "sim"  # sim (the simulator) | real (real nodes, sandbox/real/)
    real: Optional[RealSpec] = None


_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def parse_size(value: Any, where: str) -> int:
    try:
        return units.parse_size(value, where)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


def parse_seconds(value: Any, where: str) -> float:
    try:
        return units.parse_seconds(value, where)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


def _mapping(value: Any, where: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ScenarioError(f"{where} must be a mapping")
    return value


def _check_keys(d: Dict[str, Any], allowed: set, where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ScenarioError(f"{where} has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _int(d: Dict[str, Any], key: str, where: str, default: Optional[int] = None, minimum: int = 0) -> int:
    if key not in d:
        if default is None:
            raise ScenarioError(f"{where} needs '{key}'")
        return default
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ScenarioError(f"{where}.{key} must be an integer >= {minimum}, not {v!r}")
    return v


def parse(data: Any, path: Optional[str] = None) -> Scenario:
    top = _mapping(data, "the scenario")
    _check_keys(top, {"name", "cluster_name", "es", "amis", "groups", "roll_to", "indices", "timing",
                      "writer", "faults", "engine", "real"}, "the scenario")
    engine = top.get("engine", "sim")
    if engine not in ("sim", "real"):
        raise ScenarioError(f"engine must be sim or real, not {engine!r}")

    amis_raw = _mapping(top.get("amis"), "amis")
    if not amis_raw:
        raise ScenarioError("amis must name at least one AMI with its es_version")
    amis: Dict[str, str] = {}
    for key, spec in amis_raw.items():
        spec = _mapping(spec, f"amis.{key}")
        _check_keys(spec, {"es_version"}, f"amis.{key}")
        version = str(spec.get("es_version", ""))
        if not _VERSION.match(version):
            raise ScenarioError(f"amis.{key}.es_version must look like 8.15.0, not {version!r}")
        amis[str(key)] = version

    groups_raw = top.get("groups")
    if not isinstance(groups_raw, list) or not groups_raw:
        raise ScenarioError("groups must be a non-empty list of Auto Scaling Groups")
    groups: List[Group] = []
    for i, g in enumerate(groups_raw):
        where = f"groups[{i}]"
        g = _mapping(g, where)
        _check_keys(g, {"name", "role", "roles", "size", "ami", "instance_type", "disk_bytes", "zone", "reuse_names"},
                    where)
        name = g.get("name")
        if not name or not isinstance(name, str):
            raise ScenarioError(f"{where} needs a 'name'")
        if "roles" in g:
            roles = g["roles"]
            if not isinstance(roles, list) or not roles or not set(roles) <= KNOWN_ROLES:
                raise ScenarioError(f"{where}.roles must be a list of Elasticsearch node roles ({', '.join(sorted(KNOWN_ROLES))})")
        else:
            role = g.get("role", "mixed")
            if role not in ROLE_PRESETS:
                raise ScenarioError(f"{where}.role must be master, data or mixed (or give 'roles'), not {role!r}")
            roles = list(ROLE_PRESETS[role])
        ami = g.get("ami")
        if ami not in amis:
            raise ScenarioError(f"{where}.ami {ami!r} is not one of the amis ({', '.join(amis)})")
        disk = parse_size(g.get("disk_bytes", Group.disk_bytes), f"{where}.disk_bytes")
        if disk <= 0:
            raise ScenarioError(f"{where}.disk_bytes must be a positive size such as 20GB, not {g['disk_bytes']!r}")
        zone = str(g.get("zone", Group.zone))
        if not re.match(r"^us-east-1[a-f]$", zone):
            raise ScenarioError(f"{where}.zone must be an Availability Zone of us-east-1 such as us-east-1b, not {zone!r}")
        if not isinstance(g.get("reuse_names", False), bool):
            raise ScenarioError(f"{where}.reuse_names must be true or false")
        groups.append(Group(name=name, roles=sorted(roles), size=_int(g, "size", where, minimum=1), ami=ami,
                            instance_type=str(g.get("instance_type", "m6i.large")), disk_bytes=disk, zone=zone,
                            reuse_names=bool(g.get("reuse_names", False))))
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        raise ScenarioError("groups must have distinct names")
    if not any("master" in g.roles for g in groups):
        raise ScenarioError("at least one group must hold master-eligible nodes (role master or mixed)")
    if not any(r.startswith("data") for g in groups for r in g.roles):
        raise ScenarioError("at least one group must hold data nodes (role data or mixed)")

    roll_raw = top.get("roll_to")
    roll_to: Dict[str, str] = {}
    if roll_raw is not None:
        roll_raw = _mapping(roll_raw, "roll_to")
        _check_keys(roll_raw, {"ami", "groups"}, "roll_to")
        ami = roll_raw.get("ami")
        if ami not in amis:
            raise ScenarioError(f"roll_to.ami {ami!r} is not one of the amis ({', '.join(amis)})")
        targets = roll_raw.get("groups", names)
        for t in targets:
            if t not in names:
                raise ScenarioError(f"roll_to.groups names {t!r}, which is not a group")
            roll_to[t] = ami

    es = _mapping(top.get("es"), "es")
    _check_keys(es, {"version", "https", "auth"}, "es")
    es_version = str(es.get("version", amis[groups[0].ami]))
    if engine == "real" and es:
        raise ScenarioError("es is for the simulator; a real scenario presents what its AMIs' versions run "
                            "(remove es, or set engine: sim)")
    if engine == "sim" and (not _VERSION.match(es_version) or es_version.split(".")[0] not in {"7", "8", "9"}):
        raise ScenarioError(f"es.version must be a 7.x, 8.x or 9.x version such as 8.15.0, not {es_version!r}")
    https = es.get("https", False)
    if not isinstance(https, bool):
        raise ScenarioError("es.https must be true or false")
    auth = es.get("auth", "none")
    if auth not in {"none", "basic", "api_key"}:
        raise ScenarioError(f"es.auth must be none, basic or api_key, not {auth!r}")

    indices: List[IndexSpec] = []
    seen = set()
    for i, ix in enumerate(top.get("indices") or []):
        where = f"indices[{i}]"
        ix = _mapping(ix, where)
        _check_keys(ix, {"name", "primaries", "replicas", "docs", "size", "settings"}, where)
        name = ix.get("name")
        if not name or not isinstance(name, str) or name != name.lower() or name.startswith(("_", "-", "+")):
            raise ScenarioError(f"{where}.name must be a valid lowercase index name")
        if name in seen:
            raise ScenarioError(f"index {name} is declared twice")
        seen.add(name)
        settings = {str(k): str(v) for k, v in _mapping(ix.get("settings"), f"{where}.settings").items()}
        indices.append(IndexSpec(name=name, primaries=_int(ix, "primaries", where, 1, minimum=1),
                                 replicas=_int(ix, "replicas", where, 1), docs=_int(ix, "docs", where, 0),
                                 size_bytes=parse_size(ix.get("size", 0), f"{where}.size"), settings=settings))

    timing = _mapping(top.get("timing"), "timing")
    _check_keys(timing, {"boot_to_join_seconds", "recovery_bytes_per_second", "no_master_seconds",
                         "delayed_timeout"}, "timing")
    boot = parse_seconds(timing.get("boot_to_join_seconds", 2), "timing.boot_to_join_seconds")
    bps = parse_size(timing.get("recovery_bytes_per_second", "40MB"), "timing.recovery_bytes_per_second")
    if bps <= 0:
        raise ScenarioError("timing.recovery_bytes_per_second must be positive")
    no_master = parse_seconds(timing.get("no_master_seconds", 1.5), "timing.no_master_seconds")
    delayed = str(timing.get("delayed_timeout", "1m"))
    parse_seconds(delayed, "timing.delayed_timeout")

    writer = None
    if top.get("writer") is not None:
        w = _mapping(top["writer"], "writer")
        _check_keys(w, {"every_seconds", "prefix", "shards", "replicas", "docs_per_second", "bytes_per_doc"}, "writer")
        if "every_seconds" not in w:
            raise ScenarioError("writer needs 'every_seconds' (how often a new index starts)")
        writer = Writer(every_seconds=parse_seconds(w["every_seconds"], "writer.every_seconds"),
                        prefix=str(w.get("prefix", "logstash")), shards=_int(w, "shards", "writer", 1, 1),
                        replicas=_int(w, "replicas", "writer", 1), docs_per_second=float(w.get("docs_per_second", 50)),
                        bytes_per_doc=_int(w, "bytes_per_doc", "writer", 500, 1))
        if not re.match(r"^[a-z0-9][a-z0-9._-]*$", writer.prefix):
            raise ScenarioError(f"writer.prefix must be a lowercase index name prefix, not {writer.prefix!r}")
        if writer.every_seconds <= 0:
            raise ScenarioError("writer.every_seconds must be positive")

    faults: List[Fault] = []
    for i, f in enumerate(top.get("faults") or []):
        where = f"faults[{i}]"
        f = _mapping(f, where)
        _check_keys(f, {"type", "at_seconds", "for_seconds", "group", "nth_new_instance", "node", "factor"}, where)
        ftype = f.get("type")
        if ftype not in FAULT_TYPES:
            raise ScenarioError(f"{where}.type must be one of {', '.join(sorted(FAULT_TYPES))}, not {ftype!r}")
        fault = Fault(type=ftype, at_seconds=parse_seconds(f.get("at_seconds", 0), f"{where}.at_seconds"),
                      for_seconds=parse_seconds(f.get("for_seconds", 0), f"{where}.for_seconds"),
                      group=f.get("group"), nth_new_instance=_int(f, "nth_new_instance", where, 1, 1),
                      node=f.get("node"), factor=float(f.get("factor", 1.0)))
        if ftype == "never_join" and fault.group not in names:
            raise ScenarioError(f"{where} (never_join) needs 'group', one of {', '.join(names)}")
        if ftype in ("crash", "slow_boot"):
            m = re.match(r"^(.+)/(\d+)$", str(fault.node or ""))
            grp = next((g for g in groups if m and g.name == m.group(1)), None)
            if not m or grp is None or int(m.group(2)) >= grp.size:
                raise ScenarioError(f"{where} ({ftype}) needs 'node' as <group>/<n>, n below the group's size")
        if ftype == "slow_boot" and fault.for_seconds <= 0:
            raise ScenarioError(f"{where} (slow_boot) needs a positive 'for_seconds'")
        if ftype == "slow_boot" and engine != "real":
            raise ScenarioError(f"{where}: slow_boot is a fault of engine: real (the simulator's boots take "
                                "timing.boot_to_join_seconds)")
        if ftype == "es_unavailable" and fault.for_seconds <= 0:
            raise ScenarioError(f"{where} (es_unavailable) needs a positive 'for_seconds'")
        if ftype == "slow_recovery" and not (0 < fault.factor <= 1):
            raise ScenarioError(f"{where} (slow_recovery) needs 'factor' between 0 and 1")
        faults.append(fault)

    real = _real_spec(top, engine, float(bps), faults) if engine == "real" else None
    if engine != "real" and top.get("real") is not None:
        raise ScenarioError("real: applies to engine: real only")
    return Scenario(engine=engine, real=real, name=str(top.get("name", "scenario")), cluster_name=str(top.get("cluster_name", "sandbox")),
                    es_version=es_version, https=https, auth=auth, amis=amis, groups=groups, roll_to=roll_to,
                    indices=indices, boot_to_join_seconds=boot, recovery_bytes_per_second=float(bps),
                    no_master_seconds=no_master, delayed_timeout=delayed, writer=writer, faults=faults, path=path)


def _real_spec(top: Dict[str, Any], engine: str, bps: float, faults: List[Fault]) -> RealSpec:
    r = _mapping(top.get("real"), "real")
    _check_keys(r, {"distribution", "heap", "jvm_options", "form_timeout", "node_settings", "cluster_settings"},
                "real")
    dist = r.get("distribution", "elasticsearch")
    if dist not in ("elasticsearch", "opensearch"):
        raise ScenarioError(f"real.distribution must be elasticsearch or opensearch, not {dist!r}")
    heap = str(r.get("heap", "256m"))
    if not re.match(r"^\d+[mg]$", heap):
        raise ScenarioError(f"real.heap must be a JVM heap size such as 256m or 1g, not {heap!r}")
    opts = r.get("jvm_options", [])
    if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
        raise ScenarioError("real.jvm_options must be a list of strings")
    for f in faults:
        if f.type == "slow_recovery":
            raise ScenarioError("faults: slow_recovery is a simulator fault; on real nodes change "
                                "indices.recovery.max_bytes_per_sec instead")
    return RealSpec(distribution=dist, heap=heap, jvm_options=list(opts), recovery_bytes_per_second=bps,
                    form_timeout=parse_seconds(r.get("form_timeout", 600), "real.form_timeout"),
                    node_settings=dict(_mapping(r.get("node_settings"), "real.node_settings")),
                    cluster_settings=dict(_mapping(r.get("cluster_settings"), "real.cluster_settings")))


def load(path: str) -> Scenario:
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"scenario file {path} is not valid YAML: {exc}") from None
    return parse(data, path)
