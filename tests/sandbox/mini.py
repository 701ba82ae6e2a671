"""A small simulated scenario written for one test: 8.14 AMIs rolled to 8.15, fast timing."""
from __future__ import annotations

from typing import Any, Dict, List

import yaml


def write(tmp_path: Any, name: str, groups: List[Dict[str, Any]], indices: List[Dict[str, Any]],
          delayed_timeout: str = "0s") -> str:
    """The scenario file's path. groups: {name, role or roles, size, ami (es-8.14 | es-8.15), ...}."""
    data = {"name": name, "cluster_name": name, "es": {"version": "8.15.0"},
            "amis": {"es-8.14": {"es_version": "8.14.3"}, "es-8.15": {"es_version": "8.15.0"}},
            "groups": groups, "roll_to": {"ami": "es-8.15"},
            "timing": {"boot_to_join_seconds": 0.5, "recovery_bytes_per_second": "50MB", "no_master_seconds": 1,
                       "delayed_timeout": delayed_timeout},
            "indices": indices}
    path = tmp_path / ("%s.yml" % name)
    path.write_text(yaml.safe_dump(data))
    return str(path)
