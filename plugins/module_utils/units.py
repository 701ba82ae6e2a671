# -*- coding: utf-8 -*-
# Copyright: logstack.elk contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's one place for Elasticsearch's value formats: version numbers and byte sizes."""
from __future__ import annotations

import re

BYTE_UNITS = {"b": 1, "kb": 1024, "mb": 1024 ** 2, "gb": 1024 ** 3, "tb": 1024 ** 4, "pb": 1024 ** 5}


def parse_version(number):
    """"8.15.0", "7.10.2-SNAPSHOT", "2.11" -> (major, minor, patch), missing parts 0."""
    out = []
    for piece in str(number).split("-")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        out.append(int(digits) if digits else 0)
    while len(out) < 3:
        out.append(0)
    return tuple(out)


def parse_bytes(text):
    """"50gb", "1.5kb", "123b" (Elasticsearch's byte size units, powers of 1024) -> bytes; None when
    it is not a byte size."""
    match = re.match(r"^([0-9.]+)\s*([kmgtp]?b)$", str(text).strip().lower())
    if not match:
        return None
    return int(float(match.group(1)) * BYTE_UNITS[match.group(2)])


def format_bytes(num):
    """Bytes for a message: "512 B", "1.5 KB", ... up to GB."""
    for unit in ("B", "KB", "MB", "GB"):
        if num < 1024 or unit == "GB":
            return ("%.0f %s" if unit == "B" else "%.1f %s") % (num, unit)
        num /= 1024.0
    return "%d B" % num
