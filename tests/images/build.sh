#!/usr/bin/env bash
# Build the local base images the molecule scenario and the ElastAlert tests use.
# No registry is reachable on CI machines, so the Debian base is debootstrapped and
# imported. Each image carries a label with the hash of its inputs; an image whose
# label matches is reused, so reruns cost nothing.
#
#   tests/images/build.sh            build what is missing or stale
#   DEBIAN_MIRROR=http://... tests/images/build.sh
#
# Images:
#   logstack/debian:bookworm          minbase + python3 + ca-certificates
#   logstack/debian-systemd:bookworm  + systemd as PID 1, dbus, python3-apt (molecule host)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BASE_IMAGE="${LOGSTACK_BASE_IMAGE:-logstack/debian:bookworm}"
SYSTEMD_IMAGE="${LOGSTACK_SYSTEMD_IMAGE:-logstack/debian-systemd:bookworm}"
SUITE=bookworm

# Use the mirror this machine's apt uses (first deb.debian.org-style URI), else the default.
detect_mirror() {
  local m
  m=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | grep -E '/debian/?( |$)' | grep -v security | head -1 \
      | sed -E 's/^URIs:[[:space:]]*//; s/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?//; s/[[:space:]].*$//')
  echo "${m:-http://deb.debian.org/debian}"
}
MIRROR="${DEBIAN_MIRROR:-$(detect_mirror)}"

label_of() { docker image inspect -f '{{ index .Config.Labels "org.logstack.inputs" }}' "$1" 2>/dev/null || true; }

base_hash=$(printf '%s\n' "$SUITE" "python3,ca-certificates" "$(sha256sum "$0" | cut -c1-64)" | sha256sum | cut -c1-16)
if [ "$(label_of "$BASE_IMAGE")" = "$base_hash" ]; then
  echo "build.sh: $BASE_IMAGE is current ($base_hash)"
else
  command -v debootstrap >/dev/null || { echo "build.sh: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  root=$(mktemp -d /var/tmp/logstack-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "build.sh: debootstrap $SUITE from $MIRROR (a few minutes, once)"
  debootstrap --variant=minbase --include=python3,ca-certificates "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
    || { tail -30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  # The image gets the same mirror (main + updates + security) and no caches.
  printf 'deb %s %s main\ndeb %s %s-updates main\n' "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import \
    --change "LABEL org.logstack.inputs=$base_hash" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"; trap - EXIT
  echo "build.sh: built $BASE_IMAGE ($base_hash)"
fi

sys_hash=$(cat "$here/debian-systemd/Dockerfile" <(echo "$base_hash") | sha256sum | cut -c1-16)
if [ "$(label_of "$SYSTEMD_IMAGE")" = "$sys_hash" ]; then
  echo "build.sh: $SYSTEMD_IMAGE is current ($sys_hash)"
else
  docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" --label "org.logstack.inputs=$sys_hash" \
    -t "$SYSTEMD_IMAGE" "$here/debian-systemd" >/dev/null
  echo "build.sh: built $SYSTEMD_IMAGE ($sys_hash)"
fi
