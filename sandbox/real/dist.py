"""Distributions from Maven Central: the server jars of one family/version, and the launcher.

``ensure(family, version)`` returns the folder of that version's jars, resolving them with Maven
once (``mvn dependency:copy-dependencies`` on ``launcher/pom.xml``) and caching them under
``$LOGSTACK_REAL_CACHE`` (default ``~/.cache/logstack-real``). ``launcher_jar()`` builds the
launcher once. ``java_for(family, version)`` picks a JDK the version runs on.

``python -m sandbox.real.dist fetch elasticsearch:7.16.3 opensearch:3.9.0 ...`` fills the cache
ahead of time (CI and ``make demo-real`` call it).
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
from typing import List, Optional, Tuple

from ..units import version_tuple as vtuple

HERE = os.path.dirname(os.path.abspath(__file__))
POM = os.path.join(HERE, "launcher", "pom.xml")
FAMILIES = {"elasticsearch": "es7", "opensearch": "opensearch"}


class DistError(RuntimeError):
    """A distribution or tool that cannot be had; the message says what to install or set."""


def cache_dir() -> str:
    return os.environ.get("LOGSTACK_REAL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "logstack-real")


def check_supported(family: str, version: str) -> None:
    major = vtuple(version)[0]
    if family == "elasticsearch" and major != 7:
        raise DistError(f"Elasticsearch {version} cannot run from Maven Central jars (only 7.x can: 8/9 publish no "
                        "HTTP or reindex modules there); use engine: sim for 8.x/9.x")
    if family == "opensearch" and major not in (2, 3):
        raise DistError(f"OpenSearch {version}: the real engine runs 2.x and 3.x")
    if family not in FAMILIES:
        raise DistError(f"unknown distribution {family!r}: use elasticsearch or opensearch")


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if not mvn:
        raise DistError("the real engine needs Maven (mvn) and a JDK: apt-get install maven openjdk-17-jdk-headless")
    return mvn


def _run_mvn(args: List[str], java_home: Optional[str]) -> None:
    env = dict(os.environ)
    if java_home:
        env["JAVA_HOME"] = java_home
    proc = subprocess.run([_mvn(), "-q", "-B", "-f", POM] + args, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise DistError(f"mvn {' '.join(args)} failed:\n{tail}")


def ensure(family: str, version: str) -> str:
    """The folder holding every jar of ``family`` ``version`` (resolved once, then cached)."""
    check_supported(family, version)
    target = os.path.join(cache_dir(), f"{family}-{version}")
    if os.path.exists(os.path.join(target, ".complete")):
        return target
    tmp = target + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    java_home = java_home_for(family, version)
    base = ["-P" + FAMILIES[family], f"-Ddist.version={version}", "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}"]
    _run_mvn(base, java_home)
    # log4j-core is optional in the server's POM: take it at the version of the log4j-api pulled in
    api = [os.path.basename(p) for p in glob.glob(os.path.join(tmp, "log4j-api-*.jar"))]
    if not api:
        raise DistError(f"{family} {version}: no log4j-api jar among its dependencies")
    log4j = api[0][len("log4j-api-"):-len(".jar")]
    for stale in glob.glob(os.path.join(tmp, "log4j-core-*.jar")):
        os.remove(stale)
    _run_mvn(base + [f"-Dlog4j.version={log4j}"], java_home)
    open(os.path.join(tmp, ".complete"), "w").close()
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def launcher_jar() -> str:
    """The launcher jar, built once per source version (keyed by the source's hash)."""
    src = os.path.join(HERE, "launcher", "src", "main", "java", "elk", "launcher", "NodeLauncher.java")
    digest = hashlib.sha256(open(src, "rb").read() + open(POM, "rb").read()).hexdigest()[:12]
    jar = os.path.join(cache_dir(), f"node-launcher-{digest}.jar")
    if os.path.exists(jar):
        return jar
    os.makedirs(cache_dir(), exist_ok=True)
    _run_mvn(["package"], None)
    built = os.path.join(HERE, "launcher", "target", "node-launcher.jar")
    if not os.path.exists(built):
        raise DistError(f"the launcher build produced no {built}")
    shutil.copyfile(built, jar + ".tmp")
    os.replace(jar + ".tmp", jar)
    shutil.rmtree(os.path.join(HERE, "launcher", "target"), ignore_errors=True)
    return jar


def _java_version(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except OSError:
        return 0
    m = re.search(r'version "(\d+)', out)
    return int(m.group(1)) if m else 0


def _jdks() -> List[Tuple[int, str]]:
    """(major, JAVA_HOME) of the JDKs this machine has: $JAVA_HOME, java on PATH, /usr/lib/jvm/*."""
    homes = []
    if os.environ.get("JAVA_HOME"):
        homes.append(os.environ["JAVA_HOME"])
    java = shutil.which("java")
    if java:
        homes.append(os.path.dirname(os.path.dirname(os.path.realpath(java))))
    homes += sorted(glob.glob("/usr/lib/jvm/*"))
    seen, out = set(), []
    for home in homes:
        real = os.path.realpath(home)
        exe = os.path.join(real, "bin", "java")
        if real in seen or not os.path.exists(exe):
            continue
        seen.add(real)
        major = _java_version(exe)
        if major:
            out.append((major, real))
    return out


def java_home_for(family: str, version: str) -> str:
    """A JDK the version runs on: 17 for Elasticsearch 7.x and OpenSearch 2.x, 21+ for OpenSearch 3.x."""
    lo, hi = (21, 99) if family == "opensearch" and vtuple(version)[0] >= 3 else (17, 99)
    if family == "elasticsearch":
        hi = 24  # 7.x's bundled JDK line stops well before 25; 17 is what 7.17 ships with
    fits = sorted((m, h) for m, h in _jdks() if lo <= m <= hi)
    if not fits:
        raise DistError(f"{family} {version} needs a JDK {lo}+ (none found in JAVA_HOME, PATH or /usr/lib/jvm): "
                        "install one, e.g. apt-get install openjdk-17-jdk-headless")
    return fits[0][1]


def main(argv: List[str]) -> int:
    if len(argv) < 2 or argv[0] != "fetch":
        print("usage: python -m sandbox.real.dist fetch FAMILY:VERSION ...  (e.g. elasticsearch:7.17.29)",
              file=sys.stderr)
        return 2
    try:
        print(f"launcher: {launcher_jar()}")
        for spec in argv[1:]:
            family, _, version = spec.partition(":")
            path = ensure(family, version)
            print(f"{family} {version}: {len(glob.glob(os.path.join(path, '*.jar')))} jars in {path} "
                  f"(JDK {java_home_for(family, version)})")
    except DistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
