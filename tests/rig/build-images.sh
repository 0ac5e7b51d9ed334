#!/usr/bin/env bash
# Builds the test rig's images offline from Debian packages (no container registry is needed):
#   onmetal-rig/base:<hash>  Debian bookworm minbase + python3 (debootstrap)
#   onmetal-rig/node:<hash>  base + systemd as PID 1, python3-apt, iproute2; the docker.io .debs are
#                            downloaded into the apt cache but NOT installed, so the docker_engine role
#                            really installs the engine from the distribution's packages.
#   onmetal-rig/probe:<hash> a 2 MB image holding Debian's busybox-static: the throwaway workload that tests
#                            load into the nodes' engines (httpd, wget, nslookup).
# Each image is tagged by a content hash of this script, so a re-run with nothing changed costs
# nothing; ":current" always names the newest build. The Debian mirror is read from the machine's
# apt configuration (never hard-coded) by debian_mirror in tests/rig/lib-mirror.sh.
set -euo pipefail
SUITE="${ONMETAL_RIG_SUITE:-bookworm}"
NODE_PACKAGES="systemd systemd-sysv dbus iproute2 iputils-ping procps ca-certificates python3-apt kmod curl"
NODE_CACHED_DEBS="docker.io python3-docker iptables"
# shellcheck source=tests/rig/lib-mirror.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib-mirror.sh"

have() { docker image inspect "$1" >/dev/null 2>&1; }

WORK=""
cleanup() {
  if [ -n "$WORK" ]; then
    for m in proc sys dev/pts dev; do umount -l "$WORK/rootfs/$m" 2>/dev/null || true; done
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

build_base() {
  local t0=$SECONDS m
  m=$(debian_mirror "$SUITE")
  WORK=$(mktemp -d /var/tmp/onmetal-rig.XXXXXX)
  echo "rig: debootstrap $SUITE from $m" >&2
  debootstrap --variant=minbase --include=python3 "$SUITE" "$WORK/rootfs" "$m" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  echo "deb $m $SUITE main" >"$WORK/rootfs/etc/apt/sources.list"
  chroot "$WORK/rootfs" apt-get clean
  tar -C "$WORK/rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  docker tag "$BASE" onmetal-rig/base:current
  echo "rig: built $BASE in $((SECONDS - t0))s" >&2
  rm -rf "$WORK"; WORK=""
}

build_node() {
  local t0=$SECONDS cid
  WORK=$(mktemp -d /var/tmp/onmetal-rig.XXXXXX)
  mkdir -p "$WORK/rootfs"
  cid=$(docker create "$BASE" /bin/true)
  docker export "$cid" | tar -C "$WORK/rootfs" -x
  docker rm "$cid" >/dev/null
  local r="$WORK/rootfs"
  mount -t proc proc "$r/proc"
  mount --bind /dev "$r/dev"
  mount --bind /dev/pts "$r/dev/pts"
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod +x "$r/usr/sbin/policy-rc.d"
  chroot "$r" apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive chroot "$r" apt-get install -y -qq --no-install-recommends $NODE_PACKAGES >/dev/null
  chroot "$r" apt-get clean
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive chroot "$r" apt-get install -y -qq --no-install-recommends --download-only \
    $NODE_CACHED_DEBS >/dev/null
  rm -f "$r/usr/sbin/policy-rc.d"
  umount -l "$r/dev/pts" "$r/dev" "$r/proc"
  # A fresh machine-id per container (systemd writes one at boot when the file is empty).
  : >"$r/etc/machine-id"; rm -f "$r/var/lib/dbus/machine-id"
  # Units that make no sense in a container acting as a host.
  for u in getty.target console-getty.service systemd-firstboot.service systemd-udevd.service \
           systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount; do
    ln -sf /dev/null "$r/etc/systemd/system/$u"
  done
  : >"$r/etc/resolv.conf"
  tar -C "$r" -c . | docker import -c 'ENV container=docker' -c 'CMD ["/sbin/init"]' - "$NODE" >/dev/null
  docker tag "$NODE" onmetal-rig/node:current
  echo "rig: built $NODE in $((SECONDS - t0))s" >&2
  rm -rf "$WORK"; WORK=""
}

build_probe() {
  local bb=/bin/busybox
  [ -x "$bb" ] || { echo "rig: /bin/busybox missing: apt-get install busybox-static" >&2; exit 1; }
  WORK=$(mktemp -d /var/tmp/onmetal-rig.XXXXXX)
  mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc" "$WORK/rootfs/tmp" "$WORK/rootfs/www"
  cp "$bb" "$WORK/rootfs/bin/busybox"
  for a in sh httpd wget nc nslookup hostname cat echo sleep ls ps sed sort tail; do ln -s busybox "$WORK/rootfs/bin/$a"; done
  echo 'root:x:0:0:root:/:/bin/sh' >"$WORK/rootfs/etc/passwd"
  tar -C "$WORK/rootfs" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' - "$PROBE" >/dev/null
  rm -rf "$WORK"; WORK=""
}

# Content hashes: each image's tag covers the function that builds it, its inputs and the image below it.
hash() { sha256sum | cut -c1-12; }
BASE="onmetal-rig/base:$( (declare -f build_base; echo "$SUITE") | hash)"
NODE="onmetal-rig/node:$( (echo "$BASE"; declare -f build_node; echo "$NODE_PACKAGES $NODE_CACHED_DEBS") | hash)"
PROBE="onmetal-rig/probe:$( (declare -f build_probe; sha256sum /bin/busybox 2>/dev/null) | hash)"
have "$PROBE" || build_probe
docker tag "$PROBE" onmetal-rig/probe:current
have "$BASE" || build_base
docker tag "$BASE" onmetal-rig/base:current
have "$NODE" || build_node
docker tag "$NODE" onmetal-rig/node:current
echo "rig: images ready: $BASE $NODE $PROBE" >&2
