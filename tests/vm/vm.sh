#!/usr/bin/env bash
# Runs throwaway QEMU VMs of the image that tests/vm/build-image.sh builds.
#
#   vm.sh start NAME      boot NAME (a copy-on-write overlay of the image as vda, a blank 1 GiB data disk as vdb)
#                         and wait until root can log in over SSH; reuses NAME's disks if they exist
#   vm.sh wait NAME [S]   wait up to S seconds (default ONMETAL_VM_BOOT_TIMEOUT) until SSH answers
#   vm.sh ssh NAME [CMD]  run CMD (or a shell) in NAME as root
#   vm.sh reboot NAME     reboot the guest in the same QEMU process and wait until it is back
#   vm.sh stop NAME       power NAME off (poweroff over SSH, then SIGTERM/SIGKILL by pidfile); keeps its disks
#   vm.sh destroy NAME    stop NAME and delete its disks
#   vm.sh port NAME       print the loopback port that forwards to the guest's sshd
#   vm.sh status NAME     exit 0 when NAME's QEMU process runs
#
# State lives in <repo>/.cache/vm/run/NAME (pidfile, port, serial.log, disks). Networking is QEMU's user mode
# with restrict=on: the guest reaches nothing, and its sshd is forwarded to 127.0.0.1 only.
#
# Environment: ONMETAL_VM_ACCEL=tcg (default) | kvm | auto. KVM acceleration hangs on the CI machines
# (docs/kvm-scenario.md), so TCG is the default; "auto" tries KVM for ONMETAL_VM_KVM_PROBE seconds (30)
# and falls back to TCG. ONMETAL_VM_MEM (MiB, 1024), ONMETAL_VM_SMP (2), ONMETAL_VM_BOOT_TIMEOUT (240).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${ONMETAL_VM_CACHE:-$ROOT/.cache/vm}"
ACCEL="${ONMETAL_VM_ACCEL:-tcg}"
MEM="${ONMETAL_VM_MEM:-1024}"
SMP="${ONMETAL_VM_SMP:-2}"
BOOT_TIMEOUT="${ONMETAL_VM_BOOT_TIMEOUT:-240}"
KVM_PROBE="${ONMETAL_VM_KVM_PROBE:-30}"
KEY="$CACHE/id_ed25519"

die() { echo "vm.sh: $*" >&2; exit 1; }
log() { echo "vm.sh: $*" >&2; }

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 2 ] || usage
CMD="$1" NAME="$2"
shift 2
[[ "$NAME" =~ ^[A-Za-z0-9_.-]+$ ]] || die "invalid VM name '$NAME'"
RUN="$CACHE/run/$NAME"

pid() { cat "$RUN/qemu.pid" 2>/dev/null || true; }

running() {
  local p
  p=$(pid)
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && grep -q qemu "/proc/$p/cmdline" 2>/dev/null
}

port() {
  [ -f "$RUN/port" ] || die "$NAME has no port: not started"
  cat "$RUN/port"
}

