#!/usr/bin/env bash
# Builds the Debian VM image for the KVM Molecule scenario (molecule/kvm) from Debian packages only:
#   <repo>/.cache/vm/id_ed25519          SSH key for root in the guest (generated once; no password exists)
#   <repo>/.cache/vm/image-<hash>/       disk.img (raw ext4 root filesystem, 2 GiB sparse), vmlinuz, initrd.img
#   <repo>/.cache/vm/current             symlink to the newest image directory
# The directory name is a content hash of this script's build function, the suite, the package list and
# the public key, so a re-run with nothing changed costs nothing. The Debian mirror is read from the
# machine's apt configuration (never hard-coded) by debian_mirror in tests/rig/lib-mirror.sh.
# Needs root (debootstrap, chroot, file ownership). Missing host tools (debootstrap, qemu-system-x86,
# qemu-utils, e2fsprogs, openssh-client) are installed with apt-get.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${ONMETAL_VM_CACHE:-$ROOT/.cache/vm}"
SUITE="${ONMETAL_VM_SUITE:-bookworm}"
# What the guest needs: systemd as init with udev (the point of the test), a kernel and an initramfs
# to boot it from the host, sshd and python3 for Ansible, kmod for modprobe (schedulers built as modules),
# dbus as on any real host (shutdown/reboot with a message go through logind), iproute2 for the address.
VM_PACKAGES="systemd systemd-sysv udev dbus linux-image-amd64 initramfs-tools openssh-server python3 kmod iproute2"
HOST_TOOLS="debootstrap:debootstrap qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils mkfs.ext4:e2fsprogs ssh-keygen:openssh-client"

log() { echo "vm-image: $*" >&2; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "build-image.sh needs root (debootstrap, chroot); run it with sudo." >&2
    exit 1
  fi
}

ensure_host_tools() {
  local missing=() pair
  for pair in $HOST_TOOLS; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# shellcheck source=tests/rig/lib-mirror.sh
. "$ROOT/tests/rig/lib-mirror.sh"

ensure_key() {
  mkdir -p "$CACHE"
  if [ ! -f "$CACHE/id_ed25519" ]; then
    ssh-keygen -q -t ed25519 -N '' -C onmetal-kvm-test -f "$CACHE/id_ed25519"
  fi
  chmod 600 "$CACHE/id_ed25519"
}

WORK=""
cleanup() {
  if [ -n "$WORK" ]; then
    local m
    for m in dev/pts dev sys proc; do umount -l "$WORK/rootfs/$m" 2>/dev/null || true; done
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

build_image() {
  local out="$1" t0=$SECONDS m r kver
  m=$(debian_mirror "$SUITE")
  WORK=$(mktemp -d "$CACHE/build.XXXXXX")
  r="$WORK/rootfs"
  log "debootstrap $SUITE from $m"
  debootstrap --variant=minbase --include=python3 "$SUITE" "$r" "$m" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
  mount -t proc proc "$r/proc"
  mount -t sysfs sysfs "$r/sys"
  mount --bind /dev "$r/dev"
  mount --bind /dev/pts "$r/dev/pts"
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod +x "$r/usr/sbin/policy-rc.d"
  # A small initramfs with just what finds the root disk: unpacking Debian's default (MODULES=most, 36 MB)
  # costs seconds of every boot under TCG.
  # (conf.d and modules.d, not the package's conffiles, so dpkg has nothing to ask about.)
  mkdir -p "$r/etc/initramfs-tools/conf.d" "$r/usr/share/initramfs-tools/modules.d"
  echo MODULES=list >"$r/etc/initramfs-tools/conf.d/onmetal-vm.conf"
  printf '%s\n' virtio_pci virtio_blk ext4 crc32c_generic >"$r/usr/share/initramfs-tools/modules.d/onmetal-vm"
  log "installing $VM_PACKAGES"
  chroot "$r" apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive chroot "$r" apt-get install -y -qq --no-install-recommends $VM_PACKAGES \
    >"$WORK/apt.log" 2>&1 || { tail -30 "$WORK/apt.log" >&2; exit 1; }
  chroot "$r" apt-get clean
  rm -rf "$r/var/lib/apt/lists/"*
  rm -f "$r/usr/sbin/policy-rc.d"
  chroot "$r" systemd-machine-id-setup >/dev/null 2>&1 || true
  umount -l "$r/dev/pts" "$r/dev" "$r/sys" "$r/proc"
  : >"$r/etc/resolv.conf"

  # The guest: root on the first virtio disk, a static address on QEMU's user-mode network (no DHCP wait),
  # root login only with the generated key, the serial console as the only console.
  echo onmetal-vm >"$r/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 onmetal-vm\n' >"$r/etc/hosts"
  printf '/dev/vda / ext4 defaults,noatime 0 1\n' >"$r/etc/fstab"
  # A oneshot unit rather than systemd-networkd: under TCG networkd alone costs 5-10 s of every boot.
  # net.ifnames=0 on the kernel command line makes the NIC eth0; QEMU's user-mode network expects 10.0.2.15.
  cat >"$r/etc/systemd/system/onmetal-user-net.service" <<'EOF'
[Unit]
Description=Static address on QEMU's user-mode network
BindsTo=sys-subsystem-net-devices-eth0.device
After=sys-subsystem-net-devices-eth0.device
Wants=network.target
Before=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=ip link set eth0 up
ExecStart=ip addr replace 10.0.2.15/24 dev eth0

[Install]
WantedBy=multi-user.target
EOF
  chroot "$r" systemctl enable onmetal-user-net.service >/dev/null 2>&1
  # Units that only cost boot time in a throwaway test VM, or would wait for input or a network.
  local u
  for u in systemd-networkd-wait-online.service systemd-firstboot.service apt-daily.timer \
           apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
    ln -sf /dev/null "$r/etc/systemd/system/$u"
  done
  install -d -m 700 "$r/root/.ssh"
  install -m 600 "$CACHE/id_ed25519.pub" "$r/root/.ssh/authorized_keys"
  passwd -R "$r" -l root >/dev/null
  printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUseDNS no\n' \
    >"$r/etc/ssh/sshd_config.d/onmetal-test.conf"

  kver=$(find "$r/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)
  [ -n "$kver" ] || { log "no kernel found in $r/boot"; exit 1; }
  mkdir -p "$WORK/out"
  cp "$r/boot/vmlinuz-$kver" "$WORK/out/vmlinuz"
  cp "$r/boot/initrd.img-$kver" "$WORK/out/initrd.img"
  echo "$kver" >"$WORK/out/kernel-version"
  mkfs.ext4 -q -L onmetal-root -d "$r" "$WORK/out/disk.img" 2G
  rm -rf "$out"
  mv "$WORK/out" "$out"
  log "built $out (kernel $kver) in $((SECONDS - t0))s"
  rm -rf "$WORK"; WORK=""
}

need_root
ensure_host_tools
ensure_key
HASH=$( (declare -f build_image; echo "$SUITE $VM_PACKAGES"; cat "$CACHE/id_ed25519.pub") | sha256sum | cut -c1-12)
IMAGE="$CACHE/image-$HASH"
if [ ! -f "$IMAGE/disk.img" ]; then
  build_image "$IMAGE"
fi
ln -sfn "image-$HASH" "$CACHE/current"
# Older images are of no use once a new one is current.
find "$CACHE" -maxdepth 1 -name 'image-*' ! -name "image-$HASH" -exec rm -rf {} +
log "image ready: $IMAGE"