ssh_vm() {
  ssh -i "$KEY" -p "$(port)" -l root \
    -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 \
    127.0.0.1 "$@"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ssh() {
  local timeout="$1" t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$timeout" ]; do
    running || { tail -30 "$RUN/serial.log" >&2 2>/dev/null; die "$NAME: QEMU exited while booting"; }
    if ssh_vm true 2>/dev/null; then
      log "$NAME answers on 127.0.0.1:$(port) after $((SECONDS - t0))s"
      return 0
    fi
    sleep 1
  done
  return 1
}

launch() {
  local accel="$1" image attempt p
  image=$(readlink -f "$CACHE/current") || true
  [ -f "${image:-/nonexistent}/disk.img" ] || die "no VM image: run tests/vm/build-image.sh first"
  command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: apt-get install qemu-system-x86"
  mkdir -p "$RUN"
  [ -f "$RUN/root.qcow2" ] || qemu-img create -q -f qcow2 -F raw -b "$image/disk.img" "$RUN/root.qcow2"
  [ -f "$RUN/data.img" ] || qemu-img create -q -f raw "$RUN/data.img" 1G
  for attempt in 1 2 3; do
    p=$(free_port)
    echo "$p" >"$RUN/port"
    : >"$RUN/serial.log"
    rm -f "$RUN/qemu.pid"
    # No -no-reboot: a reboot in the guest restarts it in the same process, with the same disks.
    # -nodefaults: no floppy, CD-ROM or VGA, so the guest sees only the two virtio disks.
    if qemu-system-x86_64 -name "$NAME" -nodefaults -accel "$accel" -m "$MEM" -smp "$SMP" \
        -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 net.ifnames=0 systemd.show_status=false" \
        -drive "file=$RUN/root.qcow2,if=virtio,format=qcow2,cache=unsafe" \
        -drive "file=$RUN/data.img,if=virtio,format=raw,cache=unsafe" \
        -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$p-:22" -device virtio-net-pci,netdev=n0 \
        -display none -monitor none -serial "file:$RUN/serial.log" \
        -daemonize -pidfile "$RUN/qemu.pid" 2>"$RUN/qemu.err"; then
      log "$NAME started (accel $accel, pid $(pid), ssh 127.0.0.1:$p)"
      return 0
    fi
    grep -q 'forwarding rule' "$RUN/qemu.err" || { cat "$RUN/qemu.err" >&2; die "$NAME: QEMU failed to start"; }
    log "port $p was taken (attempt $attempt); trying another"
  done
  die "$NAME: no free loopback port found"
}

kill_qemu() {
  local p
  p=$(pid)
  running || return 0
  kill "$p" 2>/dev/null || true
  for _ in $(seq 1 10); do running || return 0; sleep 0.5; done
  kill -9 "$p" 2>/dev/null || true
  for _ in $(seq 1 10); do running || return 0; sleep 0.5; done
  die "$NAME: QEMU pid $p does not exit"
}

start() {
  if running; then
    log "$NAME already runs (pid $(pid))"
    wait_ssh "$BOOT_TIMEOUT" || die "$NAME: no SSH within ${BOOT_TIMEOUT}s"
    return 0
  fi
  local accel="$ACCEL"
  if [ "$accel" = auto ]; then
    if [ -w /dev/kvm ]; then
      launch kvm
      if wait_ssh "$KVM_PROBE"; then return 0; fi
      log "$NAME: KVM did not boot within ${KVM_PROBE}s; falling back to TCG"
      kill_qemu
    fi
    accel=tcg
  fi
  launch "$accel"
  wait_ssh "$BOOT_TIMEOUT" || { tail -30 "$RUN/serial.log" >&2; die "$NAME: no SSH within ${BOOT_TIMEOUT}s"; }
}

stop() {
  if running; then
    ssh_vm 'systemctl poweroff --no-block' >/dev/null 2>&1 || true
    local t0=$SECONDS
    while running && [ $((SECONDS - t0)) -lt 30 ]; do sleep 1; done
    running && log "$NAME did not power off within 30s; killing QEMU"
    kill_qemu
  fi
  rm -f "$RUN/qemu.pid"
}

reboot_vm() {
  running || die "$NAME does not run"
  local before after t0=$SECONDS
  before=$(ssh_vm cat /proc/sys/kernel/random/boot_id)
  ssh_vm 'systemctl reboot --no-block' >/dev/null 2>&1 || true
  while [ $((SECONDS - t0)) -lt "$BOOT_TIMEOUT" ]; do
    running || die "$NAME: QEMU exited during the reboot"
    after=$(ssh_vm cat /proc/sys/kernel/random/boot_id 2>/dev/null || true)
    if [ -n "$after" ] && [ "$after" != "$before" ]; then
      log "$NAME rebooted in $((SECONDS - t0))s"
      return 0
    fi
    sleep 1
  done
  die "$NAME: not back within ${BOOT_TIMEOUT}s after reboot"
}

case "$CMD" in
  start) start ;;
  wait) running || die "$NAME does not run"; wait_ssh "${1:-$BOOT_TIMEOUT}" || die "$NAME: no SSH" ;;
  ssh) running || die "$NAME does not run"; ssh_vm "$@" ;;
  reboot) reboot_vm ;;
  stop) stop ;;
  destroy) stop; rm -rf "$RUN" ;;
  port) port ;;
  status) running ;;
  *) usage ;;
esac
